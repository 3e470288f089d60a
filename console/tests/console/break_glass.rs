//! Break-glass from the console: only where the rules allow it, behind a
//! written justification, with a banner for as long as the window is open,
//! and every read through it flagged at the owner.

use crate::Harness;

#[tokio::test]
async fn a_clinic_supervisor_opens_break_glass_with_a_justification_and_reads_health_under_a_banner()
 {
    let h = Harness::start().await;
    let survivor = h.federation.register_survivor("shelter-north", "Jun").await;
    let record = format!("/survivors/{survivor}");

    let mut supervisor = h.signed_in("clinic-east", "supervisor@clinic-east").await;
    let before = supervisor.get(&record).await;
    assert!(!before.body.contains("invented note"), "{}", before.body);
    assert!(
        before.body.contains(&format!("{record}/break-glass")),
        "{}",
        before.body
    );
    let form = supervisor.get(&format!("{record}/break-glass")).await;
    assert_eq!(form.status, 200, "{}", form.body);

    let short = supervisor
        .post(
            &format!("{record}/break-glass"),
            &[("csrf", &form.csrf()), ("justification", "urgent")],
        )
        .await;
    assert_eq!(short.code.as_deref(), Some("BAD_REQUEST"));

    let why = "Brought in unconscious, allergies unknown, owner unreachable";
    let opened = supervisor
        .post(
            &format!("{record}/break-glass"),
            &[("csrf", &form.csrf()), ("justification", why)],
        )
        .await;
    assert_eq!(opened.status, 303, "{opened:?}");
    let during = supervisor.get(&record).await;
    assert!(
        during.body.contains("Emergency access is open until"),
        "{}",
        during.body
    );
    assert!(during.body.contains("invented note"), "{}", during.body);
    // The limits still hold: no contact details for a clinic.
    assert!(!during.body.contains("Safe house 7"));
    // The banner stays on every page while the window is open.
    let inbox = supervisor.get("/referrals").await;
    assert!(inbox.body.contains("Emergency access is open until"));

    let events = h.federation.node("shelter-north").audit_events().await;
    assert!(
        events.iter().any(|e| e.break_glass
            && e.actor_user.as_deref() == Some("supervisor@clinic-east")
            && e.justification.as_deref() == Some(why)),
        "the owner's log flags the read with its justification"
    );

    // A caseworker is offered no such form, and the node refuses one sent
    // by hand.
    let mut caseworker = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let page = caseworker.get(&record).await;
    assert!(!page.body.contains(&format!("{record}/break-glass")));
    let refused = caseworker
        .post(
            &format!("{record}/break-glass"),
            &[("csrf", &page.csrf()), ("justification", why)],
        )
        .await;
    assert_eq!(refused.code.as_deref(), Some("FORBIDDEN"), "{refused:?}");
    assert!(!caseworker.get(&record).await.body.contains("invented note"));

    // The owner's supervisor reviews it; the owner's caseworker may not.
    let mut owner = h
        .signed_in("shelter-north", "supervisor@shelter-north")
        .await;
    let review = owner.get("/review").await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(
        review.body.contains("supervisor@clinic-east (clinic-east)"),
        "{}",
        review.body
    );
    assert!(review.body.contains(why), "{}", review.body);
    let mut owner_caseworker = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let inbox = owner_caseworker.get("/referrals").await;
    assert!(
        !inbox.body.contains("href=\"/review\""),
        "no review link for caseworkers"
    );
    assert_eq!(
        owner_caseworker.get("/review").await.code.as_deref(),
        Some("FORBIDDEN")
    );
}

#[tokio::test]
async fn an_owning_supervisor_assigns_caseworkers_and_a_caseworker_cannot() {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Kofi")
        .await;
    let record = format!("/survivors/{survivor}");
    let mut supervisor = h
        .signed_in("shelter-north", "supervisor@shelter-north")
        .await;
    let page = supervisor.get(&record).await;
    assert!(page.body.contains("name=\"users\""), "{}", page.body);
    let saved = supervisor
        .post(
            &format!("{record}/caseworkers"),
            &[
                ("csrf", &page.csrf()),
                (
                    "users",
                    "caseworker@shelter-north, ana@shelter-north, caseworker@shelter-north",
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{saved:?}");
    let page = supervisor.get(&record).await;
    assert!(
        page.body.contains("The assignment was saved."),
        "{}",
        page.body
    );
    let line = page
        .body
        .lines()
        .find(|l| l.starts_with("<p>Caseworkers on this case:"))
        .unwrap_or_else(|| panic!("{}", page.body));
    assert!(line.contains("caseworker@shelter-north") && line.contains("ana@shelter-north"));
    assert_eq!(
        line.matches("@shelter-north").count(),
        2,
        "no repeats: {line}"
    );

    let mut caseworker = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let page = caseworker.get(&record).await;
    assert!(!page.body.contains("name=\"users\""));
    let refused = caseworker
        .post(
            &format!("{record}/caseworkers"),
            &[
                ("csrf", &page.csrf()),
                ("users", "caseworker@shelter-north"),
            ],
        )
        .await;
    assert_eq!(refused.code.as_deref(), Some("FORBIDDEN"), "{refused:?}");
}

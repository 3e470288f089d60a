//! Sign-in through the identity provider, the day's work on a referral,
//! sign-out, and the refusals (CSRF, forged origin, wrong state, a session
//! ended server-side).

use crate::Harness;

#[tokio::test]
async fn a_caseworker_signs_in_with_the_provider_answers_a_referral_reads_the_survivor_and_signs_out()
 {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Amara")
        .await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;

    let mut browser = h.browser();
    let landed = browser
        .sign_in("clinic-east", "caseworker@clinic-east")
        .await;
    assert_eq!(landed.status, 303, "{landed:?}");
    assert_eq!(landed.location.as_deref(), Some("/referrals"));

    let inbox = browser.get("/referrals").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert!(
        inbox.body.contains("Caseworker of clinic-east"),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains(&format!("/referrals/{referral}")),
        "{}",
        inbox.body
    );
    assert!(inbox.body.contains("Waiting for an answer"));

    let page = browser.get(&format!("/referrals/{referral}")).await;
    assert!(page.body.contains("Accept"), "{}", page.body);
    let accepted = browser
        .post(
            &format!("/referrals/{referral}/answer"),
            &[("csrf", &page.csrf()), ("action", "accept")],
        )
        .await;
    assert_eq!(accepted.status, 303, "{accepted:?}");
    let page = browser.get(&format!("/referrals/{referral}")).await;
    assert!(
        page.body.contains("Your answer was recorded."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Mark completed"), "{}", page.body);

    // The referral shares identity and case for REFERRAL: the name shows,
    // contact details are withheld with the reason in words.
    let record = browser
        .get(&format!("/survivors/{survivor}?referral={referral}"))
        .await;
    assert_eq!(record.status, 200, "{}", record.body);
    assert!(record.body.contains("Amara"), "{}", record.body);
    assert!(
        record.body.contains("Read for: Referral"),
        "{}",
        record.body
    );
    assert!(
        record
            .body
            .contains("The survivor has not consented to share this with your agency."),
        "{}",
        record.body
    );

    // The answer went through the gateway as this caseworker.
    let events = h.federation.gateway_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.actor_user.as_deref() == Some("caseworker@clinic-east")),
        "no gateway entry names the console's caseworker"
    );

    let old_cookie = browser.cookie.clone();
    let inbox = browser.get("/referrals").await;
    let out = browser.post("/sign-out", &[("csrf", &inbox.csrf())]).await;
    assert_eq!(out.status, 303);
    let end_session = out.location.expect("end-session redirect");
    assert!(end_session.starts_with(&h.provider), "{end_session}");
    assert!(end_session.contains("id_token_hint="), "{end_session}");
    let back = browser.get(&end_session).await;
    assert_eq!(
        back.location.as_deref(),
        Some(format!("{}/", h.console).as_str())
    );

    browser.cookie = old_cookie;
    let after = browser.get("/referrals").await;
    assert_eq!(
        after.status, 303,
        "the ended session must not reach the inbox"
    );
    assert_eq!(after.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn forms_without_the_session_token_or_from_another_origin_and_callbacks_with_a_wrong_state_are_refused()
 {
    let h = Harness::start().await;
    let survivor = h.federation.register_survivor("shelter-north", "Bea").await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;
    let mut browser = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let page = browser.get(&format!("/referrals/{referral}")).await;
    let csrf = page.csrf();
    let path = format!("/referrals/{referral}/answer");

    let no_token = browser.post(&path, &[("action", "accept")]).await;
    assert_eq!(no_token.status, 403);
    assert_eq!(no_token.code.as_deref(), Some("CSRF_MISMATCH"));

    let elsewhere = browser
        .post_with(
            &path,
            &[("csrf", &csrf), ("action", "accept")],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(elsewhere.code.as_deref(), Some("CSRF_MISMATCH"));
    let cross_site = browser
        .post_with(
            &path,
            &[("csrf", &csrf), ("action", "accept")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.code.as_deref(), Some("CSRF_MISMATCH"));

    let decline_without_reason = browser
        .post(&path, &[("csrf", &csrf), ("action", "decline")])
        .await;
    assert_eq!(decline_without_reason.code.as_deref(), Some("BAD_REQUEST"));

    // Nothing above reached the node: the referral is still pending.
    let status = h
        .federation
        .answer_referral("clinic-east", "acceptReferral", &referral)
        .await;
    assert_eq!(status, "ACCEPTED");

    // A record ID carrying an encoded line break never reaches a handler
    // (nor a Location header).
    let odd = browser
        .post(
            "/survivors/x%0D%0ASet-Cookie:%20a=b/notes",
            &[("csrf", &csrf), ("category", "CASE"), ("body", "x")],
        )
        .await;
    assert_eq!(odd.status, 400);
    assert_eq!(odd.code.as_deref(), Some("BAD_REQUEST"));
    assert_eq!(
        browser.get("/referrals/%3Cscript%3E").await.code.as_deref(),
        Some("BAD_REQUEST")
    );

    // The language picker never redirects with a line break or off-site.
    let picked = browser
        .get("/language?lang=fr&back=%2Freferrals%0D%0ASet-Cookie%3A%20a%3Db")
        .await;
    assert_eq!(picked.status, 303);
    assert_eq!(picked.location.as_deref(), Some("/"));

    // A callback that does not carry the state this session sent.
    let mut other = h.browser();
    let start = other.get("/").await;
    let to_provider = other
        .post(
            "/sign-in",
            &[("csrf", &start.csrf()), ("agency", "clinic-east")],
        )
        .await;
    assert_eq!(to_provider.status, 303);
    let forged = other
        .get("/auth/callback?code=abc&state=not-the-state")
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(forged.code.as_deref(), Some("SIGN_IN_REFUSED"));
    // And one with no sign-in started at all.
    let mut fresh = h.browser();
    let stray = fresh.get("/auth/callback?code=abc&state=x").await;
    assert_eq!(stray.code.as_deref(), Some("SIGN_IN_REFUSED"));
}

#[tokio::test]
async fn a_session_ended_at_the_console_cannot_act_and_a_new_sign_in_gets_a_new_session() {
    let h = Harness::start().await;
    let mut browser = h.browser();
    let anonymous = {
        browser.get("/").await;
        browser.cookie.clone().expect("a session before sign-in")
    };
    browser
        .sign_in("shelter-north", "caseworker@shelter-north")
        .await;
    let signed_in = browser.cookie.clone().expect("session");
    assert_ne!(anonymous, signed_in, "sign-in must start a fresh session");

    assert_eq!(
        h.state
            .end_user_sessions("shelter-north", "caseworker@shelter-north")
            .await
            .unwrap(),
        1
    );
    let after = browser.get("/referrals").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn a_session_whose_access_token_expired_sends_the_caseworker_back_to_sign_in_with_session_expired()
 {
    // The development provider issues no refresh token: the session lasts
    // as long as its access token.
    let h = crate::Harness::start_with_token_ttl(
        crate::IdentityProvider::Development,
        exchange_console::config::SessionConfig::default(),
        std::time::Duration::from_secs(2),
    )
    .await;
    let mut browser = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    assert_eq!(browser.get("/referrals").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let expired = browser.get("/referrals").await;
    assert_eq!(expired.status, 303, "{expired:?}");
    assert_eq!(expired.location.as_deref(), Some("/"));
    assert_eq!(expired.code.as_deref(), Some("SESSION_EXPIRED"));
    let start = browser.get("/").await;
    assert!(
        start
            .body
            .contains("Your session ended. Please sign in again."),
        "{}",
        start.body
    );
}

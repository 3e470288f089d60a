//! Keeping a case from the console: the owner's caseworker proposes a care
//! plan version and records the survivor's witnessed agreement; the owner's
//! supervisor sees how long each part of the record is kept, places a legal
//! hold (an erasure is then refused) and lifts it; a caseworker is offered
//! no hold form and is refused one posted by hand; a partner sees neither
//! the retention nor the plan forms.

use exchange_test_kit::SHELTER as SHELTER_NORTH;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn the_owner_proposes_a_plan_records_its_agreement_and_a_supervisor_holds_and_lifts_the_record()
 {
    let h = Harness::start().await;
    let fed = &h.federation;
    let survivor = fed.register_survivor(SHELTER_NORTH, "Amara").await;
    let page_path = format!("/survivors/{survivor}");

    let mut caseworker = h
        .signed_in(SHELTER_NORTH, &format!("caseworker@{SHELTER_NORTH}"))
        .await;
    let page = caseworker.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Propose a new version of the care plan"));
    assert!(
        page.body.contains("How long this record is kept"),
        "{}",
        page.body
    );
    // A caseworker sees the retention but is offered no hold form.
    assert!(!page.body.contains("Place a legal hold"));
    let csrf = page.csrf();
    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .expect("format");
    let proposed = caseworker
        .post(
            &format!("/survivors/{survivor}/care-plan"),
            &[
                ("csrf", &csrf),
                ("goals", "Safe housing\r\n\r\nA work permit"),
                ("action_0", "Find a flat"),
                ("agency_0", SHELTER_NORTH),
                ("due_0", &due),
                ("action_1", ""),
                ("agency_1", SHELTER_NORTH),
                ("action_2", "Health check"),
                ("agency_2", "clinic-east"),
            ],
        )
        .await;
    assert_eq!(proposed.status, 303, "{proposed:?}");
    let page = caseworker.get(&page_path).await;
    assert!(
        page.body.contains("The new care plan version was proposed"),
        "{}",
        page.body
    );
    assert!(page.body.contains("not yet agreed by the survivor"));
    // The proposal form starts from the plan just proposed.
    assert!(
        page.body.contains("Safe housing\nA work permit</textarea>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"Health check\""));
    let plan = fed
        .gateway_gql(
            &fed.caseworker(SHELTER_NORTH),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { carePlan { version goals actions { description responsibleAgency } agreement { method witness } } } }",
            json!({ "id": survivor }),
        )
        .await;
    let plan = plan.data()["survivor"]["carePlan"].clone();
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["goals"], json!(["Safe housing", "A work permit"]));
    assert_eq!(
        plan["actions"],
        json!([{ "description": "Find a flat", "responsibleAgency": SHELTER_NORTH },
               { "description": "Health check", "responsibleAgency": "clinic-east" }])
    );
    assert_eq!(plan["agreement"], serde_json::Value::Null);

    // The agreement form names the version shown; no witness is refused.
    assert!(
        page.body.contains("Record the survivor&#39;s agreement"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let no_witness = caseworker
        .post(
            &format!("/survivors/{survivor}/care-plan/agreement"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("method", "WITNESSED_WRITTEN"),
            ],
        )
        .await;
    assert_eq!(
        no_witness.code.as_deref(),
        Some("BAD_REQUEST"),
        "{no_witness:?}"
    );
    let agreed = caseworker
        .post(
            &format!("/survivors/{survivor}/care-plan/agreement"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("method", "WITNESSED_WRITTEN"),
                ("witness", "Second caseworker"),
            ],
        )
        .await;
    assert_eq!(agreed.status, 303, "{agreed:?}");
    let page = caseworker.get(&page_path).await;
    assert!(
        page.body
            .contains("The survivor&#39;s agreement was recorded"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Record the survivor&#39;s agreement"));
    let plan = fed
        .gateway_gql(
            &fed.caseworker(SHELTER_NORTH),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { carePlan { agreement { method witness } } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        plan.data()["survivor"]["carePlan"]["agreement"],
        json!({ "method": "WITNESSED_WRITTEN", "witness": "Second caseworker" })
    );

    // A hold posted by hand by a caseworker is refused by the node.
    let refused = caseworker
        .post(
            &format!("/survivors/{survivor}/legal-hold"),
            &[("csrf", &csrf), ("reason", "Trial 2027/4")],
        )
        .await;
    assert_eq!(refused.code.as_deref(), Some("FORBIDDEN"), "{refused:?}");

    let mut supervisor = h
        .signed_in(SHELTER_NORTH, &format!("supervisor@{SHELTER_NORTH}"))
        .await;
    let page = supervisor.get(&page_path).await;
    assert!(page.body.contains("Place a legal hold"), "{}", page.body);
    let csrf = page.csrf();
    let no_reason = supervisor
        .post(
            &format!("/survivors/{survivor}/legal-hold"),
            &[("csrf", &csrf), ("reason", "  ")],
        )
        .await;
    assert_eq!(
        no_reason.code.as_deref(),
        Some("BAD_REQUEST"),
        "{no_reason:?}"
    );
    let held = supervisor
        .post(
            &format!("/survivors/{survivor}/legal-hold"),
            &[("csrf", &csrf), ("reason", "Witness in trial 2027/4")],
        )
        .await;
    assert_eq!(held.status, 303, "{held:?}");
    let page = supervisor.get(&page_path).await;
    assert!(
        page.body
            .contains("A legal hold keeps every part past its date: Witness in trial 2027/4."),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(
        "Placed by {SHELTER_NORTH}/supervisor@{SHELTER_NORTH}"
    )));
    assert!(page.body.contains("Lift the legal hold"));
    // Under the hold, an erasure through the gateway is a conflict.
    let erase = fed
        .gateway_gql(
            &fed.token(SHELTER_NORTH, &[exchange_schema::Role::Supervisor]),
            "CASE_MANAGEMENT",
            "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [CONTACT]) { erasedAt } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(erase.code(), "CONFLICT", "{}", erase.body);

    let csrf = page.csrf();
    let lifted = supervisor
        .post(
            &format!("/survivors/{survivor}/legal-hold/lift"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(lifted.status, 303, "{lifted:?}");
    let page = supervisor.get(&page_path).await;
    assert!(
        page.body.contains("The legal hold was lifted"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("A legal hold keeps every part"));
    assert!(page.body.contains("Place a legal hold"));

    // A partner with an accepted referral sees neither the retention nor
    // the owner's plan forms.
    let referral = fed.refer_accepted(&survivor, "clinic-east").await;
    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let partner = clinic
        .get(&format!("/survivors/{survivor}?referral={referral}"))
        .await;
    assert_eq!(partner.status, 200, "{}", partner.body);
    assert!(!partner.body.contains("How long this record is kept"));
    assert!(
        !partner
            .body
            .contains("Propose a new version of the care plan")
    );
}

/// The owner's caseworker closes the case with a reason from the list and
/// opens it again; a reason the page could not have sent is refused; a
/// partner is shown no case status and is refused a closing posted by hand.
#[tokio::test]
async fn the_owner_closes_a_case_with_its_reason_and_opens_it_again() {
    let h = Harness::start().await;
    let fed = &h.federation;
    let survivor = fed.register_survivor(SHELTER_NORTH, "Closing").await;
    let page_path = format!("/survivors/{survivor}");
    let mut caseworker = h
        .signed_in(SHELTER_NORTH, &format!("caseworker@{SHELTER_NORTH}"))
        .await;
    let page = caseworker.get(&page_path).await;
    assert!(page.body.contains("The case is open."), "{}", page.body);
    let csrf = page.csrf();
    let close = format!("/survivors/{survivor}/case/close");
    let bad = caseworker
        .post(&close, &[("csrf", &csrf), ("reason", "SOLVED")])
        .await;
    assert_eq!(bad.code.as_deref(), Some("BAD_REQUEST"), "{bad:?}");
    let closed = caseworker
        .post(&close, &[("csrf", &csrf), ("reason", "CONTACT_LOST")])
        .await;
    assert_eq!(closed.status, 303, "{closed:?}");
    let page = caseworker.get(&page_path).await;
    assert!(page.body.contains("The case is closed."), "{}", page.body);
    assert!(
        page.body.contains("The case is closed: Contact lost."),
        "{}",
        page.body
    );
    let reopened = caseworker
        .post(
            &format!("/survivors/{survivor}/case/reopen"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(reopened.status, 303, "{reopened:?}");
    let page = caseworker.get(&page_path).await;
    assert!(
        page.body.contains("The case is open again."),
        "{}",
        page.body
    );

    // A partner (an accepted referral) sees no status and may not close.
    fed.refer_accepted(&survivor, "clinic-east").await;
    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let page = clinic.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("Close the case"));
    let refused = clinic
        .post(&close, &[("csrf", &page.csrf()), ("reason", "GOALS_MET")])
        .await;
    assert_eq!(refused.code.as_deref(), Some("FORBIDDEN"), "{refused:?}");
}

//! The owner's consent forms and the partner's onward referral: a consent
//! recorded in the console makes the category appear for the partner; a
//! partner that accepted refers onward; a withdrawn consent hides the
//! category again; forms the page could not have sent are refused.

use crate::Harness;

#[tokio::test]
async fn consent_recorded_in_the_console_shows_the_category_to_the_partner_who_refers_onward_until_it_is_withdrawn()
 {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Chidi")
        .await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;
    let record_path = format!("/survivors/{survivor}?referral={referral}");

    let mut clinic = h.browser();
    clinic
        .sign_in("clinic-east", "caseworker@clinic-east")
        .await;
    let page = clinic.get(&format!("/referrals/{referral}")).await;
    clinic
        .post(
            &format!("/referrals/{referral}/answer"),
            &[("csrf", &page.csrf()), ("action", "accept")],
        )
        .await;
    let before = clinic.get(&record_path).await;
    assert!(!before.body.contains("invented note"));
    assert!(
        before
            .body
            .contains("Health</strong>: The survivor has not consented"),
        "{}",
        before.body
    );
    // Contact details never go to a clinic, whatever the consent: the
    // reason says the rules, not the survivor, withhold them.
    assert!(
        before
            .body
            .contains("Contact details</strong>: The exchange&#39;s rules"),
        "{}",
        before.body
    );
    // A partner sees no consent records and no consent form.
    assert!(!before.body.contains("Record a witnessed consent"));

    // The owner finds the survivor in its list and records a consent.
    let mut shelter = h.browser();
    shelter
        .sign_in("shelter-north", "caseworker@shelter-north")
        .await;
    let list = shelter.get("/survivors").await;
    assert!(
        list.body.contains(&format!("/survivors/{survivor}")),
        "{}",
        list.body
    );
    let own = shelter.get(&format!("/survivors/{survivor}")).await;
    assert!(
        own.body.contains("Read for: Case management"),
        "{}",
        own.body
    );
    assert!(own.body.contains("Record a witnessed consent"));
    let csrf = own.csrf();
    let recorded = shelter
        .post(
            &format!("/survivors/{survivor}/consents"),
            &[
                ("csrf", &csrf),
                ("grantee", "clinic-east"),
                ("category", "HEALTH"),
                ("purpose", "REFERRAL"),
                ("method", "WITNESSED_WRITTEN"),
                ("witness", "Second caseworker"),
            ],
        )
        .await;
    assert_eq!(recorded.status, 303, "{recorded:?}");
    shelter
        .post(
            &format!("/survivors/{survivor}/consents"),
            &[
                ("csrf", &csrf),
                ("grantee", "legal-aid-city"),
                ("category", "IDENTITY"),
                ("purpose", "REFERRAL"),
                ("method", "WITNESSED_VERBAL"),
                ("witness", "Second caseworker"),
            ],
        )
        .await;
    let own = shelter.get(&format!("/survivors/{survivor}")).await;
    assert!(
        own.body.contains("The consent was recorded."),
        "{}",
        own.body
    );

    let after = clinic.get(&record_path).await;
    assert!(after.body.contains("invented note"), "{}", after.body);
    assert!(!after.body.contains("Health</strong>"));

    // The clinic refers onward to legal aid.
    let onward = clinic
        .post(
            &format!("/survivors/{survivor}/referrals"),
            &[
                ("csrf", &after.csrf()),
                ("referral", &referral),
                ("to_agency", "legal-aid-city"),
                ("service", "LEGAL_AID"),
                ("urgency", "ROUTINE"),
                ("notes", "Needs advice on status"),
            ],
        )
        .await;
    assert_eq!(onward.status, 303, "{onward:?}");
    let outgoing = clinic.get("/referrals?direction=OUTGOING").await;
    assert!(
        outgoing.body.contains("to legal-aid-city"),
        "{}",
        outgoing.body
    );

    // The owner withdraws the clinic's health consent; it is hidden again.
    let own = shelter.get(&format!("/survivors/{survivor}")).await;
    let marker = format!("/survivors/{survivor}/consents/");
    let row = own
        .body
        .find("<td>Health</td>")
        .expect("the health grant's row");
    let start = own.body[row..].find(&marker).expect("its revoke form") + row + marker.len();
    let grant = own.body[start..]
        .split('/')
        .next()
        .expect("grant id")
        .to_owned();
    let revoked = shelter
        .post(
            &format!("/survivors/{survivor}/consents/{grant}/revoke"),
            &[("csrf", &own.csrf()), ("reason", "The survivor asked")],
        )
        .await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
    let hidden = clinic.get(&record_path).await;
    assert!(!hidden.body.contains("invented note"));
    assert!(
        hidden
            .body
            .contains("Health</strong>: The survivor withdrew their consent"),
        "{}",
        hidden.body
    );
}

#[tokio::test]
async fn a_partner_cannot_record_consent_and_a_reading_through_someone_elses_referral_is_refused() {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Dana")
        .await;
    let other = h.federation.register_survivor("shelter-north", "Eve").await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;
    let mut clinic = h.browser();
    clinic
        .sign_in("clinic-east", "caseworker@clinic-east")
        .await;
    let page = clinic.get(&format!("/referrals/{referral}")).await;
    // Even posting the owner's form by hand, the node refuses the partner.
    let refused = clinic
        .post(
            &format!("/survivors/{survivor}/consents"),
            &[
                ("csrf", &page.csrf()),
                ("grantee", "clinic-east"),
                ("category", "HEALTH"),
                ("purpose", "REFERRAL"),
                ("method", "WITNESSED_VERBAL"),
                ("witness", "Me"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.code.as_deref(), Some("FORBIDDEN"));
    // A referral about one survivor does not open another's record.
    let mismatched = clinic
        .get(&format!("/survivors/{other}?referral={referral}"))
        .await;
    assert_eq!(mismatched.code.as_deref(), Some("BAD_REQUEST"));
}

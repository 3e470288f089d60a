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

    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
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
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
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
    // The health grant's row: the last "Health" cell, as the grants
    // table comes after the retention table's.
    let row = own
        .body
        .rfind("<td>Health</td>")
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
    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
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

#[tokio::test]
async fn a_partner_adds_a_note_and_schedules_a_follow_up_it_then_finds_due_and_the_directory_filters_by_service()
 {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Ines")
        .await;
    let referral = h.federation.refer_accepted(&survivor, "clinic-east").await;
    let record = format!("/survivors/{survivor}?referral={referral}");

    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let page = clinic.get(&record).await;
    // The referral is for MEDICAL care: the clinic's work is HEALTH_CARE.
    assert!(
        page.body.contains("Work recorded for: Health care"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("No services recorded."),
        "CASE is shared: {}",
        page.body
    );
    let noted = clinic
        .post(
            &format!("/survivors/{survivor}/notes"),
            &[
                ("csrf", &page.csrf()),
                ("referral", &referral),
                ("category", "CASE"),
                ("body", "First appointment kept"),
            ],
        )
        .await;
    assert_eq!(noted.status, 303, "{noted:?}");
    let back = noted.location.clone().expect("back to the page");
    assert!(
        back.starts_with(&format!("/survivors/{survivor}?referral=")),
        "{back}"
    );
    let page = clinic.get(&record).await;
    assert!(page.body.contains("The note was added."), "{}", page.body);
    assert!(
        page.body.contains("First appointment kept"),
        "{}",
        page.body
    );

    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .expect("format");
    let scheduled = clinic
        .post(
            &format!("/survivors/{survivor}/follow-ups"),
            &[
                ("csrf", &page.csrf()),
                ("referral", &referral),
                ("kind", "APPOINTMENT"),
                ("due", &due),
            ],
        )
        .await;
    assert_eq!(scheduled.status, 303, "{scheduled:?}");
    let due_list = clinic.get("/follow-ups").await;
    assert!(due_list.body.contains("Appointment"), "{}", due_list.body);
    assert!(
        due_list.body.contains(&format!("/survivors/{survivor}")),
        "{}",
        due_list.body
    );
    assert!(clinic.get("/follow-ups?days=0").await.code.as_deref() == Some("BAD_REQUEST"));

    // The owner reads the partner's note on its own page.
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let own = shelter.get(&format!("/survivors/{survivor}")).await;
    assert!(own.body.contains("First appointment kept"), "{}", own.body);
    assert!(
        own.body.contains("caseworker@clinic-east (clinic-east)"),
        "{}",
        own.body
    );

    let legal = clinic.get("/agencies?service=LEGAL_AID").await;
    assert!(legal.body.contains("legal-aid-city"), "{}", legal.body);
    assert!(
        !legal.body.contains("<span class=\"hint\">(clinic-east)"),
        "{}",
        legal.body
    );
    let bogus = clinic.get("/agencies?service=TELEPORTATION").await;
    assert_eq!(bogus.code.as_deref(), Some("BAD_REQUEST"));
}

#[tokio::test]
async fn a_caseworker_registers_a_survivor_with_the_coded_intake_form_and_bad_codes_are_refused() {
    let h = Harness::start().await;
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let form = shelter.get("/survivors/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    let registered = shelter
        .post(
            "/survivors",
            &[
                ("csrf", &csrf),
                ("given_name", "Lina"),
                ("sex", "FEMALE"),
                ("nationality", "MD"),
                ("languages", "ro, ru"),
                ("risk_level", "HIGH"),
                ("exploitation", "FORCED_LABOUR"),
                ("need", "SHELTER"),
                ("functioning_walking", "SOME_DIFFICULTY"),
                ("phone", "+00 555"),
                ("region", "XZ-N"),
                ("statistics_opt_out", "yes"),
            ],
        )
        .await;
    assert_eq!(registered.status, 303, "{registered:?}");
    let location = registered.location.expect("the new record");
    // The region and the survivor's choice not to be counted reach the node.
    let survivor = location.trim_start_matches("/survivors/").to_owned();
    let node = h.federation.node("shelter-north");
    let mut conn = node.state.db.pool().acquire().await.expect("connection");
    assert!(
        agency_node::statistics::opted_out(&mut conn, survivor.split_once(':').expect("global").1)
            .await
            .expect("read"),
        "opted out at intake"
    );
    drop(conn);
    let case = h
        .federation
        .gateway_gql(
            &h.federation.caseworker("shelter-north"),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { case { regionOfIdentification } } }",
            serde_json::json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        case.data()["survivor"]["case"]["regionOfIdentification"],
        "XZ-N"
    );
    assert!(
        location.starts_with("/survivors/shelter-north:"),
        "{location}"
    );
    let page = shelter.get(&location).await;
    assert!(
        page.body.contains("The survivor was registered."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Lina") && page.body.contains("MD"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("ro, ru") && page.body.contains("+00 555"),
        "{}",
        page.body
    );

    // A code the form does not offer is refused by the console; one it
    // does not check (a country) by the node, with the node's code.
    let bad_code = shelter
        .post(
            "/survivors",
            &[
                ("csrf", &csrf),
                ("given_name", "X"),
                ("risk_level", "SEVERE"),
            ],
        )
        .await;
    assert_eq!(bad_code.code.as_deref(), Some("BAD_REQUEST"));
    let bad_country = shelter
        .post(
            "/survivors",
            &[
                ("csrf", &csrf),
                ("given_name", "X"),
                ("risk_level", "LOW"),
                ("nationality", "XQ"),
            ],
        )
        .await;
    assert_eq!(
        bad_country.code.as_deref(),
        Some("BAD_USER_INPUT"),
        "{bad_country:?}"
    );
    let bad_region = shelter
        .post(
            "/survivors",
            &[
                ("csrf", &csrf),
                ("given_name", "X"),
                ("risk_level", "LOW"),
                ("region", "Northern Plains"),
            ],
        )
        .await;
    assert_eq!(
        bad_region.code.as_deref(),
        Some("BAD_USER_INPUT"),
        "{bad_region:?}"
    );
    let list = shelter.get("/survivors").await;
    assert_eq!(
        list.body
            .matches("href=\"/survivors/shelter-north:")
            .count(),
        1,
        "{}",
        list.body
    );
}

#[tokio::test]
async fn the_owner_prints_a_consent_code_slip_in_the_survivors_language_and_the_code_opens_the_portal()
 {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Maya")
        .await;
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let page = shelter.get(&format!("/survivors/{survivor}")).await;
    let slip = shelter
        .post(
            &format!("/survivors/{survivor}/consent-code"),
            &[("csrf", &page.csrf()), ("slip_lang", "ar")],
        )
        .await;
    assert_eq!(slip.status, 200, "{slip:?}");
    assert!(
        slip.body.contains("lang=\"ar\" dir=\"rtl\""),
        "{}",
        slip.body
    );
    assert!(
        slip.body.contains("بوابة الموافقة الخاصة بك"),
        "{}",
        slip.body
    );
    let portal = format!("{}/", h.federation.node("shelter-north").portal);
    assert!(slip.body.contains(&portal), "{}", slip.body);
    assert!(slip.body.contains("<svg"), "a QR code: {}", slip.body);
    // The page around the slip stays in the caseworker's language.
    assert!(
        slip.body.contains("Back to the survivor&#39;s page"),
        "{}",
        slip.body
    );
    let marker = "id=\"consent-code\">";
    let start = slip.body.find(marker).expect("the code") + marker.len();
    let code = slip.body[start..]
        .split('<')
        .next()
        .expect("code")
        .trim()
        .to_owned();
    assert!(!code.is_empty());
    // Nothing about the code is kept: the survivor's page does not show it.
    assert!(
        !shelter
            .get(&format!("/survivors/{survivor}"))
            .await
            .body
            .contains(&code)
    );

    // The code signs the survivor in at the portal.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let start_page = client.get(&portal).send().await.expect("portal");
    let cookie = start_page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("portal session")
        .to_owned();
    let body = start_page.text().await.expect("body");
    let csrf_marker = "name=\"csrf\" value=\"";
    let at = body.find(csrf_marker).expect("csrf") + csrf_marker.len();
    let csrf = body[at..].split('"').next().expect("csrf").to_owned();
    let signed_in = client
        .post(format!("{portal}sign-in"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code.as_str()),
            ("pin", ""),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 303);
    assert_eq!(
        signed_in
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/pin")
    );

    // A slip in a language the portal does not speak is refused.
    let page = shelter.get(&format!("/survivors/{survivor}")).await;
    let refused = shelter
        .post(
            &format!("/survivors/{survivor}/consent-code"),
            &[("csrf", &page.csrf()), ("slip_lang", "tlh")],
        )
        .await;
    assert_eq!(refused.code.as_deref(), Some("BAD_REQUEST"));
}

#[tokio::test]
async fn a_partner_records_and_delivers_its_service_moves_its_plan_action_and_closes_its_follow_up()
{
    let h = Harness::start().await;
    let fed = &h.federation;
    let survivor = fed.register_survivor("shelter-north", "Omar").await;
    let referral = fed.refer_accepted(&survivor, "clinic-east").await;
    let plan = fed
        .gateway_gql(
            &fed.caseworker("shelter-north"),
            "CASE_MANAGEMENT",
            "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
            serde_json::json!({ "input": { "survivorId": survivor, "goals": ["Recover"],
                "actions": [{ "description": "First medical check", "responsibleAgency": "clinic-east" },
                            { "description": "Find housing", "responsibleAgency": "shelter-north" }] } }),
        )
        .await;
    assert_eq!(
        plan.data()["proposeCarePlan"]["version"],
        1,
        "{}",
        plan.body
    );
    let record = format!("/survivors/{survivor}?referral={referral}");

    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let page = clinic.get(&record).await;
    // Only the clinic's own plan action offers a status form.
    assert_eq!(
        page.body.matches("name=\"position\"").count(),
        1,
        "{}",
        page.body
    );
    let marker = "name=\"position\" value=\"";
    let at = page.body.find(marker).expect("position") + marker.len();
    let ours: i64 = page.body[at..]
        .split('"')
        .next()
        .expect("n")
        .parse()
        .expect("number");
    // The shelter's action comes after the clinic's in the plan.
    let theirs = (ours + 1).to_string();
    let ours = ours.to_string();
    let csrf = page.csrf();
    let recorded = clinic
        .post(
            &format!("/survivors/{survivor}/services"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("kind", "MEDICAL"),
                ("status", "PLANNED"),
            ],
        )
        .await;
    assert_eq!(recorded.status, 303, "{recorded:?}");
    let page = clinic.get(&record).await;
    assert!(
        page.body.contains("The service was recorded."),
        "{}",
        page.body
    );
    let marker = format!("/survivors/{survivor}/services/");
    let start = page.body.find(&marker).expect("the service's form") + marker.len();
    let service = page.body[start..].split('"').next().expect("id").to_owned();
    let delivered = clinic
        .post(
            &format!("/survivors/{survivor}/services/{service}"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("status", "DELIVERED"),
            ],
        )
        .await;
    assert_eq!(delivered.status, 303, "{delivered:?}");
    let page = clinic.get(&record).await;
    assert!(
        page.body.contains("The service was updated."),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<td>Medical care</td><td>clinic-east</td><td>Delivered"),
        "{}",
        page.body
    );
    // Backwards is refused by the node.
    let back = clinic
        .post(
            &format!("/survivors/{survivor}/services/{service}"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("status", "IN_PROGRESS"),
            ],
        )
        .await;
    assert_ne!(back.status, 303, "{back:?}");

    let moved = clinic
        .post(
            &format!("/survivors/{survivor}/plan-actions"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("version", "1"),
                ("position", &ours),
                ("status", "DONE"),
            ],
        )
        .await;
    assert_eq!(moved.status, 303, "{moved:?}");
    // The shelter's action is not the clinic's to move.
    let not_ours = clinic
        .post(
            &format!("/survivors/{survivor}/plan-actions"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("version", "1"),
                ("position", &theirs),
                ("status", "DONE"),
            ],
        )
        .await;
    assert!(
        matches!(not_ours.code.as_deref(), Some("FORBIDDEN" | "NOT_FOUND")),
        "{not_ours:?}"
    );
    let owner = fed
        .gateway_gql(
            &fed.caseworker("shelter-north"),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { carePlan { actions { responsibleAgency status } } } }",
            serde_json::json!({ "id": survivor }),
        )
        .await;
    let actions = owner.data()["survivor"]["carePlan"]["actions"].clone();
    assert_eq!(
        actions,
        serde_json::json!([{ "responsibleAgency": "clinic-east", "status": "DONE" },
                           { "responsibleAgency": "shelter-north", "status": "TO_DO" }]),
        "only the clinic's own action moved"
    );

    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .expect("format");
    clinic
        .post(
            &format!("/survivors/{survivor}/follow-ups"),
            &[
                ("csrf", &csrf),
                ("referral", &referral),
                ("kind", "PHONE_CALL"),
                ("due", &due),
            ],
        )
        .await;
    let page = clinic.get(&record).await;
    let marker = format!("/survivors/{survivor}/follow-ups/");
    let start = page.body.find(&marker).expect("the follow-up's close form") + marker.len();
    let follow_up = page.body[start..].split('/').next().expect("id").to_owned();
    let closed = clinic
        .post(
            &format!("/survivors/{survivor}/follow-ups/{follow_up}/close"),
            &[("csrf", &csrf), ("referral", &referral), ("status", "DONE")],
        )
        .await;
    assert_eq!(closed.status, 303, "{closed:?}");
    let page = clinic.get(&record).await;
    assert!(
        page.body.contains("The follow-up was closed."),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&marker),
        "no open follow-up left to close"
    );
    assert!(
        clinic
            .get("/follow-ups")
            .await
            .body
            .contains("No follow-ups due.")
    );
}

/// The console's metrics count requests by route template: a survivor's
/// page is `/survivors/{id}`, never the survivor's ID.
#[tokio::test]
async fn the_console_metrics_name_routes_never_the_survivor() {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Metrics")
        .await;
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let page = shelter.get(&format!("/survivors/{survivor}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = reqwest::get(format!("{}/metrics", h.metrics))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            "exchange_http_requests_total{route=\"/survivors/{id}\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    let local = survivor.split_once(':').expect("global ID").1;
    assert!(!text.contains(local), "the survivor's ID in the metrics");
    assert!(!text.contains("caseworker@"), "a user in the metrics");
}

/// The owning node cannot write its audit log: the survivor's page shows
/// nothing of the record, says so in plain words, and answers with the
/// stable code AUDIT_UNAVAILABLE.
#[tokio::test]
async fn a_node_that_cannot_log_the_access_shows_nothing_and_says_why() {
    let h = Harness::start().await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Unlogged-Name")
        .await;
    let mut shelter = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let before = shelter.get(&format!("/survivors/{survivor}")).await;
    assert!(before.body.contains("Unlogged-Name"), "{}", before.body);
    h.federation
        .node("shelter-north")
        .state
        .db
        .pool()
        .close()
        .await;
    let page = shelter.get(&format!("/survivors/{survivor}")).await;
    assert_eq!(page.status, 503, "{page:?}");
    assert_eq!(page.code.as_deref(), Some("AUDIT_UNAVAILABLE"));
    assert!(
        page.body
            .contains("cannot log the access right now, so nothing was shown"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Unlogged-Name"));
}

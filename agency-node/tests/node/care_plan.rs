//! The care plan: versions proposed by the owner's staff, the survivor's
//! agreement (in the portal after a confirmation step, or witnessed) set
//! once on the newest version only, a change the survivor asks for kept on
//! the version, actions moved on by the owner or the responsible partner,
//! and a partner without CASE consent seeing only its own actions. The
//! survivor's timeline in the portal shows the case's milestones.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::case_management::{make_partner, partner_under};
use crate::common::*;
use crate::portal::{Browser, issue_code, start};
use exchange_schema::AuditKind;
use reqwest::StatusCode;

const PROPOSE: &str = "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { \
    version complete goals actions { position responsibleAgency status } agreement { method } } }";

const PLAN: &str = "query($id: ID!) { survivor(id: $id) { carePlan { version complete goals \
    actions { position description responsibleAgency status } agreement { method recordedBy } \
    changeRequest { text } } carePlanVersions { version agreement { method } } } }";

const UPDATE_ACTION: &str = "mutation($id: ID!, $v: Int!, $p: Int!, $s: PlanActionStatus!) { \
    updateCarePlanAction(survivorId: $id, version: $v, position: $p, status: $s) { position status } }";

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&Rfc3339)
        .unwrap()
}

async fn propose(
    node: &TestNode,
    token: &str,
    survivor: &str,
    goals: Value,
    actions: Value,
) -> Gql {
    node.gql(
        Some(token),
        Some("CASE_MANAGEMENT"),
        PROPOSE,
        json!({ "input": { "survivorId": survivor, "goals": goals, "actions": actions } }),
    )
    .await
}

async fn plan(node: &TestNode, token: &str, purpose: &str, survivor: &str) -> Value {
    node.gql(Some(token), Some(purpose), PLAN, json!({ "id": survivor }))
        .await
        .data()["survivor"]
        .clone()
}

/// A plan from proposal to agreement, through the portal.
async fn a_care_plan_is_versioned_and_agreed_by_the_survivor_in_the_portal(backend: Backend) {
    let node = start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Planned").await;
    make_partner(&node, &survivor, LEGAL).await;
    // The clinic is a partner that was never given CASE.
    partner_under(
        &node,
        &survivor,
        CLINIC,
        &["IDENTITY"],
        &["REFERRAL", "HEALTH_CARE"],
    )
    .await;

    let actions = json!([
        { "description": "Apply for a residence permit", "responsibleAgency": LEGAL, "dueAt": in_days(30) },
        { "description": "Find a flat near the school", "responsibleAgency": OWNER },
        { "description": "Trauma counselling, weekly", "responsibleAgency": CLINIC },
    ]);
    let goals = json!(["Safe housing", "A residence permit"]);

    // Refusals first: nothing is written by any of them.
    let no_goals = propose(&node, &owner, &survivor, json!([]), actions.clone()).await;
    assert_eq!(no_goals.code(), "BAD_USER_INPUT");
    let unknown = propose(
        &node,
        &owner,
        &survivor,
        goals.clone(),
        json!([{ "description": "x", "responsibleAgency": "no-such-agency" }]),
    )
    .await;
    assert_eq!(unknown.code(), "BAD_USER_INPUT");
    let by_partner = propose(
        &node,
        &node.caseworker(LEGAL),
        &survivor,
        goals.clone(),
        actions.clone(),
    )
    .await;
    assert_eq!(by_partner.code(), "FORBIDDEN");
    assert_eq!(node.count("care_plans").await, 0);

    let v1 = propose(&node, &owner, &survivor, goals.clone(), actions.clone()).await;
    let p = &v1.data()["proposeCarePlan"];
    assert_eq!(p["version"], 1);
    assert_eq!(p["actions"][0]["status"], "TO_DO");
    assert!(p["agreement"].is_null());

    // The clinic sees only its own action, never the goals; audited.
    let clinic_view = plan(&node, &node.caseworker(CLINIC), "HEALTH_CARE", &survivor).await;
    let cp = &clinic_view["carePlan"];
    assert_eq!(cp["complete"], false);
    assert!(cp["goals"].is_null() && cp["changeRequest"].is_null());
    assert_eq!(cp["actions"].as_array().unwrap().len(), 1);
    assert_eq!(cp["actions"][0]["responsibleAgency"], CLINIC);
    assert!(clinic_view["carePlanVersions"].is_null());
    let last = node.audit_events().await.pop().unwrap();
    assert_eq!(last.reason, "CARE_PLAN_ACTIONS_ASSIGNED");
    // Legal aid, with CASE consent, sees the whole plan.
    let legal_view = plan(
        &node,
        &node.caseworker(LEGAL),
        "LEGAL_ASSISTANCE",
        &survivor,
    )
    .await;
    assert_eq!(legal_view["carePlan"]["complete"], true);
    assert_eq!(legal_view["carePlan"]["goals"], goals);
    // An agency with no part in the case sees nothing.
    let police = node.caseworker(POLICE);
    let stranger = node
        .gql(
            Some(&police),
            Some("INVESTIGATION"),
            PLAN,
            json!({ "id": survivor }),
        )
        .await;
    assert!(stranger.data()["survivor"]["carePlan"].is_null());

    // The survivor reads the plan and asks for a change.
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "135790").await;
    let home = browser.get("/home").await;
    assert!(home.body.contains("data-version=\"1\""), "{}", home.body);
    assert!(home.body.contains("Safe housing") && home.body.contains("id=\"plan-waiting\""));
    let csrf = home.csrf();
    let empty = browser
        .post(
            "/plan/change",
            &[("csrf", &csrf), ("version", "1"), ("change", "  ")],
        )
        .await;
    assert_eq!(empty.error_code(), "BAD_USER_INPUT");
    let asked = browser
        .post(
            "/plan/change",
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("change", "I would rather live near my sister"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    let owner_view = plan(&node, &owner, "CASE_MANAGEMENT", &survivor).await;
    assert_eq!(
        owner_view["carePlan"]["changeRequest"]["text"],
        "I would rather live near my sister"
    );

    // A new version answers it; agreeing to the old one is refused.
    let v2 = propose(
        &node,
        &owner,
        &survivor,
        json!(["Safe housing near family", "A residence permit"]),
        actions,
    )
    .await;
    assert_eq!(v2.data()["proposeCarePlan"]["version"], 2);
    let home = browser.get("/home").await;
    let csrf = home.csrf();
    let stale = browser
        .post("/plan/agree", &[("csrf", &csrf), ("version", "1")])
        .await;
    assert_eq!(stale.error_code(), "CONFLICT");
    let review = browser
        .post("/plan/agree", &[("csrf", &csrf), ("version", "2")])
        .await;
    assert_eq!(review.status, StatusCode::OK);
    assert!(
        review.body.contains("Safe housing near family")
            && review.body.contains("/plan/agree/confirm")
    );
    assert_eq!(
        node.audit_events()
            .await
            .iter()
            .filter(|e| e.kind == AuditKind::CarePlanAgreed)
            .count(),
        0,
        "the review step writes nothing"
    );
    let agreed = browser
        .post("/plan/agree/confirm", &[("csrf", &csrf), ("version", "2")])
        .await;
    assert_eq!(agreed.status, StatusCode::OK, "{}", agreed.body);
    let again = browser
        .post("/plan/agree/confirm", &[("csrf", &csrf), ("version", "2")])
        .await;
    assert_eq!(again.error_code(), "CONFLICT");
    let forged = browser
        .post(
            "/plan/agree/confirm",
            &[("csrf", "forged"), ("version", "2")],
        )
        .await;
    assert_eq!(forged.error_code(), "CSRF_TOKEN_INVALID");
    let home = browser.get("/home").await;
    assert!(home.body.contains("id=\"plan-agreed\""));

    let owner_view = plan(&node, &owner, "CASE_MANAGEMENT", &survivor).await;
    assert_eq!(owner_view["carePlan"]["agreement"]["method"], "PORTAL");
    assert_eq!(
        owner_view["carePlan"]["agreement"]["recordedBy"],
        "survivor"
    );
    let versions = owner_view["carePlanVersions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert!(
        versions[1]["agreement"].is_null(),
        "version 1 was never agreed to"
    );
    let witnessed = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($id: ID!) { recordCarePlanAgreement(survivorId: $id, version: 2, method: WITNESSED_VERBAL) { version } }",
             json!({ "id": survivor }))
        .await;
    assert_eq!(witnessed.code(), "CONFLICT");
    let portal_method = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($id: ID!) { recordCarePlanAgreement(survivorId: $id, version: 2, method: PORTAL) { version } }",
             json!({ "id": survivor }))
        .await;
    assert_eq!(portal_method.code(), "BAD_USER_INPUT");

    // Actions move on: the responsible partner its own, forward only, on
    // the newest version; another agency's action is not found for it.
    let legal = node.caseworker(LEGAL);
    let step = |token: String, version: i64, position: i64, status: &'static str| {
        let node = &node;
        let survivor = survivor.clone();
        async move {
            node.gql(
                Some(&token),
                Some("CASE_MANAGEMENT"),
                UPDATE_ACTION,
                json!({ "id": survivor, "v": version, "p": position, "s": status }),
            )
            .await
        }
    };
    let moved = step(legal.clone(), 2, 1, "IN_PROGRESS").await;
    assert_eq!(
        moved.data()["updateCarePlanAction"]["status"],
        "IN_PROGRESS"
    );
    assert_eq!(step(legal.clone(), 2, 2, "DONE").await.code(), "NOT_FOUND");
    assert_eq!(step(legal.clone(), 1, 1, "DONE").await.code(), "CONFLICT");
    assert_eq!(step(legal.clone(), 2, 1, "TO_DO").await.code(), "CONFLICT");
    assert_eq!(
        step(owner.clone(), 2, 2, "DONE").await.data()["updateCarePlanAction"]["status"],
        "DONE"
    );

    // The survivor's timeline: referrals, the plan versions, agreement.
    let home = browser.get("/home").await;
    assert!(home.body.contains("data-kind=\"plan\""));
    assert!(home.body.contains("You agreed to version"), "{}", home.body);
    assert!(home.body.contains("agreed to help you with"));

    let events = node.audit_events().await;
    let reasons = |kind: AuditKind| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.reason.clone())
            .collect()
    };
    assert_eq!(
        reasons(AuditKind::CarePlanProposed),
        vec!["VERSION:1", "VERSION:2"]
    );
    assert_eq!(reasons(AuditKind::CarePlanAgreed), vec!["PORTAL"]);
    assert_eq!(
        reasons(AuditKind::CarePlanChangeRequested),
        vec!["CHANGE_REQUESTED"]
    );
    assert_eq!(
        reasons(AuditKind::CarePlanActionUpdated),
        vec!["TO_DO->IN_PROGRESS", "TO_DO->DONE"]
    );
    let log = serde_json::to_string(&events).unwrap();
    assert!(
        !log.contains("near my sister"),
        "the survivor's words stay with the plan"
    );
}

/// Staff record a witnessed agreement once; the survivor's portal then
/// shows it as agreed; follow-ups the survivor attends are on the timeline
/// (internal case reviews are not).
async fn a_witnessed_agreement_and_appointments_reach_the_timeline(backend: Backend) {
    let node = start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Witnessed").await;
    let none = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($id: ID!) { recordCarePlanAgreement(survivorId: $id, version: 1, method: WITNESSED_WRITTEN) { version } }",
             json!({ "id": survivor }))
        .await;
    assert_eq!(none.code(), "NOT_FOUND");
    propose(&node, &owner, &survivor, json!(["Stay safe"]), json!([]))
        .await
        .data();
    let agreed = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($id: ID!) { recordCarePlanAgreement(survivorId: $id, version: 1, method: WITNESSED_WRITTEN, witness: \"A. Witness\") { agreement { method witness recordedBy } } }",
             json!({ "id": survivor }))
        .await;
    let a = &agreed.data()["recordCarePlanAgreement"]["agreement"];
    assert_eq!(a["method"], "WITNESSED_WRITTEN");
    assert_eq!(a["witness"], "A. Witness");
    assert!(a["recordedBy"].as_str().unwrap().starts_with(OWNER));

    let schedule =
        "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }";
    for kind in ["COURT_DATE", "CASE_REVIEW"] {
        node.gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            schedule,
            json!({ "input": { "survivorId": survivor, "kind": kind, "dueAt": in_days(10) } }),
        )
        .await
        .id("scheduleFollowUp");
    }
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "975310").await;
    let home = browser.get("/home").await;
    assert!(home.body.contains("id=\"plan-agreed\""));
    assert!(
        !home.body.contains("id=\"plan-agree\""),
        "no agree button once agreed"
    );
    assert!(home.body.contains("Court hearing"), "{}", home.body);
    assert_eq!(
        home.body.matches("data-kind=\"follow-up\"").count(),
        1,
        "case reviews are internal"
    );
    assert!(home.body.contains("class=\"milestone upcoming\""));
    // In Spanish too.
    let es = browser.get("/home?lang=es").await;
    assert!(es.body.contains("Audiencia en el tribunal"), "{}", es.body);
}

on_both_backends!(
    a_care_plan_is_versioned_and_agreed_by_the_survivor_in_the_portal,
    a_witnessed_agreement_and_appointments_reach_the_timeline,
);

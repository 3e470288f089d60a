//! The notification outbox and feed at a node: each change that tells
//! another agency something queues its notification in the change's own
//! transaction (a refused change queues nothing); the feed gives each
//! agency only its own, in order, kinds and global IDs only; follow-ups
//! falling due are queued once, at scheduling or by the sweep, audited.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::case_management::make_partner;
use crate::common::*;
use exchange_schema::{AuditKind, Role};

const FEED: &str = "query($since: DateTime, $first: Int, $after: String) { notifications(since: $since, \
    first: $first, after: $after) { edges { cursor node { id kind subjectId survivorId createdAt } } \
    pageInfo { hasNextPage endCursor } } }";

async fn feed(node: &TestNode, agency: &str, variables: Value) -> Vec<Value> {
    let answer = node
        .gql(
            Some(&node.caseworker(agency)),
            Some("CASE_MANAGEMENT"),
            FEED,
            variables,
        )
        .await;
    answer.data()["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn kinds(list: &[Value]) -> Vec<&str> {
    list.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

fn in_hours(hours: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&Rfc3339)
        .unwrap()
}

async fn each_agency_is_told_what_concerns_it_in_order(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Told").await;

    // A refused referral (no consent) queues nothing.
    let refused = node
        .gql(Some(&node.caseworker(OWNER)), Some("REFERRAL"),
             "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
             json!({ "input": { "survivorId": survivor, "toAgency": CLINIC, "service": "MEDICAL", "urgency": "URGENT" } }))
        .await;
    assert_eq!(refused.code(), "CONSENT_REQUIRED");
    assert_eq!(node.count("notifications").await, 0);

    // Legal aid is sent a referral and accepts it: each side is told.
    let referral = make_partner(&node, &survivor, LEGAL).await;
    let legal = feed(&node, LEGAL, json!({})).await;
    assert_eq!(kinds(&legal), vec!["REFERRAL_RECEIVED"]);
    assert_eq!(legal[0]["subjectId"], referral.as_str());
    assert_eq!(legal[0]["survivorId"], survivor.as_str());
    let owner = feed(&node, OWNER, json!({})).await;
    assert_eq!(kinds(&owner), vec!["REFERRAL_ANSWERED"]);
    assert!(
        feed(&node, CLINIC, json!({})).await.is_empty(),
        "nothing for a bystander"
    );

    // A follow-up due in two hours is told at once; one in two days is not.
    let schedule =
        "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }";
    let soon = node
        .gql(Some(&node.caseworker(OWNER)), Some("CASE_MANAGEMENT"), schedule,
             json!({ "input": { "survivorId": survivor, "kind": "COURT_DATE", "dueAt": in_hours(2), "assignedAgency": LEGAL } }))
        .await
        .id("scheduleFollowUp");
    let later = node
        .gql(Some(&node.caseworker(OWNER)), Some("CASE_MANAGEMENT"), schedule,
             json!({ "input": { "survivorId": survivor, "kind": "APPOINTMENT", "dueAt": in_hours(48), "assignedAgency": LEGAL } }))
        .await
        .id("scheduleFollowUp");
    let legal = feed(&node, LEGAL, json!({})).await;
    assert_eq!(kinds(&legal), vec!["REFERRAL_RECEIVED", "FOLLOW_UP_DUE"]);
    assert_eq!(legal[1]["subjectId"], soon.as_str());

    // Time passes (the later one moved closer); the sweep tells it once.
    sqlx::query("UPDATE follow_ups SET due_at = $1 WHERE id = $2")
        .bind(exchange_service::db::to_ms(
            OffsetDateTime::now_utc() + time::Duration::hours(3),
        ))
        .bind(later.split(':').nth(1).unwrap())
        .execute(node.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        agency_node::notifications::sweep_due(&node.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        agency_node::notifications::sweep_due(&node.state)
            .await
            .unwrap(),
        0
    );
    let swept = node.audit_events().await.pop().unwrap();
    assert_eq!(
        (swept.kind, swept.reason.as_str()),
        (AuditKind::FollowUpRecorded, "DUE_NOTIFIED")
    );

    // The survivor agrees to a plan (witnessed) and a shelter supervisor
    // breaks glass: the owner is told of both.
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("CASE_MANAGEMENT"),
        "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
        json!({ "input": { "survivorId": survivor, "goals": ["g"], "actions": [] } }),
    )
    .await
    .data();
    node.gql(Some(&node.caseworker(OWNER)), Some("CASE_MANAGEMENT"),
             "mutation($id: ID!) { recordCarePlanAgreement(survivorId: $id, version: 1, method: WITNESSED_VERBAL) { version } }",
             json!({ "id": survivor }))
        .await
        .data();
    let opened = crate::break_glass::open(
        &node,
        &node.token(SHELTER, &[Role::Supervisor]),
        &survivor,
        "Survivor missing after a threat; police asked where she was placed",
    )
    .await;
    opened.data();
    // An emergency read under that window tells the owner too.
    let read = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(node.token(SHELTER, &[Role::Supervisor]))
        .header("x-exchange-purpose", "EMERGENCY")
        .header(
            exchange_schema::JUSTIFICATION_HEADER,
            "Survivor missing after a threat; police asked where she was placed",
        )
        .json(&json!({ "query": "query($id: ID!) { survivor(id: $id) { identity { givenName } breakGlass } }",
                       "variables": { "id": survivor } }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(read["data"]["survivor"]["breakGlass"], true, "{read}");
    let owner = feed(&node, OWNER, json!({})).await;
    assert_eq!(
        kinds(&owner),
        vec![
            "REFERRAL_ANSWERED",
            "CARE_PLAN_AGREED",
            "BREAK_GLASS_OPENED",
            "BREAK_GLASS_READ"
        ]
    );
    assert_eq!(owner[3]["subjectId"], survivor.as_str());

    // Paged in order with the cursor, and `since` leaves older ones out.
    let first = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("CASE_MANAGEMENT"),
            FEED,
            json!({ "first": 1 }),
        )
        .await;
    let after = first.data()["notifications"]["pageInfo"]["endCursor"].clone();
    let rest = feed(&node, LEGAL, json!({ "after": after })).await;
    assert_eq!(kinds(&rest), vec!["FOLLOW_UP_DUE", "FOLLOW_UP_DUE"]);
    assert!(
        feed(&node, LEGAL, json!({ "since": in_hours(1) }))
            .await
            .is_empty()
    );

    // Caseworkers and supervisors only; every page with any is audited;
    // no notification holds record contents.
    let auditor = node
        .gql(
            Some(&node.token(LEGAL, &[Role::Auditor])),
            Some("AUDIT"),
            FEED,
            json!({}),
        )
        .await;
    assert_eq!(auditor.code(), "FORBIDDEN");
    let reads = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.reason == "NOTIFICATIONS")
        .count();
    assert!(reads >= 5, "{reads}");
    use sqlx::Row as _;
    let stored: Vec<String> =
        sqlx::query("SELECT kind, subject_id, survivor_id FROM notifications")
            .fetch_all(node.state.db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}{}{:?}",
                    r.get::<String, _>("kind"),
                    r.get::<String, _>("subject_id"),
                    r.get::<Option<String>, _>("survivor_id")
                )
            })
            .collect();
    assert!(stored.iter().all(|s| !s.contains("Told")), "{stored:?}");
}

on_both_backends!(each_agency_is_told_what_concerns_it_in_order);

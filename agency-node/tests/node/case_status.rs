//! Closing a case and opening it again: the owning agency's caseworkers
//! close a survivor's case with a coded reason and reopen it; a case is
//! not closed twice nor reopened while open (CONFLICT, audited); another
//! agency's staff and an auditor may do neither; every change is an audit
//! entry naming the step, every read of the status is audited; and the
//! statistics count each closing in its quarter by reason, leaving out a
//! survivor who opted out.

use exchange_schema::statistics::Period;
use exchange_schema::{AuditKind, Role};
use serde_json::{Value, json};

use crate::common::{Backend, LEGAL, OWNER, TestNode, full_survivor_input, on_both_backends};

on_both_backends!(
    the_owner_closes_and_reopens_a_case_and_each_closing_is_counted_by_reason,
    only_the_owners_staff_close_a_case,
);

const STATUS: &str = "query($id: ID!) { caseStatus(survivorId: $id) { open closures { reason closedBy reopenedAt } } }";
const CLOSE: &str = "mutation($id: ID!, $reason: CaseClosureReason!) { closeCase(survivorId: $id, reason: $reason) { open closures { reason } } }";
const REOPEN: &str = "mutation($id: ID!) { reopenCase(survivorId: $id) { open } }";

async fn gql(
    node: &TestNode,
    token: &str,
    query: &str,
    variables: Value,
) -> exchange_test_kit::Gql {
    node.gql(Some(token), Some("CASE_MANAGEMENT"), query, variables)
        .await
}

async fn the_owner_closes_and_reopens_a_case_and_each_closing_is_counted_by_reason(
    backend: Backend,
) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Closing").await;
    let id = json!({ "id": survivor });

    let status = gql(&node, &owner, STATUS, id.clone()).await;
    assert_eq!(
        status.data()["caseStatus"],
        json!({ "open": true, "closures": [] })
    );
    let closed = gql(
        &node,
        &owner,
        CLOSE,
        json!({ "id": survivor, "reason": "GOALS_MET" }),
    )
    .await;
    assert_eq!(closed.data()["closeCase"]["open"], false);
    let again = gql(
        &node,
        &owner,
        CLOSE,
        json!({ "id": survivor, "reason": "OTHER" }),
    )
    .await;
    assert_eq!(again.code(), "CONFLICT", "{:?}", again.body);
    let reopened = gql(&node, &owner, REOPEN, id.clone()).await;
    assert_eq!(reopened.data()["reopenCase"]["open"], true);
    let twice = gql(&node, &owner, REOPEN, id.clone()).await;
    assert_eq!(twice.code(), "CONFLICT", "{:?}", twice.body);
    gql(
        &node,
        &owner,
        CLOSE,
        json!({ "id": survivor, "reason": "CONTACT_LOST" }),
    )
    .await
    .data();
    let status = gql(&node, &owner, STATUS, id.clone()).await;
    let status = &status.data()["caseStatus"];
    assert_eq!(status["open"], false);
    let closures = status["closures"].as_array().unwrap();
    assert_eq!(closures.len(), 2);
    assert_eq!(closures[0]["reason"], "GOALS_MET");
    assert!(closures[0]["reopenedAt"].is_string());
    assert_eq!(closures[1]["reason"], "CONTACT_LOST");
    assert!(closures[1]["reopenedAt"].is_null());
    assert!(
        closures[1]["closedBy"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{OWNER}/"))
    );

    // Each step is an entry; each conflict a denial; each read a disclosure.
    let events = node.audit_events().await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == AuditKind::CaseStatusChanged)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        steps,
        ["CLOSED:GOALS_MET", "REOPENED", "CLOSED:CONTACT_LOST"]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == AuditKind::Disclosure && e.reason == "CASE_STATUS")
            .count(),
        2
    );
    assert!(
        events
            .iter()
            .filter(|e| e.kind == AuditKind::Denial)
            .count()
            >= 2
    );

    // A survivor who opted out of statistics: their closing is not counted.
    let mut input = full_survivor_input("Uncounted");
    input["statisticsOptOut"] = json!(true);
    let uncounted = gql(
        &node,
        &owner,
        exchange_test_kit::survivors::REGISTER_SURVIVOR,
        json!({ "input": input }),
    )
    .await
    .id("registerSurvivor");
    gql(
        &node,
        &owner,
        CLOSE,
        json!({ "id": uncounted, "reason": "GOALS_MET" }),
    )
    .await
    .data();

    // Counted in the quarter they were closed in, by reason.
    let quarter = {
        let now = time::OffsetDateTime::now_utc();
        Period::of(Period::of(now).start() - time::Duration::days(1))
    };
    let at = (quarter.start() + time::Duration::days(3)).unix_timestamp() * 1000;
    sqlx::query("UPDATE case_closures SET closed_at = $1")
        .bind(at)
        .execute(node.state.db.pool())
        .await
        .unwrap();
    let counts = node
        .gql(
            Some(&node.token("oversight-board", &[Role::Statistician])),
            Some("STATISTICS"),
            "query($period: String!) { statisticsCounts(period: $period, tables: [\"cases-closed-by-reason\"]) \
             { table cells { key count } } }",
            json!({ "period": quarter.to_string() }),
        )
        .await;
    let cells = &counts.data()["statisticsCounts"][0]["cells"];
    let mut got: Vec<(String, i64)> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"][0].as_str().unwrap().to_owned(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("CONTACT_LOST".to_owned(), 1), ("GOALS_MET".to_owned(), 1)]
    );
}

async fn only_the_owners_staff_close_a_case(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Not-Theirs").await;
    let close = json!({ "id": survivor, "reason": "GOALS_MET" });
    for (token, purpose) in [
        (node.caseworker(LEGAL), "CASE_MANAGEMENT"),
        (node.token(OWNER, &[Role::Auditor]), "CASE_MANAGEMENT"),
    ] {
        let refused = node
            .gql(Some(&token), Some(purpose), CLOSE, close.clone())
            .await;
        assert!(
            ["FORBIDDEN", "NOT_FOUND"].contains(&refused.code()),
            "{:?}",
            refused.body
        );
        let read = node
            .gql(
                Some(&token),
                Some(purpose),
                STATUS,
                json!({ "id": survivor }),
            )
            .await;
        assert!(
            ["FORBIDDEN", "NOT_FOUND"].contains(&read.code()),
            "{:?}",
            read.body
        );
    }
    let status = gql(
        &node,
        &node.caseworker(OWNER),
        STATUS,
        json!({ "id": survivor }),
    )
    .await;
    assert_eq!(status.data()["caseStatus"]["open"], true);
}

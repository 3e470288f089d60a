//! Idempotent mutations through the gateway: the gateway checks the
//! `Idempotency-Key` as the nodes do and passes it on to the owner node,
//! which makes the change once however often the client retries.

use exchange_schema::AuditKind;
use exchange_test_kit::{Gql, SHELTER, TestFederation, survivor_input};
use serde_json::{Value, json};

const REGISTER: &str =
    "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }";

async fn through_gateway(fed: &TestFederation, keys: &[&str], given_name: &str) -> Gql {
    let mut request = fed
        .client
        .post(format!("{}/graphql", fed.gateway_base))
        .bearer_auth(fed.caseworker(SHELTER))
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .json(&json!({ "query": REGISTER, "variables": { "input": survivor_input(given_name) } }));
    for key in keys {
        request = request.header("Idempotency-Key", *key);
    }
    Gql::read(request.send().await.expect("request sent")).await
}

async fn survivors_at(fed: &TestFederation, agency: &str) -> i64 {
    use sqlx::Row as _;
    sqlx::query("SELECT COUNT(*) AS n FROM survivors")
        .fetch_one(fed.node(agency).state.db.pool())
        .await
        .expect("count")
        .get::<i64, _>("n")
}

/// A client's retry through the gateway registers the survivor once and
/// answers with the first ID; the same key with another body is refused
/// with IDEMPOTENCY_KEY_REUSED; a malformed key never reaches a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_through_the_gateway_registers_the_survivor_once() {
    let fed = TestFederation::start().await;
    let first = through_gateway(&fed, &["\"gw-retry\""], "Gateway").await;
    let id: Value = first.data()["registerSurvivor"]["id"].clone();
    assert!(id.is_string(), "{first:?}");
    let again = through_gateway(&fed, &["\"gw-retry\""], "Gateway").await;
    assert_eq!(again.data()["registerSurvivor"]["id"], id);
    assert_eq!(survivors_at(&fed, SHELTER).await, 1);
    let registered = fed
        .node(SHELTER)
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == AuditKind::SurvivorRegistered)
        .count();
    assert_eq!(registered, 1, "the change is audited once");

    let other = through_gateway(&fed, &["\"gw-retry\""], "Someone else").await;
    assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED", "{other:?}");

    let malformed = through_gateway(&fed, &["gw-retry"], "Gateway").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.code(), "BAD_USER_INPUT");
    assert_eq!(survivors_at(&fed, SHELTER).await, 1);
}

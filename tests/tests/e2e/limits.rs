//! The operation limits hold the same at the gateway and at every node
//! (`exchange_schema::limits`): what the gateway accepts and forwards, the
//! nodes accept; what tools send to introspect, both answer.

use exchange_test_kit::{CLINIC, SHELTER, TestFederation};
use serde_json::json;

/// The standard introspection query of GraphQL tools: graphql-js
/// `getIntrospectionQuery()` with its default options, as GraphiQL sends it.
const INTROSPECTION_QUERY: &str =
    include_str!("../../../schema/fixtures/graphql-js-introspection-query.graphql");

/// The exact query GraphiQL, Apollo Sandbox, Postman and graphql-codegen
/// send (15 deep, which the gateway used to refuse as "nested 15 deep; at
/// most 12") is answered by the gateway and by a node reached directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_introspection_query_is_answered_by_the_gateway_and_a_node() {
    let fed = TestFederation::start().await;
    let token = fed.caseworker(CLINIC);
    let via_gateway = fed
        .gateway_gql(&token, "CASE_MANAGEMENT", INTROSPECTION_QUERY, json!({}))
        .await;
    let direct = fed
        .node_gql(
            SHELTER,
            &token,
            "CASE_MANAGEMENT",
            INTROSPECTION_QUERY,
            json!({}),
        )
        .await;
    for (who, answer) in [("gateway", &via_gateway), ("node", &direct)] {
        let schema = &answer.data()["__schema"];
        assert_eq!(
            schema["queryType"]["name"], "Query",
            "{who}: {}",
            answer.body
        );
        let types = schema["types"].as_array().expect("types");
        assert!(
            types.iter().any(|t| t["name"] == "Survivor"),
            "{who}: {}",
            answer.body
        );
    }
}

/// A scattered operation at the alias limit is answered by every node: the
/// merge keys the gateway adds to what it forwards (six more aliases) are
/// not counted against the node's limit, which is the gateway's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scattered_operation_at_the_alias_limit_is_answered_by_every_node() {
    let fed = TestFederation::start().await;
    let aliases: Vec<String> = (0..30).map(|i| format!("n{i}: node {{ id }}")).collect();
    let query = format!(
        "{{ referrals(first: 2) {{ edges {{ {} }} }} }}",
        aliases.join(" ")
    );
    let answer = fed
        .gateway_gql(&fed.caseworker(CLINIC), "REFERRAL", &query, json!({}))
        .await;
    assert!(
        answer.data()["referrals"]["edges"].is_array(),
        "{}",
        answer.body
    );
}

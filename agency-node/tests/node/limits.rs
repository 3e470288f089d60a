//! The node holds every operation to the federation's limits itself
//! (`exchange_schema::limits`, the gateway's implementation), before
//! async-graphql parses or runs anything of it: a member agency with a
//! client certificate can reach the node without the gateway.

use serde_json::json;

use crate::common::*;

/// The standard introspection query of GraphQL tools: graphql-js
/// `getIntrospectionQuery()` with its default options, as GraphiQL sends it.
const INTROSPECTION_QUERY: &str =
    include_str!("../../../schema/fixtures/graphql-js-introspection-query.graphql");

/// `count` aliases of `survivor(id:)`, each a disclosure with its own audit
/// entry if the node answered them.
fn survivor_aliases(count: usize) -> String {
    format!(
        "query($id: ID!) {{ {} }}",
        (0..count)
            .map(|i| format!("a{i}: survivor(id: $id) {{ id identity {{ givenName }} }}"))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Issue 16's operation: 24 fragments, each spreading the previous one
/// twice (about 1 KB; 2^24 fields once expanded).
fn fragment_fan_out() -> String {
    let mut text = String::from("{ agency { ...F0 } }\n");
    for i in 0..24 {
        text.push_str(&format!(
            "fragment F{i} on NodeAgency {{ id ...F{next} ...F{next} }}\n",
            next = i + 1
        ));
    }
    text.push_str("fragment F24 on NodeAgency { id }\n");
    text
}

/// A thousand aliases of a survivor's record (issue 16: answered with a
/// thousand disclosures and a thousand audit entries, flooding the
/// survivor's access history) are refused as too complex, and so are forty
/// (within the token limit, over the alias limit): nothing is disclosed and
/// no audit entry is written.
async fn survivor_aliases_are_refused_without_an_audit_entry(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Aliased").await;
    let owner = node.caseworker(OWNER);
    let entries_before = node.audit_events().await.len();
    for count in [1000, 40] {
        let refused = node
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                &survivor_aliases(count),
                json!({ "id": survivor }),
            )
            .await;
        assert_eq!(refused.status, 400, "{count} aliases: {}", refused.body);
        assert_eq!(
            refused.code(),
            "OPERATION_TOO_COMPLEX",
            "{count} aliases: {}",
            refused.body
        );
        assert!(refused.body.get("data").is_none(), "{}", refused.body);
        assert!(!refused.body.to_string().contains("Aliased"));
    }
    assert_eq!(
        node.audit_events().await.len(),
        entries_before,
        "a refused operation writes no audit entry"
    );
    // The same read with a few aliases is answered (and audited).
    let answered = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            &survivor_aliases(2),
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        answered.data()["a1"]["identity"]["givenName"],
        "Aliased",
        "{}",
        answered.body
    );
    assert!(node.audit_events().await.len() > entries_before);
}

/// A fragment fan-out sent to the node is refused as too complex (costed
/// from each fragment once, never expanded), and a read sent at the same
/// time is answered as usual.
async fn a_fragment_fan_out_is_refused_while_another_request_is_answered(backend: Backend) {
    let node = TestNode::start(backend).await;
    let (survivor, _) = node
        .survivor_sharing_identity_with_shelter("Concurrent")
        .await;
    let owner = node.caseworker(OWNER);
    let fan_out = fragment_fan_out();
    let (refused, read) = tokio::join!(
        node.gql(Some(&owner), Some("CASE_MANAGEMENT"), &fan_out, json!({})),
        node.read_survivor(&owner, "CASE_MANAGEMENT", &survivor),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.code(), "OPERATION_TOO_COMPLEX", "{}", refused.body);
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("costs 33554432")),
        "the cost of 2^25 is named: {}",
        refused.body
    );
    assert_eq!(
        read.data()["survivor"]["identity"]["givenName"],
        "Concurrent",
        "{}",
        read.body
    );
}

/// Input is coerced strictly at the node: an enum argument written as a
/// string literal (which async-graphql alone accepts) and a variable
/// declared with a type that does not fit the argument are refused with
/// `BAD_USER_INPUT`; the enum written as an enum is answered.
async fn an_enum_written_as_a_string_is_refused(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let refusals = [
        (
            "{ referrals(direction: \"INCOMING\") { edges { cursor } } }",
            json!({}),
        ),
        (
            "query($d: String!) { referrals(direction: $d) { edges { cursor } } }",
            json!({ "d": "INCOMING" }),
        ),
        (
            "query($d: ReferralDirection!) { referrals(direction: $d) { edges { cursor } } }",
            json!({ "d": 1 }),
        ),
    ];
    for (query, variables) in refusals {
        let refused = node
            .gql(Some(&owner), Some("REFERRAL"), query, variables)
            .await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.body);
        assert_eq!(
            refused.code(),
            "BAD_USER_INPUT",
            "{query}: {}",
            refused.body
        );
    }
    let answered = node
        .gql(
            Some(&owner),
            Some("REFERRAL"),
            "{ referrals(direction: INCOMING) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert!(
        answered.data()["referrals"]["edges"].is_array(),
        "{}",
        answered.body
    );
}

/// The standard introspection query (15 deep) is answered by a node with
/// introspection on, and refused with `FORBIDDEN` by one with it off.
async fn the_standard_introspection_query_is_answered_where_enabled(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let answered = node
        .gql(Some(&owner), None, INTROSPECTION_QUERY, json!({}))
        .await;
    let schema = &answered.data()["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query", "{}", answered.body);
    let types = schema["types"].as_array().expect("types");
    assert!(
        types.iter().any(|t| t["name"] == "Survivor"),
        "{}",
        answered.body
    );
    drop(node);

    let closed = TestNode::start_with(backend, |config| config.limits.introspection = false).await;
    let owner = closed.caseworker(OWNER);
    let refused = closed
        .gql(Some(&owner), None, INTROSPECTION_QUERY, json!({}))
        .await;
    // FORBIDDEN is 403 wherever it is answered (the one table in
    // `ErrorCode::http_status`); this endpoint used to say 400.
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "FORBIDDEN", "{}", refused.body);
}

on_both_backends!(
    survivor_aliases_are_refused_without_an_audit_entry,
    a_fragment_fan_out_is_refused_while_another_request_is_answered,
    an_enum_written_as_a_string_is_refused,
    the_standard_introspection_query_is_answered_where_enabled,
);

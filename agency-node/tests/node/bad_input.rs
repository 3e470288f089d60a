//! Bad input gets a GraphQL error with a stable code, never a panic or a
//! hang, and nothing half-written: malformed IDs, unknown agencies, invalid
//! enums, oversized bodies, too deep or too costly operations,
//! SQL-significant strings and odd Unicode.

use serde_json::json;

use crate::common::*;

const REGISTER: &str = "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id identity { givenName } } }";

/// Each malformed request gets its code, and no record or change entry is
/// written by any of them.
async fn malformed_requests_get_stable_codes(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Existing").await;
    let survivors_before = node.count("survivors").await;
    let grants_before = node.count("consent_grants").await;

    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    let costly_alias = "survivors(first: 100) { edges { node { identity { givenName familyName \
        preferredName dateOfBirth nationality gender languages } contact { phone safeChannel \
        currentLocation safetyNotes } } } }";
    let too_costly = format!(
        "{{ {} }}",
        (0..8)
            .map(|i| format!("a{i}: {costly_alias}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        ("too deep", &too_deep, json!({}), "OPERATION_TOO_COMPLEX"),
        (
            "too costly",
            &too_costly,
            json!({}),
            "OPERATION_TOO_COMPLEX",
        ),
        (
            "malformed ID",
            SURVIVOR_QUERY,
            json!({ "id": "not-a-global-id" }),
            "BAD_USER_INPUT",
        ),
        (
            "ID with SQL",
            SURVIVOR_QUERY,
            json!({ "id": "shelter-north:x' OR '1'='1" }),
            "BAD_USER_INPUT",
        ),
        (
            "ID of another node",
            SURVIVOR_QUERY,
            json!({ "id": "clinic-east:abc" }),
            "BAD_USER_INPUT",
        ),
        (
            "unknown survivor",
            SURVIVOR_QUERY,
            json!({ "id": "shelter-north:abc" }),
            "NOT_FOUND",
        ),
        (
            "invalid enum",
            "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "grantee": SHELTER, "categories": ["GOSSIP"],
                               "purposes": ["REFERRAL"], "method": "WITNESSED_VERBAL" } }),
            "BAD_USER_INPUT",
        ),
        (
            "unknown agency",
            "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "grantee": "nobody-agency", "categories": ["CASE"],
                               "purposes": ["REFERRAL"], "method": "WITNESSED_VERBAL" } }),
            "BAD_USER_INPUT",
        ),
        (
            "validity reversed",
            "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "grantee": SHELTER, "categories": ["CASE"],
                               "purposes": ["REFERRAL"], "method": "WITNESSED_VERBAL",
                               "validFrom": "2030-01-02T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z" } }),
            "BAD_USER_INPUT",
        ),
        (
            "bad date",
            REGISTER,
            json!({ "input": { "identity": { "givenName": "A", "dateOfBirth": "1999-02-30" } } }),
            "BAD_USER_INPUT",
        ),
        (
            "NUL byte",
            REGISTER,
            json!({ "input": { "identity": { "givenName": "A\u{0}B" } } }),
            "BAD_USER_INPUT",
        ),
        (
            "bidi override",
            REGISTER,
            json!({ "input": { "identity": { "givenName": "abc\u{202E}fed" } } }),
            "BAD_USER_INPUT",
        ),
        (
            "too long",
            REGISTER,
            json!({ "input": { "identity": { "givenName": "x".repeat(201) } } }),
            "BAD_USER_INPUT",
        ),
        (
            "empty name",
            REGISTER,
            json!({ "input": { "identity": { "givenName": "   " } } }),
            "BAD_USER_INPUT",
        ),
        (
            "missing field",
            REGISTER,
            json!({ "input": { "identity": {} } }),
            "BAD_USER_INPUT",
        ),
        (
            "syntax error",
            "query { survivor(id: ",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "unknown field",
            "{ survivor(id: \"shelter-north:a\") { password } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "page too large",
            "{ survivors(first: 1000) { edges { cursor } } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "bad cursor",
            "{ survivors(after: \"'; DROP TABLE survivors;--\") { edges { cursor } } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
    ];
    for (name, query, variables, code) in cases {
        let response = node
            .gql(Some(&owner), Some("CASE_MANAGEMENT"), query, variables)
            .await;
        assert_eq!(response.code(), code, "{name}: {}", response.body);
    }
    assert_eq!(
        node.count("survivors").await,
        survivors_before,
        "nothing half-written"
    );
    assert_eq!(node.count("consent_grants").await, grants_before);

    // SQL-significant and right-to-left text that is valid is stored verbatim.
    let odd = json!({ "input": { "identity": { "givenName": "Robert'); DROP TABLE survivors;--",
                                              "familyName": "أمينة", "preferredName": "Zoë 👩🏽" } } });
    let stored = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"), REGISTER, odd)
        .await;
    assert_eq!(
        stored.data()["registerSurvivor"]["identity"]["givenName"],
        "Robert'); DROP TABLE survivors;--"
    );
    assert_eq!(node.count("survivors").await, survivors_before + 1);
}

/// Oversized bodies, wrong content types and non-JSON bodies are refused
/// with a GraphQL-shaped error.
async fn transport_errors_are_graphql_shaped(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let huge = format!(
        "{{\"query\": \"{{ agency {{ id }} }}\", \"x\": \"{}\"}}",
        "a".repeat(200_000)
    );
    let too_big = node
        .raw(&owner, "application/json", huge.into_bytes())
        .await;
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.code(), "PAYLOAD_TOO_LARGE");

    let form = node
        .raw(
            &owner,
            "application/x-www-form-urlencoded",
            b"query={agency{id}}".to_vec(),
        )
        .await;
    assert_eq!(
        form.status, 415,
        "browsers' simple cross-site posts are refused"
    );
    assert_eq!(form.code(), "BAD_USER_INPUT");

    let garbage = node
        .raw(&owner, "application/json", vec![0xff, 0xfe, b'{'])
        .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.code(), "BAD_USER_INPUT");

    let batch = node
        .raw(
            &owner,
            "application/json",
            b"[{\"query\":\"{ agency { id } }\"}]".to_vec(),
        )
        .await;
    assert_eq!(batch.code(), "BAD_USER_INPUT");
}

on_both_backends!(
    malformed_requests_get_stable_codes,
    transport_errors_are_graphql_shaped
);

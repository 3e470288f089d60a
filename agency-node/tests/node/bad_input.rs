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
        preferredName dateOfBirth nationality genderIdentity languages } contact { phone safeChannel \
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

/// A body far over the limit gets its 413 and code every time, although the
/// node refuses it before the client has finished sending: the node reads
/// and discards the rest rather than reset a connection that is still
/// receiving, which clients see as a broken connection instead of the error.
async fn an_oversized_body_is_refused_with_its_code_not_a_reset(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let huge = format!(
        "{{\"query\": \"{{ agency {{ id }} }}\", \"x\": \"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    )
    .into_bytes();
    for _ in 0..5 {
        let refused = node.raw(&owner, "application/json", huge.clone()).await;
        assert_eq!(refused.status, 413);
        assert_eq!(refused.code(), "PAYLOAD_TOO_LARGE");
    }
}

/// A body without a declared length (chunked) is refused as soon as it
/// passes the limit, with the same 413 and code, and the connection then
/// serves the next request.
async fn a_chunked_body_over_the_limit_is_refused(backend: Backend) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let address = node.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {owner}\r\n\
         x-exchange-purpose: CASE_MANAGEMENT\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk size");
        stream.write_all(&chunk).await.expect("chunk");
        stream.write_all(b"\r\n").await.expect("chunk end");
    }
    stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read up to the end of the JSON error body.
    while !answer.ends_with(b"}]}") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("reads");
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"PAYLOAD_TOO_LARGE\""), "{text}");

    let next = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {owner}\r\n\
         x-exchange-purpose: CASE_MANAGEMENT\r\nContent-Type: application/json\r\n\
         Content-Length: 29\r\n\r\n{{\"query\":\"{{ agency {{ id }} }}\"}}"
    );
    stream
        .write_all(next.as_bytes())
        .await
        .expect("next request");
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\"agency\"") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("reads");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

on_both_backends!(
    malformed_requests_get_stable_codes,
    transport_errors_are_graphql_shaped,
    an_oversized_body_is_refused_with_its_code_not_a_reset,
    a_chunked_body_over_the_limit_is_refused
);

//! Authentication at the node: every forged, stale or foreign token is
//! rejected with UNAUTHENTICATED and audited as a denial with its reason;
//! a request without a purpose gets PURPOSE_REQUIRED.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, AuditKind, Decision, Role};
use exchange_trust::{MintRequest, SigningKey, TokenAlgorithm, mint_with_key};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::*;

fn claims(node: &TestNode, agency: &str, overrides: Value) -> Value {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let issuer = node
        .federation
        .provider(&AgencyId::parse(agency).unwrap())
        .unwrap()
        .issuer()
        .to_owned();
    let mut claims = json!({
        "iss": issuer, "sub": "mallory", "aud": AUDIENCE, "iat": now, "exp": now + 600,
        "agency": agency, "roles": ["CASEWORKER"],
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(overrides.as_object().unwrap().clone());
    claims
}

fn sign_with_agency_key(node: &TestNode, agency: &str, claims: &Value) -> String {
    let idp = node
        .federation
        .provider(&AgencyId::parse(agency).unwrap())
        .unwrap();
    mint_with_key(idp.signing_key(), claims).unwrap()
}

fn unsigned(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Every bad token is refused and leaves a denial in the audit log naming
/// the reason.
async fn bad_tokens_are_rejected_and_audited(backend: Backend) {
    let node = TestNode::start(backend).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let stranger = SigningKey::generate(TokenAlgorithm::EdDsa)
        .unwrap()
        .with_kid("unknown");

    let valid = claims(&node, SHELTER, json!({}));
    let good = sign_with_agency_key(&node, SHELTER, &valid);
    let mut tampered_parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered_parts[1] = URL_SAFE_NO_PAD
        .encode(claims(&node, SHELTER, json!({ "roles": ["SUPERVISOR"] })).to_string());
    let tampered = tampered_parts.join(".");

    let public_pem = node
        .federation
        .provider(&AgencyId::parse(SHELTER).unwrap())
        .unwrap()
        .public_key_pem();
    let hs_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_pem.as_bytes());
    let hs_header = json!({ "alg": "HS256", "typ": "JWT" });
    let hs_signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(hs_header.to_string()),
        URL_SAFE_NO_PAD.encode(valid.to_string())
    );
    let hs_token = format!(
        "{hs_signing_input}.{}",
        URL_SAFE_NO_PAD
            .encode(aws_lc_rs::hmac::sign(&hs_key, hs_signing_input.as_bytes()).as_ref())
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            sign_with_agency_key(
                &node,
                SHELTER,
                &claims(
                    &node,
                    SHELTER,
                    json!({ "exp": now - 120, "iat": now - 800 }),
                ),
            ),
            "TOKEN_EXPIRED",
        ),
        (
            "not yet valid",
            sign_with_agency_key(
                &node,
                SHELTER,
                &claims(&node, SHELTER, json!({ "nbf": now + 600 })),
            ),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "wrong issuer",
            sign_with_agency_key(
                &node,
                SHELTER,
                &claims(&node, SHELTER, json!({ "iss": "https://idp.evil.example" })),
            ),
            "UNKNOWN_ISSUER",
        ),
        (
            "wrong audience",
            sign_with_agency_key(
                &node,
                SHELTER,
                &claims(&node, SHELTER, json!({ "aud": "another-exchange" })),
            ),
            "WRONG_AUDIENCE",
        ),
        (
            "unknown key",
            mint_with_key(&stranger, &valid).unwrap(),
            "UNKNOWN_KEY",
        ),
        (
            "alg none",
            unsigned(json!({ "alg": "none", "typ": "JWT" }), &valid, b""),
            "ALGORITHM_NOT_ALLOWED",
        ),
        (
            "HS256 with the public key",
            hs_token,
            "ALGORITHM_NOT_ALLOWED",
        ),
        ("tampered payload", tampered, "BAD_SIGNATURE"),
        (
            "agency differs from issuer",
            sign_with_agency_key(
                &node,
                SHELTER,
                &claims(&node, SHELTER, json!({ "agency": OWNER })),
            ),
            "AGENCY_MISMATCH",
        ),
        ("garbage", "not.a.token".into(), "TOKEN_MALFORMED"),
    ];
    let survivor = node.register_full_survivor("Target").await;
    for (name, token, reason) in &cases {
        let before = node.audit_events().await.len();
        let response = node
            .read_survivor(token, "SERVICE_COORDINATION", &survivor)
            .await;
        assert_eq!(response.status, 401, "{name}: {}", response.body);
        assert_eq!(response.code(), "UNAUTHENTICATED", "{name}");
        assert!(
            response.body.get("data").is_none(),
            "{name}: no data with a bad token"
        );
        let events = node.audit_events().await;
        assert_eq!(events.len(), before + 1, "{name}: one denial entry");
        let denial = events.last().unwrap();
        assert_eq!(denial.kind, AuditKind::Denial, "{name}");
        assert_eq!(denial.decision, Decision::Deny, "{name}");
        assert_eq!(denial.reason, *reason, "{name}");
        assert!(
            denial.survivor.is_none(),
            "{name}: nothing about the record is logged as accessed"
        );
    }

    let missing = node
        .gql(
            None,
            Some("SERVICE_COORDINATION"),
            "{ agency { id } }",
            json!({}),
        )
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        node.audit_events().await.last().unwrap().reason,
        "TOKEN_MISSING"
    );

    // The untampered token works, so the failures above are the token's.
    let ok = node
        .read_survivor(&good, "SERVICE_COORDINATION", &survivor)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

/// A token within the 60 s leeway is accepted; one beyond it is not.
async fn clock_leeway_is_at_most_a_minute(backend: Backend) {
    let node = TestNode::start(backend).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let just_expired = sign_with_agency_key(
        &node,
        SHELTER,
        &claims(&node, SHELTER, json!({ "exp": now - 20 })),
    );
    let long_expired = sign_with_agency_key(
        &node,
        SHELTER,
        &claims(&node, SHELTER, json!({ "exp": now - 90 })),
    );
    let q = "{ agency { id } }";
    assert_eq!(
        node.gql(Some(&just_expired), None, q, json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        node.gql(Some(&long_expired), None, q, json!({}))
            .await
            .status,
        401
    );
}

/// Disclosing fields need a declared purpose; an unknown one is refused.
async fn purpose_is_required_and_closed(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Purpose").await;
    let token = node.caseworker(OWNER);
    let none = node
        .gql(
            Some(&token),
            None,
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(none.code(), "PURPOSE_REQUIRED");
    assert!(none.body["data"]["survivor"].is_null());

    let unknown = node
        .gql(
            Some(&token),
            Some("CURIOSITY"),
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.code(), "BAD_USER_INPUT");
    assert!(
        unknown.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("REFERRAL")
    );
}

/// Roles come from the token: a caseworker of another agency cannot record
/// consent for the owner's survivor, and an auditor cannot register one.
async fn authority_comes_from_the_token(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Roles").await;
    let input = json!({ "input": {
        "survivorId": survivor, "grantee": SHELTER, "categories": ["CONTACT"],
        "purposes": ["SERVICE_COORDINATION"], "method": "WITNESSED_VERBAL" } });
    let mutation = "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }";
    let foreign = node
        .gql(
            Some(&node.caseworker(SHELTER)),
            Some("CASE_MANAGEMENT"),
            mutation,
            input.clone(),
        )
        .await;
    assert_eq!(foreign.code(), "FORBIDDEN");
    let auditor = node.token(OWNER, &[Role::Auditor]);
    let by_auditor = node
        .gql(Some(&auditor), Some("CASE_MANAGEMENT"), mutation, input)
        .await;
    assert_eq!(by_auditor.code(), "FORBIDDEN");
    assert_eq!(node.count("consent_grants").await, 0);
    // The minted-token helper is what a newcomer uses too.
    let minted = node
        .federation
        .provider(&AgencyId::parse(OWNER).unwrap())
        .unwrap()
        .mint(&MintRequest::new(
            AgencyId::parse(OWNER).unwrap(),
            "newcomer",
            vec![Role::Caseworker],
            AUDIENCE,
        ));
    assert!(minted.is_ok());
}

on_both_backends!(
    bad_tokens_are_rejected_and_audited,
    clock_leeway_is_at_most_a_minute,
    purpose_is_required_and_closed,
    authority_comes_from_the_token,
);

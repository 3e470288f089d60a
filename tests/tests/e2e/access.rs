//! A client that goes straight to a node gets nothing more than through the
//! gateway; forged and foreign tokens are refused by both.

use exchange_schema::{AgencyId, AuditKind, Role};
use exchange_test_kit::{AUDIENCE, CLINIC, LEGAL, SHELTER, TestFederation};
use exchange_trust::{DevIdentityProvider, MintRequest};
use serde_json::json;

const READ: &str = "query($id: ID!) { survivor(id: $id) {
  id identity { givenName } contact { currentLocation } case { riskLevel } health { medicalNotes }
  legal { immigrationStatus } withheld { category reason } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_straight_to_a_node_discloses_nothing_more_than_the_gateway() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Farah").await;
    fed.grant(&survivor, LEGAL, &["IDENTITY"], &["LEGAL_ASSISTANCE"])
        .await;

    for (agency, purpose) in [
        (LEGAL, "LEGAL_ASSISTANCE"),
        (CLINIC, "HEALTH_CARE"),
        (LEGAL, "HEALTH_CARE"),
    ] {
        let token = fed.caseworker(agency);
        let via_gateway = fed
            .gateway_gql(&token, purpose, READ, json!({ "id": survivor }))
            .await;
        let direct = fed
            .node_gql(SHELTER, &token, purpose, READ, json!({ "id": survivor }))
            .await;
        assert_eq!(
            via_gateway.body["data"], direct.body["data"],
            "{agency} for {purpose}"
        );
        let s = &direct.body["data"]["survivor"];
        for category in ["contact", "case", "health", "legal"] {
            assert!(
                s[category].is_null(),
                "{agency} must not see {category}: {s}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_tokens_are_refused_at_the_gateway_and_at_the_node() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Goran").await;
    let legal = AgencyId::parse(LEGAL).expect("agency");

    // Signed by a key the federation does not list, claiming legal aid.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let forger = DevIdentityProvider::load_or_generate(elsewhere.path(), &legal).expect("key");
    let forged = forger
        .mint(&MintRequest::new(
            legal.clone(),
            "intruder",
            vec![Role::Caseworker],
            AUDIENCE,
        ))
        .expect("token");
    // A real key of this federation, but for another federation's audience.
    let idp = fed.dev.provider(&legal).expect("provider");
    let foreign = idp
        .mint(&MintRequest::new(
            legal.clone(),
            "someone",
            vec![Role::Caseworker],
            "another-federation",
        ))
        .expect("token");
    // Legal aid's key vouching for a shelter user.
    let shelter = AgencyId::parse(SHELTER).expect("agency");
    let impersonation = idp
        .mint(&MintRequest::new(
            shelter,
            "someone",
            vec![Role::Caseworker],
            AUDIENCE,
        ))
        .expect("token");

    for token in [
        forged.as_str(),
        foreign.as_str(),
        impersonation.as_str(),
        "not.a.token",
    ] {
        let via_gateway = fed
            .gateway_gql(token, "LEGAL_ASSISTANCE", READ, json!({ "id": survivor }))
            .await;
        assert_eq!(via_gateway.status, 401, "{}", via_gateway.body);
        assert_eq!(via_gateway.code(), "UNAUTHENTICATED");
        assert!(via_gateway.body.get("data").is_none());
        let direct = fed
            .node_gql(
                SHELTER,
                token,
                "LEGAL_ASSISTANCE",
                READ,
                json!({ "id": survivor }),
            )
            .await;
        assert_eq!(direct.status, 401, "{}", direct.body);
        assert_eq!(direct.code(), "UNAUTHENTICATED");
    }
    let missing = fed
        .post(
            &fed.gateway_base,
            None,
            Some("LEGAL_ASSISTANCE"),
            READ,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(missing.code(), "UNAUTHENTICATED");

    // Each refusal at the gateway is in its audit log; nothing was sent on.
    let denials = fed
        .gateway_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::Denial)
        .count();
    assert_eq!(denials, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_cannot_send_cross_site_operations() {
    let fed = TestFederation::start().await;
    let token = fed.caseworker(LEGAL);
    let form = fed
        .client
        .post(format!("{}/graphql", fed.gateway_base))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=%7B+agencies+%7B+id+%7D+%7D")
        .send()
        .await
        .expect("sent");
    assert_eq!(form.status().as_u16(), 415);
    assert!(form.headers().get("access-control-allow-origin").is_none());
    let big = "x".repeat(70 * 1024);
    let too_large = fed
        .gateway_gql(
            &token,
            "REFERRAL",
            &format!("{{ agencies(region: \"{big}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.code(), "PAYLOAD_TOO_LARGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_agencies_to_refer_to() {
    let fed = TestFederation::start().await;
    let token = fed.caseworker(SHELTER);
    let answer = fed
        .gateway_gql(
            &token,
            "REFERRAL",
            "{ medical: agencies(service: MEDICAL, language: \"pt\") { id name kind services hasNode }
               all: agencies { id hasNode } }",
            json!({}),
        )
        .await;
    let data = answer.data();
    assert_eq!(
        data["medical"],
        json!([{ "id": CLINIC, "name": "East Clinic", "kind": "HEALTH_CLINIC",
        "services": ["MEDICAL", "PSYCHOSOCIAL"], "hasNode": true }])
    );
    let all = data["all"].as_array().expect("list");
    assert!(
        all.iter()
            .any(|a| a["id"] == "oversight-board" && a["hasNode"] == false)
    );
}

/// Break-glass through the gateway: the justification header travels to
/// the owner node, which discloses under the open window and marks its
/// entry for review with that justification; without the header the node
/// refuses with `JUSTIFICATION_REQUIRED`, and so with a blank one (the
/// gateway used to refuse a blank header as `BAD_USER_INPUT` where the node
/// read it as no justification: both read it as the node did now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_carries_the_break_glass_justification_to_the_owner() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Hana").await;
    let supervisor = fed.token(CLINIC, &[Role::Supervisor]);
    let why = "The survivor was admitted unconscious and cannot be asked.";
    fed.gateway_emergency(
        &supervisor,
        None,
        "mutation($id: ID!, $why: String!) { openBreakGlass(survivorId: $id, justification: $why) { expiresAt } }",
        json!({ "id": survivor, "why": why }),
    )
    .await
    .data();
    let read = "query($id: ID!) { survivor(id: $id) { identity { givenName } } }";

    let refused = fed
        .gateway_emergency(&supervisor, None, read, json!({ "id": survivor }))
        .await;
    assert_eq!(refused.code(), "JUSTIFICATION_REQUIRED", "{}", refused.body);
    assert!(!refused.body.to_string().contains("Hana"));
    let blank = fed
        .gateway_emergency(&supervisor, Some("   "), read, json!({ "id": survivor }))
        .await;
    assert_eq!(blank.code(), "JUSTIFICATION_REQUIRED", "{}", blank.body);
    assert!(!blank.body.to_string().contains("Hana"));

    let answered = fed
        .gateway_emergency(&supervisor, Some(why), read, json!({ "id": survivor }))
        .await;
    assert_eq!(
        answered.data()["survivor"]["identity"]["givenName"],
        "Hana",
        "{}",
        answered.body
    );
    let owner_log = exchange_test_kit::events(&fed.node(SHELTER).state.db).await;
    let marked = owner_log
        .iter()
        .rev()
        .find(|e| e.kind == AuditKind::Disclosure)
        .expect("the disclosure entry");
    assert!(marked.break_glass, "{marked:?}");
    assert_eq!(marked.justification.as_deref(), Some(why));
    assert_eq!(
        marked.actor_agency.as_ref().map(AgencyId::as_str),
        Some(CLINIC)
    );
}

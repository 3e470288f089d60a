//! The pipeline run end to end against canned node answers (as Apollo
//! Router tests with mock subgraphs): no node process, no network. Each
//! test names what the gateway must do with what the nodes say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apollo_compiler::response::JsonValue;
use exchange_audit::{AuditLog, AuditOptions};
use exchange_schema::audit::AuditEntry;
use exchange_schema::{AgencyId, AgencyKind, IdempotencyKey, Role, ServiceKind};
use exchange_service::db::{Db, sqlite_url};
use exchange_trust::{AgencySpec, DevFederation, Principal, TokenVerifier};
use futures::future::BoxFuture;
use serde_json_bytes::json;

use super::*;
use crate::config::NodesConfig;
use crate::nodes::{NodeAnswer, Nodes};

const SHELTER: &str = "shelter-north";
const LEGAL: &str = "legal-aid-city";

/// What one node call carried.
#[derive(Debug, Clone)]
struct Call {
    agency: AgencyId,
    body: serde_json::Value,
    forwarded: Forwarded,
}

/// Nodes that answer from canned bodies and record what they were sent.
struct CannedNodes {
    agencies: Vec<AgencyId>,
    answers: HashMap<AgencyId, Result<JsonValue, NodeFailure>>,
    calls: Mutex<Vec<Call>>,
}

impl NodeTransport for CannedNodes {
    fn agencies(&self) -> &[AgencyId] {
        &self.agencies
    }

    fn call<'a>(
        &'a self,
        agency: &'a AgencyId,
        body: Vec<u8>,
        forwarded: &'a Forwarded,
        _traceparent: &'a str,
    ) -> BoxFuture<'a, Result<NodeAnswer, NodeFailure>> {
        self.calls.lock().unwrap().push(Call {
            agency: agency.clone(),
            body: serde_json::from_slice(&body).expect("the gateway sends JSON"),
            forwarded: forwarded.clone(),
        });
        let answer = self
            .answers
            .get(agency)
            .cloned()
            .unwrap_or(Err(NodeFailure::NoNode))
            .map(|body| NodeAnswer {
                body,
                status: 200,
                elapsed: Duration::from_micros(250),
            });
        Box::pin(async move { answer })
    }
}

struct Harness {
    gateway: Gateway,
    nodes: Arc<CannedNodes>,
    db: Db,
    _dir: tempfile::TempDir,
}

fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap()
}

/// A gateway over two agencies' canned nodes, with its audit log in a
/// scratch SQLite database.
async fn harness(answers: Vec<(&str, Result<JsonValue, NodeFailure>)>) -> Harness {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<AgencySpec> = [
        (SHELTER, AgencyKind::Shelter),
        (LEGAL, AgencyKind::LegalAid),
    ]
    .into_iter()
    .map(|(id, kind)| AgencySpec {
        id: agency(id),
        name: id.into(),
        kind,
        services: vec![ServiceKind::Shelter],
        languages: vec!["en".into()],
        region: "North".into(),
        node_url: Some("http://127.0.0.1:9".into()),
        tls_identity: None,
        webhook: None,
    })
    .collect();
    let dev = DevFederation::create(dir.path(), &specs, "pipeline-tests").unwrap();
    let federation = Arc::new(dev.federation);
    let http_nodes = Arc::new(Nodes::new(&federation, &NodesConfig::default(), None).unwrap());
    let nodes = Arc::new(CannedNodes {
        agencies: http_nodes.agency_ids().to_vec(),
        answers: answers
            .into_iter()
            .map(|(id, answer)| (agency(id), answer))
            .collect(),
        calls: Mutex::new(Vec::new()),
    });
    let db = Db::connect(&sqlite_url(dir.path(), "gateway.db"))
        .await
        .unwrap();
    db.migrate(&exchange_audit::MIGRATIONS).await.unwrap();
    let key = Arc::new(exchange_audit::keys::load_or_generate_signing_key(dir.path()).unwrap());
    let audit = AuditLog::open(db.clone(), key, AuditOptions::new("gateway"))
        .await
        .unwrap();
    let verifier = Arc::new(TokenVerifier::new(federation.clone()));
    let gateway = Gateway {
        schema: crate::routing::FederationSchema::load().unwrap(),
        limits: LimitsConfig::default(),
        verifier: verifier.clone(),
        jwks: exchange_service::jwks::JwksRefresher::new(verifier.clone()).unwrap(),
        directory: crate::directory::schema(federation, http_nodes),
        transport: nodes.clone(),
        audit,
        documents: crate::plan::DocumentCache::new(16, 1 << 16),
        metrics: exchange_service::metrics::Metrics::new(),
    };
    Harness {
        gateway,
        nodes,
        db,
        _dir: dir,
    }
}

fn caller(idempotency_key: Option<&str>) -> Caller {
    Caller {
        principal: Principal {
            agency: agency(SHELTER),
            agency_kind: AgencyKind::Shelter,
            user: "caseworker-1".into(),
            roles: vec![Role::Caseworker],
            issuer: "https://idp.shelter-north.example".into(),
            expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        },
        purpose: Some(exchange_schema::Purpose::Referral),
        justification: None,
        forwarded: Forwarded {
            authorization: "Bearer canned-token".into(),
            purpose: Some("REFERRAL".into()),
            justification: None,
            idempotency_key: idempotency_key.map(|k| IdempotencyKey::new(k).unwrap()),
        },
    }
}

fn request(query: &str, variables: JsonValue) -> ClientRequest {
    ClientRequest {
        query: query.into(),
        variables: variables.as_object().cloned(),
        ..ClientRequest::default()
    }
}

impl Harness {
    async fn execute(
        &self,
        caller: &Caller,
        request: ClientRequest,
    ) -> Result<Executed, RequestError> {
        self.gateway
            .execute(caller, request, &crate::telemetry::TraceParent::generate())
            .await
    }

    fn calls(&self) -> Vec<Call> {
        self.nodes.calls.lock().unwrap().clone()
    }

    async fn entries(&self) -> Vec<AuditEntry> {
        let mut entries = exchange_audit::read::entries(&self.db, &Default::default(), 100)
            .await
            .unwrap();
        entries.reverse();
        entries
    }
}

#[tokio::test]
async fn a_routed_field_goes_to_its_owner_alone_and_is_audited_before_it_is_answered() {
    let h = harness(vec![(
        LEGAL,
        Ok(json!({ "data": { "survivor": { "id": "legal-aid-city:s1" } } })),
    )])
    .await;
    let query = "query One($id: ID!) { survivor(id: $id) { id } }";
    let executed = h
        .execute(
            &caller(None),
            request(query, json!({ "id": "legal-aid-city:s1" })),
        )
        .await
        .unwrap();
    assert_eq!(
        executed.response,
        json!({ "data": { "survivor": { "id": "legal-aid-city:s1" } } })
    );
    let calls = h.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].agency.as_str(), LEGAL);
    // One node gets everything: the client's own text, unchanged.
    assert_eq!(calls[0].body["query"], query);
    assert_eq!(calls[0].body["variables"]["id"], "legal-aid-city:s1");
    assert_eq!(calls[0].forwarded.authorization, "Bearer canned-token");
    let entries = h.entries().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event.reason, "FORWARDED");
    assert_eq!(
        entries[0].event.subject.as_deref(),
        Some("query survivor -> [legal-aid-city]")
    );
    assert_eq!(entries[0].event.actor_user.as_deref(), Some("caseworker-1"));
}

#[tokio::test]
async fn a_failed_node_costs_only_its_fields_and_the_failure_is_audited() {
    let h = harness(vec![
        (LEGAL, Err(NodeFailure::Unreachable)),
        (
            SHELTER,
            Ok(json!({ "data": { "b": { "id": "shelter-north:s2" } } })),
        ),
    ])
    .await;
    let executed = h
        .execute(
            &caller(None),
            request(
                r#"{ a: survivor(id: "legal-aid-city:s1") { id } b: survivor(id: "shelter-north:s2") { id } }"#,
                JsonValue::Null,
            ),
        )
        .await
        .unwrap();
    let response = &executed.response;
    assert_eq!(response["data"]["a"], JsonValue::Null);
    assert_eq!(response["data"]["b"]["id"], "shelter-north:s2");
    let errors = response["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["extensions"]["code"], "NODE_UNAVAILABLE");
    assert_eq!(errors[0]["extensions"]["agency"], LEGAL);
    assert_eq!(errors[0]["path"], json!(["a"]));
    // Each node was asked its own field only.
    let calls = h.calls();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let text = call.body["query"].as_str().unwrap();
        let (own, other) = if call.agency.as_str() == LEGAL {
            ("a: survivor", "b: survivor")
        } else {
            ("b: survivor", "a: survivor")
        };
        assert!(text.contains(own) && !text.contains(other), "{text}");
    }
    let entries = h.entries().await;
    let reasons: Vec<&str> = entries.iter().map(|e| e.event.reason.as_str()).collect();
    assert_eq!(reasons, ["FORWARDED", "PARTIAL"]);
    let explanation = entries[1].event.explanation.as_deref().unwrap();
    assert!(
        explanation.contains("legal-aid-city: NODE_UNAVAILABLE (UNREACHABLE)"),
        "{explanation}"
    );
    assert!(
        explanation.contains("shelter-north: answered in 250 us"),
        "{explanation}"
    );
}

/// A node's page of referrals with the merge keys the gateway asked for.
fn referral_page(items: &[(&str, &str)], has_next: bool) -> JsonValue {
    let edges: Vec<JsonValue> = items
        .iter()
        .map(|(id, _)| json!({ "node": { "id": *id } }))
        .collect();
    let hidden: Vec<JsonValue> = items
        .iter()
        .map(|(id, at)| json!({ "_gwCursor": format!("c-{id}"), "_gwNode": { "_gwKey": *at } }))
        .collect();
    json!({ "data": { "referrals": {
        "edges": edges,
        "pageInfo": { "hasNextPage": has_next },
        "_gwEdges": hidden,
        "_gwPage": { "_gwHasNext": has_next },
    } } })
}

#[tokio::test]
async fn a_scattered_connection_is_merged_newest_first_and_resumes_where_it_stopped() {
    let h = harness(vec![
        (
            SHELTER,
            Ok(referral_page(
                &[
                    ("shelter-north:r4", "2026-12-05T10:04:00Z"),
                    ("shelter-north:r1", "2026-12-05T10:01:00Z"),
                ],
                false,
            )),
        ),
        (
            LEGAL,
            Ok(referral_page(
                &[
                    ("legal-aid-city:r3", "2026-12-05T10:03:00Z"),
                    ("legal-aid-city:r2", "2026-12-05T10:02:00Z"),
                ],
                false,
            )),
        ),
    ])
    .await;
    let executed = h
        .execute(
            &caller(None),
            request(
                "{ referrals(first: 3) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                JsonValue::Null,
            ),
        )
        .await
        .unwrap();
    let connection = &executed.response["data"]["referrals"];
    let ids: Vec<&str> = connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["shelter-north:r4", "legal-aid-city:r3", "legal-aid-city:r2"]
    );
    assert_eq!(connection["pageInfo"]["hasNextPage"], true);
    // Nothing of the merge keys reaches the client.
    assert!(connection.get("_gwEdges").is_none());
    // The next page: each node is asked from its own position, and a node
    // with nothing left is not asked at all.
    let end = connection["pageInfo"]["endCursor"].as_str().unwrap();
    let cursor = crate::merge::CompositeCursor::decode(end).unwrap();
    assert!(
        cursor.is_done(&agency(LEGAL)),
        "both of its items were given"
    );
    assert_eq!(
        cursor.position(&agency(SHELTER)),
        Some("c-shelter-north:r4")
    );
    assert!(!cursor.is_done(&agency(SHELTER)));
    let calls_before = h.calls().len();
    h.execute(
        &caller(None),
        request(
            "query($after: String) { referrals(first: 3, after: $after) { edges { node { id } } } }",
            json!({ "after": end }),
        ),
    )
    .await
    .unwrap();
    let next: Vec<Call> = h.calls().split_off(calls_before);
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0].agency.as_str(), SHELTER);
    assert_eq!(next[0].body["variables"]["_gwAfter0"], "c-shelter-north:r4");
}

#[tokio::test]
async fn a_mutation_of_two_agencies_records_is_refused_before_any_node_is_called() {
    let h = harness(vec![]).await;
    let refused = h
        .execute(
            &caller(None),
            request(
                r#"mutation { a: withdrawReferral(id: "legal-aid-city:r1") { id } b: withdrawReferral(id: "shelter-north:r2") { id } }"#,
                JsonValue::Null,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RequestError::BadUserInput(_)),
        "{refused:?}"
    );
    assert!(h.calls().is_empty());
    assert!(
        h.entries().await.is_empty(),
        "the refusal is audited by the HTTP stage"
    );
}

#[tokio::test]
async fn the_idempotency_key_travels_with_a_mutation_and_never_with_a_query() {
    let h = harness(vec![(
        LEGAL,
        Ok(json!({ "data": { "withdrawReferral": { "id": "legal-aid-city:r1" } } })),
    )])
    .await;
    let keyed = caller(Some("retry-7"));
    h.execute(
        &keyed,
        request(
            r#"mutation { withdrawReferral(id: "legal-aid-city:r1") { id } }"#,
            JsonValue::Null,
        ),
    )
    .await
    .unwrap();
    h.execute(
        &keyed,
        request(
            r#"{ referral(id: "legal-aid-city:r1") { id } }"#,
            JsonValue::Null,
        ),
    )
    .await
    .unwrap();
    let calls = h.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]
            .forwarded
            .idempotency_key
            .as_ref()
            .map(|k| k.as_str()),
        Some("retry-7")
    );
    assert_eq!(calls[1].forwarded.idempotency_key, None);
}

#[tokio::test]
async fn nothing_is_answered_when_the_gateway_entry_cannot_be_written() {
    let h = harness(vec![(
        LEGAL,
        Ok(json!({ "data": { "survivor": { "id": "legal-aid-city:s1" } } })),
    )])
    .await;
    h.db.close().await;
    let refused = h
        .execute(
            &caller(None),
            request(
                r#"{ survivor(id: "legal-aid-city:s1") { id } }"#,
                JsonValue::Null,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RequestError::AuditUnavailable),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_plan_without_node_fields_sends_nothing_and_answers_locally() {
    let h = harness(vec![]).await;
    let executed = h
        .execute(
            &caller(None),
            request(
                "{ __typename agencies(kind: LEGAL_AID) { id } }",
                JsonValue::Null,
            ),
        )
        .await
        .unwrap();
    assert!(h.calls().is_empty());
    assert_eq!(executed.response["data"]["__typename"], "Query");
    assert_eq!(
        executed.response["data"]["agencies"],
        json!([{ "id": LEGAL }])
    );
}

//! The gateway's own audit log: one entry per federated operation (who,
//! purpose, which nodes were asked; a second one naming the nodes that
//! failed, if any did), chained and signed, verified by the same code as
//! `exchange-audit verify --data-dir`. Its database holds the audit log's
//! tables only.

use agency_node::store::Db;
use exchange_audit::verify::{VerifyOptions, verify_database};
use exchange_schema::{AuditKind, Decision, Purpose};
use exchange_test_kit::{CLINIC, Options, SHELTER, TestFederation, fresh_postgres_database};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_federated_operation_is_audited_and_the_log_verifies() {
    every_federated_operation_is_audited_in(None).await;
}

/// The same with the gateway's log in PostgreSQL (`database_url`), the
/// production backend: the entries land there, none in the data directory,
/// and the log verifies from that database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_federated_operation_is_audited_in_postgresql_and_the_log_verifies() {
    let database = fresh_postgres_database().await;
    every_federated_operation_is_audited_in(Some(database.url().to_owned())).await;
}

async fn every_federated_operation_is_audited_in(database_url: Option<String>) {
    let mut fed = TestFederation::start_with(Options {
        gateway_database_url: database_url.clone(),
        ..Options::default()
    })
    .await;
    if let Some(url) = &database_url {
        assert_eq!(&fed.gateway_database_url, url);
        assert!(
            !fed.gateway_data_dir.join("gateway.db").exists(),
            "no SQLite log beside the PostgreSQL one"
        );
    }
    let survivor = fed.register_survivor(SHELTER, "Iulia").await;
    fed.refer(&survivor, CLINIC).await;
    let clinic = fed.caseworker(CLINIC);
    fed.gateway_gql(
        &clinic,
        "REFERRAL",
        "{ referrals(direction: INCOMING) { edges { node { id } } } }",
        json!({}),
    )
    .await
    .data();
    let refused = fed
        .gateway_gql(&clinic, "REFERRAL", "{ nope }", json!({}))
        .await;
    assert_eq!(refused.code(), "BAD_USER_INPUT");

    let events = fed.gateway_events().await;
    let federated: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditKind::FederatedOperation)
        .collect();
    let scatter = federated
        .iter()
        .find(|e| {
            e.subject
                .as_deref()
                .is_some_and(|s| s.starts_with("query referrals"))
        })
        .expect("the scattered read is audited");
    assert_eq!(
        scatter.actor_agency.as_ref().map(|a| a.as_str()),
        Some(CLINIC)
    );
    assert_eq!(scatter.purpose, Some(Purpose::Referral));
    assert_eq!(scatter.decision, Decision::Permit);
    assert_eq!(scatter.reason, "FORWARDED");
    assert!(
        federated.iter().all(|e| e.reason != "PARTIAL"),
        "every node answered: no PARTIAL entry"
    );
    let subject = scatter.subject.as_deref().unwrap_or_default();
    for agency in ["shelter-north", "legal-aid-city", "clinic-east"] {
        assert!(subject.contains(agency), "nodes asked are named: {subject}");
    }
    let last = federated.last().expect("entries");
    assert_eq!(last.decision, Decision::Deny);
    assert_eq!(last.reason, "REJECTED_BAD_USER_INPUT");
    // No record contents in the gateway's log.
    for event in &events {
        let text = serde_json::to_string(event).expect("serializes");
        assert!(
            !text.contains("Iulia") && !text.contains("Safe house"),
            "{text}"
        );
    }

    let key = fed.gateway.audit.public_key_hex();
    fed.stop_gateway().await;
    let db = Db::connect(&fed.gateway_database_url)
        .await
        .expect("gateway database");
    let report = verify_database(
        &db,
        &VerifyOptions {
            expected_key: Some(key),
            ..VerifyOptions::default()
        },
    )
    .await
    .expect("the gateway's log verifies");
    assert_eq!(report.last_seq, events.len() as u64);
    assert_eq!(
        report.signed_through, report.last_seq,
        "a final checkpoint covers the whole log"
    );

    // The gateway's database holds its audit log and nothing of a node's.
    let tables: Vec<String> = sqlx::query_scalar(match db.backend() {
        exchange_service::db::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        exchange_service::db::Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             ORDER BY table_name"
        }
    })
    .fetch_all(db.pool())
    .await
    .expect("table names");
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit_checkpoints",
            "audit_head",
            "audit_log",
            "storage_probe"
        ],
        "only the audit log's tables"
    );
}

/// No answer leaves the gateway unless its audit entry is durable: with its
/// log failing, a read the node would answer gets `AUDIT_UNAVAILABLE`
/// and no data, and the gateway recovers once the log can be written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_leaves_the_gateway_without_its_audit_entry() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Kateryna").await;
    let shelter = fed.caseworker(SHELTER);
    let read = "query($id: ID!) { survivor(id: $id) { identity { givenName } } }";
    let variables = json!({ "id": survivor });

    let db = Db::connect(&fed.gateway_database_url)
        .await
        .expect("gateway database");
    sqlx::query(
        "CREATE TRIGGER audit_log_unwritable BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(db.pool())
    .await
    .expect("trigger created");

    let refused = fed
        .gateway_gql(&shelter, "CASE_MANAGEMENT", read, variables.clone())
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.code(), "AUDIT_UNAVAILABLE");
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("audit log")),
        "the client learns why: {}",
        refused.body
    );
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    assert!(
        !refused.body.to_string().contains("Kateryna"),
        "{}",
        refused.body
    );

    sqlx::query("DROP TRIGGER audit_log_unwritable")
        .execute(db.pool())
        .await
        .expect("trigger dropped");
    db.close().await;
    let answered = fed
        .gateway_gql(&shelter, "CASE_MANAGEMENT", read, variables)
        .await;
    assert_eq!(
        answered.data()["survivor"]["identity"]["givenName"],
        "Kateryna"
    );
    let last = fed.gateway_events().await.pop().expect("entries");
    assert_eq!(last.reason, "FORWARDED");
}

/// An operation refused at the gateway (a bad token, an operation the
/// schema rejects, one over the complexity limits) is recorded there as a
/// refusal and sends nothing to any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_operation_reaches_no_node() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Jomo").await;
    let node_entries = || async {
        let mut counts = Vec::new();
        for node in &fed.nodes {
            counts.push(exchange_test_kit::events(&node.state.db).await.len());
        }
        counts
    };
    let before = node_entries().await;
    let gateway_before = fed.gateway_events().await.len();
    let clinic = fed.caseworker(CLINIC);

    let bad_token = fed
        .gateway_gql(
            "not-a-token",
            "REFERRAL",
            "query($id: ID!) { survivor(id: $id) { id } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(bad_token.code(), "UNAUTHENTICATED");
    let invalid = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            "query($id: ID!) { survivor(id: $id) { id noSuchField } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(invalid.code(), "BAD_USER_INPUT");
    let aliases: Vec<String> = (0..40)
        .map(|i| format!("a{i}: survivor(id: $id) {{ id }}"))
        .collect();
    let too_complex = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            &format!("query($id: ID!) {{ {} }}", aliases.join(" ")),
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(too_complex.code(), "OPERATION_TOO_COMPLEX");

    assert_eq!(node_entries().await, before, "no node was asked anything");
    let refusals: Vec<_> = fed.gateway_events().await[gateway_before..]
        .iter()
        .map(|e| (e.decision, e.reason.clone()))
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(
        refusals.iter().all(|(d, _)| *d == Decision::Deny),
        "{refusals:?}"
    );
}

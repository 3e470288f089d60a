//! Another process appending to the node's audit log (a second node or
//! gateway on the same data directory or database, or a restarted one while
//! the old one still drains) does not break the node: its concurrent reads
//! and its changes all succeed, and the one chain they write verifies.
//!
//! The node keeps its log's head in memory; before the fix, once another
//! writer had appended, every later entry of the node collided with an entry
//! already stored and every request failed with INTERNAL_SERVER_ERROR (the
//! HTTP 500s of the gateway benchmark, which ran two gateways on one data
//! directory).

use agency_node::app::load_or_generate_node_key;
use agency_node::audit::{AuditLog, AuditOptions};
use agency_node::store::Db;
use exchange_schema::{AuditEvent, AuditKind, Decision};
use serde_json::json;

use crate::common::*;

/// Concurrent reads of one survivor through the node; each must succeed.
async fn concurrent_reads(node: &TestNode, token: &str, survivor: &str, count: usize) {
    let reads = (0..count).map(|_| node.read_survivor(token, "SERVICE_COORDINATION", survivor));
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.data()["survivor"]["id"], survivor);
    }
}

fn foreign_events(count: usize) -> Vec<AuditEvent> {
    (0..count)
        .map(|_| AuditEvent::new(AuditKind::Denial, Decision::Deny, "OTHER_PROCESS"))
        .collect()
}

async fn requests_succeed_while_another_process_appends(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Shared").await;
    node.grant(
        &survivor,
        SHELTER,
        &["IDENTITY"],
        &["SERVICE_COORDINATION"],
        json!({}),
    )
    .await;
    let requester = node.caseworker(SHELTER);

    // A second writer on the same database with the node's own key, as a
    // second process started on the same data directory would be.
    let other = AuditLog::open(
        Db::connect(&node.database_url).await.unwrap(),
        std::sync::Arc::new(load_or_generate_node_key(&node.data_dir).unwrap()),
        AuditOptions::new(OWNER),
    )
    .await
    .unwrap();

    // It appends first: the node's cached head is now behind the stored one.
    other.append_all(foreign_events(5)).await.unwrap();
    concurrent_reads(&node, &requester, &survivor, 32).await;
    // A change after the other writer appended again.
    other.append_all(foreign_events(3)).await.unwrap();
    let second = node.register_full_survivor("Shared again").await;
    assert!(!second.is_empty());
    // Both write at the same time.
    let (appended, ()) = futures::future::join(
        other.append_all(foreign_events(64)),
        concurrent_reads(&node, &requester, &survivor, 32),
    )
    .await;
    appended.unwrap();
    concurrent_reads(&node, &requester, &survivor, 8).await;

    // Nothing was lost and the single chain verifies.
    let events = node.audit_events().await;
    let foreign = events
        .iter()
        .filter(|e| e.reason == "OTHER_PROCESS")
        .count();
    assert_eq!(foreign, 5 + 3 + 64);
    let disclosures = events
        .iter()
        .filter(|e| {
            e.kind == AuditKind::Disclosure
                && e.actor_agency
                    .as_ref()
                    .is_some_and(|a| a.as_str() == SHELTER)
        })
        .count();
    assert_eq!(disclosures, 32 + 32 + 8);
    node.state.audit.checkpoint_now().await.unwrap();
    let (ok, out) = node.cli(&["audit", "verify", "--database", &node.database_url]);
    assert!(ok, "{out}");
}

on_both_backends!(requests_succeed_while_another_process_appends);

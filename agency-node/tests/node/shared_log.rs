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

use agency_node::store::Db;
use exchange_audit::keys::load_or_generate_signing_key;
use exchange_audit::{AuditLog, AuditOptions};
use exchange_schema::{AuditEvent, AuditKind, Decision};

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
    let (survivor, _) = node.survivor_sharing_identity_with_shelter("Shared").await;
    let requester = node.caseworker(SHELTER);

    // A second writer on the same database with the node's own key, as a
    // second process started on the same data directory would be.
    let other = AuditLog::open(
        Db::connect(&node.database_url).await.unwrap(),
        std::sync::Arc::new(load_or_generate_signing_key(&node.data_dir).unwrap()),
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

/// A raw append of one (unchained) entry at `seq`, as any other writer's
/// `INSERT` would be.
async fn raw_append(conn: &mut sqlx::AnyConnection, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, decision, break_glass, event, prev_hash, hash) \
         VALUES ($1, 0, 'DENIAL', 'DENY', 0, '{}', 'prev', 'hash')",
    )
    .bind(seq)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The lock the append retry writes under: while a writer holds it, from
/// reading the stored head to writing after it, no other writer can append,
/// so the head it read is still the head when it writes and its second
/// attempt cannot collide. Without the lock, the other writer's entry lands
/// in between (what the stress run of the test above once showed as
/// `UNIQUE constraint failed: audit_log.seq`).
async fn no_other_writer_appends_while_the_retry_holds_the_log_lock(backend: Backend) {
    use sqlx::{Connection as _, Row as _};
    let node = TestNode::start(backend).await;
    let db = Db::connect(&node.database_url).await.unwrap();
    let mut holder = db.pool().acquire().await.unwrap().detach();
    let mut other = db.pool().acquire().await.unwrap().detach();
    // The other writer gives up on a held lock after a moment instead of
    // waiting for it as long as the node's connections would.
    let give_up = match backend {
        Backend::Sqlite => "PRAGMA busy_timeout = 200",
        Backend::Postgres => "SET lock_timeout = '200ms'",
    };
    sqlx::query(give_up).execute(&mut other).await.unwrap();

    let mut tx = exchange_audit::begin_append(&mut holder, db.backend())
        .await
        .unwrap();
    let head: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS head FROM audit_log")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .try_get("head")
        .unwrap();
    let refused = raw_append(&mut other, head + 1)
        .await
        .expect_err("another writer appended while the retry held the log's lock");
    assert!(
        refused.to_string().contains("lock"),
        "refused for another reason than the lock: {refused}"
    );
    tx.rollback().await.unwrap();

    // Released, the same append goes through (rolled back, so that the
    // node's chain stays whole): it was the lock that kept it out.
    let mut after = other.begin().await.unwrap();
    raw_append(&mut after, head + 1).await.unwrap();
    after.rollback().await.unwrap();
}

on_both_backends!(
    requests_succeed_while_another_process_appends,
    no_other_writer_appends_while_the_retry_holds_the_log_lock,
);

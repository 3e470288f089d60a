//! The `exchange-audit` binary on its own, as an auditor without the node
//! or gateway binary runs it: it verifies a gateway's data directory (whose
//! database holds the audit tables and nothing else) and a database URL,
//! exports a log that then verifies, names a tampered entry, and never
//! creates or migrates anything; and what the group writer writes in one
//! transaction verifies.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use exchange_audit::cli::{VERIFY_FAILED, VERIFY_OK, VERIFY_UNCHECKED};
use exchange_audit::{AuditLog, AuditOptions};
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Category, Decision, GlobalId, Purpose};
use exchange_service::db::{Db, sqlite_url};

/// Runs `exchange-audit` with `args`: (exit status, stdout and stderr).
fn run(args: &[&str]) -> (i32, String) {
    exchange_test_kit::process::run(env!("CARGO_BIN_EXE_exchange-audit"), args)
}

fn event(i: u64) -> AuditEvent {
    let mut event = AuditEvent::new(AuditKind::Disclosure, Decision::Permit, "GRANT");
    event.actor_agency = Some(AgencyId::parse("legal-aid-east").unwrap());
    event.survivor = Some(GlobalId::parse(&format!("shelter-north:survivor-{i}")).unwrap());
    event.purpose = Some(Purpose::Referral);
    event.disclosed = vec![Category::Identity];
    event
}

/// A gateway-like log of `count` entries in `dir/gateway.db`, with only the
/// audit log's migrations applied. Returns the key's hex.
async fn gateway_log(dir: &Path, count: u64) -> String {
    let (db, log) = open_gateway_log(dir).await;
    for i in 1..=count {
        log.append(event(i)).await.unwrap();
    }
    log.checkpoint_now().await.unwrap();
    let key = log.public_key_hex();
    drop(log);
    db.close().await;
    key
}

/// Opens `dir/gateway.db` with only the audit log's migrations applied,
/// and its log under a fresh key.
async fn open_gateway_log(dir: &Path) -> (Db, AuditLog) {
    let db = Db::connect(&sqlite_url(dir, "gateway.db")).await.unwrap();
    db.migrate(&exchange_audit::MIGRATIONS).await.unwrap();
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Arc::new(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap());
    let log = AuditLog::open(db.clone(), key, AuditOptions::new("gateway"))
        .await
        .unwrap();
    (db, log)
}

async fn tables(url: &str) -> Vec<String> {
    let db = Db::connect(url).await.unwrap();
    let names = sqlx::query_scalar::<_, String>(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    db.close().await;
    names
}

/// The audit log's migrations create its tables and nothing of a node's:
/// no survivor, consent, referral or portal table.
#[tokio::test]
async fn the_audit_migrations_create_only_the_audit_tables() {
    let dir = tempfile::tempdir().unwrap();
    gateway_log(dir.path(), 1).await;
    assert_eq!(
        tables(&sqlite_url(dir.path(), "gateway.db")).await,
        [
            "_sqlx_migrations",
            "audit_checkpoints",
            "audit_head",
            "audit_log",
            "audit_signatures",
            "storage_probe"
        ]
    );
}

/// `verify --data-dir` finds the gateway's `gateway.db`, checks it with the
/// pinned key, and an export made by `export` verifies on its own.
#[tokio::test]
async fn a_gateway_log_verifies_and_its_export_verifies_too() {
    let dir = tempfile::tempdir().unwrap();
    let key = gateway_log(dir.path(), 12).await;
    let data_dir = dir.path().to_str().unwrap();

    let (code, out) = run(&["verify", "--data-dir", data_dir, "--public-key", &key]);
    assert_eq!(code, i32::from(VERIFY_OK), "{out}");
    assert!(
        out.contains("log gateway: 12 entries verified through seq 12"),
        "{out}"
    );

    let export = dir.path().join("export.jsonl");
    let (code, out) = run(&[
        "export",
        "--data-dir",
        data_dir,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&[
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--public-key",
        &key,
    ]);
    assert_eq!(code, i32::from(VERIFY_OK), "{out}");
    assert!(out.contains("12 entries verified"), "{out}");
}

/// A group larger than one `INSERT` statement (more than 16 entries queued
/// at once) is written whole, in order, under one signed head, and
/// verifies.
#[tokio::test]
async fn a_group_of_more_entries_than_one_statement_holds_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = open_gateway_log(dir.path()).await;
    log.append(event(0)).await.unwrap();
    log.append_all((1..=37).map(event).collect()).await.unwrap();
    assert_eq!(log.head().await.0, 38);
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(seqs, (1..=38).collect::<Vec<i64>>());
    let key = log.public_key_hex();
    drop(log);
    db.close().await;

    let data_dir = dir.path().to_str().unwrap();
    let (code, out) = run(&["verify", "--data-dir", data_dir, "--public-key", &key]);
    assert_eq!(code, i32::from(VERIFY_OK), "{out}");
    assert!(out.contains("38 entries verified through seq 38"), "{out}");
}

/// An entry edited in the database (its guard dropped first, as an attacker
/// with write access would) is named by `verify`, which exits 1.
#[tokio::test]
async fn an_edited_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = gateway_log(dir.path(), 6).await;
    let url = sqlite_url(dir.path(), "gateway.db");
    let db = Db::connect(&url).await.unwrap();
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET purpose = 'AUDIT' WHERE seq = 4",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    db.close().await;
    let (code, out) = run(&["verify", "--database", &url, "--public-key", &key]);
    assert_eq!(code, i32::from(VERIFY_FAILED), "{out}");
    assert!(
        out.contains("FAILED:") && out.contains("entry 4 was edited"),
        "{out}"
    );
}

/// `export` and `verify` on a data directory with no log fail with status 2
/// and create nothing; `export` refuses an export file as its source.
#[tokio::test]
async fn a_missing_log_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    for args in [
        vec!["verify", "--data-dir", empty],
        vec!["export", "--data-dir", empty],
    ] {
        let (code, out) = run(&args);
        assert_eq!(code, i32::from(VERIFY_UNCHECKED), "{args:?}: {out}");
        assert!(out.contains("no database at"), "{args:?}: {out}");
    }
    let (code, out) = run(&["export", "--export", "x.jsonl"]);
    assert_eq!(code, i32::from(VERIFY_UNCHECKED), "{out}");
    assert!(out.contains("export reads a database"), "{out}");
    assert_eq!(
        std::fs::read_dir(empty).unwrap().count(),
        0,
        "nothing was created"
    );
}

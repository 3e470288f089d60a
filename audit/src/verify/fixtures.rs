//! Test fixtures shared by the verification tests (and the export's): a
//! node's log on a temporary SQLite database, and what an attacker with
//! write access to that database does to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use exchange_schema::AuditEvent;
use exchange_schema::audit::{
    AuditKind, ChainHash, Checkpoint, Decision, GENESIS, chain_hash_event,
};
use exchange_schema::{AgencyId, Category, GlobalId, Purpose, Role};
use exchange_service::db::{Db, to_ms};
use sqlx::Row;
use tempfile::TempDir;

use super::{VerifyFailure, VerifyOptions, VerifyReport, load_checkpoints};
use crate::export::export_checkpoints;
use crate::lines::parse_hash;
use crate::log::decision_str as decision_wire;
use crate::{AuditLog, AuditOptions};

pub(crate) const LOG: &str = "shelter-north";
pub(crate) const ENTRIES: u64 = 20;

/// A node's log on a temporary SQLite database.
pub(crate) struct Fixture {
    _dir: TempDir,
    pub db: Db,
    pub log: AuditLog,
    pub key: Arc<Ed25519KeyPair>,
}

impl Fixture {
    pub fn key_hex(&self) -> String {
        self.log.public_key_hex()
    }

    pub fn pinned(&self) -> VerifyOptions {
        VerifyOptions {
            expected_key: Some(self.key_hex()),
            ..VerifyOptions::default()
        }
    }
}

pub(crate) fn new_key() -> Arc<Ed25519KeyPair> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Arc::new(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
}

pub(crate) fn event(agency: &str, i: u64) -> AuditEvent {
    let denied = i.is_multiple_of(3);
    let mut event = if denied {
        AuditEvent::new(AuditKind::Denial, Decision::Deny, "NO_GRANT")
    } else {
        AuditEvent::new(AuditKind::Disclosure, Decision::Permit, "GRANT")
    };
    event.actor_agency = Some(AgencyId::parse("legal-aid-east").unwrap());
    event.actor_user = Some(format!("caseworker-{i}"));
    event.actor_roles = vec![Role::Caseworker];
    event.survivor = Some(GlobalId::parse(&format!("{agency}:survivor-{}", i % 4)).unwrap());
    event.purpose = Some(Purpose::Referral);
    if !denied {
        event.disclosed = vec![Category::Identity];
    }
    event.trace_id = Some(format!("{i:032x}"));
    event
}

/// An empty, migrated log database in a temporary directory (kept while
/// the returned directory lives).
pub(crate) async fn scratch_db() -> (TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("node.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate(&crate::MIGRATIONS).await.unwrap();
    (dir, db)
}

/// A log of `count` entries appended one by one, signed every 5.
pub(crate) async fn fixture(log_id: &str, count: u64) -> Fixture {
    let (dir, db) = scratch_db().await;
    let key = new_key();
    let options = AuditOptions {
        checkpoint_every: 5,
        ..AuditOptions::new(log_id)
    };
    let log = AuditLog::open(db.clone(), key.clone(), options)
        .await
        .unwrap();
    for i in 1..=count {
        log.append(event(log_id, i)).await.unwrap();
    }
    log.checkpoint_now().await.unwrap();
    Fixture {
        _dir: dir,
        db,
        log,
        key,
    }
}

pub(crate) async fn exec(db: &Db, sql: &str) {
    sqlx::query(sql).execute(db.pool()).await.unwrap();
}

/// What an attacker with write access to the file does first.
pub(crate) async fn drop_triggers(db: &Db) {
    exec(db, "DROP TRIGGER audit_log_no_update").await;
    exec(db, "DROP TRIGGER audit_log_no_delete").await;
    exec(db, "DROP TRIGGER audit_head_forward_only").await;
    exec(db, "DROP TRIGGER audit_head_no_delete").await;
}

pub(crate) struct StoredRow {
    pub event: AuditEvent,
    pub prev: String,
    pub hash: String,
}

pub(crate) async fn stored(db: &Db, seq: u64) -> StoredRow {
    let row = sqlx::query("SELECT event, prev_hash, hash FROM audit_log WHERE seq = $1")
        .bind(seq as i64)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let event: String = row.try_get("event").unwrap();
    StoredRow {
        event: serde_json::from_str(&event).unwrap(),
        prev: row.try_get("prev_hash").unwrap(),
        hash: row.try_get("hash").unwrap(),
    }
}

/// Overwrites a row, index columns consistent with `event`.
pub(crate) async fn overwrite(db: &Db, seq: u64, event: &AuditEvent, prev: &str, hash: &str) {
    sqlx::query(
        "UPDATE audit_log SET at = $1, kind = $2, actor_agency = $3, survivor = $4, purpose = $5, \
         decision = $6, break_glass = $7, event = $8, prev_hash = $9, hash = $10 WHERE seq = $11",
    )
    .bind(to_ms(event.at))
    .bind(event.kind.as_str())
    .bind(event.actor_agency.as_ref().map(|a| a.as_str().to_owned()))
    .bind(event.survivor.as_ref().map(ToString::to_string))
    .bind(event.purpose.map(|p| p.as_str()))
    .bind(decision_wire(event.decision))
    .bind(i64::from(event.break_glass))
    .bind(String::from_utf8(event.canonical_bytes()).unwrap())
    .bind(prev)
    .bind(hash)
    .bind(seq as i64)
    .execute(db.pool())
    .await
    .unwrap();
}

/// Rewrites history from `from` on: edits that entry and recomputes the
/// hash of it and every later one, as a careful attacker would.
pub(crate) async fn rewrite_from(
    db: &Db,
    from: u64,
    edit: impl Fn(&mut AuditEvent),
) -> BTreeMap<u64, ChainHash> {
    let mut prev = if from == 1 {
        GENESIS
    } else {
        parse_hash(&stored(db, from - 1).await.hash).unwrap()
    };
    let mut heads = BTreeMap::new();
    for seq in from..=ENTRIES {
        let mut event = stored(db, seq).await.event;
        if seq == from {
            edit(&mut event);
        }
        let hash = chain_hash_event(&prev, seq, &event);
        overwrite(db, seq, &event, &hex::encode(prev), &hex::encode(hash)).await;
        heads.insert(seq, hash);
        prev = hash;
    }
    heads
}

/// Replaces the stored checkpoint at `seq`.
pub(crate) async fn replace_checkpoint(db: &Db, cp: &Checkpoint) {
    sqlx::query("UPDATE audit_checkpoints SET checkpoint = $1 WHERE seq = $2")
        .bind(serde_json::to_string(cp).unwrap())
        .bind(cp.seq as i64)
        .execute(db.pool())
        .await
        .unwrap();
}

pub(crate) async fn collected(db: &Db) -> Vec<Checkpoint> {
    let mut buf = Vec::new();
    export_checkpoints(db, &mut buf).await.unwrap();
    load_checkpoints(&buf[..]).unwrap()
}

pub(crate) fn verified(result: Result<VerifyReport, VerifyFailure>) -> VerifyReport {
    result.unwrap_or_else(|failure| panic!("the export must verify: {failure}"))
}

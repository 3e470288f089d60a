//! The group-commit writer of a log on SQLite: a thread of its own that
//! owns its own connection to the database file and writes each group in one
//! transaction there, then answers the group's waiters.
//!
//! **Why a thread and not sqlx.** sqlx runs each SQLite connection on a
//! worker thread and hands it every statement over a channel, so a group
//! written through sqlx cost the writer task, that worker and a runtime
//! worker several wake-ups each. The audit bench
//! (`cargo bench -p agency-node --bench audit_append`) measured one append
//! at a time through that path at 2.3 times the CPU of the same durable
//! transaction written by the calling thread (283 against 122 us, of which
//! the flush is 85), and 1.8 times its latency. Here a request's entry
//! costs one hand-off to this thread and one wake-up back.
//!
//! **The same guarantees as [`super::write_group`].** `BEGIN IMMEDIATE`
//! takes the database's write lock (waiting up to the pool's busy timeout
//! for another writer, in this process or another), the group is chained to
//! the stored head read inside it, the signed head is rewritten in the same
//! transaction, and the waiters are answered only after `COMMIT` returned.
//! After any failure the connection is closed (SQLite rolls back what it
//! had open) and the next group opens a new one; a group is never written on
//! a connection whose state is unknown. Once the pool is closed (the process
//! shutting down, or a test taking the database away) nothing more is
//! written. When every [`super::AuditLog`] is dropped the queue ends, a last
//! checkpoint is signed, and the thread stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{
    ChainState, Checkpoint, GENESIS, Handover, Inner, NEWEST_HANDOVER_SQL, Pending, adopt_head,
    chain_rows, insert_entries_sql, parse_hash,
};

/// How long the writer's connection waits for the database's write lock
/// held by another writer: the pool's `busy_timeout`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the writer thread for the log at `file`.
pub(super) fn spawn(
    inner: Arc<Inner>,
    queue: mpsc::Receiver<Pending>,
    file: PathBuf,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || run(inner, queue, file))
        .map(drop)
}

fn run(inner: Arc<Inner>, mut queue: mpsc::Receiver<Pending>, file: PathBuf) {
    let mut batch: Vec<Pending> = Vec::with_capacity(inner.options.max_batch);
    let mut conn: Option<rusqlite::Connection> = None;
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < inner.options.max_batch {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        if !inner.ready_to_write(&mut batch, queue.len()) {
            continue;
        }
        let started = Instant::now();
        let mut chain = inner.chain.blocking_lock();
        let written = write_group(&inner, &mut conn, &file, &mut chain, &batch);
        if written.is_err() {
            // Closed, whatever state the failure left it in.
            conn = None;
        }
        let succeeded = written.is_ok();
        inner.answer(&mut batch, written, started);
        if succeeded {
            maybe_checkpoint(&inner, &mut conn, &file, &mut chain, false);
        }
    }
    let mut chain = inner.chain.blocking_lock();
    maybe_checkpoint(&inner, &mut conn, &file, &mut chain, true);
}

/// The writer's connection, opened on first use and after a failure, with
/// the pool's settings: foreign keys on, the busy timeout, the write-ahead
/// log and `synchronous = FULL`.
fn connection<'c>(
    slot: &'c mut Option<rusqlite::Connection>,
    file: &Path,
) -> rusqlite::Result<&'c mut rusqlite::Connection> {
    if let Some(conn) = slot {
        return Ok(conn);
    }
    // The file exists: the pool created and migrated it before the log
    // opened. A file gone since is an error here, not a new database.
    let conn = rusqlite::Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(slot.insert(conn))
}

/// Writes `batch` in one transaction, chained after the stored head, with
/// the signed head that covers it; returns the first entry's `seq`. The
/// cached head moves only once the commit succeeded.
fn write_group(
    inner: &Inner,
    slot: &mut Option<rusqlite::Connection>,
    file: &Path,
    chain: &mut ChainState,
    batch: &[Pending],
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !inner.is_retired(),
        "this process's signing key was retired"
    );
    anyhow::ensure!(!inner.db.pool().is_closed(), "the database is closed");
    let conn = connection(slot, file)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    let stored = match stored {
        Some((seq, hash)) => (seq as u64, parse_hash(&hash)?),
        None => (0, GENESIS),
    };
    // A working copy: the cached head moves only after the commit.
    let mut at = *chain;
    let since = at.seq;
    if adopt_head(&mut at, stored) {
        let handover = tx
            .prepare_cached(NEWEST_HANDOVER_SQL)?
            .query_row(params![since as i64, at.seq as i64], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?
            .map(|(seq, event)| Handover::from_entry(seq, &event))
            .transpose()?;
        inner.retire_unless_ours(handover)?;
    }
    let (rows, head) = chain_rows(&at, batch)?;
    let first = at.seq + 1;
    let last = at.seq + batch.len() as u64;
    {
        let mut insert = tx.prepare_cached(insert_entries_sql(1))?;
        for row in rows {
            insert.execute(params![
                row.seq,
                row.at,
                row.kind,
                row.actor_agency,
                row.survivor,
                row.purpose,
                row.decision,
                row.break_glass,
                row.event,
                hex::encode(row.prev),
                hex::encode(row.hash),
            ])?;
        }
    }
    let checkpoint = Checkpoint::sign(&inner.key, &inner.options.log_id, last, &head);
    tx.prepare_cached(super::UPSERT_HEAD_SQL)?
        .execute(params![last as i64, serde_json::to_string(&checkpoint)?])?;
    tx.commit()?;
    chain.seq = last;
    chain.head = head;
    Ok(first)
}

/// [`Inner::maybe_checkpoint`] on the writer's connection.
fn maybe_checkpoint(
    inner: &Inner,
    slot: &mut Option<rusqlite::Connection>,
    file: &Path,
    chain: &mut ChainState,
    force: bool,
) {
    if !inner.checkpoint_due(chain, force) || inner.db.pool().is_closed() {
        return;
    }
    let checkpoint = Checkpoint::sign(&inner.key, &inner.options.log_id, chain.seq, &chain.head);
    let written = connection(slot, file)
        .map_err(anyhow::Error::from)
        .and_then(|conn| {
            conn.prepare_cached(super::INSERT_CHECKPOINT_SQL)?
                .execute(params![
                    chain.seq as i64,
                    serde_json::to_string(&checkpoint)?
                ])?;
            Ok(())
        });
    match written {
        Ok(()) => chain.checkpointed_seq = chain.seq,
        Err(err) => {
            *slot = None;
            tracing::error!(error = ?err, "signing an audit checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use exchange_service::db::Db;

    use crate::verify::fixtures::{event, new_key, scratch_db};
    use crate::verify::{VerifyOptions, verify_database};
    use crate::{AuditLog, AuditOptions};

    /// The newest signed checkpoint's seq, or 0.
    async fn checkpointed(db: &Db) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM audit_checkpoints")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn the_writer_signs_a_last_checkpoint_when_its_log_is_dropped() {
        let (_dir, db) = scratch_db().await;
        let key = new_key();
        // Far from the next checkpoint by count or by time.
        let options = AuditOptions {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(3600),
            ..AuditOptions::new("shelter-north")
        };
        let log = AuditLog::open(db.clone(), key, options).await.unwrap();
        let public_key = log.public_key_hex();
        for i in 1..=3 {
            log.append(event("shelter-north", i)).await.unwrap();
        }
        assert_eq!(checkpointed(&db).await, 0, "no checkpoint is due yet");

        // Every sender gone: the queue ends and the thread signs the rest.
        drop(log);
        let mut waited = Duration::ZERO;
        while checkpointed(&db).await < 3 {
            assert!(
                waited < Duration::from_secs(30),
                "the writer never signed its last checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        let report = verify_database(
            &db,
            &VerifyOptions {
                expected_key: Some(public_key),
                ..VerifyOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((report.last_seq, report.signed_through), (3, 3));
    }
}

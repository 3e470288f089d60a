//! Verification of a live database: [`verify_database`] reads `audit_log`
//! and the stored checkpoints and signed head in pages, feeds them to the
//! [`Chain`], and checks that each row's index columns agree with its
//! event.

use exchange_schema::AuditEvent;
use exchange_schema::audit::Checkpoint;
use sqlx::Row;
use sqlx::any::AnyRow;

use exchange_service::db::{Db, to_ms};

use super::chain::{Chain, Item, text_digest};
use super::failure::{EditDetail, VerifyFailure, read_error};
use super::{PAGE_ROWS, VerifyOptions, VerifyReport};

/// Verifies the log in `db`: `audit_log` in `seq` order, [`PAGE_ROWS`] rows
/// at a time, against `audit_checkpoints` and `opts`. Entries appended while
/// it runs are left for the next run.
pub async fn verify_database(db: &Db, opts: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
    let pool = db.pool();
    let log_id = match &opts.log_id {
        Some(id) => Some(id.clone()),
        None => {
            let first =
                sqlx::query("SELECT seq, checkpoint FROM audit_checkpoints ORDER BY seq LIMIT 1")
                    .fetch_optional(pool)
                    .await
                    .map_err(read_error)?;
            match first {
                Some(row) => Some(checkpoint_row(&row)?.log_id),
                None => None,
            }
        }
    };
    // The signed head, rewritten with every write, covers the newest entry
    // the writer acknowledged: checked like a checkpoint, so a log whose
    // newest entries were cut fails.
    let head = signed_head(db).await?;
    let log_id = log_id.or_else(|| head.as_ref().map(|h| h.log_id.clone()));
    let mut chain = Chain::new(opts, log_id)?;

    // Checkpoints first: the writer signs a `seq` only once it is written, so
    // every checkpoint up to `cp_max` covers an entry at or below `upper`
    // unless the log was truncated.
    let cp_max = sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
        .fetch_one(pool)
        .await
        .and_then(|row| row.try_get::<Option<i64>, _>("seq"))
        .map_err(read_error)?
        .unwrap_or(0);
    chain.history_through = Some(cp_max as u64);
    let cp_max = head.as_ref().map_or(cp_max, |h| cp_max.max(h.seq as i64));
    let bounds = sqlx::query("SELECT MIN(seq) AS low, MAX(seq) AS high FROM audit_log")
        .fetch_one(pool)
        .await
        .map_err(read_error)?;
    let low: Option<i64> = bounds.try_get("low").map_err(read_error)?;
    let upper: i64 = bounds
        .try_get::<Option<i64>, _>("high")
        .map_err(read_error)?
        .unwrap_or(0);
    if let Some(low) = low
        && low < 1
    {
        return Err(VerifyFailure::Inserted { seq: low });
    }
    chain.search_upper = upper as u64;

    let mut cursor: i64 = 0;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, kind, actor_agency, survivor, purpose, decision, break_glass, event, prev_hash, hash \
             FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(cursor)
        .bind(upper)
        .bind(PAGE_ROWS)
        .fetch_all(pool)
        .await
        .map_err(read_error)?;
        let Some(last_row) = rows.last() else { break };
        let page_high: i64 = last_row.try_get("seq").map_err(read_error)?;
        for cp in with_head(
            checkpoints_between(db, cursor, page_high, None).await?,
            &head,
            cursor,
            page_high,
        ) {
            chain.add_checkpoint(cp)?;
        }
        for row in &rows {
            check_row(&mut chain, row)?;
        }
        cursor = page_high;
    }
    if let Some(cp) = with_head(
        checkpoints_between(db, cursor, cp_max, Some(1)).await?,
        &head,
        cursor,
        cp_max,
    )
    .into_iter()
    .next()
    {
        chain.add_checkpoint(cp)?;
    }
    chain.check_end()?;
    chain.report()
}

/// The log's signed head (`audit_head`), if it has one. A database written
/// before the signed head existed has no such table, or no row: `None`.
async fn signed_head(db: &Db) -> Result<Option<Checkpoint>, VerifyFailure> {
    let table = sqlx::query(match db.backend() {
        exchange_service::db::Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'"
        }
        exchange_service::db::Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'audit_head'"
        }
    })
    .fetch_one(db.pool())
    .await
    .and_then(|row| row.try_get::<i64, _>("n"))
    .map_err(read_error)?;
    if table == 0 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT seq, checkpoint FROM audit_head WHERE id = 1")
        .fetch_optional(db.pool())
        .await
        .map_err(read_error)?;
    row.as_ref().map(checkpoint_row).transpose()
}

/// `checkpoints` (in `seq` order, `low < seq <= high`) with the signed head
/// added in its place when it falls in that range and no stored checkpoint
/// has its `seq` (one that has is checked as it is).
fn with_head(
    mut checkpoints: Vec<Checkpoint>,
    head: &Option<Checkpoint>,
    low: i64,
    high: i64,
) -> Vec<Checkpoint> {
    if let Some(head) = head {
        let seq = head.seq as i64;
        if seq > low && seq <= high && !checkpoints.iter().any(|cp| cp.seq == head.seq) {
            let at = checkpoints.partition_point(|cp| cp.seq < head.seq);
            checkpoints.insert(at, head.clone());
        }
    }
    checkpoints
}

/// The stored checkpoints with `low < seq <= high`, in `seq` order.
async fn checkpoints_between(
    db: &Db,
    low: i64,
    high: i64,
    limit: Option<i64>,
) -> Result<Vec<Checkpoint>, VerifyFailure> {
    let rows = sqlx::query(
        "SELECT seq, checkpoint FROM audit_checkpoints WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
    )
    .bind(low)
    .bind(high)
    .bind(limit.unwrap_or(PAGE_ROWS))
    .fetch_all(db.pool())
    .await
    .map_err(read_error)?;
    rows.iter().map(checkpoint_row).collect()
}

fn checkpoint_row(row: &AnyRow) -> Result<Checkpoint, VerifyFailure> {
    let seq: i64 = row.try_get("seq").map_err(read_error)?;
    let malformed = |reason: String| VerifyFailure::MalformedCheckpoint {
        seq: seq.max(0) as u64,
        reason,
    };
    let text: String = row
        .try_get("checkpoint")
        .map_err(|e| malformed(e.to_string()))?;
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    if i64::try_from(cp.seq) != Ok(seq) {
        return Err(malformed(format!(
            "it is stored at seq {seq} but names seq {}",
            cp.seq
        )));
    }
    Ok(cp)
}

/// Checks one `audit_log` row: its place in the chain, then that its index
/// columns agree with its event, then the checkpoints at its `seq`.
fn check_row(chain: &mut Chain, row: &AnyRow) -> Result<(), VerifyFailure> {
    let seq = row.try_get::<i64, _>("seq").map_err(read_error)? as u64;
    let edited = |detail| VerifyFailure::Edited { seq, detail };
    let text: Result<String, _> = row.try_get("event");
    // An unreadable hash column is reported as a bad hash, after the check
    // for a missing `seq`.
    let prev: String = row.try_get("prev_hash").unwrap_or_default();
    let hash: String = row.try_get("hash").unwrap_or_default();
    let digest = match &text {
        Ok(text) => Ok(text_digest(text)),
        Err(err) => Err(EditDetail::Unreadable(err.to_string())),
    };
    chain.entry(
        seq,
        Item::Full {
            digest,
            prev: &prev,
            hash: &hash,
        },
    )?;
    let text = text.map_err(|e| edited(EditDetail::Unreadable(e.to_string())))?;
    let event: AuditEvent =
        serde_json::from_str(&text).map_err(|e| edited(EditDetail::Unreadable(e.to_string())))?;
    check_index(seq, row, &event)?;
    chain.pass(seq)
}

/// A stored index column: its value, or `Err` when it cannot be read.
type Stored = Result<Option<String>, ()>;

/// The index columns must say what the event says.
fn check_index(seq: u64, row: &AnyRow, event: &AuditEvent) -> Result<(), VerifyFailure> {
    let text = |column: &str| -> Stored { row.try_get(column).map_err(|_| ()) };
    let int = |column: &str| -> Stored {
        row.try_get::<i64, _>(column)
            .map(|v| Some(v.to_string()))
            .map_err(|_| ())
    };
    let columns: [(&'static str, Stored, Option<String>); 7] = [
        ("at", int("at"), Some(to_ms(event.at).to_string())),
        ("kind", text("kind"), Some(event.kind.as_str().to_owned())),
        (
            "actor_agency",
            text("actor_agency"),
            event.actor_agency.as_ref().map(|a| a.as_str().to_owned()),
        ),
        (
            "survivor",
            text("survivor"),
            event.survivor.as_ref().map(ToString::to_string),
        ),
        (
            "purpose",
            text("purpose"),
            event.purpose.map(|p| p.as_str().to_owned()),
        ),
        (
            "decision",
            text("decision"),
            Some(crate::log::decision_str(event.decision).to_owned()),
        ),
        (
            "break_glass",
            int("break_glass"),
            Some(i64::from(event.break_glass).to_string()),
        ),
    ];
    for (column, stored, expected) in columns {
        if stored.as_ref() != Ok(&expected) {
            return Err(VerifyFailure::Edited {
                seq,
                detail: EditDetail::Column {
                    column,
                    stored: match stored {
                        Ok(value) => show(value.as_deref()),
                        Err(()) => "an unreadable value".to_owned(),
                    },
                    event: show(expected.as_deref()),
                },
            });
        }
    }
    Ok(())
}

fn show(value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "nothing".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use exchange_schema::audit::{GENESIS, chain_hash_event};

    use super::*;
    use crate::lines::parse_hash;
    use crate::verify::failure::signed_at;
    use crate::verify::fixtures::*;
    use crate::{AuditLog, AuditOptions};

    /// Runs `sql` against the log as an attacker would (triggers dropped
    /// first) and returns how verification with the pinned key fails.
    async fn tampered(f: &Fixture, sql: &str) -> VerifyFailure {
        drop_triggers(&f.db).await;
        exec(&f.db, sql).await;
        fails(&f.db, &f.pinned()).await
    }

    async fn fails(db: &Db, opts: &VerifyOptions) -> VerifyFailure {
        verify_database(db, opts)
            .await
            .expect_err("the log must not verify")
    }

    #[tokio::test]
    async fn an_untouched_log_verifies() {
        let f = fixture(LOG, ENTRIES).await;
        let report = verify_database(&f.db, &f.pinned()).await.unwrap();
        let (seq, head) = f.log.head().await;
        assert_eq!(report.entries_checked, ENTRIES);
        assert_eq!(report.last_seq, seq);
        assert_eq!(report.head, hex::encode(head));
        assert_eq!(report.checkpoints_verified, 4);
        assert_eq!(report.signed_through, 20);
        assert_eq!(report.log_id.as_deref(), Some(LOG));
        assert!(report.key_pinned);

        let unpinned = verify_database(&f.db, &VerifyOptions::default())
            .await
            .unwrap();
        assert!(!unpinned.key_pinned);
        assert_eq!(unpinned.public_key, Some(f.key_hex()));
        assert!(
            unpinned.to_string().contains("was not pinned"),
            "{unpinned}"
        );

        let opts = VerifyOptions {
            collected_checkpoints: collected(&f.db).await,
            ..f.pinned()
        };
        let report = verify_database(&f.db, &opts).await.unwrap();
        assert_eq!(report.collected_matched, 4);
        assert!(report.warnings().is_empty(), "{report}");
    }

    #[tokio::test]
    async fn an_empty_log_verifies() {
        let f = fixture(LOG, 0).await;
        let report = verify_database(&f.db, &f.pinned()).await.unwrap();
        assert_eq!((report.entries_checked, report.last_seq), (0, 0));
        assert_eq!(report.head, hex::encode(GENESIS));
    }

    #[tokio::test]
    async fn an_edited_event_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        let row = stored(&f.db, 7).await;
        let mut event = row.event;
        event.actor_user = Some("someone-else".into());
        overwrite(&f.db, 7, &event, &row.prev, &row.hash).await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(
            failure,
            VerifyFailure::Edited {
                seq: 7,
                detail: EditDetail::ContentMismatch
            }
        );
        assert_eq!(
            failure.to_string(),
            "entry 7 was edited: its content no longer matches its hash"
        );
    }

    #[tokio::test]
    async fn an_unparseable_event_is_an_edit() {
        let f = fixture(LOG, ENTRIES).await;
        let failure = tampered(&f, "UPDATE audit_log SET event = 'not json' WHERE seq = 3").await;
        assert!(
            matches!(failure, VerifyFailure::Edited { seq: 3, .. }),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn an_edited_index_column_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        let failure = tampered(
            &f,
            "UPDATE audit_log SET survivor = 'shelter-north:nobody' WHERE seq = 9",
        )
        .await;
        assert!(
            matches!(
                &failure,
                VerifyFailure::Edited {
                    seq: 9,
                    detail: EditDetail::Column {
                        column: "survivor",
                        ..
                    }
                }
            ),
            "{failure}"
        );
        assert_eq!(
            failure.to_string(),
            "entry 9 was edited: its survivor column says \"shelter-north:nobody\" but its event says \
             \"shelter-north:survivor-1\""
        );

        let f = fixture(LOG, ENTRIES).await;
        let failure = tampered(&f, "UPDATE audit_log SET break_glass = 1 WHERE seq = 4").await;
        assert!(
            matches!(
                &failure,
                VerifyFailure::Edited {
                    seq: 4,
                    detail: EditDetail::Column {
                        column: "break_glass",
                        ..
                    }
                }
            ),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_deleted_entry_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        let failure = tampered(&f, "DELETE FROM audit_log WHERE seq = 12").await;
        assert_eq!(failure, VerifyFailure::Deleted { seq: 12, next: 13 });
        assert_eq!(
            failure.to_string(),
            "entry 12 was deleted: entry 11 is followed by entry 13"
        );

        exec(&f.db, "DELETE FROM audit_log WHERE seq <= 2").await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(failure, VerifyFailure::Deleted { seq: 1, next: 3 });
        assert_eq!(
            failure.to_string(),
            "entries 1 to 2 were deleted: the log starts at entry 3"
        );
    }

    #[tokio::test]
    async fn a_truncated_log_is_caught_by_its_checkpoint() {
        let f = fixture(LOG, ENTRIES).await;
        let failure = tampered(&f, "DELETE FROM audit_log WHERE seq > 17").await;
        assert_eq!(
            failure,
            VerifyFailure::Truncated {
                last_seq: 17,
                checkpoint_seq: 20,
            }
        );
        assert_eq!(
            failure.to_string(),
            "the log was truncated: it ends at entry 17 but a checkpoint covers entry 20"
        );

        // Dropping the checkpoints too leaves the ones collected earlier.
        let opts = VerifyOptions {
            collected_checkpoints: collected(&f.db).await,
            ..f.pinned()
        };
        exec(&f.db, "DELETE FROM audit_checkpoints WHERE seq > 17").await;
        // The signed head goes too, as an attacker cutting the log would.
        exec(&f.db, "DROP TRIGGER IF EXISTS audit_head_no_delete").await;
        exec(&f.db, "DELETE FROM audit_head").await;
        let failure = fails(&f.db, &opts).await;
        let newest = opts.collected_checkpoints.last().unwrap();
        assert_eq!(newest.seq, 20);
        let time = signed_at(newest);
        assert_eq!(
            failure,
            VerifyFailure::EntriesCut {
                last_seq: 17,
                checkpoint_seq: 20,
                signed_at: time.clone(),
            }
        );
        assert_eq!(
            failure.to_string(),
            format!(
                "the log ends at seq 17 but a checkpoint collected earlier (signed at {time}) \
                 covers seq 20 > 17: entries were cut"
            )
        );
    }

    /// A collected checkpoint beyond the end of the log proves entries were
    /// cut only if the log's key signed it: one signed by another key is
    /// refused as evidence, even when no key was pinned.
    #[tokio::test]
    async fn a_collected_checkpoint_beyond_the_log_must_carry_the_logs_key() {
        let f = fixture(LOG, ENTRIES).await;
        let forged = Checkpoint::sign(&new_key(), LOG, ENTRIES + 10, &[7; 32]);
        let mut collected_checkpoints = collected(&f.db).await;
        collected_checkpoints.push(forged);
        let opts = VerifyOptions {
            collected_checkpoints,
            ..VerifyOptions::default()
        };
        let failure = fails(&f.db, &opts).await;
        assert_eq!(
            failure,
            VerifyFailure::CollectedInvalid {
                seq: ENTRIES + 10,
                reason: "it was signed by a key other than the expected one".into()
            }
        );
        // Signed by the log's own key, it is evidence of a cut.
        let genuine = Checkpoint::sign(&f.key, LOG, ENTRIES + 10, &[7; 32]);
        let opts = VerifyOptions {
            collected_checkpoints: vec![genuine.clone()],
            ..VerifyOptions::default()
        };
        assert_eq!(
            fails(&f.db, &opts).await,
            VerifyFailure::EntriesCut {
                last_seq: ENTRIES,
                checkpoint_seq: ENTRIES + 10,
                signed_at: signed_at(&genuine),
            }
        );
    }

    /// When the log's own checkpoints stop before one collected earlier
    /// (checkpoint rows removed, the entries left in place), verification
    /// fails and names both positions and when the collected one was signed.
    #[tokio::test]
    async fn a_log_whose_checkpoints_stop_before_a_collected_one_fails() {
        let f = fixture(LOG, ENTRIES).await;
        let opts = VerifyOptions {
            collected_checkpoints: collected(&f.db).await,
            ..f.pinned()
        };
        verified(verify_database(&f.db, &opts).await);
        let newest = opts.collected_checkpoints.last().unwrap().clone();
        assert_eq!(newest.seq, 20);

        exec(&f.db, "DELETE FROM audit_checkpoints WHERE seq > 10").await;
        // The signed head goes too, as an attacker cutting the log would.
        exec(&f.db, "DROP TRIGGER IF EXISTS audit_head_no_delete").await;
        exec(&f.db, "DELETE FROM audit_head").await;
        let failure = fails(&f.db, &opts).await;
        assert_eq!(
            failure,
            VerifyFailure::CheckpointsCut {
                newest: 10,
                checkpoint_seq: 20,
                signed_at: signed_at(&newest),
            }
        );
        assert_eq!(
            failure.to_string(),
            format!(
                "the log's newest checkpoint is at seq 10 but a checkpoint collected earlier \
                 (signed at {}) covers seq 20 > 10: its checkpoints were cut",
                signed_at(&newest)
            )
        );
        // Alone, the log still verifies (up to seq 10): only the collected
        // checkpoints show what is missing.
        verified(verify_database(&f.db, &f.pinned()).await);

        // With none left, the log is named by the caller.
        exec(&f.db, "DELETE FROM audit_checkpoints").await;
        let named = VerifyOptions {
            log_id: Some(LOG.into()),
            ..opts
        };
        assert!(matches!(
            fails(&f.db, &named).await,
            VerifyFailure::CheckpointsCut {
                newest: 0,
                checkpoint_seq: 20,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn swapped_entries_are_reordered() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        let (a, b) = (stored(&f.db, 6).await, stored(&f.db, 14).await);
        overwrite(&f.db, 6, &b.event, &b.prev, &b.hash).await;
        overwrite(&f.db, 14, &a.event, &a.prev, &a.hash).await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(failure, VerifyFailure::Reordered { seq: 6, from: 14 });
        assert_eq!(
            failure.to_string(),
            "entry 6 was reordered: it holds the entry originally at seq 14"
        );
    }

    #[tokio::test]
    async fn deleting_and_renumbering_is_caught() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        // Entry 8 removed, later entries moved up one place.
        for seq in 8..ENTRIES {
            let next = stored(&f.db, seq + 1).await;
            overwrite(&f.db, seq, &next.event, &next.prev, &next.hash).await;
        }
        exec(&f.db, "DELETE FROM audit_log WHERE seq = 20").await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(failure, VerifyFailure::Reordered { seq: 8, from: 9 });
    }

    #[tokio::test]
    async fn one_rehashed_entry_breaks_the_next_link() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        let row = stored(&f.db, 11).await;
        let mut event = row.event;
        event.reason = "OWNER".into();
        let hash = chain_hash_event(&parse_hash(&row.prev).unwrap(), 11, &event);
        overwrite(&f.db, 11, &event, &row.prev, &hex::encode(hash)).await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(failure, VerifyFailure::BrokenLink { seq: 12 });
        assert!(
            failure.to_string().contains("entry 11 was rewritten"),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn history_rewritten_after_a_checkpoint_is_caught() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        rewrite_from(&f.db, 8, |event| event.survivor = None).await;
        let failure = fails(&f.db, &f.pinned()).await;
        let VerifyFailure::HistoryRewritten { seq, since, .. } = &failure else {
            panic!("{failure}");
        };
        assert_eq!((*seq, *since), (10, 5));
        assert!(
            failure
                .to_string()
                .starts_with("history rewritten after checkpoint at seq 10 was signed"),
            "{failure}"
        );
        assert!(
            failure
                .to_string()
                .ends_with("(the rewrite lies in entries 6 to 10)")
        );
    }

    #[tokio::test]
    async fn a_rewrite_re_signed_with_the_node_key_is_a_fork() {
        let f = fixture(LOG, ENTRIES).await;
        let earlier = collected(&f.db).await;
        drop_triggers(&f.db).await;
        let heads = rewrite_from(&f.db, 8, |event| event.survivor = None).await;
        for seq in [10, 15, 20] {
            replace_checkpoint(&f.db, &Checkpoint::sign(&f.key, LOG, seq, &heads[&seq])).await;
        }
        // The log agrees with itself and with its (new) signatures...
        verify_database(&f.db, &f.pinned()).await.unwrap();
        // ...but not with what auditors collected before.
        let opts = VerifyOptions {
            collected_checkpoints: earlier.clone(),
            ..f.pinned()
        };
        let failure = fails(&f.db, &opts).await;
        let original = earlier.iter().find(|cp| cp.seq == 10).unwrap();
        assert_eq!(
            failure,
            VerifyFailure::Fork {
                seq: 10,
                collected: original.head.clone(),
                log: hex::encode(heads[&10]),
            }
        );
        assert_eq!(
            failure.to_string(),
            format!(
                "fork: checkpoint collected at seq 10 says {}, log says {}",
                original.head,
                hex::encode(heads[&10])
            )
        );
        // A collected checkpoint must carry a good signature.
        let mut forged = VerifyOptions {
            collected_checkpoints: vec![original.clone()],
            ..f.pinned()
        };
        forged.collected_checkpoints[0].signed_at += time::Duration::seconds(1);
        assert_eq!(
            fails(&f.db, &forged).await,
            VerifyFailure::CollectedInvalid {
                seq: 10,
                reason: "its signature is bad".into()
            }
        );
        // Collected checkpoints of other logs are ignored.
        let mut others = earlier;
        for cp in &mut others {
            cp.log_id = "legal-aid-east".into();
        }
        let opts = VerifyOptions {
            collected_checkpoints: others,
            ..f.pinned()
        };
        verify_database(&f.db, &opts).await.unwrap();
    }

    #[tokio::test]
    async fn a_checkpoint_signed_by_another_key_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        let head = parse_hash(&stored(&f.db, 15).await.hash).unwrap();
        let intruder = new_key();
        replace_checkpoint(&f.db, &Checkpoint::sign(&intruder, LOG, 15, &head)).await;
        for opts in [f.pinned(), VerifyOptions::default()] {
            let failure = fails(&f.db, &opts).await;
            assert!(
                matches!(&failure, VerifyFailure::UnexpectedKey { seq: 15, found, .. } if *found != f.key_hex()),
                "{failure}"
            );
        }
        // Pinned to the wrong key, the first checkpoint already fails.
        let wrong = VerifyOptions {
            expected_key: Some(hex::encode(aws_lc_rs::signature::KeyPair::public_key(
                &*intruder,
            ))),
            ..VerifyOptions::default()
        };
        let failure = fails(&f.db, &wrong).await;
        assert!(
            matches!(failure, VerifyFailure::UnexpectedKey { seq: 5, .. }),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_forged_signature_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        let mut cp = collected(&f.db).await.remove(1);
        assert_eq!(cp.seq, 10);
        cp.signed_at += time::Duration::seconds(1);
        replace_checkpoint(&f.db, &cp).await;
        let failure = fails(&f.db, &f.pinned()).await;
        assert_eq!(failure, VerifyFailure::BadSignature { seq: 10 });
        assert_eq!(
            failure.to_string(),
            "checkpoint at seq 10 has a bad signature"
        );
    }

    #[tokio::test]
    async fn a_pinned_key_needs_a_checkpoint() {
        let f = fixture(LOG, ENTRIES).await;
        exec(&f.db, "DELETE FROM audit_checkpoints").await;
        // The signed head goes too, as an attacker cutting the log would.
        exec(&f.db, "DROP TRIGGER IF EXISTS audit_head_no_delete").await;
        exec(&f.db, "DELETE FROM audit_head").await;
        assert_eq!(
            fails(&f.db, &f.pinned()).await,
            VerifyFailure::Unsigned { entries: 20 }
        );
        let report = verify_database(&f.db, &VerifyOptions::default())
            .await
            .unwrap();
        assert_eq!(report.checkpoints_verified, 0);
        assert!(
            report
                .to_string()
                .contains("entries 1 to 20 are not yet covered")
        );
        // Without a checkpoint naming the log, collected ones cannot be matched.
        let opts = VerifyOptions {
            collected_checkpoints: vec![Checkpoint::sign(&f.key, LOG, 5, &[0; 32])],
            ..VerifyOptions::default()
        };
        assert_eq!(fails(&f.db, &opts).await, VerifyFailure::UnknownLogId);
    }

    #[tokio::test]
    async fn checkpoints_of_another_log_are_refused() {
        let f = fixture(LOG, ENTRIES).await;
        let opts = VerifyOptions {
            log_id: Some("legal-aid-east".into()),
            ..f.pinned()
        };
        let failure = fails(&f.db, &opts).await;
        assert!(
            matches!(&failure, VerifyFailure::ForeignCheckpoint { seq: 5, found, .. } if found == LOG),
            "{failure}"
        );
        let bad_key = VerifyOptions {
            expected_key: Some("abc".into()),
            ..VerifyOptions::default()
        };
        assert_eq!(fails(&f.db, &bad_key).await, VerifyFailure::InvalidKey);
    }

    #[tokio::test]
    async fn a_log_longer_than_a_page_verifies_in_pages() {
        let (_dir, db) = scratch_db().await;
        let options = AuditOptions {
            checkpoint_every: 1000,
            ..AuditOptions::new(LOG)
        };
        let log = AuditLog::open(db.clone(), new_key(), options)
            .await
            .unwrap();
        let total = PAGE_ROWS as u64 * 2 + 7;
        log.append_all((1..=total).map(|i| event(LOG, i)).collect())
            .await
            .unwrap();
        log.checkpoint_now().await.unwrap();
        let opts = VerifyOptions {
            expected_key: Some(log.public_key_hex()),
            ..VerifyOptions::default()
        };
        let report = verify_database(&db, &opts).await.unwrap();
        assert_eq!(report.entries_checked, total);
        assert_eq!(report.signed_through, total);

        drop_triggers(&db).await;
        exec(&db, "DELETE FROM audit_log WHERE seq = 7001").await;
        assert_eq!(
            fails(&db, &opts).await,
            VerifyFailure::Deleted {
                seq: 7001,
                next: 7002
            }
        );
    }
}

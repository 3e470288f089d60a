//! Export of an audit log as evidence: JSON Lines (the verifiable form) and
//! CSV (for spreadsheets only; it cannot be verified).
//!
//! # JSON Lines format `exchange-audit-export-v1`
//!
//! One JSON object a line, each ending with `\n`:
//!
//! 1. The header:
//!    `{"type":"header","log_id":"shelter-north","format":"exchange-audit-export-v1","exported_at":"<RFC 3339>","last_seq":N,"checkpoints":K}`
//!    — `last_seq` is the last entry exported and `checkpoints` the number of
//!    checkpoint lines, so a file cut short is recognised as such.
//! 2. For **every** `seq` from 1 to `last_seq`, in order, one line:
//!    * `{"type":"entry","seq":S,"event":{...AuditEvent},"prev_hash":"<hex>","hash":"<hex>"}`
//!      for an entry matching the filter, the event exactly as stored;
//!    * `{"type":"elided","seq":S,"digest":"<hex>","hash":"<hex>"}` for any
//!      other entry, `digest` being the event's
//!      [`event_digest`](exchange_schema::audit::event_digest). The chain
//!      hashes that digest, so the verifier recomputes the whole chain from
//!      genesis without seeing the elided events. An entry whose stored
//!      event is unreadable is always elided (its digest is that of the
//!      stored text), and verifying the export then reports it.
//!
//!    Each checkpoint line `{...Checkpoint,"type":"checkpoint"}` (the
//!    fields of [`Checkpoint`], then its type) follows the entry line of its `seq`, so the
//!    verifier checks it as the chain passes it and holds no more than the
//!    current head in memory; a checkpoint whose entry is missing from the
//!    log comes at the end.
//!
//! # Several logs in one file `exchange-audit-bundle-v1`
//!
//! A federated export (the gateway's `GET /audit/export`) is a bundle line
//! `{"type":"bundle","format":"exchange-audit-bundle-v1","exported_at":"<RFC 3339>","logs":["shelter-north",...]}`
//! ([`bundle_line`]) followed by one export as above per announced log, in
//! that order, each starting with its own header line (which names its
//! log). [`super::verify::verify_file`] checks every log and that none was
//! removed, added or repeated.
//!
//! The lines are written with the types of [`crate::lines`], which the
//! verifier reads back.
//!
//! Verify it with [`super::verify::verify_export`]. The export carries no
//! index columns (they are derived from the events); verify the database
//! itself to check those.
//!
//! # CSV
//!
//! One row per matching, readable entry, RFC 4180 quoting, CRLF line ends,
//! columns `log_id, seq, at, kind, actor_agency, actor_user, roles, survivor,
//! subject, purpose, decision, reason, break_glass, disclosed, withheld,
//! policy_set, trace_id, hash`; lists are joined with `;`, withheld
//! categories written `CATEGORY:REASON`. A cell starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return is prefixed with `'` so a spreadsheet
//! does not run it as a formula.

use std::borrow::Cow;
use std::io::Write;

use exchange_schema::AuditEvent;
use exchange_schema::audit::{Checkpoint, Decision};
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::format_description::well_known::Rfc3339;

use crate::lines::{BundleLine, ElidedLine, EntryLine, ExportLine, HeaderLine};
use crate::read::AuditFilter;
use crate::verify::{PAGE_ROWS, text_digest};
use exchange_service::db::{Db, to_ms};

pub use crate::lines::{BUNDLE_FORMAT, EXPORT_FORMAT};

/// The current time as an export states it (RFC 3339).
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The first line of a file holding the exports of `logs`, in that order
/// (without its line end).
pub fn bundle_line(logs: &[String]) -> String {
    ExportLine::Bundle(BundleLine {
        format: BUNDLE_FORMAT.to_owned(),
        exported_at: now(),
        logs: logs.to_vec(),
    })
    .to_line()
    .expect("a bundle line always serialises")
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    /// The last `seq` covered.
    pub last_seq: u64,
    /// Entries written in full (JSON Lines) or as rows (CSV).
    pub entries: u64,
    /// Entries written only as a digest (JSON Lines) or left out (CSV).
    pub elided: u64,
    /// Checkpoint lines written.
    pub checkpoints: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the audit log failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("writing the export failed: {0}")]
    Write(#[from] std::io::Error),
    #[error("checkpoint at seq {seq} is unreadable ({reason}); run `audit verify` on the database")]
    Checkpoint { seq: i64, reason: String },
}

/// The highest `seq` of a table (0 when empty).
async fn max_seq(db: &Db, table: &str) -> Result<i64, ExportError> {
    let row = sqlx::query(&format!("SELECT MAX(seq) AS seq FROM {table}"))
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get::<Option<i64>, _>("seq")?.unwrap_or(0))
}

/// The log ID named by the log's first stored checkpoint, if it has one:
/// what to pass to [`export_jsonl`] when the node's configuration is not at
/// hand.
pub async fn stored_log_id(db: &Db) -> Result<Option<String>, ExportError> {
    let row = sqlx::query("SELECT seq, checkpoint FROM audit_signatures ORDER BY seq LIMIT 1")
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let seq: i64 = row.try_get("seq")?;
    let text: String = row.try_get("checkpoint")?;
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| ExportError::Checkpoint {
        seq,
        reason: e.to_string(),
    })?;
    Ok(Some(cp.log_id))
}

/// `audit_log` rows with `low < seq <= high`, at most [`PAGE_ROWS`].
async fn entry_page(db: &Db, low: i64, high: i64) -> Result<Vec<AnyRow>, ExportError> {
    Ok(sqlx::query(
        "SELECT seq, event, prev_hash, hash FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
    )
    .bind(low)
    .bind(high)
    .bind(PAGE_ROWS)
    .fetch_all(db.pool())
    .await?)
}

/// Where signatures over the log are read from.
#[derive(Debug, Clone, Copy)]
enum Signatures {
    /// The append-only history of checkpoints (what collectors compare).
    History,
    /// The history and, when newer, the signed head (what an export carries,
    /// so that it is covered up to its newest entry).
    WithHead,
}

impl Signatures {
    fn table(self) -> &'static str {
        match self {
            Self::History => "audit_checkpoints",
            Self::WithHead => "audit_signatures",
        }
    }
}

/// Stored checkpoints with `low < seq <= high`, at most [`PAGE_ROWS`].
async fn checkpoint_page(
    db: &Db,
    from: Signatures,
    low: i64,
    high: i64,
) -> Result<Vec<Checkpoint>, ExportError> {
    let rows = sqlx::query(&format!(
        "SELECT seq, checkpoint FROM {} WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        from.table()
    ))
    .bind(low)
    .bind(high)
    .bind(PAGE_ROWS)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get("seq")?;
            let text: String = row.try_get("checkpoint")?;
            serde_json::from_str(&text).map_err(|e| ExportError::Checkpoint {
                seq,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The event of a row if it is stored exactly as the node writes it.
fn canonical_event(text: &str) -> Option<AuditEvent> {
    serde_json::from_str::<AuditEvent>(text)
        .ok()
        .filter(|event| event.canonical_bytes() == text.as_bytes())
}

/// Whether an event is one the auditor asked for (the same criteria as
/// [`super::read::entries`], applied to the hashed event).
pub fn matches(filter: &AuditFilter, seq: u64, event: &AuditEvent) -> bool {
    filter
        .actor_agency
        .as_ref()
        .is_none_or(|agency| event.actor_agency.as_ref() == Some(agency))
        && filter.survivor.as_ref().is_none_or(|survivor| {
            event
                .survivor
                .as_ref()
                .is_some_and(|s| s.to_string() == *survivor)
        })
        && filter
            .purpose
            .is_none_or(|purpose| event.purpose == Some(purpose))
        && filter
            .decision
            .is_none_or(|decision| event.decision == decision)
        && filter
            .break_glass
            .is_none_or(|flag| event.break_glass == flag)
        && filter
            .since
            .is_none_or(|since| to_ms(event.at) >= to_ms(since))
        && filter
            .until
            .is_none_or(|until| to_ms(event.at) < to_ms(until))
        && filter.before_seq.is_none_or(|before| seq < before)
}

/// Writes a checkpoint line.
fn write_checkpoint<W: Write>(out: &mut W, cp: &Checkpoint) -> Result<(), ExportError> {
    Ok(ExportLine::Checkpoint(cp.clone()).write_to(out)?)
}

/// Writes the log in `db` as JSON Lines (see the module doc): every entry up
/// to the current end, those not matching `filter` elided, with every
/// checkpoint. Reads [`PAGE_ROWS`] rows at a time.
pub async fn export_jsonl<W: Write>(
    db: &Db,
    log_id: &str,
    filter: &AuditFilter,
    out: W,
) -> Result<ExportSummary, ExportError> {
    let mut out = std::io::BufWriter::new(out);
    // Checkpoints before entries: every checkpoint up to `cp_max` covers an
    // entry at or below `upper` (unless the log was truncated), and none
    // below `cp_max` can appear later, so the announced count holds.
    let cp_max = max_seq(db, "audit_signatures").await?;
    let upper = max_seq(db, "audit_log").await?;
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_signatures WHERE seq <= $1")
        .bind(cp_max)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    ExportLine::Header(HeaderLine {
        log_id: log_id.to_owned(),
        format: EXPORT_FORMAT.to_owned(),
        exported_at: now(),
        last_seq: upper.max(0) as u64,
        checkpoints: count.max(0) as u64,
    })
    .write_to(&mut out)?;

    let mut summary = ExportSummary {
        last_seq: upper.max(0) as u64,
        ..ExportSummary::default()
    };
    let mut cursor: i64 = 0;
    let mut cp_cursor: i64 = 0;
    let mut checkpoints: std::collections::VecDeque<Checkpoint> = Default::default();
    loop {
        let rows = entry_page(db, cursor, upper).await?;
        let Some(last) = rows.last() else { break };
        let page_high: i64 = last.try_get("seq")?;
        let cp_high = page_high.min(cp_max);
        if cp_high > cp_cursor {
            let page = checkpoint_page(db, Signatures::WithHead, cp_cursor, cp_high).await?;
            cp_cursor = page.last().map_or(cp_high, |cp| cp.seq as i64);
            checkpoints.extend(page);
        }
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            // A checkpoint whose entry is missing goes before the next entry.
            while let Some(cp) = checkpoints.front()
                && (cp.seq as i64) < seq
            {
                write_checkpoint(&mut out, cp)?;
                summary.checkpoints += 1;
                checkpoints.pop_front();
            }
            write_entry(&mut out, row, filter, &mut summary)?;
            while let Some(cp) = checkpoints.front()
                && cp.seq as i64 == seq
            {
                write_checkpoint(&mut out, cp)?;
                summary.checkpoints += 1;
                checkpoints.pop_front();
            }
        }
        cursor = page_high;
    }
    // Checkpoints past the last entry (a truncated log), and any left.
    loop {
        for cp in checkpoints.drain(..) {
            write_checkpoint(&mut out, &cp)?;
            summary.checkpoints += 1;
        }
        let page = checkpoint_page(db, Signatures::WithHead, cp_cursor, cp_max).await?;
        let Some(last) = page.last() else { break };
        cp_cursor = last.seq as i64;
        checkpoints.extend(page);
    }
    out.flush()?;
    Ok(summary)
}

fn write_entry<W: Write>(
    out: &mut W,
    row: &AnyRow,
    filter: &AuditFilter,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let seq = row.try_get::<i64, _>("seq")? as u64;
    let text: String = row.try_get("event").unwrap_or_default();
    let prev: String = row.try_get("prev_hash").unwrap_or_default();
    let hash: String = row.try_get("hash").unwrap_or_default();
    match canonical_event(&text) {
        Some(event) if matches(filter, seq, &event) => {
            // The stored text is the canonical JSON of the event (one line),
            // embedded as it is.
            let event = RawValue::from_string(text).map_err(std::io::Error::from)?;
            ExportLine::Entry(EntryLine {
                seq,
                event,
                prev_hash: prev,
                hash,
            })
            .write_to(out)?;
            summary.entries += 1;
        }
        _ => {
            ExportLine::Elided(ElidedLine {
                seq,
                digest: hex::encode(text_digest(&text)),
                hash,
            })
            .write_to(out)?;
            summary.elided += 1;
        }
    }
    Ok(())
}

/// Writes every checkpoint of the log as JSON Lines, one [`Checkpoint`] a
/// line: what an auditor collects at intervals and later passes to
/// [`super::verify::load_checkpoints`] to catch a rewritten, re-signed log.
/// Returns how many were written.
pub async fn export_checkpoints<W: Write>(db: &Db, out: W) -> Result<u64, ExportError> {
    export_checkpoints_after(db, 0, out).await
}

/// Writes the checkpoints with `seq > after`, as [`export_checkpoints`]
/// does: what a collector that already holds the earlier ones asks for.
pub async fn export_checkpoints_after<W: Write>(
    db: &Db,
    after: u64,
    out: W,
) -> Result<u64, ExportError> {
    let mut out = std::io::BufWriter::new(out);
    let high = max_seq(db, Signatures::History.table()).await?;
    let mut cursor = i64::try_from(after).unwrap_or(i64::MAX);
    let mut written = 0u64;
    loop {
        let page = checkpoint_page(db, Signatures::History, cursor, high).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq as i64;
        for cp in &page {
            serde_json::to_writer(&mut out, cp).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 18] = [
    "log_id",
    "seq",
    "at",
    "kind",
    "actor_agency",
    "actor_user",
    "roles",
    "survivor",
    "subject",
    "purpose",
    "decision",
    "reason",
    "break_glass",
    "disclosed",
    "withheld",
    "policy_set",
    "trace_id",
    "hash",
];

/// Writes the entries matching `filter` as CSV, oldest first (see the module
/// doc). Entries whose event is unreadable are left out and counted as
/// elided; JSON Lines is the form that can be verified.
pub async fn export_csv<W: Write>(
    db: &Db,
    log_id: &str,
    filter: &AuditFilter,
    out: W,
) -> Result<ExportSummary, ExportError> {
    let mut out = std::io::BufWriter::new(out);
    let upper = max_seq(db, "audit_log").await?;
    write_csv_row(&mut out, CSV_COLUMNS.iter().map(|c| Cow::Borrowed(*c)))?;
    let mut summary = ExportSummary {
        last_seq: upper.max(0) as u64,
        ..ExportSummary::default()
    };
    let mut cursor = 0i64;
    loop {
        let rows = entry_page(db, cursor, upper).await?;
        let Some(last) = rows.last() else { break };
        cursor = last.try_get("seq")?;
        for row in &rows {
            let seq = row.try_get::<i64, _>("seq")? as u64;
            let text: String = row.try_get("event").unwrap_or_default();
            let hash: String = row.try_get("hash").unwrap_or_default();
            match canonical_event(&text) {
                Some(event) if matches(filter, seq, &event) => {
                    write_csv_row(&mut out, csv_cells(log_id, seq, &event, hash).into_iter())?;
                    summary.entries += 1;
                }
                Some(_) => {}
                None => summary.elided += 1,
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

fn csv_cells(log_id: &str, seq: u64, event: &AuditEvent, hash: String) -> Vec<Cow<'static, str>> {
    fn join<T: std::fmt::Display>(values: &[T]) -> String {
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";")
    }
    let owned = |value: Option<String>| Cow::Owned(value.unwrap_or_default());
    vec![
        Cow::Owned(log_id.to_owned()),
        Cow::Owned(seq.to_string()),
        Cow::Owned(event.at.format(&Rfc3339).unwrap_or_default()),
        Cow::Borrowed(event.kind.as_str()),
        owned(event.actor_agency.as_ref().map(ToString::to_string)),
        owned(event.actor_user.clone()),
        Cow::Owned(join(&event.actor_roles)),
        owned(event.survivor.as_ref().map(ToString::to_string)),
        owned(event.subject.clone()),
        Cow::Borrowed(event.purpose.map_or("", |p| p.as_str())),
        Cow::Borrowed(match event.decision {
            Decision::Permit => "PERMIT",
            Decision::Deny => "DENY",
        }),
        Cow::Owned(event.reason.clone()),
        Cow::Borrowed(if event.break_glass { "true" } else { "false" }),
        Cow::Owned(join(&event.disclosed)),
        Cow::Owned(
            event
                .withheld
                .iter()
                .map(|w| format!("{}:{}", w.category, w.reason))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        owned(event.policy_set.clone()),
        owned(event.trace_id.clone()),
        Cow::Owned(hash),
    ]
}

fn write_csv_row<'a, W: Write>(
    out: &mut W,
    cells: impl Iterator<Item = Cow<'a, str>>,
) -> std::io::Result<()> {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_cell(&cell).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// One CSV cell: defused against formula injection, then quoted when it
/// holds a comma, quote, line break or leading or trailing space.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let defused: Cow<'_, str> = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    };
    let needs_quotes = defused.contains([',', '"', '\n', '\r'])
        || defused.starts_with(' ')
        || defused.ends_with(' ');
    if needs_quotes {
        Cow::Owned(format!("\"{}\"", defused.replace('"', "\"\"")))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::fixtures::{event, fixture};

    const LOG: &str = "shelter-north";

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_cell(" padded"), "\" padded\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
    }

    #[tokio::test]
    async fn csv_has_one_row_per_matching_entry() {
        let f = fixture(LOG, 6).await;
        let mut hostile = event(LOG, 7);
        hostile.actor_user = Some("=cmd|' /C calc'!A0".into());
        hostile.reason = "NO_GRANT, \"really\"".into();
        f.log.append(hostile).await.unwrap();

        let mut out = Vec::new();
        let summary = export_csv(&f.db, LOG, &AuditFilter::default(), &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\r\n"));
        let rows: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(rows[0], CSV_COLUMNS.join(","));
        assert_eq!(rows.len(), 1 + 7);
        assert_eq!((summary.entries, summary.last_seq), (7, 7));

        let first: Vec<&str> = rows[1].split(',').collect();
        assert_eq!(first.len(), CSV_COLUMNS.len());
        assert_eq!(first[0], LOG);
        assert_eq!(first[1], "1");
        assert_eq!(first[3], "DISCLOSURE");
        assert_eq!(first[6], "CASEWORKER");
        assert_eq!(first[7], "shelter-north:survivor-1");
        assert_eq!(first[12], "false");
        assert_eq!(first[13], "IDENTITY");
        assert_eq!(first[17].len(), 64);

        assert!(rows[7].starts_with("shelter-north,7,"));
        assert!(rows[7].contains(",'=cmd|' /C calc'!A0,"), "{}", rows[7]);
        assert!(
            rows[7].contains(",\"NO_GRANT, \"\"really\"\"\","),
            "{}",
            rows[7]
        );

        assert_eq!(stored_log_id(&f.db).await.unwrap().as_deref(), Some(LOG));

        let filter = AuditFilter {
            survivor: Some(format!("{LOG}:survivor-1")),
            ..AuditFilter::default()
        };
        let mut out = Vec::new();
        let summary = export_csv(&f.db, LOG, &filter, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let seqs: Vec<&str> = text
            .split_terminator("\r\n")
            .skip(1)
            .map(|row| row.split(',').nth(1).unwrap())
            .collect();
        assert_eq!(seqs, ["1", "5"]);
        assert_eq!(summary.entries, 2);
    }

    #[test]
    fn the_filter_matches_the_hashed_event() {
        let e = event(LOG, 3);
        let filter = |f: AuditFilter| matches(&f, 3, &e);
        assert!(filter(AuditFilter::default()));
        assert!(filter(AuditFilter {
            decision: Some(Decision::Deny),
            ..AuditFilter::default()
        }));
        assert!(!filter(AuditFilter {
            decision: Some(Decision::Permit),
            ..AuditFilter::default()
        }));
        assert!(!filter(AuditFilter {
            break_glass: Some(true),
            ..AuditFilter::default()
        }));
        assert!(!filter(AuditFilter {
            before_seq: Some(3),
            ..AuditFilter::default()
        }));
        assert!(filter(AuditFilter {
            since: Some(e.at),
            until: Some(e.at + time::Duration::milliseconds(1)),
            ..AuditFilter::default()
        }));
        assert!(!filter(AuditFilter {
            until: Some(e.at),
            ..AuditFilter::default()
        }));
        assert!(filter(AuditFilter {
            actor_agency: Some(exchange_schema::AgencyId::parse("legal-aid-east").unwrap()),
            purpose: Some(exchange_schema::Purpose::Referral),
            ..AuditFilter::default()
        }));
    }
}

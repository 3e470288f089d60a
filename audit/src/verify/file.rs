//! Verification of a file: one export ([`verify_export`]) or a file of
//! several logs, optionally after a bundle line ([`verify_file`]). Reads
//! the lines ([`Lines`], the types of [`crate::lines`]) and feeds each log
//! to its own [`Chain`].

use std::io::{BufRead, Read};

use exchange_schema::AuditEvent;
use exchange_schema::audit::{ChainHash, Checkpoint, event_digest};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::chain::{Chain, Item};
use super::failure::{EditDetail, FileFailure, VerifyFailure, read_error};
use super::{VerifyOptions, VerifyReport};
use crate::lines::{
    BUNDLE_FORMAT, BundleLine, EXPORT_FORMAT, ElidedLine, EntryLine, HeaderLine, line_type,
};

/// Longest export line accepted (1 MiB).
const MAX_LINE: u64 = 1 << 20;

/// Reads an export line by line, refusing lines over [`MAX_LINE`].
struct Lines<R> {
    reader: R,
    number: u64,
    buf: Vec<u8>,
    /// Whether the last line read ended with a newline (the exporter ends
    /// every line with one; a last line without is cut short).
    complete: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            number: 0,
            buf: Vec::new(),
            complete: true,
        }
    }

    fn next_line(&mut self) -> Result<Option<(u64, String)>, VerifyFailure> {
        self.buf.clear();
        let read = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(read_error)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if read as u64 > MAX_LINE {
            return Err(self.malformed("it is longer than 1 MiB"));
        }
        self.complete = self.buf.last() == Some(&b'\n');
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        let text = String::from_utf8(std::mem::take(&mut self.buf))
            .map_err(|_| self.malformed("it is not UTF-8"))?;
        Ok(Some((self.number, text)))
    }

    fn malformed(&self, reason: impl Into<String>) -> VerifyFailure {
        let reason = reason.into();
        VerifyFailure::Malformed {
            line: self.number,
            reason: if self.complete {
                reason
            } else {
                format!("{reason}; it is cut short, so the export was truncated")
            },
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        value: serde_json::Value,
    ) -> Result<T, VerifyFailure> {
        serde_json::from_value(value).map_err(|e| self.malformed(e.to_string()))
    }
}

/// Verifies an export written by [`crate::export::export_jsonl`]: the whole
/// chain is recomputed from genesis, elided entries by their digest. The
/// file must hold exactly one log; see [`verify_file`] for several.
pub fn verify_export(
    reader: impl BufRead,
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    let mut lines = Lines::new(reader);
    let Some(value) = first_value(&mut lines)? else {
        return Err(VerifyFailure::Malformed {
            line: 1,
            reason: "the export is empty".to_owned(),
        });
    };
    if line_type(&value) != Some("header") {
        return Err(lines.malformed("an export starts with its header line"));
    }
    let header = lines.parse::<HeaderLine>(value)?;
    verify_section(&mut lines, header, opts, false).map(|(report, _)| report)
}

/// Verifies a file of one or more logs, each an export section as
/// [`crate::export::export_jsonl`] writes it (its header line, then its
/// entries and checkpoints), in order, optionally after a bundle line
/// ([`crate::export::bundle_line`]) announcing every log the file holds, so
/// a log removed or added, or a file cut short between logs, is named.
/// Each log is checked against the key `opts` pins for its ID (or
/// `expected_key`) and against the collected checkpoints naming it. Stops at
/// the first failure and names the log it is in.
pub fn verify_file(
    reader: impl BufRead,
    opts: &VerifyOptions,
) -> Result<Vec<VerifyReport>, FileFailure> {
    let bare = |failure| FileFailure {
        log_id: None,
        failure,
    };
    let opts = VerifyOptions {
        log_id: None,
        ..opts.clone()
    };
    let mut lines = Lines::new(reader);
    let Some(mut value) = first_value(&mut lines).map_err(bare)? else {
        return Err(bare(VerifyFailure::Malformed {
            line: 1,
            reason: "the file is empty".to_owned(),
        }));
    };
    let announced = if line_type(&value) == Some("bundle") {
        let bundle: BundleLine = lines.parse(value).map_err(bare)?;
        if bundle.format != BUNDLE_FORMAT {
            return Err(bare(lines.malformed(format!(
                "its format is {:?}, not {BUNDLE_FORMAT:?}",
                bundle.format
            ))));
        }
        match first_value(&mut lines).map_err(bare)? {
            Some(next) => value = next,
            None => {
                return match bundle.logs.first() {
                    Some(log_id) => Err(bare(VerifyFailure::MissingLog {
                        log_id: log_id.clone(),
                    })),
                    None => Ok(Vec::new()),
                };
            }
        }
        Some(bundle.logs)
    } else {
        None
    };
    let mut reports: Vec<VerifyReport> = Vec::new();
    loop {
        if line_type(&value) != Some("header") {
            return Err(bare(
                lines.malformed("each log in the file starts with its header line"),
            ));
        }
        let header: HeaderLine = lines.parse(value).map_err(bare)?;
        let log_id = header.log_id.clone();
        let seen = |id: &str| reports.iter().any(|r| r.log_id.as_deref() == Some(id));
        if seen(&log_id) {
            return Err(bare(VerifyFailure::DuplicateLog { log_id }));
        }
        if let Some(logs) = &announced {
            match logs.get(reports.len()) {
                Some(expected) if *expected == log_id => {}
                Some(expected) if logs.contains(&log_id) => {
                    return Err(bare(VerifyFailure::MissingLog {
                        log_id: expected.clone(),
                    }));
                }
                _ => return Err(bare(VerifyFailure::UnexpectedLog { log_id })),
            }
        }
        let (report, next) =
            verify_section(&mut lines, header, &opts, true).map_err(|failure| FileFailure {
                log_id: Some(log_id.clone()),
                failure,
            })?;
        reports.push(report);
        match next {
            Some(next) => value = next,
            None => break,
        }
    }
    if let Some(missing) = announced.as_ref().and_then(|logs| logs.get(reports.len())) {
        return Err(bare(VerifyFailure::MissingLog {
            log_id: missing.clone(),
        }));
    }
    Ok(reports)
}

/// The first non-blank line, parsed.
fn first_value<R: BufRead>(
    lines: &mut Lines<R>,
) -> Result<Option<serde_json::Value>, VerifyFailure> {
    while let Some((_, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| lines.malformed(e.to_string()));
    }
    Ok(None)
}

/// Verifies one log, from the line after its header to the end of the file
/// or, when `several` logs may follow, to the next header line (returned).
fn verify_section<R: BufRead>(
    lines: &mut Lines<R>,
    header: HeaderLine,
    opts: &VerifyOptions,
    several: bool,
) -> Result<(VerifyReport, Option<serde_json::Value>), VerifyFailure> {
    if header.format != EXPORT_FORMAT {
        return Err(lines.malformed(format!(
            "its format is {:?}, not {EXPORT_FORMAT:?}",
            header.format
        )));
    }
    if let Some(expected) = &opts.log_id
        && *expected != header.log_id
    {
        return Err(VerifyFailure::WrongLog {
            expected: expected.clone(),
            found: header.log_id,
        });
    }
    let mut chain = Chain::new(opts, Some(header.log_id.clone()))?;
    chain.search_upper = header.last_seq;
    let mut checkpoints = 0u64;
    let mut next_header = None;

    while let Some((number, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| lines.malformed(e.to_string()))?;
        let kind = line_type(&value).map(str::to_owned);
        let (seq, result) = match kind.as_deref() {
            Some("entry") => {
                let line: EntryLine = lines.parse(value)?;
                let digest = canonical_digest(&line.event);
                let item = Item::Full {
                    digest,
                    prev: &line.prev_hash,
                    hash: &line.hash,
                };
                (
                    line.seq,
                    entry_line(&mut chain, &header, number, line.seq, item),
                )
            }
            Some("elided") => {
                let line: ElidedLine = lines.parse(value)?;
                let item = Item::Elided {
                    digest: &line.digest,
                    hash: &line.hash,
                };
                (
                    line.seq,
                    entry_line(&mut chain, &header, number, line.seq, item),
                )
            }
            Some("checkpoint") => {
                checkpoints += 1;
                let cp: Checkpoint = lines.parse(value)?;
                chain.add_checkpoint(cp)?;
                continue;
            }
            Some("header") if several => {
                next_header = Some(value);
                break;
            }
            Some("header") => return Err(lines.malformed("an export has one header line")),
            Some("bundle") => {
                return Err(lines.malformed("a bundle line comes first in the file, once"));
            }
            Some(other) => return Err(lines.malformed(format!("unknown line type {other:?}"))),
            None => return Err(lines.malformed("it has no \"type\"")),
        };
        match result {
            Ok(()) => chain.pass(seq)?,
            Err(VerifyFailure::Deleted { seq, next }) => {
                return Err(find_misplaced(lines, seq, next));
            }
            Err(failure) => return Err(failure),
        }
    }
    chain.check_end()?;
    if chain.last < header.last_seq {
        return Err(VerifyFailure::ExportTruncated {
            declared: header.last_seq,
            last: chain.last,
        });
    }
    if checkpoints != header.checkpoints {
        return Err(VerifyFailure::ExportCheckpointCount {
            declared: header.checkpoints,
            found: checkpoints,
        });
    }
    Ok((chain.report()?, next_header))
}

fn entry_line(
    chain: &mut Chain,
    header: &HeaderLine,
    number: u64,
    seq: u64,
    item: Item<'_>,
) -> Result<(), VerifyFailure> {
    if seq == 0 {
        return Err(VerifyFailure::Malformed {
            line: number,
            reason: "seq 0 names no entry".to_owned(),
        });
    }
    if seq > header.last_seq {
        return Err(VerifyFailure::Malformed {
            line: number,
            reason: format!(
                "entry {seq} lies beyond the last entry the header announces ({})",
                header.last_seq
            ),
        });
    }
    chain.entry(seq, item)
}

/// The digest of an exported event, which must be exactly an
/// [`AuditEvent`] as the node serialises it (no field added or left out).
fn canonical_digest(event: &RawValue) -> Result<ChainHash, EditDetail> {
    let unreadable = |e: serde_json::Error| EditDetail::Unreadable(e.to_string());
    let value: serde_json::Value = serde_json::from_str(event.get()).map_err(unreadable)?;
    let event = AuditEvent::deserialize(&value).map_err(unreadable)?;
    match serde_json::to_value(&event) {
        Ok(round_trip) if round_trip == value => Ok(event_digest(&event)),
        _ => Err(EditDetail::NotCanonical),
    }
}

/// Entries `seq..next` are missing where they belong: if one of them comes
/// later in the file, the lines were reordered; otherwise they were deleted.
fn find_misplaced<R: BufRead>(lines: &mut Lines<R>, seq: u64, next: u64) -> VerifyFailure {
    while let Ok(Some((_, text))) = lines.next_line() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let kind = line_type(&value);
        if kind == Some("header") {
            // The next log of the file begins: the entries are not moved.
            break;
        }
        let is_entry = matches!(kind, Some("entry" | "elided"));
        if let (true, Some(found)) = (is_entry, value.get("seq").and_then(|s| s.as_u64()))
            && (seq..next).contains(&found)
        {
            return VerifyFailure::Misplaced {
                seq: found,
                after: next,
            };
        }
    }
    VerifyFailure::Deleted { seq, next }
}

#[cfg(test)]
mod tests {
    use exchange_service::db::Db;

    use super::*;
    use crate::export::export_jsonl;
    use crate::read::AuditFilter;
    use crate::verify::fixtures::*;
    use crate::verify::verify_database;

    // -- Exports ----------------------------------------------------------

    async fn export(db: &Db, filter: &AuditFilter) -> Vec<String> {
        let mut buf = Vec::new();
        export_jsonl(db, LOG, filter, &mut buf).await.unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn verify_lines(lines: &[String], opts: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        verify_export(text.as_bytes(), opts)
    }

    /// The index of the line of `kind` at `seq`.
    fn line_of(lines: &[String], kind: &str, seq: u64) -> usize {
        lines
            .iter()
            .position(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["type"] == kind && value["seq"] == seq
            })
            .unwrap_or_else(|| panic!("no {kind} line for seq {seq}"))
    }

    fn edit_line(lines: &mut [String], index: usize, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut value: serde_json::Value = serde_json::from_str(&lines[index]).unwrap();
        edit(&mut value);
        lines[index] = value.to_string();
    }

    #[tokio::test]
    async fn an_export_verifies_whole_and_filtered() {
        let f = fixture(LOG, ENTRIES).await;
        let lines = export(&f.db, &AuditFilter::default()).await;
        assert_eq!(lines.len(), 1 + 20 + 4);
        let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(header["type"], "header");
        assert_eq!(header["format"], EXPORT_FORMAT);
        assert_eq!(header["log_id"], LOG);
        let opts = VerifyOptions {
            collected_checkpoints: collected(&f.db).await,
            ..f.pinned()
        };
        let report = verified(verify_lines(&lines, &opts));
        let from_db = verify_database(&f.db, &opts).await.unwrap();
        assert_eq!(report, from_db);

        let filter = AuditFilter {
            survivor: Some(format!("{LOG}:survivor-1")),
            ..AuditFilter::default()
        };
        let lines = export(&f.db, &filter).await;
        let entries: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(r#"{"type":"entry""#))
            .collect();
        assert_eq!(entries.len(), 5);
        assert!(
            entries
                .iter()
                .all(|l| l.contains("shelter-north:survivor-1"))
        );
        let report = verified(verify_lines(&lines, &opts));
        assert_eq!((report.entries_checked, report.elided), (20, 15));
        assert_eq!(report.head, from_db.head);
    }

    #[tokio::test]
    async fn an_edited_export_is_named() {
        let f = fixture(LOG, ENTRIES).await;
        let clean = export(&f.db, &AuditFilter::default()).await;

        let mut lines = clean.clone();
        let at = line_of(&lines, "entry", 7);
        edit_line(&mut lines, at, |v| v["event"]["reason"] = "OWNER".into());
        assert_eq!(
            verify_lines(&lines, &f.pinned()).unwrap_err(),
            VerifyFailure::Edited {
                seq: 7,
                detail: EditDetail::ContentMismatch
            }
        );

        let mut lines = clean.clone();
        let at = line_of(&lines, "entry", 8);
        edit_line(&mut lines, at, |v| {
            v["event"]["note"] = "added later".into()
        });
        assert_eq!(
            verify_lines(&lines, &f.pinned()).unwrap_err(),
            VerifyFailure::Edited {
                seq: 8,
                detail: EditDetail::NotCanonical
            }
        );

        // An elided entry's digest is chained too.
        let filter = AuditFilter {
            survivor: Some(format!("{LOG}:survivor-1")),
            ..AuditFilter::default()
        };
        let mut lines = export(&f.db, &filter).await;
        let at = line_of(&lines, "elided", 6);
        edit_line(&mut lines, at, |v| {
            v["digest"] = hex::encode([7u8; 32]).into()
        });
        assert_eq!(
            verify_lines(&lines, &f.pinned()).unwrap_err(),
            VerifyFailure::Edited {
                seq: 6,
                detail: EditDetail::ElidedMismatch
            }
        );
    }

    #[tokio::test]
    async fn deleted_reordered_and_truncated_export_lines_are_named() {
        let f = fixture(LOG, ENTRIES).await;
        let clean = export(&f.db, &AuditFilter::default()).await;

        let mut lines = clean.clone();
        lines.remove(line_of(&lines, "entry", 12));
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(failure, VerifyFailure::Deleted { seq: 12, next: 13 });

        let mut lines = clean.clone();
        let (a, b) = (line_of(&lines, "entry", 6), line_of(&lines, "entry", 7));
        lines.swap(a, b);
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(failure, VerifyFailure::Misplaced { seq: 6, after: 7 });
        assert_eq!(
            failure.to_string(),
            "entry 6 was reordered: it appears after entry 7 in the export"
        );

        let mut lines = clean.clone();
        let cp = lines.remove(line_of(&lines, "checkpoint", 5));
        lines.insert(line_of(&lines, "entry", 9) + 1, cp);
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::MisplacedCheckpoint { seq: 5, after: 9 }
        );

        // Cut short: the header announces more.
        let lines = clean[..=line_of(&clean, "entry", 17)].to_vec();
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::ExportTruncated {
                declared: 20,
                last: 17
            }
        );

        // Cut, header adjusted: the checkpoint at 20 still covers the end.
        let mut lines = clean.clone();
        lines.retain(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            !(value["type"] == "entry" && value["seq"].as_u64().unwrap() > 17)
        });
        edit_line(&mut lines, 0, |v| v["last_seq"] = 17.into());
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::Truncated {
                last_seq: 17,
                checkpoint_seq: 20,
            }
        );

        // A checkpoint line dropped.
        let mut lines = clean.clone();
        lines.remove(line_of(&lines, "checkpoint", 15));
        let failure = verify_lines(&lines, &f.pinned()).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::ExportCheckpointCount {
                declared: 4,
                found: 3
            }
        );

        // Cut in the middle of a line.
        let mut text = clean.iter().map(|l| format!("{l}\n")).collect::<String>();
        text.truncate(text.len() - 30);
        let failure = verify_export(text.as_bytes(), &f.pinned()).unwrap_err();
        assert!(
            matches!(&failure, VerifyFailure::Malformed { reason, .. } if reason.contains("cut short")),
            "{failure}"
        );

        assert!(matches!(
            verify_export(&b""[..], &f.pinned()),
            Err(VerifyFailure::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            verify_lines(&clean[1..], &f.pinned()),
            Err(VerifyFailure::Malformed { line: 1, .. })
        ));
    }

    #[tokio::test]
    async fn entries_spliced_from_another_node_are_caught() {
        let ours = fixture(LOG, ENTRIES).await;
        let theirs = fixture("legal-aid-east", ENTRIES).await;
        let clean = export(&ours.db, &AuditFilter::default()).await;
        let mut foreign = Vec::new();
        export_jsonl(
            &theirs.db,
            "legal-aid-east",
            &AuditFilter::default(),
            &mut foreign,
        )
        .await
        .unwrap();
        let foreign: Vec<String> = String::from_utf8(foreign)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();

        // Their entries 6 to 8 in place of ours.
        let mut lines = clean.clone();
        for seq in 6..=8 {
            let at = line_of(&lines, "entry", seq);
            lines[at] = foreign[line_of(&foreign, "entry", seq)].clone();
        }
        let failure = verify_lines(&lines, &ours.pinned()).unwrap_err();
        assert_eq!(failure, VerifyFailure::BrokenLink { seq: 6 });

        // Their checkpoint in place of ours.
        let mut lines = clean.clone();
        let at = line_of(&lines, "checkpoint", 10);
        lines[at] = foreign[line_of(&foreign, "checkpoint", 10)].clone();
        let failure = verify_lines(&lines, &VerifyOptions::default()).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::ForeignCheckpoint {
                seq: 10,
                found: "legal-aid-east".into(),
                expected: LOG.into()
            }
        );

        // Their whole export passed off as ours.
        let as_ours = VerifyOptions {
            log_id: Some(LOG.into()),
            ..VerifyOptions::default()
        };
        assert_eq!(
            verify_lines(&foreign, &as_ours).unwrap_err(),
            VerifyFailure::WrongLog {
                expected: LOG.into(),
                found: "legal-aid-east".into()
            }
        );
        // Or relabelled as ours: their key is not ours, and the signatures
        // cover the log ID.
        let mut relabelled = foreign.clone();
        for line in relabelled
            .iter_mut()
            .filter(|l| !l.starts_with(r#"{"type":"entry""#))
        {
            *line = line.replace("\"legal-aid-east\"", &format!("\"{LOG}\""));
        }
        let failure = verify_lines(&relabelled, &ours.pinned()).unwrap_err();
        assert!(
            matches!(failure, VerifyFailure::UnexpectedKey { seq: 5, .. }),
            "{failure}"
        );
        let failure = verify_lines(&relabelled, &VerifyOptions::default()).unwrap_err();
        assert_eq!(failure, VerifyFailure::BadSignature { seq: 5 });
    }

    #[tokio::test]
    async fn a_re_signed_fork_in_an_export_is_caught() {
        let f = fixture(LOG, ENTRIES).await;
        let earlier = collected(&f.db).await;
        drop_triggers(&f.db).await;
        let heads = rewrite_from(&f.db, 3, |event| event.actor_user = None).await;
        for seq in [5, 10, 15, 20] {
            replace_checkpoint(&f.db, &Checkpoint::sign(&f.key, LOG, seq, &heads[&seq])).await;
        }
        let lines = export(&f.db, &AuditFilter::default()).await;
        verified(verify_lines(&lines, &f.pinned()));
        let opts = VerifyOptions {
            collected_checkpoints: earlier,
            ..f.pinned()
        };
        let failure = verify_lines(&lines, &opts).unwrap_err();
        assert!(
            matches!(failure, VerifyFailure::Fork { seq: 5, .. }),
            "{failure}"
        );
        assert!(
            failure
                .to_string()
                .starts_with("fork: checkpoint collected at seq 5 says ")
        );
    }

    #[tokio::test]
    async fn an_export_of_a_tampered_database_does_not_verify() {
        let f = fixture(LOG, ENTRIES).await;
        drop_triggers(&f.db).await;
        exec(
            &f.db,
            "UPDATE audit_log SET event = 'not json' WHERE seq = 4",
        )
        .await;
        exec(&f.db, "DELETE FROM audit_log WHERE seq = 16").await;
        let lines = export(&f.db, &AuditFilter::default()).await;
        assert_eq!(
            verify_lines(&lines, &f.pinned()).unwrap_err(),
            VerifyFailure::Edited {
                seq: 4,
                detail: EditDetail::ElidedMismatch
            }
        );
        exec(&f.db, "DELETE FROM audit_log WHERE seq = 4").await;
        let lines = export(&f.db, &AuditFilter::default()).await;
        assert_eq!(
            verify_lines(&lines, &f.pinned()).unwrap_err(),
            VerifyFailure::Deleted { seq: 4, next: 5 }
        );
    }

    // -- Files of several logs ---------------------------------------------

    const THEIRS: &str = "legal-aid-east";

    async fn export_of(db: &Db, log_id: &str) -> Vec<String> {
        let mut buf = Vec::new();
        export_jsonl(db, log_id, &AuditFilter::default(), &mut buf)
            .await
            .unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn bundle(sections: &[(&str, &[String])]) -> Vec<String> {
        let logs: Vec<String> = sections.iter().map(|(id, _)| (*id).to_owned()).collect();
        let mut lines = vec![crate::export::bundle_line(&logs)];
        for (_, section) in sections {
            lines.extend(section.iter().cloned());
        }
        lines
    }

    fn verify_file_lines(
        lines: &[String],
        opts: &VerifyOptions,
    ) -> Result<Vec<VerifyReport>, FileFailure> {
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        verify_file(text.as_bytes(), opts)
    }

    #[tokio::test]
    async fn a_file_of_several_logs_is_verified_log_by_log() {
        let ours = fixture(LOG, ENTRIES).await;
        let theirs = fixture(THEIRS, ENTRIES).await;
        let a = export_of(&ours.db, LOG).await;
        let b = export_of(&theirs.db, THEIRS).await;
        let opts = VerifyOptions {
            keys: [
                (LOG.to_owned(), ours.key_hex()),
                (THEIRS.to_owned(), theirs.key_hex()),
            ]
            .into_iter()
            .collect(),
            ..VerifyOptions::default()
        };
        let clean = bundle(&[(LOG, &a), (THEIRS, &b)]);
        let reports = verify_file_lines(&clean, &opts).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].log_id.as_deref(), Some(THEIRS));
        assert!(
            reports
                .iter()
                .all(|r| r.key_pinned && r.last_seq == ENTRIES)
        );
        // Without a bundle line, sections one after the other verify too.
        let plain: Vec<String> = a.iter().chain(&b).cloned().collect();
        assert_eq!(verify_file_lines(&plain, &opts).unwrap().len(), 2);
        // A single export is a file of one log.
        assert_eq!(verify_file_lines(&a, &opts).unwrap().len(), 1);

        // The failure names its log.
        let mut edited = b.clone();
        let at = line_of(&edited, "entry", 7);
        edit_line(&mut edited, at, |v| v["event"]["reason"] = "OWNER".into());
        let failure =
            verify_file_lines(&bundle(&[(LOG, &a), (THEIRS, &edited)]), &opts).unwrap_err();
        assert_eq!(failure.log_id.as_deref(), Some(THEIRS));
        assert_eq!(
            failure.failure,
            VerifyFailure::Edited {
                seq: 7,
                detail: EditDetail::ContentMismatch
            }
        );
        assert!(
            failure
                .to_string()
                .starts_with("log legal-aid-east: entry 7 was edited")
        );

        // A log dropped, cut off, repeated or slipped in.
        let mut dropped = clean.clone();
        dropped.truncate(1 + a.len());
        assert_eq!(
            verify_file_lines(&dropped, &opts).unwrap_err().failure,
            VerifyFailure::MissingLog {
                log_id: THEIRS.into()
            }
        );
        let missing_first: Vec<String> = bundle(&[(LOG, &a), (THEIRS, &b)])
            .into_iter()
            .take(1)
            .chain(b.iter().cloned())
            .collect();
        assert_eq!(
            verify_file_lines(&missing_first, &opts)
                .unwrap_err()
                .failure,
            VerifyFailure::MissingLog { log_id: LOG.into() }
        );
        let twice: Vec<String> = a.iter().chain(&a).cloned().collect();
        assert_eq!(
            verify_file_lines(&twice, &opts).unwrap_err().failure,
            VerifyFailure::DuplicateLog { log_id: LOG.into() }
        );
        let mut added = bundle(&[(LOG, &a)]);
        added.extend(b.iter().cloned());
        assert_eq!(
            verify_file_lines(&added, &opts).unwrap_err().failure,
            VerifyFailure::UnexpectedLog {
                log_id: THEIRS.into()
            }
        );

        // An entry deleted from the first log is not "found" in the second.
        let mut deleted = a.clone();
        deleted.remove(line_of(&deleted, "entry", 19));
        let failure =
            verify_file_lines(&bundle(&[(LOG, &deleted), (THEIRS, &b)]), &opts).unwrap_err();
        assert_eq!(
            (failure.log_id.as_deref(), failure.failure),
            (Some(LOG), VerifyFailure::Deleted { seq: 19, next: 20 })
        );

        // Their entries moved into our log.
        let mut spliced = a.clone();
        let at = line_of(&spliced, "entry", 9);
        spliced[at] = b[line_of(&b, "entry", 9)].clone();
        let failure =
            verify_file_lines(&bundle(&[(LOG, &spliced), (THEIRS, &b)]), &opts).unwrap_err();
        assert_eq!(
            (failure.log_id.as_deref(), failure.failure),
            (Some(LOG), VerifyFailure::BrokenLink { seq: 9 })
        );
    }

    #[tokio::test]
    async fn a_re_signed_fork_in_a_file_of_several_logs_is_caught() {
        let ours = fixture(LOG, ENTRIES).await;
        let theirs = fixture(THEIRS, ENTRIES).await;
        let mut earlier = collected(&ours.db).await;
        earlier.extend(collected(&theirs.db).await);
        drop_triggers(&theirs.db).await;
        let heads = rewrite_from(&theirs.db, 12, |event| event.reason = "OWNER".into()).await;
        for seq in [15, 20] {
            replace_checkpoint(
                &theirs.db,
                &Checkpoint::sign(&theirs.key, THEIRS, seq, &heads[&seq]),
            )
            .await;
        }
        let a = export_of(&ours.db, LOG).await;
        let b = export_of(&theirs.db, THEIRS).await;
        let file = bundle(&[(LOG, &a), (THEIRS, &b)]);
        assert_eq!(
            verify_file_lines(&file, &VerifyOptions::default())
                .unwrap()
                .len(),
            2
        );
        let opts = VerifyOptions {
            collected_checkpoints: earlier,
            ..VerifyOptions::default()
        };
        let failure = verify_file_lines(&file, &opts).unwrap_err();
        assert_eq!(failure.log_id.as_deref(), Some(THEIRS));
        assert!(
            matches!(failure.failure, VerifyFailure::Fork { seq: 15, .. }),
            "{failure}"
        );
    }
}

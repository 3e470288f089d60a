//! Exports written before the line format became types (by the exporter
//! of `json!` and `format!`) still read and verify. The fixtures in
//! `fixtures/` were written by that exporter: a filtered export of one log
//! (`legacy-export-v1.jsonl`), a bundle of two logs
//! (`legacy-bundle-v1.jsonl`), the checkpoints an auditor collected from
//! them and the logs' public keys.

use exchange_audit::lines::{ExportLine, LineError};
use exchange_audit::verify::{
    VerifyFailure, VerifyOptions, load_checkpoints, verify_export, verify_file,
};

const EXPORT: &str = include_str!("fixtures/legacy-export-v1.jsonl");
const BUNDLE: &str = include_str!("fixtures/legacy-bundle-v1.jsonl");
const CHECKPOINTS: &str = include_str!("fixtures/legacy-checkpoints-v1.jsonl");
const KEYS: &str = include_str!("fixtures/legacy-keys.txt");

fn key(log_id: &str) -> String {
    KEYS.lines()
        .find_map(|line| line.strip_prefix(&format!("{log_id} ")))
        .unwrap()
        .to_owned()
}

fn options() -> VerifyOptions {
    VerifyOptions {
        keys: ["shelter-north", "legal-aid-east"]
            .into_iter()
            .map(|id| (id.to_owned(), key(id)))
            .collect(),
        collected_checkpoints: load_checkpoints(CHECKPOINTS.as_bytes()).unwrap(),
        ..VerifyOptions::default()
    }
}

#[test]
fn a_legacy_export_verifies() {
    let opts = VerifyOptions {
        expected_key: Some(key("shelter-north")),
        ..options()
    };
    let report = verify_export(EXPORT.as_bytes(), &opts).unwrap();
    assert_eq!(report.log_id.as_deref(), Some("shelter-north"));
    assert_eq!((report.entries_checked, report.elided), (8, 4));
    assert_eq!(report.signed_through, 8);
    assert_eq!(report.collected_matched, 4);
    assert!(report.key_pinned);
    assert!(report.warnings().is_empty(), "{report}");

    // Still tamper-evident: an elided entry's digest changed.
    let tampered = EXPORT.replacen(
        r#""type":"elided","seq":2,"digest":""#,
        r#""type":"elided","seq":2,"digest":"00"#,
        1,
    );
    assert_ne!(tampered, EXPORT);
    assert!(matches!(
        verify_export(tampered.as_bytes(), &opts).unwrap_err(),
        VerifyFailure::Edited { seq: 2, .. }
    ));
}

#[test]
fn a_legacy_bundle_verifies_log_by_log() {
    let reports = verify_file(BUNDLE.as_bytes(), &options()).unwrap();
    let logs: Vec<_> = reports
        .iter()
        .map(|r| (r.log_id.as_deref().unwrap(), r.last_seq, r.elided))
        .collect();
    assert_eq!(logs, [("shelter-north", 8, 0), ("legal-aid-east", 5, 0)]);
    assert!(
        reports
            .iter()
            .all(|r| r.key_pinned && r.collected_matched > 0)
    );
}

/// Every legacy line reads as a typed line. Entry and elided lines (always
/// written with a fixed field order) come out again byte for byte; the
/// others hold the same JSON (the order of their fields depended on how
/// the old exporter was built).
#[test]
fn legacy_lines_read_as_typed_lines() {
    let mut kinds = Vec::new();
    for text in EXPORT.lines().chain(BUNDLE.lines()) {
        let line = ExportLine::parse(text).unwrap_or_else(|e: LineError| panic!("{e}: {text}"));
        let again = line.to_line().unwrap();
        match line {
            ExportLine::Entry(_) | ExportLine::Elided(_) => assert_eq!(again, text),
            _ => assert_eq!(
                serde_json::from_str::<serde_json::Value>(&again).unwrap(),
                serde_json::from_str::<serde_json::Value>(text).unwrap(),
                "{text}"
            ),
        }
        if !kinds.contains(&line.kind()) {
            kinds.push(line.kind());
        }
    }
    kinds.sort_unstable();
    assert_eq!(kinds, ["bundle", "checkpoint", "elided", "entry", "header"]);
}

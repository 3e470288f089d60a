//! The JSON Lines of an export and of a bundle, as types: what
//! [`crate::export`] writes and what [`crate::verify`] reads back, so the
//! two cannot drift apart. The format itself is described in
//! [`crate::export`].
//!
//! Every line is one JSON object with a `"type"`: `bundle`, `header`,
//! `entry`, `elided` or `checkpoint` ([`ExportLine`]). The bytes are fixed:
//! fields are written in the order of the structs below, `"type"` first,
//! except on a checkpoint line, where it comes after the fields of the
//! [`Checkpoint`] (as exports have always written it). An entry's `event`
//! is the stored event text, embedded verbatim ([`RawValue`]): the chain
//! hashes exactly those bytes.

use std::io::Write;

use exchange_schema::audit::{ChainHash, Checkpoint};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The `format` of a JSON Lines export (its header line).
pub const EXPORT_FORMAT: &str = "exchange-audit-export-v1";

/// The `format` of a bundle line: several logs in one file.
pub const BUNDLE_FORMAT: &str = "exchange-audit-bundle-v1";

/// The first line of a file of several logs: which logs follow, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleLine {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// When the file was written (RFC 3339); not checked by the verifier.
    #[serde(default)]
    pub exported_at: String,
    /// The log IDs of the exports that follow, in their order.
    pub logs: Vec<String>,
}

/// The first line of one log's export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderLine {
    pub log_id: String,
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// When the export was written (RFC 3339); not checked by the verifier.
    #[serde(default)]
    pub exported_at: String,
    /// The last `seq` exported: a file ending before it was cut short.
    pub last_seq: u64,
    /// How many checkpoint lines the export holds.
    pub checkpoints: u64,
}

/// An entry exported in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryLine {
    pub seq: u64,
    /// The event exactly as stored (its canonical JSON).
    pub event: Box<RawValue>,
    /// Hex of the stored `prev_hash`.
    pub prev_hash: String,
    /// Hex of the stored `hash`.
    pub hash: String,
}

/// An entry exported only as the digest of its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElidedLine {
    pub seq: u64,
    /// Hex of the event's digest.
    pub digest: String,
    /// Hex of the stored `hash`.
    pub hash: String,
}

/// Any line of an export or a bundle, tagged by its `"type"`.
#[derive(Debug, Clone)]
pub enum ExportLine {
    Bundle(BundleLine),
    Header(HeaderLine),
    Entry(EntryLine),
    Elided(ElidedLine),
    Checkpoint(Checkpoint),
}

/// Two entry lines are equal when their events are the same bytes.
impl PartialEq for EntryLine {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.event.get() == other.event.get()
            && self.prev_hash == other.prev_hash
            && self.hash == other.hash
    }
}

impl Eq for EntryLine {}

impl PartialEq for ExportLine {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Bundle(a), Self::Bundle(b)) => a == b,
            (Self::Header(a), Self::Header(b)) => a == b,
            (Self::Entry(a), Self::Entry(b)) => a == b,
            (Self::Elided(a), Self::Elided(b)) => a == b,
            (Self::Checkpoint(a), Self::Checkpoint(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for ExportLine {}

/// The lines whose `"type"` comes first.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TypeFirst<'a> {
    Bundle(&'a BundleLine),
    Header(&'a HeaderLine),
    Entry(&'a EntryLine),
    Elided(&'a ElidedLine),
}

/// A checkpoint line: the checkpoint's fields, then its `"type"`.
#[derive(Serialize)]
struct CheckpointLine<'a> {
    #[serde(flatten)]
    checkpoint: &'a Checkpoint,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Serialize for ExportLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bundle(line) => TypeFirst::Bundle(line).serialize(serializer),
            Self::Header(line) => TypeFirst::Header(line).serialize(serializer),
            Self::Entry(line) => TypeFirst::Entry(line).serialize(serializer),
            Self::Elided(line) => TypeFirst::Elided(line).serialize(serializer),
            Self::Checkpoint(checkpoint) => CheckpointLine {
                checkpoint,
                kind: "checkpoint",
            }
            .serialize(serializer),
        }
    }
}

/// Why a line is not a line of an export. Its messages are those the
/// verifier reports for a malformed line.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("it has no \"type\"")]
    NoType,
    #[error("unknown line type {0:?}")]
    UnknownType(String),
    /// The line has a known `"type"` but not the fields of that type.
    #[error("{0}")]
    Fields(serde_json::Error),
}

impl ExportLine {
    /// The `"type"` of the line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Bundle(_) => "bundle",
            Self::Header(_) => "header",
            Self::Entry(_) => "entry",
            Self::Elided(_) => "elided",
            Self::Checkpoint(_) => "checkpoint",
        }
    }

    /// The line as written, without its line end.
    pub fn to_line(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// Writes the line and its line end (`\n`).
    pub fn write_to<W: Write>(&self, out: &mut W) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// Reads one line (without its line end). An entry's event is kept
    /// byte for byte.
    pub fn parse(text: &str) -> Result<Self, LineError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(LineError::Json)?;
        let fields = LineError::Fields;
        Ok(match line_type(&value) {
            Some("bundle") => Self::Bundle(serde_json::from_value(value).map_err(fields)?),
            Some("header") => Self::Header(serde_json::from_value(value).map_err(fields)?),
            Some("entry") => Self::Entry(serde_json::from_str(text).map_err(fields)?),
            Some("elided") => Self::Elided(serde_json::from_value(value).map_err(fields)?),
            Some("checkpoint") => Self::Checkpoint(serde_json::from_value(value).map_err(fields)?),
            Some(other) => return Err(LineError::UnknownType(other.to_owned())),
            None => return Err(LineError::NoType),
        })
    }
}

/// The `"type"` of a line parsed as JSON, when it has one that is a string.
pub fn line_type(value: &serde_json::Value) -> Option<&str> {
    value.get("type").and_then(|t| t.as_str())
}

/// A 32-byte hash from its hex (a chain hash, a digest), or `None`.
pub fn parse_hash(hex_hash: &str) -> Option<ChainHash> {
    hex::decode(hex_hash).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        Checkpoint::sign(&key, "shelter-north", 5, &[9; 32])
    }

    fn every_kind() -> Vec<ExportLine> {
        let event = exchange_schema::AuditEvent::new(
            exchange_schema::AuditKind::Disclosure,
            exchange_schema::Decision::Permit,
            "GRANT \"quoted\" \u{e9}",
        );
        let text = String::from_utf8(event.canonical_bytes()).unwrap();
        vec![
            ExportLine::Bundle(BundleLine {
                format: BUNDLE_FORMAT.into(),
                exported_at: "2025-01-02T03:04:05Z".into(),
                logs: vec!["shelter-north".into(), "legal-aid-east".into()],
            }),
            ExportLine::Header(HeaderLine {
                log_id: "shelter-north".into(),
                format: EXPORT_FORMAT.into(),
                exported_at: "2025-01-02T03:04:05Z".into(),
                last_seq: 7,
                checkpoints: 2,
            }),
            ExportLine::Entry(EntryLine {
                seq: 1,
                event: RawValue::from_string(text).unwrap(),
                prev_hash: hex::encode([0u8; 32]),
                hash: hex::encode([1u8; 32]),
            }),
            ExportLine::Elided(ElidedLine {
                seq: 2,
                digest: hex::encode([2u8; 32]),
                hash: hex::encode([3u8; 32]),
            }),
            ExportLine::Checkpoint(checkpoint()),
        ]
    }

    #[test]
    fn every_line_reads_back_as_written() {
        for line in every_kind() {
            let text = line.to_line().unwrap();
            assert!(!text.contains('\n'), "{text}");
            let read = ExportLine::parse(&text).unwrap();
            assert_eq!(read, line, "{text}");
            assert_eq!(read.to_line().unwrap(), text);
            assert_eq!(read.kind(), line.kind());
            let mut written = Vec::new();
            line.write_to(&mut written).unwrap();
            assert_eq!(written, format!("{text}\n").into_bytes());
        }
    }

    /// The exact bytes exports have always had: field order, `"type"`
    /// placement, the event verbatim (not re-serialised).
    #[test]
    fn the_bytes_are_those_of_the_format() {
        let hash = |b: u8| hex::encode([b; 32]);
        let header = ExportLine::Header(HeaderLine {
            log_id: "shelter-north".into(),
            format: EXPORT_FORMAT.into(),
            exported_at: "2025-01-02T03:04:05Z".into(),
            last_seq: 7,
            checkpoints: 2,
        });
        assert_eq!(
            header.to_line().unwrap(),
            r#"{"type":"header","log_id":"shelter-north","format":"exchange-audit-export-v1","exported_at":"2025-01-02T03:04:05Z","last_seq":7,"checkpoints":2}"#
        );
        let bundle = ExportLine::Bundle(BundleLine {
            format: BUNDLE_FORMAT.into(),
            exported_at: "2025-01-02T03:04:05Z".into(),
            logs: vec!["a".into(), "b\"".into()],
        });
        assert_eq!(
            bundle.to_line().unwrap(),
            r#"{"type":"bundle","format":"exchange-audit-bundle-v1","exported_at":"2025-01-02T03:04:05Z","logs":["a","b\""]}"#
        );
        // Not the canonical form of anything: kept as it is, spaces and all.
        let event = r#"{"z": 1, "a":[true ,null]}"#;
        let entry = ExportLine::Entry(EntryLine {
            seq: 3,
            event: RawValue::from_string(event.into()).unwrap(),
            prev_hash: hash(0),
            hash: "not \"hex\"".into(),
        });
        assert_eq!(
            entry.to_line().unwrap(),
            format!(
                r#"{{"type":"entry","seq":3,"event":{event},"prev_hash":"{}","hash":"not \"hex\""}}"#,
                hash(0)
            )
        );
        let elided = ExportLine::Elided(ElidedLine {
            seq: 4,
            digest: hash(2),
            hash: hash(3),
        });
        assert_eq!(
            elided.to_line().unwrap(),
            format!(
                r#"{{"type":"elided","seq":4,"digest":"{}","hash":"{}"}}"#,
                hash(2),
                hash(3)
            )
        );
        let cp = checkpoint();
        assert_eq!(
            ExportLine::Checkpoint(cp.clone()).to_line().unwrap(),
            format!(
                r#"{{"log_id":"shelter-north","seq":5,"head":"{}","signed_at":"{}","public_key":"{}","signature":"{}","type":"checkpoint"}}"#,
                cp.head,
                cp.signed_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
                cp.public_key,
                cp.signature
            )
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let message = |text: &str| ExportLine::parse(text).unwrap_err().to_string();
        assert_eq!(message(r#"{"seq":1}"#), "it has no \"type\"");
        assert_eq!(message(r#"{"type":7}"#), "it has no \"type\"");
        assert_eq!(message(r#"{"type":"note"}"#), "unknown line type \"note\"");
        assert_eq!(
            message(r#"{"type":"elided","seq":1,"hash":"00"}"#),
            "missing field `digest`"
        );
        assert!(message("{").starts_with("EOF while parsing"));
        assert!(matches!(
            ExportLine::parse(r#"{"type":"entry","seq":1}"#),
            Err(LineError::Fields(_))
        ));
    }

    #[test]
    fn hashes_are_32_bytes_of_hex() {
        assert_eq!(parse_hash(&hex::encode([5u8; 32])), Some([5; 32]));
        assert_eq!(parse_hash(&hex::encode([5u8; 31])), None);
        assert_eq!(parse_hash("zz"), None);
    }
}

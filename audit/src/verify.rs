//! Offline verification of an audit log, from a live database or from an
//! export file, as run by `agency-node audit verify`.
//!
//! The log is read once, in `seq` order, in pages of [`PAGE_ROWS`] rows (a
//! database) or line by line (an export). Only the chain head, the
//! checkpoints of the current page and the checkpoints collected earlier are
//! held in memory, so a log of any length verifies in bounded memory. Each
//! checkpoint is checked as the chain passes its `seq`. Verification stops at
//! the first problem, in `seq` order, and names it with a [`VerifyFailure`].
//!
//! How a bad entry at `seq` n is classified, given the verified hash `h` of
//! entry n-1 and the entry's own `prev_hash` p, `hash` H and event digest d:
//!
//! * a missing `seq` is **deleted** ([`VerifyFailure::Deleted`]); in an
//!   export, a missing `seq` found further down the file is **reordered**
//!   ([`VerifyFailure::Misplaced`]);
//! * `p = h` and `H = chain_hash(p, n, d)`: the entry is good;
//! * `p ≠ h` but `H = chain_hash(p, n, d)`: the entry is intact but was
//!   chained after a different entry n-1 — that entry was rewritten with a
//!   recomputed hash, or this one was spliced in from another log
//!   ([`VerifyFailure::BrokenLink`]);
//! * `H = chain_hash(p, s, d)` for another `s`: the whole entry (event and
//!   hashes) was moved from `seq` s — **reordered**
//!   ([`VerifyFailure::Reordered`]; the hash covers `seq`, so this search
//!   is how a moved entry is recognised);
//! * otherwise the content no longer matches the hash: **edited**
//!   ([`VerifyFailure::Edited`]). Moving only the event text while leaving
//!   the hash columns in place is reported this way too, at the first
//!   position it touches, since nothing there matches any more. So are an
//!   event that does not parse, an index column (`at`, `kind`,
//!   `actor_agency`, `survivor`, `purpose`, `decision`, `break_glass`) that
//!   disagrees with the event, and an elided export line whose digest does
//!   not chain.
//!
//! Checkpoints: each must carry a good signature by the expected key (the
//! pinned one, or else the key of the log's first checkpoint), name this
//! log, and state the head the recomputed chain has at its `seq`; a
//! checkpoint beyond the end of the log means the log was **truncated**.
//! A node that rewrites history, recomputes every hash and signs new
//! checkpoints with its own key passes all of that; only checkpoints that
//! auditors collected before the rewrite ([`VerifyOptions::collected_checkpoints`])
//! reveal it, as a **fork**. They also show a log cut back: one ending
//! before the newest collected checkpoint lost entries
//! ([`VerifyFailure::EntriesCut`]); one whose own checkpoints stop before
//! it lost checkpoints ([`VerifyFailure::CheckpointsCut`]). A collected
//! checkpoint counts only with a good signature by the log's key.
//!
//! What a database must hold besides (its audit tables, its append-only
//! triggers) is checked by [`guards`].

pub mod guards;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use exchange_schema::AuditEvent;
use exchange_schema::audit::{
    ChainHash, Checkpoint, CheckpointError, Decision, GENESIS, chain_hash, event_digest,
};
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use exchange_service::db::{Db, to_ms};

use super::export::{BUNDLE_FORMAT, EXPORT_FORMAT};

/// Rows read from the database at a time.
pub const PAGE_ROWS: i64 = 5_000;

/// Longest export line accepted (1 MiB).
const MAX_LINE: u64 = 1 << 20;

/// How far from its position a moved entry is looked for.
const SEARCH_RADIUS: u64 = 1 << 20;

/// What to verify a log against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Hex of the Ed25519 public key that must have signed every checkpoint.
    /// When `None`, the key of the log's first checkpoint is used and the
    /// report says that the key was not pinned.
    pub expected_key: Option<String>,
    /// Checkpoints collected from this log earlier (a file may hold those of
    /// many logs; only the ones naming this log are used).
    pub collected_checkpoints: Vec<Checkpoint>,
    /// The log's identity. When `None`, it is taken from the export header,
    /// or from the first checkpoint stored in the database.
    pub log_id: Option<String>,
    /// Keys pinned per log ID (hex), for a file holding several logs: the
    /// key named for a log takes precedence over `expected_key`.
    pub keys: BTreeMap<String, String>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The log verified, when known.
    pub log_id: Option<String>,
    /// Entries whose place in the chain was recomputed (elided ones included).
    pub entries_checked: u64,
    /// Of those, entries present in an export only as a digest.
    pub elided: u64,
    /// The last `seq` of the log (0 when empty).
    pub last_seq: u64,
    /// Hex of the chain hash at `last_seq`.
    pub head: String,
    /// The log's own checkpoints that verified.
    pub checkpoints_verified: u64,
    /// The `seq` of the last verified checkpoint (0 when none).
    pub signed_through: u64,
    /// Previously collected checkpoints that matched the log.
    pub collected_matched: u64,
    /// Hex of the key the checkpoints were checked against.
    pub public_key: Option<String>,
    /// Whether that key was given by the caller (otherwise it is the key of
    /// the log's first checkpoint, which proves only self-consistency).
    pub key_pinned: bool,
}

impl VerifyReport {
    /// Limits of what was proved, one sentence each.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.key_pinned {
            warnings.push(match &self.public_key {
                Some(key) => format!(
                    "the signing key was not pinned: checkpoints were checked against the key of the log's \
                     first checkpoint ({key}), which shows only that the log agrees with itself"
                ),
                None => "the signing key was not pinned and the log has no checkpoint".to_owned(),
            });
        }
        if self.signed_through < self.last_seq {
            warnings.push(format!(
                "entries {} to {} are not yet covered by a signed checkpoint",
                self.signed_through + 1,
                self.last_seq
            ));
        }
        if self.collected_matched == 0 && self.last_seq > 0 {
            warnings.push(
                "no previously collected checkpoint was compared: a history rewritten and re-signed by \
                 the log keeper would not be detected"
                    .to_owned(),
            );
        }
        warnings
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log {}: {} entries verified through seq {}",
            self.log_id.as_deref().unwrap_or("(unnamed)"),
            self.entries_checked,
            self.last_seq
        )?;
        if self.elided > 0 {
            write!(f, " ({} elided)", self.elided)?;
        }
        write!(
            f,
            ", head {}; {} checkpoints verified",
            self.head, self.checkpoints_verified
        )?;
        if self.checkpoints_verified > 0 {
            write!(f, " (the last at seq {})", self.signed_through)?;
        }
        write!(
            f,
            "; {} collected checkpoints matched",
            self.collected_matched
        )?;
        for warning in self.warnings() {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// How an entry was edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditDetail {
    #[error("its content no longer matches its hash")]
    ContentMismatch,
    #[error("its digest no longer chains to its hash")]
    ElidedMismatch,
    #[error("its {column} column says {stored} but its event says {event}")]
    Column {
        column: &'static str,
        stored: String,
        event: String,
    },
    #[error("its event is not a readable audit event ({0})")]
    Unreadable(String),
    #[error("its event is not in the exact form that was hashed")]
    NotCanonical,
    #[error("its {0} is not a 32-byte hex hash")]
    BadHash(&'static str),
}

/// Why a log did not verify: the first problem found, in `seq` order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    #[error("entry {seq} was edited: {detail}")]
    Edited { seq: u64, detail: EditDetail },
    /// Entries `seq` to `next - 1` are missing.
    #[error("{}", deleted_message(*seq, *next))]
    Deleted { seq: u64, next: u64 },
    /// A row holds the whole entry (event and hashes) of another `seq`.
    #[error("entry {seq} was reordered: it holds the entry originally at seq {from}")]
    Reordered { seq: u64, from: u64 },
    /// An export line was moved further down the file.
    #[error("entry {seq} was reordered: it appears after entry {after} in the export")]
    Misplaced { seq: u64, after: u64 },
    #[error("entry {seq} appears twice")]
    Duplicated { seq: u64 },
    #[error("an entry was inserted at seq {seq}: the log starts at seq 1")]
    Inserted { seq: i64 },
    /// The entry is intact but chained after a different predecessor.
    #[error("{}", broken_link_message(*seq))]
    BrokenLink { seq: u64 },
    /// The log's own checkpoint covers an entry the log no longer has.
    #[error("{}", truncated_message(*last_seq, *checkpoint_seq))]
    Truncated { last_seq: u64, checkpoint_seq: u64 },
    /// A checkpoint collected earlier covers an entry the log no longer has
    /// (its own checkpoints were cut with the entries). `signed_at` is when
    /// the log keeper signed it (RFC 3339): it was collected after that.
    #[error("{}", entries_cut_message(*last_seq, *checkpoint_seq, signed_at))]
    EntriesCut {
        last_seq: u64,
        checkpoint_seq: u64,
        signed_at: String,
    },
    /// The log's own checkpoints stop before one collected earlier, which
    /// the chain still matches: checkpoints were removed from the log.
    #[error("{}", checkpoints_cut_message(*newest, *checkpoint_seq, signed_at))]
    CheckpointsCut {
        /// The `seq` of the log's newest checkpoint (0 when it has none).
        newest: u64,
        checkpoint_seq: u64,
        signed_at: String,
    },
    #[error(
        "the export was truncated: its header announces entries up to seq {declared} but it ends after entry {last}"
    )]
    ExportTruncated { declared: u64, last: u64 },
    #[error(
        "the export's header announces {declared} checkpoints but it holds {found}: checkpoint lines were removed or added"
    )]
    ExportCheckpointCount { declared: u64, found: u64 },
    #[error("checkpoint at seq {seq} has a bad signature")]
    BadSignature { seq: u64 },
    #[error(
        "checkpoint at seq {seq} was signed by key {found}, not by the expected key {expected}"
    )]
    UnexpectedKey {
        seq: u64,
        expected: String,
        found: String,
    },
    #[error("checkpoint at seq {seq} is unreadable: {reason}")]
    MalformedCheckpoint { seq: u64, reason: String },
    #[error("checkpoint at seq {seq} belongs to log {found:?}, not {expected:?}")]
    ForeignCheckpoint {
        seq: u64,
        found: String,
        expected: String,
    },
    #[error("checkpoint at seq {seq} was moved: it appears after entry {after}")]
    MisplacedCheckpoint { seq: u64, after: u64 },
    /// The log's own checkpoint disagrees with the recomputed chain.
    #[error(
        "history rewritten after checkpoint at seq {seq} was signed: the checkpoint says {checkpoint}, the log says {log} (the rewrite lies in entries {} to {seq})",
        since + 1
    )]
    HistoryRewritten {
        seq: u64,
        /// The last `seq` at which a checkpoint still matched (0 if none).
        since: u64,
        checkpoint: String,
        log: String,
    },
    /// A checkpoint collected earlier disagrees with the recomputed chain.
    #[error("fork: checkpoint collected at seq {seq} says {collected}, log says {log}")]
    Fork {
        seq: u64,
        collected: String,
        log: String,
    },
    #[error("checkpoint collected at seq {seq} does not verify: {reason}")]
    CollectedInvalid { seq: u64, reason: String },
    #[error("this export is of log {found:?}, not {expected:?}")]
    WrongLog { expected: String, found: String },
    /// A file of several logs lacks one its bundle line announces.
    #[error(
        "the file was truncated or a log was removed: its bundle line announces log {log_id:?}, which is missing"
    )]
    MissingLog { log_id: String },
    #[error("log {log_id:?} appears twice in the file")]
    DuplicateLog { log_id: String },
    #[error("log {log_id:?} was added to the file: its bundle line does not announce it")]
    UnexpectedLog { log_id: String },
    #[error("the log has {entries} entries but no checkpoint signed by the expected key")]
    Unsigned { entries: u64 },
    #[error(
        "cannot tell which collected checkpoints belong to this log: it has no checkpoint naming it; give its log ID"
    )]
    UnknownLogId,
    #[error("the expected key is not the hex of a 32-byte Ed25519 public key")]
    InvalidKey,
    #[error("line {line} of the export is not valid: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("could not read the log: {0}")]
    Read(String),
}

impl VerifyFailure {
    /// The `seq` of the entry or checkpoint the failure is about, if any.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Edited { seq, .. }
            | Self::Deleted { seq, .. }
            | Self::Reordered { seq, .. }
            | Self::Misplaced { seq, .. }
            | Self::Duplicated { seq }
            | Self::BrokenLink { seq }
            | Self::BadSignature { seq }
            | Self::UnexpectedKey { seq, .. }
            | Self::MalformedCheckpoint { seq, .. }
            | Self::ForeignCheckpoint { seq, .. }
            | Self::MisplacedCheckpoint { seq, .. }
            | Self::HistoryRewritten { seq, .. }
            | Self::Fork { seq, .. }
            | Self::CollectedInvalid { seq, .. } => Some(*seq),
            Self::Truncated { checkpoint_seq, .. }
            | Self::EntriesCut { checkpoint_seq, .. }
            | Self::CheckpointsCut { checkpoint_seq, .. } => Some(*checkpoint_seq),
            Self::ExportTruncated { last, .. } => Some(last + 1),
            Self::Inserted { .. }
            | Self::ExportCheckpointCount { .. }
            | Self::WrongLog { .. }
            | Self::MissingLog { .. }
            | Self::DuplicateLog { .. }
            | Self::UnexpectedLog { .. }
            | Self::Unsigned { .. }
            | Self::UnknownLogId
            | Self::InvalidKey
            | Self::Malformed { .. }
            | Self::Read(_) => None,
        }
    }
}

fn deleted_message(seq: u64, next: u64) -> String {
    let what = if next - seq == 1 {
        format!("entry {seq} was deleted")
    } else {
        format!("entries {seq} to {} were deleted", next - 1)
    };
    if seq == 1 {
        format!("{what}: the log starts at entry {next}")
    } else {
        format!("{what}: entry {} is followed by entry {next}", seq - 1)
    }
}

fn broken_link_message(seq: u64) -> String {
    if seq == 1 {
        "entry 1 does not start from the genesis hash: it was rewritten or spliced in from another log".to_owned()
    } else {
        format!(
            "entry {seq} does not follow entry {prev}: it was chained after a different entry {prev}, so entry {prev} \
             was rewritten with a recomputed hash or entry {seq} was spliced in from another log",
            prev = seq - 1
        )
    }
}

fn truncated_message(last_seq: u64, checkpoint_seq: u64) -> String {
    if last_seq == 0 {
        format!("the log was truncated: it is empty but a checkpoint covers entry {checkpoint_seq}")
    } else {
        format!(
            "the log was truncated: it ends at entry {last_seq} but a checkpoint covers entry {checkpoint_seq}"
        )
    }
}

fn entries_cut_message(last_seq: u64, checkpoint_seq: u64, signed_at: &str) -> String {
    let collected = format!("a checkpoint collected earlier (signed at {signed_at})");
    if last_seq == 0 {
        format!("the log is empty but {collected} covers seq {checkpoint_seq}: entries were cut")
    } else {
        format!(
            "the log ends at seq {last_seq} but {collected} covers seq {checkpoint_seq} > {last_seq}: entries were cut"
        )
    }
}

fn checkpoints_cut_message(newest: u64, checkpoint_seq: u64, signed_at: &str) -> String {
    let collected = format!("a checkpoint collected earlier (signed at {signed_at})");
    if newest == 0 {
        format!(
            "the log has no checkpoint of its own but {collected} covers seq {checkpoint_seq}: its checkpoints were cut"
        )
    } else {
        format!(
            "the log's newest checkpoint is at seq {newest} but {collected} covers seq {checkpoint_seq} > {newest}: its checkpoints were cut"
        )
    }
}

/// RFC 3339 text of a checkpoint's signing time.
fn signed_at(cp: &Checkpoint) -> String {
    cp.signed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| cp.signed_at.to_string())
}

fn read_error(err: impl fmt::Display) -> VerifyFailure {
    VerifyFailure::Read(err.to_string())
}

/// Why a file of collected checkpoints could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("line {line} of the checkpoint file is not a checkpoint: {reason}")]
    Line { line: u64, reason: String },
    #[error("reading the checkpoint file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads checkpoints collected earlier: JSON Lines, one [`Checkpoint`] a
/// line (blank lines skipped). The checkpoint lines of an export are
/// accepted too, so an auditor can keep old exports as evidence.
pub fn load_checkpoints(reader: impl BufRead) -> Result<Vec<Checkpoint>, CheckpointFileError> {
    let mut checkpoints = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint = serde_json::from_str(&line).map_err(|e| CheckpointFileError::Line {
            line: i as u64 + 1,
            reason: e.to_string(),
        })?;
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

/// One chained entry as presented to [`Chain::entry`].
enum Item<'a> {
    /// An entry with its event (already reduced to its digest, or the reason
    /// it could not be) and its stored hashes.
    Full {
        digest: Result<ChainHash, EditDetail>,
        prev: &'a str,
        hash: &'a str,
    },
    /// An entry of an export present only as its event digest.
    Elided { digest: &'a str, hash: &'a str },
}

/// The state of a verification as it walks the chain.
struct Chain {
    log_id: Option<String>,
    key: Option<String>,
    pinned: bool,
    /// The last `seq` verified (0 before the first entry).
    last: u64,
    /// The recomputed hash at `last`.
    head: ChainHash,
    /// The highest `seq` a moved entry may come from.
    search_upper: u64,
    /// The log's own checkpoints for `seq`s not yet reached.
    pending: BTreeMap<u64, Vec<Checkpoint>>,
    /// Collected checkpoints of this log for `seq`s not yet reached.
    collected: BTreeMap<u64, Vec<Checkpoint>>,
    entries: u64,
    elided: u64,
    checkpoints_verified: u64,
    collected_matched: u64,
    /// The collected checkpoint with the highest `seq` that matched.
    newest_collected: Option<Checkpoint>,
    /// The last `seq` at which any checkpoint matched.
    verified_through: u64,
    signed_through: u64,
    /// The newest `seq` of the log's checkpoint history, when it is known
    /// apart from the signed head (a live database). Collected checkpoints
    /// come from that history, so one beyond it means history was cut even
    /// where the signed head still covers the entries.
    history_through: Option<u64>,
}

impl Chain {
    fn new(opts: &VerifyOptions, log_id: Option<String>) -> Result<Self, VerifyFailure> {
        let log_id = opts.log_id.clone().or(log_id);
        let pinned = log_id
            .as_ref()
            .and_then(|id| opts.keys.get(id))
            .or(opts.expected_key.as_ref());
        let key = match pinned {
            Some(key) => {
                let key = key.trim().to_ascii_lowercase();
                match hex::decode(&key) {
                    Ok(bytes) if bytes.len() == 32 => Some(key),
                    _ => return Err(VerifyFailure::InvalidKey),
                }
            }
            None => None,
        };
        let mut collected: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
        if !opts.collected_checkpoints.is_empty() {
            let id = log_id.as_deref().ok_or(VerifyFailure::UnknownLogId)?;
            for cp in opts
                .collected_checkpoints
                .iter()
                .filter(|cp| cp.log_id == id)
            {
                if cp.seq == 0 {
                    return Err(VerifyFailure::CollectedInvalid {
                        seq: 0,
                        reason: "seq 0 names no entry".to_owned(),
                    });
                }
                collected.entry(cp.seq).or_default().push(cp.clone());
            }
        }
        Ok(Self {
            log_id,
            pinned: key.is_some(),
            key,
            last: 0,
            head: GENESIS,
            search_upper: 0,
            pending: BTreeMap::new(),
            collected,
            entries: 0,
            elided: 0,
            checkpoints_verified: 0,
            collected_matched: 0,
            newest_collected: None,
            verified_through: 0,
            signed_through: 0,
            history_through: None,
        })
    }

    /// Takes one of the log's own checkpoints: checked now if the chain is at
    /// its `seq`, otherwise when it gets there.
    fn add_checkpoint(&mut self, cp: Checkpoint) -> Result<(), VerifyFailure> {
        match &self.log_id {
            Some(id) if *id != cp.log_id => {
                return Err(VerifyFailure::ForeignCheckpoint {
                    seq: cp.seq,
                    found: cp.log_id,
                    expected: id.clone(),
                });
            }
            Some(_) => {}
            None => self.log_id = Some(cp.log_id.clone()),
        }
        if cp.seq == 0 {
            return Err(VerifyFailure::MalformedCheckpoint {
                seq: 0,
                reason: "seq 0 names no entry".to_owned(),
            });
        }
        if cp.seq < self.last {
            return Err(VerifyFailure::MisplacedCheckpoint {
                seq: cp.seq,
                after: self.last,
            });
        }
        if cp.seq == self.last {
            return self.check_own(&cp);
        }
        self.pending.entry(cp.seq).or_default().push(cp);
        Ok(())
    }

    /// Checks the next entry's place in the chain and moves the head on.
    fn entry(&mut self, seq: u64, item: Item<'_>) -> Result<(), VerifyFailure> {
        let expected = self.last + 1;
        if seq < expected {
            return Err(VerifyFailure::Duplicated { seq });
        }
        if seq > expected {
            return Err(VerifyFailure::Deleted {
                seq: expected,
                next: seq,
            });
        }
        let edited = |detail| VerifyFailure::Edited { seq, detail };
        let hash = match item {
            Item::Full { digest, prev, hash } => {
                let digest = digest.map_err(edited)?;
                let prev = parse_hash(prev).ok_or(edited(EditDetail::BadHash("prev_hash")))?;
                let hash = parse_hash(hash).ok_or(edited(EditDetail::BadHash("hash")))?;
                let own = chain_hash(&prev, seq, &digest);
                if own == hash && prev != self.head {
                    return Err(VerifyFailure::BrokenLink { seq });
                }
                if own != hash {
                    return Err(match self.origin_of(seq, &prev, &digest, &hash) {
                        Some(from) => VerifyFailure::Reordered { seq, from },
                        None => edited(EditDetail::ContentMismatch),
                    });
                }
                hash
            }
            Item::Elided { digest, hash } => {
                let digest = parse_hash(digest).ok_or(edited(EditDetail::BadHash("digest")))?;
                let hash = parse_hash(hash).ok_or(edited(EditDetail::BadHash("hash")))?;
                if chain_hash(&self.head, seq, &digest) != hash {
                    return Err(edited(EditDetail::ElidedMismatch));
                }
                self.elided += 1;
                hash
            }
        };
        self.entries += 1;
        self.last = seq;
        self.head = hash;
        Ok(())
    }

    /// The other `seq` an entry hashes correctly at, if any: where it was
    /// moved from.
    fn origin_of(
        &self,
        seq: u64,
        prev: &ChainHash,
        digest: &ChainHash,
        hash: &ChainHash,
    ) -> Option<u64> {
        let low = seq.saturating_sub(SEARCH_RADIUS).max(1);
        let high = self.search_upper.min(seq.saturating_add(SEARCH_RADIUS));
        (low..=high)
            .filter(|&s| s != seq)
            .find(|&s| chain_hash(prev, s, digest) == *hash)
    }

    /// Checks the checkpoints at `seq`, which the chain has just reached.
    fn pass(&mut self, seq: u64) -> Result<(), VerifyFailure> {
        if let Some(checkpoints) = self.pending.remove(&seq) {
            for cp in &checkpoints {
                self.check_own(cp)?;
            }
        }
        if let Some(checkpoints) = self.collected.remove(&seq) {
            for cp in &checkpoints {
                self.check_collected(cp)?;
            }
        }
        Ok(())
    }

    fn check_signature(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        let key = self
            .key
            .get_or_insert_with(|| cp.public_key.to_ascii_lowercase())
            .clone();
        cp.verify(Some(&key)).map_err(|err| match err {
            CheckpointError::UnexpectedKey(seq) => VerifyFailure::UnexpectedKey {
                seq,
                expected: key,
                found: cp.public_key.clone(),
            },
            CheckpointError::BadSignature(seq) => VerifyFailure::BadSignature { seq },
            CheckpointError::Encoding(seq) => VerifyFailure::MalformedCheckpoint {
                seq,
                reason: "its key or signature is not hex-encoded correctly".to_owned(),
            },
        })
    }

    fn check_own(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        self.check_signature(cp)?;
        if parse_hash(&cp.head) != Some(self.head) {
            return Err(VerifyFailure::HistoryRewritten {
                seq: cp.seq,
                since: self.verified_through,
                checkpoint: cp.head.clone(),
                log: hex::encode(self.head),
            });
        }
        self.checkpoints_verified += 1;
        self.signed_through = cp.seq;
        self.verified_through = cp.seq;
        Ok(())
    }

    /// Checks a collected checkpoint's signature with the log's key: the
    /// pinned one, or else the key of the log's own first checkpoint once
    /// one was checked.
    fn verify_collected(&self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        cp.verify(self.key.as_deref())
            .map_err(|err| VerifyFailure::CollectedInvalid {
                seq: cp.seq,
                reason: match err {
                    CheckpointError::UnexpectedKey(_) => {
                        "it was signed by a key other than the expected one"
                    }
                    CheckpointError::BadSignature(_) => "its signature is bad",
                    CheckpointError::Encoding(_) => {
                        "its key or signature is not hex-encoded correctly"
                    }
                }
                .to_owned(),
            })
    }

    fn check_collected(&mut self, cp: &Checkpoint) -> Result<(), VerifyFailure> {
        self.verify_collected(cp)?;
        if parse_hash(&cp.head) != Some(self.head) {
            return Err(VerifyFailure::Fork {
                seq: cp.seq,
                collected: cp.head.clone(),
                log: hex::encode(self.head),
            });
        }
        self.collected_matched += 1;
        self.verified_through = cp.seq;
        if self
            .newest_collected
            .as_ref()
            .is_none_or(|n| n.seq < cp.seq)
        {
            self.newest_collected = Some(cp.clone());
        }
        Ok(())
    }

    /// After the last entry: a checkpoint still waiting covers an entry the
    /// log no longer has; or the log's own checkpoints stop before one
    /// collected earlier.
    fn check_end(&mut self) -> Result<(), VerifyFailure> {
        if let Some(cp) = self
            .pending
            .values()
            .next()
            .and_then(|cps| cps.first())
            .cloned()
        {
            self.check_signature(&cp)?;
            return Err(VerifyFailure::Truncated {
                last_seq: self.last,
                checkpoint_seq: cp.seq,
            });
        }
        // The newest collected checkpoint beyond the end: how far the log
        // reached when it was collected.
        if let Some(cp) = self
            .collected
            .values()
            .next_back()
            .and_then(|cps| cps.last())
        {
            self.verify_collected(cp)?;
            return Err(VerifyFailure::EntriesCut {
                last_seq: self.last,
                checkpoint_seq: cp.seq,
                signed_at: signed_at(cp),
            });
        }
        let history = self.history_through.unwrap_or(self.signed_through);
        if let Some(cp) = &self.newest_collected
            && cp.seq > history
        {
            return Err(VerifyFailure::CheckpointsCut {
                newest: history,
                checkpoint_seq: cp.seq,
                signed_at: signed_at(cp),
            });
        }
        Ok(())
    }

    fn report(self) -> Result<VerifyReport, VerifyFailure> {
        if self.pinned && self.last > 0 && self.checkpoints_verified == 0 {
            return Err(VerifyFailure::Unsigned { entries: self.last });
        }
        Ok(VerifyReport {
            log_id: self.log_id,
            entries_checked: self.entries,
            elided: self.elided,
            last_seq: self.last,
            head: hex::encode(self.head),
            checkpoints_verified: self.checkpoints_verified,
            signed_through: self.signed_through,
            collected_matched: self.collected_matched,
            public_key: self.key,
            key_pinned: self.pinned,
        })
    }
}

fn parse_hash(hex_hash: &str) -> Option<ChainHash> {
    hex::decode(hex_hash).ok()?.try_into().ok()
}

/// `SHA-256` of the stored event text: equal to [`event_digest`] for every
/// entry the node wrote, since it stores exactly the canonical bytes.
pub(crate) fn text_digest(text: &str) -> ChainHash {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

fn decision_wire(decision: Decision) -> &'static str {
    match decision {
        Decision::Permit => "PERMIT",
        Decision::Deny => "DENY",
    }
}

// ---------------------------------------------------------------------------
// A live database.

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
            Some(decision_wire(event.decision).to_owned()),
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

// ---------------------------------------------------------------------------
// An export file.

#[derive(Deserialize)]
struct HeaderLine {
    log_id: String,
    format: String,
    last_seq: u64,
    checkpoints: u64,
}

#[derive(Deserialize)]
struct EntryLine {
    seq: u64,
    event: serde_json::Value,
    prev_hash: String,
    hash: String,
}

#[derive(Deserialize)]
struct ElidedLine {
    seq: u64,
    digest: String,
    hash: String,
}

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

/// Verifies an export written by [`super::export::export_jsonl`]: the whole
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

/// A failure in a file of one or more logs: the log it was found in (when
/// known) and the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFailure {
    pub log_id: Option<String>,
    pub failure: VerifyFailure,
}

impl fmt::Display for FileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.log_id {
            Some(id) => write!(f, "log {id}: {}", self.failure),
            None => write!(f, "{}", self.failure),
        }
    }
}

impl std::error::Error for FileFailure {}

#[derive(Deserialize)]
struct BundleLine {
    format: String,
    logs: Vec<String>,
}

/// Verifies a file of one or more logs, each an export section as
/// [`super::export::export_jsonl`] writes it (its header line, then its
/// entries and checkpoints), in order, optionally after a bundle line
/// ([`super::export::bundle_line`]) announcing every log the file holds, so
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

fn line_type(value: &serde_json::Value) -> Option<&str> {
    value.get("type").and_then(|t| t.as_str())
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
fn canonical_digest(value: &serde_json::Value) -> Result<ChainHash, EditDetail> {
    let event =
        AuditEvent::deserialize(value).map_err(|e| EditDetail::Unreadable(e.to_string()))?;
    match serde_json::to_value(&event) {
        Ok(round_trip) if round_trip == *value => Ok(event_digest(&event)),
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
pub(crate) mod tests {
    use std::sync::Arc;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::Ed25519KeyPair;
    use exchange_schema::audit::{AuditKind, chain_hash_event};
    use exchange_schema::{AgencyId, Category, GlobalId, Purpose, Role};
    use tempfile::TempDir;

    use super::*;
    use crate::export::{export_checkpoints, export_jsonl};
    use crate::read::AuditFilter;
    use crate::{AuditLog, AuditOptions};

    const LOG: &str = "shelter-north";
    const ENTRIES: u64 = 20;

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

    /// A log of `count` entries appended one by one, signed every 5.
    pub(crate) async fn fixture(log_id: &str, count: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("node.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate(&crate::MIGRATIONS).await.unwrap();
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

    async fn exec(db: &Db, sql: &str) {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }

    /// What an attacker with write access to the file does first.
    async fn drop_triggers(db: &Db) {
        exec(db, "DROP TRIGGER audit_log_no_update").await;
        exec(db, "DROP TRIGGER audit_log_no_delete").await;
        exec(db, "DROP TRIGGER audit_head_forward_only").await;
        exec(db, "DROP TRIGGER audit_head_no_delete").await;
    }

    struct StoredRow {
        event: AuditEvent,
        prev: String,
        hash: String,
    }

    async fn stored(db: &Db, seq: u64) -> StoredRow {
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
    async fn overwrite(db: &Db, seq: u64, event: &AuditEvent, prev: &str, hash: &str) {
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
    async fn rewrite_from(
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
    async fn replace_checkpoint(db: &Db, cp: &Checkpoint) {
        sqlx::query("UPDATE audit_checkpoints SET checkpoint = $1 WHERE seq = $2")
            .bind(serde_json::to_string(cp).unwrap())
            .bind(cp.seq as i64)
            .execute(db.pool())
            .await
            .unwrap();
    }

    async fn collected(db: &Db) -> Vec<Checkpoint> {
        let mut buf = Vec::new();
        export_checkpoints(db, &mut buf).await.unwrap();
        load_checkpoints(&buf[..]).unwrap()
    }

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
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("node.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate(&crate::MIGRATIONS).await.unwrap();
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

    #[test]
    fn collected_checkpoints_load_from_json_lines() {
        let key = new_key();
        let a = Checkpoint::sign(&key, LOG, 5, &[1; 32]);
        let b = Checkpoint::sign(&key, LOG, 10, &[2; 32]);
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(load_checkpoints(text.as_bytes()).unwrap(), vec![a, b]);
        let err = load_checkpoints(&b"{\"seq\": 1}\n"[..]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1 of the checkpoint file is not a checkpoint"),
            "{err}"
        );
    }

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

    fn verified(result: Result<VerifyReport, VerifyFailure>) -> VerifyReport {
        result.unwrap_or_else(|failure| panic!("the export must verify: {failure}"))
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

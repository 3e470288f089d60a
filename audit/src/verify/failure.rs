//! Why a log did not verify: [`VerifyFailure`] (the first problem found),
//! [`EditDetail`] (how an entry was edited), [`FileFailure`] (a failure in a
//! file of several logs, with the log it is in), and their messages.

use std::fmt;

use exchange_schema::audit::Checkpoint;

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
pub(super) fn signed_at(cp: &Checkpoint) -> String {
    cp.signed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| cp.signed_at.to_string())
}

pub(super) fn read_error(err: impl fmt::Display) -> VerifyFailure {
    VerifyFailure::Read(err.to_string())
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

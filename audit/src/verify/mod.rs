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
//!
//! The work is split by concern: `chain` holds the chain state machine
//! (no I/O), `database` and `file` feed it from a live database or from an
//! export or bundle, `failure` names what went wrong, and `checkpoints`
//! reads the checkpoints auditors collected.

mod chain;
mod checkpoints;
mod database;
mod failure;
mod file;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod guards;

use std::collections::BTreeMap;
use std::fmt;

use exchange_schema::audit::Checkpoint;

pub(crate) use chain::text_digest;
pub use checkpoints::{CheckpointFileError, load_checkpoints};
pub use database::verify_database;
pub use failure::{EditDetail, FileFailure, VerifyFailure};
pub use file::{verify_export, verify_file};

/// Rows read from the database at a time.
pub const PAGE_ROWS: i64 = 5_000;

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
    /// The key rotations followed: at which `seq` the log handed over to
    /// which key (hex), each announced by a checkpoint the key before
    /// signed. `public_key` is the last one's.
    pub key_rotations: Vec<(u64, String)>,
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
        for (seq, key) in &self.key_rotations {
            write!(
                f,
                "\nsigning key rotated at seq {seq}: checkpoints after it verified with {key}"
            )?;
        }
        for warning in self.warnings() {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

//! The tamper-evident audit log an agency node and the gateway each keep.
//!
//! * [`AuditLog`] (`log`): the writer. Entries are chained by hash, written
//!   in groups (group commit) or in the transaction of the change they
//!   describe, covered by a signed head in that same transaction and by
//!   signed checkpoints; a caller is answered only once its entry is
//!   durable, otherwise it gets [`AuditError::Unavailable`].
//! * [`keys`]: the log's Ed25519 signing key in the data directory.
//! * [`read`] and [`query`]: auditors' filters over a live log.
//! * [`export`]: JSON Lines (verifiable) and CSV exports.
//! * [`lines`]: the JSON Lines of an export or a bundle, as types, written
//!   by `export` and read by `verify`.
//! * [`verify`]: verification of a live database, an export file or a
//!   federated bundle, against collected checkpoints.
//! * [`cli`]: the `verify` and `export` commands, shared by the
//!   `exchange-audit` binary and `agency-node audit`.
//! * [`MIGRATIONS`]: the audit tables only, for either backend.

pub mod cli;
mod error;
pub mod export;
pub mod keys;
pub mod lines;
mod log;
pub mod query;
pub mod read;
pub mod rotation;
pub mod verify;

pub use error::AuditError;
pub use log::{
    AuditLog, AuditOptions, Change, ChangeError, Handover, begin_append, decision_str,
    newest_handover, signed_head,
};

use exchange_service::db::Migrations;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The audit log's tables (`audit_log`, `audit_checkpoints`, `audit_head`,
/// `storage_probe`, the `audit_signatures` view) and their append-only
/// guards.
pub static MIGRATIONS: Migrations = Migrations {
    name: "audit log",
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

//! Online backups of a node on SQLite: a consistent copy of the records
//! database (records and audit log) and, apart, of the key store, taken
//! while the node runs (`VACUUM INTO`: one read transaction, so the copy is
//! the database as of one instant, compacted; writers are not blocked in
//! WAL mode). The key-encryption key and the signing key are files the
//! operator keeps elsewhere; a backup of the records holds no key, so
//! erasure (destroying a survivor's data keys) reaches the records' backups
//! once the key store's backups older than the erasure have expired
//! (docs/encryption-at-rest.md, "Backups").
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`, or a base backup
//! with WAL archiving): see docs/operations.md, "Backups".

use std::path::{Path, PathBuf};

use exchange_service::db::{Backend, Db};

/// Why a backup was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{which} is on PostgreSQL: back it up with pg_dump or a base backup (docs/operations.md, \"Backups\")"
    )]
    NotSqlite { which: &'static str },
    #[error("{0} exists already: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("the backup's path {0} is not valid UTF-8")]
    Path(PathBuf),
    #[error("copying {which} failed: {source}")]
    Copy {
        which: &'static str,
        source: sqlx::Error,
    },
}

/// Writes a consistent copy of the SQLite database `db` (`which` names it
/// in errors) to the new file `to`.
pub async fn sqlite_copy(db: &Db, which: &'static str, to: &Path) -> Result<(), BackupError> {
    if db.backend() != Backend::Sqlite {
        return Err(BackupError::NotSqlite { which });
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let target = to
        .to_str()
        .ok_or_else(|| BackupError::Path(to.to_owned()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(db.pool())
        .await
        .map_err(|source| BackupError::Copy { which, source })?;
    Ok(())
}

/// Backs up a node on SQLite: its records database to `records` and its
/// key store to `keys` (two files, to be stored apart).
pub async fn sqlite(
    records_db: &Db,
    vault: &crate::vault::Vault,
    records: &Path,
    keys: &Path,
) -> Result<(), BackupError> {
    for path in [records, keys] {
        if path.exists() {
            return Err(BackupError::Exists(path.to_owned()));
        }
    }
    sqlite_copy(records_db, "the records database", records).await?;
    sqlite_copy(vault.db(), "the key store", keys).await
}

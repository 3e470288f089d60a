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

/// Why a backup was not taken. A backup that failed leaves no file behind
/// (not a partial copy that looks like one), so the operator can retry.
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
    #[error("copying {which} failed (nothing was left at the backup's path): {source}")]
    Copy {
        which: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "making the copy of {which} durable failed (nothing was left at the backup's path): {source}"
    )]
    Sync {
        which: &'static str,
        source: std::io::Error,
    },
}

/// Writes a consistent copy of the SQLite database `db` (`which` names it
/// in errors) to the new file `to`: first to `<to>.partial`, which is
/// synced to disk and only then renamed to `to` (the directory synced
/// too), so that `to` exists only as a whole copy; on any failure the
/// partial file is removed.
pub async fn sqlite_copy(db: &Db, which: &'static str, to: &Path) -> Result<(), BackupError> {
    if db.backend() != Backend::Sqlite {
        return Err(BackupError::NotSqlite { which });
    }
    let partial = partial_path(to);
    for path in [to, partial.as_path()] {
        if path.exists() {
            return Err(BackupError::Exists(path.to_owned()));
        }
    }
    let target = partial
        .to_str()
        .ok_or_else(|| BackupError::Path(to.to_owned()))?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(db.pool())
        .await
        .map_err(|source| BackupError::Copy { which, source })
        .and_then(|_| {
            durable_rename(&partial, to).map_err(|source| BackupError::Sync { which, source })
        });
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// `<to>.partial`, beside `to`.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Syncs `from`, renames it to `to` and syncs their directory.
fn durable_rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::File::open(from)?.sync_all()?;
    std::fs::rename(from, to)?;
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Backs up a node on SQLite: its records database to `records` and its
/// key store to `keys` (two files, to be stored apart). When the key
/// store's copy fails, the records' copy is removed too: a backup is both
/// files or neither.
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
    let keys_copied = sqlite_copy(vault.db(), "the key store", keys).await;
    if keys_copied.is_err() {
        let _ = std::fs::remove_file(records);
    }
    keys_copied
}

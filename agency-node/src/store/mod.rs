//! Storage: one sqlx `Any` pool over SQLite (the embedded default, a file in
//! the node's data directory) or PostgreSQL (when given a `postgres://` URL),
//! with a migration set for each and the same SQL for both.
//!
//! Every write happens inside [`exchange_audit::AuditLog::record`] so that the
//! change and its audit entry commit together. Functions here take a
//! connection so they can run inside that transaction.
//!
//! Portability rules kept by every query: `$n` placeholders, 64-bit
//! integers for times (Unix milliseconds, UTC) and flags, text for the rest.

pub mod break_glass;
pub mod care_plan;
pub mod case;
pub mod coded_intake;
pub mod grants;
pub mod notifications;
pub mod portal;
pub mod referrals;
pub mod rights;
pub mod sealing;
pub mod survivors;
pub mod transfer;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;

use exchange_service::db::Migrations;
pub use exchange_service::db::{Backend, Db, from_ms, to_ms};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The node's record tables (survivors, consent, referrals, break-glass,
/// portal, idempotency keys, case notes, services, follow-ups and
/// assignments); the audit log's come from
/// [`exchange_audit::MIGRATIONS`].
pub static MIGRATIONS: Migrations = Migrations {
    name: "node records",
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The node's database file in its data directory.
pub const DATABASE_FILE: &str = "node.db";

/// The SQLite URL of the node's database in a data directory.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    exchange_service::db::sqlite_url(data_dir, DATABASE_FILE)
}

/// Connects to the node's database and applies its migrations (records
/// first, then the audit log's), waiting at most `acquire_timeout` for a
/// pooled connection.
pub async fn open(url: &str, acquire_timeout: Duration) -> anyhow::Result<Db> {
    let db = Db::connect_with(url, acquire_timeout).await?;
    db.migrate(&MIGRATIONS).await?;
    db.migrate(&exchange_audit::MIGRATIONS).await?;
    Ok(db)
}

/// A pooled connection, or the request's error: a storage fault (the
/// database unreachable or restarting, no connection in time) is
/// `AUDIT_UNAVAILABLE`, never a message from the driver.
pub async fn acquire(
    db: &Db,
) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, crate::error::NodeError> {
    Ok(db.pool().acquire().await?)
}

/// The survivor a row of `table` (with `id` and `survivor_id` columns)
/// belongs to, if the row exists.
pub async fn survivor_of(
    conn: &mut sqlx::AnyConnection,
    table: &'static str,
    id: &str,
) -> anyhow::Result<Option<String>> {
    use sqlx::Row as _;
    let row = sqlx::query(&format!("SELECT survivor_id FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get("survivor_id")).transpose()?)
}

/// Whether the data upgrade `name` is recorded as done in `data_upgrades`.
pub async fn upgrade_done(db: &Db, name: &str) -> anyhow::Result<bool> {
    let mut conn = db.pool().acquire().await?;
    Ok(
        sqlx::query("SELECT name FROM data_upgrades WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Records the data upgrade `name` as done: later starts skip it.
pub async fn mark_upgrade_done(db: &Db, name: &str) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    sqlx::query("INSERT INTO data_upgrades (name, done_at) VALUES ($1, $2)")
        .bind(name)
        .bind(to_ms(exchange_schema::audit::now_millis()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Decodes rows holding survivors' sealed content ([`crate::vault`]): the
/// data keys of the rows' survivors (named by `survivor_column`) are read
/// once for all of them, then each row is decoded with them.
pub async fn open_rows<T>(
    vault: &crate::vault::Vault,
    rows: &[sqlx::any::AnyRow],
    survivor_column: &str,
    decode: impl Fn(&sqlx::any::AnyRow, &crate::vault::SurvivorKeys) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    use sqlx::Row as _;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rows
        .iter()
        .map(|row| row.try_get::<String, _>(survivor_column))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = vault.keys(&ids).await?;
    rows.iter().map(|row| decode(row, &keys)).collect()
}

/// `$first, $first+1, ...` placeholders for an `IN (...)` list.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Joins closed-list values into a stored text column.
pub fn join_wire<T: std::fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a stored closed-list column; a value that no longer parses is a
/// corrupted row, reported as an error rather than dropped.
pub fn split_wire<T: FromStr>(column: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    if column.is_empty() {
        return Ok(Vec::new());
    }
    column
        .split(',')
        .map(|v| {
            v.parse::<T>()
                .with_context(|| format!("stored value {v:?}"))
        })
        .collect()
}

/// A fresh local record ID: a UUIDv7 without dashes' ambiguity (time-ordered).
pub fn new_local_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

//! Storage: one sqlx `Any` pool over SQLite (the embedded default, a file in
//! the node's data directory) or PostgreSQL (when given a `postgres://` URL),
//! with a migration set for each and the same SQL for both.
//!
//! Every write happens inside [`crate::audit::AuditLog::record`] so that the
//! change and its audit entry commit together. Functions here take a
//! connection so they can run inside that transaction.
//!
//! Portability rules kept by every query: `$n` placeholders, 64-bit
//! integers for times (Unix milliseconds, UTC) and flags, text for the rest.

pub mod break_glass;
pub mod grants;
pub mod portal;
pub mod read_only;
pub mod referrals;
pub mod scratch;
pub mod survivors;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use time::OffsetDateTime;

/// Which database a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:...`, or `postgres://...`
    /// (also spelled `postgresql://`); `None` for any other kind.
    pub fn for_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The node's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies
    /// migrations; waits up to 10 s for a pooled connection.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, Duration::from_secs(10)).await
    }

    /// As [`Db::connect`], waiting at most `acquire_timeout` for a pooled
    /// connection: while the database cannot be reached (restarting,
    /// unreachable) a request fails after this long instead of hanging.
    pub async fn connect_with(url: &str, acquire_timeout: Duration) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let Some(backend) = Backend::for_url(url) else {
            anyhow::bail!("database URL must start with sqlite: or postgres://");
        };
        let options = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(acquire_timeout)
            // A SQLite file cannot drop a connection, so checking each one
            // before use only costs a round trip to its worker thread on
            // every acquire. PostgreSQL connections can break; keep the check.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        let db = Self { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection, or the request's error: a storage fault (the
    /// database unreachable or restarting, no connection in time) is
    /// `AUDIT_UNAVAILABLE`, never a message from the driver.
    pub async fn acquire(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, crate::error::NodeError> {
        Ok(self.pool.acquire().await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers; used by `/readyz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The SQLite URL of the database file in a data directory.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("node.db").display())
}

/// Unix milliseconds of a time, as stored.
pub fn to_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time a stored Unix-millisecond value stands for.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
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

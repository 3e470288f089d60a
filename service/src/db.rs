//! The database a node or the gateway keeps its records and its audit log
//! in: one sqlx `Any` pool over SQLite (the embedded default, a file in the
//! data directory) or PostgreSQL (a `postgres://` URL). Each owner of tables
//! brings its own migration set ([`Migrations`]); the sets share sqlx's
//! bookkeeping table with versions that never overlap (the audit log's from
//! 1001), so the gateway's database holds only the audit log's tables and a
//! node's holds both.
//!
//! Also here: opening a database only to read it (an auditor's `verify`:
//! nothing created, migrated or written), which database errors are storage
//! faults, and the stored form of times.
//!
//! Portability rules kept by every query: `$n` placeholders, 64-bit
//! integers for times (Unix milliseconds, UTC) and flags, text for the rest.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::ConnectOptions as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor};
use time::OffsetDateTime;

/// One owner's migrations, for each backend (`sqlx::migrate!` of its
/// `migrations/sqlite` and `migrations/postgres`).
pub struct Migrations {
    /// Named in errors: `audit log`, `node records`.
    pub name: &'static str,
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// Which database a node or the gateway runs on.
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

/// A node's or the gateway's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The database file, on SQLite.
    sqlite_file: Option<std::path::PathBuf>,
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`); waits up to
    /// 10 s for a pooled connection. Migrations are the owner's to apply
    /// ([`Db::migrate`]).
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
        let sqlite_file = match backend {
            Backend::Sqlite => Some(
                SqliteConnectOptions::from_str(url)
                    .context("parsing the database URL")?
                    .get_filename()
                    .to_path_buf(),
            ),
            Backend::Postgres => None,
        };
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
        Ok(Self {
            pool,
            backend,
            sqlite_file,
        })
    }

    /// Applies one owner's migrations. Versions another owner applied are
    /// left alone (the sets share sqlx's table); a migration of this set
    /// that was applied with other contents is refused, naming the set.
    pub async fn migrate(&self, set: &Migrations) -> anyhow::Result<()> {
        let source = match self.backend {
            Backend::Sqlite => set.sqlite,
            Backend::Postgres => set.postgres,
        };
        let migrator = Migrator {
            migrations: source.migrations.clone(),
            ignore_missing: true,
            locking: true,
            no_tx: false,
        };
        migrator.run(&self.pool).await.map_err(|err| match err {
            sqlx::migrate::MigrateError::VersionMismatch(version) => anyhow::anyhow!(
                "the database was created by an earlier, incompatible layout: its {} migration \
                 {version} differs from this build's. Export its audit log (`exchange-audit \
                 export`), then start on a new database",
                set.name
            ),
            err => anyhow::Error::new(err).context(format!("applying the {} migrations", set.name)),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file, on SQLite (for a writer that keeps a connection of
    /// its own outside the pool, as the audit log's does).
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// Whether the database answers; used by `/readyz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The SQLite URL of the database file `file` in a data directory
/// (created if missing).
pub fn sqlite_url(data_dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join(file).display())
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

/// Why a database could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadOnlyError {
    #[error("database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("the database URL is not valid: {0}")]
    BadUrl(#[source] sqlx::Error),
    /// The file is not there; nothing was created in its place.
    #[error("no database at {}: nothing was created; check the path", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a database file", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the database read-only: {0}")]
    Connect(#[source] sqlx::Error),
}

impl Db {
    /// Opens the database at `url` (`sqlite:...` or `postgres://...`) for
    /// reading only: never creates, migrates or writes anything. A `mode`
    /// given in a SQLite URL is replaced by `ro`.
    pub async fn open_read_only(url: &str) -> Result<Self, ReadOnlyError> {
        match Backend::for_url(url) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url).map_err(ReadOnlyError::BadUrl)?;
                Self::open_sqlite_read_only(options.get_filename()).await
            }
            Some(Backend::Postgres) => {
                sqlx::any::install_default_drivers();
                let options = AnyConnectOptions::from_str(url).map_err(ReadOnlyError::BadUrl)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(ReadOnlyError::Connect)?;
                Ok(Self {
                    pool,
                    backend: Backend::Postgres,
                    sqlite_file: None,
                })
            }
            None => Err(ReadOnlyError::UnsupportedUrl),
        }
    }

    /// Opens the SQLite file at `path` for reading only. A missing file is
    /// an error, not a new empty database.
    pub async fn open_sqlite_read_only(path: &Path) -> Result<Self, ReadOnlyError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(ReadOnlyError::NotAFile {
                    path: path.to_path_buf(),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadOnlyError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(ReadOnlyError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        sqlx::any::install_default_drivers();
        let url = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .to_url_lossy();
        let options = AnyConnectOptions::from_url(&url).map_err(ReadOnlyError::BadUrl)?;
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA query_only = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(ReadOnlyError::Connect)?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            sqlite_file: Some(path.to_path_buf()),
        })
    }
}

/// Whether a database error means the storage cannot take or serve writes
/// right now, rather than a fault of the request or the code.
pub fn is_storage_fault(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // A SQLite (extended) result code, whose low byte is the
                // primary code: BUSY 5, LOCKED 6, NOMEM 7, READONLY 8,
                // IOERR 10, CORRUPT 11, FULL 13, CANTOPEN 14, PROTOCOL 15.
                let primary = db
                    .code()
                    .and_then(|code| code.parse::<u32>().ok())
                    .map(|code| code & 0xff);
                return matches!(primary, Some(5 | 6 | 7 | 8 | 10 | 11 | 13 | 14 | 15));
            }
            // PostgreSQL SQLSTATE classes: 08 connection exception, 53
            // insufficient resources (disk full, out of memory), 57
            // operator intervention (shutdown, terminated backend), 58
            // system error (I/O); 25006 read-only transaction.
            let Some(code) = db.code() else { return false };
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code.starts_with("58")
                || code == "25006"
        }
        _ => false,
    }
}

//! Opening a database only to read it, as `agency-node audit verify` does:
//! nothing is created, migrated or written. A SQLite file must already
//! exist and is opened with `mode=ro` (and `query_only`); a PostgreSQL
//! session is made read-only (`default_transaction_read_only`), so every
//! transaction it runs is `READ ONLY`.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::Executor as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;

use super::{Backend, Db};

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
        })
    }
}

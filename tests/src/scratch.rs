//! Scratch PostgreSQL databases for the test suites and benchmarks: each one
//! is created empty under a unique name and dropped again when its
//! [`ScratchDatabase`] goes out of scope, also when the test that holds it
//! panics. Without this every PostgreSQL test run left its databases behind
//! on the server, which grew without bound (thousands of databases, tens of
//! gigabytes) until the server's crash recovery outlasted its start timeout.
//!
//! Databases a killed run could not drop are removed by `scripts/postgres.sh`
//! once they are an hour old; the naming rule here (`<prefix>_<32 hex>`) is
//! what it matches.

use sqlx::Connection as _;

/// A PostgreSQL database that exists for as long as this value does.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Why a scratch database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// The prefix would not make a plain lower-case identifier.
    #[error(
        "scratch database prefix {0:?} must be lower-case ASCII letters, digits and '_', starting with a letter"
    )]
    BadPrefix(String),
    /// The administrative URL has no database part to replace.
    #[error("the administrative PostgreSQL URL must end in /<database>")]
    BadAdminUrl,
    /// The server refused or could not be reached.
    #[error("creating a scratch database: {0}")]
    Server(#[from] sqlx::Error),
}

/// The variable naming the administrative PostgreSQL URL of the test suites
/// and benchmarks (an account that may create databases);
/// `scripts/postgres.sh` sets it.
pub const ADMIN_URL_VAR: &str = "EXCHANGE_TEST_POSTGRES_URL";

impl ScratchDatabase {
    /// A scratch database on the server [`ADMIN_URL_VAR`] names, or `None`
    /// when the variable is unset.
    pub async fn from_env(prefix: &str) -> Result<Option<Self>, ScratchError> {
        match std::env::var(ADMIN_URL_VAR) {
            Ok(admin_url) => Self::create(&admin_url, prefix).await.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Creates an empty database named `<prefix>_<random hex>` through
    /// `admin_url`, an account allowed to create databases, and returns it
    /// with a URL for the same account on the new database.
    pub async fn create(admin_url: &str, prefix: &str) -> Result<Self, ScratchError> {
        let plain = prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(ScratchError::BadPrefix(prefix.to_owned()));
        }
        let (server, _) = admin_url
            .rsplit_once('/')
            .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
            .ok_or(ScratchError::BadAdminUrl)?;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(Self {
            url: format!("{server}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// The URL of the scratch database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scratch database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database, closing any connection still open to it (a pool
    /// of a server the test left running). `Drop` cannot await, and may run
    /// on a runtime's worker thread, so the statement runs on a thread of
    /// its own with a small runtime; a failure is logged, never raised.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&statement)
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(database = %self.name, %error, "scratch database not dropped");
            }
            Err(_) => {
                tracing::warn!(database = %self.name, "scratch database drop panicked");
            }
        }
    }
}

/// A fresh, empty PostgreSQL database for one test, on the server named by
/// [`ADMIN_URL_VAR`] (`scripts/test.sh` starts the machine's server and
/// sets it), dropped when the value is. Without the variable the test
/// fails: the PostgreSQL suites never skip.
pub async fn fresh_postgres_database() -> ScratchDatabase {
    ScratchDatabase::from_env("exchange_test")
        .await
        .expect("creating a test database")
        .unwrap_or_else(|| {
            panic!(
                "{ADMIN_URL_VAR} must name a PostgreSQL account that may create databases \
                 (scripts/test.sh starts the machine's server and sets it); the PostgreSQL suites never skip"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_prefix_that_is_not_a_plain_identifier_is_refused_before_connecting() {
        for prefix in ["", "Exchange", "1abc", "a-b", "a;DROP", "a b"] {
            let error = ScratchDatabase::create("postgres://nobody@127.0.0.1:1/postgres", prefix)
                .await
                .unwrap_err();
            assert!(
                matches!(error, ScratchError::BadPrefix(ref p) if p == prefix),
                "{prefix:?}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn an_admin_url_without_a_database_part_is_refused_before_connecting() {
        for url in ["postgres:", "no-slash-here", "postgres:///"] {
            let error = ScratchDatabase::create(url, "exchange_test")
                .await
                .unwrap_err();
            assert!(
                matches!(error, ScratchError::BadAdminUrl),
                "{url:?}: {error}"
            );
        }
    }
}

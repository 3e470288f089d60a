//! Configuration pieces the node and the gateway share: layered loading (a
//! TOML file, then environment variables), the checks of the HTTP front,
//! database URLs that never print their password, and the log format.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::db::{Backend, sqlite_url};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object a line (for a log collector).
    #[default]
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

/// The GraphQL endpoint's default path (node and gateway).
pub fn default_graphql_path() -> String {
    "/graphql".into()
}
/// The default largest request body (node and gateway): 64 KiB.
pub fn default_max_body() -> usize {
    64 * 1024
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Reads `file` (if given), then environment variables named
/// `{env_prefix}__SECTION__FIELD`, which override the file. Shared by the
/// node and the gateway so both layer their configuration the same way.
pub fn load_layered<T: serde::de::DeserializeOwned>(
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(env_prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    Ok(builder.build()?.try_deserialize()?)
}

/// The checks the node and the gateway share for their HTTP front: the
/// GraphQL path and the body limit.
pub fn check_http_front(graphql_path: &str, max_body_bytes: usize) -> Result<(), ConfigError> {
    if !graphql_path.starts_with('/') || graphql_path.len() < 2 {
        return Err(ConfigError::Invalid(
            "graphql_path must start with / and not be / alone".into(),
        ));
    }
    if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
        return Err(ConfigError::Invalid(
            "max_body_bytes must be between 1 KiB and 16 MiB".into(),
        ));
    }
    Ok(())
}

/// Where a process serves its Prometheus metrics (`/metrics`): a listener
/// of its own, for the monitoring system only, never the public one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The address (`0.0.0.0:9100`); none: no metrics listener.
    pub listen: Option<std::net::SocketAddr>,
}

impl MetricsConfig {
    /// Binds the metrics listener when one is configured; the error names
    /// the address.
    pub async fn bind(&self) -> anyhow::Result<Option<tokio::net::TcpListener>> {
        match self.listen {
            Some(at) => tokio::net::TcpListener::bind(at)
                .await
                .map(Some)
                .map_err(|e| anyhow::anyhow!("binding the metrics listener to {at}: {e}")),
            None => Ok(None),
        }
    }
}

/// A database URL, which may hold a password: it is never printed whole
/// (`Debug` shows it with the password replaced by `***`). The node's and
/// the gateway's configurations both hold one.
///
/// Written as the URL itself (`database_url = "postgres://…"`, or through
/// the environment), or as a file that holds it (`database_url = { file =
/// "/run/secrets/database-url" }`): a secret mounted as a file, never in
/// the process's environment. The file is read once, at start; surrounding
/// white space is ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

/// How a [`DatabaseUrl`] is written in a configuration.
#[derive(Deserialize)]
#[serde(untagged)]
enum DatabaseUrlSource {
    Url(String),
    File(DatabaseUrlFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseUrlFile {
    file: std::path::PathBuf,
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match DatabaseUrlSource::deserialize(deserializer).map_err(|_| {
            D::Error::custom(
                "a database URL is a text, or { file = \"<path of a file holding it>\" }",
            )
        })? {
            DatabaseUrlSource::Url(url) => Ok(Self(url)),
            // The error names the file, never what it holds.
            DatabaseUrlSource::File(DatabaseUrlFile { file }) => std::fs::read_to_string(&file)
                .map(|text| Self(text.trim().to_owned()))
                .map_err(|e| {
                    D::Error::custom(format!(
                        "the database URL file {} cannot be read: {}",
                        file.display(),
                        e.kind()
                    ))
                }),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl DatabaseUrl {
    /// The database in use: `configured`, or the SQLite file `file` in
    /// `data_dir` when none is.
    pub fn or_sqlite_in(configured: Option<&Self>, data_dir: &Path, file: &str) -> String {
        configured.map_or_else(|| sqlite_url(data_dir, file), |url| url.0.clone())
    }

    /// Refuses, naming the `database_url` field, a URL of a kind no
    /// backend serves ([`Backend::for_url`]).
    pub fn check(configured: Option<&Self>) -> Result<(), ConfigError> {
        match configured {
            Some(url) if Backend::for_url(&url.0).is_none() => Err(ConfigError::Invalid(
                "database_url must start with sqlite: or postgres://".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A database URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct WithUrl {
        database_url: DatabaseUrl,
    }

    #[test]
    fn a_database_url_is_read_from_its_text_or_from_the_file_that_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("database-url");
        std::fs::write(&file, "postgres://u:s3cret@db/exchange\n").unwrap();
        let inline: WithUrl = toml::from_str("database_url = \"postgres://u:p@db/x\"").unwrap();
        assert_eq!(inline.database_url.0, "postgres://u:p@db/x");
        let from_file: WithUrl = toml::from_str(&format!(
            "database_url = {{ file = {:?} }}",
            file.display().to_string()
        ))
        .unwrap();
        assert_eq!(from_file.database_url.0, "postgres://u:s3cret@db/exchange");
        let missing = toml::from_str::<WithUrl>("database_url = { file = \"/nonexistent/url\" }")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/url cannot be read"),
            "{missing}"
        );
        let wrong = toml::from_str::<WithUrl>("database_url = { path = \"x\" }")
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("a database URL is a text, or { file ="),
            "{wrong}"
        );
        assert!(toml::from_str::<WithUrl>("database_url = 3").is_err());
    }

    #[test]
    fn passwords_are_never_printed() {
        assert_eq!(
            redact_url("postgres://exchange:s3cret@localhost/db"),
            "postgres://exchange:***@localhost/db"
        );
        let url = DatabaseUrl("postgres://u:s3cret@h/d".into());
        let printed = format!("{url:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert_eq!(printed, "postgres://u:***@h/d");
    }

    /// The HTTP front's checks: the endpoint is a path other than `/` and
    /// the body limit is between 1 KiB and 16 MiB; each refusal names its
    /// field.
    #[test]
    fn the_http_front_is_checked() {
        assert!(check_http_front("/graphql", 65_536).is_ok());
        for (path, body, field) in [
            ("/", 65_536, "graphql_path"),
            ("graphql", 65_536, "graphql_path"),
            ("/graphql", 10, "max_body_bytes"),
            ("/graphql", 64 * 1024 * 1024, "max_body_bytes"),
        ] {
            let err = check_http_front(path, body).unwrap_err();
            assert!(err.to_string().contains(field), "{path} {body}: {err}");
        }
    }

    /// A log format other than `json` or `pretty` is refused when the
    /// configuration is read, naming the value.
    #[test]
    fn an_unknown_log_format_is_refused() {
        #[derive(Debug, Deserialize)]
        struct Front {
            #[allow(dead_code)]
            log_format: LogFormat,
        }
        let err = toml::from_str::<Front>("log_format = \"xml\"").unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
        let ok: Front = toml::from_str("log_format = \"pretty\"").unwrap();
        assert_eq!(ok.log_format, LogFormat::Pretty);
    }
}

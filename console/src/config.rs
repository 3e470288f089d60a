//! The console's configuration: a TOML file, then `EXCHANGE_CONSOLE__…`
//! environment variables, checked before anything starts. Secrets (client
//! secrets) are named by file and never printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use exchange_service::config::{ConfigError, DatabaseUrl, LogFormat, load_layered};
use serde::Deserialize;

/// The whole configuration (`deploy/console.toml` is the reference).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address to listen on. Default `127.0.0.1:7500`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The console's address as browsers reach it, without a trailing
    /// slash: the sign-in callback is `<public_url>/auth/callback` and the
    /// address after sign-out `<public_url>/`; register both at each
    /// identity provider. `https://` in production; `http://` is accepted on
    /// a loopback address only.
    pub public_url: String,
    /// The gateway's GraphQL endpoint, e.g. `https://gateway.example/graphql`.
    pub gateway_url: String,
    /// The federation file: agency names, and the issuers and keys tokens
    /// are checked against (the same file the gateway reads).
    pub federation_file: PathBuf,
    /// One `[[sign_in]]` per agency whose staff sign in here.
    pub sign_in: Vec<SignInConfig>,
    /// Sessions (`[session]`).
    #[serde(default)]
    pub session: SessionConfig,
    /// `json` (default) or `pretty`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Optional: a PEM bundle of the certificate authorities trusted for
    /// the identity providers and the gateway over https. Default: the
    /// system bundle at `/etc/ssl/certs/ca-certificates.crt` when present
    /// (Debian, Ubuntu); without either, only plain-HTTP loopback works.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Prometheus metrics on a listener of their own.
    #[serde(default)]
    pub metrics: exchange_service::config::MetricsConfig,
}

/// The system's CA bundle on Debian and Ubuntu.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// An agency's identity provider, as a client registered there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// The agency's ID in the federation file; its `issuer` there is where
    /// the provider's discovery document is read.
    pub agency: String,
    /// The console's client ID at that provider.
    pub client_id: String,
    /// Optional: a file holding the client secret (a confidential client);
    /// without one the console is a public client and relies on PKCE alone.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to ask for besides `openid`; some providers need one naming
    /// the exchange's API so that the access token carries the federation's
    /// audience (`api://<app>/.default` on Microsoft Entra ID).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra parameters of the authorization request, e.g. `resource` for a
    /// provider that picks the access token's audience by RFC 8707.
    #[serde(default)]
    pub extra_parameters: BTreeMap<String, String>,
    /// Optional: the agency's survivor consent portal as survivors reach
    /// it (`https://portal.shelter-north.example/`). The printed slip of a
    /// consent code carries a QR code of it, in the survivor's language.
    #[serde(default)]
    pub portal_url: Option<String>,
}

/// How long sessions last.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Minutes without a request after which a session ends. Default 30.
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
    /// Hours after sign-in after which a session ends however active, and
    /// never later than the access token's expiry. Default 8.
    #[serde(default = "default_absolute_hours")]
    pub absolute_hours: u64,
    /// Seconds after which the console asks the identity provider again
    /// (with the refresh token, where the provider issued one) whether the
    /// caseworker may still act; a revoked grant or disabled account ends
    /// the session at the next request after that. Default 300; 0 asks on
    /// every request.
    #[serde(default = "default_revalidate_seconds")]
    pub revalidate_seconds: u64,
    /// Seconds between two reads of the agency's notifications for the live
    /// notice on an open page (a new referral, an answer, a follow-up due).
    /// Default 10; 1 to 300.
    #[serde(default = "default_notice_seconds")]
    pub notice_seconds: u64,
    /// Where the sessions are kept so that several replicas of the console
    /// share them and a restart signs no one out: a PostgreSQL URL (or
    /// `{ file = "…" }` holding it), or a SQLite file for one console that
    /// keeps its sessions across restarts. Unset (the default): in the
    /// process's memory only.
    #[serde(default)]
    pub database_url: Option<DatabaseUrl>,
    /// With `database_url`: the file holding the 32-byte key that seals the
    /// stored sessions (AES-256-GCM), readable by its owner only (or owned
    /// by root, at most 0640); the same file for every replica. Generated
    /// there on first start when it does not exist; replicas starting
    /// together on one writable volume all use the first one written
    /// whole.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// With `database_url`: milliseconds to wait for a connection to the
    /// session database before the request is answered 503
    /// SESSIONS_UNAVAILABLE. Default 5000.
    #[serde(default = "default_store_timeout_ms")]
    pub store_timeout_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes: default_idle_minutes(),
            absolute_hours: default_absolute_hours(),
            revalidate_seconds: default_revalidate_seconds(),
            notice_seconds: default_notice_seconds(),
            database_url: None,
            key_file: None,
            store_timeout_ms: default_store_timeout_ms(),
        }
    }
}

impl SessionConfig {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_minutes * 60)
    }
    pub fn revalidate(&self) -> Duration {
        Duration::from_secs(self.revalidate_seconds)
    }
    pub fn absolute(&self) -> Duration {
        Duration::from_secs(self.absolute_hours * 3600)
    }
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms.max(1))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7500))
}
fn default_idle_minutes() -> u64 {
    30
}
fn default_absolute_hours() -> u64 {
    8
}
fn default_revalidate_seconds() -> u64 {
    300
}
fn default_notice_seconds() -> u64 {
    10
}
fn default_store_timeout_ms() -> u64 {
    5000
}

impl ConsoleConfig {
    /// Reads `file` and the environment, then checks the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = load_layered(file, "EXCHANGE_CONSOLE")?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot: addresses, durations and sign-in entries.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        check_url("public_url", &self.public_url)?;
        check_url("gateway_url", &self.gateway_url)?;
        if self.public_url.ends_with('/') {
            return invalid("public_url must not end with /".into());
        }
        if self.sign_in.is_empty() {
            return invalid("at least one [[sign_in]] is needed".into());
        }
        for (i, entry) in self.sign_in.iter().enumerate() {
            if entry.client_id.is_empty() {
                return invalid(format!("sign_in[{i}].client_id is empty"));
            }
            if let Some(portal) = &entry.portal_url {
                check_url(&format!("sign_in[{i}].portal_url"), portal)?;
            }
            if self.sign_in[..i].iter().any(|e| e.agency == entry.agency) {
                return invalid(format!("sign_in: agency {} is listed twice", entry.agency));
            }
        }
        if !(1..=24 * 60).contains(&self.session.idle_minutes) {
            return invalid("session.idle_minutes must be 1 to 1440".into());
        }
        if !(1..=300).contains(&self.session.notice_seconds) {
            return invalid("session.notice_seconds must be 1 to 300".into());
        }
        if self.session.revalidate_seconds > 3600 {
            return invalid("session.revalidate_seconds must be at most 3600".into());
        }
        if !(1..=24).contains(&self.session.absolute_hours) {
            return invalid("session.absolute_hours must be 1 to 24".into());
        }
        match (&self.session.database_url, &self.session.key_file) {
            (Some(_), None) => {
                return invalid("session.database_url needs session.key_file".into());
            }
            (None, Some(_)) => {
                return invalid("session.key_file is only used with session.database_url".into());
            }
            _ => {}
        }
        DatabaseUrl::check(self.session.database_url.as_ref()).map_err(|_| {
            ConfigError::Invalid(
                "session.database_url must start with sqlite: or postgres://".into(),
            )
        })?;
        Ok(())
    }

    /// The sign-in callback to register at each identity provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }
}

/// `https://`, or `http://` on a loopback host.
fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let invalid = |m: &str| Err(ConfigError::Invalid(format!("{field} {m}")));
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host =
            host.rsplit_once(':').map_or(
                host,
                |(h, port)| if port.parse::<u16>().is_ok() { h } else { host },
            );
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return invalid("must be https:// (http:// only on a loopback address)");
        }
        Ok(())
    } else if url.starts_with("https://") && url.len() > "https://".len() {
        Ok(())
    } else {
        invalid("must be an https:// URL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<ConsoleConfig, String> {
        let config: ConsoleConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check().map_err(|e| e.to_string())?;
        Ok(config)
    }

    const GOOD: &str = r#"
        public_url = "https://console.example"
        gateway_url = "https://gateway.example/graphql"
        federation_file = "federation.toml"
        [[sign_in]]
        agency = "shelter-north"
        client_id = "console"
    "#;

    #[test]
    fn a_minimal_configuration_takes_the_documented_defaults() {
        let c = config(GOOD).unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.session.idle(), Duration::from_secs(1800));
        assert_eq!(c.session.absolute(), Duration::from_secs(8 * 3600));
        assert_eq!(c.redirect_uri(), "https://console.example/auth/callback");
    }

    #[test]
    fn a_session_database_needs_its_key_and_a_known_backend() {
        let with = |session: &str| config(&format!("{GOOD}\n[session]\n{session}\n"));
        assert!(with("").unwrap().session.database_url.is_none());
        let shared = with(
            "database_url = \"postgres://console:pw@db/sessions\"\nkey_file = \"/run/secrets/session-key\"",
        )
        .unwrap();
        assert!(shared.session.database_url.is_some());
        for (bad, named) in [
            ("database_url = \"postgres://db/s\"", "session.key_file"),
            ("key_file = \"/k\"", "session.database_url"),
            (
                "database_url = \"mysql://db/s\"\nkey_file = \"/k\"",
                "session.database_url",
            ),
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.contains(named), "{bad}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn the_reference_configuration_in_deploy_is_valid() {
        let text = include_str!("../../deploy/console.toml");
        let c = config(text).unwrap();
        assert_eq!(c.sign_in[0].agency, "shelter-north");
        assert_eq!(c.session.notice_seconds, 10);
    }

    #[test]
    fn the_kubernetes_console_configuration_is_valid() {
        let text = include_str!("../../deploy/kubernetes/overlays/demo/shared/console.toml");
        let c = config(text).unwrap();
        assert_eq!(c.sign_in.len(), 2);
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let remote = GOOD.replace("https://console.example", "http://console.example");
        assert!(
            config(&remote)
                .unwrap_err()
                .contains("public_url must be https://")
        );
        let loopback = GOOD.replace("https://console.example", "http://127.0.0.1:7500");
        assert!(config(&loopback).is_ok());
        let tricky = GOOD.replace("https://console.example", "http://127.0.0.1.evil.example");
        assert!(config(&tricky).is_err());
    }

    #[test]
    fn unknown_fields_duplicate_agencies_and_silly_lifetimes_are_refused() {
        assert!(
            config(&format!("{GOOD}\nsurprise = 1"))
                .unwrap_err()
                .contains("unknown field")
        );
        let twice = format!("{GOOD}\n[[sign_in]]\nagency = \"shelter-north\"\nclient_id = \"x\"");
        assert!(config(&twice).unwrap_err().contains("listed twice"));
        let idle = format!("{GOOD}\n[session]\nidle_minutes = 0");
        assert!(config(&idle).unwrap_err().contains("idle_minutes"));
    }
}

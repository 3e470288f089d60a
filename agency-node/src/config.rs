//! The node's configuration: a TOML file (reference copy in
//! `deploy/agency-node.toml`) with environment overrides
//! (`AGENCY_NODE__<FIELD>`, nested with `__`, e.g.
//! `AGENCY_NODE__LIMITS__MAX_DEPTH=8`). Unknown fields are an error, and the
//! database URL (which may hold a password) is never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything a node needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's agency ID (2 to 40 of `a-z`, `0-9` and `-`); it must be
    /// listed in the federation file. A malformed ID is refused as the file
    /// is read.
    pub agency: exchange_schema::AgencyId,
    /// Address to listen on. Port 0 picks a free port (tests).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding the SQLite database, the node's signing key and,
    /// in development, the local identity provider's key.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; SQLite in `data_dir` when unset.
    /// The URL itself, or `{ file = "<path of a file holding it>" }`.
    #[serde(default)]
    pub database_url: Option<DatabaseUrl>,
    /// Prometheus metrics on a listener of their own.
    #[serde(default)]
    pub metrics: exchange_service::config::MetricsConfig,
    /// The federation trust list (agencies, issuers, keys).
    pub federation: PathBuf,
    /// Directory of the Cedar policy set; the shipped baseline when unset.
    #[serde(default)]
    pub policies: Option<PathBuf>,
    /// Where the GraphQL endpoint (and GraphiQL) is served.
    #[serde(default = "default_graphql_path")]
    pub graphql_path: String,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub break_glass: BreakGlassConfig,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// How long a mutation's `Idempotency-Key` is kept, in seconds (1 minute
    /// to 30 days; default 24 hours). A retry within it replays the first
    /// outcome; after it the key may be used again
    /// ([`crate::idempotency`]).
    #[serde(default = "default_idempotency_window")]
    pub idempotency_window: u64,
    /// `json` (default, for log collectors) or `pretty` (for a terminal).
    #[serde(default)]
    pub log_format: LogFormat,
    /// Serve HTTPS with mutual TLS ([`crate::tls::TlsConfig`]); plain HTTP
    /// when left out.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// The survivor consent portal, on its own listener; off when left out.
    #[serde(default)]
    pub portal: Option<PortalConfig>,
    /// Encryption at rest: where the key-encryption key and the survivors'
    /// data keys are kept ([`crate::vault`]).
    #[serde(default)]
    pub vault: VaultConfig,
    /// Retention periods: how often the expiry job runs (the rules are in
    /// the policy directory's `retention.toml`).
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// The retention expiry job ([`crate::retention`]) and the agency's
/// deadline to answer a survivor's requests ([`crate::rights`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Minutes between runs of the expiry job (at least 1; default 60).
    pub check_every_minutes: u64,
    /// Days the agency takes at most to answer a survivor's request to
    /// correct or erase their record, shown to the survivor as a date
    /// (1 to 90; default 30, the month most data-protection laws give).
    pub answer_requests_within_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            check_every_minutes: 60,
            answer_requests_within_days: 30,
        }
    }
}

/// Where the node keeps the keys its survivors' records are sealed with
/// (docs/encryption-at-rest.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The key-encryption key's file (32 bytes, mode 0600, generated on
    /// first start); `key-encryption-key` in `data_dir` when unset. Keep it
    /// off the records database's disk and out of its backups.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// Retired key-encryption keys, during a rotation: they still unwrap the
    /// data keys they wrapped while the node wraps every one again under
    /// `kek_file` (at start, in the background; or `agency-node keys
    /// rewrap`). Once `agency-node keys status` shows none left under them,
    /// remove them from here and destroy them (docs/encryption-at-rest.md).
    #[serde(default)]
    pub retired_kek_files: Vec<PathBuf>,
    /// The key store holding each survivor's wrapped data key: a database
    /// apart from the records, so that a backup of the records holds no
    /// key. `keys.db` in `data_dir` when unset; with several replicas, a
    /// `postgres://` URL of a database of its own that every replica
    /// shares.
    #[serde(default)]
    pub key_store_url: Option<DatabaseUrl>,
    /// How long an unwrapped data key stays in memory, in seconds (default
    /// 30; 0: no cache). An erasure takes effect at once on the replica
    /// that did it, and on the others within this age.
    #[serde(default = "default_key_cache_seconds")]
    pub key_cache_seconds: u64,
}

fn default_key_cache_seconds() -> u64 {
    crate::vault::KEY_CACHE_SECONDS
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            kek_file: None,
            retired_kek_files: Vec::new(),
            key_store_url: None,
            key_cache_seconds: default_key_cache_seconds(),
        }
    }
}

/// The survivor consent portal ([`crate::portal`]). It listens apart from
/// the federation endpoint: survivors' browsers have no client certificate,
/// and the federation endpoint requires one when TLS is on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Address of the portal. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// HTTPS for the portal; plain HTTP when left out, which browsers only
    /// accept for the `Secure` session cookie on `localhost`. Production
    /// sets this or puts the portal behind the agency's HTTPS proxy.
    #[serde(default)]
    pub tls: Option<crate::tls::PortalTlsConfig>,
    /// Failed sign-ins in a row that lock a consent code.
    #[serde(default = "default_max_failed_sign_ins")]
    pub max_failed_sign_ins: u32,
    /// How long a locked code stays locked, in minutes.
    #[serde(default = "default_lockout_minutes")]
    pub lockout_minutes: u64,
    /// Sign-in attempts one client (an IPv4 address, an IPv6 /64) may make
    /// in each window of `client_window_minutes`, whatever codes it tries,
    /// counted by every replica together; beyond it the portal answers 429
    /// `TOO_MANY_ATTEMPTS` without checking the code. 1 to 1000; default 20.
    #[serde(default = "default_sign_ins_per_client")]
    pub sign_ins_per_client: u32,
    /// The window of `sign_ins_per_client`, in minutes (1 to 1440;
    /// default 10).
    #[serde(default = "default_client_window_minutes")]
    pub client_window_minutes: u64,
    /// Proxies in front of the portal (CIDR networks, as
    /// `["10.0.0.0/8"]`) whose `X-Forwarded-For` names the client: the
    /// client is the nearest address in it that is not one of them. Empty
    /// (the default): the connection's peer is the client, and the header
    /// is ignored, since anyone can send it.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A session ends after this many idle minutes.
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u64,
    /// Where the quick-exit button leaves to: a neutral site.
    #[serde(default = "default_quick_exit_url")]
    pub quick_exit_url: String,
    /// The expiry a new grant is offered with, in days.
    #[serde(default = "default_grant_days")]
    pub default_grant_days: u32,
    /// The longest a survivor can grant for, in days.
    #[serde(default = "default_max_grant_days")]
    pub max_grant_days: u32,
}

impl PortalConfig {
    /// The portal on `listen` with every default (plain HTTP).
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls: None,
            max_failed_sign_ins: default_max_failed_sign_ins(),
            lockout_minutes: default_lockout_minutes(),
            sign_ins_per_client: default_sign_ins_per_client(),
            client_window_minutes: default_client_window_minutes(),
            trusted_proxies: Vec::new(),
            session_idle_minutes: default_session_idle_minutes(),
            quick_exit_url: default_quick_exit_url(),
            default_grant_days: default_grant_days(),
            max_grant_days: default_max_grant_days(),
        }
    }
}

fn default_max_failed_sign_ins() -> u32 {
    5
}
fn default_lockout_minutes() -> u64 {
    15
}
fn default_sign_ins_per_client() -> u32 {
    20
}
fn default_client_window_minutes() -> u64 {
    10
}
fn default_session_idle_minutes() -> u64 {
    15
}
fn default_quick_exit_url() -> String {
    "https://www.wikipedia.org/".into()
}
fn default_grant_days() -> u32 {
    90
}
fn default_max_grant_days() -> u32 {
    366
}

/// Limits on each GraphQL operation: the gateway's limits, in the same
/// implementation and with the same defaults (a member agency can reach
/// the node directly).
pub use exchange_schema::limits::OperationLimits as LimitsConfig;

/// How the audit log keeps its history of checkpoints, and how long a
/// request waits for its entry. (The log's head is signed in the
/// transaction of every write, whatever these say.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Add a checkpoint to the history after this many entries.
    pub checkpoint_every: u64,
    /// Add a checkpoint to the history at least this often (seconds) while
    /// the log grows.
    pub checkpoint_interval_secs: u64,
    /// Longest a request waits (milliseconds) for its audit entry, or its
    /// change, to become durable; past it the request is refused with
    /// `AUDIT_UNAVAILABLE` and nothing is disclosed. A storage fault that is
    /// immediate (disk full, I/O error, read-only) is refused at once.
    pub write_timeout_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            write_timeout_ms: 5000,
        }
    }
}

impl AuditConfig {
    /// The write timeout (at least a millisecond).
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(1))
    }
}

/// Delivery of notifications to the webhooks agencies list in the
/// federation file ([`crate::webhooks`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Attempts before a notification is set aside as a dead letter.
    pub max_attempts: u32,
    /// Wait before the first retry (milliseconds); each retry waits twice
    /// as long as the one before, up to an hour.
    pub first_retry_ms: u64,
    /// Longest an endpoint may take to answer (milliseconds).
    pub timeout_ms: u64,
    /// How often the outbox is looked at (milliseconds).
    pub poll_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_retry_ms: 2_000,
            timeout_ms: 10_000,
            poll_ms: 1_000,
        }
    }
}

/// The emergency access path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakGlassConfig {
    /// Switch break-glass off entirely.
    pub enabled: bool,
    /// How long an opening lasts, in minutes (hours, not days).
    pub window_minutes: u64,
}

impl Default for BreakGlassConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 240,
        }
    }
}

fn default_idempotency_window() -> u64 {
    crate::idempotency::DEFAULT_WINDOW.as_secs()
}

/// The range `idempotency_window` may take, in seconds.
pub const IDEMPOTENCY_WINDOW_SECS: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 60 * 60;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7100))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
pub use exchange_service::config::{
    ConfigError, DatabaseUrl, LogFormat, check_http_front, default_graphql_path, default_max_body,
    load_layered, redact_url,
};

impl NodeConfig {
    /// The configuration of `agency`'s node with every default: listening
    /// on loopback port 0, data and SQLite database in `data_dir`, the
    /// shipped policies, no TLS and no portal. What a test, a benchmark or
    /// the demo then changes is plain field assignment.
    pub fn new(agency: exchange_schema::AgencyId, federation: &Path, data_dir: &Path) -> Self {
        Self {
            agency,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_owned(),
            database_url: None,
            metrics: Default::default(),
            federation: federation.to_owned(),
            policies: None,
            graphql_path: default_graphql_path(),
            max_body_bytes: default_max_body(),
            limits: LimitsConfig::default(),
            audit: AuditConfig::default(),
            break_glass: BreakGlassConfig::default(),
            webhooks: WebhooksConfig::default(),
            idempotency_window: default_idempotency_window(),
            log_format: LogFormat::default(),
            tls: None,
            portal: None,
            vault: VaultConfig::default(),
            retention: RetentionConfig::default(),
        }
    }

    /// Reads `file` (if given) and then `AGENCY_NODE__*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = load_layered(file, "AGENCY_NODE")?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_http_front(&self.graphql_path, self.max_body_bytes)?;
        DatabaseUrl::check(self.database_url.as_ref())?;
        if let Some(url) = &self.vault.key_store_url
            && exchange_service::db::Backend::for_url(&url.0).is_none()
        {
            return Err(ConfigError::Invalid(
                "vault.key_store_url must start with sqlite: or postgres://".into(),
            ));
        }
        if let Some(problem) = self.limits.problem() {
            return Err(ConfigError::Invalid(problem.into()));
        }
        if self.break_glass.window_minutes == 0 || self.break_glass.window_minutes > 24 * 60 {
            return Err(ConfigError::Invalid(
                "break_glass.window_minutes must be between 1 and 1440 (hours, not days)".into(),
            ));
        }
        if !(1..=90).contains(&self.retention.answer_requests_within_days) {
            return Err(ConfigError::Invalid(
                "retention.answer_requests_within_days must be between 1 and 90".into(),
            ));
        }
        if !IDEMPOTENCY_WINDOW_SECS.contains(&self.idempotency_window) {
            return Err(ConfigError::Invalid(
                "idempotency_window must be between 60 and 2592000 seconds (1 minute to 30 days)"
                    .into(),
            ));
        }
        if let Some(portal) = &self.portal {
            if !(1..=100).contains(&portal.max_failed_sign_ins) {
                return Err(ConfigError::Invalid(
                    "portal.max_failed_sign_ins must be between 1 and 100".into(),
                ));
            }
            if !(1..=24 * 60).contains(&portal.lockout_minutes)
                || !(1..=24 * 60).contains(&portal.session_idle_minutes)
            {
                return Err(ConfigError::Invalid(
                    "portal.lockout_minutes and portal.session_idle_minutes must be between 1 and 1440"
                        .into(),
                ));
            }
            if !(1..=1000).contains(&portal.sign_ins_per_client)
                || !(1..=24 * 60).contains(&portal.client_window_minutes)
            {
                return Err(ConfigError::Invalid(
                    "portal.sign_ins_per_client must be between 1 and 1000 and \
                     portal.client_window_minutes between 1 and 1440"
                        .into(),
                ));
            }
            if !portal.quick_exit_url.starts_with("https://") {
                return Err(ConfigError::Invalid(
                    "portal.quick_exit_url must be an https:// address".into(),
                ));
            }
            if portal.default_grant_days == 0 || portal.default_grant_days > portal.max_grant_days {
                return Err(ConfigError::Invalid(
                    "portal.default_grant_days must be between 1 and portal.max_grant_days".into(),
                ));
            }
        }
        Ok(())
    }

    /// The database URL in use: the configured one or SQLite in `data_dir`.
    pub fn database_url(&self) -> String {
        DatabaseUrl::or_sqlite_in(
            self.database_url.as_ref(),
            &self.data_dir,
            crate::store::DATABASE_FILE,
        )
    }

    /// The key store's URL: the configured one, or `keys.db` in the data
    /// directory.
    pub fn key_store_url(&self) -> String {
        DatabaseUrl::or_sqlite_in(
            self.vault.key_store_url.as_ref(),
            &self.data_dir,
            crate::vault::KEY_STORE_FILE,
        )
    }

    /// How long a mutation's idempotency key is kept.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window)
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_secs(self.audit.checkpoint_interval_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_password_is_never_printed_with_the_node_config() {
        let config: NodeConfig = toml::from_str(
            "agency = \"shelter-north\"\nfederation = \"f.toml\"\ndatabase_url = \"postgres://u:s3cret@h/d\"",
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://u:***@h/d"), "{printed}");
    }

    #[test]
    fn a_database_url_no_backend_serves_is_refused_at_start() {
        let with = |url: &str| {
            toml::from_str::<NodeConfig>(&format!(
                "agency = \"shelter-north\"\nfederation = \"f.toml\"\ndatabase_url = \"{url}\""
            ))
            .unwrap()
        };
        for url in ["mysql://u@h/d", "h/d", ""] {
            let err = with(url).check().unwrap_err();
            assert!(err.to_string().contains("database_url"), "{url:?}: {err}");
        }
        for url in [
            "sqlite:///var/lib/node.db",
            "postgres://u@h/d",
            "postgresql://u@h/d",
        ] {
            with(url).check().unwrap();
        }
    }

    /// The constructor and an empty file mean the same node.
    #[test]
    fn the_constructor_gives_the_file_defaults() {
        let built = NodeConfig::new(
            exchange_schema::AgencyId::parse("shelter-north").unwrap(),
            Path::new("f.toml"),
            Path::new("data"),
        );
        let mut read: NodeConfig =
            toml::from_str("agency = \"shelter-north\"\nfederation = \"f.toml\"").unwrap();
        read.listen = built.listen;
        assert_eq!(format!("{built:?}"), format!("{read:?}"));
        built.check().unwrap();
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err =
            toml::from_str::<NodeConfig>("agency = \"a1\"\nfederation = \"f\"\nlisten_port = 1")
                .unwrap_err();
        assert!(err.to_string().contains("listen_port"));
    }

    /// The agency is typed: a malformed ID is refused as the file is read,
    /// naming the field, rather than when the node starts.
    #[test]
    fn a_malformed_agency_id_is_refused_as_the_file_is_read() {
        let err = toml::from_str::<NodeConfig>("agency = \"Shelter North\"\nfederation = \"f\"")
            .unwrap_err();
        assert!(err.to_string().contains("agency"), "{err}");
    }

    /// The nodes' configurations in the Kubernetes demo overlay are valid
    /// (their secret files stood in for by temporary ones), through the
    /// loader the binary uses, and the federation file they share loads
    /// with the demo CA, naming the demo identity provider's issuers and
    /// key URLs.
    #[test]
    fn the_kubernetes_node_configurations_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        let secret = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let database = secret(
            "database-url",
            "postgres://exchange:pw@postgres/shelter_north\n",
        );
        let keys = secret(
            "key-store-url",
            "postgres://exchange:pw@postgres/shelter_north_keys",
        );
        let overlay =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/overlays/demo");
        for agency in ["shelter-north", "clinic-east"] {
            let text =
                std::fs::read_to_string(overlay.join(agency).join("agency-node.toml")).unwrap();
            let text = text
                .replace("/etc/exchange/secrets/database-url", &database)
                .replace("/etc/exchange/secrets/key-store-url", &keys);
            let file = dir.path().join(format!("{agency}.toml"));
            std::fs::write(&file, text).unwrap();
            let config = NodeConfig::load(Some(&file)).expect("the overlay's node configuration");
            assert_eq!(config.agency.as_str(), agency);
            assert_eq!(
                config.database_url(),
                "postgres://exchange:pw@postgres/shelter_north"
            );
            assert_eq!(
                config.key_store_url(),
                "postgres://exchange:pw@postgres/shelter_north_keys"
            );
            assert!(config.portal.is_some() && config.tls.is_some());
            assert_eq!(
                config.portal.as_ref().unwrap().trusted_proxies.len(),
                3,
                "the ingress controller's X-Forwarded-For is believed"
            );
        }
        // The demo CA beside it, as scripts/k8s-demo-secrets.sh makes it.
        let pki = exchange_service::tls::DevPki::load_or_create(&dir.path().join("pki")).unwrap();
        std::fs::copy(pki.ca_file(), dir.path().join("demo-ca.pem")).unwrap();
        std::fs::copy(
            overlay.join("federation/federation.toml"),
            dir.path().join("federation.toml"),
        )
        .unwrap();
        let federation =
            exchange_trust::federation::Federation::load(dir.path().join("federation.toml"))
                .expect("the overlay's federation file with the demo CA");
        assert_eq!(federation.agencies().len(), 2);
        assert!(federation.jwks_ca_pem().is_some());
        for agency in federation.agencies() {
            assert_eq!(
                agency.issuer,
                format!("https://idp.exchange.example.org/{}", agency.id),
                "the demo identity provider's issuer (overlays/demo/idp)"
            );
            assert_eq!(agency.jwks_urls, [format!("{}/jwks", agency.issuer)]);
        }
    }

    #[test]
    fn the_reference_configuration_is_valid() {
        let text = include_str!("../../deploy/agency-node.toml");
        let config: NodeConfig = toml::from_str(text).expect("deploy/agency-node.toml parses");
        config.check().expect("deploy/agency-node.toml is valid");
        let portal = config.portal.expect("the reference turns the portal on");
        assert_eq!(portal.max_failed_sign_ins, 5);
    }

    /// The portal's limit of sign-in attempts per client: a malformed
    /// proxy network and limits out of range are refused, naming the field.
    #[test]
    fn the_portals_attempt_limit_and_trusted_proxies_are_checked() {
        let base =
            "agency = \"shelter-north\"\nfederation = \"f\"\n[portal]\nlisten = \"127.0.0.1:0\"\n";
        let parsed = |extra: &str| toml::from_str::<NodeConfig>(&format!("{base}{extra}"));
        let bad_network = parsed("trusted_proxies = [\"10.0.0.0/33\"]").unwrap_err();
        assert!(
            bad_network.to_string().contains("trusted_proxies"),
            "{bad_network}"
        );
        for extra in ["sign_ins_per_client = 0", "client_window_minutes = 0"] {
            let config = parsed(extra).unwrap();
            let err = config.check().unwrap_err().to_string();
            assert!(err.contains("portal.sign_ins_per_client"), "{extra}: {err}");
        }
        let config = parsed("trusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]").unwrap();
        config.check().unwrap();
        assert_eq!(config.portal.unwrap().sign_ins_per_client, 20);
    }

    #[test]
    fn a_portal_quick_exit_must_be_https() {
        let mut config: NodeConfig = toml::from_str(
            "agency = \"shelter-north\"\nfederation = \"f\"\n[portal]\nlisten = \"127.0.0.1:0\"\nquick_exit_url = \"http://x\"",
        )
        .unwrap();
        assert!(config.check().is_err());
        if let Some(p) = config.portal.as_mut() {
            p.quick_exit_url = "https://example.org/".into();
        }
        assert!(config.check().is_ok());
    }

    #[test]
    fn the_deadline_to_answer_a_survivors_request_is_between_one_and_ninety_days() {
        let mut config: NodeConfig =
            toml::from_str("agency = \"shelter-north\"\nfederation = \"f\"").unwrap();
        assert_eq!(config.retention.answer_requests_within_days, 30);
        for (days, valid) in [(0, false), (1, true), (90, true), (91, false)] {
            config.retention.answer_requests_within_days = days;
            assert_eq!(config.check().is_ok(), valid, "{days} days");
        }
    }
}

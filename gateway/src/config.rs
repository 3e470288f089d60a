//! The gateway's configuration: a TOML file (reference copy with every field
//! documented in `deploy/gateway.toml`) and then `EXCHANGE_GATEWAY__<FIELD>`
//! environment variables (nested with `__`, e.g.
//! `EXCHANGE_GATEWAY__NODES__TIMEOUT_MS=1500`). Unknown fields are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use exchange_service::config::{ConfigError, DatabaseUrl, LogFormat};
use exchange_service::config::{
    check_http_front, default_graphql_path, default_max_body, load_layered,
};
use serde::Deserialize;

/// The gateway's database file in its data directory: its audit log only.
pub const DATABASE_FILE: &str = "gateway.db";

/// Everything the gateway needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on for clients. Port 0 picks a free port (tests).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Holds the gateway's audit database (`gateway.db`, which
    /// `exchange-audit verify --data-dir` reads; unless `database_url`
    /// names another) and its checkpoint signing key
    /// (`node-signing-key.pk8`, generated on first start).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://...` to keep the gateway's audit log in PostgreSQL (the
    /// production backend, as for the nodes); SQLite in `data_dir` when
    /// unset. The signing key stays in `data_dir` either way. Printed with
    /// its password replaced by `***`.
    #[serde(default)]
    pub database_url: Option<DatabaseUrl>,
    /// Prometheus metrics on a listener of their own.
    #[serde(default)]
    pub metrics: exchange_service::config::MetricsConfig,
    /// The federation trust list, the same file every node reads.
    pub federation: PathBuf,
    /// Path of the client-facing GraphQL endpoint (GraphiQL on GET).
    #[serde(default = "default_graphql_path")]
    pub graphql_path: String,
    /// Largest accepted request body, in bytes (1 KiB to 16 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// `json` (default) or `pretty` log lines.
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub nodes: NodesConfig,
    /// Mutual TLS towards the nodes. Without it, node URLs must be `http://`.
    #[serde(default)]
    pub tls: Option<ClientTlsConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Federated audit exports and the collection of every node's signed
    /// audit checkpoints.
    #[serde(default)]
    pub auditors: AuditorsConfig,
    /// Browser origins allowed to call the API cross-site (CORS). Empty (the
    /// default): no CORS headers are sent, so browsers refuse cross-site calls.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// The threads the gateway runs on.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// How statistics releases are protected ([`crate::statistics`]).
    #[serde(default)]
    pub statistics: StatisticsConfig,
}

/// The protection of statistics releases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatisticsConfig {
    /// Counts from 1 to k - 1 are withheld from a release (at least 2;
    /// default 10, as the Counter Trafficking Data Collaborative uses).
    pub k: u64,
    /// Published counts are rounded to a multiple of this (1: not rounded;
    /// default 5).
    pub rounding_base: u64,
    /// A GeoJSON file of the federation's regions (a FeatureCollection
    /// whose features have `code`, `name` and optionally `population`):
    /// the dashboard draws the table by region as a map with it. Read and
    /// checked at start; none: no map, the table only.
    pub regions_file: Option<std::path::PathBuf>,
}

impl Default for StatisticsConfig {
    fn default() -> Self {
        let d = exchange_schema::statistics::Protection::default();
        Self {
            k: d.k,
            rounding_base: d.rounding_base,
            regions_file: None,
        }
    }
}

impl StatisticsConfig {
    pub fn protection(&self) -> exchange_schema::statistics::Protection {
        exchange_schema::statistics::Protection {
            k: self.k.max(2),
            rounding_base: self.rounding_base.max(1),
        }
    }
}

/// The gateway's async runtime (tokio).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Worker threads that serve requests; one per core when unset. A
    /// request moves between workers when more than one is idle, which
    /// costs thread wake-ups: on a small machine shared with other
    /// services, fewer workers can cost less CPU per request (see
    /// docs/benchmarks.md, Gateway against Hive Router).
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

impl RuntimeConfig {
    /// Builds the runtime the gateway's `main` runs on.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = self.worker_threads {
            builder.worker_threads(workers.get());
        }
        builder.enable_all().build()
    }
}

/// Limits every client operation is held to before anything is forwarded:
/// the same limits, in the same implementation, as every node's.
pub use exchange_schema::limits::OperationLimits as LimitsConfig;

/// How the gateway talks to the agency nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodesConfig {
    /// Whole-call timeout per node request, in milliseconds. A node that
    /// does not answer in time costs only its part of the answer.
    pub timeout_ms: u64,
    /// Timeout for opening a connection to a node, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Consecutive failures (timeouts, refused connections, 5xx) after which
    /// a node's circuit opens and it is not called for `cool_down_ms`.
    pub failure_threshold: u32,
    /// How long an open circuit stays open before one probe request is let
    /// through (half-open), in milliseconds.
    pub cool_down_ms: u64,
    /// Idle keep-alive connections kept per node.
    pub pool_max_idle_per_node: usize,
    /// Requests in flight to one node at most. A request beyond it waits
    /// for a free slot within the node's timeout; if none frees in time it
    /// fails with `NODE_UNAVAILABLE` (reason `SATURATED`) without being sent,
    /// so a mutation is certainly not applied, and the circuit is left
    /// alone. Bounds the gateway's connections and memory under load and
    /// shields a slow node from a pile-up.
    pub max_in_flight_per_node: usize,
    /// Largest node answer read, in bytes.
    pub max_response_bytes: usize,
}

impl Default for NodesConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 3_000,
            connect_timeout_ms: 1_000,
            failure_threshold: 3,
            cool_down_ms: 10_000,
            pool_max_idle_per_node: 32,
            max_in_flight_per_node: 16,
            max_response_bytes: 8 * 1024 * 1024,
        }
    }
}

impl NodesConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn cool_down(&self) -> Duration {
        Duration::from_millis(self.cool_down_ms)
    }
}

/// The gateway's client certificate for mutual TLS with the nodes, and the
/// CA that issued the nodes' server certificates. A node's certificate must
/// name the node's `tls_identity` from the federation file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM certificate chain presented to the nodes.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8) of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificate(s) the nodes' server certificates must chain to.
    pub ca_file: PathBuf,
}

/// How the gateway's audit log keeps its history of checkpoints, and how
/// long a request waits for its entry. (The head is signed in the
/// transaction of every write, whatever these say.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Add a checkpoint to the history after this many entries.
    pub checkpoint_every: u64,
    /// Add a checkpoint to the history at least this often (seconds) while
    /// the log grows.
    pub checkpoint_interval_secs: u64,
    /// Longest a request waits (milliseconds) for its audit entry to become
    /// durable; past it the request is refused with `AUDIT_UNAVAILABLE`.
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

/// What the gateway does for auditors: gathering every node's export into
/// one file, and collecting every node's signed checkpoints into
/// `collected-checkpoints.jsonl` in `data_dir` so that a node cannot rewrite
/// its history and sign it again unnoticed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditorsConfig {
    /// Collect every node's new checkpoints this often (seconds); 0 collects
    /// only on demand (`POST /audit/checkpoints/collect`).
    pub collect_interval_secs: u64,
    /// Whole-call timeout for one node's export or checkpoints (ms).
    pub export_timeout_ms: u64,
    /// Largest export read from one node (bytes).
    pub max_export_bytes: usize,
    /// Checkpoint-signing keys pinned per agency (hex of the node's Ed25519
    /// public key, as `agency-node audit verify` reports it). An agency not
    /// listed is pinned on first collection: the key of the first checkpoint
    /// collected from it is kept and every later one must match.
    pub pinned_keys: std::collections::BTreeMap<String, String>,
}

impl Default for AuditorsConfig {
    fn default() -> Self {
        Self {
            collect_interval_secs: 30,
            export_timeout_ms: 60_000,
            max_export_bytes: 256 * 1024 * 1024,
            pinned_keys: Default::default(),
        }
    }
}

impl AuditorsConfig {
    pub fn export_timeout(&self) -> Duration {
        Duration::from_millis(self.export_timeout_ms)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data/gateway")
}

impl GatewayConfig {
    /// A configuration with every default, for `federation` and `data_dir`
    /// (tests and the demo).
    pub fn new(federation: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: default_listen(),
            data_dir: data_dir.into(),
            database_url: None,
            metrics: Default::default(),
            federation: federation.into(),
            graphql_path: default_graphql_path(),
            max_body_bytes: default_max_body(),
            log_format: LogFormat::default(),
            limits: LimitsConfig::default(),
            nodes: NodesConfig::default(),
            tls: None,
            audit: AuditConfig::default(),
            auditors: AuditorsConfig::default(),
            cors_allowed_origins: Vec::new(),
            runtime: RuntimeConfig::default(),
            statistics: StatisticsConfig::default(),
        }
    }

    /// Reads `file` (if given) and then `EXCHANGE_GATEWAY__*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = load_layered(file, "EXCHANGE_GATEWAY")?;
        config.check()?;
        Ok(config)
    }

    /// The audit database in use: the configured one or SQLite in
    /// `data_dir`.
    pub fn database_url(&self) -> String {
        DatabaseUrl::or_sqlite_in(self.database_url.as_ref(), &self.data_dir, DATABASE_FILE)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        check_http_front(&self.graphql_path, self.max_body_bytes)?;
        DatabaseUrl::check(self.database_url.as_ref())?;
        if let Some(problem) = self.limits.problem() {
            return invalid(problem);
        }
        if self.statistics.k < 2 || !(1..=100).contains(&self.statistics.rounding_base) {
            return invalid(
                "statistics.k must be at least 2 and statistics.rounding_base between 1 and 100",
            );
        }
        let n = &self.nodes;
        if !(50..=120_000).contains(&n.timeout_ms) {
            return invalid("nodes.timeout_ms must be between 50 and 120000");
        }
        if n.connect_timeout_ms == 0 || n.connect_timeout_ms > n.timeout_ms {
            return invalid(
                "nodes.connect_timeout_ms must be positive and at most nodes.timeout_ms",
            );
        }
        if n.failure_threshold == 0 || n.cool_down_ms == 0 {
            return invalid("nodes.failure_threshold and nodes.cool_down_ms must be positive");
        }
        if !(1..=4096).contains(&n.max_in_flight_per_node) {
            return invalid("nodes.max_in_flight_per_node must be between 1 and 4096");
        }
        if n.max_response_bytes < 1024 {
            return invalid("nodes.max_response_bytes must be at least 1 KiB");
        }
        let a = &self.auditors;
        if !(100..=3_600_000).contains(&a.export_timeout_ms) {
            return invalid("auditors.export_timeout_ms must be between 100 and 3600000");
        }
        if a.max_export_bytes < 1024 {
            return invalid("auditors.max_export_bytes must be at least 1 KiB");
        }
        for (agency, key) in &a.pinned_keys {
            if exchange_schema::AgencyId::parse(agency).is_err() {
                return invalid("auditors.pinned_keys: each key must be an agency ID");
            }
            if !matches!(hex::decode(key.trim()), Ok(bytes) if bytes.len() == 32) {
                return invalid(
                    "auditors.pinned_keys: each value must be the hex of a 32-byte Ed25519 public key",
                );
            }
        }
        for origin in &self.cors_allowed_origins {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && !origin.ends_with('/');
            if !ok {
                return invalid(
                    "cors_allowed_origins must list exact origins such as https://portal.example (no wildcard, no path)",
                );
            }
        }
        Ok(())
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_secs(self.audit.checkpoint_interval_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<GatewayConfig>("federation = \"f.toml\"\nlisten_port = 1")
            .unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err = toml::from_str::<GatewayConfig>("federation = \"f.toml\"\n[nodes]\ntimeout = 1")
            .unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
        let err = toml::from_str::<GatewayConfig>(
            "federation = \"f.toml\"\n[auditors]\ncollect_every = 1",
        )
        .unwrap_err();
        assert!(err.to_string().contains("collect_every"), "{err}");
    }

    #[test]
    fn the_audit_database_is_sqlite_in_the_data_directory_unless_a_url_is_given() {
        let config = GatewayConfig::new("f.toml", "data/gw");
        assert_eq!(
            config.database_url(),
            exchange_service::db::sqlite_url(Path::new("data/gw"), DATABASE_FILE)
        );
        let config: GatewayConfig = toml::from_str(
            "federation = \"f.toml\"\ndatabase_url = \"postgres://gw:s3cret@db.example/audit\"",
        )
        .unwrap();
        config.check().unwrap();
        assert_eq!(
            config.database_url(),
            "postgres://gw:s3cret@db.example/audit"
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://gw:***@db.example/audit"),
            "{printed}"
        );
    }

    #[test]
    fn an_audit_database_url_of_another_kind_is_refused() {
        let mut config = GatewayConfig::new("f.toml", "d");
        config.database_url = Some(DatabaseUrl("mysql://gw@db/audit".into()));
        let err = config.check().unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn the_reference_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/gateway.toml");
        let config = GatewayConfig::load(Some(&path)).expect("deploy/gateway.toml is valid");
        assert_eq!(config.graphql_path, "/graphql");
        assert!(config.cors_allowed_origins.is_empty());
    }

    /// The gateway's configuration in the Kubernetes demo overlay loads
    /// (its secret file stood in for by a temporary one).
    #[test]
    fn the_kubernetes_gateway_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("database-url");
        std::fs::write(&url, "postgres://exchange:pw@postgres/gateway\n").unwrap();
        let text = include_str!("../../deploy/kubernetes/overlays/demo/shared/gateway.toml")
            .replace(
                "/etc/exchange/secrets/database-url",
                &url.display().to_string(),
            );
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, text).unwrap();
        let config = GatewayConfig::load(Some(&file)).expect("the overlay's gateway configuration");
        assert_eq!(
            config.database_url(),
            "postgres://exchange:pw@postgres/gateway"
        );
        assert!(config.tls.is_some());
    }

    #[test]
    fn the_runtime_takes_a_positive_number_of_workers_or_one_per_core() {
        let base = "federation = \"f.toml\"\n";
        let unset: GatewayConfig = toml::from_str(base).unwrap();
        assert_eq!(unset.runtime.worker_threads, None);
        let one: GatewayConfig =
            toml::from_str(&format!("{base}[runtime]\nworker_threads = 1\n")).unwrap();
        assert_eq!(one.runtime.worker_threads.map(|n| n.get()), Some(1));
        let runtime = one.runtime.build().expect("a runtime");
        assert_eq!(runtime.metrics().num_workers(), 1);
        for bad in ["worker_threads = 0", "worker_threads = -1", "workers = 2"] {
            assert!(
                toml::from_str::<GatewayConfig>(&format!("{base}[runtime]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut config = GatewayConfig::new("f.toml", "d");
        config.nodes.timeout_ms = 1;
        assert!(config.check().is_err());
        let mut config = GatewayConfig::new("f.toml", "d");
        config.cors_allowed_origins = vec!["*".into()];
        assert!(config.check().is_err());
        let mut config = GatewayConfig::new("f.toml", "d");
        config
            .auditors
            .pinned_keys
            .insert("shelter-north".into(), "abcd".into());
        assert!(config.check().is_err());
        for in_flight in [0, 4097] {
            let mut config = GatewayConfig::new("f.toml", "d");
            config.nodes.max_in_flight_per_node = in_flight;
            let err = config.check().unwrap_err();
            assert!(err.to_string().contains("max_in_flight_per_node"), "{err}");
        }
        let mut config = GatewayConfig::new("f.toml", "d");
        config.graphql_path = "/".into();
        assert!(config.check().is_err(), "the endpoint is not / alone");
        assert!(GatewayConfig::new("f.toml", "d").check().is_ok());
    }
}

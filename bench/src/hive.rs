//! Hive Router in a child process in front of one agency node, for
//! `hive-bench`: its configuration (JSON, as `router.config.json`) and a
//! JWKS made from the development federation's key of the agency, written
//! to a directory of its own, and the process started on a free loopback
//! port and waited for until it is ready.
//!
//! The router is configured to do what the exchange's gateway does on a
//! routed read, and no less:
//!
//! * its JWT plugin is on and required: tokens are verified against the
//!   agency's public key (EdDSA only), its issuer and the federation's
//!   audience, as the gateway verifies them;
//! * `Authorization` and the purpose and justification headers are
//!   propagated to the node, which needs them;
//! * request deduplication is off, so every request reaches the node;
//! * the supergraph's URL for the node is overridden with the node's real
//!   URL (the supergraph is composed once, with a placeholder URL).
//!
//! Usage reporting, tracing and metrics stay off (their defaults) and the
//! router listens on `127.0.0.1` only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use exchange_schema::{AgencyId, JUSTIFICATION_HEADER, PURPOSE_HEADER};
use exchange_trust::DevFederation;
use serde_json::json;

use crate::child::ChildServer;
use crate::nodes::AUDIENCE;

/// The environment variables Hive Router reads to override its
/// configuration file; removed from its environment so that the file alone
/// decides.
const HIVE_ENV_OVERRIDES: &[&str] = &[
    "LOG_LEVEL",
    "LOG_FORMAT",
    "LOG_FILTER",
    "GRAPHIQL_ENABLED",
    "PORT",
    "HOST",
    "SUPERGRAPH_FILE_PATH",
    "HIVE_CDN_ENDPOINT",
    "HIVE_CDN_KEY",
    "HIVE_CDN_POLL_INTERVAL",
    "HIVE_ACCESS_TOKEN",
    "HIVE_TARGET",
    "HIVE_TRACING_ENABLED",
    "HIVE_USAGE_REPORTING_ENABLED",
];

/// How long the router may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// What Hive Router is started with.
pub struct HiveRouter<'a> {
    /// The `hive_router` executable.
    pub binary: &'a Path,
    /// The composed supergraph SDL.
    pub supergraph: &'a Path,
    /// The node's subgraph name in the supergraph.
    pub subgraph: &'a str,
    /// The node's base URL (`http://127.0.0.1:<port>`).
    pub node_url: &'a str,
    /// The federation whose agency key verifies the tokens.
    pub dev: &'a DevFederation,
    /// The agency whose tokens are accepted.
    pub agency: &'a AgencyId,
}

impl HiveRouter<'_> {
    /// Writes the router's configuration and JWKS into `dir` (created),
    /// starts it labelled `name`, and waits until its readiness probe
    /// answers.
    pub async fn start(&self, dir: &Path, name: &str) -> anyhow::Result<ChildServer> {
        std::fs::create_dir_all(dir)?;
        let provider = self
            .dev
            .provider(self.agency)
            .with_context(|| format!("no identity provider for {}", self.agency))?;
        let jwks = dir.join("jwks.json");
        std::fs::write(
            &jwks,
            serde_json::to_vec_pretty(&json!({ "keys": [provider.signing_key().public_jwk()] }))?,
        )?;
        let port = free_loopback_port()?;
        let supergraph = std::fs::canonicalize(self.supergraph)
            .with_context(|| format!("the supergraph {}", self.supergraph.display()))?;
        let config = json!({
            "log": { "level": "warn", "format": "json" },
            "http": { "host": "127.0.0.1", "port": port },
            "supergraph": { "source": "file", "path": supergraph },
            "graphiql": { "enabled": false },
            "traffic_shaping": { "all": { "dedupe_enabled": false } },
            "override_subgraph_urls": {
                self.subgraph: { "url": format!("{}/graphql", self.node_url) },
            },
            "headers": { "all": { "request": [
                { "propagate": { "named": ["authorization", PURPOSE_HEADER, JUSTIFICATION_HEADER] } },
            ] } },
            "jwt": {
                "enabled": true,
                "require_authentication": true,
                "jwks_providers": [{ "source": "file", "path": jwks }],
                "issuers": [provider.issuer()],
                "audiences": [AUDIENCE],
                "allowed_algorithms": ["EdDSA"],
            },
        });
        let config_path = dir.join("router.config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let mut command = Command::new(self.binary);
        for name in HIVE_ENV_OVERRIDES {
            command.env_remove(name);
        }
        let child = command
            .env("ROUTER_CONFIG_FILE_PATH", &config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut server = ChildServer::adopt(name, child, format!("http://127.0.0.1:{port}"));
        wait_ready(&mut server, name).await?;
        Ok(server)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (Hive Router takes a
/// port number, not a listener).
fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls the router's `/readiness` probe until it answers 200, the process
/// exits, or [`READY_WITHIN`] passes.
async fn wait_ready(server: &mut ChildServer, name: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("{}/readiness", server.base);
    let started = Instant::now();
    loop {
        if let Some(status) = server.exited() {
            anyhow::bail!("{name} exited before it was ready ({status}); its output is above");
        }
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > READY_WITHIN {
            anyhow::bail!("{name} was not ready at {url} within {READY_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! The local federation launcher: a development federation of five
//! agencies (a shelter, a legal-aid service and a health clinic with nodes;
//! an outreach service whose "node" accepts connections and never answers,
//! when a test asks for one; an oversight body without a node), three real
//! agency nodes and a gateway, all in-process on loopback ports, and typed
//! helpers to mint tokens and send GraphQL to the gateway or straight to a
//! node.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agency_node::NodeConfig;
use agency_node::config::PortalConfig;
use agency_node::state::NodeState;
use agency_node::store::Db;
use exchange_gateway::pipeline::Gateway;
use exchange_gateway::{Application as GatewayApp, GatewayConfig};
use exchange_schema::{AgencyId, AgencyKind, AuditEvent, Role, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation};
use serde_json::{Value, json};

use crate::graphql::Gql;
use crate::survivors::survivor_input;
use tokio::sync::oneshot;

pub const AUDIENCE: &str = "survivor-exchange-e2e";
pub const SHELTER: &str = "shelter-north";
pub const LEGAL: &str = "legal-aid-city";
pub const CLINIC: &str = "clinic-east";
/// Has a "node" that accepts connections and never answers (when asked for).
pub const SILENT: &str = "outreach-west";
/// Has no node: the auditors' agency.
pub const OVERSIGHT: &str = "oversight-board";
/// The agencies with a real node, in federation order.
pub const NODE_AGENCIES: [&str; 3] = [SHELTER, LEGAL, CLINIC];

/// How to start the federation.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway's per-node timeout.
    pub node_timeout_ms: u64,
    /// Consecutive failures that open a node's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit stays open.
    pub cool_down_ms: u64,
    /// Add the outreach agency whose node never answers.
    pub silent_node: bool,
    /// Serve the nodes over mutual TLS (a generated local CA) and have the
    /// gateway call them with its client certificate.
    pub tls: bool,
    /// The gateway's bound on requests in flight to one node.
    pub max_in_flight_per_node: usize,
    /// How often the gateway collects the nodes' checkpoints by itself.
    pub collect_interval_secs: u64,
    /// Where the gateway keeps its audit log: SQLite in its data directory
    /// when unset.
    pub gateway_database_url: Option<String>,
    /// The gateway's nesting limit, when not its default.
    pub gateway_max_depth: Option<usize>,
    /// `[agency.webhook]` entries of the federation file, by agency.
    pub webhooks: Vec<(String, exchange_trust::WebhookEntry)>,
    /// The nodes' webhook delivery settings, when not their defaults.
    pub webhook_delivery: Option<agency_node::config::WebhooksConfig>,
    /// Every agency's issuer at `<issuer_base>/<agency>` instead of the
    /// development default: the issuers of a development OpenID provider
    /// listening there (the console's tests).
    pub issuer_base: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            node_timeout_ms: 5_000,
            failure_threshold: 3,
            cool_down_ms: 60_000,
            silent_node: false,
            tls: false,
            max_in_flight_per_node: 16,
            collect_interval_secs: 300,
            gateway_database_url: None,
            gateway_max_depth: None,
            webhooks: Vec::new(),
            webhook_delivery: None,
            issuer_base: None,
        }
    }
}

impl Options {
    /// A federation with the outreach agency's hung node, a short timeout,
    /// and a circuit that opens at the first failure and stays open for the
    /// test's length.
    pub fn hung_node() -> Self {
        Self {
            node_timeout_ms: 300,
            failure_threshold: 1,
            cool_down_ms: 600_000,
            silent_node: true,
            ..Self::default()
        }
    }
}

/// The DNS name in an agency node's TLS certificate.
pub fn tls_identity(agency: &str) -> String {
    format!("node.{agency}.test")
}

fn spec(
    id: &str,
    name: &str,
    kind: AgencyKind,
    services: Vec<ServiceKind>,
    node_url: Option<String>,
) -> AgencySpec {
    let tls_identity = node_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
        .map(|_| tls_identity(id));
    AgencySpec {
        node_url,
        tls_identity,
        webhook: None,
        ..crate::agencies::agency_spec(id, name, kind, services)
    }
}

/// `specs` with the given agencies' webhooks.
pub fn with_webhooks(
    mut specs: Vec<AgencySpec>,
    webhooks: &[(String, exchange_trust::WebhookEntry)],
) -> Vec<AgencySpec> {
    for spec in &mut specs {
        spec.webhook = webhooks
            .iter()
            .find(|(agency, _)| agency == spec.id.as_str())
            .map(|(_, hook)| hook.clone());
    }
    specs
}

/// The federation's agencies, with the node URLs known so far.
pub fn specs(urls: &dyn Fn(&str) -> Option<String>, silent: bool) -> Vec<AgencySpec> {
    let mut specs = vec![
        spec(
            SHELTER,
            "North Star Shelter",
            AgencyKind::Shelter,
            vec![ServiceKind::Shelter, ServiceKind::Psychosocial],
            urls(SHELTER),
        ),
        spec(
            LEGAL,
            "City Legal Aid",
            AgencyKind::LegalAid,
            vec![ServiceKind::LegalAid],
            urls(LEGAL),
        ),
        spec(
            CLINIC,
            "East Clinic",
            AgencyKind::HealthClinic,
            vec![ServiceKind::Medical, ServiceKind::Psychosocial],
            urls(CLINIC),
        ),
    ];
    if silent {
        specs.push(spec(
            SILENT,
            "West Outreach",
            AgencyKind::Outreach,
            vec![ServiceKind::Interpretation],
            urls(SILENT),
        ));
    }
    specs.push(spec(
        OVERSIGHT,
        "Oversight Board",
        AgencyKind::Oversight,
        vec![],
        None,
    ));
    specs
}

/// A running agency node.
pub struct TestNode {
    pub agency: AgencyId,
    pub base: String,
    pub state: Arc<NodeState>,
    pub data_dir: PathBuf,
    /// The survivor portal's base URL (`http://localhost:<port>`: browsers
    /// accept the portal's `Secure` cookie over plain HTTP on localhost).
    pub portal: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestNode {
    /// Stops the node gracefully and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("node task")
                .expect("node stops cleanly");
        }
    }

    /// The node's audit events, oldest first.
    pub async fn audit_events(&self) -> Vec<AuditEvent> {
        events(&self.state.db).await
    }
}

/// Reads every audit event of a log, oldest first.
pub async fn events(db: &Db) -> Vec<AuditEvent> {
    use sqlx::Row as _;
    sqlx::query("SELECT event FROM audit_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .expect("reading the audit log")
        .iter()
        .map(|r| serde_json::from_str(&r.get::<String, _>("event")).expect("stored event parses"))
        .collect()
}

/// A gateway and three nodes.
pub struct TestFederation {
    pub dir: tempfile::TempDir,
    pub dev: DevFederation,
    pub nodes: Vec<TestNode>,
    pub gateway_base: String,
    /// The gateway's metrics listener (`/metrics`).
    pub gateway_metrics: String,
    pub gateway: Arc<Gateway>,
    /// The gateway's node clients.
    pub gateway_nodes: Arc<exchange_gateway::nodes::Nodes>,
    pub gateway_data_dir: PathBuf,
    /// The gateway's audit database (SQLite in `gateway_data_dir` unless
    /// the test chose another).
    pub gateway_database_url: String,
    pub client: reqwest::Client,
    /// The local CA and identities, when started with TLS.
    pub pki: Option<exchange_service::tls::DevPki>,
    gateway_shutdown: Option<oneshot::Sender<()>>,
    gateway_server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The hung node, when started with one.
    pub silent: Option<SilentNode>,
    /// The agencies' webhooks as the federation file lists them.
    webhooks: Vec<(String, exchange_trust::WebhookEntry)>,
    issuer_base: Option<String>,
}

/// Starts an agency node for `agency` with data in `dir/<agency>` and its
/// portal on, after letting the caller adjust its configuration.
pub async fn start_node(
    federation: &Path,
    dir: &Path,
    agency: &str,
    adjust: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    let data_dir = dir.join(agency);
    let mut config = NodeConfig::new(
        AgencyId::parse(agency).expect("agency ID"),
        federation,
        &data_dir,
    );
    config.log_format = exchange_service::config::LogFormat::Pretty;
    config.portal = Some(PortalConfig::new(loopback()));
    adjust(&mut config);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = agency_node::Application::build(config)
        .await
        .expect("node starts");
    let base = format!("{scheme}://{}", app.address());
    let portal = format!(
        "http://localhost:{}",
        app.portal_address().expect("the portal is on").port()
    );
    let state = app.state();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestNode {
        agency: AgencyId::parse(agency).expect("agency ID"),
        base,
        state,
        data_dir,
        portal,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A hung node: it accepts connections, reads what it is sent and never
/// answers. It counts the GraphQL requests (POSTs) it was sent; other
/// calls (the gateway's checkpoint collection, readiness probes) are not
/// counted.
pub struct SilentNode {
    pub url: String,
    posts: Arc<tokio::sync::watch::Sender<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentNode {
    async fn start() -> Self {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let posts = Arc::new(tokio::sync::watch::Sender::new(0));
        let counting = posts.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counting = counting.clone();
                tokio::spawn(async move {
                    // Hold the connection until the caller gives up on it.
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if buf[..n].starts_with(b"POST ") {
                            counting.send_modify(|n| *n += 1);
                        }
                    }
                });
            }
        });
        Self { url, posts, task }
    }

    /// The GraphQL requests sent to it so far.
    pub fn posts(&self) -> usize {
        *self.posts.borrow()
    }

    /// The count of [`Self::posts`], to wait on its changes.
    pub fn watch_posts(&self) -> tokio::sync::watch::Receiver<usize> {
        self.posts.subscribe()
    }
}

impl Drop for SilentNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestFederation {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        crate::tracing_setup::install();
        let dir = tempfile::tempdir().expect("temp dir");
        // The nodes need the trust list before their ports are known...
        let dev = DevFederation::create_with_issuers(
            dir.path(),
            &with_webhooks(specs(&|_| None, options.silent_node), &options.webhooks),
            AUDIENCE,
            options.issuer_base.as_deref(),
        )
        .expect("development federation");
        let pki = options.tls.then(|| {
            exchange_service::tls::DevPki::load_or_create(&dir.path().join("pki"))
                .expect("local CA")
        });
        let mut nodes = Vec::new();
        for agency in NODE_AGENCIES {
            let tls = pki.as_ref().map(|pki| {
                let id = pki
                    .identity(
                        &format!("node-{agency}"),
                        &[tls_identity(agency)],
                        true,
                        // A node is a client too: of another node, when it
                        // hands a case over.
                        true,
                    )
                    .expect("node certificate");
                (id, pki.ca_file())
            });
            nodes.push(
                start_node(&dev.path, dir.path(), agency, |config| {
                    if let Some(delivery) = &options.webhook_delivery {
                        config.webhooks = delivery.clone();
                    }
                    if let Some((id, ca)) = tls {
                        config.tls = Some(agency_node::tls::TlsConfig {
                            cert_file: id.cert_file,
                            key_file: id.key_file,
                            client_ca_file: ca,
                        });
                    }
                })
                .await,
            );
        }
        let silent = if options.silent_node {
            Some(SilentNode::start().await)
        } else {
            None
        };
        let silent_url = silent.as_ref().map(|s| s.url.clone());
        // ...and the gateway needs their URLs: rewrite the file with them
        // (the keys are reused, so the nodes' trust is unchanged).
        let urls = |agency: &str| {
            nodes
                .iter()
                .find(|n| n.agency.as_str() == agency)
                .map(|n| n.base.clone())
                .or_else(|| (agency == SILENT).then(|| silent_url.clone()).flatten())
        };
        let dev = DevFederation::create_with_issuers(
            dir.path(),
            &with_webhooks(specs(&urls, options.silent_node), &options.webhooks),
            AUDIENCE,
            options.issuer_base.as_deref(),
        )
        .expect("development federation with node URLs");
        let gateway_data_dir = dir.path().join("gateway");
        let mut config = GatewayConfig::new(&dev.path, &gateway_data_dir);
        config.listen = loopback();
        config.log_format = exchange_service::config::LogFormat::Pretty;
        // The demo's synthetic region map, so the dashboard draws one.
        config.statistics.regions_file = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/regions.geojson"),
        );
        config.nodes.timeout_ms = options.node_timeout_ms;
        config.nodes.connect_timeout_ms = options.node_timeout_ms.min(1_000);
        config.nodes.failure_threshold = options.failure_threshold;
        config.nodes.cool_down_ms = options.cool_down_ms;
        config.nodes.max_in_flight_per_node = options.max_in_flight_per_node;
        config.auditors.collect_interval_secs = options.collect_interval_secs;
        if let Some(depth) = options.gateway_max_depth {
            config.limits.max_depth = depth;
        }
        config.database_url = options
            .gateway_database_url
            .map(exchange_gateway::config::DatabaseUrl);
        let gateway_database_url = config.database_url();
        config.metrics.listen = Some(loopback());
        if let Some(pki) = &pki {
            let id = pki
                .identity("gateway", &["gateway.test".into()], false, true)
                .expect("gateway client certificate");
            config.tls = Some(exchange_gateway::config::ClientTlsConfig {
                cert_file: id.cert_file,
                key_file: id.key_file,
                ca_file: pki.ca_file(),
            });
        }
        let app = GatewayApp::build(config).await.expect("gateway starts");
        let gateway_base = format!("http://{}", app.address());
        let gateway_metrics = format!(
            "http://{}",
            app.metrics_address().expect("metrics listener")
        );
        let gateway = app.gateway();
        let gateway_nodes = app.nodes();
        let (tx, rx) = oneshot::channel();
        let gateway_server = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        Self {
            dir,
            dev,
            nodes,
            gateway_base,
            gateway_metrics,
            gateway,
            gateway_nodes,
            gateway_data_dir,
            gateway_database_url,
            client: reqwest::Client::new(),
            pki,
            gateway_shutdown: Some(tx),
            gateway_server: Some(gateway_server),
            silent,
            webhooks: options.webhooks,
            issuer_base: options.issuer_base.clone(),
        }
    }

    pub fn node(&self, agency: &str) -> &TestNode {
        self.nodes
            .iter()
            .find(|n| n.agency.as_str() == agency)
            .expect("a node of that agency")
    }

    pub fn node_mut(&mut self, agency: &str) -> &mut TestNode {
        self.nodes
            .iter_mut()
            .find(|n| n.agency.as_str() == agency)
            .expect("a node of that agency")
    }

    /// Starts a stopped node again on its data, on a new port, and writes
    /// its new address into the federation file (where other nodes look it
    /// up; the gateway keeps the address it started with).
    pub async fn restart_node(&mut self, agency: &str) {
        let dir = self.dir.path().to_owned();
        let node = start_node(&self.dev.path, &dir, agency, |_| {}).await;
        let at = self
            .nodes
            .iter()
            .position(|n| n.agency.as_str() == agency)
            .expect("a node of that agency");
        self.nodes[at] = node;
        self.rewrite_federation_file();
    }

    /// Starts a stopped node again on its data at the address it had, so
    /// the gateway reaches it as before (a restart in place, or a node
    /// restored from a backup).
    pub async fn restart_node_in_place(&mut self, agency: &str) {
        let dir = self.dir.path().to_owned();
        let at = self
            .nodes
            .iter()
            .position(|n| n.agency.as_str() == agency)
            .expect("a node of that agency");
        let address: std::net::SocketAddr = self.nodes[at]
            .base
            .split_once("://")
            .map_or(self.nodes[at].base.as_str(), |(_, rest)| rest)
            .parse()
            .expect("the node's address");
        let node = start_node(&self.dev.path, &dir, agency, |config| {
            config.listen = address;
        })
        .await;
        self.nodes[at] = node;
    }

    /// Replaces the agencies' webhooks in the federation file, as an
    /// operator edits it while everything runs.
    pub fn set_webhooks(&mut self, webhooks: Vec<(String, exchange_trust::WebhookEntry)>) {
        self.webhooks = webhooks;
        self.rewrite_federation_file();
    }

    /// Writes the federation file again with the nodes' current addresses
    /// and webhooks (the keys are reused).
    fn rewrite_federation_file(&mut self) {
        let urls = |id: &str| {
            self.nodes
                .iter()
                .find(|n| n.agency.as_str() == id)
                .map(|n| n.base.clone())
                .or_else(|| {
                    (id == SILENT)
                        .then(|| self.silent.as_ref().map(|s| s.url.clone()))
                        .flatten()
                })
        };
        let specs = with_webhooks(specs(&urls, self.silent.is_some()), &self.webhooks);
        self.dev = DevFederation::create_with_issuers(
            self.dir.path(),
            &specs,
            AUDIENCE,
            self.issuer_base.as_deref(),
        )
        .expect("development federation rewritten");
    }

    /// Stops the gateway gracefully (it signs a final checkpoint).
    pub async fn stop_gateway(&mut self) {
        if let Some(tx) = self.gateway_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.gateway_server.take() {
            server
                .await
                .expect("gateway task")
                .expect("gateway stops cleanly");
        }
    }

    /// A valid token of a user of `agency` with `roles`.
    pub fn token(&self, agency: &str, roles: &[Role]) -> String {
        crate::agencies::mint(&self.dev, agency, roles, AUDIENCE)
    }

    pub fn caseworker(&self, agency: &str) -> String {
        self.token(agency, &[Role::Caseworker])
    }

    /// Sends an operation to `base`'s `/graphql`.
    pub async fn post(
        &self,
        base: &str,
        token: Option<&str>,
        purpose: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Gql {
        self.post_justified(base, token, purpose, None, query, variables)
            .await
    }

    /// [`Self::post`] with the break-glass justification header when given.
    pub async fn post_justified(
        &self,
        base: &str,
        token: Option<&str>,
        purpose: Option<&str>,
        justification: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Gql {
        crate::graphql::post(
            &self.client,
            base,
            token,
            purpose,
            justification,
            query,
            variables,
        )
        .await
    }

    /// Sends an operation through the gateway.
    pub async fn gateway_gql(
        &self,
        token: &str,
        purpose: &str,
        query: &str,
        variables: Value,
    ) -> Gql {
        self.post(
            &self.gateway_base,
            Some(token),
            Some(purpose),
            query,
            variables,
        )
        .await
    }

    /// Sends a break-glass (`EMERGENCY`) operation through the gateway, with
    /// the justification header when given.
    pub async fn gateway_emergency(
        &self,
        token: &str,
        justification: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Gql {
        self.post_justified(
            &self.gateway_base,
            Some(token),
            Some("EMERGENCY"),
            justification,
            query,
            variables,
        )
        .await
    }

    /// Sends an operation straight to a node.
    pub async fn node_gql(
        &self,
        agency: &str,
        token: &str,
        purpose: &str,
        query: &str,
        variables: Value,
    ) -> Gql {
        let base = self.node(agency).base.clone();
        self.post(&base, Some(token), Some(purpose), query, variables)
            .await
    }

    /// Registers a survivor at `agency` through the gateway; its global ID.
    pub async fn register_survivor(&self, agency: &str, given_name: &str) -> String {
        let response = self
            .gateway_gql(
                &self.caseworker(agency),
                "CASE_MANAGEMENT",
                crate::survivors::REGISTER_SURVIVOR,
                json!({ "input": survivor_input(given_name) }),
            )
            .await;
        response.id("registerSurvivor")
    }

    /// Records a witnessed consent through the gateway; the grant's ID.
    pub async fn grant(
        &self,
        survivor: &str,
        grantee: &str,
        categories: &[&str],
        purposes: &[&str],
    ) -> String {
        let owner = survivor.split(':').next().expect("global ID");
        let response = self
            .gateway_gql(
                &self.caseworker(owner),
                "CASE_MANAGEMENT",
                crate::survivors::RECORD_CONSENT,
                json!({ "input": crate::survivors::witnessed_consent(survivor, grantee, categories, purposes) }),
            )
            .await;
        response.id("recordConsent")
    }

    /// Refers a survivor to `to` through the gateway (consent recorded
    /// first); the referral's ID.
    pub async fn refer(&self, survivor: &str, to: &str) -> String {
        self.grant(survivor, to, &["IDENTITY", "CASE"], &["REFERRAL"])
            .await;
        let owner = survivor.split(':').next().expect("global ID");
        let response = self
            .gateway_gql(
                &self.caseworker(owner),
                "REFERRAL",
                "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
                json!({ "input": { "survivorId": survivor, "toAgency": to, "service": "MEDICAL", "urgency": "URGENT" } }),
            )
            .await;
        response.id("createReferral")
    }

    /// `agency`'s caseworker answers `referral` through the gateway with
    /// `mutation` (`acceptReferral`, `declineReferral`, ...), which must
    /// succeed: the referral's new status.
    pub async fn answer_referral(&self, agency: &str, mutation: &str, referral: &str) -> String {
        let answer = self
            .gateway_gql(
                &self.caseworker(agency),
                "REFERRAL",
                &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ status }} }}"),
                json!({ "id": referral }),
            )
            .await;
        answer.data()[mutation]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{mutation}: {}", answer.body))
            .to_owned()
    }

    /// Refers `survivor` to `to` and has `to` accept, so that `to` becomes
    /// a partner on the case: the referral's ID.
    pub async fn refer_accepted(&self, survivor: &str, to: &str) -> String {
        let referral = self.refer(survivor, to).await;
        assert_eq!(
            self.answer_referral(to, "acceptReferral", &referral).await,
            "ACCEPTED"
        );
        referral
    }

    /// The gateway's audit events, oldest first (read through a second
    /// connection to its database).
    pub async fn gateway_events(&self) -> Vec<AuditEvent> {
        let db = Db::connect(&self.gateway_database_url)
            .await
            .expect("gateway audit database");
        let out = events(&db).await;
        db.close().await;
        out
    }
}

impl Drop for TestFederation {
    fn drop(&mut self) {
        if let Some(tx) = self.gateway_shutdown.take() {
            let _ = tx.send(());
        }
        for node in &mut self.nodes {
            if let Some(tx) = node.shutdown.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Loopback, port 0: the system picks a free port.
fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

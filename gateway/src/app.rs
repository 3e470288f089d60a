//! Building and running the gateway: [`Application::build`] loads the
//! federation schema and trust list, opens the gateway's own audit log,
//! sets up the node clients (mutual TLS when configured) and binds the
//! listener (port 0 in tests), exposing the bound address, and opens the
//! checkpoints collected from the nodes;
//! [`Application::run`] collects the nodes' checkpoints at intervals and
//! serves until the shutdown signal, then drains requests and signs a final
//! audit checkpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use exchange_trust::{Federation, TokenVerifier};
use tokio::net::TcpListener;

use exchange_audit::{AuditLog, AuditOptions};
use exchange_service::db::Db;

use crate::config::GatewayConfig;
use crate::http::{HttpState, router};
use crate::nodes::Nodes;
use crate::pipeline::Gateway;
use crate::routing::FederationSchema;

/// How many parsed and validated operations the gateway keeps.
const DOCUMENT_CACHE_ENTRIES: usize = 1024;
/// The most operation text the gateway's cache holds, in bytes.
const DOCUMENT_CACHE_TEXT_BYTES: usize = 1 << 20;

/// The log identity written in the gateway's audit checkpoints.
pub const AUDIT_LOG_ID: &str = "gateway";

/// A gateway, built and bound, ready to serve.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    gateway: Arc<Gateway>,
    nodes: Arc<Nodes>,
    db: Db,
    checkpoints: Arc<crate::audit::CheckpointStore>,
    auditors: crate::config::AuditorsConfig,
    /// `/metrics`, on a listener of its own (`[metrics] listen`).
    metrics_listener: Option<TcpListener>,
}

impl Application {
    /// Loads everything and binds the listener. Fails, naming the cause, on
    /// an unreadable federation file, a routing rule that does not fit the
    /// schema, unusable TLS material or an unwritable data directory.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        config.check()?;
        let schema = FederationSchema::load().context("loading the federation schema")?;
        let federation = Arc::new(Federation::load(&config.federation).with_context(|| {
            format!(
                "loading the federation file {}",
                config.federation.display()
            )
        })?);
        let tls = match &config.tls {
            Some(tls) => Some(
                exchange_service::tls::client_config(&tls.cert_file, &tls.key_file, &tls.ca_file)
                    .context("loading the gateway's TLS client material")?,
            ),
            None => None,
        };
        let nodes = Arc::new(Nodes::new(&federation, &config.nodes, tls)?);

        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let key = Arc::new(exchange_audit::keys::load_or_generate_signing_key(
            &config.data_dir,
        )?);
        // The gateway's database holds its audit log and nothing else.
        let db = Db::connect_with(
            &config.database_url(),
            std::time::Duration::from_millis(config.audit.write_timeout_ms.max(1)),
        )
        .await?;
        db.migrate(&exchange_audit::MIGRATIONS).await?;
        let metrics = exchange_service::metrics::Metrics::new();
        metrics.watch_pool("audit", db.pool().clone());
        {
            // Each node's circuit, read at every scrape.
            let nodes = Arc::downgrade(&nodes);
            let agencies: Vec<exchange_schema::AgencyId> = federation
                .agencies()
                .iter()
                .filter(|a| a.node_url.is_some())
                .map(|a| a.id.clone())
                .collect();
            let circuits = metrics.circuits.clone();
            metrics.on_scrape(move || {
                let Some(nodes) = nodes.upgrade() else { return };
                for agency in &agencies {
                    let state = match nodes.circuit(agency) {
                        crate::nodes::CircuitState::Closed => 0,
                        crate::nodes::CircuitState::HalfOpen => 1,
                        crate::nodes::CircuitState::Open => 2,
                    };
                    circuits
                        .get_or_create(&exchange_service::metrics::AgencyLabels {
                            agency: agency.to_string(),
                        })
                        .set(state);
                }
            });
        }
        let audit = AuditLog::open(
            db.clone(),
            key,
            AuditOptions {
                checkpoint_every: config.audit.checkpoint_every.max(1),
                checkpoint_interval: config.checkpoint_interval(),
                timeout: std::time::Duration::from_millis(config.audit.write_timeout_ms.max(1)),
                metrics: Some(metrics.audit.clone()),
                ..AuditOptions::new(AUDIT_LOG_ID)
            },
        )
        .await?;
        let verifier = Arc::new(TokenVerifier::new(federation.clone()));
        let jwks = exchange_service::jwks::JwksRefresher::new(verifier.clone())
            .context("preparing the identity providers' key fetches")?;
        jwks.start().await;
        let directory = crate::directory::schema(federation, nodes.clone());
        let gateway = Arc::new(Gateway {
            schema,
            limits: config.limits.clone(),
            verifier,
            jwks,
            transport: nodes.clone(),
            directory,
            audit,
            documents: crate::plan::DocumentCache::new(
                DOCUMENT_CACHE_ENTRIES,
                DOCUMENT_CACHE_TEXT_BYTES,
            ),
            metrics: metrics.clone(),
        });
        let checkpoints = Arc::new(
            crate::audit::CheckpointStore::open(&config.data_dir, &config.auditors)
                .context("opening the collected audit checkpoints")?,
        );
        let mut router = router(HttpState {
            gateway: gateway.clone(),
            nodes: nodes.clone(),
            max_body_bytes: config.max_body_bytes,
            graphql_path: config.graphql_path.clone(),
            checkpoints: checkpoints.clone(),
            auditors: config.auditors.clone(),
            statistics: Arc::new(
                crate::statistics::ReleaseStore::open(
                    &config.data_dir,
                    config.statistics.protection(),
                )
                .context("opening the statistics releases")?
                .with_regions(
                    config
                        .statistics
                        .regions_file
                        .as_deref()
                        .map(crate::regions::RegionMap::load)
                        .transpose()
                        .context("loading the statistics region map")?,
                ),
            ),
            subscriptions: crate::subscriptions::schema(gateway.clone()),
        });
        if !config.cors_allowed_origins.is_empty() {
            let origins: Vec<http::HeaderValue> = config
                .cors_allowed_origins
                .iter()
                .map(|o| o.parse())
                .collect::<Result<_, _>>()
                .context("cors_allowed_origins")?;
            router = router.layer(
                tower_http::cors::CorsLayer::new()
                    .allow_origin(origins)
                    .allow_methods([http::Method::POST])
                    .allow_headers([
                        http::header::AUTHORIZATION,
                        http::header::CONTENT_TYPE,
                        http::HeaderName::from_static(exchange_schema::PURPOSE_HEADER),
                        http::HeaderName::from_static(exchange_schema::JUSTIFICATION_HEADER),
                        http::HeaderName::from_static("traceparent"),
                    ]),
            );
        }
        let router = router.layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            exchange_service::metrics::track_http,
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let metrics_listener = config.metrics.bind().await?;
        Ok(Self {
            metrics_listener,
            listener,
            address,
            router,
            gateway,
            nodes,
            db,
            checkpoints,
            auditors: config.auditors.clone(),
        })
    }

    /// The address the gateway listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The metrics listener's address, when `[metrics] listen` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The node clients (tests watch their in-flight bounds).
    pub fn nodes(&self) -> Arc<Nodes> {
        self.nodes.clone()
    }

    /// The gateway's shared state (tests read its audit log through it).
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests,
    /// signs a final audit checkpoint and closes the database.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "federation gateway listening");
        let collector = tokio::spawn(crate::audit::collect_periodically(
            self.checkpoints.clone(),
            self.nodes.clone(),
            self.auditors.clone(),
        ));
        use futures::FutureExt as _;
        let shutdown = shutdown.shared();
        let metrics = match self.metrics_listener {
            Some(listener) => {
                let router = exchange_service::metrics::router(self.gateway.metrics.clone());
                let stop = shutdown.clone();
                Some(tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stop)
                        .await
                }))
            }
            None => None,
        };
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving");
        if let Some(metrics) = metrics
            && let Ok(Err(err)) = metrics.await
        {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
        collector.abort();
        served?;
        if let Err(err) = self.gateway.audit.checkpoint_now().await {
            tracing::error!(error = ?err, "final audit checkpoint failed");
        }
        self.db.close().await;
        tracing::info!("federation gateway stopped");
        Ok(())
    }
}

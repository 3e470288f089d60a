//! Building and running a node: [`Application::build`] opens the database,
//! the audit log, the policy set and the trust list, binds the listener
//! (port 0 in tests) and exposes the bound address; [`Application::run`]
//! serves until the shutdown signal, then drains requests, signs a final
//! audit checkpoint and closes the database.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use exchange_policies::{BreakGlassOptions, EngineOptions, PolicyEngine};
use exchange_trust::{Federation, TokenVerifier};
use tokio::net::TcpListener;

use crate::config::NodeConfig;
use crate::graphql::{operation_schema, schema_builder};
use crate::http::{HttpState, router};
use crate::state::NodeState;
use exchange_audit::{AuditLog, AuditOptions};

/// A node, built and bound, ready to serve.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    state: Arc<NodeState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    portal: Option<PortalListener>,
    /// `/metrics`, on a listener of its own (`[metrics] listen`).
    metrics_listener: Option<TcpListener>,
}

/// The survivor portal's own listener.
struct PortalListener {
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Application {
    /// Opens everything the node needs and binds its listener. Fails, naming
    /// the cause, on an invalid policy set, an unknown agency, an unreadable
    /// trust list or an unreachable database.
    pub async fn build(config: NodeConfig) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let agency = config.agency.clone();
        let federation = Arc::new(Federation::load(&config.federation).with_context(|| {
            format!(
                "loading the federation file {}",
                config.federation.display()
            )
        })?);
        let member = federation
            .agency(&agency)
            .with_context(|| format!("agency {agency} is not in the federation file"))?;
        let agency_kind = member.kind;

        let options = EngineOptions {
            break_glass: BreakGlassOptions {
                enabled: config.break_glass.enabled,
                window: time::Duration::minutes(config.break_glass.window_minutes as i64),
            },
        };
        let policies = Arc::new(match &config.policies {
            Some(dir) => PolicyEngine::load_dir(dir, options).context("loading the policy set")?,
            None => PolicyEngine::baseline(options).context("loading the baseline policy set")?,
        });

        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let key = Arc::new(exchange_audit::keys::load_or_generate_signing_key(
            &config.data_dir,
        )?);
        let db = crate::store::open(&config.database_url(), config.audit.write_timeout()).await?;
        let metrics = exchange_service::metrics::Metrics::new();
        metrics.watch_pool("records", db.pool().clone());
        let audit = AuditLog::open(
            db.clone(),
            key.clone(),
            AuditOptions {
                checkpoint_every: config.audit.checkpoint_every.max(1),
                checkpoint_interval: config.checkpoint_interval(),
                timeout: config.audit.write_timeout(),
                metrics: Some(metrics.audit.clone()),
                ..AuditOptions::new(agency.as_str())
            },
        )
        .await?;
        let vault = open_vault(&config).await?;
        if !config.vault.retired_kek_files.is_empty() {
            // A rotation in progress: wrap every data key again under the
            // current KEK while the node serves (both KEKs unwrap meanwhile).
            let rotating = vault.clone();
            tokio::spawn(async move {
                match rotating.rewrap().await {
                    Ok(count) => tracing::info!(
                        rewrapped = count,
                        "every data key is wrapped by the current key-encryption key: remove \
                         [vault] retired_kek_files and destroy the retired keys"
                    ),
                    Err(err) => tracing::error!(error = %err, "wrapping data keys again failed"),
                }
            });
        }
        crate::store::coded_intake::upgrade_once(&db, &audit, &agency)
            .await
            .context("upgrading stored records to the coded intake")?;
        crate::store::sealing::upgrade_once(&db, &vault, &audit, &agency)
            .await
            .context("sealing stored records at rest")?;
        let retention = crate::retention::RetentionRules::load(config.policies.as_deref())
            .context("loading the retention rules")?;
        let verifier = Arc::new(TokenVerifier::new(federation.clone()));
        // The providers' keys at JWKS URLs: fetched now, then kept fresh.
        let jwks = exchange_service::jwks::JwksRefresher::new(verifier.clone())
            .context("preparing the identity providers' key fetches")?;
        jwks.start().await;
        let state = Arc::new(NodeState {
            agency,
            agency_kind,
            db,
            audit,
            policies,
            federation,
            verifier,
            node_key: key,
            vault,
            retention: retention.clone(),
            answer_requests_within: time::Duration::days(i64::from(
                config.retention.answer_requests_within_days,
            )),
            metrics: metrics.clone(),
            jwks,
        });
        crate::retention::spawn(
            state.clone(),
            retention,
            std::time::Duration::from_secs(config.retention.check_every_minutes.max(1) * 60),
        );
        // Expired idempotency keys go at least every 10 minutes (sooner when
        // the window is shorter); the sweeper stops when the database closes.
        crate::notifications::spawn_due_sweeper(state.clone());
        crate::webhooks::spawn(state.clone(), config.webhooks.clone(), &config.federation);
        crate::idempotency::spawn_sweeper(
            state.db.clone(),
            config
                .idempotency_window()
                .min(std::time::Duration::from_secs(600)),
        );
        let peers = Arc::new(crate::peers::Peers::new(
            &config.federation,
            &state.agency,
            config.tls.as_ref(),
        ));
        let schema = schema_builder(&config.limits)
            .data(state.clone())
            .data(peers)
            .finish();
        let operation_schema = Arc::new(
            operation_schema(&schema)
                .map_err(|e| anyhow::anyhow!("the node's schema does not validate: {e}"))?,
        );
        let router = router(HttpState {
            node: state.clone(),
            schema,
            documents: Arc::new(crate::graphql::documents::NodeDocuments::new(
                crate::graphql::documents::NODE_DOCUMENTS,
                crate::graphql::documents::NODE_DOCUMENT_TEXT_BYTES,
            )),
            operation_schema,
            limits: config.limits.clone(),
            max_body_bytes: config.max_body_bytes,
            graphql_path: config.graphql_path.clone(),
            idempotency_window: config.idempotency_window(),
        })
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            exchange_service::metrics::track_http,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http());

        let tls = config
            .tls
            .as_ref()
            .map(|t| t.server_config())
            .transpose()
            .context("loading the node's TLS material")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let portal = match &config.portal {
            Some(portal) => {
                let tls = portal
                    .tls
                    .as_ref()
                    .map(|t| t.server_config())
                    .transpose()
                    .context("loading the portal's TLS material")?;
                let listener = TcpListener::bind(portal.listen)
                    .await
                    .with_context(|| format!("binding the portal to {}", portal.listen))?;
                Some(PortalListener {
                    address: listener.local_addr()?,
                    listener,
                    router: crate::portal::router(state.clone(), portal.clone())
                        .layer(axum::middleware::from_fn_with_state(
                            metrics.clone(),
                            exchange_service::metrics::track_http,
                        ))
                        .layer(tower_http::trace::TraceLayer::new_for_http()),
                    tls,
                })
            }
            None => None,
        };
        let metrics_listener = config.metrics.bind().await?;
        Ok(Self {
            listener,
            address,
            router,
            state,
            tls,
            portal,
            metrics_listener,
        })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The survivor portal's address, when the portal is on.
    pub fn portal_address(&self) -> Option<SocketAddr> {
        self.portal.as_ref().map(|p| p.address)
    }

    /// The metrics listener's address, when `[metrics] listen` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The node's shared state (tests and the demo seed through it).
    pub fn state(&self) -> Arc<NodeState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests,
    /// signs a final audit checkpoint and closes the database.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use futures::FutureExt as _;
        tracing::info!(agency = %self.state.agency, address = %self.address, "agency node listening");
        let shutdown = shutdown.shared();
        let portal = async {
            match self.portal {
                Some(portal) => {
                    tracing::info!(address = %portal.address, "survivor portal listening");
                    serve(portal.listener, portal.router, portal.tls, shutdown.clone())
                        .await
                        .context("serving the survivor portal")
                }
                None => Ok(()),
            }
        };
        let metrics = async {
            match self.metrics_listener {
                Some(listener) => {
                    let router = exchange_service::metrics::router(self.state.metrics.clone());
                    serve(listener, router, None, shutdown.clone())
                        .await
                        .context("serving the metrics")
                }
                None => Ok(()),
            }
        };
        let federation = serve(self.listener, self.router, self.tls, shutdown.clone());
        let (federation, portal, metrics) = tokio::join!(federation, portal, metrics);
        federation?;
        portal?;
        metrics?;
        if let Err(err) = self.state.audit.checkpoint_now().await {
            tracing::error!(error = ?err, "final audit checkpoint failed");
        }
        self.state.db.close().await;
        self.state.vault.close().await;
        tracing::info!(agency = %self.state.agency, "agency node stopped");
        Ok(())
    }
}

/// Serves `router` on `listener`, over TLS when configured, until
/// `shutdown` completes.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match tls {
        Some(tls) => crate::tls::serve(listener, router, tls, shutdown)
            .await
            .context("serving over TLS"),
        None => axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving"),
    }
}

pub use exchange_service::shutdown::shutdown_signal;

/// The node's key store with its key-encryption key (generated on first
/// start) and any retired ones still being rotated away from.
pub async fn open_vault(config: &NodeConfig) -> anyhow::Result<crate::vault::Vault> {
    let kek = crate::vault::FileKek::load_or_generate(&crate::vault::kek::kek_path(
        config.vault.kek_file.as_deref(),
        &config.data_dir,
    ))
    .context("loading the key-encryption key")?;
    let mut retired: Vec<Arc<dyn crate::vault::KeyEncryptionKey>> = Vec::new();
    for path in &config.vault.retired_kek_files {
        retired.push(Arc::new(
            crate::vault::FileKek::load(path).context("loading a retired key-encryption key")?,
        ));
    }
    crate::vault::Vault::open_with_cache(
        Arc::new(kek),
        &config.key_store_url(),
        config.audit.write_timeout(),
        std::time::Duration::from_secs(config.vault.key_cache_seconds),
    )
    .await
    .context("opening the key store")?
    .with_retired(retired)
}

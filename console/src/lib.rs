//! The caseworker console: staff of a member agency sign in with their
//! agency's identity provider (OpenID Connect, [`oidc`]) and do the day's
//! work in a browser: the referral inbox across the federation, answering a
//! referral, and a survivor's record with what is withheld and why.
//!
//! It is a client of the gateway's public GraphQL API ([`gateway`]) with the
//! signed-in caseworker's own token, so it can widen nothing, and it keeps
//! no survivor data at rest: sessions live in memory ([`session`]), or sealed
//! in a database its replicas share ([`shared_sessions`]), and pages
//! are rendered per request ([`pages`], [`routes`]). Pages are server-rendered
//! with no script and no third-party resource, in four languages ([`i18n`]).
//!
//! [`Application::build`] binds the listener (port 0 in tests) and exposes
//! the bound address; `main.rs` only loads the configuration and runs it.

pub mod config;
pub mod error;
pub mod gateway;
pub mod i18n;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod session;
pub mod shared_sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use exchange_trust::{Federation, TokenVerifier};
use tokio::net::TcpListener;

use crate::config::ConsoleConfig;
use crate::gateway::GatewayClient;
use crate::oidc::SignIn;
use crate::session::SessionStore;

/// Largest form the console accepts.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What every request of the console shares.
#[derive(Debug)]
pub struct ConsoleState {
    /// The sessions' working copy in this process.
    pub sessions: SessionStore,
    /// Where the sessions are kept when several replicas share them
    /// (`[session] database_url`).
    pub shared_sessions: Option<shared_sessions::SharedSessions>,
    /// How often a sign-in is confirmed with the provider again.
    pub revalidate: Duration,
    /// How often an open page's live notices read the notifications.
    pub notice_interval: Duration,
    pub sign_in: SignIn,
    pub gateway: GatewayClient,
    /// The console's own origin (`scheme://host[:port]`), for the check of
    /// a form's `Origin`.
    pub origin: String,
    /// Whether cookies carry `Secure` (the console is served over https).
    pub secure_cookie: bool,
    pub content_security_policy: HeaderValue,
    /// The live-notice streams open per session, held to
    /// [`routes::notices::MOST_STREAMS_PER_SESSION`].
    pub notice_streams: Arc<routes::notices::OpenStreams>,
}

impl ConsoleState {
    /// Ends every session of `user` at `agency` (an administrator's or a
    /// provider's revocation), in this process and in the shared store;
    /// the number ended.
    pub async fn end_user_sessions(
        &self,
        agency: &str,
        user: &str,
    ) -> Result<u64, shared_sessions::SessionsError> {
        let here = self.sessions.end_user(agency, user) as u64;
        match &self.shared_sessions {
            Some(shared) => Ok(shared.end_user(agency, user).await?.max(here)),
            None => Ok(here),
        }
    }
}

/// A console bound to its address, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: Arc<ConsoleState>,
    /// `/metrics`, on a listener of its own (`[metrics] listen`).
    metrics_listener: Option<TcpListener>,
    metrics: Arc<exchange_service::metrics::Metrics>,
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}

impl Application {
    /// Reads the federation file, prepares sign-in for every configured
    /// agency and binds `config.listen`.
    pub async fn build(config: ConsoleConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        Self::build_with_listener(config, listener).await
    }

    /// As [`Application::build`] on a listener already bound, so that a
    /// test can know the address (and so `public_url`) before building.
    pub async fn build_with_listener(
        config: ConsoleConfig,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let federation = Federation::load(&config.federation_file).map_err(|e| {
            anyhow::anyhow!(
                "loading the federation file {}: {e}",
                config.federation_file.display()
            )
        })?;
        let verifier = Arc::new(TokenVerifier::new(federation.clone()));
        let mut http = reqwest::Client::builder()
            // The provider's and the gateway's answers are read as given;
            // following a redirect could leak a code or a token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .tls_built_in_root_certs(false);
        let ca_file = config.ca_file.clone().or_else(|| {
            let system = std::path::PathBuf::from(config::SYSTEM_CA_BUNDLE);
            system.exists().then_some(system)
        });
        if let Some(path) = ca_file {
            let pem = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading ca_file {}: {e}", path.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?
            {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build()?;
        let jwks = exchange_service::jwks::JwksRefresher::new(verifier)?;
        jwks.start().await;
        let sign_in = SignIn::new(&config, &federation, jwks, http.clone())?;
        let mut provider_origins: Vec<String> = config
            .sign_in
            .iter()
            .filter_map(|s| {
                federation
                    .agencies()
                    .iter()
                    .find(|a| a.id.as_str() == s.agency)
                    .map(|a| origin_of(&a.issuer))
            })
            .collect();
        provider_origins.sort();
        provider_origins.dedup();
        let content_security_policy =
            HeaderValue::from_str(&routes::content_security_policy(&provider_origins))?;
        let shared_sessions = match (&config.session.database_url, &config.session.key_file) {
            (Some(url), Some(key_file)) => Some(
                shared_sessions::SharedSessions::open(
                    &url.0,
                    key_file,
                    config.session.store_timeout(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("opening the session store: {e:#}"))?,
            ),
            _ => None,
        };
        let state = Arc::new(ConsoleState {
            sessions: SessionStore::new(config.session.idle(), config.session.absolute()),
            shared_sessions,
            revalidate: config.session.revalidate(),
            notice_interval: Duration::from_secs(config.session.notice_seconds),
            sign_in,
            gateway: GatewayClient::new(config.gateway_url.clone(), http),
            origin: origin_of(&config.public_url),
            secure_cookie: config.public_url.starts_with("https://"),
            content_security_policy,
            notice_streams: Arc::default(),
        });
        let metrics = exchange_service::metrics::Metrics::new();
        let router = router(state.clone()).layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            exchange_service::metrics::track_http,
        ));
        let metrics_listener = config.metrics.bind().await?;
        Ok(Self {
            listener,
            router,
            state,
            metrics_listener,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address, when `[metrics] listen` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state (tests end sessions through it).
    pub fn state(&self) -> Arc<ConsoleState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use futures::FutureExt as _;
        let shutdown = shutdown.shared();
        let metrics = self.metrics_listener.map(|listener| {
            let router = exchange_service::metrics::router(self.metrics.clone());
            tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.clone())
                    .into_future(),
            )
        });
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(metrics) = metrics
            && let Ok(Err(err)) = metrics.await
        {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
        served
    }
}

/// The console's routes over `state`.
pub fn router(state: Arc<ConsoleState>) -> Router {
    use routes::{survivor_action, survivor_item_action};
    Router::new()
        .route("/", get(routes::start))
        .route("/language", get(routes::language))
        .route("/sign-in", post(routes::sign_in))
        .route("/auth/callback", get(routes::callback))
        .route("/sign-out", post(routes::sign_out))
        .route("/referrals", get(routes::referrals))
        .route("/referrals/{id}", get(routes::referral))
        .route("/referrals/{id}/answer", post(routes::answer))
        .route(
            "/survivors",
            get(routes::survivor_list).post(routes::register),
        )
        .route("/survivors/new", get(routes::intake_form))
        .route("/survivors/{id}", get(routes::survivor))
        // The forms on a survivor's page, each read into one mutation by
        // a function of `routes` and sent through the gateway.
        .route(
            "/survivors/{id}/consents",
            survivor_action(routes::consent_change),
        )
        .route(
            "/survivors/{id}/consents/{grant}/revoke",
            survivor_item_action(routes::consent_revocation),
        )
        .route(
            "/survivors/{id}/referrals",
            survivor_action(|f| routes::referral_change(f.survivor, f.fields)),
        )
        .route(
            "/survivors/{id}/notes",
            survivor_action(|f| routes::note_change(f.survivor, f.fields, f.work)),
        )
        .route(
            "/survivors/{id}/services",
            survivor_action(|f| routes::service_change(f.survivor, f.fields, f.signed_in, f.work)),
        )
        .route(
            "/survivors/{id}/services/{service}",
            survivor_item_action(routes::service_update),
        )
        .route(
            "/survivors/{id}/plan-actions",
            survivor_action(routes::plan_action_update),
        )
        .route(
            "/survivors/{id}/care-plan",
            survivor_action(|f| routes::plan_change(f.survivor, f.fields)),
        )
        .route(
            "/survivors/{id}/care-plan/agreement",
            survivor_action(|f| routes::agreement_change(f.survivor, f.fields)),
        )
        .route(
            "/survivors/{id}/legal-hold",
            survivor_action(|f| routes::hold_change(f.survivor, f.fields)),
        )
        .route(
            "/survivors/{id}/legal-hold/lift",
            survivor_action(routes::hold_lifting),
        )
        .route(
            "/survivors/{id}/follow-ups/{follow_up}/close",
            survivor_item_action(routes::follow_up_closing),
        )
        .route(
            "/survivors/{id}/break-glass",
            get(routes::break_glass_form).post(routes::open_break_glass),
        )
        .route(
            "/survivors/{id}/follow-ups",
            survivor_action(|f| {
                routes::follow_up_change(f.survivor, f.fields, f.signed_in, f.work)
            }),
        )
        .route(
            "/survivors/{id}/caseworkers",
            survivor_action(routes::assignment),
        )
        .route(
            "/survivors/{id}/case/close",
            survivor_action(routes::case_closing),
        )
        .route(
            "/survivors/{id}/case/reopen",
            survivor_action(routes::case_reopening),
        )
        .route(
            "/survivors/{id}/consent-code",
            post(routes::issue_consent_code),
        )
        .route("/review", get(routes::review))
        .route("/requests", get(routes::requests))
        .route("/requests/{id}/answer", post(routes::answer_request))
        .route("/follow-ups", get(routes::follow_ups))
        .route("/agencies", get(routes::agencies))
        .route("/static/console.css", get(routes::stylesheet))
        .route("/static/console.js", get(routes::script))
        .route("/notices", get(routes::notices))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shared_sessions::through_shared_store,
        ))
        .layer(axum::middleware::from_fn(routes::plain_paths))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::safety_headers,
        ))
        .with_state(state)
}

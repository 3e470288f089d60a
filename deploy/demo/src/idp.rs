//! `exchange-demo idp`: the development OpenID provider
//! (`exchange_trust::dev_oidc`) on its own, for a demo federation that runs
//! elsewhere: the Kubernetes demo overlay's `demo-idp` Deployment, behind
//! the ingress at `https://idp.exchange.example.org`. It serves each agency
//! given at `<base-url>/<agency>` (discovery, JWKS, authorization with
//! PKCE, token, sign-out) with that agency's caseworker and supervisor,
//! and `/healthz` for the probes.
//!
//! Each agency's signing key is made in `--keys-dir` on first start and
//! reused after; the federation file names the provider's `jwks_url`, so
//! the gateway, the nodes and the console follow a new key by themselves.
//! Plain HTTP: TLS is the ingress's. Demo only: anyone who reaches it signs
//! in as any demo user, with no password.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use exchange_schema::{AgencyId, Role};
use exchange_trust::DevIdentityProvider;
use exchange_trust::dev_oidc::{DevClient, DevOpenIdProvider, DevUser};

use crate::CONSOLE_CLIENT_ID;

/// The provider's settings.
#[derive(clap::Args, Debug, Clone)]
pub struct IdpArgs {
    /// The address to listen on (plain HTTP: the ingress terminates TLS).
    #[arg(long, default_value = "127.0.0.1:7600")]
    pub listen: SocketAddr,
    /// The provider's public base URL; each agency's issuer is
    /// `<base-url>/<agency>`, as the federation file's `issuer` says.
    /// https, or http on a loopback address.
    #[arg(long)]
    pub base_url: String,
    /// The federation's token audience (its file's `audience`).
    #[arg(long)]
    pub audience: String,
    /// An agency to serve, by ID (repeat for each). Its users are
    /// `caseworker@<agency>` and `supervisor@<agency>`.
    #[arg(long = "agency", required = true)]
    pub agencies: Vec<String>,
    /// The console's public URL: `<url>/auth/callback` is its one redirect
    /// address and `<url>/` the one after sign-out.
    #[arg(long)]
    pub console_url: String,
    /// The console's client ID.
    #[arg(long, default_value = CONSOLE_CLIENT_ID)]
    pub client_id: String,
    /// Where the agencies' signing keys are kept (made on first start,
    /// readable by the owner only).
    #[arg(long)]
    pub keys_dir: PathBuf,
    /// How long an access token lives, in minutes (1 to 1440).
    #[arg(long, default_value_t = 60)]
    pub token_minutes: u64,
    /// `json` (one object a line, for a log collector; the default) or
    /// `pretty`.
    #[arg(long, value_enum, default_value_t = LogLines::Json)]
    pub log_format: LogLines,
}

/// How the provider writes its log.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLines {
    Json,
    Pretty,
}

impl From<LogLines> for agency_node::config::LogFormat {
    fn from(lines: LogLines) -> Self {
        match lines {
            LogLines::Json => Self::Json,
            LogLines::Pretty => Self::Pretty,
        }
    }
}

/// A URL the provider may be published at, or the console found at:
/// https, or http on loopback.
fn check_url(field: &str, url: &str) -> anyhow::Result<()> {
    let uri: axum::http::Uri = url
        .parse()
        .with_context(|| format!("--{field} {url:?} is not a URL"))?;
    let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => Ok(()),
        (Some("http"), Some(_)) if loopback => Ok(()),
        _ => anyhow::bail!("--{field} must be an https URL (http only on loopback): {url}"),
    }
}

/// The caseworker and the supervisor of `agency`.
pub fn users_of(agency: &AgencyId, name: &str) -> [DevUser; 2] {
    [
        DevUser {
            agency: agency.clone(),
            user: format!("caseworker@{agency}"),
            name: format!("Demo caseworker, {name}"),
            roles: vec![Role::Caseworker],
        },
        DevUser {
            agency: agency.clone(),
            user: format!("supervisor@{agency}"),
            name: format!("Demo supervisor, {name}"),
            roles: vec![Role::Caseworker, Role::Supervisor],
        },
    ]
}

/// The provider the arguments describe, its keys loaded or made.
pub fn provider(args: &IdpArgs) -> anyhow::Result<DevOpenIdProvider> {
    check_url("base-url", &args.base_url)?;
    check_url("console-url", &args.console_url)?;
    anyhow::ensure!(
        (1..=1440).contains(&args.token_minutes),
        "--token-minutes must be between 1 and 1440"
    );
    let base = args.base_url.trim_end_matches('/');
    let console = args.console_url.trim_end_matches('/');
    let mut keys = Vec::new();
    let mut users = Vec::new();
    for agency in &args.agencies {
        let agency =
            AgencyId::parse(agency).map_err(|e| anyhow::anyhow!("--agency {agency:?}: {e}"))?;
        anyhow::ensure!(
            !keys
                .iter()
                .any(|k: &DevIdentityProvider| k.agency() == &agency),
            "--agency {agency} is given twice"
        );
        let key = DevIdentityProvider::load_or_generate(&args.keys_dir, &agency)
            .with_context(|| format!("the signing key of {agency}"))?
            .with_issuer(DevOpenIdProvider::issuer(base, &agency));
        users.extend(users_of(&agency, agency.as_str()));
        keys.push(key);
    }
    Ok(DevOpenIdProvider::new(
        base,
        &args.audience,
        keys,
        vec![DevClient {
            client_id: args.client_id.clone(),
            redirect_uris: vec![format!("{console}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{console}/")],
        }],
        users,
        Duration::from_secs(args.token_minutes * 60),
    ))
}

/// The provider's routes and `/healthz`.
pub fn router(provider: DevOpenIdProvider) -> axum::Router {
    Arc::new(provider)
        .router()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
}

/// Serves the provider until SIGTERM or Ctrl-C.
pub async fn run(args: IdpArgs) -> anyhow::Result<()> {
    let provider = provider(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        base_url = %args.base_url,
        agencies = ?args.agencies,
        "the development OpenID provider is serving (demo only)"
    );
    axum::serve(listener, router(provider))
        .with_graceful_shutdown(exchange_service::shutdown::shutdown_signal())
        .await
        .context("serving the development OpenID provider")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &std::path::Path, base_url: &str) -> IdpArgs {
        IdpArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            base_url: base_url.into(),
            audience: "urn:survivor-exchange".into(),
            agencies: vec!["shelter-north".into(), "clinic-east".into()],
            console_url: "https://console.exchange.example.org".into(),
            client_id: CONSOLE_CLIENT_ID.into(),
            keys_dir: dir.to_path_buf(),
            token_minutes: 60,
            log_format: LogLines::Json,
        }
    }

    async fn serve(args: &IdpArgs) -> (String, tokio::task::JoinHandle<()>) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = router(provider(args).unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{address}"), task)
    }

    async fn json(url: String) -> serde_json::Value {
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    /// Each agency's issuer is `<base-url>/<agency>`, its discovery and JWKS
    /// are served there, its key is made once and kept across restarts (the
    /// same `kid` after a restart on the same directory), and the probes
    /// have `/healthz`.
    #[tokio::test]
    async fn each_agency_is_served_at_its_issuer_with_a_key_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let base = "https://idp.exchange.example.org";
        let (at, task) = serve(&args(dir.path(), base)).await;
        let discovery = json(format!("{at}/clinic-east/.well-known/openid-configuration")).await;
        assert_eq!(discovery["issuer"], format!("{base}/clinic-east"));
        assert_eq!(
            discovery["authorization_endpoint"],
            format!("{base}/clinic-east/authorize")
        );
        let jwks = json(format!("{at}/shelter-north/jwks")).await;
        let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        let other = json(format!("{at}/clinic-east/jwks")).await;
        assert_ne!(other["keys"][0]["kid"].as_str().unwrap(), kid);
        let unknown = reqwest::get(format!("{at}/legal-aid-city/jwks"))
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        let health = reqwest::get(format!("{at}/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
        task.abort();

        let (again, _task) = serve(&args(dir.path(), base)).await;
        let jwks = json(format!("{again}/shelter-north/jwks")).await;
        assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    }

    /// The Kubernetes demo overlay's `demo-idp` is started with arguments
    /// that agree with the overlay's federation file (each agency's issuer
    /// and `jwks_url` are the provider's, the audience is the federation's)
    /// and with its console (the console's public URL, client ID and
    /// agencies).
    #[test]
    fn the_kubernetes_demo_provider_agrees_with_the_overlays_federation_and_console() {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: IdpArgs,
        }
        let overlay =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kubernetes/overlays/demo");
        let manifest = std::fs::read_to_string(overlay.join("idp/idp.yaml")).unwrap();
        let mut argv = vec!["idp".to_owned()];
        argv.extend(
            manifest
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- --"))
                .map(|a| format!("--{a}")),
        );
        let args = <Command as clap::Parser>::try_parse_from(&argv)
            .expect("the manifest's arguments parse")
            .args;
        let federation: exchange_trust::federation::FederationFile = toml::from_str(
            &std::fs::read_to_string(overlay.join("federation/federation.toml")).unwrap(),
        )
        .unwrap();
        assert_eq!(args.audience, federation.audience);
        let served: Vec<&str> = args.agencies.iter().map(String::as_str).collect();
        let listed: Vec<&str> = federation.agencies.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(served, listed);
        for agency in &federation.agencies {
            let issuer = format!("{}/{}", args.base_url, agency.id);
            assert_eq!(agency.issuer, issuer);
            assert_eq!(
                agency.keys[0].jwks_url.as_deref(),
                Some(format!("{issuer}/jwks").as_str())
            );
        }
        let console: toml::Table =
            toml::from_str(&std::fs::read_to_string(overlay.join("shared/console.toml")).unwrap())
                .unwrap();
        assert_eq!(
            console["public_url"].as_str(),
            Some(args.console_url.as_str())
        );
        for sign_in in console["sign_in"].as_array().unwrap() {
            assert_eq!(sign_in["client_id"].as_str(), Some(args.client_id.as_str()));
            assert!(served.contains(&sign_in["agency"].as_str().unwrap()));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut args = args;
        args.keys_dir = dir.path().to_path_buf();
        provider(&args).expect("the manifest's provider starts");
    }

    /// Addresses that would send a browser's code over plain HTTP, an
    /// agency named twice or malformed, and silly lifetimes are refused.
    #[test]
    fn bad_arguments_are_refused_with_their_flag_named() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |change: &dyn Fn(&mut IdpArgs)| {
            let mut a = args(dir.path(), "https://idp.example.org");
            change(&mut a);
            format!("{:#}", provider(&a).unwrap_err())
        };
        assert!(refused(&|a| a.base_url = "http://idp.example.org".into()).contains("--base-url"));
        assert!(refused(&|a| a.console_url = "ftp://c".into()).contains("--console-url"));
        assert!(refused(&|a| a.agencies.push("clinic-east".into())).contains("twice"));
        assert!(refused(&|a| a.agencies.push("No Such".into())).contains("--agency"));
        assert!(refused(&|a| a.token_minutes = 0).contains("--token-minutes"));
        let mut loopback = args(dir.path(), "http://127.0.0.1:7600");
        loopback.console_url = "http://127.0.0.1:7500".into();
        assert!(provider(&loopback).is_ok());
    }
}

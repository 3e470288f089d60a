//! The console's integration suite: a real federation (nodes and gateway on
//! loopback, from the test kit), the development OpenID provider serving
//! every agency's issuer, and the console between a scripted browser and
//! the gateway. Cookies and redirects are followed by hand so that each
//! step of the sign-in is visible to the assertions.

mod break_glass;
mod browser;
mod casework;
mod keeping;
mod notices;
mod oidc_provider;
mod replicas;
mod rights;
mod sign_in;

use std::sync::Arc;
use std::time::Duration;

use exchange_console::Application;
use exchange_console::config::{ConsoleConfig, SessionConfig, SignInConfig};
use exchange_schema::{AgencyId, Role};
use exchange_test_kit::federation::{AUDIENCE, Options, TestFederation};
use exchange_trust::dev_oidc::{DevClient, DevOpenIdProvider, DevUser};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::net::TcpListener;

/// A federation, its identity provider and a console.
pub struct Harness {
    pub federation: TestFederation,
    pub console: String,
    /// The console's metrics listener (`/metrics`).
    pub metrics: String,
    pub provider: String,
    pub state: Arc<exchange_console::ConsoleState>,
    /// The console's configuration, for another replica of it.
    pub config: ConsoleConfig,
    /// The oidc-provider process, when that is the provider (killed on drop).
    _provider_process: Option<tokio::process::Child>,
}

/// Which identity provider serves the agencies' issuers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityProvider {
    /// The project's development provider (`exchange_trust::dev_oidc`).
    Development,
    /// panva's oidc-provider from npm (`console/tests/js/provider.mjs`).
    OidcProvider,
}

/// The users of the tests: a caseworker and a supervisor at each agency
/// that signs in.
fn users() -> Vec<DevUser> {
    ["shelter-north", "clinic-east"]
        .into_iter()
        .flat_map(|agency| {
            let id = AgencyId::parse(agency).expect("agency");
            [
                DevUser {
                    agency: id.clone(),
                    user: format!("caseworker@{agency}"),
                    name: format!("Caseworker of {agency}"),
                    roles: vec![Role::Caseworker],
                },
                DevUser {
                    agency: id,
                    user: format!("supervisor@{agency}"),
                    name: format!("Supervisor of {agency}"),
                    roles: vec![Role::Caseworker, Role::Supervisor],
                },
            ]
        })
        .collect()
}

pub const CLIENT_ID: &str = "exchange-console";

impl Harness {
    /// A harness on the development provider.
    pub async fn start() -> Self {
        Self::start_with(IdentityProvider::Development, SessionConfig::default()).await
    }

    pub async fn start_with(kind: IdentityProvider, session: SessionConfig) -> Self {
        Self::start_with_token_ttl(kind, session, Duration::from_secs(600)).await
    }

    /// A harness whose provider issues access tokens living `token_ttl`.
    pub async fn start_with_token_ttl(
        kind: IdentityProvider,
        session: SessionConfig,
        token_ttl: Duration,
    ) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let provider_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let provider_address = provider_listener.local_addr().expect("addr");
        let provider = format!("http://{provider_address}");
        let federation = TestFederation::start_with(Options {
            issuer_base: Some(provider.clone()),
            ..Options::default()
        })
        .await;
        let console_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let console = format!("http://{}", console_listener.local_addr().expect("addr"));
        let mut provider_process = None;
        match kind {
            IdentityProvider::Development => {
                let op = Arc::new(DevOpenIdProvider::new(
                    &provider,
                    AUDIENCE,
                    federation.dev.providers.clone(),
                    vec![DevClient {
                        client_id: CLIENT_ID.into(),
                        redirect_uris: vec![format!("{console}/auth/callback")],
                        post_logout_redirect_uris: vec![format!("{console}/")],
                    }],
                    users(),
                    token_ttl,
                ));
                tokio::spawn(async move {
                    let _ = axum::serve(provider_listener, op.router()).await;
                });
            }
            IdentityProvider::OidcProvider => {
                // The node process takes the port over.
                drop(provider_listener);
                provider_process = Some(
                    oidc_provider::spawn(&federation, provider_address.port(), &console).await,
                );
            }
        }
        let config = ConsoleConfig {
            listen: console_listener.local_addr().expect("addr"),
            public_url: console.clone(),
            gateway_url: format!("{}/graphql", federation.gateway_base),
            federation_file: federation.dev.path.clone(),
            sign_in: ["shelter-north", "clinic-east"]
                .into_iter()
                .map(|agency| SignInConfig {
                    agency: agency.into(),
                    client_id: CLIENT_ID.into(),
                    client_secret_file: None,
                    scopes: Vec::new(),
                    extra_parameters: Default::default(),
                    portal_url: Some(format!("{}/", federation.node(agency).portal)),
                })
                .collect(),
            session,
            log_format: Default::default(),
            ca_file: None,
            metrics: exchange_service::config::MetricsConfig {
                listen: Some("127.0.0.1:0".parse().expect("address")),
            },
        };
        let app = Application::build_with_listener(config.clone(), console_listener)
            .await
            .expect("console");
        let state = app.state();
        let metrics = format!(
            "http://{}",
            app.metrics_address().expect("metrics listener")
        );
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            federation,
            console,
            metrics,
            provider,
            state,
            config,
            _provider_process: provider_process,
        }
    }

    /// Another replica of the console, with `config` (the harness's, by
    /// default) on a port of its own: its base URL and its state. Both
    /// keep the first console's public URL, as replicas behind one address
    /// do.
    pub async fn replica(
        &self,
        config: ConsoleConfig,
    ) -> (String, Arc<exchange_console::ConsoleState>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = Application::build_with_listener(
            ConsoleConfig {
                metrics: Default::default(),
                ..config
            },
            listener,
        )
        .await
        .expect("another console");
        let state = app.state();
        tokio::spawn(app.run_until(std::future::pending()));
        (base, state)
    }

    /// A browser signed in at `agency` as `user` through the provider.
    pub async fn signed_in(&self, agency: &str, user: &str) -> Browser {
        let mut browser = self.browser();
        let landed = browser.sign_in(agency, user).await;
        assert_eq!(landed.status, 303, "{landed:?}");
        browser
    }

    /// A browser with no cookies.
    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
            provider_cookies: Default::default(),
            console: self.console.clone(),
        }
    }
}

/// A scripted browser: one cookie (the console's session), redirects by hand.
pub struct Browser {
    client: reqwest::Client,
    pub cookie: Option<String>,
    /// The identity provider's cookies (its session and interaction).
    provider_cookies: std::collections::BTreeMap<String, String>,
    console: String,
}

/// One answer: status, `Location`, the error-code header and the body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub code: Option<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        let end = self.body[start..].find('"').expect("end of token") + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    /// The same browser (its session cookie) sent to another replica of
    /// the console at `console`.
    pub fn at(&self, console: &str) -> Browser {
        Browser {
            client: self.client.clone(),
            cookie: self.cookie.clone(),
            provider_cookies: self.provider_cookies.clone(),
            console: console.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.console)
        }
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let console_host = self.console.trim_start_matches("http://").to_owned();
        let from_console = response.url().as_str().contains(&console_host);
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie");
            let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            if from_console {
                if name == "console_session" {
                    self.cookie = (!value.is_empty()).then(|| value.to_owned());
                }
            } else if value.is_empty() || text.contains("expires=Thu, 01 Jan 1970") {
                self.provider_cookies.remove(name);
            } else {
                self.provider_cookies
                    .insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().expect("location").to_owned()),
            code: response
                .headers()
                .get("x-exchange-error-code")
                .map(|v| v.to_str().expect("code").to_owned()),
            body: response.text().await.expect("body"),
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
        if url.starts_with(&self.console) {
            match &self.cookie {
                Some(cookie) => request.header(COOKIE, format!("console_session={cookie}")),
                None => request,
            }
        } else if self.provider_cookies.is_empty() {
            request
        } else {
            let jar: Vec<String> = self
                .provider_cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request.header(COOKIE, jar.join("; "))
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let url = self.url(path);
        let request = self.with_cookie(self.client.get(&url), &url);
        let response = request.send().await.expect("GET");
        self.read(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = self.url(path);
        let request = self.with_cookie(self.client.post(&url).form(form), &url);
        let response = request.send().await.expect("POST");
        self.read(response).await
    }

    /// POST of owned pairs (a form read from a page).
    pub async fn post_pairs(&mut self, url: &str, fields: &[(String, String)]) -> Page {
        let url = self.url(url);
        let request = self.with_cookie(self.client.post(&url).form(fields), &url);
        let response = request.send().await.expect("POST");
        self.read(response).await
    }

    /// POST with extra headers (a forged origin, for the refusals).
    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let url = self.url(path);
        let mut request = self.with_cookie(self.client.post(&url).form(form), &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("POST");
        self.read(response).await
    }

    /// Signs in at `agency` through the provider, choosing `user`: the
    /// console's answer to the callback.
    pub async fn sign_in(&mut self, agency: &str, user: &str) -> Page {
        let start = self.get("/").await;
        let csrf = start.csrf();
        let to_provider = self
            .post("/sign-in", &[("csrf", &csrf), ("agency", agency)])
            .await;
        assert_eq!(to_provider.status, 303, "{to_provider:?}");
        let authorize = to_provider.location.expect("authorization URL");
        let form = self.get(&authorize).await;
        assert_eq!(form.status, 200, "{}", form.body);
        // The provider's page posts the same parameters back with the user.
        let query = authorize.split_once('?').expect("query").1;
        let mut fields: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.push(("user".into(), user.into()));
        let post_url = authorize.split_once('?').expect("query").0.to_owned();
        let back = self.post_pairs(&post_url, &fields).await;
        assert_eq!(back.status, 303, "{}", back.body);
        let callback = back.location.expect("callback");
        self.get(&callback).await
    }
}

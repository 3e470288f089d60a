//! A development OpenID provider for the demo and the console's tests: the
//! authorization code flow with PKCE (S256 only), one issuer per agency at
//! `<base>/<agency>`, signing with that agency's development key
//! ([`DevIdentityProvider`]), so the access tokens it issues are exactly the
//! tokens the gateway and the nodes verify.
//!
//! Sign-in is a page listing the agency's demo users: choose one, no
//! password. Codes are single use and live 60 seconds; there are no refresh
//! tokens. RP-initiated logout redirects only to a registered address.
//! Never run it in production: anyone who can reach it can sign in as any
//! demo user. Built only with the `dev-oidc` feature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, Role};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::dev::{DevIdentityProvider, mint_with_key};

/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// Most codes outstanding at once; beyond it the request is refused.
const MAX_CODES: usize = 10_000;

/// A client (relying party) the provider knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevClient {
    pub client_id: String,
    /// Exact redirect URIs accepted for the code.
    pub redirect_uris: Vec<String>,
    /// Exact addresses accepted after sign-out.
    pub post_logout_redirect_uris: Vec<String>,
}

/// A demo user of one agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevUser {
    pub agency: AgencyId,
    /// The `sub` claim.
    pub user: String,
    /// The `name` claim, shown on the sign-in page.
    pub name: String,
    pub roles: Vec<Role>,
}

#[derive(Debug)]
struct IssuedCode {
    agency: AgencyId,
    user: DevUser,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    issued: Instant,
}

/// The provider; serve [`DevOpenIdProvider::router`] at the base URL given.
#[derive(Debug)]
pub struct DevOpenIdProvider {
    base_url: String,
    audience: String,
    providers: HashMap<AgencyId, DevIdentityProvider>,
    clients: Vec<DevClient>,
    users: Vec<DevUser>,
    access_token_ttl: Duration,
    codes: Mutex<HashMap<String, IssuedCode>>,
}

impl DevOpenIdProvider {
    /// The issuer of `agency` at a provider listening at `base_url`.
    pub fn issuer(base_url: &str, agency: &AgencyId) -> String {
        format!("{}/{agency}", base_url.trim_end_matches('/'))
    }

    /// A provider at `base_url` for the agencies of `providers`, whose
    /// issuers must already be [`DevOpenIdProvider::issuer`] (as
    /// `DevFederation::create_with_issuers` makes them). Access tokens carry
    /// `audience` and live `access_token_ttl`.
    pub fn new(
        base_url: &str,
        audience: &str,
        providers: impl IntoIterator<Item = DevIdentityProvider>,
        clients: Vec<DevClient>,
        users: Vec<DevUser>,
        access_token_ttl: Duration,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let providers = providers
            .into_iter()
            .filter(|p| p.issuer() == Self::issuer(&base_url, p.agency()))
            .map(|p| (p.agency().clone(), p))
            .collect();
        Self {
            base_url,
            audience: audience.to_owned(),
            providers,
            clients,
            users,
            access_token_ttl,
            codes: Mutex::new(HashMap::new()),
        }
    }

    /// The demo users, in the order given.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The demo users, in the order given.
    pub fn users(&self) -> &[DevUser] {
        &self.users
    }

    /// The provider's routes.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/{agency}/.well-known/openid-configuration", get(discovery))
            .route("/{agency}/jwks", get(jwks))
            .route("/{agency}/authorize", get(authorize_page).post(authorize))
            .route("/{agency}/token", post(token))
            .route("/{agency}/end-session", get(end_session))
            .with_state(self)
    }

    fn provider(&self, agency: &str) -> Option<&DevIdentityProvider> {
        AgencyId::parse(agency)
            .ok()
            .and_then(|a| self.providers.get(&a))
    }

    fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>Refused</title><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn discovery(
    State(op): State<Arc<DevOpenIdProvider>>,
    Path(agency): Path<String>,
) -> Response {
    let idp = match op.provider(&agency) {
        Some(idp) => idp,
        None => return refusal(StatusCode::NOT_FOUND, "unknown agency"),
    };
    let issuer = idp.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/end-session"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "name", "agency", "roles"],
    }))
    .into_response()
}

async fn jwks(State(op): State<Arc<DevOpenIdProvider>>, Path(agency): Path<String>) -> Response {
    let idp = match op.provider(&agency) {
        Some(idp) => idp,
        None => return refusal(StatusCode::NOT_FOUND, "unknown agency"),
    };
    Json(json!({ "keys": [{
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": idp.kid(),
        "x": URL_SAFE_NO_PAD.encode(idp.public_key_raw()),
    }]}))
    .into_response()
}

/// The parameters of an authorization request, also carried by the form
/// that chooses a user.
#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Only in the form: the chosen user.
    user: Option<String>,
}

impl AuthorizeParams {
    /// Checks the request; the error is shown to the user, never redirected
    /// (a development provider need not follow the redirect-with-error rule).
    fn check(&self, op: &DevOpenIdProvider) -> Result<(), &'static str> {
        if self.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        let client = self
            .client_id
            .as_deref()
            .and_then(|id| op.client(id))
            .ok_or("unknown client_id")?;
        let redirect = self.redirect_uri.as_deref().ok_or("redirect_uri missing")?;
        if !client.redirect_uris.iter().any(|r| r == redirect) {
            return Err("redirect_uri is not registered for this client");
        }
        if !self
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
        {
            return Err("scope must include openid");
        }
        if self.code_challenge_method.as_deref() != Some("S256")
            || self.code_challenge.as_deref().is_none_or(str::is_empty)
        {
            return Err("PKCE with S256 is required");
        }
        Ok(())
    }

    fn hidden_fields(&self) -> String {
        let fields = [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ];
        fields
            .iter()
            .filter_map(|(name, value)| {
                value.as_ref().map(|v| {
                    format!(
                        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                        escape(v)
                    )
                })
            })
            .collect()
    }
}

async fn authorize_page(
    State(op): State<Arc<DevOpenIdProvider>>,
    Path(agency): Path<String>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    let idp = match op.provider(&agency) {
        Some(idp) => idp,
        None => return refusal(StatusCode::NOT_FOUND, "unknown agency"),
    };
    if let Err(message) = params.check(&op) {
        return refusal(StatusCode::BAD_REQUEST, message);
    }
    let hidden = params.hidden_fields();
    let buttons: String = op
        .users
        .iter()
        .filter(|u| &u.agency == idp.agency())
        .map(|u| {
            let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
            format!(
                "<li><button type=\"submit\" name=\"user\" value=\"{}\">{} ({})</button></li>",
                escape(&u.user),
                escape(&u.name),
                roles.join(", ")
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Development sign-in: {agency}</title></head><body><main>\
         <h1>Development sign-in for {agency}</h1>\
         <p>This is the demo's own identity provider. Choose a demo user; there is no password.</p>\
         <form method=\"post\">{hidden}<ul>{buttons}</ul></form></main></body></html>",
        agency = escape(idp.agency().as_str()),
    ))
    .into_response()
}

async fn authorize(
    State(op): State<Arc<DevOpenIdProvider>>,
    Path(agency): Path<String>,
    Form(params): Form<AuthorizeParams>,
) -> Response {
    let idp = match op.provider(&agency) {
        Some(idp) => idp,
        None => return refusal(StatusCode::NOT_FOUND, "unknown agency"),
    };
    if let Err(message) = params.check(&op) {
        return refusal(StatusCode::BAD_REQUEST, message);
    }
    let Some(user) = params
        .user
        .as_deref()
        .and_then(|name| {
            op.users
                .iter()
                .find(|u| u.user == name && &u.agency == idp.agency())
        })
        .cloned()
    else {
        return refusal(StatusCode::BAD_REQUEST, "choose one of the agency's users");
    };
    let code = random_token();
    {
        let mut codes = op.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
        if codes.len() >= MAX_CODES {
            return refusal(StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins at once");
        }
        codes.insert(
            code.clone(),
            IssuedCode {
                agency: idp.agency().clone(),
                user,
                client_id: params.client_id.clone().unwrap_or_default(),
                redirect_uri: params.redirect_uri.clone().unwrap_or_default(),
                code_challenge: params.code_challenge.clone().unwrap_or_default(),
                nonce: params.nonce.clone(),
                issued: Instant::now(),
            },
        );
    }
    let mut target = params.redirect_uri.clone().unwrap_or_default();
    target.push(if target.contains('?') { '&' } else { '?' });
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("code", &code);
    if let Some(state) = &params.state {
        query.append_pair("state", state);
    }
    target.push_str(&query.finish());
    Redirect::to(&target).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
}

async fn token(
    State(op): State<Arc<DevOpenIdProvider>>,
    Path(agency): Path<String>,
    Form(params): Form<TokenParams>,
) -> Response {
    let idp = match op.provider(&agency) {
        Some(idp) => idp,
        None => return oauth_error("invalid_request", "unknown agency"),
    };
    if params.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error("unsupported_grant_type", "only authorization_code");
    }
    let issued = {
        let mut codes = op.codes.lock().unwrap_or_else(|p| p.into_inner());
        params.code.as_deref().and_then(|c| codes.remove(c))
    };
    let Some(issued) = issued.filter(|c| c.issued.elapsed() < CODE_LIFETIME) else {
        return oauth_error("invalid_grant", "unknown, used or expired code");
    };
    if &issued.agency != idp.agency()
        || params.client_id.as_deref() != Some(issued.client_id.as_str())
        || params.redirect_uri.as_deref() != Some(issued.redirect_uri.as_str())
    {
        return oauth_error("invalid_grant", "the code was issued for another request");
    }
    let challenge = params
        .code_verifier
        .as_deref()
        .map(|v| URL_SAFE_NO_PAD.encode(digest(&SHA256, v.as_bytes())));
    if challenge.as_deref() != Some(issued.code_challenge.as_str()) {
        return oauth_error("invalid_grant", "code_verifier does not match");
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let ttl = op.access_token_ttl.as_secs() as i64;
    let roles: Vec<&str> = issued.user.roles.iter().map(|r| r.as_str()).collect();
    let access = json!({
        "iss": idp.issuer(),
        "sub": issued.user.user,
        "aud": op.audience,
        "iat": now,
        "exp": now + ttl,
        "agency": issued.agency.as_str(),
        "roles": roles,
    });
    let mut id = json!({
        "iss": idp.issuer(),
        "sub": issued.user.user,
        "aud": issued.client_id,
        "iat": now,
        "exp": now + ttl,
        "name": issued.user.name,
        "agency": issued.agency.as_str(),
        "roles": roles,
    });
    if let Some(nonce) = issued.nonce {
        id["nonce"] = nonce.into();
    }
    let signed = mint_with_key(idp.signing_key(), &access)
        .and_then(|a| mint_with_key(idp.signing_key(), &id).map(|i| (a, i)));
    let (access_token, id_token) = match signed {
        Ok(tokens) => tokens,
        Err(_) => return oauth_error("server_error", "signing failed"),
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "id_token": id_token,
            "scope": "openid",
        })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct EndSessionParams {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn end_session(
    State(op): State<Arc<DevOpenIdProvider>>,
    Path(agency): Path<String>,
    Query(params): Query<EndSessionParams>,
) -> Response {
    if op.provider(&agency).is_none() {
        return refusal(StatusCode::NOT_FOUND, "unknown agency");
    }
    if let Some(target) = params.post_logout_redirect_uri.as_deref()
        && op
            .clients
            .iter()
            .any(|c| c.post_logout_redirect_uris.iter().any(|r| r == target))
    {
        let mut target = target.to_owned();
        if let Some(state) = &params.state {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .finish(),
            );
        }
        return Redirect::to(&target).into_response();
    }
    Html("<!doctype html><html lang=\"en\"><title>Signed out</title><p>You are signed out.</p></html>")
        .into_response()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not recoverable for a security token.
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_request_without_pkce_or_with_an_unregistered_redirect_is_refused() {
        let op = DevOpenIdProvider::new(
            "http://127.0.0.1:1",
            "aud",
            [],
            vec![DevClient {
                client_id: "console".into(),
                redirect_uris: vec!["http://127.0.0.1:2/auth/callback".into()],
                post_logout_redirect_uris: vec![],
            }],
            vec![],
            Duration::from_secs(60),
        );
        let good = || AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("console".into()),
            redirect_uri: Some("http://127.0.0.1:2/auth/callback".into()),
            scope: Some("openid profile".into()),
            state: Some("s".into()),
            nonce: Some("n".into()),
            code_challenge: Some("c".into()),
            code_challenge_method: Some("S256".into()),
            user: None,
        };
        assert_eq!(good().check(&op), Ok(()));
        let mut plain = good();
        plain.code_challenge_method = Some("plain".into());
        assert_eq!(plain.check(&op), Err("PKCE with S256 is required"));
        let mut elsewhere = good();
        elsewhere.redirect_uri = Some("http://127.0.0.1:2/auth/callback/x".into());
        assert_eq!(
            elsewhere.check(&op),
            Err("redirect_uri is not registered for this client")
        );
        let mut no_openid = good();
        no_openid.scope = Some("profile".into());
        assert_eq!(no_openid.check(&op), Err("scope must include openid"));
    }
}

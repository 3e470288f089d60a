//! The survivor consent portal, served by each node on its own listener.
//!
//! A survivor signs in with the consent code their agency gave them and a
//! PIN they chose ([`credentials`]); sees in plain language who may see which
//! parts of their record, for what and until when, who looked at it (from
//! the node's audit log, break-glass marked) and where their referrals
//! stand; gives and withdraws consent, each after a confirmation step and
//! each with a signed receipt to download ([`crate::receipt`]).
//!
//! Safety, as survivor-facing services expect: a quick exit on every page
//! that ends the session and leaves for a neutral site; no third-party
//! resources and no JavaScript; a strict Content-Security-Policy; a CSRF
//! token on every form, plus Origin and Fetch-Metadata checks; session
//! cookies `HttpOnly; Secure; SameSite=Strict`; nothing secret in a URL.
//! Every page is in English, Spanish, French or Arabic (right-to-left).
//!
//! The survivor acting on their own record needs no policy decision: the
//! node owns the record and the survivor is its subject. Everything the
//! portal changes goes through [`exchange_audit::AuditLog::record`] like any
//! other change, with `survivor` as the actor.

mod case;
mod consent;
pub mod credentials;
pub mod i18n;
mod overview;
pub mod pages;
mod rights;
pub mod session;
mod sign_in;
mod statistics;
pub mod throttle;

use case::*;
use consent::*;
use overview::*;
use rights::*;
use sign_in::*;
use statistics::*;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use exchange_schema::audit::now_millis;
use exchange_schema::{AgencyId, AuditKind, Category, ConsentMethod, Decision, GlobalId, Purpose};
use serde::Deserialize;
use time::{Date, OffsetDateTime, Time};

use crate::config::PortalConfig;
use crate::error::NodeError;
use crate::receipt::{self, ConsentEvent};
use crate::state::NodeState;
use crate::store::grants::ConsentGrantRecord;
use crate::store::{self, grants, new_local_id};
use credentials::{SignInOutcome, survivor_event, valid_pin};
use i18n::Lang;
use pages::*;
use session::{SESSION_COOKIE, Session, SessionStore, SignedIn, csrf_matches};

/// The header naming the stable error code of a refused portal request.
pub const ERROR_CODE_HEADER: &str = "x-exchange-error-code";
/// Largest form the portal accepts.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Purposes a survivor can grant (the owner's own purposes, audit and
/// emergency are not consent matters).
pub const GRANTABLE_PURPOSES: [Purpose; 6] = [
    Purpose::Referral,
    Purpose::ServiceCoordination,
    Purpose::ShelterPlacement,
    Purpose::LegalAssistance,
    Purpose::HealthCare,
    Purpose::Investigation,
];
/// The strict policy: only the portal's own stylesheet, no scripts at all.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's state.
pub struct Portal {
    node: Arc<NodeState>,
    sessions: SessionStore,
    config: PortalConfig,
    throttle: throttle::SignInThrottle,
}

/// The portal's routes, with its security headers on every response.
pub fn router(node: Arc<NodeState>, config: PortalConfig) -> Router {
    let hsts = config.tls.is_some();
    let portal = Arc::new(Portal {
        sessions: SessionStore::new(
            node.db.clone(),
            Duration::from_secs(config.session_idle_minutes * 60),
        ),
        throttle: throttle::SignInThrottle::new(&node.node_key, &config),
        node,
        config,
    });
    Router::new()
        .route("/", get(start))
        .route("/sign-in", post(sign_in))
        .route("/pin", get(choose_pin_page).post(choose_pin))
        .route("/home", get(home))
        .route("/grant", get(grant_form).post(grant_review))
        .route("/grant/confirm", post(grant_confirm))
        .route("/revoke", post(revoke_review))
        .route("/revoke/confirm", post(revoke_confirm))
        .route("/receipts/{id}", get(download_receipt))
        .route("/my-record.json", get(download_everything))
        .route("/my-record", get(my_record))
        .route("/requests", post(request_review))
        .route("/requests/confirm", post(request_confirm))
        .route("/statistics-choice", post(statistics_choice))
        .route("/plan/agree", post(plan_agree_review))
        .route("/plan/agree/confirm", post(plan_agree_confirm))
        .route("/plan/change", post(plan_change))
        .route("/sign-out", post(sign_out))
        .route("/exit", get(quick_exit))
        .route("/static/portal.css", get(stylesheet))
        // The same probes as the node's API listener, on the listener an
        // orchestrator reaches without a client certificate.
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(
            move |response: Response| async move { security_headers(response, hsts) },
        ))
        .with_state(portal)
}

/// Ready only while a durable write to the node's audit log succeeds (as
/// the API listener's `/readyz`).
async fn ready(State(portal): State<Arc<Portal>>) -> Response {
    if portal.node.audit.probe().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log cannot be written",
        )
            .into_response()
    }
}

fn security_headers(mut response: Response, hsts: bool) -> Response {
    let too_large = response.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set("content-security-policy", CONTENT_SECURITY_POLICY);
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    // `same-origin`, not `no-referrer`: browsers then send `Origin: null` on
    // form posts, which would defeat the Origin check. Nothing leaves the site.
    set("referrer-policy", "same-origin");
    set("cache-control", "no-store");
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set(
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    if hsts {
        set("strict-transport-security", "max-age=31536000");
    }
    // The body limit answers before any handler: give it its code too.
    if too_large {
        set(ERROR_CODE_HEADER, "PAYLOAD_TOO_LARGE");
    }
    response
}

// ---------------------------------------------------------------------------
// Sessions, language and responses

/// One request's session and language.
struct Visit {
    token: String,
    session: Session,
    /// The session was created by this request: its cookie must be set.
    new_cookie: bool,
    lang: Lang,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl Portal {
    /// The visitor's session (made when there is none), or the error page
    /// when the session store cannot be read or written.
    async fn visit(
        &self,
        headers: &HeaderMap,
        lang_choice: Option<&str>,
    ) -> Result<Visit, Response> {
        let chosen = lang_choice.and_then(Lang::parse);
        let negotiated = || {
            Lang::negotiate(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        };
        let stored = async {
            let existing = match cookie_token(headers) {
                Some(token) => self.sessions.get(&token).await?.map(|s| (token, s)),
                None => None,
            };
            let (token, mut session, new_cookie) = match existing {
                Some((token, session)) => (token, session, false),
                None => {
                    let (token, session) = self.sessions.create(chosen, None).await?;
                    (token, session, true)
                }
            };
            if let Some(lang) = chosen
                && session.lang != Some(lang)
            {
                self.sessions.set_lang(&token, lang).await?;
                session.lang = Some(lang);
            }
            Ok::<_, sqlx::Error>((token, session, new_cookie))
        }
        .await;
        match stored {
            Ok((token, session, new_cookie)) => {
                let lang = session.lang.unwrap_or_else(negotiated);
                Ok(Visit {
                    token,
                    session,
                    new_cookie,
                    lang,
                })
            }
            Err(err) => {
                let visit = Visit {
                    token: String::new(),
                    session: Session::transient(chosen),
                    new_cookie: false,
                    lang: chosen.unwrap_or_else(negotiated),
                };
                Err(error_page(self, &visit, NodeError::from(err).into()))
            }
        }
    }

    fn chrome(&self, visit: &Visit, picker_action: &str) -> Chrome {
        Chrome {
            lang: visit.lang,
            csrf: visit.session.csrf_token.clone(),
            signed_in: visit.session.signed_in.is_some(),
            agency_name: self.agency_name(&self.node.agency),
            picker_action: picker_action.to_owned(),
        }
    }

    fn agency_name(&self, id: &AgencyId) -> String {
        self.node
            .federation
            .agency(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone())
    }

    /// The signed-in survivor, if the session has one whose code is still
    /// the survivor's current code and whose PIN is chosen.
    async fn survivor(&self, visit: &Visit) -> Result<Option<SignedIn>, NodeError> {
        let Some(who) = visit.session.signed_in.clone() else {
            return Ok(None);
        };
        let mut conn = self.node.db.pool().acquire().await?;
        let current = store::portal::for_survivor(&mut conn, &who.survivor_id)
            .await
            .map_err(NodeError::internal)?;
        if current.is_none_or(|c| c.issued_at != who.code_issued_at) {
            // A new code was issued: every session of the old one ends.
            self.sessions.sign_out_survivor(&who.survivor_id).await?;
            return Ok(None);
        }
        Ok(who.pin_chosen.then_some(who))
    }

    /// The signed-in survivor, or the response for a visitor who is not
    /// one: back to the sign-in page (or the error page).
    async fn signed_in(&self, visit: &Visit) -> Result<SignedIn, Response> {
        match self.survivor(visit).await {
            Ok(Some(who)) => Ok(who),
            Ok(None) => Err(redirect("/", None)),
            Err(err) => Err(error_page(self, visit, err.into())),
        }
    }
}

fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

fn expired_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

fn html(visit: &Visit, status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response();
            if visit.new_cookie
                && let Ok(value) = HeaderValue::from_str(&session_cookie(&visit.token))
            {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "portal template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Some(cookie) = cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Why a portal request was refused, with its stable code.
#[derive(Debug, thiserror::Error)]
enum PortalError {
    #[error("CSRF_TOKEN_INVALID")]
    Csrf,
    #[error("NOT_FOUND")]
    NotFound,
    #[error("CONFLICT")]
    Conflict,
    #[error("BAD_USER_INPUT")]
    BadInput,
    /// The audit log cannot be written (a storage fault): nothing was
    /// done, and the survivor may try again.
    #[error("AUDIT_UNAVAILABLE")]
    Unavailable,
    #[error("INTERNAL_SERVER_ERROR")]
    Internal,
}

impl PortalError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::BadInput => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Csrf => "CSRF_TOKEN_INVALID",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::BadInput => "BAD_USER_INPUT",
            Self::Unavailable => "AUDIT_UNAVAILABLE",
            Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    fn message_id(&self) -> &'static str {
        match self {
            Self::Csrf => "error-csrf",
            Self::NotFound => "error-not-found",
            Self::Conflict => "error-conflict",
            Self::BadInput => "error-bad-input",
            Self::Unavailable => "error-unavailable",
            Self::Internal => "error-internal",
        }
    }
}

impl From<NodeError> for PortalError {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::NotFound(_) => Self::NotFound,
            NodeError::Conflict(_) => Self::Conflict,
            NodeError::BadInput(_) => Self::BadInput,
            NodeError::AuditUnavailable(source) => {
                tracing::warn!(error = ?source, "portal request refused: the audit log cannot be written");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = ?other, "portal request failed");
                Self::Internal
            }
        }
    }
}

fn error_page(portal: &Portal, visit: &Visit, err: PortalError) -> Response {
    let chrome = portal.chrome(visit, "/");
    let message = chrome.t(err.message_id());
    let mut response = html(
        visit,
        err.status(),
        ErrorPage {
            chrome,
            code: err.code(),
            message,
        },
    );
    response
        .headers_mut()
        .insert(ERROR_CODE_HEADER, HeaderValue::from_static(err.code()));
    response
}

fn with_code(mut response: Response, code: &'static str) -> Response {
    response
        .headers_mut()
        .insert(ERROR_CODE_HEADER, HeaderValue::from_static(code));
    response
}

/// A submitted form (`application/x-www-form-urlencoded`), which may repeat
/// a field (checkboxes).
struct FormFields(Vec<(String, String)>);

impl FormFields {
    fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A form post from this site: the session's CSRF token, and no sign of a
/// cross-site origin.
fn checked_form(
    visit: &Visit,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FormFields, PortalError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(PortalError::Csrf);
    }
    if let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        let origin = origin.to_str().unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host != host.to_str().unwrap_or_default() {
            return Err(PortalError::Csrf);
        }
    }
    let form = FormFields::parse(body);
    if visit.new_cookie || !csrf_matches(&visit.session, form.get("csrf")) {
        return Err(PortalError::Csrf);
    }
    Ok(form)
}

// ---------------------------------------------------------------------------
// Words for the closed lists

fn message_id(prefix: &str, wire: &str) -> String {
    format!("{prefix}-{}", wire.to_ascii_lowercase().replace('_', "-"))
}

fn category_text(chrome: &Chrome, c: Category) -> String {
    chrome.t(&message_id("category", c.as_str()))
}

fn purpose_text(chrome: &Chrome, p: Purpose) -> String {
    chrome.t(&message_id("purpose", p.as_str()))
}

fn date_text(at: OffsetDateTime) -> String {
    let d = at.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn time_text(at: OffsetDateTime) -> String {
    format!("{} {:02}:{:02} UTC", date_text(at), at.hour(), at.minute())
}

fn agency_label(portal: &Portal, chrome: &Chrome, id: &AgencyId) -> String {
    match portal.node.federation.agency(id) {
        Some(a) => format!(
            "{} ({})",
            a.name,
            chrome.t(&message_id("kind", a.kind.as_str()))
        ),
        None => id.to_string(),
    }
}

/// The last day a grant covers (its `valid_until` is the next midnight).
fn until_text(chrome: &Chrome, until: Option<OffsetDateTime>) -> String {
    match until {
        Some(until) => chrome.t1(
            "grant-until",
            "date",
            &date_text(until - time::Duration::milliseconds(1)),
        ),
        None => chrome.t("grant-no-end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_follow_the_wire_names() {
        assert_eq!(
            message_id("purpose", "LEGAL_ASSISTANCE"),
            "purpose-legal-assistance"
        );
        assert_eq!(message_id("kind", "HEALTH_CLINIC"), "kind-health-clinic");
    }

    #[test]
    fn every_closed_list_value_shown_in_the_portal_has_a_message() {
        let english = i18n::message_ids(Lang::En);
        let mut needed = Vec::new();
        needed.extend(
            Category::ALL
                .iter()
                .map(|c| message_id("category", c.as_str())),
        );
        needed.extend(
            Purpose::ALL
                .iter()
                .map(|p| message_id("purpose", p.as_str())),
        );
        needed.extend(
            exchange_schema::AgencyKind::ALL
                .iter()
                .map(|k| message_id("kind", k.as_str())),
        );
        needed.extend(
            exchange_schema::ReferralStatus::ALL
                .iter()
                .map(|s| message_id("referral-status", s.as_str())),
        );
        needed.extend(
            exchange_schema::ServiceKind::ALL
                .iter()
                .map(|s| message_id("service", s.as_str())),
        );
        let missing: Vec<_> = needed.iter().filter(|id| !english.contains(id)).collect();
        assert!(missing.is_empty(), "no message for {missing:?}");
    }

    #[test]
    fn a_form_keeps_repeated_fields() {
        let form = FormFields::parse(b"category=HEALTH&category=LEGAL&csrf=a%2Bb");
        assert_eq!(form.all("category"), vec!["HEALTH", "LEGAL"]);
        assert_eq!(form.get("csrf"), Some("a+b"));
        assert_eq!(form.get("missing"), None);
    }
}

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
//! portal changes goes through [`crate::audit::AuditLog::record`] like any
//! other change, with `survivor` as the actor.

pub mod credentials;
pub mod i18n;
pub mod pages;
pub mod session;

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
}

/// The portal's routes, with its security headers on every response.
pub fn router(node: Arc<NodeState>, config: PortalConfig) -> Router {
    let hsts = config.tls.is_some();
    let portal = Arc::new(Portal {
        sessions: SessionStore::new(Duration::from_secs(config.session_idle_minutes * 60)),
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
        .route("/sign-out", post(sign_out))
        .route("/exit", get(quick_exit))
        .route("/static/portal.css", get(stylesheet))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(
            move |response: Response| async move { security_headers(response, hsts) },
        ))
        .with_state(portal)
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
    fn visit(&self, headers: &HeaderMap, lang_choice: Option<&str>) -> Visit {
        let chosen = lang_choice.and_then(Lang::parse);
        let existing = cookie_token(headers)
            .and_then(|token| self.sessions.get(&token).map(|session| (token, session)));
        let (token, mut session, new_cookie) = match existing {
            Some((token, session)) => (token, session, false),
            None => {
                let (token, session) = self.sessions.create(chosen, None);
                (token, session, true)
            }
        };
        if let Some(lang) = chosen
            && session.lang != Some(lang)
        {
            self.sessions.update(&token, |s| s.lang = Some(lang));
            session.lang = Some(lang);
        }
        let lang = session.lang.unwrap_or_else(|| {
            Lang::negotiate(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        });
        Visit {
            token,
            session,
            new_cookie,
            lang,
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
            self.sessions.sign_out_survivor(&who.survivor_id);
            return Ok(None);
        }
        Ok(who.pin_chosen.then_some(who))
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
    #[error("INTERNAL_SERVER_ERROR")]
    Internal,
}

impl PortalError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Csrf => "CSRF_TOKEN_INVALID",
            Self::NotFound => "NOT_FOUND",
            Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    fn message_id(&self) -> &'static str {
        match self {
            Self::Csrf => "error-csrf",
            Self::NotFound => "error-not-found",
            Self::Internal => "error-internal",
        }
    }
}

impl From<NodeError> for PortalError {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::NotFound(_) => Self::NotFound,
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

// ---------------------------------------------------------------------------
// Sign-in

async fn start(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, q.lang.as_deref());
    if let Some(who) = &visit.session.signed_in {
        return redirect(if who.pin_chosen { "/home" } else { "/pin" }, None);
    }
    let chrome = portal.chrome(&visit, "/");
    html(
        &visit,
        StatusCode::OK,
        SignInPage {
            chrome,
            problem: None,
        },
    )
}

async fn sign_in(State(portal): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let visit = portal.visit(&headers, None);
    let form = match checked_form(&visit, &headers, &body) {
        Ok(form) => form,
        Err(err) => return error_page(&portal, &visit, err),
    };
    let code = form.get("code").unwrap_or_default();
    let pin = form.get("pin").unwrap_or_default();
    let lockout = time::Duration::minutes(portal.config.lockout_minutes as i64);
    let outcome = credentials::sign_in(
        &portal.node,
        code,
        pin,
        portal.config.max_failed_sign_ins,
        lockout,
    )
    .await;
    let chrome = portal.chrome(&visit, "/");
    match outcome {
        Ok(SignInOutcome::SignedIn {
            survivor_id,
            code_issued_at,
            pin_chosen,
        }) => {
            // A fresh session for the signed-in survivor: no fixation.
            portal.sessions.remove(&visit.token);
            let (token, _) = portal.sessions.create(
                visit.session.lang,
                Some(SignedIn {
                    survivor_id,
                    code_issued_at,
                    pin_chosen,
                }),
            );
            redirect(
                if pin_chosen { "/home" } else { "/pin" },
                Some(session_cookie(&token)),
            )
        }
        Ok(SignInOutcome::Refused) => {
            let problem = Some(chrome.t("sign-in-refused"));
            with_code(
                html(
                    &visit,
                    StatusCode::UNAUTHORIZED,
                    SignInPage { chrome, problem },
                ),
                "SIGN_IN_REFUSED",
            )
        }
        Ok(SignInOutcome::Locked(until)) => {
            let problem = Some(chrome.t1("sign-in-locked", "time", &time_text(until)));
            with_code(
                html(
                    &visit,
                    StatusCode::TOO_MANY_REQUESTS,
                    SignInPage { chrome, problem },
                ),
                "CODE_LOCKED",
            )
        }
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

async fn choose_pin_page(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, q.lang.as_deref());
    match &visit.session.signed_in {
        Some(who) if !who.pin_chosen => {
            let chrome = portal.chrome(&visit, "/pin");
            html(
                &visit,
                StatusCode::OK,
                ChoosePinPage {
                    chrome,
                    problem: None,
                },
            )
        }
        _ => redirect("/", None),
    }
}

async fn choose_pin(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = portal.visit(&headers, None);
    let form = match checked_form(&visit, &headers, &body) {
        Ok(form) => form,
        Err(err) => return error_page(&portal, &visit, err),
    };
    let Some(who) = visit.session.signed_in.clone().filter(|w| !w.pin_chosen) else {
        return redirect("/", None);
    };
    let pin = form.get("pin").unwrap_or_default();
    let again = form.get("pin_again").unwrap_or_default();
    let chrome = portal.chrome(&visit, "/pin");
    let problem = if !valid_pin(pin) {
        Some(chrome.t("pin-invalid"))
    } else if pin != again {
        Some(chrome.t("pin-mismatch"))
    } else {
        None
    };
    if let Some(problem) = problem {
        return with_code(
            html(
                &visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                ChoosePinPage {
                    chrome,
                    problem: Some(problem),
                },
            ),
            "BAD_USER_INPUT",
        );
    }
    match credentials::choose_pin(&portal.node, &who.survivor_id, who.code_issued_at, pin).await {
        Ok(true) => {
            portal.sessions.update(&visit.token, |s| {
                if let Some(w) = s.signed_in.as_mut() {
                    w.pin_chosen = true;
                }
            });
            redirect("/home", None)
        }
        // The code was replaced, or a PIN chosen elsewhere: sign in again.
        Ok(false) => {
            portal.sessions.remove(&visit.token);
            redirect("/", Some(expired_cookie()))
        }
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

async fn sign_out(State(portal): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let visit = portal.visit(&headers, None);
    if let Err(err) = checked_form(&visit, &headers, &body) {
        return error_page(&portal, &visit, err);
    }
    portal.sessions.remove(&visit.token);
    redirect("/", Some(expired_cookie()))
}

/// The quick exit: ends the session, asks the browser to forget this site's
/// cookies and cache, and leaves for the neutral site.
async fn quick_exit(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_token(&headers) {
        portal.sessions.remove(&token);
    }
    let mut response = redirect(&portal.config.quick_exit_url, Some(expired_cookie()));
    response.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}

async fn not_found(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let visit = portal.visit(&headers, None);
    error_page(&portal, &visit, PortalError::NotFound)
}

// ---------------------------------------------------------------------------
// The survivor's overview

/// The grant's state at `now`: code and message ID.
fn grant_status(grant: &ConsentGrantRecord, now: OffsetDateTime) -> (&'static str, &'static str) {
    if grant.revoked_at.is_some() {
        ("REVOKED", "status-revoked")
    } else if grant.valid_until.is_some_and(|u| u <= now) {
        ("EXPIRED", "status-expired")
    } else if grant.valid_from > now {
        ("PENDING", "status-pending")
    } else {
        ("ACTIVE", "status-active")
    }
}

async fn home(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, q.lang.as_deref());
    match portal.survivor(&visit).await {
        Ok(Some(who)) => match overview(&portal, &visit, &who).await {
            Ok(page) => html(&visit, StatusCode::OK, page),
            Err(err) => error_page(&portal, &visit, err.into()),
        },
        Ok(None) => redirect("/", None),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

async fn overview(portal: &Portal, visit: &Visit, who: &SignedIn) -> Result<HomePage, NodeError> {
    let node = &portal.node;
    let chrome = portal.chrome(visit, "/home");
    let now = now_millis();
    let gid = GlobalId::new(node.agency.clone(), who.survivor_id.clone())?;
    let mut conn = node.db.pool().acquire().await?;
    let grant_records = grants::for_survivor(&mut conn, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let referral_records = store::referrals::for_survivor(&mut conn, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let receipt_records = store::portal::receipts_for(&mut conn, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let entries = crate::audit::read::entries(
        &node.db,
        &crate::audit::read::AuditFilter {
            survivor: Some(gid.to_string()),
            ..Default::default()
        },
        200,
    )
    .await
    .map_err(NodeError::internal)?;

    let mut grants: Vec<GrantRow> = grant_records
        .iter()
        .map(|g| {
            let (status_code, status_id) = grant_status(g, now);
            GrantRow {
                id: g.id.clone(),
                agency: agency_label(portal, &chrome, &g.grantee),
                parts: g
                    .categories
                    .iter()
                    .map(|c| category_text(&chrome, *c))
                    .collect(),
                purposes: g
                    .purposes
                    .iter()
                    .map(|p| purpose_text(&chrome, *p))
                    .collect(),
                until: until_text(&chrome, g.valid_until),
                status: chrome.t(status_id),
                status_code,
                revocable: matches!(status_code, "ACTIVE" | "PENDING"),
            }
        })
        .collect();
    // Current grants first, newest first within each group.
    grants.reverse();
    grants.sort_by_key(|g| !g.revocable);

    let history: Vec<AccessRow> = entries
        .iter()
        .filter(|e| e.event.kind == AuditKind::Disclosure)
        .map(|e| {
            let agency = e.event.actor_agency.clone();
            AccessRow {
                when: time_text(e.event.at),
                who: agency
                    .as_ref()
                    .map_or_else(String::new, |a| agency_label(portal, &chrome, a)),
                agency_id: agency.map(|a| a.to_string()).unwrap_or_default(),
                purpose: e
                    .event
                    .purpose
                    .map(|p| purpose_text(&chrome, p))
                    .unwrap_or_default(),
                seen: e
                    .event
                    .disclosed
                    .iter()
                    .map(|c| category_text(&chrome, *c))
                    .collect(),
                break_glass: e.event.break_glass,
            }
        })
        .collect();

    let referrals = referral_records
        .iter()
        .map(|r| ReferralRow {
            to: agency_label(portal, &chrome, &r.to_agency),
            service: chrome.t(&message_id("service", r.service.as_str())),
            status: chrome.t(&message_id("referral-status", r.status.as_str())),
            updated: date_text(r.updated_at),
        })
        .collect();

    let grantee_of = |grant_id: &str| {
        grant_records
            .iter()
            .find(|g| g.id == grant_id)
            .map(|g| agency_label(portal, &chrome, &g.grantee))
            .unwrap_or_default()
    };
    let receipts = receipt_records
        .iter()
        .map(|r| ReceiptRow {
            id: r.id.clone(),
            when: time_text(r.created_at),
            what: chrome.t(if r.event == ConsentEvent::Given.as_str() {
                "receipt-given"
            } else {
                "receipt-withdrawn"
            }),
            agency: grantee_of(&r.grant_id),
        })
        .collect();

    let agency_name = portal.agency_name(&node.agency);
    Ok(HomePage {
        heading: chrome.t1("home-heading", "agency", &agency_name),
        receipts_intro: chrome.t1("receipts-intro", "agency", &agency_name),
        chrome,
        grants,
        has_break_glass: history.iter().any(|a| a.break_glass),
        history,
        referrals,
        receipts,
    })
}

async fn download_receipt(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, None);
    let who = match portal.survivor(&visit).await {
        Ok(Some(who)) => who,
        Ok(None) => return redirect("/", None),
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let receipts = match portal.node.db.pool().acquire().await {
        Ok(mut conn) => store::portal::receipts_for(&mut conn, &who.survivor_id).await,
        Err(err) => Err(err.into()),
    };
    match receipts {
        Ok(receipts) => match receipts.into_iter().find(|r| r.id == id) {
            Some(r) => (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"consent-receipt-{}.json\"", r.id),
                    ),
                ],
                r.receipt,
            )
                .into_response(),
            None => error_page(&portal, &visit, PortalError::NotFound),
        },
        Err(err) => error_page(&portal, &visit, NodeError::internal(err).into()),
    }
}

// ---------------------------------------------------------------------------
// Giving consent

/// A grant the survivor asked for, checked.
struct GrantRequest {
    grantee: AgencyId,
    categories: Vec<Category>,
    purposes: Vec<Purpose>,
    /// The last day covered.
    last_day: Date,
}

impl GrantRequest {
    fn valid_until(&self) -> OffsetDateTime {
        self.last_day
            .next_day()
            .unwrap_or(self.last_day)
            .with_time(Time::MIDNIGHT)
            .assume_utc()
    }
}

fn grantable_agencies(portal: &Portal) -> Vec<AgencyId> {
    portal
        .node
        .federation
        .agencies()
        .iter()
        .filter(|a| a.id != portal.node.agency)
        .map(|a| a.id.clone())
        .collect()
}

fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).ok()
}

/// Reads a grant form: the request, or the problems in the survivor's
/// language.
fn read_grant(
    portal: &Portal,
    chrome: &Chrome,
    form: &FormFields,
) -> Result<GrantRequest, Vec<String>> {
    let today = now_millis().date();
    let mut problems = Vec::new();
    let grantee = form
        .get("agency")
        .and_then(|a| AgencyId::parse(a).ok())
        .filter(|a| grantable_agencies(portal).contains(a));
    if grantee.is_none() {
        problems.push(chrome.t("error-no-agency"));
    }
    let mut categories: Vec<Category> = form
        .all("category")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    categories.sort();
    categories.dedup();
    if categories.is_empty() {
        problems.push(chrome.t("error-no-category"));
    }
    let mut purposes: Vec<Purpose> = form
        .all("purpose")
        .iter()
        .filter_map(|p| p.parse().ok())
        .filter(|p| GRANTABLE_PURPOSES.contains(p))
        .collect();
    purposes.sort();
    purposes.dedup();
    if purposes.is_empty() {
        problems.push(chrome.t("error-no-purpose"));
    }
    let latest = today + time::Duration::days(i64::from(portal.config.max_grant_days));
    let last_day = form
        .get("until")
        .and_then(parse_date)
        .filter(|d| *d >= today && *d <= latest);
    if last_day.is_none() {
        problems.push(chrome.t("error-bad-date"));
    }
    match (grantee, last_day) {
        (Some(grantee), Some(last_day)) if problems.is_empty() => Ok(GrantRequest {
            grantee,
            categories,
            purposes,
            last_day,
        }),
        _ => Err(problems),
    }
}

fn grant_page(
    portal: &Portal,
    chrome: Chrome,
    form: Option<&FormFields>,
    problems: Vec<String>,
) -> GrantPage {
    let today = now_millis().date();
    let chosen = |name: &str, value: &str| form.is_some_and(|f| f.all(name).contains(&value));
    let agencies = grantable_agencies(portal)
        .into_iter()
        .map(|id| Choice {
            selected: form.and_then(|f| f.get("agency")) == Some(id.as_str()),
            label: agency_label(portal, &chrome, &id),
            value: id.to_string(),
        })
        .collect();
    let categories = Category::ALL
        .iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: category_text(&chrome, *c),
            selected: chosen("category", c.as_str()),
        })
        .collect();
    let purposes = GRANTABLE_PURPOSES
        .iter()
        .map(|p| Choice {
            value: p.as_str().to_owned(),
            label: purpose_text(&chrome, *p),
            selected: chosen("purpose", p.as_str()),
        })
        .collect();
    let default_until = date_text(
        (today + time::Duration::days(i64::from(portal.config.default_grant_days)))
            .midnight()
            .assume_utc(),
    );
    let max_date = date_text(
        (today + time::Duration::days(i64::from(portal.config.max_grant_days)))
            .midnight()
            .assume_utc(),
    );
    GrantPage {
        until: form
            .and_then(|f| f.get("until"))
            .map_or(default_until, str::to_owned),
        min_date: date_text(today.midnight().assume_utc()),
        max_date,
        until_hint: chrome.t1(
            "grant-until-hint",
            "days",
            &portal.config.max_grant_days.to_string(),
        ),
        chrome,
        problems,
        agencies,
        categories,
        purposes,
    }
}

async fn grant_form(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, q.lang.as_deref());
    match portal.survivor(&visit).await {
        Ok(Some(_)) => {
            let chrome = portal.chrome(&visit, "/grant");
            html(
                &visit,
                StatusCode::OK,
                grant_page(&portal, chrome, None, Vec::new()),
            )
        }
        Ok(None) => redirect("/", None),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

/// A signed-in survivor's checked form post.
async fn signed_in_form(
    portal: &Portal,
    visit: &Visit,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<(SignedIn, FormFields)>, Response> {
    let form = checked_form(visit, headers, body).map_err(|e| error_page(portal, visit, e))?;
    match portal.survivor(visit).await {
        Ok(Some(who)) => Ok(Some((who, form))),
        Ok(None) => Ok(None),
        Err(err) => Err(error_page(portal, visit, err.into())),
    }
}

async fn grant_review(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = portal.visit(&headers, None);
    let (_, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(Some(found)) => found,
        Ok(None) => return redirect("/", None),
        Err(response) => return response,
    };
    let chrome = portal.chrome(&visit, "/grant");
    match read_grant(&portal, &chrome, &form) {
        Ok(request) => {
            let name = agency_label(&portal, &chrome, &request.grantee);
            let mut hidden = vec![("agency", request.grantee.to_string())];
            hidden.extend(
                request
                    .categories
                    .iter()
                    .map(|c| ("category", c.as_str().to_owned())),
            );
            hidden.extend(
                request
                    .purposes
                    .iter()
                    .map(|p| ("purpose", p.as_str().to_owned())),
            );
            hidden.push(("until", date_text(request.last_day.midnight().assume_utc())));
            let page = ConfirmPage {
                heading: chrome.t("grant-confirm-heading"),
                summary: chrome.t1("grant-confirm-summary", "agency", &name),
                parts: request
                    .categories
                    .iter()
                    .map(|c| category_text(&chrome, *c))
                    .collect(),
                purposes: request
                    .purposes
                    .iter()
                    .map(|p| purpose_text(&chrome, *p))
                    .collect(),
                until: until_text(&chrome, Some(request.valid_until())),
                action: "/grant/confirm",
                hidden,
                button: chrome.t("grant-confirm-button"),
                chrome,
            };
            html(&visit, StatusCode::OK, page)
        }
        Err(problems) => with_code(
            html(
                &visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                grant_page(&portal, chrome, Some(&form), problems),
            ),
            "BAD_USER_INPUT",
        ),
    }
}

async fn grant_confirm(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = portal.visit(&headers, None);
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(Some(found)) => found,
        Ok(None) => return redirect("/", None),
        Err(response) => return response,
    };
    let chrome = portal.chrome(&visit, "/home");
    let request = match read_grant(&portal, &chrome, &form) {
        Ok(request) => request,
        Err(problems) => {
            return with_code(
                html(
                    &visit,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    grant_page(&portal, chrome, Some(&form), problems),
                ),
                "BAD_USER_INPUT",
            );
        }
    };
    match give_consent(&portal.node, &who.survivor_id, request).await {
        Ok(receipt_id) => html(
            &visit,
            StatusCode::OK,
            DonePage {
                message: chrome.t("grant-done"),
                chrome,
                receipt_id,
            },
        ),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

/// Writes a grant the survivor gave in the portal, its receipt and its
/// audit entry, in one transaction; the receipt's ID.
async fn give_consent(
    node: &Arc<NodeState>,
    survivor_id: &str,
    request: GrantRequest,
) -> Result<String, NodeError> {
    let now = now_millis();
    let grant = ConsentGrantRecord {
        id: new_local_id(),
        survivor_id: survivor_id.to_owned(),
        valid_until: Some(request.valid_until()),
        grantee: request.grantee,
        categories: request.categories,
        purposes: request.purposes,
        valid_from: now,
        method: ConsentMethod::Portal,
        recorded_by: "survivor".into(),
        witness: None,
        created_at: now,
        revoked_at: None,
        revoked_by: None,
        revocation_reason: None,
    };
    let receipt = receipt::for_grant(node, &grant, ConsentEvent::Given, now);
    let receipt_id = receipt.id.clone();
    let mut event = survivor_event(
        node,
        AuditKind::ConsentGranted,
        Decision::Permit,
        "CONSENT_GRANTED",
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{}", node.agency, grant.id));
    event.disclosed = grant.categories.clone();
    node.audit
        .record(move |conn| {
            Box::pin(async move {
                grants::insert(conn, &grant)
                    .await
                    .map_err(NodeError::internal)?;
                store::portal::insert_receipt(conn, &receipt)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(receipt_id)
}

// ---------------------------------------------------------------------------
// Withdrawing consent

/// One of the survivor's own grants that can still be withdrawn.
async fn own_revocable_grant(
    node: &NodeState,
    survivor_id: &str,
    grant_id: Option<&str>,
) -> Result<ConsentGrantRecord, NodeError> {
    let grant_id = grant_id.ok_or(NodeError::NotFound("consent grant"))?;
    let mut conn = node.db.pool().acquire().await?;
    let grant = grants::get(&mut conn, grant_id)
        .await
        .map_err(NodeError::internal)?
        .filter(|g| g.survivor_id == survivor_id)
        .ok_or(NodeError::NotFound("consent grant"))?;
    let (status, _) = grant_status(&grant, now_millis());
    if matches!(status, "ACTIVE" | "PENDING") {
        Ok(grant)
    } else {
        Err(NodeError::NotFound("consent grant"))
    }
}

async fn revoke_review(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = portal.visit(&headers, None);
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(Some(found)) => found,
        Ok(None) => return redirect("/", None),
        Err(response) => return response,
    };
    let grant = match own_revocable_grant(&portal.node, &who.survivor_id, form.get("grant")).await {
        Ok(grant) => grant,
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let chrome = portal.chrome(&visit, "/home");
    let name = agency_label(&portal, &chrome, &grant.grantee);
    let page = ConfirmPage {
        heading: chrome.t("revoke-confirm-heading"),
        summary: chrome.t1("revoke-confirm-summary", "agency", &name),
        parts: grant
            .categories
            .iter()
            .map(|c| category_text(&chrome, *c))
            .collect(),
        purposes: grant
            .purposes
            .iter()
            .map(|p| purpose_text(&chrome, *p))
            .collect(),
        until: until_text(&chrome, grant.valid_until),
        action: "/revoke/confirm",
        hidden: vec![("grant", grant.id.clone())],
        button: chrome.t("revoke-confirm-button"),
        chrome,
    };
    html(&visit, StatusCode::OK, page)
}

async fn revoke_confirm(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = portal.visit(&headers, None);
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(Some(found)) => found,
        Ok(None) => return redirect("/", None),
        Err(response) => return response,
    };
    let chrome = portal.chrome(&visit, "/home");
    match withdraw_consent(&portal.node, &who.survivor_id, form.get("grant")).await {
        Ok(receipt_id) => html(
            &visit,
            StatusCode::OK,
            DonePage {
                message: chrome.t("revoke-done"),
                chrome,
                receipt_id,
            },
        ),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

/// Revokes one of the survivor's grants, with its receipt and audit entry
/// in one transaction; the receipt's ID. Takes effect on the next request.
async fn withdraw_consent(
    node: &Arc<NodeState>,
    survivor_id: &str,
    grant_id: Option<&str>,
) -> Result<String, NodeError> {
    let grant = own_revocable_grant(node, survivor_id, grant_id).await?;
    let now = now_millis();
    let mut revoked = grant.clone();
    revoked.revoked_at = Some(now);
    revoked.revoked_by = Some("survivor".into());
    let receipt = receipt::for_grant(node, &revoked, ConsentEvent::Withdrawn, now);
    let receipt_id = receipt.id.clone();
    let mut event = survivor_event(
        node,
        AuditKind::ConsentRevoked,
        Decision::Permit,
        "CONSENT_REVOKED",
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{}", node.agency, grant.id));
    event.withheld = grant
        .categories
        .iter()
        .map(|c| exchange_schema::audit::Withheld {
            category: *c,
            reason: exchange_schema::WithheldReason::GrantRevoked,
        })
        .collect();
    node.audit
        .record(move |conn| {
            Box::pin(async move {
                if !grants::revoke(
                    conn,
                    &grant.id,
                    now,
                    "survivor",
                    Some("withdrawn in the portal"),
                )
                .await
                .map_err(NodeError::internal)?
                {
                    return Err(NodeError::NotFound("consent grant"));
                }
                store::portal::insert_receipt(conn, &receipt)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(receipt_id)
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

    #[test]
    fn a_grant_covers_its_last_day_entirely() {
        let request = GrantRequest {
            grantee: AgencyId::parse("legal-aid").expect("id"),
            categories: vec![Category::Legal],
            purposes: vec![Purpose::LegalAssistance],
            last_day: parse_date("2027-03-31").expect("date"),
        };
        assert_eq!(date_text(request.valid_until()), "2027-04-01");
        assert_eq!(request.valid_until().hour(), 0);
    }
}

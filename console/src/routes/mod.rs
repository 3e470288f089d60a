//! The console's HTTP routes, a file per area: [`sign_in`] (start page,
//! language, sign-in and sign-out), [`referrals`] (the inbox, a referral and
//! its answers), [`survivors`] (a survivor's page and its forms), [`keeping`] (care plan versions and agreements, legal holds) and
//! [`agency`] (follow-ups due, the directory) and [`supervision`] (review
//! of emergency access, assigning caseworkers). This file holds what they share: the visit (session, CSRF and
//! origin checks, refusals as pages with a stable code) and the safety
//! headers every response carries.

mod agency;
mod intake;
mod keeping;
pub mod notices;
mod referrals;
mod sign_in;
mod supervision;
mod survivors;

pub use agency::*;
pub use intake::*;
pub use keeping::*;
pub use notices::*;
pub use referrals::*;
pub use sign_in::*;
pub use supervision::*;
pub use survivors::*;

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::i18n::Lang;
use crate::pages::{Chrome, ErrorPage};
use crate::session::{Ended, SESSION_COOKIE, Session, SignedIn, csrf_matches};

/// The header naming the stable code of a refused request.
pub const ERROR_CODE_HEADER: &str = "x-exchange-error-code";
/// The policy: only the console's own stylesheet and its one script (the
/// live notices; every page works without it), nothing inline; forms
/// go to the console, or (sign-in and sign-out redirect there) to the
/// identity providers' origins.
pub fn content_security_policy(provider_origins: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for origin in provider_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
         img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A page for a signed-in caseworker: the visit and who it is (confirmed
/// with the provider when due), or the response that refuses it (back to
/// the start page, or an error page with its code).
pub(crate) async fn signed_in_visit(
    state: &ConsoleState,
    headers: &HeaderMap,
    here: &str,
) -> Result<(Visit, SignedIn), Response> {
    let mut visit = Visit::open(state, headers, here);
    match visit.signed_in(state).await {
        Ok(signed_in) => Ok((visit, signed_in)),
        Err(e) => Err(visit.refuse(state, e)),
    }
}

/// A form from a signed-in caseworker: as [`signed_in_visit`], with the
/// form's CSRF token, origin and Fetch Metadata checked.
pub(crate) async fn form_visit(
    state: &ConsoleState,
    headers: &HeaderMap,
    here: &str,
    csrf: Option<&str>,
) -> Result<(Visit, SignedIn), Response> {
    let (visit, signed_in) = signed_in_visit(state, headers, here).await?;
    match visit.check_form(state, headers, csrf) {
        Ok(()) => Ok((visit, signed_in)),
        Err(e) => Err(visit.refuse(state, e)),
    }
}

/// One request's session, opened from its cookie.
pub struct Visit {
    pub(crate) token: String,
    pub(crate) session: Session,
    pub(crate) ended: Ended,
    pub(crate) set_cookie: bool,
    pub(crate) here: String,
}

impl Visit {
    pub(crate) fn open(state: &ConsoleState, headers: &HeaderMap, here: &str) -> Self {
        let cookie = cookie(headers, SESSION_COOKIE);
        let (token, mut session, ended) = state.sessions.open(cookie.as_deref());
        if session.lang.is_none() {
            let accept = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok());
            session.lang = Some(Lang::negotiate(accept));
        }
        let notice = session.notice.take();
        if notice.is_some() {
            state.sessions.update(&token, |s| s.notice = None);
        }
        session.notice = notice;
        Self {
            set_cookie: cookie.as_deref() != Some(token.as_str()),
            token,
            session,
            ended,
            here: here.to_owned(),
        }
    }

    pub(crate) fn chrome(&self) -> Chrome {
        let user = self.session.signed_in.as_ref().map(|s| {
            format!(
                "{} ({})",
                s.display_name.as_deref().unwrap_or(&s.principal.user),
                s.principal.agency
            )
        });
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        Chrome {
            lang: self.session.lang.unwrap_or(Lang::En),
            csrf: self.session.csrf_token.clone(),
            user,
            notice: self.session.notice.clone(),
            here: self.here.clone(),
            break_glass_until: self
                .session
                .break_glass_until()
                .and_then(|t| t.format(&format).ok()),
            supervisor: self
                .session
                .signed_in
                .as_ref()
                .is_some_and(|s| s.principal.has_role(exchange_schema::Role::Supervisor)),
            records_officer: self.session.signed_in.as_ref().is_some_and(|s| {
                s.principal.has_role(exchange_schema::Role::Supervisor)
                    || s.principal
                        .has_role(exchange_schema::Role::DataProtectionOfficer)
            }),
        }
    }

    /// The signed-in caseworker, confirmed with the identity provider when
    /// due ([`SignedIn::due_for_refresh`]): renewed tokens are kept; a
    /// provider that refuses ends the session. A provider that cannot be
    /// reached leaves the session as it is until its access token expires.
    pub(crate) async fn signed_in(
        &mut self,
        state: &ConsoleState,
    ) -> Result<SignedIn, ConsoleError> {
        let current = match (&self.session.signed_in, self.ended) {
            (Some(s), _) => s.clone(),
            (None, Ended::Expired) => return Err(ConsoleError::SessionExpired),
            (None, Ended::None) => return Err(ConsoleError::NotSignedIn),
        };
        if !current.due_for_refresh(state.revalidate) {
            return Ok(current);
        }
        match state.sign_in.refresh(&current).await {
            Ok(renewed) => {
                let kept = renewed.clone();
                state
                    .sessions
                    .update(&self.token, |s| s.signed_in = Some(kept));
                self.session.signed_in = Some(renewed.clone());
                Ok(renewed)
            }
            Err(e @ ConsoleError::SignInRevoked(_)) => {
                tracing::info!(
                    agency = %current.principal.agency,
                    user = %current.principal.user,
                    %e,
                    "the identity provider ended a console session"
                );
                state.sessions.end(&self.token);
                self.session.signed_in = None;
                Err(e)
            }
            Err(e) if current.principal.expires_at > time::OffsetDateTime::now_utc() => {
                tracing::warn!(%e, "could not confirm a sign-in; the access token is still valid");
                Ok(current)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a form: the session's CSRF token, and an origin and Fetch
    /// Metadata that say it came from the console's own page.
    pub(crate) fn check_form(
        &self,
        state: &ConsoleState,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<(), ConsoleError> {
        if let Some(origin) = headers.get(header::ORIGIN)
            && origin.as_bytes() != state.origin.as_bytes()
        {
            return Err(ConsoleError::Csrf);
        }
        if let Some(site) = headers.get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return Err(ConsoleError::Csrf);
        }
        if self.set_cookie || !csrf_matches(&self.session.csrf_token, csrf) {
            return Err(ConsoleError::Csrf);
        }
        Ok(())
    }

    /// `response` with the safety headers and, if new, the session cookie.
    pub(crate) fn finish(&self, state: &ConsoleState, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if self.set_cookie {
            set_session_cookie(state, &mut response, &self.token);
        }
        response
    }

    pub(crate) fn page(&self, state: &ConsoleState, page: impl Template) -> Response {
        self.finish(state, render(page))
    }

    pub(crate) fn refuse(&self, state: &ConsoleState, error: ConsoleError) -> Response {
        if matches!(
            error,
            ConsoleError::NotSignedIn
                | ConsoleError::SessionExpired
                | ConsoleError::SignInRevoked(_)
        ) {
            // Back to the start page, with a fresh session if this one
            // ended, and the reason as its notice.
            let (token, _, _) = state.sessions.open(Some(&self.token));
            if !matches!(error, ConsoleError::NotSignedIn) {
                let notice = error.message_id().to_owned();
                state.sessions.update(&token, |s| s.notice = Some(notice));
            }
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(
                ERROR_CODE_HEADER,
                HeaderValue::from_static(error_code_static(&error)),
            );
            if token != self.token || self.set_cookie {
                set_session_cookie(state, &mut response, &token);
            }
            return response;
        }
        match &error {
            ConsoleError::Internal(_)
            | ConsoleError::GatewayUnavailable(_)
            | ConsoleError::SessionsUnavailable(_) => {
                tracing::error!(code = error.code(), %error, "console request failed")
            }
            _ => tracing::info!(code = error.code(), %error, "console request refused"),
        }
        self.finish(state, error_page(self.chrome(), &error))
    }
}

/// The error page for `error`: its words in the page's language, its
/// status, and its code in the page and the header.
fn error_page(chrome: Chrome, error: &ConsoleError) -> Response {
    let message = chrome.t(error.message_id());
    let mut response = render(ErrorPage {
        chrome,
        code: error.code().to_owned(),
        message,
    });
    *response.status_mut() = error.status();
    if let Ok(code) = HeaderValue::from_str(error.code()) {
        response.headers_mut().insert(ERROR_CODE_HEADER, code);
    }
    response
}

/// A refusal answered without a session (the session store is what
/// failed): the error page in the browser's language, its status and code,
/// and no cookie.
pub(crate) fn bare_refusal(accept_language: Option<&str>, error: ConsoleError) -> Response {
    tracing::error!(code = error.code(), %error, "console request failed");
    error_page(Chrome::anonymous(Lang::negotiate(accept_language)), &error)
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn error_code_static(error: &ConsoleError) -> &'static str {
    match error {
        ConsoleError::SessionExpired => "SESSION_EXPIRED",
        ConsoleError::SignInRevoked(_) => "SIGN_IN_REVOKED",
        _ => "NOT_SIGNED_IN",
    }
}

pub(crate) fn set_session_cookie(state: &ConsoleState, response: &mut Response, token: &str) {
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(crate) fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(err) => {
            tracing::error!(%err, "rendering a console page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL").into_response()
        }
    }
}

/// A 303 to `to`; to the start page instead if `to` could not be a
/// `Location` header (axum's `Redirect::to` panics then). The addresses
/// come from the console, a provider's metadata or a node's answer (a new
/// record's ID): none is trusted to be well formed.
pub(crate) fn redirect_to(to: &str) -> Redirect {
    if HeaderValue::from_str(to).is_ok() {
        Redirect::to(to)
    } else {
        tracing::warn!("refused to redirect to an address that is not a valid header");
        Redirect::to("/")
    }
}

/// Refuses a path with anything but letters, digits and `/ : . _ -`
/// before it reaches a handler: record IDs never need more, and an ID
/// carrying, say, an encoded line break must not reach a `Location`
/// header. `BAD_REQUEST`, in the header like every refusal.
pub async fn plain_paths(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let plain = path.len() <= 512
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b':' | b'.' | b'_' | b'-'));
    if plain {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "BAD_REQUEST: this address is not one of the console's\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(ERROR_CODE_HEADER, HeaderValue::from_static("BAD_REQUEST"));
    response
}

/// Adds the safety headers to every response.
pub async fn safety_headers(
    State(state): State<Arc<ConsoleState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        state.content_security_policy.clone(),
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The shared page rules, then the console's own.
static STYLESHEET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    exchange_service::pages::stylesheet(include_str!("../../static/console.css"))
});

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET.as_str(),
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/console.js"),
    )
        .into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `/readyz`: 200 when the console can serve a caseworker, 503 when its
/// session database (with `[session] database_url`) does not answer, so
/// that the load balancer sends browsers to a replica that can.
pub async fn readyz(State(state): State<Arc<ConsoleState>>) -> Response {
    match &state.shared_sessions {
        Some(shared) if !shared.reachable().await => {
            (StatusCode::SERVICE_UNAVAILABLE, "sessions unavailable").into_response()
        }
        _ => "ready".into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_to_an_address_that_cannot_be_a_header_goes_to_the_start_page() {
        let location = |to: &str| {
            redirect_to(to)
                .into_response()
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            location("/survivors/shelter-north:1").as_deref(),
            Some("/survivors/shelter-north:1")
        );
        assert_eq!(
            location("/survivors/x\r\nSet-Cookie: a=b").as_deref(),
            Some("/")
        );
    }
}

//! The console's HTTP routes: sign-in and sign-out, the referral inbox, a
//! referral and its answers, and a survivor's page. Every response carries
//! the safety headers; every form is checked for the session's CSRF token,
//! its origin and Fetch Metadata before anything is sent to the gateway.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use exchange_schema::Purpose;
use serde::Deserialize;
use serde_json::json;

use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::i18n::Lang;
use crate::pages::{
    Chrome, ErrorPage, Referral, ReferralPage, ReferralsPage, SignInPage, Survivor, SurvivorPage,
    referral_actions,
};
use crate::session::{Ended, SESSION_COOKIE, Session, SignedIn, csrf_matches};

/// The header naming the stable code of a refused request.
pub const ERROR_CODE_HEADER: &str = "x-exchange-error-code";
/// The policy: only the console's own stylesheet, no scripts at all; forms
/// go to the console, or (sign-in and sign-out redirect there) to the
/// identity providers' origins.
pub fn content_security_policy(provider_origins: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for origin in provider_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}
/// Referrals a page of the inbox shows.
const PAGE_SIZE: i64 = 25;

/// One request's session, opened from its cookie.
pub struct Visit {
    token: String,
    session: Session,
    ended: Ended,
    set_cookie: bool,
    here: String,
}

impl Visit {
    fn open(state: &ConsoleState, headers: &HeaderMap, here: &str) -> Self {
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

    fn chrome(&self) -> Chrome {
        let user = self.session.signed_in.as_ref().map(|s| {
            format!(
                "{} ({})",
                s.display_name.as_deref().unwrap_or(&s.principal.user),
                s.principal.agency
            )
        });
        Chrome {
            lang: self.session.lang.unwrap_or(Lang::En),
            csrf: self.session.csrf_token.clone(),
            user,
            notice: self.session.notice.clone(),
            here: self.here.clone(),
        }
    }

    fn signed_in(&self) -> Result<&SignedIn, ConsoleError> {
        match (&self.session.signed_in, self.ended) {
            (Some(s), _) => Ok(s),
            (None, Ended::Expired) => Err(ConsoleError::SessionExpired),
            (None, Ended::None) => Err(ConsoleError::NotSignedIn),
        }
    }

    /// Checks a form: the session's CSRF token, and an origin and Fetch
    /// Metadata that say it came from the console's own page.
    fn check_form(
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
    fn finish(&self, state: &ConsoleState, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if self.set_cookie {
            set_session_cookie(state, &mut response, &self.token);
        }
        response
    }

    fn page(&self, state: &ConsoleState, page: impl Template) -> Response {
        self.finish(state, render(page))
    }

    fn refuse(&self, state: &ConsoleState, error: ConsoleError) -> Response {
        if matches!(
            error,
            ConsoleError::NotSignedIn | ConsoleError::SessionExpired
        ) {
            if let ConsoleError::SessionExpired = error {
                state.sessions.update(&self.token, |s| {
                    s.notice = Some("error-session-expired".into())
                });
            }
            return self.finish(state, Redirect::to("/"));
        }
        match &error {
            ConsoleError::Internal(_) | ConsoleError::GatewayUnavailable(_) => {
                tracing::error!(code = error.code(), %error, "console request failed")
            }
            _ => tracing::info!(code = error.code(), %error, "console request refused"),
        }
        let chrome = self.chrome();
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
        self.finish(state, response)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn set_session_cookie(state: &ConsoleState, response: &mut Response, token: &str) {
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(err) => {
            tracing::error!(%err, "rendering a console page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL").into_response()
        }
    }
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

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/console.css"),
    )
        .into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `/`: the sign-in page, or the inbox when signed in.
pub async fn start(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    if visit.session.signed_in.is_some() {
        return visit.finish(&state, Redirect::to("/referrals"));
    }
    let agencies = state
        .sign_in
        .agencies()
        .iter()
        .map(|a| (a.agency.clone(), a.name.clone()))
        .collect();
    visit.page(
        &state,
        SignInPage {
            chrome: visit.chrome(),
            agencies,
        },
    )
}

#[derive(Deserialize)]
pub struct LanguageChoice {
    lang: String,
    back: Option<String>,
}

/// `/language`: remembers the language and goes back to a local page.
pub async fn language(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(choice): Query<LanguageChoice>,
) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    if let Some(lang) = Lang::parse(&choice.lang) {
        state.sessions.update(&visit.token, |s| s.lang = Some(lang));
    }
    // Only a path on this console, never another site.
    let back = choice
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    visit.finish(&state, Redirect::to(&back))
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: Option<String>,
    agency: String,
}

/// `POST /sign-in`: sends the browser to the agency's identity provider.
pub async fn sign_in(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    if let Err(e) = visit.check_form(&state, &headers, form.csrf.as_deref()) {
        return visit.refuse(&state, e);
    }
    match state.sign_in.start(&form.agency).await {
        Ok((url, pending)) => {
            state
                .sessions
                .update(&visit.token, |s| s.pending = Some(pending));
            visit.finish(&state, Redirect::to(&url))
        }
        Err(e) => visit.refuse(&state, e),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `/auth/callback`: finishes the sign-in the session started, then starts
/// a fresh session for the signed-in caseworker.
pub async fn callback(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    let Some(pending) = visit.session.pending.clone() else {
        return visit.refuse(
            &state,
            ConsoleError::SignInRefused("no sign-in in progress in this session".into()),
        );
    };
    // One attempt per start, whatever happens next.
    state.sessions.update(&visit.token, |s| s.pending = None);
    if let Some(error) = callback.error {
        return visit.refuse(
            &state,
            ConsoleError::SignInRefused(format!("the provider answered {error}")),
        );
    }
    if pending.expired() || !csrf_matches(&pending.state, callback.state.as_deref()) {
        return visit.refuse(
            &state,
            ConsoleError::SignInRefused("state missing, wrong or too old".into()),
        );
    }
    let Some(code) = callback.code else {
        return visit.refuse(&state, ConsoleError::SignInRefused("no code".into()));
    };
    match state.sign_in.finish(&pending, &code).await {
        Ok(signed_in) => {
            tracing::info!(
                agency = %signed_in.principal.agency,
                user = %signed_in.principal.user,
                "caseworker signed in to the console"
            );
            let token = state.sessions.rotate(&visit.token, |s| {
                s.signed_in = Some(signed_in);
                s.notice = Some("notice-signed-in".into());
            });
            let mut response = Redirect::to("/referrals").into_response();
            set_session_cookie(&state, &mut response, &token);
            response
        }
        Err(e) => visit.refuse(&state, e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /sign-out`: ends the session here and, where the provider offers
/// it, at the provider.
pub async fn sign_out(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    if let Err(e) = visit.check_form(&state, &headers, form.csrf.as_deref()) {
        return visit.refuse(&state, e);
    }
    let ended = state.sessions.end(&visit.token);
    let target = match ended.and_then(|s| s.signed_in) {
        Some(signed_in) => state
            .sign_in
            .sign_out_url(&signed_in)
            .await
            .unwrap_or_else(|| "/".into()),
        None => "/".into(),
    };
    let mut response = Redirect::to(&target).into_response();
    // The browser forgets the cookie too.
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct InboxQuery {
    direction: Option<String>,
    status: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct ReferralsAnswer {
    referrals: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<Referral>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

const REFERRAL_FIELDS: &str = "id survivorId fromAgency toAgency service urgency status notes createdAt history { status at byAgency note }";

/// `/referrals`: incoming and outgoing referrals from every node, newest
/// first, filtered and paginated.
pub async fn referrals(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Response {
    let direction = match query.direction.as_deref() {
        None | Some("") => "INCOMING",
        Some(d @ ("INCOMING" | "OUTGOING" | "ALL")) => d,
        Some(_) => "",
    };
    let status = query.status.clone().unwrap_or_default();
    let here = format!(
        "/referrals?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("direction", direction)
            .append_pair("status", &status)
            .finish()
    );
    let visit = Visit::open(&state, &headers, &here);
    let signed_in = match visit.signed_in() {
        Ok(s) => s,
        Err(e) => return visit.refuse(&state, e),
    };
    if direction.is_empty()
        || !(status.is_empty()
            || ["PENDING", "ACCEPTED", "DECLINED", "COMPLETED", "WITHDRAWN"]
                .contains(&status.as_str()))
    {
        return visit.refuse(&state, ConsoleError::BadRequest("unknown filter"));
    }
    let statuses: Option<Vec<&str>> = (!status.is_empty()).then(|| vec![status.as_str()]);
    let answer: Result<ReferralsAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!(
                "query($direction: ReferralDirection!, $status: [ReferralStatus!], $first: Int, $after: String) \
                 {{ referrals(direction: $direction, status: $status, first: $first, after: $after) \
                 {{ nodes {{ {REFERRAL_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
            ),
            json!({ "direction": direction, "status": statuses, "first": PAGE_SIZE, "after": query.after }),
        )
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return visit.refuse(&state, e),
    };
    let next = match (
        answer.referrals.page_info.has_next_page,
        answer.referrals.page_info.end_cursor,
    ) {
        (true, Some(cursor)) => Some(format!(
            "{here}&{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("after", &cursor)
                .finish()
        )),
        _ => None,
    };
    let own_agency = signed_in.principal.agency.to_string();
    visit.page(
        &state,
        ReferralsPage {
            chrome: visit.chrome(),
            direction: direction.to_owned(),
            status,
            referrals: answer.referrals.nodes,
            next,
            own_agency,
        },
    )
}

#[derive(Deserialize)]
struct ReferralAnswer {
    referral: Option<Referral>,
}

async fn load_referral(
    state: &ConsoleState,
    signed_in: &SignedIn,
    id: &str,
) -> Result<Referral, ConsoleError> {
    let answer: ReferralAnswer = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!("query($id: ID!) {{ referral(id: $id) {{ {REFERRAL_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await?;
    answer.referral.ok_or(ConsoleError::Gateway {
        code: exchange_schema::ErrorCode::NotFound,
        message: "no such referral".into(),
    })
}

/// `/referrals/{id}`: a referral, its history and the answers offered.
pub async fn referral(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visit = Visit::open(&state, &headers, &format!("/referrals/{id}"));
    let signed_in = match visit.signed_in() {
        Ok(s) => s,
        Err(e) => return visit.refuse(&state, e),
    };
    let referral = match load_referral(&state, signed_in, &id).await {
        Ok(r) => r,
        Err(e) => return visit.refuse(&state, e),
    };
    let incoming = referral.to_agency == signed_in.principal.agency.as_str();
    let actions = referral_actions(incoming, &referral.status);
    visit.page(
        &state,
        ReferralPage {
            chrome: visit.chrome(),
            referral,
            incoming,
            actions,
        },
    )
}

#[derive(Deserialize)]
pub struct AnswerForm {
    csrf: Option<String>,
    action: String,
    reason: Option<String>,
}

/// `POST /referrals/{id}/answer`: accept, decline (with a reason),
/// complete or withdraw (with a reason).
pub async fn answer(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    let visit = Visit::open(&state, &headers, &format!("/referrals/{id}"));
    let signed_in = match visit.signed_in() {
        Ok(s) => s,
        Err(e) => return visit.refuse(&state, e),
    };
    if let Err(e) = visit.check_form(&state, &headers, form.csrf.as_deref()) {
        return visit.refuse(&state, e);
    }
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let (mutation, argument) = match form.action.as_str() {
        "accept" => ("acceptReferral", "note"),
        "complete" => ("completeReferral", "note"),
        "decline" => ("declineReferral", "reason"),
        "withdraw" => ("withdrawReferral", "reason"),
        _ => return visit.refuse(&state, ConsoleError::BadRequest("unknown answer")),
    };
    if argument == "reason" && reason.is_none() {
        return visit.refuse(&state, ConsoleError::BadRequest("a reason is needed"));
    }
    let result: Result<serde_json::Value, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!(
                "mutation($id: ID!, $text: String) {{ {mutation}(id: $id, {argument}: $text) {{ status }} }}"
            ),
            json!({ "id": id, "text": reason }),
        )
        .await;
    match result {
        Ok(_) => {
            state
                .sessions
                .update(&visit.token, |s| s.notice = Some("notice-answered".into()));
            visit.finish(&state, Redirect::to(&format!("/referrals/{id}")))
        }
        Err(e) => visit.refuse(&state, e),
    }
}

#[derive(Deserialize)]
pub struct SurvivorQuery {
    referral: Option<String>,
}

#[derive(Deserialize)]
struct SurvivorAnswer {
    survivor: Option<Survivor>,
}

/// `/survivors/{id}`: the record as far as the caseworker may see it, read
/// for the purpose the way here implies: through a referral, `REFERRAL`
/// (and only if the referral joins this agency to that survivor); the own
/// agency's survivor otherwise, `CASE_MANAGEMENT`.
pub async fn survivor(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<SurvivorQuery>,
) -> Response {
    let here = match &query.referral {
        Some(r) => format!("/survivors/{id}?referral={r}"),
        None => format!("/survivors/{id}"),
    };
    let visit = Visit::open(&state, &headers, &here);
    let signed_in = match visit.signed_in() {
        Ok(s) => s,
        Err(e) => return visit.refuse(&state, e),
    };
    let purpose = match &query.referral {
        Some(referral) => match load_referral(&state, signed_in, referral).await {
            Ok(r) if r.survivor_id == id => Purpose::Referral,
            Ok(_) => {
                return visit.refuse(
                    &state,
                    ConsoleError::BadRequest("the referral is about another survivor"),
                );
            }
            Err(e) => return visit.refuse(&state, e),
        },
        None => Purpose::CaseManagement,
    };
    let answer: Result<SurvivorAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            purpose,
            "query($id: ID!) { survivor(id: $id) { id owner breakGlass \
             identity { givenName familyName preferredName nationality languages } \
             contact { safeChannel phone safetyNotes } \
             case { riskLevel needs summary } withheld { category reason } } }",
            json!({ "id": id }),
        )
        .await;
    let survivor = match answer.map(|a| a.survivor) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return visit.refuse(
                &state,
                ConsoleError::Gateway {
                    code: exchange_schema::ErrorCode::NotFound,
                    message: "no such survivor".into(),
                },
            );
        }
        Err(e) => return visit.refuse(&state, e),
    };
    visit.page(
        &state,
        SurvivorPage {
            chrome: visit.chrome(),
            survivor,
            purpose: purpose.as_str().to_owned(),
            referral: query.referral,
        },
    )
}

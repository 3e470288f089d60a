//! The start page, the language picker, sign-in through the agency's
//! identity provider (start and callback) and sign-out.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Visit;
use super::redirect_to;
use super::set_session_cookie;
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::i18n::Lang;
use crate::pages::SignInPage;
use crate::session::{SESSION_COOKIE, csrf_matches};
use axum::http::{HeaderValue, header};

/// `/`: the sign-in page, or the inbox when signed in.
pub async fn start(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let visit = Visit::open(&state, &headers, "/");
    if visit.session.signed_in.is_some() {
        return visit.finish(&state, redirect_to("/referrals"));
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
    visit.finish(&state, redirect_to(&local_path(choice.back)))
}

/// Where the language picker returns: a path on this console, in visible
/// ASCII (a control character would make an invalid `Location` header), or
/// the start page. Never another site (`//host`, `/\\host`).
pub fn local_path(back: Option<String>) -> String {
    back.filter(|b| {
        b.starts_with('/')
            && !b.starts_with("//")
            && !b.contains('\\')
            && b.len() <= 2048
            && b.bytes().all(|c| c.is_ascii_graphic())
    })
    .unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_picker_returns_only_to_a_plain_local_path() {
        let back = |b: &str| local_path(Some(b.to_owned()));
        assert_eq!(
            back("/referrals?direction=ALL&status="),
            "/referrals?direction=ALL&status="
        );
        assert_eq!(back("//evil.example/"), "/");
        assert_eq!(back("/\\evil.example"), "/");
        assert_eq!(back("https://evil.example/"), "/");
        assert_eq!(back("/x\r\nSet-Cookie: a=b"), "/");
        assert_eq!(back("/café"), "/");
        assert_eq!(local_path(None), "/");
    }
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
            visit.finish(&state, redirect_to(&url))
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
            let mut response = redirect_to("/referrals").into_response();
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
    let mut response = redirect_to(&target).into_response();
    // The browser forgets the cookie too.
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

//! Signing in and out: the sign-in form, choosing a PIN for a new code,
//! signing out, and the quick exit.

use super::*;
use crate::error::NodeError;

pub(super) async fn start(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, q.lang.as_deref()).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
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

pub(super) async fn sign_in(
    State(portal): State<Arc<Portal>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let form = match checked_form(&visit, &headers, &body) {
        Ok(form) => form,
        Err(err) => return error_page(&portal, &visit, err),
    };
    // The client's attempts, before any code is looked at.
    let client = portal
        .throttle
        .client(peer.map(|axum::Extension(info)| info.0), &headers);
    match portal.throttle.count(&portal.node.db, client).await {
        Ok(throttle::Attempt::Allowed) => {}
        Ok(throttle::Attempt::Refused {
            until,
            audited,
            window,
        }) => {
            if !audited {
                // Once a window, at least: the refusals after the one in the
                // log would only fill it for whoever floods the portal. A
                // refusal whose entry cannot be written is not answered as
                // one, and leaves the next to be audited.
                let event = credentials::survivor_event(
                    &portal.node,
                    AuditKind::PortalSignIn,
                    Decision::Deny,
                    "TOO_MANY_ATTEMPTS",
                    None,
                );
                if let Err(err) = portal.node.audit.append(event).await {
                    return error_page(&portal, &visit, NodeError::from(err).into());
                }
                portal
                    .throttle
                    .refusal_audited(&portal.node.db, &window)
                    .await;
            }
            let chrome = portal.chrome(&visit, "/");
            let problem = Some(chrome.t1("sign-in-throttled", "time", &time_text(until)));
            return with_code(
                html(
                    &visit,
                    StatusCode::TOO_MANY_REQUESTS,
                    SignInPage { chrome, problem },
                ),
                "TOO_MANY_ATTEMPTS",
            );
        }
        Err(err) => return error_page(&portal, &visit, NodeError::from(err).into()),
    }
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
            let fresh = async {
                portal.sessions.remove(&visit.token).await?;
                portal
                    .sessions
                    .create(
                        visit.session.lang,
                        Some(SignedIn {
                            survivor_id,
                            code_issued_at,
                            pin_chosen,
                        }),
                    )
                    .await
            }
            .await;
            let token = match fresh {
                Ok((token, _)) => token,
                Err(err) => return error_page(&portal, &visit, NodeError::from(err).into()),
            };
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

pub(super) async fn choose_pin_page(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, q.lang.as_deref()).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
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

pub(super) async fn choose_pin(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
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
        Ok(true) => match portal.sessions.set_pin_chosen(&visit.token).await {
            Ok(()) => redirect("/home", None),
            Err(err) => error_page(&portal, &visit, NodeError::from(err).into()),
        },
        // The code was replaced, or a PIN chosen elsewhere: sign in again.
        Ok(false) => match portal.sessions.remove(&visit.token).await {
            Ok(()) => redirect("/", Some(expired_cookie())),
            Err(err) => error_page(&portal, &visit, NodeError::from(err).into()),
        },
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

pub(super) async fn sign_out(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    if let Err(err) = checked_form(&visit, &headers, &body) {
        return error_page(&portal, &visit, err);
    }
    // Signing out must end the session: if it cannot, say so.
    if let Err(err) = portal.sessions.remove(&visit.token).await {
        return error_page(&portal, &visit, NodeError::from(err).into());
    }
    redirect("/", Some(expired_cookie()))
}

/// The quick exit: ends the session, asks the browser to forget this site's
/// cookies and cache, and leaves for the neutral site.
pub(super) async fn quick_exit(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    // Leaving quickly is never held up: the cookie is cleared below
    // whatever the store answers, and a failure is logged.
    if let Some(token) = cookie_token(&headers)
        && let Err(err) = portal.sessions.remove(&token).await
    {
        tracing::error!(error = %err, "ending a portal session on quick exit failed");
    }
    let mut response = redirect(&portal.config.quick_exit_url, Some(expired_cookie()));
    response.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}

/// The shared page rules, then the portal's own.
static STYLESHEET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    exchange_service::pages::stylesheet(include_str!("../../static/portal.css"))
});

pub(super) async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET.as_str(),
    )
        .into_response()
}

pub(super) async fn not_found(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    error_page(&portal, &visit, PortalError::NotFound)
}

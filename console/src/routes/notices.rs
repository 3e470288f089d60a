//! The live notice on an open page: a server-sent event stream at
//! `/notices` that reads the agency's notifications through the gateway
//! (`notifications(since)`, scattered to every node) every
//! `session.notice_seconds` and announces the new ones, in the caseworker's
//! language, with a link to what they are about. `static/console.js`, the
//! console's only script, shows them in a polite live region; a page works
//! the same without it.
//!
//! The stream reads the session without counting as activity, so a page
//! left open does not keep a session alive; it ends when the session does.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use exchange_schema::Purpose;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::cookie;
use crate::ConsoleState;
use crate::i18n::{Lang, translate};
use crate::session::SESSION_COOKIE;

/// Notifications read per poll.
const PAGE: i64 = 50;

#[derive(Deserialize)]
struct Answer {
    notifications: Connection,
}

#[derive(Deserialize)]
struct Connection {
    nodes: Vec<Notification>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Notification {
    id: String,
    kind: String,
    subject_id: String,
    survivor_id: Option<String>,
    created_at: String,
}

/// The notice for `n` in `lang`: its words and where its link goes.
fn notice(n: &Notification, lang: Lang) -> Option<(String, String)> {
    let (id, href) = match n.kind.as_str() {
        "REFERRAL_RECEIVED" => (
            "live-referral-received",
            format!("/referrals/{}", n.subject_id),
        ),
        "REFERRAL_ANSWERED" => (
            "live-referral-answered",
            format!("/referrals/{}", n.subject_id),
        ),
        "REFERRAL_WITHDRAWN" => (
            "live-referral-withdrawn",
            format!("/referrals/{}", n.subject_id),
        ),
        "FOLLOW_UP_DUE" => ("live-follow-up-due", "/follow-ups".to_owned()),
        "BREAK_GLASS_OPENED" | "BREAK_GLASS_READ" => ("live-break-glass", "/review".to_owned()),
        "RECORD_ERASED" => ("live-record-erased", "/".to_owned()),
        "CARE_PLAN_AGREED" => (
            "live-care-plan-agreed",
            format!("/survivors/{}", n.survivor_id.as_deref()?),
        ),
        _ => return None,
    };
    Some((translate(lang, id, None), href))
}

struct Poll {
    state: Arc<ConsoleState>,
    token: String,
    since: String,
    seen: HashSet<String>,
    first: bool,
    done: bool,
}

/// `/notices`: the event stream (signed-in sessions only; otherwise 401).
pub async fn notices(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    };
    // Not a page: no redirect and no new session, just the refusal.
    if state
        .sessions
        .peek(&token)
        .and_then(|s| s.signed_in)
        .is_none()
    {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    let since = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let interval = state.notice_interval;
    let poll = Poll {
        state,
        token,
        since,
        seen: HashSet::new(),
        first: true,
        done: false,
    };
    let stream = futures::stream::unfold(poll, move |mut poll| async move {
        if poll.done {
            return None;
        }
        if !poll.first {
            tokio::time::sleep(interval).await;
        }
        poll.first = false;
        let events = poll.once().await;
        Some((futures::stream::iter(events), poll))
    })
    .flatten();
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

impl Poll {
    /// One read of the notifications: the events to send.
    async fn once(&mut self) -> Vec<Result<Event, Infallible>> {
        let Some(session) = self.state.sessions.peek(&self.token) else {
            self.done = true;
            return vec![Ok(Event::default().event("ended").data("session"))];
        };
        let Some(signed_in) = session.signed_in else {
            self.done = true;
            return vec![Ok(Event::default().event("ended").data("session"))];
        };
        let lang = session.lang.unwrap_or(Lang::En);
        let answer: Result<Answer, _> = self
            .state
            .gateway
            .execute(
                &signed_in.access_token,
                Purpose::CaseManagement,
                "query($since: DateTime, $first: Int) { notifications(since: $since, first: $first) \
                 { nodes { id kind subjectId survivorId createdAt } } }",
                json!({ "since": self.since, "first": PAGE }),
            )
            .await;
        let nodes = match answer {
            Ok(a) => a.notifications.nodes,
            Err(e) => {
                tracing::info!(code = e.code(), %e, "live notices could not read notifications");
                if matches!(
                    e,
                    crate::error::ConsoleError::Gateway {
                        code: exchange_schema::ErrorCode::Unauthenticated,
                        ..
                    }
                ) {
                    self.done = true;
                    return vec![Ok(Event::default().event("ended").data("token"))];
                }
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        for n in nodes {
            if !self.seen.insert(n.id.clone()) {
                continue;
            }
            if n.created_at > self.since {
                self.since = n.created_at.clone();
            }
            if let Some((text, href)) = notice(&n, lang) {
                let data = json!({ "text": text, "href": href }).to_string();
                events.push(Ok(Event::default().event("notice").id(n.id).data(data)));
            }
        }
        events
    }
}

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
//! A session holds at most [`MOST_STREAMS_PER_SESSION`] streams at once
//! (a caseworker's open tabs); one more is refused with 429, so no session
//! can make the console poll the gateway without bound.

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

/// Live-notice streams one session may hold open at once.
pub const MOST_STREAMS_PER_SESSION: usize = 4;

/// The streams open per session (by the session's cookie value).
#[derive(Default)]
pub struct OpenStreams(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl std::fmt::Debug for OpenStreams {
    /// How many sessions have streams open; never their cookies.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.lock().map(|o| o.len()).unwrap_or_default();
        f.debug_struct("OpenStreams")
            .field("sessions", &open)
            .finish()
    }
}

impl OpenStreams {
    /// A slot for one more stream of `session`, or `None` when it holds
    /// the most already.
    fn take(self: &Arc<Self>, session: &str) -> Option<StreamSlot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(session.to_owned()).or_default();
        if *count >= MOST_STREAMS_PER_SESSION {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: self.clone(),
            session: session.to_owned(),
        })
    }
}

/// One open stream; its place is given back when the stream ends or the
/// browser goes.
struct StreamSlot {
    streams: Arc<OpenStreams>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

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
    _slot: StreamSlot,
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
    let Some(slot) = state.notice_streams.take(&token) else {
        return axum::http::StatusCode::TOO_MANY_REQUESTS.into_response();
    };
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
        _slot: slot,
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
        // With shared sessions, the session as the store holds it now: a
        // sign-out at another replica ends this stream too.
        if let Some(shared) = &self.state.shared_sessions {
            match shared.load(&self.token).await {
                Ok(Some(session)) => self.state.sessions.put(&self.token, session),
                Ok(None) => self.state.sessions.forget(&self.token),
                Err(err) => {
                    tracing::warn!(error = %err, "the session store failed; the live notices stop");
                    self.done = true;
                    return vec![Ok(Event::default().event("ended").data("unavailable"))];
                }
            }
        }
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

//! Notifications as a GraphQL subscription, over graphql-transport-ws at
//! `<graphql path>/ws`: `subscription { notifications { id kind subjectId
//! survivorId createdAt } }`.
//!
//! The client authenticates in the `connection_init` payload with the same
//! headers a request carries (`Authorization`, `x-exchange-purpose`),
//! verified by the same rules ([`crate::pipeline::authenticate`]). The
//! gateway then reads every node's `notifications` feed as that caller (the
//! token passed on unchanged, so each node decides what the caller's agency
//! receives) about every [`POLL_EVERY`], and sends each new notification as
//! it arrives: the client does not poll. Each delivery is written in the
//! gateway's audit log (`NOTIFICATION_DELIVERED`) before it is sent; when
//! the log cannot be written the subscription ends with
//! `AUDIT_UNAVAILABLE`. Notifications carry kinds and global IDs only; the
//! subscriber fetches through the disclosure path.
//!
//! Delivery is at least once: a client that reconnects passes `since` (the
//! `createdAt` of the last notification it handled) and receives everything
//! from then on again, each notification with its stable `id`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{
    Context, Data, EmptyMutation, ID, Object, Result, Schema, SimpleObject, Subscription,
};
use axum::http::HeaderMap;
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Decision, ErrorCode, NotificationKind};
use futures::Stream;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::pipeline::{Caller, Gateway, authenticate};

/// How often every node's feed is read for a subscriber.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// The subscription schema the websocket endpoint serves.
pub type NotificationSchema = Schema<SubscriptionQuery, EmptyMutation, NotificationSubscription>;

/// Builds the schema, with the gateway it reads the nodes through.
pub fn schema(gateway: Arc<Gateway>) -> NotificationSchema {
    Schema::build(SubscriptionQuery, EmptyMutation, NotificationSubscription)
        .data(gateway)
        .limit_depth(4)
        .finish()
}

/// A notification: a kind and global IDs, never record contents.
#[derive(SimpleObject, Clone, Debug)]
pub struct Notification {
    /// `<node agency>:<sequence>`: stable, to recognise one delivered twice.
    pub id: ID,
    pub kind: NotificationKind,
    /// What it is about: a referral, a follow-up, a care plan version, a
    /// break-glass window.
    pub subject_id: ID,
    pub survivor_id: Option<ID>,
    pub created_at: OffsetDateTime,
}

/// The query root the schema needs.
pub struct SubscriptionQuery;

#[Object]
impl SubscriptionQuery {
    /// The kinds of notification there are.
    async fn notification_kinds(&self) -> Vec<NotificationKind> {
        NotificationKind::ALL.to_vec()
    }
}

/// The subscription root.
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The caller's agency's notifications from every node, as they come:
    /// those created from `since` on (from now when left out), of `kinds`
    /// (every kind when left out).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        since: Option<OffsetDateTime>,
        kinds: Option<Vec<NotificationKind>>,
    ) -> Result<impl Stream<Item = Result<Notification>>> {
        let caller = ctx
            .data_opt::<Caller>()
            .ok_or_else(|| {
                coded(
                    ErrorCode::Unauthenticated,
                    "authenticate in connection_init",
                )
            })?
            .clone();
        let gateway = ctx.data::<Arc<Gateway>>()?.clone();
        let feed = Feed {
            gateway,
            caller,
            since: since.unwrap_or_else(OffsetDateTime::now_utc),
            kinds,
            cursors: HashMap::new(),
            ready: VecDeque::new(),
            first_poll: true,
            ended: false,
        };
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            let item = feed.next().await?;
            Some((item, feed))
        }))
    }
}

fn coded(code: ErrorCode, message: &str) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// The `connection_init` payload, read as request headers and verified as
/// a request's are; the caller becomes the connection's data.
pub async fn authenticate(gateway: Arc<Gateway>, payload: Value) -> Result<Data> {
    let mut headers = HeaderMap::new();
    if let Some(fields) = payload.as_object() {
        for (name, value) in fields {
            let (Ok(name), Some(value)) = (
                axum::http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                value.as_str().and_then(|v| v.parse().ok()),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
    }
    let principal = authenticate::principal(&gateway.jwks, &headers)
        .await
        .map_err(|e| coded(ErrorCode::Unauthenticated, &e.to_string()))?;
    let caller = authenticate::caller(&headers, principal)
        .map_err(|e| coded(ErrorCode::BadUserInput, &e.to_string()))?;
    if caller.purpose.is_none() {
        return Err(coded(
            ErrorCode::PurposeRequired,
            "declare a purpose (x-exchange-purpose) in connection_init",
        ));
    }
    let mut data = Data::default();
    data.insert(caller);
    Ok(data)
}

const FEED: &str = "query($since: DateTime, $after: String) { notifications(since: $since, \
    first: 50, after: $after) { edges { cursor node { id kind subjectId survivorId createdAt } } } }";

/// One subscriber's reading of every node's feed.
struct Feed {
    gateway: Arc<Gateway>,
    caller: Caller,
    since: OffsetDateTime,
    kinds: Option<Vec<NotificationKind>>,
    /// Each node's position in its feed.
    cursors: HashMap<AgencyId, String>,
    /// Read, not yet sent.
    ready: VecDeque<Notification>,
    first_poll: bool,
    ended: bool,
}

impl Feed {
    async fn next(&mut self) -> Option<Result<Notification>> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(notification) = self.ready.pop_front() {
                if let Err(err) = self.audit(&notification).await {
                    self.ended = true;
                    return Some(Err(err));
                }
                return Some(Ok(notification));
            }
            if !self.first_poll {
                tokio::time::sleep(POLL_EVERY).await;
            }
            self.first_poll = false;
            if let Err(err) = self.poll().await {
                self.ended = true;
                return Some(Err(err));
            }
        }
    }

    /// Reads every node's feed once, in federation order.
    async fn poll(&mut self) -> Result<()> {
        let since = self
            .since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let agencies = self.gateway.transport.agencies().to_vec();
        for agency in agencies {
            let body = json!({ "query": FEED, "variables": {
                "since": since, "after": self.cursors.get(&agency) } });
            let Ok(body) = serde_json::to_vec(&body) else {
                continue;
            };
            let traceparent = crate::telemetry::TraceParent::generate().header();
            let answer = self
                .gateway
                .transport
                .call(&agency, body, &self.caller.forwarded, &traceparent)
                .await;
            // A node that does not answer is read again next time.
            let Ok(answer) = answer else {
                continue;
            };
            let body: Value =
                serde_json::from_slice(&serde_json::to_vec(&answer.body).unwrap_or_default())
                    .unwrap_or_default();
            if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
                let code = error["extensions"]["code"].as_str().unwrap_or_default();
                // What the node refuses the caller (a role, a purpose), it
                // refuses at every node: the subscription ends with it.
                if matches!(code, "FORBIDDEN" | "UNAUTHENTICATED" | "PURPOSE_REQUIRED") {
                    let code = ErrorCode::parse(code).unwrap_or(ErrorCode::Forbidden);
                    return Err(coded(
                        code,
                        error["message"].as_str().unwrap_or("refused by a node"),
                    ));
                }
                continue;
            }
            for edge in body["data"]["notifications"]["edges"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(cursor) = edge["cursor"].as_str() {
                    self.cursors.insert(agency.clone(), cursor.to_owned());
                }
                if let Some(n) = parse(&edge["node"])
                    && self.kinds.as_ref().is_none_or(|k| k.contains(&n.kind))
                {
                    self.ready.push_back(n);
                }
            }
        }
        Ok(())
    }

    /// The delivery's entry in the gateway's log, durable before it is
    /// sent.
    async fn audit(&self, n: &Notification) -> Result<()> {
        let principal = &self.caller.principal;
        let mut event = AuditEvent::new(
            AuditKind::NotificationDelivered,
            Decision::Permit,
            "SUBSCRIPTION",
        );
        event.actor_agency = Some(principal.agency.clone());
        event.actor_user = Some(principal.user.clone());
        event.actor_roles = principal.roles.clone();
        event.purpose = self.caller.purpose;
        event.subject = Some(n.id.to_string());
        event.explanation = Some(format!("{} about {}", n.kind, n.subject_id.as_str()));
        event.survivor = n
            .survivor_id
            .as_deref()
            .and_then(|s| exchange_schema::GlobalId::parse(s).ok());
        self.gateway.audit.append(event).await.map_err(|err| {
            tracing::error!(error = ?err, "auditing a notification delivery failed");
            coded(
                ErrorCode::AuditUnavailable,
                "the audit log cannot be written, so no notification is sent; reconnect with `since`",
            )
        })?;
        Ok(())
    }
}

fn parse(node: &Value) -> Option<Notification> {
    Some(Notification {
        id: ID(node["id"].as_str()?.to_owned()),
        kind: node["kind"].as_str()?.parse().ok()?,
        subject_id: ID(node["subjectId"].as_str()?.to_owned()),
        survivor_id: node["survivorId"].as_str().map(|s| ID(s.to_owned())),
        created_at: OffsetDateTime::parse(
            node["createdAt"].as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?,
    })
}

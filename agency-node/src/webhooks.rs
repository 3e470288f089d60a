//! Notifications delivered to the webhooks of agencies that run their own
//! systems: the `[agency.webhook]` of the federation file (read again when
//! the file changes), signed as Standard Webhooks do.
//!
//! Each notification of the outbox for such an agency gets a delivery row;
//! a worker ([`spawn`]) posts it, signed with the agency's secret
//! (HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`, sent as
//! `webhook-signature: v1,<base64>`), until the endpoint answers 2xx. A
//! failure is retried after `first_retry_ms`, then twice as long each time;
//! after `max_attempts` the notification is a dead letter, listed to the
//! agency's supervisors (`webhookDeadLetters`) and sent again on request
//! (`retryWebhookDelivery`). Delivery is at least once: the receiver
//! recognises a repeat by `webhook-id`. Every attempt is audited
//! (`WEBHOOK_DELIVERY`). The body carries the kind and global IDs only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Result, SimpleObject};
use aws_lc_rs::hmac;
use base64::Engine as _;
use exchange_schema::{
    AgencyId, AuditEvent, AuditKind, Decision, GlobalId, NotificationKind, Role,
};
use exchange_trust::{Federation, Webhook};
use serde_json::json;
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::config::WebhooksConfig;
use crate::error::NodeError;
use crate::graphql::{caller, decode_cursor, encode_cursor, page_size, state};
use crate::state::NodeState;
use crate::store::{from_ms, placeholders, to_ms};

/// The signature header's value for `body`, as Standard Webhooks define it.
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// The webhooks of the federation file, read again when it changes.
struct Hooks {
    file: PathBuf,
    modified: Option<SystemTime>,
    by_agency: HashMap<AgencyId, Webhook>,
}

impl Hooks {
    fn refresh(&mut self) {
        let modified = std::fs::metadata(&self.file)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified == self.modified {
            return;
        }
        match Federation::load(&self.file) {
            Ok(federation) => {
                self.by_agency = federation
                    .agencies()
                    .iter()
                    .filter_map(|a| a.webhook.clone().map(|w| (a.id.clone(), w)))
                    .collect();
                self.modified = modified;
            }
            Err(err) => tracing::warn!(error = %err, "reading the federation file for webhooks"),
        }
    }
}

/// Runs the delivery worker until the database closes.
pub fn spawn(state: Arc<NodeState>, config: WebhooksConfig, federation_file: &Path) {
    let mut hooks = Hooks {
        file: federation_file.to_owned(),
        modified: None,
        by_agency: HashMap::new(),
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(config.timeout_ms.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "no HTTP client for webhooks");
            return;
        }
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(config.poll_ms.max(10)));
        loop {
            ticker.tick().await;
            if state.db.pool().is_closed() {
                return;
            }
            hooks.refresh();
            if hooks.by_agency.is_empty() {
                continue;
            }
            if let Err(err) = deliver_due(&state, &hooks.by_agency, &config, &client).await {
                tracing::warn!(error = ?err, "delivering webhooks failed");
            }
        }
    });
}

/// One pass: queue deliveries for new notifications of agencies with a
/// webhook, then attempt every delivery that is due. How many attempted.
async fn deliver_due(
    state: &NodeState,
    hooks: &HashMap<AgencyId, Webhook>,
    config: &WebhooksConfig,
    client: &reqwest::Client,
) -> Result<usize, NodeError> {
    let agencies: Vec<&str> = hooks.keys().map(AgencyId::as_str).collect();
    let now = exchange_schema::audit::now_millis();
    let mut conn = crate::store::acquire(&state.db).await?;
    let sql = format!(
        "INSERT INTO webhook_deliveries (seq, recipient, status, attempts, next_attempt_at, \
         updated_at) SELECT n.seq, n.recipient, 'PENDING', 0, $1, $1 FROM notifications n \
         LEFT JOIN webhook_deliveries d ON d.seq = n.seq WHERE d.seq IS NULL AND n.recipient \
         IN ({})",
        placeholders(2, agencies.len())
    );
    let mut query = sqlx::query(&sql).bind(to_ms(now));
    for agency in &agencies {
        query = query.bind(*agency);
    }
    query.execute(&mut *conn).await?;
    let due = sqlx::query(
        "SELECT d.seq, d.recipient, d.attempts, n.kind, n.subject_id, n.survivor_id, \
         n.created_at FROM webhook_deliveries d JOIN notifications n ON n.seq = d.seq \
         WHERE d.status = 'PENDING' AND d.next_attempt_at <= $1 ORDER BY d.seq LIMIT 50",
    )
    .bind(to_ms(now))
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let mut attempted = 0;
    for row in &due {
        let seq: i64 = row.try_get("seq").map_err(NodeError::internal)?;
        let recipient = AgencyId::parse(
            &row.try_get::<String, _>("recipient")
                .map_err(NodeError::internal)?,
        )?;
        let Some(hook) = hooks.get(&recipient) else {
            continue;
        };
        let attempts: i64 = row.try_get("attempts").map_err(NodeError::internal)?;
        let id = format!("{}:{seq}", state.agency);
        let created: i64 = row.try_get("created_at").map_err(NodeError::internal)?;
        let body = json!({
            "id": id,
            "type": row.try_get::<String, _>("kind").map_err(NodeError::internal)?,
            "subjectId": row.try_get::<String, _>("subject_id").map_err(NodeError::internal)?,
            "survivorId": row.try_get::<Option<String>, _>("survivor_id").map_err(NodeError::internal)?,
            "createdAt": from_ms(created).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "from": state.agency.as_str(),
        })
        .to_string();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(hook.secret(), &id, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
            Err(err) if err.is_timeout() => Some("no answer in time".to_owned()),
            Err(err) if err.is_connect() => Some("connection refused or unreachable".to_owned()),
            Err(_) => Some("the request failed".to_owned()),
        };
        record_attempt(state, config, seq, &recipient, attempts + 1, failure).await?;
        attempted += 1;
    }
    Ok(attempted)
}

/// Writes an attempt's outcome with its audit entry.
async fn record_attempt(
    state: &NodeState,
    config: &WebhooksConfig,
    seq: i64,
    recipient: &AgencyId,
    attempts: i64,
    failure: Option<String>,
) -> Result<(), NodeError> {
    let now = exchange_schema::audit::now_millis();
    let (status, reason, next) = match &failure {
        None => ("DELIVERED", "DELIVERED", now),
        Some(_) if attempts >= i64::from(config.max_attempts.max(1)) => {
            ("DEAD", "DEAD_LETTER", now)
        }
        Some(_) => {
            let wait = config
                .first_retry_ms
                .saturating_mul(1 << (attempts - 1).clamp(0, 20))
                .min(3_600_000);
            (
                "PENDING",
                "RETRY",
                now + time::Duration::milliseconds(wait as i64),
            )
        }
    };
    let mut event = AuditEvent::new(AuditKind::WebhookDelivery, Decision::Permit, reason);
    event.subject = Some(format!("{}:{seq}", state.agency));
    event.explanation = Some(format!(
        "to {recipient}, attempt {attempts}{}",
        failure
            .as_deref()
            .map(|f| format!(": {f}"))
            .unwrap_or_default()
    ));
    let error = failure.clone();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $2, attempts = $3, \
                     next_attempt_at = $4, last_error = $5, updated_at = $6 WHERE seq = $1",
                )
                .bind(seq)
                .bind(status)
                .bind(attempts)
                .bind(to_ms(next))
                .bind(error)
                .bind(to_ms(now))
                .execute(conn)
                .await?;
                Ok(((), event))
            })
        })
        .await
}

/// A notification its agency's webhook never took.
#[derive(SimpleObject, Clone)]
pub struct WebhookDeadLetter {
    /// The notification's ID (`<node agency>:<sequence>`).
    pub id: ID,
    pub kind: NotificationKind,
    pub subject_id: ID,
    pub attempts: i64,
    /// The last failure: an HTTP status, or why no answer came.
    pub last_error: Option<String>,
    pub failed_at: OffsetDateTime,
}

fn supervisor_of_own(ctx: &Context<'_>) -> Result<(), NodeError> {
    let caller = caller(ctx)?;
    if caller.principal.roles.contains(&Role::Supervisor) {
        Ok(())
    } else {
        Err(NodeError::Forbidden(
            "dead letters are for the agency's supervisors".into(),
        ))
    }
}

/// `webhookDeadLetters`: the caller's agency's dead letters at this node,
/// oldest first (supervisors).
pub async fn dead_letters(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, WebhookDeadLetter>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    if let Err(err) = supervisor_of_own(ctx) {
        return Err(state.deny(caller, err, None, None).await.into());
    }
    let limit = page_size(first)?;
    let after = after
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map_or(0, |(seq, _)| seq);
    let mut conn = crate::store::acquire(&state.db).await?;
    let rows = sqlx::query(
        "SELECT d.seq, d.attempts, d.last_error, d.updated_at, n.kind, n.subject_id \
         FROM webhook_deliveries d JOIN notifications n ON n.seq = d.seq WHERE \
         d.recipient = $1 AND d.status = 'DEAD' AND d.seq > $2 ORDER BY d.seq LIMIT $3",
    )
    .bind(caller.principal.agency.as_str())
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let has_next = rows.len() as i64 > limit;
    let mut connection = Connection::new(false, has_next);
    for row in rows.iter().take(limit as usize) {
        let seq: i64 = row.try_get("seq").map_err(NodeError::internal)?;
        connection.edges.push(Edge::new(
            encode_cursor(seq, "d"),
            WebhookDeadLetter {
                id: ID(format!("{}:{seq}", state.agency)),
                kind: row
                    .try_get::<String, _>("kind")
                    .map_err(NodeError::internal)?
                    .parse()
                    .map_err(NodeError::internal)?,
                subject_id: ID(row.try_get("subject_id").map_err(NodeError::internal)?),
                attempts: row.try_get("attempts").map_err(NodeError::internal)?,
                last_error: row.try_get("last_error").map_err(NodeError::internal)?,
                failed_at: from_ms(row.try_get("updated_at").map_err(NodeError::internal)?),
            },
        ));
    }
    if !connection.edges.is_empty() {
        let mut event = caller.event(
            AuditKind::Disclosure,
            Decision::Permit,
            "WEBHOOK_DEAD_LETTERS",
        );
        event.purpose = Some(purpose);
        event.subject = Some(format!("{} dead letters", connection.edges.len()));
        state.audit.append(event).await.map_err(NodeError::from)?;
    }
    Ok(connection)
}

/// `retryWebhookDelivery`: sends a dead letter again (a supervisor of the
/// agency it is for); it is attempted on the next pass, with a fresh count.
pub async fn retry(ctx: &Context<'_>, id: &str) -> Result<WebhookDeadLetter> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    caller.purpose()?;
    let gid: GlobalId = state.local_id(id)?;
    if let Err(err) = supervisor_of_own(ctx) {
        return Err(state
            .deny(caller, err, None, Some(gid.to_string()))
            .await
            .into());
    }
    let seq: i64 = gid
        .local()
        .parse()
        .map_err(|_| NodeError::bad_input("not a notification ID"))?;
    let now = exchange_schema::audit::now_millis();
    let mut event = caller.event(AuditKind::WebhookDelivery, Decision::Permit, "REQUEUED");
    event.subject = Some(gid.to_string());
    let agency = caller.principal.agency.clone();
    let requeued = state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, \
                     next_attempt_at = $3, updated_at = $3 WHERE seq = $1 AND recipient = $2 \
                     AND status = 'DEAD'",
                )
                .bind(seq)
                .bind(agency.as_str())
                .bind(to_ms(now))
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(NodeError::NotFound("dead letter"));
                }
                let row = sqlx::query(
                    "SELECT n.kind, n.subject_id, d.last_error FROM webhook_deliveries d \
                     JOIN notifications n ON n.seq = d.seq WHERE d.seq = $1",
                )
                .bind(seq)
                .fetch_one(&mut *conn)
                .await?;
                let kind: NotificationKind = row
                    .try_get::<String, _>("kind")?
                    .parse()
                    .map_err(NodeError::internal)?;
                let subject: String = row.try_get("subject_id")?;
                let last_error: Option<String> = row.try_get("last_error")?;
                Ok(((kind, subject, last_error), event))
            })
        })
        .await;
    match requeued {
        Ok((kind, subject, last_error)) => Ok(WebhookDeadLetter {
            id: ID(gid.to_string()),
            kind,
            subject_id: ID(subject),
            attempts: 0,
            last_error,
            failed_at: now,
        }),
        Err(err @ NodeError::NotFound(_)) => Err(state
            .deny(caller, err, None, Some(gid.to_string()))
            .await
            .into()),
        Err(err) => Err(err.into()),
    }
}

/// The webhook mutation, merged into the node's `Mutation`.
#[derive(Default)]
pub struct WebhookMutation;

#[async_graphql::Object]
impl WebhookMutation {
    /// Sends a dead letter to the agency's webhook again (supervisors of
    /// the agency it is for).
    async fn retry_webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDeadLetter> {
        retry(ctx, &id).await
    }
}

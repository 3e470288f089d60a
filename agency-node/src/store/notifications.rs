//! The node's notification outbox: one row per notification, written in
//! the transaction of the change it tells of (so it exists exactly when the
//! change does), numbered in commit order (every write holds the audit
//! log's lock), and read by the recipient agency in that order.

use exchange_schema::{AgencyId, GlobalId, NotificationKind};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, to_ms};

/// A notification as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    pub seq: i64,
    pub recipient: AgencyId,
    pub kind: NotificationKind,
    /// The global ID of what it is about (a referral, a follow-up, a care
    /// plan version, a break-glass window).
    pub subject: String,
    /// The survivor's global ID.
    pub survivor: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Queues a notification inside the current transaction.
pub async fn queue(
    conn: &mut AnyConnection,
    recipient: &AgencyId,
    kind: NotificationKind,
    subject: &str,
    survivor: Option<&GlobalId>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (recipient, kind, subject_id, survivor_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(recipient.as_str())
    .bind(kind.as_str())
    .bind(subject)
    .bind(survivor.map(ToString::to_string))
    .bind(to_ms(exchange_schema::audit::now_millis()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The recipient's notifications after `after` (a sequence number), from
/// `since` on, oldest first; at most `limit`.
pub async fn page(
    conn: &mut AnyConnection,
    recipient: &AgencyId,
    after: i64,
    since: Option<OffsetDateTime>,
    limit: i64,
) -> anyhow::Result<Vec<NotificationRecord>> {
    let rows = sqlx::query(
        "SELECT seq, recipient, kind, subject_id, survivor_id, created_at FROM notifications \
         WHERE recipient = $1 AND seq > $2 AND created_at >= $3 ORDER BY seq LIMIT $4",
    )
    .bind(recipient.as_str())
    .bind(after)
    .bind(since.map_or(0, to_ms))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NotificationRecord {
                seq: row.try_get("seq")?,
                recipient: AgencyId::parse(&row.try_get::<String, _>("recipient")?)?,
                kind: row.try_get::<String, _>("kind")?.parse()?,
                subject: row.try_get("subject_id")?,
                survivor: row.try_get("survivor_id")?,
                created_at: from_ms(row.try_get("created_at")?),
            })
        })
        .collect()
}

/// Open follow-ups due before `before` whose FOLLOW_UP_DUE notification is
/// not queued yet: (follow-up ID, survivor ID, assigned agency).
pub async fn due_unnotified(
    conn: &mut AnyConnection,
    before: OffsetDateTime,
    limit: i64,
) -> anyhow::Result<Vec<(String, String, AgencyId)>> {
    let rows = sqlx::query(
        "SELECT id, survivor_id, assigned_agency FROM follow_ups WHERE status = 'OPEN' \
         AND due_notified_at IS NULL AND due_at < $1 ORDER BY due_at, id LIMIT $2",
    )
    .bind(to_ms(before))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("survivor_id")?,
                AgencyId::parse(&row.try_get::<String, _>("assigned_agency")?)?,
            ))
        })
        .collect()
}

/// Marks a follow-up's due notification as queued; false when another
/// sweep did it first.
pub async fn mark_due_notified(
    conn: &mut AnyConnection,
    follow_up: &str,
    at: OffsetDateTime,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE follow_ups SET due_notified_at = $2 WHERE id = $1 AND due_notified_at IS NULL",
    )
    .bind(follow_up)
    .bind(to_ms(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! Notifications at the node: what is queued in the outbox
//! ([`crate::store::notifications`]) besides the changes that queue their
//! own (a referral sent, answered or withdrawn, a plan agreed, a break-glass
//! opening), namely follow-ups falling due, and the feed the recipient
//! agency reads (`notifications`), which the gateway turns into a
//! subscription.
//!
//! A follow-up falls due [`DUE_NOTICE`] before its time: one scheduled that
//! close queues its notice at once, in its own transaction; the others are
//! queued by a sweep ([`spawn_due_sweeper`]), each with an audit entry
//! (`FOLLOW_UP_RECORDED`, reason `DUE_NOTIFIED`) in one transaction, once.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Result, SimpleObject};
use exchange_schema::{
    AgencyId, AuditEvent, AuditKind, Decision, GlobalId, NotificationKind, Role,
};
use time::OffsetDateTime;

use crate::error::NodeError;
use crate::graphql::{caller, decode_cursor, encode_cursor, page_size, state};
use crate::state::NodeState;
use crate::store::notifications::{self as store, NotificationRecord};

/// How long before a follow-up is due its agency is told.
pub const DUE_NOTICE: time::Duration = time::Duration::hours(24);
/// How often the sweep looks for follow-ups falling due.
pub const DUE_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A notification: a kind and global IDs, never record contents.
#[derive(SimpleObject, Clone)]
pub struct Notification {
    /// `<node agency>:<sequence>`: unique, and in order at each node.
    pub id: ID,
    pub kind: NotificationKind,
    /// The global ID of what it is about: a referral, a follow-up, a care
    /// plan version (`<survivor>/care-plan/<n>`), a break-glass window.
    pub subject_id: ID,
    pub survivor_id: Option<ID>,
    pub created_at: OffsetDateTime,
}

impl Notification {
    fn new(node: &AgencyId, n: NotificationRecord) -> Self {
        Self {
            id: ID(format!("{node}:{}", n.seq)),
            kind: n.kind,
            subject_id: ID(n.subject),
            survivor_id: n.survivor.map(ID),
            created_at: n.created_at,
        }
    }
}

/// Queues the FOLLOW_UP_DUE notice of a follow-up being written now, if it
/// is due within [`DUE_NOTICE`] (inside the write's transaction).
pub async fn due_now_if_soon(
    conn: &mut sqlx::AnyConnection,
    owner: &AgencyId,
    follow_up: &crate::store::case::FollowUpRecord,
) -> Result<(), NodeError> {
    let now = exchange_schema::audit::now_millis();
    if follow_up.due_at >= now + DUE_NOTICE {
        return Ok(());
    }
    queue_due(
        conn,
        owner,
        &follow_up.id,
        &follow_up.survivor_id,
        &follow_up.assigned_agency,
        now,
    )
    .await
}

async fn queue_due(
    conn: &mut sqlx::AnyConnection,
    owner: &AgencyId,
    follow_up: &str,
    survivor: &str,
    assigned: &AgencyId,
    now: OffsetDateTime,
) -> Result<(), NodeError> {
    if !store::mark_due_notified(conn, follow_up, now)
        .await
        .map_err(NodeError::internal)?
    {
        return Ok(());
    }
    let survivor = GlobalId::new(owner.clone(), survivor.to_owned())?;
    store::queue(
        conn,
        assigned,
        NotificationKind::FollowUpDue,
        &format!("{owner}:{follow_up}"),
        Some(&survivor),
    )
    .await
    .map_err(NodeError::internal)
}

/// Queues the notice of every open follow-up falling due and not yet
/// notified; how many.
pub async fn sweep_due(state: &NodeState) -> Result<usize, NodeError> {
    let now = exchange_schema::audit::now_millis();
    let mut conn = crate::store::acquire(&state.db).await?;
    let due = store::due_unnotified(&mut conn, now + DUE_NOTICE, 500)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let mut queued = 0;
    for (id, survivor, assigned) in due {
        let mut event = AuditEvent::new(
            AuditKind::FollowUpRecorded,
            Decision::Permit,
            "DUE_NOTIFIED",
        );
        event.survivor = Some(GlobalId::new(state.agency.clone(), survivor.clone())?);
        event.subject = Some(format!("{}:{id}", state.agency));
        event.explanation = Some(format!("{assigned} told"));
        let owner = state.agency.clone();
        state
            .audit
            .record::<_, NodeError, _>(move |conn| {
                Box::pin(async move {
                    queue_due(conn, &owner, &id, &survivor, &assigned, now).await?;
                    Ok(((), event))
                })
            })
            .await?;
        queued += 1;
    }
    Ok(queued)
}

/// Runs [`sweep_due`] every [`DUE_SWEEP_EVERY`] until the database closes.
pub fn spawn_due_sweeper(state: Arc<NodeState>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(DUE_SWEEP_EVERY);
        loop {
            ticker.tick().await;
            if state.db.pool().is_closed() {
                return;
            }
            match sweep_due(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(queued = n, "follow-ups falling due notified"),
                Err(err) => tracing::warn!(error = ?err, "sweeping follow-ups falling due failed"),
            }
        }
    });
}

/// `notifications`: the caller's agency's notifications at this node,
/// oldest first, after a cursor and from `since`. Caseworkers and
/// supervisors only; a page that holds any is audited.
pub async fn feed(
    ctx: &Context<'_>,
    since: Option<OffsetDateTime>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Notification>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let limit = page_size(first)?;
    let after = after
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map_or(0, |(seq, _)| seq);
    let roles = &caller.principal.roles;
    if !roles.contains(&Role::Caseworker) && !roles.contains(&Role::Supervisor) {
        let err = NodeError::Forbidden("notifications go to caseworkers and supervisors".into());
        return Err(state.deny(caller, err, None, None).await.into());
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    let mut rows = store::page(&mut conn, &caller.principal.agency, after, since, limit + 1)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !rows.is_empty() {
        let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "NOTIFICATIONS");
        event.purpose = Some(purpose);
        event.subject = Some(format!("{} notifications", rows.len()));
        state.audit.append(event).await.map_err(NodeError::from)?;
    }
    let mut connection = Connection::new(false, has_next);
    connection.edges.extend(rows.into_iter().map(|n| {
        Edge::new(
            encode_cursor(n.seq, "n"),
            Notification::new(&state.agency, n),
        )
    }));
    Ok(connection)
}

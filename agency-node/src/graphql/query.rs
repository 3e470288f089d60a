//! Read operations of the subgraph, and the federation entity resolvers.
//! Every read of a survivor's categories goes through
//! [`crate::disclosure::disclose`]; `_entities` uses the very same function.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::{AuditKind, Category, Decision, GlobalId, Purpose, ReferralStatus};
use time::OffsetDateTime;

use super::types::{AuditEntry, ConsentGrant, NodeAgency, Referral, Survivor};
use super::{caller, decode_cursor, encode_cursor, page_size, selected_categories, state};
use crate::disclosure::disclose;
use crate::error::NodeError;
use crate::store::referrals::Direction;
use crate::store::{grants, referrals, survivors, to_ms};
use exchange_audit::read::{AuditFilter, entries};

pub struct Query;

/// Which referrals to list, seen from the requesting agency.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ReferralDirection {
    /// Sent to the requesting agency.
    Incoming,
    /// Sent by the requesting agency.
    Outgoing,
    /// Both.
    All,
}

/// What an auditor filters the access log by.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// The agency of the requester.
    pub agency: Option<String>,
    /// A survivor's global ID.
    pub survivor_id: Option<ID>,
    pub purpose: Option<Purpose>,
    pub decision: Option<Decision>,
    /// Only break-glass accesses (true) or only others (false).
    pub break_glass: Option<bool>,
    /// From this time (inclusive).
    pub since: Option<OffsetDateTime>,
    /// Until this time (exclusive).
    pub until: Option<OffsetDateTime>,
}

#[Object]
impl Query {
    /// The agency this node belongs to.
    async fn agency(&self, ctx: &Context<'_>) -> Result<NodeAgency> {
        let state = state(ctx);
        let entry = state.federation.agency(&state.agency).ok_or_else(|| {
            NodeError::internal(anyhow::anyhow!("node agency missing from trust list"))
        })?;
        Ok(NodeAgency {
            id: state.agency.to_string(),
            name: entry.name.clone(),
            kind: state.agency_kind,
        })
    }

    /// A survivor's record, as far as the requester may see it.
    async fn survivor(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Survivor>> {
        survivor_by_id(ctx, &id).await
    }

    /// The node agency's own survivors, in registration order (own staff only).
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn survivors(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Survivor>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let limit = page_size(first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        if !state.is_own_staff(caller) {
            return Err(state
                .deny(
                    caller,
                    NodeError::Forbidden("only the owning agency lists its survivors".into()),
                    None,
                    None,
                )
                .await
                .into());
        }
        let mut conn = crate::store::acquire(&state.db).await?;
        let mut rows = survivors::page(&mut conn, &state.vault, after, limit + 1)
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let cursors: Vec<String> = rows
            .iter()
            .map(|r| encode_cursor(to_ms(r.created_at), &r.id))
            .collect();
        let disclosed = disclose(state, caller, purpose, rows, &selected_categories(ctx)).await?;
        let mut connection = Connection::new(false, has_next);
        connection.edges.extend(
            cursors
                .into_iter()
                .zip(disclosed)
                .map(|(c, d)| Edge::new(c, Survivor::from(d))),
        );
        Ok(connection)
    }

    /// A referral, visible only to the two agencies it joins.
    async fn referral(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Referral>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        caller.purpose()?;
        let gid = state.local_id(&id)?;
        let mut conn = crate::store::acquire(&state.db).await?;
        let record = referrals::get(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?;
        // The two agencies it joins, and the owner of the survivor's
        // record (this node's staff), who sees every referral of its
        // survivors, onward ones included.
        let visible = record.as_ref().is_some_and(|r| {
            r.from_agency == caller.principal.agency
                || r.to_agency == caller.principal.agency
                || state.is_own_staff(caller)
        });
        let Some(record) = record.filter(|_| visible) else {
            // A referral that moved with its survivor says where it went
            // (to any caller: the tombstone names an ID and an agency only).
            let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "referral").await;
            drop(conn);
            return Err(state
                .deny(caller, err, None, Some(gid.to_string()))
                .await
                .into());
        };
        let history = referrals::history(&mut conn, &state.vault, &record.id)
            .await
            .map_err(NodeError::internal)?;
        Ok(Some(Referral::new(state.agency.as_str(), record, history)))
    }

    /// Referrals this node holds that the requesting agency sent or received,
    /// newest first.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn referrals(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ReferralDirection::All")] direction: ReferralDirection,
        status: Option<Vec<ReferralStatus>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Referral>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        caller.purpose()?;
        let limit = page_size(first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let status = status.unwrap_or_default();
        if status.len() > ReferralStatus::ALL.len() {
            return Err(NodeError::bad_input("too many statuses").into());
        }
        let direction = match direction {
            ReferralDirection::Incoming => Direction::Incoming,
            ReferralDirection::Outgoing => Direction::Outgoing,
            ReferralDirection::All => Direction::Both,
        };
        let mut conn = crate::store::acquire(&state.db).await?;
        let mut rows = referrals::page(
            &mut conn,
            &state.vault,
            &caller.principal.agency,
            direction,
            &status,
            after,
            limit + 1,
        )
        .await
        .map_err(NodeError::internal)?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut connection = Connection::new(false, has_next);
        // Histories are read only when the selection asks for them, through
        // `edges { node }` or `nodes` (fragments and aliases included).
        let look = ctx.look_ahead();
        let wants_history = look.field("edges").field("node").field("history").exists()
            || look.field("nodes").field("history").exists();
        let histories = if wants_history {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            referrals::histories(&mut conn, &state.vault, &ids)
                .await
                .map_err(NodeError::internal)?
        } else {
            vec![Vec::new(); rows.len()]
        };
        for (record, history) in rows.into_iter().zip(histories) {
            let cursor = encode_cursor(to_ms(record.created_at), &record.id);
            connection.edges.push(Edge::new(
                cursor,
                Referral::new(state.agency.as_str(), record, history),
            ));
        }
        Ok(connection)
    }

    /// Whether a survivor's case is open, and every time it was closed
    /// (owning agency's caseworkers and supervisors only).
    async fn case_status(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
    ) -> Result<super::case_status::CaseStatus> {
        super::case_status::status(ctx, &survivor_id).await
    }

    /// How long each part of a survivor's record is kept, what was erased,
    /// and the legal hold in force (owning agency only).
    async fn retention_schedule(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
    ) -> Result<super::retention::RetentionSchedule> {
        super::retention::schedule(ctx, &survivor_id).await
    }

    /// Survivors' requests to correct or erase their records, the first
    /// due first: the whole queue (supervisors and the data-protection
    /// officer) or one survivor's (any of the agency's staff). At most 200.
    async fn rights_requests(
        &self,
        ctx: &Context<'_>,
        status: Option<crate::rights::RequestStatus>,
        survivor_id: Option<ID>,
        first: Option<i32>,
    ) -> Result<Vec<super::rights::RightsRequest>> {
        super::rights::requests(ctx, status, survivor_id, first).await
    }

    /// This node's counts of its records for tables of the statistics
    /// catalogue in one quarter (`2026-Q3`; every table when none is
    /// named). Statisticians, for the `STATISTICS` purpose; the gateway
    /// sums and protects them before release.
    async fn statistics_counts(
        &self,
        ctx: &Context<'_>,
        period: String,
        tables: Option<Vec<String>>,
    ) -> Result<Vec<super::statistics::StatisticsCount>> {
        super::statistics::counts(ctx, &period, tables).await
    }

    /// Every consent grant of a survivor (owning agency only).
    async fn consent_grants(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
    ) -> Result<Vec<ConsentGrant>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        if !state.is_own_staff(caller) {
            return Err(state
                .deny(
                    caller,
                    NodeError::Forbidden("only the owning agency lists consent grants".into()),
                    Some(&gid),
                    None,
                )
                .await
                .into());
        }
        let mut conn = crate::store::acquire(&state.db).await?;
        if !survivors::exists(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?
        {
            let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "survivor").await;
            drop(conn);
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let list = grants::for_survivor(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "CONSENT_LIST");
        event.purpose = Some(purpose);
        event.survivor = Some(gid);
        event.subject = Some("consent-grants".into());
        state.audit.append(event).await.map_err(NodeError::from)?;
        let now = OffsetDateTime::now_utc();
        Ok(list
            .into_iter()
            .map(|g| ConsentGrant::new(state.agency.as_str(), g, now))
            .collect())
    }

    /// This node's access log, newest first: for auditors, and for the
    /// owning agency's supervisors and data-protection officers. Every read
    /// is itself audited.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AuditEntry>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let filter = filter.unwrap_or_default();
        let limit = page_size(first)?;
        let before_seq = after
            .as_deref()
            .map(|c| decode_cursor(c).map(|(seq, _)| seq as u64))
            .transpose()?;
        // Any agency's survivor: the filter is scattered to every node and
        // each answers with what its own log says.
        let survivor = filter
            .survivor_id
            .as_deref()
            .map(|s| GlobalId::parse(s))
            .transpose()?;
        let actor_agency = filter
            .agency
            .as_deref()
            .map(exchange_schema::AgencyId::parse)
            .transpose()?;
        let target = ActionTarget::owned_by(state.agency.clone());
        state
            .authorize(caller, purpose, Action::ReadAuditLog, target, None)
            .await?;
        let query = AuditFilter {
            actor_agency,
            survivor: survivor.map(|s| s.to_string()),
            purpose: filter.purpose,
            decision: filter.decision,
            break_glass: filter.break_glass,
            since: filter.since,
            until: filter.until,
            before_seq,
        };
        let mut found = entries(&state.db, &query, limit + 1)
            .await
            .map_err(NodeError::internal)?;
        let has_next = found.len() as i64 > limit;
        found.truncate(limit as usize);
        let mut event = caller.event(AuditKind::AuditRead, Decision::Permit, "AUDIT_READ");
        event.purpose = Some(purpose);
        event.subject = Some(format!("{} entries", found.len()));
        event.policy_set = Some(state.policies.set_hash().to_owned());
        state.audit.append(event).await.map_err(NodeError::from)?;
        let mut connection = Connection::new(false, has_next);
        connection.edges.extend(
            found
                .into_iter()
                .map(|e| Edge::new(encode_cursor(e.seq as i64, "a"), AuditEntry::from(e))),
        );
        Ok(connection)
    }

    /// Open follow-ups assigned to the caller's agency and due before
    /// `before`, soonest first (caseworkers and supervisors). No free text:
    /// open the survivor through the disclosure path for more.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn follow_ups_due(
        &self,
        ctx: &Context<'_>,
        before: OffsetDateTime,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::case::FollowUp>> {
        super::case::follow_ups_due(ctx, before, first, after).await
    }

    /// The caller's agency's notifications at this node, oldest first:
    /// kinds and global IDs only (caseworkers and supervisors). `since`
    /// leaves out older ones. The gateway turns every node's into one
    /// subscription.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        since: Option<OffsetDateTime>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, crate::notifications::Notification>> {
        crate::notifications::feed(ctx, since, first, after).await
    }

    /// Notifications for the caller's agency that its webhook never took,
    /// oldest first (supervisors). `retryWebhookDelivery` sends one again.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn webhook_dead_letters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, crate::webhooks::WebhookDeadLetter>> {
        crate::webhooks::dead_letters(ctx, first, after).await
    }

    /// Federation entity resolver for `Survivor`: the same decision as
    /// `survivor(id)`.
    #[graphql(entity)]
    async fn find_survivor_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Survivor>> {
        survivor_by_id(ctx, &id).await
    }

    /// Federation entity resolver for `Referral`: the same visibility as
    /// `referral(id)`.
    #[graphql(entity)]
    async fn find_referral_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Referral>> {
        self.referral(ctx, id).await
    }
}

/// Reads one survivor through the disclosure path. A record that does not
/// exist is NOT_FOUND (and the attempt is audited).
pub async fn survivor_by_id(ctx: &Context<'_>, id: &str) -> Result<Option<Survivor>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid: GlobalId = state.local_id(id)?;
    let mut conn = crate::store::acquire(&state.db).await?;
    let record = survivors::get(&mut conn, &state.vault, gid.local())
        .await
        .map_err(NodeError::internal)?;
    let Some(record) = record else {
        let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "survivor").await;
        drop(conn);
        return Err(state.deny(caller, err, Some(&gid), None).await.into());
    };
    drop(conn);
    let selected: Vec<Category> = selected_categories(ctx);
    let mut disclosed = disclose(state, caller, purpose, vec![record], &selected).await?;
    Ok(disclosed.pop().map(Survivor::from))
}

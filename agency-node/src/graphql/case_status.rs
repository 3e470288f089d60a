//! Whether a survivor's case is open: the agency that holds the record
//! closes it with a coded reason (`closeCase`) and opens it again
//! (`reopenCase`); its staff read where it stands (`caseStatus`). Only the
//! owner's caseworkers and supervisors, as the policies' `closeCase` rule
//! says; every change commits with its audit entry (`CASE_STATUS_CHANGED`,
//! reason `CLOSED:<reason>` or `REOPENED`), and every read is audited. The
//! closings are counted in the statistics (cases closed by reason).

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use exchange_policies::Action;
use exchange_schema::{AuditKind, CaseClosureReason, Decision, GlobalId};
use time::OffsetDateTime;

use super::case::{by, case_standing, write_case};
use super::{caller, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::idempotency::{self, Outcome};
use crate::state::NodeState;
use crate::store::case::{self as store, CaseClosureRecord};
use crate::store::new_local_id;

/// One closing of a case, and its reopening if it was.
#[derive(SimpleObject)]
pub struct CaseClosure {
    pub closed_at: OffsetDateTime,
    /// `<agency>/<user>` who closed it.
    pub closed_by: String,
    pub reason: CaseClosureReason,
    pub reopened_at: Option<OffsetDateTime>,
    pub reopened_by: Option<String>,
}

/// Where a survivor's case stands.
#[derive(SimpleObject)]
pub struct CaseStatus {
    pub survivor_id: ID,
    /// Open unless its newest closing was not reopened.
    pub open: bool,
    /// Every closing, oldest first.
    pub closures: Vec<CaseClosure>,
}

impl CaseStatus {
    fn new(gid: &GlobalId, closures: Vec<CaseClosureRecord>) -> Self {
        Self {
            survivor_id: ID(gid.to_string()),
            open: is_open(&closures),
            closures: closures
                .into_iter()
                .map(|c| CaseClosure {
                    closed_at: c.closed_at,
                    closed_by: c.closed_by,
                    reason: c.reason,
                    reopened_at: c.reopened_at,
                    reopened_by: c.reopened_by,
                })
                .collect(),
        }
    }
}

fn is_open(closures: &[CaseClosureRecord]) -> bool {
    closures.last().is_none_or(|c| c.reopened_at.is_some())
}

/// The case's status as stored now.
async fn current(state: &NodeState, gid: &GlobalId) -> Result<CaseStatus, NodeError> {
    let mut conn = crate::store::acquire(&state.db).await?;
    let closures = store::case_closures(&mut conn, gid.local())
        .await
        .map_err(NodeError::internal)?;
    Ok(CaseStatus::new(gid, closures))
}

/// The `caseStatus` query: the owner's staff only; the read is audited
/// (`DISCLOSURE`, reason `CASE_STATUS`).
pub async fn status(ctx: &Context<'_>, survivor_id: &ID) -> Result<CaseStatus> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid = state.local_id(survivor_id)?;
    case_standing(state, caller, purpose, Action::CloseCase, &gid).await?;
    let status = current(state, &gid).await?;
    let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "CASE_STATUS");
    event.purpose = Some(purpose);
    event.survivor = Some(gid.clone());
    state.audit.append(event).await.map_err(NodeError::from)?;
    Ok(status)
}

/// What a change does to the stored closings.
enum Step {
    Close(CaseClosureReason),
    Reopen,
}

/// Closes or reopens the case of `survivor_id`, with its audit entry, in
/// one transaction; `CONFLICT` when the case is already where the step
/// would take it.
async fn change(ctx: &Context<'_>, survivor_id: &ID, step: Step) -> Result<CaseStatus> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid = state.local_id(survivor_id)?;
    let standing = case_standing(state, caller, purpose, Action::CloseCase, &gid).await?;
    let key = idempotency::field_key(ctx);
    let mut event = change_event(
        caller,
        AuditKind::CaseStatusChanged,
        Some(gid.clone()),
        None,
    );
    event.purpose = Some(purpose);
    event.reason = match &step {
        Step::Close(reason) => format!("CLOSED:{reason}"),
        Step::Reopen => "REOPENED".into(),
    };
    let local = gid.local().to_owned();
    let outcome = Outcome::CaseStatus {
        survivor_id: local.clone(),
    };
    let who = by(caller);
    write_case(
        state,
        caller,
        &gid,
        standing,
        key,
        outcome,
        event,
        move |conn| Box::pin(async move { apply(conn, &local, step, &who).await }),
    )
    .await?;
    Ok(current(state, &gid).await?)
}

async fn apply(
    conn: &mut sqlx::AnyConnection,
    survivor: &str,
    step: Step,
    who: &str,
) -> Result<(), NodeError> {
    let closures = store::case_closures(conn, survivor)
        .await
        .map_err(NodeError::internal)?;
    let now = OffsetDateTime::now_utc();
    match step {
        Step::Close(reason) => {
            if !is_open(&closures) {
                return Err(NodeError::Conflict("the case is closed already".into()));
            }
            let closure = CaseClosureRecord {
                id: new_local_id(),
                closed_at: now,
                closed_by: who.to_owned(),
                reason,
                reopened_at: None,
                reopened_by: None,
            };
            store::close_case(conn, survivor, &closure)
                .await
                .map_err(NodeError::internal)
        }
        Step::Reopen => {
            let Some(newest) = closures.last().filter(|c| c.reopened_at.is_none()) else {
                return Err(NodeError::Conflict("the case is open".into()));
            };
            if store::reopen_case(conn, &newest.id, now, who)
                .await
                .map_err(NodeError::internal)?
            {
                Ok(())
            } else {
                Err(NodeError::Conflict("the case is open".into()))
            }
        }
    }
}

/// The case-status mutations, merged into the node's `Mutation`.
#[derive(Default)]
pub struct CaseStatusMutation;

#[Object]
impl CaseStatusMutation {
    /// Closes a survivor's case, with the coded reason (the owning
    /// agency's caseworkers and supervisors). `CONFLICT` when it is closed
    /// already. What happened goes in a case note.
    async fn close_case(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        reason: CaseClosureReason,
    ) -> Result<CaseStatus> {
        change(ctx, &survivor_id, Step::Close(reason)).await
    }

    /// Opens a closed case again. `CONFLICT` when it is open.
    async fn reopen_case(&self, ctx: &Context<'_>, survivor_id: ID) -> Result<CaseStatus> {
        change(ctx, &survivor_id, Step::Reopen).await
    }
}

//! The agency's side of the survivor's rights ([`crate::rights`]): the
//! queue of requests to correct or erase a record, and the answer.
//!
//! Only the owner's staff see or answer its survivors' requests. The whole
//! queue is for supervisors and the data-protection officer; a caseworker
//! sees the requests of one survivor at a time. A correction is answered
//! by any of them (the correction itself is made with `updateSurvivor` or a
//! corrected case note, each audited); an erasure only by a supervisor or
//! the data-protection officer, like `eraseSurvivorRecord`. Reading
//! requests is audited per survivor (`DISCLOSURE`, reason
//! `RIGHTS_REQUESTS`: the survivor's words are record content).

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use exchange_schema::{AuditKind, Decision, GlobalId, Role};
use time::OffsetDateTime;

use super::{caller, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::rights::{self, Outcome, RequestKind, RequestStatus};
use crate::state::{Caller, NodeState};
use crate::store::rights::RightsRequest as StoredRequest;
use crate::vault::Part;

/// A survivor's request to correct or erase their record.
#[derive(SimpleObject)]
pub struct RightsRequest {
    /// Global ID: `<agency>:<local id>`.
    pub id: ID,
    pub survivor_id: ID,
    pub kind: RequestKind,
    pub parts: Vec<Part>,
    /// What the survivor wrote (none for an erasure without words, or once
    /// the record was erased).
    pub details: Option<String>,
    pub asked_at: OffsetDateTime,
    /// The agency's deadline, as the survivor was told.
    pub answer_due_at: OffsetDateTime,
    /// Open past its deadline.
    pub overdue: bool,
    pub status: RequestStatus,
    pub answer: Option<String>,
    pub answered_at: Option<OffsetDateTime>,
    pub answered_by: Option<String>,
}

impl RightsRequest {
    fn new(state: &NodeState, stored: StoredRequest, now: OffsetDateTime) -> Self {
        Self {
            id: ID(format!("{}:{}", state.agency, stored.id)),
            survivor_id: ID(format!("{}:{}", state.agency, stored.survivor_id)),
            kind: stored.kind,
            parts: stored.parts,
            details: stored.details,
            asked_at: stored.asked_at,
            answer_due_at: stored.answer_due_at,
            overdue: stored.status == RequestStatus::Open && stored.answer_due_at < now,
            status: stored.status,
            answer: stored.answer,
            answered_at: stored.answered_at,
            answered_by: stored.answered_by,
        }
    }
}

/// The most requests one query returns.
const MOST_LISTED: i32 = 200;

fn has_role(caller: &Caller, roles: &[Role]) -> bool {
    caller.principal.roles.iter().any(|r| roles.contains(r))
}

const OFFICERS: [Role; 2] = [Role::Supervisor, Role::DataProtectionOfficer];
const ANSWERING: [Role; 3] = [
    Role::Caseworker,
    Role::Supervisor,
    Role::DataProtectionOfficer,
];

/// The `rightsRequests` query.
pub async fn requests(
    ctx: &Context<'_>,
    status: Option<RequestStatus>,
    survivor_id: Option<ID>,
    first: Option<i32>,
) -> Result<Vec<RightsRequest>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let survivor = survivor_id.map(|id| state.local_id(&id)).transpose()?;
    let first = first.unwrap_or(50);
    if !(1..=MOST_LISTED).contains(&first) {
        return Err(
            NodeError::bad_input(format!("first must be between 1 and {MOST_LISTED}")).into(),
        );
    }
    let allowed = state.is_own_staff(caller)
        && if survivor.is_some() {
            has_role(caller, &ANSWERING)
        } else {
            has_role(caller, &OFFICERS)
        };
    if !allowed {
        let err = NodeError::Forbidden(format!(
            "only staff of {} see its survivors' requests (the whole queue: supervisors and \
             the data-protection officer)",
            state.agency
        ));
        return Err(state
            .deny(caller, err, survivor.as_ref(), None)
            .await
            .into());
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    let found = match &survivor {
        Some(gid) => {
            let mut all = crate::store::rights::for_survivor(&mut conn, &state.vault, gid.local())
                .await
                .map_err(NodeError::internal)?;
            all.retain(|r| status.is_none_or(|s| r.status == s));
            all.truncate(first as usize);
            all
        }
        None => crate::store::rights::list(&mut conn, &state.vault, status, i64::from(first))
            .await
            .map_err(NodeError::internal)?,
    };
    drop(conn);
    // Audited before anything is answered: one entry per survivor shown.
    let mut shown: Vec<&str> = found.iter().map(|r| r.survivor_id.as_str()).collect();
    shown.sort_unstable();
    shown.dedup();
    for local in shown {
        let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "RIGHTS_REQUESTS");
        event.purpose = Some(purpose);
        event.survivor = Some(GlobalId::new(state.agency.clone(), local.to_owned())?);
        state.audit.append(event).await.map_err(NodeError::from)?;
    }
    let now = exchange_schema::audit::now_millis();
    Ok(found
        .into_iter()
        .map(|r| RightsRequest::new(state, r, now))
        .collect())
}

#[derive(Default)]
pub struct RightsMutation;

#[Object]
impl RightsMutation {
    /// Answers a survivor's request: `DONE` (for an erasure, the parts are
    /// erased now, by destroying their keys; refused with `CONFLICT` under
    /// a legal hold) or `REFUSED` (the answer must give the reason). The
    /// survivor sees the answer in the portal. A correction is made first,
    /// with `updateSurvivor` or a corrected case note.
    async fn answer_rights_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        outcome: Outcome,
        answer: Option<String>,
    ) -> Result<RightsRequest> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let request_id = state.local_id(&id)?;
        let mut conn = crate::store::acquire(&state.db).await?;
        let found = crate::store::rights::get(&mut conn, &state.vault, request_id.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let Some(request) = found.filter(|_| state.is_own_staff(caller)) else {
            // Another agency's staff learn nothing about which requests exist.
            let err = if state.is_own_staff(caller) {
                NodeError::NotFound("rights request")
            } else {
                NodeError::Forbidden(format!(
                    "only staff of {} answer its survivors' requests",
                    state.agency
                ))
            };
            return Err(state.deny(caller, err, None, Some(id.0)).await.into());
        };
        let gid = GlobalId::new(state.agency.clone(), request.survivor_id.clone())?;
        let roles: &[Role] = match request.kind {
            RequestKind::Erasure => &OFFICERS,
            RequestKind::Correction => &ANSWERING,
        };
        if !has_role(caller, roles) {
            let err = NodeError::Forbidden(
                "only supervisors and the data-protection officer answer a request for erasure"
                    .into(),
            );
            return Err(state.deny(caller, err, Some(&gid), Some(id.0)).await.into());
        }
        let mut event = change_event(caller, AuditKind::RightsRequest, Some(gid.clone()), None);
        event.purpose = Some(purpose);
        let by = format!("{}/{}", caller.principal.agency, caller.principal.user);
        let done = rights::answer(state, event, request, outcome, answer.as_deref(), &by).await;
        match done {
            Ok(answered) => Ok(RightsRequest::new(
                state,
                answered,
                exchange_schema::audit::now_millis(),
            )),
            Err(
                err @ (NodeError::BadInput(_) | NodeError::NotFound(_) | NodeError::Conflict(_)),
            ) => Err(state.deny(caller, err, Some(&gid), Some(id.0)).await.into()),
            Err(err) => Err(err.into()),
        }
    }
}

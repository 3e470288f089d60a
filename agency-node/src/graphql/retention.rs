//! Legal holds and erasure asked for, as mutations for the owner's
//! supervisors and data-protection officer ([`crate::retention`] does the
//! work; the expiry job erases by the rules without anyone asking).

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use exchange_schema::{AuditEvent, AuditKind, GlobalId, Role};
use time::OffsetDateTime;

use super::{caller, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::retention::{self, LegalHold as StoredHold};
use crate::state::{Caller, NodeState};
use crate::vault::Part;

/// The parts of a record, as the API names them (`RecordPart`).
pub use crate::vault::Part as RecordPart;

/// A legal hold on a survivor's record: while in force, nothing of the
/// record is erased.
#[derive(SimpleObject)]
pub struct LegalHold {
    pub id: ID,
    pub survivor_id: ID,
    pub reason: String,
    pub placed_at: OffsetDateTime,
    pub placed_by: String,
    pub lifted_at: Option<OffsetDateTime>,
    pub lifted_by: Option<String>,
}

impl LegalHold {
    fn new(state: &NodeState, hold: StoredHold) -> Self {
        Self {
            id: ID(hold.id),
            survivor_id: ID(format!("{}:{}", state.agency, hold.survivor_id)),
            reason: hold.reason,
            placed_at: hold.placed_at,
            placed_by: hold.placed_by,
            lifted_at: hold.lifted_at,
            lifted_by: hold.lifted_by,
        }
    }
}

/// What an erasure did.
#[derive(SimpleObject)]
pub struct Erasure {
    pub survivor_id: ID,
    /// The parts this request erased (parts erased before are not listed).
    pub erased: Vec<RecordPart>,
    pub erased_at: OffsetDateTime,
    /// `REQUEST` for an erasure asked for.
    pub rule: String,
}

/// Only the owner's supervisors and data-protection officer place holds
/// and erase; anyone else is refused (and the refusal audited).
async fn require_records_officer(
    state: &NodeState,
    caller: &Caller,
    gid: &exchange_schema::GlobalId,
) -> Result<(), NodeError> {
    let officer = caller
        .principal
        .roles
        .iter()
        .any(|r| matches!(r, Role::Supervisor | Role::DataProtectionOfficer));
    if state.is_own_staff(caller) && officer {
        return Ok(());
    }
    let err = NodeError::Forbidden(format!(
        "only supervisors and the data-protection officer of {} hold or erase its records",
        state.agency
    ));
    Err(state.deny(caller, err, Some(gid), None).await)
}

fn by(caller: &Caller) -> String {
    format!("{}/{}", caller.principal.agency, caller.principal.user)
}

/// What every one of these mutations does first: the caller, the record
/// (of this node), the officer check, and the audit entry to fill.
async fn officer_change<'a>(
    ctx: &'a Context<'_>,
    survivor_id: &ID,
    kind: AuditKind,
) -> Result<(&'a NodeState, &'a Caller, GlobalId, AuditEvent)> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid = state.local_id(survivor_id)?;
    require_records_officer(state, caller, &gid).await?;
    let mut event = change_event(caller, kind, Some(gid.clone()), None);
    event.purpose = Some(purpose);
    Ok((state, caller, gid, event))
}

/// The answer to the client: a refusal for bad input, a missing record or
/// hold, or a conflict is audited as a denial; anything else goes as is.
async fn answer<T>(
    state: &NodeState,
    caller: &Caller,
    gid: &GlobalId,
    result: Result<T, NodeError>,
) -> Result<T> {
    match result {
        Ok(value) => Ok(value),
        Err(err @ (NodeError::BadInput(_) | NodeError::NotFound(_) | NodeError::Conflict(_))) => {
            Err(state.deny(caller, err, Some(gid), None).await.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// One part of a record: when it is due for erasure and by which rule, or
/// when it was erased.
#[derive(SimpleObject)]
pub struct PartRetention {
    pub part: RecordPart,
    /// When its period ends (none when no rule covers it).
    pub due_at: Option<OffsetDateTime>,
    pub rule: Option<String>,
    /// The rule's reason, in the data-protection officer's words.
    pub why: Option<String>,
    pub erased_at: Option<OffsetDateTime>,
    pub erasure_rule: Option<String>,
}

/// The retention of a survivor's record, part by part.
#[derive(SimpleObject)]
pub struct RetentionSchedule {
    pub survivor_id: ID,
    pub parts: Vec<PartRetention>,
    /// The legal hold in force, which keeps every part past its date.
    pub legal_hold: Option<LegalHold>,
}

/// The `retentionSchedule` query: the owner's staff only; the read is
/// audited (`DISCLOSURE`, reason `RETENTION_SCHEDULE`: the hold's reason is
/// record content).
pub async fn schedule(ctx: &Context<'_>, survivor_id: &ID) -> Result<RetentionSchedule> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid = state.local_id(survivor_id)?;
    if !state.is_own_staff(caller) {
        let err = NodeError::Forbidden(format!(
            "only staff of {} see its records' retention",
            state.agency
        ));
        return Err(state.deny(caller, err, Some(&gid), None).await.into());
    }
    let parts = retention::schedule(state, gid.local()).await;
    let parts = answer(state, caller, &gid, parts).await?;
    let mut conn = crate::store::acquire(&state.db).await?;
    let hold = retention::hold_in_force(&mut conn, &state.vault, gid.local())
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let mut event = caller.event(
        AuditKind::Disclosure,
        exchange_schema::Decision::Permit,
        "RETENTION_SCHEDULE",
    );
    event.purpose = Some(purpose);
    event.survivor = Some(gid.clone());
    state.audit.append(event).await.map_err(NodeError::from)?;
    Ok(RetentionSchedule {
        survivor_id: ID(gid.to_string()),
        parts: parts
            .into_iter()
            .filter_map(|p| {
                Some(PartRetention {
                    part: Part::parse(p.part)?,
                    due_at: p.due_at,
                    rule: p.rule,
                    why: p.why,
                    erased_at: p.erased_at,
                    erasure_rule: p.erasure_rule,
                })
            })
            .collect(),
        legal_hold: hold.map(|h| LegalHold::new(state, h)),
    })
}

#[derive(Default)]
pub struct RetentionMutation;

#[Object]
impl RetentionMutation {
    /// Places a legal hold on a survivor's record, with its reason
    /// (required): no retention rule and no request erases the record until
    /// the hold is lifted.
    async fn place_legal_hold(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        reason: String,
    ) -> Result<LegalHold> {
        let (state, caller, gid, event) =
            officer_change(ctx, &survivor_id, AuditKind::LegalHold).await?;
        let done = retention::place_hold(state, event, gid.local(), &reason, &by(caller)).await;
        let hold = answer(state, caller, &gid, done).await?;
        Ok(LegalHold::new(state, hold))
    }

    /// Lifts the legal hold in force on a survivor's record.
    async fn lift_legal_hold(&self, ctx: &Context<'_>, survivor_id: ID) -> Result<LegalHold> {
        let (state, caller, gid, event) =
            officer_change(ctx, &survivor_id, AuditKind::LegalHold).await?;
        let done = retention::lift_hold(state, event, gid.local(), &by(caller)).await;
        let hold = answer(state, caller, &gid, done).await?;
        Ok(LegalHold::new(state, hold))
    }

    /// Erases parts of a survivor's record now (the survivor asked, or the
    /// data-protection officer decided), by destroying their data keys:
    /// every copy, backups included, becomes unreadable. Refused with
    /// `CONFLICT` under a legal hold.
    async fn erase_survivor_record(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        parts: Vec<RecordPart>,
    ) -> Result<Erasure> {
        let (state, caller, gid, event) =
            officer_change(ctx, &survivor_id, AuditKind::RecordErased).await?;
        // RECORD is the record as a whole: every part.
        let parts: Vec<Part> = if parts.contains(&Part::Record) {
            Part::ALL.to_vec()
        } else {
            parts
        };
        let at = exchange_schema::audit::now_millis();
        let erased = retention::erase(
            state,
            event,
            gid.local(),
            &parts,
            retention::REQUEST_RULE,
            at,
        )
        .await;
        let erased = answer(state, caller, &gid, erased).await?;
        Ok(Erasure {
            survivor_id: ID(gid.to_string()),
            erased,
            erased_at: at,
            rule: retention::REQUEST_RULE.into(),
        })
    }
}

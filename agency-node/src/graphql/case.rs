//! Case management through the subgraph: case notes, services, follow-ups
//! and assigned caseworkers.
//!
//! Who may write: staff of the owning agency, and staff of a *partner*
//! agency (one holding an accepted referral of the survivor), as the
//! policies' `writeCaseNote`, `recordService` and `assignCaseworkers`
//! rules say; a partner acts only for itself (it records services it
//! provides and follow-ups assigned to itself, and corrects only its own
//! notes). Every write commits with its audit entry.
//!
//! Who may read: a note travels only where its category is disclosed, and
//! services and follow-ups only where `CASE` is, by the same decision that
//! disclosed the survivor ([`crate::disclosure`]); the survivor's fields
//! here read [`Survivor::allowed`], which only that decision fills. The one
//! listing that is not about one survivor, `followUpsDue`, shows a caller
//! only follow-ups assigned to its own agency, and carries no free text.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::{
    AgencyId, AuditKind, Category, Decision, FollowUpKind, FollowUpStatus, GlobalId, Purpose, Role,
    ServiceKind, ServiceStatus,
};
use time::OffsetDateTime;

use super::types::Survivor;
use super::{caller, decode_cursor, encode_cursor, page_size, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::idempotency::{self, Outcome, Written};
use crate::records::{LONG_TEXT, SHORT_TEXT, check_text};
use crate::state::{Caller, NodeState};
use crate::store::case::{
    self as store, Assignment, CaseNoteRecord, FollowUpRecord, ServiceRecord,
};
use crate::store::{new_local_id, referrals, to_ms};

/// Who wrote a case note.
#[derive(SimpleObject, Clone)]
pub struct NoteAuthor {
    pub agency: String,
    pub user: String,
    /// The role the note was written in.
    pub role: Role,
}

/// A case note: append-only; a correction is a new note that supersedes it.
#[derive(SimpleObject, Clone)]
pub struct CaseNote {
    /// Global ID: `<owning agency>:<local id>`.
    pub id: ID,
    pub survivor_id: ID,
    /// The category the note belongs to; it is shown only where this
    /// category is disclosed.
    pub category: Category,
    pub body: String,
    pub author: NoteAuthor,
    pub created_at: OffsetDateTime,
    /// The note this one corrects.
    pub supersedes: Option<ID>,
    /// The note that corrects this one.
    pub superseded_by: Option<ID>,
}

impl CaseNote {
    fn new(agency: &AgencyId, n: CaseNoteRecord) -> Self {
        let gid = |local: &str| ID(format!("{agency}:{local}"));
        Self {
            id: gid(&n.id),
            survivor_id: gid(&n.survivor_id),
            category: n.category,
            body: n.body,
            author: NoteAuthor {
                agency: n.author_agency.to_string(),
                user: n.author_user,
                role: n.author_role,
            },
            created_at: n.created_at,
            supersedes: n.supersedes.as_deref().map(gid),
            superseded_by: n.superseded_by.as_deref().map(gid),
        }
    }
}

/// A service planned for or delivered to a survivor (category `CASE`).
#[derive(SimpleObject, Clone)]
pub struct Service {
    pub id: ID,
    pub survivor_id: ID,
    pub kind: ServiceKind,
    /// The agency that provides the service.
    pub provider_agency: String,
    pub status: ServiceStatus,
    pub planned_for: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub outcome: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Service {
    fn new(agency: &AgencyId, s: ServiceRecord) -> Self {
        Self {
            id: ID(format!("{agency}:{}", s.id)),
            survivor_id: ID(format!("{agency}:{}", s.survivor_id)),
            kind: s.kind,
            provider_agency: s.provider.to_string(),
            status: s.status,
            planned_for: s.planned_for,
            started_at: s.started_at,
            delivered_at: s.delivered_at,
            outcome: s.outcome,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A follow-up: what (coded), when, and who is to do it. No free text.
#[derive(SimpleObject, Clone)]
pub struct FollowUp {
    pub id: ID,
    pub survivor_id: ID,
    pub kind: FollowUpKind,
    pub due_at: OffsetDateTime,
    pub assigned_agency: String,
    pub assigned_user: Option<String>,
    /// The service it follows up, if any.
    pub service_id: Option<ID>,
    pub status: FollowUpStatus,
    pub created_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    pub closed_by: Option<String>,
}

impl FollowUp {
    fn new(agency: &AgencyId, f: FollowUpRecord) -> Self {
        Self {
            id: ID(format!("{agency}:{}", f.id)),
            survivor_id: ID(format!("{agency}:{}", f.survivor_id)),
            kind: f.kind,
            due_at: f.due_at,
            assigned_agency: f.assigned_agency.to_string(),
            assigned_user: f.assigned_user,
            service_id: f.service_id.map(|s| ID(format!("{agency}:{s}"))),
            status: f.status,
            created_at: f.created_at,
            closed_at: f.closed_at,
            closed_by: f.closed_by,
        }
    }
}

/// A caseworker of the owning agency assigned to a case.
#[derive(SimpleObject, Clone)]
pub struct CaseworkerAssignment {
    pub user: String,
    pub assigned_at: OffsetDateTime,
    pub assigned_by: String,
}

impl From<Assignment> for CaseworkerAssignment {
    fn from(a: Assignment) -> Self {
        Self {
            user: a.user,
            assigned_at: a.assigned_at,
            assigned_by: a.assigned_by,
        }
    }
}

/// A new case note.
#[derive(InputObject)]
pub struct AddCaseNoteInput {
    pub survivor_id: ID,
    /// The category the note belongs to (a health note is `HEALTH`).
    pub category: Category,
    /// Free text, up to 4000 characters.
    pub body: String,
    /// The note this one corrects: same survivor, same category, not yet
    /// corrected, written by the caller's agency (or any, for the owner).
    pub supersedes: Option<ID>,
}

/// A service to record.
#[derive(InputObject)]
pub struct RecordServiceInput {
    pub survivor_id: ID,
    pub kind: ServiceKind,
    /// The providing agency; a partner records only services it provides.
    pub provider_agency: String,
    /// PLANNED when left out; never CANCELLED.
    pub status: Option<ServiceStatus>,
    pub planned_for: Option<OffsetDateTime>,
    /// Free text, up to 4000 characters.
    pub outcome: Option<String>,
}

/// A step in a service's life.
#[derive(InputObject)]
pub struct UpdateServiceInput {
    pub status: ServiceStatus,
    /// Replaces the outcome when given.
    pub outcome: Option<String>,
}

/// A follow-up to schedule.
#[derive(InputObject)]
pub struct ScheduleFollowUpInput {
    pub survivor_id: ID,
    pub kind: FollowUpKind,
    pub due_at: OffsetDateTime,
    /// The owner, or a partner agency; the caller's agency when left out.
    /// A partner assigns only to itself.
    pub assigned_agency: Option<String>,
    /// A user ID at the assigned agency.
    pub assigned_user: Option<String>,
    pub service_id: Option<ID>,
}

/// How far back a follow-up may be scheduled (recording one just missed).
const PAST_DUE_GRACE: time::Duration = time::Duration::days(1);
/// How far ahead a follow-up may be scheduled.
pub(super) const FURTHEST_DUE: time::Duration = time::Duration::days(5 * 366);
/// Most caseworkers assigned to one case.
const MOST_ASSIGNED: usize = 20;

/// How the caller stands to a case: the owner's staff, a partner agency,
/// or neither (refused before anything is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Owner,
    Partner,
}

/// Checks who may act on a survivor's case and asks the policy engine. A
/// caller that is neither the owner's staff nor a partner is refused the
/// same way whether the survivor exists or not.
pub(super) async fn case_standing(
    state: &NodeState,
    caller: &Caller,
    purpose: Purpose,
    action: Action,
    gid: &GlobalId,
) -> Result<Standing, NodeError> {
    let mut conn = crate::store::acquire(&state.db).await?;
    let standing = if state.is_own_staff(caller) {
        let exists = crate::store::survivors::exists(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?;
        if !exists {
            let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "survivor").await;
            drop(conn);
            return Err(state.deny(caller, err, Some(gid), None).await);
        }
        drop(conn);
        Standing::Owner
    } else {
        let partner = referrals::is_partner(&mut conn, gid.local(), &caller.principal.agency)
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        if !partner {
            let err = NodeError::Forbidden(format!(
                "only staff of {}, or of an agency working on the case under an accepted \
                 referral, may change a case",
                state.agency
            ));
            return Err(state.deny(caller, err, Some(gid), None).await);
        }
        Standing::Partner
    };
    let partner = (standing == Standing::Partner).then(|| caller.principal.agency.clone());
    state
        .authorize(
            caller,
            purpose,
            action,
            ActionTarget::case(state.agency.clone(), partner),
            Some(gid),
        )
        .await?;
    Ok(standing)
}

/// Inside a write: the survivor still exists and, for a partner, the
/// referral that makes it one is still accepted.
pub(super) async fn still_standing(
    conn: &mut sqlx::AnyConnection,
    survivor: &str,
    standing: Standing,
    agency: &AgencyId,
) -> Result<(), NodeError> {
    crate::changes::require_survivor(conn, survivor).await?;
    if standing == Standing::Partner
        && !referrals::is_partner(conn, survivor, agency)
            .await
            .map_err(NodeError::internal)?
    {
        return Err(NodeError::Conflict(
            "the referral that made your agency a partner on this case is no longer accepted"
                .into(),
        ));
    }
    Ok(())
}

/// One change to a case, made whole: in one transaction with its audit
/// entry, the `Idempotency-Key`'s outcome is written, the caller's standing
/// checked again ([`still_standing`]) and `rows` written; then the key is
/// settled, and a refusal met inside the transaction is audited as a
/// denial ([`refused`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_case<T, F>(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    standing: Standing,
    key: Option<idempotency::FieldKey>,
    outcome: Outcome,
    event: exchange_schema::AuditEvent,
    rows: F,
) -> Result<Written<T>, NodeError>
where
    T: Send + 'static,
    F: for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, NodeError>>
        + Send
        + 'static,
{
    let local = survivor.local().to_owned();
    let agency = caller.principal.agency.clone();
    let written_key = key.clone();
    let written = state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                idempotency::write(written_key.as_ref(), conn, &outcome).await?;
                still_standing(conn, &local, standing, &agency).await?;
                let value = rows(conn).await?;
                Ok((value, event))
            })
        })
        .await;
    let written = idempotency::settle(key.as_ref(), &state.db, written).await;
    refused(state, caller, written, survivor).await
}

/// The role a note is written in: the highest the caller holds of those
/// that may write.
fn writing_role(caller: &Caller) -> Role {
    if caller.principal.roles.contains(&Role::Supervisor) {
        Role::Supervisor
    } else {
        Role::Caseworker
    }
}

pub(super) fn by(caller: &Caller) -> String {
    format!("{}/{}", caller.principal.agency, caller.principal.user)
}

/// A unique-index violation (a note corrected twice at once).
pub(super) fn is_unique_violation(err: &anyhow::Error) -> bool {
    err.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .is_some_and(|e| e.is_unique_violation())
}

/// The case-management mutations, merged into the node's `Mutation`.
#[derive(Default)]
pub struct CaseMutation;

#[Object]
impl CaseMutation {
    /// Appends a case note to a survivor's case (owner's staff, or a
    /// partner agency). Notes are never edited: to correct one, add a note
    /// that `supersedes` it.
    async fn add_case_note(&self, ctx: &Context<'_>, input: AddCaseNoteInput) -> Result<CaseNote> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        let standing = case_standing(state, caller, purpose, Action::WriteCaseNote, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_note(state, outcome).await;
        }
        if input.body.trim().is_empty() {
            return Err(NodeError::bad_input("body must not be empty").into());
        }
        check_text("body", &input.body, LONG_TEXT, true)?;
        let supersedes = input
            .supersedes
            .as_deref()
            .map(|s| state.local_id(s).map(|g| g.local().to_owned()))
            .transpose()?;
        let note = CaseNoteRecord {
            id: new_local_id(),
            survivor_id: gid.local().to_owned(),
            category: input.category,
            body: input.body,
            author_agency: caller.principal.agency.clone(),
            author_user: caller.principal.user.clone(),
            author_role: writing_role(caller),
            created_at: exchange_schema::audit::now_millis(),
            supersedes,
            superseded_by: None,
        };
        let mut event = change_event(
            caller,
            AuditKind::CaseNoteAdded,
            Some(gid.clone()),
            Some(format!("{}:{}", state.agency, note.id)),
        );
        event.purpose = Some(purpose);
        event.reason = match &note.supersedes {
            None => format!("NOTE:{}", note.category),
            Some(old) => {
                event.explanation = Some(format!("corrects {}:{old}", state.agency));
                format!("CORRECTION:{}", note.category)
            }
        };
        let stored = note.clone();
        let agency = caller.principal.agency.clone();
        let outcome = Outcome::CaseNote {
            id: stored.id.clone(),
        };
        let vault = state.vault.clone();
        let written = write_case(
            state,
            caller,
            &gid,
            standing,
            key.clone(),
            outcome,
            event,
            move |conn| {
                Box::pin(async move {
                    if let Some(old) = &stored.supersedes {
                        let old = store::get_note(conn, &vault, old)
                            .await
                            .map_err(NodeError::internal)?
                            .filter(|o| o.survivor_id == stored.survivor_id)
                            .ok_or(NodeError::NotFound("case note"))?;
                        if standing == Standing::Partner && old.author_agency != agency {
                            return Err(NodeError::Forbidden(
                                "a partner agency corrects only its own notes".into(),
                            ));
                        }
                        if old.category != stored.category {
                            return Err(NodeError::bad_input(format!(
                                "a correction stays in its note's category ({})",
                                old.category
                            )));
                        }
                        if old.superseded_by.is_some() {
                            return Err(NodeError::Conflict(
                                "that note is already corrected; correct the newest note".into(),
                            ));
                        }
                    }
                    store::insert_note(conn, &vault, &stored)
                        .await
                        .map_err(|e| {
                            if is_unique_violation(&e) {
                                NodeError::Conflict(
                                    "that note was corrected meanwhile; correct the newest note"
                                        .into(),
                                )
                            } else {
                                NodeError::internal(e)
                            }
                        })?;
                    Ok(())
                })
            },
        )
        .await;
        match written? {
            Written::Done(()) => Ok(CaseNote::new(&state.agency, note)),
            Written::Replayed(outcome) => replay_note(state, outcome).await,
        }
    }

    /// Records a service planned for or delivered to a survivor.
    async fn record_service(
        &self,
        ctx: &Context<'_>,
        input: RecordServiceInput,
    ) -> Result<Service> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        let standing = case_standing(state, caller, purpose, Action::RecordService, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_service(state, outcome).await;
        }
        let provider = state.known_agency(&input.provider_agency)?;
        if standing == Standing::Partner && provider != caller.principal.agency {
            return Err(NodeError::bad_input(
                "a partner agency records only services it provides itself",
            )
            .into());
        }
        let status = input.status.unwrap_or(ServiceStatus::Planned);
        if status == ServiceStatus::Cancelled {
            return Err(NodeError::bad_input("a new service cannot be CANCELLED").into());
        }
        if let Some(outcome) = &input.outcome {
            check_text("outcome", outcome, LONG_TEXT, true)?;
        }
        let now = exchange_schema::audit::now_millis();
        let service = ServiceRecord {
            id: new_local_id(),
            survivor_id: gid.local().to_owned(),
            kind: input.kind,
            provider,
            status,
            planned_for: input.planned_for,
            started_at: (status != ServiceStatus::Planned).then_some(now),
            delivered_at: (status == ServiceStatus::Delivered).then_some(now),
            outcome: input.outcome,
            created_at: now,
            created_by: by(caller),
            updated_at: now,
        };
        let mut event = change_event(
            caller,
            AuditKind::ServiceRecorded,
            Some(gid.clone()),
            Some(format!("{}:{}", state.agency, service.id)),
        );
        event.purpose = Some(purpose);
        event.reason = format!("NEW->{status}");
        let stored = service.clone();
        let outcome = Outcome::Service {
            id: stored.id.clone(),
        };
        let vault = state.vault.clone();
        let written = write_case(
            state,
            caller,
            &gid,
            standing,
            key.clone(),
            outcome,
            event,
            move |conn| {
                Box::pin(async move {
                    store::insert_service(conn, &vault, &stored)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok(())
                })
            },
        )
        .await;
        match written? {
            Written::Done(()) => Ok(Service::new(&state.agency, service)),
            Written::Replayed(outcome) => replay_service(state, outcome).await,
        }
    }

    /// Moves a service forward (PLANNED, IN_PROGRESS, then DELIVERED or
    /// CANCELLED): the owner's staff, or the providing partner.
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateServiceInput,
    ) -> Result<Service> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let sid = state.local_id(&id)?;
        let mut conn = crate::store::acquire(&state.db).await?;
        let current = store::get_service(&mut conn, &state.vault, sid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        // A service is named to its provider and the owner only; anyone
        // else is told it does not exist.
        let Some(current) =
            current.filter(|s| state.is_own_staff(caller) || s.provider == caller.principal.agency)
        else {
            return Err(state
                .deny(
                    caller,
                    NodeError::NotFound("service"),
                    None,
                    Some(sid.to_string()),
                )
                .await
                .into());
        };
        let gid = GlobalId::new(state.agency.clone(), current.survivor_id.clone())?;
        let standing = case_standing(state, caller, purpose, Action::RecordService, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_service(state, outcome).await;
        }
        if let Some(outcome) = &input.outcome {
            check_text("outcome", outcome, LONG_TEXT, true)?;
        }
        let from = current.status;
        if !from.may_become(input.status) {
            let err =
                NodeError::Conflict(format!("a {from} service cannot become {}", input.status));
            return Err(state
                .deny(caller, err, Some(&gid), Some(sid.to_string()))
                .await
                .into());
        }
        let now = exchange_schema::audit::now_millis();
        let mut updated = current;
        updated.status = input.status;
        if input.status == ServiceStatus::InProgress
            || (input.status == ServiceStatus::Delivered && updated.started_at.is_none())
        {
            updated.started_at = Some(now);
        }
        if input.status == ServiceStatus::Delivered {
            updated.delivered_at = Some(now);
        }
        if input.outcome.is_some() {
            updated.outcome = input.outcome;
        }
        updated.updated_at = now;
        let mut event = change_event(
            caller,
            AuditKind::ServiceRecorded,
            Some(gid.clone()),
            Some(sid.to_string()),
        );
        event.purpose = Some(purpose);
        event.reason = format!("{from}->{}", input.status);
        let stored = updated.clone();
        let outcome = Outcome::Service {
            id: stored.id.clone(),
        };
        let vault = state.vault.clone();
        let written = write_case(
            state,
            caller,
            &gid,
            standing,
            key.clone(),
            outcome,
            event,
            move |conn| {
                Box::pin(async move {
                    if !store::update_service(conn, &vault, from, &stored)
                        .await
                        .map_err(NodeError::internal)?
                    {
                        return Err(NodeError::Conflict(
                            "the service changed meanwhile; reload it".into(),
                        ));
                    }
                    Ok(())
                })
            },
        )
        .await;
        match written? {
            Written::Done(()) => Ok(Service::new(&state.agency, updated)),
            Written::Replayed(outcome) => replay_service(state, outcome).await,
        }
    }

    /// Schedules a follow-up, assigned to the owner or to a partner agency.
    async fn schedule_follow_up(
        &self,
        ctx: &Context<'_>,
        input: ScheduleFollowUpInput,
    ) -> Result<FollowUp> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        let standing = case_standing(state, caller, purpose, Action::RecordService, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_follow_up(state, outcome).await;
        }
        let assigned = match &input.assigned_agency {
            Some(raw) => state.known_agency(raw)?,
            None => caller.principal.agency.clone(),
        };
        if standing == Standing::Partner && assigned != caller.principal.agency {
            return Err(NodeError::bad_input(
                "a partner agency schedules follow-ups for itself only",
            )
            .into());
        }
        if let Some(user) = &input.assigned_user {
            check_user_id("assignedUser", user)?;
        }
        let now = exchange_schema::audit::now_millis();
        if input.due_at < now - PAST_DUE_GRACE || input.due_at > now + FURTHEST_DUE {
            return Err(NodeError::bad_input(
                "dueAt must be between a day ago and five years from now",
            )
            .into());
        }
        let service_id = input
            .service_id
            .as_deref()
            .map(|s| state.local_id(s).map(|g| g.local().to_owned()))
            .transpose()?;
        let follow_up = FollowUpRecord {
            id: new_local_id(),
            survivor_id: gid.local().to_owned(),
            kind: input.kind,
            due_at: input.due_at,
            assigned_agency: assigned,
            assigned_user: input.assigned_user,
            service_id,
            status: FollowUpStatus::Open,
            created_at: now,
            created_by: by(caller),
            closed_at: None,
            closed_by: None,
        };
        let mut event = change_event(
            caller,
            AuditKind::FollowUpRecorded,
            Some(gid.clone()),
            Some(format!("{}:{}", state.agency, follow_up.id)),
        );
        event.purpose = Some(purpose);
        event.reason = format!("SCHEDULED:{}", follow_up.kind);
        event.explanation = Some(format!("assigned to {}", follow_up.assigned_agency));
        let stored = follow_up.clone();
        let owner = state.agency.clone();
        let outcome = Outcome::FollowUp {
            id: stored.id.clone(),
        };
        let vault = state.vault.clone();
        let written = write_case(
            state,
            caller,
            &gid,
            standing,
            key.clone(),
            outcome,
            event,
            move |conn| {
                Box::pin(async move {
                    if stored.assigned_agency != owner
                        && !referrals::is_partner(
                            conn,
                            &stored.survivor_id,
                            &stored.assigned_agency,
                        )
                        .await
                        .map_err(NodeError::internal)?
                    {
                        return Err(NodeError::bad_input(format!(
                            "{} is not working on this case: assign a follow-up to the owner or \
                             to an agency that accepted a referral of the survivor",
                            stored.assigned_agency
                        )));
                    }
                    if let Some(service) = &stored.service_id {
                        store::get_service(conn, &vault, service)
                            .await
                            .map_err(NodeError::internal)?
                            .filter(|s| s.survivor_id == stored.survivor_id)
                            .ok_or(NodeError::NotFound("service"))?;
                    }
                    store::insert_follow_up(conn, &stored)
                        .await
                        .map_err(NodeError::internal)?;
                    crate::notifications::due_now_if_soon(conn, &owner, &stored).await?;
                    Ok(())
                })
            },
        )
        .await;
        match written? {
            Written::Done(()) => Ok(FollowUp::new(&state.agency, follow_up)),
            Written::Replayed(outcome) => replay_follow_up(state, outcome).await,
        }
    }

    /// Closes an open follow-up as DONE, MISSED or CANCELLED: the owner's
    /// staff, or the partner agency it is assigned to.
    async fn close_follow_up(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: FollowUpStatus,
    ) -> Result<FollowUp> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let fid = state.local_id(&id)?;
        if status == FollowUpStatus::Open {
            return Err(
                NodeError::bad_input("a follow-up closes as DONE, MISSED or CANCELLED").into(),
            );
        }
        let mut conn = crate::store::acquire(&state.db).await?;
        let current = store::get_follow_up(&mut conn, fid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let Some(current) = current
            .filter(|f| state.is_own_staff(caller) || f.assigned_agency == caller.principal.agency)
        else {
            return Err(state
                .deny(
                    caller,
                    NodeError::NotFound("follow-up"),
                    None,
                    Some(fid.to_string()),
                )
                .await
                .into());
        };
        let gid = GlobalId::new(state.agency.clone(), current.survivor_id.clone())?;
        let standing = case_standing(state, caller, purpose, Action::RecordService, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_follow_up(state, outcome).await;
        }
        if current.status != FollowUpStatus::Open {
            let err = NodeError::Conflict(format!("the follow-up is already {}", current.status));
            return Err(state
                .deny(caller, err, Some(&gid), Some(fid.to_string()))
                .await
                .into());
        }
        let now = exchange_schema::audit::now_millis();
        let closer = by(caller);
        let mut event = change_event(
            caller,
            AuditKind::FollowUpRecorded,
            Some(gid.clone()),
            Some(fid.to_string()),
        );
        event.purpose = Some(purpose);
        event.reason = format!("OPEN->{status}");
        let local = fid.local().to_owned();
        let closed_by = closer.clone();
        let outcome = Outcome::FollowUp { id: local.clone() };
        let written = write_case(
            state,
            caller,
            &gid,
            standing,
            key.clone(),
            outcome,
            event,
            move |conn| {
                Box::pin(async move {
                    if !store::close_follow_up(conn, &local, status, now, &closed_by)
                        .await
                        .map_err(NodeError::internal)?
                    {
                        return Err(NodeError::Conflict(
                            "the follow-up was closed meanwhile".into(),
                        ));
                    }
                    Ok(())
                })
            },
        )
        .await;
        match written? {
            Written::Done(()) => {
                let mut closed = current;
                closed.status = status;
                closed.closed_at = Some(now);
                closed.closed_by = Some(closer);
                Ok(FollowUp::new(&state.agency, closed))
            }
            Written::Replayed(outcome) => replay_follow_up(state, outcome).await,
        }
    }

    /// Replaces the caseworkers of the owning agency assigned to a case
    /// (the owner's supervisors only). An empty list unassigns everyone.
    async fn assign_caseworkers(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        users: Vec<String>,
    ) -> Result<Vec<CaseworkerAssignment>> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        let standing =
            case_standing(state, caller, purpose, Action::AssignCaseworkers, &gid).await?;
        if users.len() > MOST_ASSIGNED {
            return Err(NodeError::bad_input(format!(
                "at most {MOST_ASSIGNED} caseworkers are assigned to a case"
            ))
            .into());
        }
        let mut users = users;
        for user in &users {
            check_user_id("users", user)?;
        }
        users.sort();
        users.dedup();
        let key = idempotency::field_key(ctx);
        if idempotency::stored(key.as_ref(), &state.db)
            .await?
            .is_none()
        {
            let mut event = change_event(
                caller,
                AuditKind::CaseworkersAssigned,
                Some(gid.clone()),
                None,
            );
            event.purpose = Some(purpose);
            event.explanation = Some(format!("assigned: {}", users.join(", ")));
            let local = gid.local().to_owned();
            let assigned_by = by(caller);
            let agency = caller.principal.agency.clone();
            let written_key = key.clone();
            let written = state
                .audit
                .record::<_, NodeError, _>(move |conn| {
                    Box::pin(async move {
                        let outcome = Outcome::Assignment {
                            survivor_id: local.clone(),
                        };
                        idempotency::write(written_key.as_ref(), conn, &outcome).await?;
                        still_standing(conn, &local, standing, &agency).await?;
                        store::replace_assignments(
                            conn,
                            &local,
                            &users,
                            exchange_schema::audit::now_millis(),
                            &assigned_by,
                        )
                        .await
                        .map_err(NodeError::internal)?;
                        Ok(((), event))
                    })
                })
                .await;
            let written = idempotency::settle(key.as_ref(), &state.db, written).await;
            refused(state, caller, written, &gid).await?;
        }
        let mut conn = crate::store::acquire(&state.db).await?;
        Ok(store::assignments(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?
            .into_iter()
            .map(CaseworkerAssignment::from)
            .collect())
    }
}

/// A user ID as an identity provider issues it (`sub`): short, one line.
pub(super) fn check_user_id(field: &str, user: &str) -> Result<(), NodeError> {
    if user.trim().is_empty() {
        return Err(NodeError::bad_input(format!("{field} must not be empty")));
    }
    check_text(field, user, SHORT_TEXT, false)
}

/// A write refused inside its transaction is audited as a denial.
pub(super) async fn refused<T>(
    state: &NodeState,
    caller: &Caller,
    outcome: Result<T, NodeError>,
    survivor: &GlobalId,
) -> Result<T, NodeError> {
    match outcome {
        Err(
            err @ (NodeError::NotFound(_)
            | NodeError::Conflict(_)
            | NodeError::Forbidden(_)
            | NodeError::BadInput(_)
            | NodeError::Moved(_)),
        ) => Err(state.deny(caller, err, Some(survivor), None).await),
        other => other,
    }
}

pub(super) fn foreign(outcome: &Outcome) -> NodeError {
    NodeError::internal(anyhow::anyhow!(
        "the stored idempotency outcome {outcome:?} does not fit this mutation"
    ))
}

/// A retried `addCaseNote`: the note it added.
async fn replay_note(state: &NodeState, outcome: Outcome) -> Result<CaseNote> {
    let Outcome::CaseNote { id } = &outcome else {
        return Err(foreign(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let note = store::get_note(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("case note"))?;
    Ok(CaseNote::new(&state.agency, note))
}

/// A retried service change: the service as it is now.
async fn replay_service(state: &NodeState, outcome: Outcome) -> Result<Service> {
    let Outcome::Service { id } = &outcome else {
        return Err(foreign(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let service = store::get_service(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("service"))?;
    Ok(Service::new(&state.agency, service))
}

/// A retried follow-up change: the follow-up as it is now.
async fn replay_follow_up(state: &NodeState, outcome: Outcome) -> Result<FollowUp> {
    let Outcome::FollowUp { id } = &outcome else {
        return Err(foreign(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let follow_up = store::get_follow_up(&mut conn, id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("follow-up"))?;
    Ok(FollowUp::new(&state.agency, follow_up))
}

// ---- Reads --------------------------------------------------------------

/// `Survivor.caseNotes`: the notes in the categories the disclosure
/// decision allowed (and `category`, if given), newest first. The notes
/// returned are audited in an entry of their own, naming their categories.
pub async fn case_notes(
    ctx: &Context<'_>,
    survivor: &Survivor,
    category: Option<Category>,
    include_superseded: bool,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, CaseNote>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let limit = page_size(first)?;
    let after = after.as_deref().map(decode_cursor).transpose()?;
    let categories: Vec<Category> = survivor
        .allowed
        .iter()
        .copied()
        .filter(|c| category.is_none_or(|wanted| wanted == *c))
        .collect();
    let mut conn = crate::store::acquire(&state.db).await?;
    let mut notes = store::notes_page(
        &mut conn,
        &state.vault,
        &survivor.local_id,
        &categories,
        include_superseded,
        after,
        limit + 1,
    )
    .await
    .map_err(NodeError::internal)?;
    drop(conn);
    let has_next = notes.len() as i64 > limit;
    notes.truncate(limit as usize);
    if !notes.is_empty() {
        let mut disclosed: Vec<Category> = notes.iter().map(|n| n.category).collect();
        disclosed.sort();
        disclosed.dedup();
        let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "CASE_NOTES");
        event.survivor = Some(GlobalId::new(
            state.agency.clone(),
            survivor.local_id.clone(),
        )?);
        event.subject = Some(format!("{} case notes", notes.len()));
        event.disclosed = disclosed;
        event.break_glass = survivor.break_glass;
        event.policy_set = Some(state.policies.set_hash().to_owned());
        state.audit.append(event).await.map_err(NodeError::from)?;
    }
    let mut connection = Connection::new(false, has_next);
    connection.edges.extend(notes.into_iter().map(|n| {
        Edge::new(
            encode_cursor(to_ms(n.created_at), &n.id),
            CaseNote::new(&state.agency, n),
        )
    }));
    Ok(connection)
}

/// `Survivor.services`: `null` unless `CASE` was disclosed.
pub async fn services(ctx: &Context<'_>, survivor: &Survivor) -> Result<Option<Vec<Service>>> {
    if !survivor.allowed.contains(&Category::Case) {
        return Ok(None);
    }
    let state = state(ctx);
    let mut conn = crate::store::acquire(&state.db).await?;
    let list = store::services_for(&mut conn, &state.vault, &survivor.local_id)
        .await
        .map_err(NodeError::internal)?;
    Ok(Some(
        list.into_iter()
            .map(|s| Service::new(&state.agency, s))
            .collect(),
    ))
}

/// `Survivor.followUps`: `null` unless `CASE` was disclosed.
pub async fn follow_ups(ctx: &Context<'_>, survivor: &Survivor) -> Result<Option<Vec<FollowUp>>> {
    if !survivor.allowed.contains(&Category::Case) {
        return Ok(None);
    }
    let state = state(ctx);
    let mut conn = crate::store::acquire(&state.db).await?;
    let list = store::follow_ups_for(&mut conn, &survivor.local_id)
        .await
        .map_err(NodeError::internal)?;
    Ok(Some(
        list.into_iter()
            .map(|f| FollowUp::new(&state.agency, f))
            .collect(),
    ))
}

/// `Survivor.assignedCaseworkers`: the owner's own staff only, and only
/// where `CASE` was disclosed to them (never to an auditor).
pub async fn assigned_caseworkers(
    ctx: &Context<'_>,
    survivor: &Survivor,
) -> Result<Option<Vec<CaseworkerAssignment>>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    if !state.is_own_staff(caller) || !survivor.allowed.contains(&Category::Case) {
        return Ok(None);
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    Ok(Some(
        store::assignments(&mut conn, &survivor.local_id)
            .await
            .map_err(NodeError::internal)?
            .into_iter()
            .map(CaseworkerAssignment::from)
            .collect(),
    ))
}

/// `followUpsDue`: the open follow-ups this node holds that are assigned to
/// the caller's agency and due before `before`, soonest first. Caseworkers
/// and supervisors only; each listing is audited.
pub async fn follow_ups_due(
    ctx: &Context<'_>,
    before: OffsetDateTime,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, FollowUp>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let limit = page_size(first)?;
    let after = after.as_deref().map(decode_cursor).transpose()?;
    let roles = &caller.principal.roles;
    if !roles.contains(&Role::Caseworker) && !roles.contains(&Role::Supervisor) {
        let err =
            NodeError::Forbidden("follow-ups are listed to caseworkers and supervisors".into());
        return Err(state.deny(caller, err, None, None).await.into());
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    let mut rows = store::due_page(
        &mut conn,
        &caller.principal.agency,
        before,
        after,
        limit + 1,
    )
    .await
    .map_err(NodeError::internal)?;
    drop(conn);
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut event = caller.event(AuditKind::Disclosure, Decision::Permit, "FOLLOW_UPS_DUE");
    event.purpose = Some(purpose);
    event.subject = Some(format!("{} follow-ups", rows.len()));
    state.audit.append(event).await.map_err(NodeError::from)?;
    let mut connection = Connection::new(false, has_next);
    connection.edges.extend(rows.into_iter().map(|f| {
        Edge::new(
            encode_cursor(to_ms(f.due_at), &f.id),
            FollowUp::new(&state.agency, f),
        )
    }));
    Ok(connection)
}

/// `Survivor.referrals`: every referral of the survivor with its history,
/// for the owner's staff only (where `CASE` is disclosed to them).
pub async fn survivor_referrals(
    ctx: &Context<'_>,
    survivor: &Survivor,
) -> Result<Option<Vec<super::types::Referral>>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    if !state.is_own_staff(caller) || !survivor.allowed.contains(&Category::Case) {
        return Ok(None);
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    let records = referrals::for_survivor(&mut conn, &state.vault, &survivor.local_id)
        .await
        .map_err(NodeError::internal)?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let histories = referrals::histories(&mut conn, &state.vault, &ids)
        .await
        .map_err(NodeError::internal)?;
    Ok(Some(
        records
            .into_iter()
            .zip(histories)
            .map(|(r, h)| super::types::Referral::new(state.agency.as_str(), r, h))
            .collect(),
    ))
}

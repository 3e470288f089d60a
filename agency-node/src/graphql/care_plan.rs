//! The care plan through the subgraph: goals and actions, each action with
//! a responsible agency, a due time and a status; versioned, with the
//! survivor's agreement recorded for each version.
//!
//! The owner's staff propose versions and record a witnessed agreement
//! (`changeCarePlan`); the survivor agrees, or asks for a change, in the
//! portal ([`crate::portal`]). The owner and a partner responsible for an
//! action move it on (`updatePlanAction`), on the newest version only.
//!
//! Reading: the whole plan travels as `CASE`, under the same disclosure
//! decision as the survivor. A partner agency without `CASE` consent still
//! sees the actions it is responsible for (never the goals, the other
//! actions or the survivor's words), and that read is audited.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use exchange_policies::Action;
use exchange_schema::{
    AgencyId, AuditKind, Category, ConsentMethod, Decision, GlobalId, PlanActionStatus,
};
use time::OffsetDateTime;

use super::case::{
    FURTHEST_DUE, Standing, by, case_standing, foreign, is_unique_violation, refused,
    still_standing,
};
use super::types::Survivor;
use super::{caller, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::idempotency::{self, Outcome, Written};
use crate::records::{SHORT_TEXT, check_text};
use crate::state::{Caller, NodeState};
use crate::store::care_plan::{self as store, Agreement, CarePlanRecord, PlanAction};
use crate::store::referrals;

/// Longest goal or action description, in characters.
pub const PLAN_TEXT: usize = 1000;
/// Most goals in one version.
const MOST_GOALS: usize = 20;
/// Most actions in one version.
const MOST_ACTIONS: usize = 50;

/// One action of a care plan.
#[derive(SimpleObject, Clone)]
pub struct CarePlanAction {
    /// The action's place in its version (from 1).
    pub position: i64,
    pub description: String,
    pub responsible_agency: String,
    pub due_at: Option<OffsetDateTime>,
    pub status: PlanActionStatus,
    pub updated_at: OffsetDateTime,
}

impl From<PlanAction> for CarePlanAction {
    fn from(a: PlanAction) -> Self {
        Self {
            position: a.position,
            description: a.description,
            responsible_agency: a.responsible.to_string(),
            due_at: a.due_at,
            status: a.status,
            updated_at: a.updated_at,
        }
    }
}

/// The survivor's agreement to a plan version.
#[derive(SimpleObject, Clone)]
pub struct PlanAgreement {
    pub at: OffsetDateTime,
    /// PORTAL when the survivor agreed in the portal; otherwise witnessed.
    pub method: ConsentMethod,
    /// The staff member who recorded it, or `survivor`.
    pub recorded_by: String,
    pub witness: Option<String>,
}

/// A change the survivor asked for, in their words.
#[derive(SimpleObject, Clone)]
pub struct PlanChangeRequest {
    pub at: OffsetDateTime,
    pub text: String,
}

/// One version of a survivor's care plan, as far as the requester may see
/// it: `complete` is false for a partner that sees only its own actions.
#[derive(SimpleObject, Clone)]
pub struct CarePlan {
    pub survivor_id: ID,
    pub version: i64,
    /// Whether this is the whole plan (false: only the actions the
    /// requester's agency is responsible for).
    pub complete: bool,
    /// `null` unless `complete`.
    pub goals: Option<Vec<String>>,
    pub actions: Vec<CarePlanAction>,
    pub created_at: OffsetDateTime,
    pub agreement: Option<PlanAgreement>,
    /// `null` unless `complete`.
    pub change_request: Option<PlanChangeRequest>,
}

impl CarePlan {
    fn whole(owner: &AgencyId, p: CarePlanRecord) -> Self {
        Self {
            survivor_id: ID(format!("{owner}:{}", p.survivor_id)),
            version: p.version,
            complete: true,
            goals: Some(p.goals),
            actions: p.actions.into_iter().map(CarePlanAction::from).collect(),
            created_at: p.created_at,
            agreement: p.agreement.map(|a| PlanAgreement {
                at: a.at,
                method: a.method,
                recorded_by: a.by,
                witness: a.witness,
            }),
            change_request: p.change_request.map(|c| PlanChangeRequest {
                at: c.at,
                text: c.text,
            }),
        }
    }

    /// Only the actions `agency` is responsible for.
    fn assigned_to(owner: &AgencyId, p: CarePlanRecord, agency: &AgencyId) -> Self {
        let mut plan = Self::whole(owner, p);
        plan.complete = false;
        plan.goals = None;
        plan.change_request = None;
        plan.actions
            .retain(|a| a.responsible_agency == agency.as_str());
        plan
    }
}

/// One action of a proposed plan.
#[derive(InputObject)]
pub struct CarePlanActionInput {
    /// Up to 1000 characters.
    pub description: String,
    /// The agency responsible: the owner, or another member agency.
    pub responsible_agency: String,
    pub due_at: Option<OffsetDateTime>,
}

/// A new version of a survivor's care plan.
#[derive(InputObject)]
pub struct ProposeCarePlanInput {
    pub survivor_id: ID,
    /// One to 20 goals, each up to 1000 characters.
    pub goals: Vec<String>,
    /// Up to 50 actions.
    pub actions: Vec<CarePlanActionInput>,
}

fn check_plan_text(field: &str, text: &str) -> Result<(), NodeError> {
    if text.trim().is_empty() {
        return Err(NodeError::bad_input(format!("{field} must not be empty")));
    }
    check_text(field, text, PLAN_TEXT, true)
}

/// The care-plan mutations, merged into the node's `Mutation`.
#[derive(Default)]
pub struct CarePlanMutation;

#[Object]
impl CarePlanMutation {
    /// Proposes a new version of a survivor's care plan (owner's staff).
    /// It waits for the survivor's agreement, in the portal or witnessed.
    async fn propose_care_plan(
        &self,
        ctx: &Context<'_>,
        input: ProposeCarePlanInput,
    ) -> Result<CarePlan> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        let standing = case_standing(state, caller, purpose, Action::ChangeCarePlan, &gid).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_plan(state, outcome).await;
        }
        if input.goals.is_empty() || input.goals.len() > MOST_GOALS {
            return Err(NodeError::bad_input(format!(
                "a care plan has between 1 and {MOST_GOALS} goals"
            ))
            .into());
        }
        if input.actions.len() > MOST_ACTIONS {
            return Err(NodeError::bad_input(format!(
                "a care plan has at most {MOST_ACTIONS} actions"
            ))
            .into());
        }
        for goal in &input.goals {
            check_plan_text("goals", goal)?;
        }
        let now = exchange_schema::audit::now_millis();
        let mut actions = Vec::with_capacity(input.actions.len());
        for (i, action) in input.actions.into_iter().enumerate() {
            check_plan_text("actions.description", &action.description)?;
            let responsible = state.known_agency(&action.responsible_agency)?;
            if let Some(due) = action.due_at
                && (due < now - time::Duration::days(1) || due > now + FURTHEST_DUE)
            {
                return Err(NodeError::bad_input(
                    "actions.dueAt must be between a day ago and five years from now",
                )
                .into());
            }
            actions.push(PlanAction {
                position: i as i64 + 1,
                description: action.description,
                responsible,
                due_at: action.due_at,
                status: PlanActionStatus::ToDo,
                updated_at: now,
                updated_by: by(caller),
            });
        }
        let plan = CarePlanRecord {
            survivor_id: gid.local().to_owned(),
            version: 0,
            goals: input.goals,
            actions,
            created_at: now,
            created_by: by(caller),
            agreement: None,
            change_request: None,
        };
        let mut event = change_event(caller, AuditKind::CarePlanProposed, Some(gid.clone()), None);
        event.purpose = Some(purpose);
        let written_key = key.clone();
        let agency = caller.principal.agency.clone();
        let owner = state.agency.clone();
        let vault = state.vault.clone();
        let written = state
            .audit
            .record::<_, NodeError, _>(move |conn| {
                Box::pin(async move {
                    let mut plan = plan;
                    still_standing(conn, &plan.survivor_id, standing, &agency).await?;
                    plan.version = store::next_version(conn, &plan.survivor_id)
                        .await
                        .map_err(NodeError::internal)?;
                    let outcome = Outcome::CarePlan {
                        survivor_id: plan.survivor_id.clone(),
                        version: plan.version,
                    };
                    idempotency::write(written_key.as_ref(), conn, &outcome).await?;
                    store::insert(conn, &vault, &plan).await.map_err(|e| {
                        if is_unique_violation(&e) {
                            NodeError::Conflict(
                                "another version was proposed meanwhile; reload the plan".into(),
                            )
                        } else {
                            NodeError::internal(e)
                        }
                    })?;
                    let mut event = event;
                    event.reason = format!("VERSION:{}", plan.version);
                    event.subject = Some(format!(
                        "{owner}:{}/care-plan/{}",
                        plan.survivor_id, plan.version
                    ));
                    Ok((plan, event))
                })
            })
            .await;
        let written = idempotency::settle(key.as_ref(), &state.db, written).await;
        match refused(state, caller, written, &gid).await? {
            Written::Done(plan) => Ok(CarePlan::whole(&state.agency, plan)),
            Written::Replayed(outcome) => replay_plan(state, outcome).await,
        }
    }

    /// Records the survivor's agreement to the newest plan version, given
    /// in person and witnessed by staff (WITNESSED_VERBAL or
    /// WITNESSED_WRITTEN); in the portal the survivor agrees themselves.
    async fn record_care_plan_agreement(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        version: i64,
        method: ConsentMethod,
        witness: Option<String>,
    ) -> Result<CarePlan> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        let standing = case_standing(state, caller, purpose, Action::ChangeCarePlan, &gid).await?;
        if method == ConsentMethod::Portal {
            return Err(NodeError::bad_input(
                "PORTAL agreements are given by the survivor in the portal",
            )
            .into());
        }
        if let Some(w) = &witness {
            check_text("witness", w, SHORT_TEXT, false)?;
        }
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_plan(state, outcome).await;
        }
        let agreement = Agreement {
            at: exchange_schema::audit::now_millis(),
            method,
            by: by(caller),
            witness,
        };
        let mut event = change_event(caller, AuditKind::CarePlanAgreed, Some(gid.clone()), None);
        event.purpose = Some(purpose);
        event.reason = method.as_str().to_owned();
        let written = agree(
            state,
            &gid,
            version,
            agreement,
            event,
            standing,
            caller,
            key.clone(),
        )
        .await;
        let written = idempotency::settle(key.as_ref(), &state.db, written).await;
        match refused(state, caller, written, &gid).await? {
            Written::Done(plan) => Ok(CarePlan::whole(&state.agency, plan)),
            Written::Replayed(outcome) => replay_plan(state, outcome).await,
        }
    }

    /// Moves an action of the newest plan version on: the owner's staff,
    /// or the partner agency responsible for it.
    async fn update_care_plan_action(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        version: i64,
        position: i64,
        status: PlanActionStatus,
    ) -> Result<CarePlanAction> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        let standing =
            case_standing(state, caller, purpose, Action::UpdatePlanAction, &gid).await?;
        let mut conn = crate::store::acquire(&state.db).await?;
        let latest = store::latest(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let me = &caller.principal.agency;
        // A partner is told only of actions it is responsible for.
        let action = latest.as_ref().and_then(|p| {
            p.actions
                .iter()
                .find(|a| a.position == position)
                .filter(|a| standing == Standing::Owner || &a.responsible == me)
                .cloned()
                .map(|a| (p.version, a))
        });
        let Some((newest, action)) = action else {
            return Err(state
                .deny(
                    caller,
                    NodeError::NotFound("care plan action"),
                    Some(&gid),
                    None,
                )
                .await
                .into());
        };
        if newest != version {
            let err = NodeError::Conflict(format!(
                "version {version} is not the newest care plan (version {newest} is)"
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let key = idempotency::field_key(ctx);
        if idempotency::stored(key.as_ref(), &state.db)
            .await?
            .is_none()
        {
            let from = action.status;
            if !from.may_become(status) {
                let err = NodeError::Conflict(format!("a {from} action cannot become {status}"));
                return Err(state.deny(caller, err, Some(&gid), None).await.into());
            }
            let mut event = change_event(
                caller,
                AuditKind::CarePlanActionUpdated,
                Some(gid.clone()),
                Some(format!("{}/care-plan/{version}/{position}", gid)),
            );
            event.purpose = Some(purpose);
            event.reason = format!("{from}->{status}");
            let local = gid.local().to_owned();
            let agency = me.clone();
            let updater = by(caller);
            let written_key = key.clone();
            let written = state
                .audit
                .record::<_, NodeError, _>(move |conn| {
                    Box::pin(async move {
                        let outcome = Outcome::CarePlan {
                            survivor_id: local.clone(),
                            version,
                        };
                        idempotency::write(written_key.as_ref(), conn, &outcome).await?;
                        still_standing(conn, &local, standing, &agency).await?;
                        let newest = store::next_version(conn, &local)
                            .await
                            .map_err(NodeError::internal)?
                            - 1;
                        if newest != version {
                            return Err(NodeError::Conflict(
                                "a new care plan version was proposed meanwhile".into(),
                            ));
                        }
                        let now = exchange_schema::audit::now_millis();
                        let step = store::ActionStep {
                            position,
                            from,
                            to: status,
                            at: now,
                            by: &updater,
                        };
                        if !store::update_action(conn, &local, version, step)
                            .await
                            .map_err(NodeError::internal)?
                        {
                            return Err(NodeError::Conflict(
                                "the action changed meanwhile; reload the plan".into(),
                            ));
                        }
                        Ok(((), event))
                    })
                })
                .await;
            let written = idempotency::settle(key.as_ref(), &state.db, written).await;
            refused(state, caller, written, &gid).await?;
        }
        let mut conn = crate::store::acquire(&state.db).await?;
        store::latest(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?
            .and_then(|p| p.actions.into_iter().find(|a| a.position == position))
            .map(CarePlanAction::from)
            .ok_or_else(|| NodeError::NotFound("care plan action").into())
    }
}

/// Records an agreement to `version`, which must be the newest and not
/// agreed to yet; shared by the witnessed mutation and the portal.
#[allow(clippy::too_many_arguments)]
pub(super) async fn agree(
    state: &NodeState,
    gid: &GlobalId,
    version: i64,
    agreement: Agreement,
    event: exchange_schema::AuditEvent,
    standing: Standing,
    caller: &Caller,
    key: Option<idempotency::FieldKey>,
) -> Result<CarePlanRecord, NodeError> {
    let local = gid.local().to_owned();
    let agency = caller.principal.agency.clone();
    let owner = state.agency.clone();
    let vault = state.vault.clone();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                let outcome = Outcome::CarePlan {
                    survivor_id: local.clone(),
                    version,
                };
                idempotency::write(key.as_ref(), conn, &outcome).await?;
                still_standing(conn, &local, standing, &agency).await?;
                agree_in(conn, &vault, &owner, &local, version, &agreement).await?;
                let plan = store::latest(conn, &vault, &local)
                    .await
                    .map_err(NodeError::internal)?
                    .ok_or(NodeError::NotFound("care plan"))?;
                let mut event = event;
                event.subject = Some(format!("{owner}:{local}/care-plan/{version}"));
                Ok((plan, event))
            })
        })
        .await
}

/// Inside a write: records the agreement, or says why not.
pub async fn agree_in(
    conn: &mut sqlx::AnyConnection,
    vault: &crate::vault::Vault,
    owner: &AgencyId,
    survivor: &str,
    version: i64,
    agreement: &Agreement,
) -> Result<(), NodeError> {
    let newest = store::next_version(conn, survivor)
        .await
        .map_err(NodeError::internal)?
        - 1;
    if newest == 0 {
        return Err(NodeError::NotFound("care plan"));
    }
    if version != newest {
        return Err(NodeError::Conflict(format!(
            "version {version} of {owner}:{survivor}'s care plan is not the newest (version \
             {newest} is)"
        )));
    }
    if !store::agree(conn, vault, survivor, version, agreement)
        .await
        .map_err(NodeError::internal)?
    {
        return Err(NodeError::Conflict(
            "the survivor has already agreed to this version".into(),
        ));
    }
    let gid = GlobalId::new(owner.clone(), survivor.to_owned())?;
    crate::store::notifications::queue(
        conn,
        owner,
        exchange_schema::NotificationKind::CarePlanAgreed,
        &format!("{gid}/care-plan/{version}"),
        Some(&gid),
    )
    .await
    .map_err(NodeError::internal)?;
    Ok(())
}

/// A retried plan change: the plan's newest version as it is now.
async fn replay_plan(state: &NodeState, outcome: Outcome) -> Result<CarePlan> {
    let Outcome::CarePlan { survivor_id, .. } = &outcome else {
        return Err(foreign(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let plan = store::latest(&mut conn, &state.vault, survivor_id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("care plan"))?;
    Ok(CarePlan::whole(&state.agency, plan))
}

// ---- Reads --------------------------------------------------------------

/// `Survivor.carePlan`: the newest version, whole where `CASE` is
/// disclosed; otherwise, to a partner agency, only the actions it is
/// responsible for (audited); otherwise `null`.
pub async fn care_plan(ctx: &Context<'_>, survivor: &Survivor) -> Result<Option<CarePlan>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let mut conn = crate::store::acquire(&state.db).await?;
    if survivor.allowed.contains(&Category::Case) {
        let plan = store::latest(&mut conn, &state.vault, &survivor.local_id)
            .await
            .map_err(NodeError::internal)?;
        return Ok(plan.map(|p| CarePlan::whole(&state.agency, p)));
    }
    let me = &caller.principal.agency;
    if state.is_own_staff(caller)
        || !referrals::is_partner(&mut conn, &survivor.local_id, me)
            .await
            .map_err(NodeError::internal)?
    {
        return Ok(None);
    }
    let Some(plan) = store::latest(&mut conn, &state.vault, &survivor.local_id)
        .await
        .map_err(NodeError::internal)?
    else {
        return Ok(None);
    };
    drop(conn);
    let plan = CarePlan::assigned_to(&state.agency, plan, me);
    if plan.actions.is_empty() {
        return Ok(None);
    }
    let mut event = caller.event(
        AuditKind::Disclosure,
        Decision::Permit,
        "CARE_PLAN_ACTIONS_ASSIGNED",
    );
    event.survivor = Some(GlobalId::new(
        state.agency.clone(),
        survivor.local_id.clone(),
    )?);
    event.subject = Some(format!(
        "care plan version {}: {} actions",
        plan.version,
        plan.actions.len()
    ));
    event.policy_set = Some(state.policies.set_hash().to_owned());
    state.audit.append(event).await.map_err(NodeError::from)?;
    Ok(Some(plan))
}

/// `Survivor.carePlanVersions`: every version, newest first; `null` unless
/// `CASE` is disclosed.
pub async fn care_plan_versions(
    ctx: &Context<'_>,
    survivor: &Survivor,
) -> Result<Option<Vec<CarePlan>>> {
    if !survivor.allowed.contains(&Category::Case) {
        return Ok(None);
    }
    let state = state(ctx);
    let mut conn = crate::store::acquire(&state.db).await?;
    Ok(Some(
        store::versions(&mut conn, &state.vault, &survivor.local_id)
            .await
            .map_err(NodeError::internal)?
            .into_iter()
            .map(|p| CarePlan::whole(&state.agency, p))
            .collect(),
    ))
}

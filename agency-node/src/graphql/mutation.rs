//! Changes to the node's records. Each one checks who may make it (the
//! owning agency, or the agency a referral was sent to), asks the policy
//! engine, validates its input, and then writes the change together with its
//! audit entry in one transaction ([`exchange_audit::AuditLog::record`]).
//!
//! Under an `Idempotency-Key` ([`crate::idempotency`]) each change also
//! writes its key in that transaction, and a retry answers from the stored
//! outcome after the checks of who may make the change (never the checks of
//! the record's state, which the first request changed): the record is read
//! again and shown as the caller may see it now.

use async_graphql::{Context, ID, InputObject, Object, Result};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::{
    AuditKind, Category, ConsentMethod, GlobalId, NotificationKind, Purpose, ReferralStatus,
    ServiceKind, Urgency,
};
use time::OffsetDateTime;

use super::types::{ConsentGrant, Referral, Survivor};
use super::{caller, selected_categories, state};
use crate::disclosure::{change_event, disclose};
use crate::error::NodeError;
use crate::idempotency::{self, Outcome, Written};
use crate::records::{
    CaseDetails, Contact, HealthNotes, Identity, LegalStatus, SHORT_TEXT, Validate, check_text,
};
use crate::state::{Caller, NodeState};
use crate::store::break_glass::BreakGlassOpening;
use crate::store::grants::ConsentGrantRecord;
use crate::store::referrals::{ReferralEvent, ReferralRecord};
use crate::store::survivors::SurvivorRecord;
use crate::store::{break_glass, grants, new_local_id, referrals, survivors};

/// Survivors' records, consent, referrals and break-glass.
#[derive(Default)]
pub struct RecordMutation;

/// A consent code just issued: shown once, never stored in clear.
#[derive(async_graphql::SimpleObject)]
pub struct IssuedConsentCode {
    pub survivor_id: ID,
    /// Hand this to the survivor; it cannot be shown again.
    pub code: String,
    pub issued_at: OffsetDateTime,
}

/// A new survivor's record. Only `identity` is required.
#[derive(InputObject)]
pub struct RegisterSurvivorInput {
    pub identity: Identity,
    pub contact: Option<Contact>,
    pub case: Option<CaseDetails>,
    pub health: Option<HealthNotes>,
    pub legal: Option<LegalStatus>,
    /// The survivor asked not to be counted in the federation's
    /// statistics (they can change this in the portal).
    #[graphql(default)]
    pub statistics_opt_out: bool,
}

/// Categories to replace; a category left out is unchanged.
#[derive(InputObject)]
pub struct UpdateSurvivorInput {
    pub identity: Option<Identity>,
    pub contact: Option<Contact>,
    pub case: Option<CaseDetails>,
    pub health: Option<HealthNotes>,
    pub legal: Option<LegalStatus>,
}

impl Validate for RegisterSurvivorInput {
    fn validate(&mut self) -> Result<(), NodeError> {
        self.identity.validate()?;
        self.contact.validate()?;
        self.case.validate()?;
        self.health.validate()?;
        self.legal.validate()
    }
}

impl Validate for UpdateSurvivorInput {
    fn validate(&mut self) -> Result<(), NodeError> {
        self.identity.validate()?;
        self.contact.validate()?;
        self.case.validate()?;
        self.health.validate()?;
        self.legal.validate()
    }
}

/// A referral to another agency.
#[derive(InputObject)]
pub struct CreateReferralInput {
    pub survivor_id: ID,
    /// The receiving agency's ID.
    pub to_agency: String,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub notes: Option<String>,
}

/// A consent the survivor gave outside the portal, witnessed by staff.
#[derive(InputObject)]
pub struct RecordConsentInput {
    pub survivor_id: ID,
    /// The agency allowed to see the categories.
    pub grantee: String,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    /// Defaults to now.
    pub valid_from: Option<OffsetDateTime>,
    /// Open-ended when left out.
    pub valid_until: Option<OffsetDateTime>,
    /// WITNESSED_VERBAL or WITNESSED_WRITTEN.
    pub method: ConsentMethod,
    /// Who witnessed it, besides the recording caseworker.
    pub witness: Option<String>,
}

#[Object]
impl RecordMutation {
    /// Registers a survivor at this node (the node's own staff only).
    async fn register_survivor(
        &self,
        ctx: &Context<'_>,
        input: RegisterSurvivorInput,
    ) -> Result<Survivor> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        own_change(state, caller, purpose, Action::RegisterSurvivor, None).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_survivor(ctx, state, caller, purpose, outcome).await;
        }
        let mut input = input;
        input.validate()?;
        let now = exchange_schema::audit::now_millis();
        let record = SurvivorRecord {
            id: new_local_id(),
            created_at: now,
            updated_at: now,
            created_by: caller.principal.user.clone(),
            identity: Some(input.identity),
            contact: input.contact,
            case: input.case,
            health: input.health,
            legal: input.legal,
            erased: Vec::new(),
        };
        let written = crate::changes::register_survivor_keyed(
            state,
            caller,
            &record,
            input.statistics_opt_out,
            key.clone(),
        )
        .await;
        match idempotency::settle(key.as_ref(), &state.db, written).await? {
            Written::Done(_) => disclosed_one(ctx, state, caller, purpose, record).await,
            Written::Replayed(outcome) => {
                replay_survivor(ctx, state, caller, purpose, outcome).await
            }
        }
    }

    /// Replaces the given categories of a survivor's record (own staff only).
    async fn update_survivor(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateSurvivorInput,
    ) -> Result<Survivor> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&id)?;
        own_change(state, caller, purpose, Action::UpdateSurvivor, Some(&gid)).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_survivor(ctx, state, caller, purpose, outcome).await;
        }
        let mut input = input;
        input.validate()?;
        let event = change_event(caller, AuditKind::SurvivorUpdated, Some(gid.clone()), None);
        let local = gid.local().to_owned();
        let written_key = key.clone();
        let vault = state.vault.clone();
        let updated = state
            .audit
            .record::<_, crate::error::NodeError, _>(move |conn| {
                Box::pin(async move {
                    let outcome = Outcome::Survivor { id: local.clone() };
                    idempotency::write(written_key.as_ref(), conn, &outcome).await?;
                    crate::changes::require_survivor(conn, &local).await?;
                    let mut record = survivors::get(conn, &vault, &local)
                        .await
                        .map_err(NodeError::internal)?
                        .ok_or(NodeError::NotFound("survivor"))?;
                    // Text kept by the coded-intake upgrade is never
                    // dropped: a replaced category keeps it.
                    if let Some(mut v) = input.identity {
                        v.unmapped = record
                            .identity
                            .take()
                            .map(|old| old.unmapped)
                            .unwrap_or_default();
                        record.identity = Some(v);
                    }
                    if let Some(v) = input.contact {
                        record.contact = Some(v);
                    }
                    if let Some(mut v) = input.case {
                        v.unmapped = record
                            .case
                            .take()
                            .map(|old| old.unmapped)
                            .unwrap_or_default();
                        record.case = Some(v);
                    }
                    if let Some(v) = input.health {
                        record.health = Some(v);
                    }
                    if let Some(v) = input.legal {
                        record.legal = Some(v);
                    }
                    record.updated_at = exchange_schema::audit::now_millis();
                    survivors::update(conn, &vault, &record)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok((record, event))
                })
            })
            .await;
        let updated = idempotency::settle(key.as_ref(), &state.db, updated).await;
        match refused_in_write(state, caller, updated, Some(&gid), None).await? {
            Written::Done(record) => disclosed_one(ctx, state, caller, purpose, record).await,
            Written::Replayed(outcome) => {
                replay_survivor(ctx, state, caller, purpose, outcome).await
            }
        }
    }

    /// Refers a survivor of this node to another agency. Needs the survivor's
    /// active consent for the REFERRAL purpose naming the receiving agency.
    ///
    /// An agency that accepted a referral of the survivor refers them
    /// onward the same way, without registering them again: the referral is
    /// decided and kept here, at the owner, under the owner's consent
    /// records, and names the accepted referral it continues (`parentId`).
    async fn create_referral(
        &self,
        ctx: &Context<'_>,
        input: CreateReferralInput,
    ) -> Result<Referral> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        // The owner's staff refer; a partner refers onward from the
        // referral it accepted; anyone else is refused the same way
        // whether the survivor exists or not.
        let parent = if state.is_own_staff(caller) {
            None
        } else {
            let mut conn = crate::store::acquire(&state.db).await?;
            let accepted = referrals::accepted_to(&mut conn, gid.local(), &caller.principal.agency)
                .await
                .map_err(NodeError::internal)?;
            drop(conn);
            match accepted {
                Some(parent) => Some(parent),
                None => {
                    let err = NodeError::Forbidden(format!(
                        "only staff of {}, or of an agency that accepted a referral of the \
                         survivor, may refer them",
                        state.agency
                    ));
                    return Err(state.deny(caller, err, Some(&gid), None).await.into());
                }
            }
        };
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_referral(state, outcome).await;
        }
        let to_agency = state.known_agency(&input.to_agency)?;
        if to_agency == caller.principal.agency || to_agency == state.agency {
            return Err(NodeError::bad_input(
                "a referral goes to another agency than the referring one and the owner",
            )
            .into());
        }
        if let Some(notes) = &input.notes {
            check_text("notes", notes, crate::records::LONG_TEXT, true)?;
        }
        let now = exchange_schema::audit::now_millis();
        let mut conn = crate::store::acquire(&state.db).await?;
        if !survivors::exists(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?
        {
            let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "survivor").await;
            drop(conn);
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let grants_to_receiver: Vec<exchange_policies::GrantFacts> =
            grants::for_survivor(&mut conn, &state.vault, gid.local())
                .await
                .map_err(NodeError::internal)?
                .iter()
                .filter(|g| g.grantee == to_agency)
                .map(ConsentGrantRecord::facts)
                .collect();
        drop(conn);
        let consented = grants_to_receiver.iter().any(|g| {
            g.purposes.contains(&Purpose::Referral)
                && g.revoked_at.is_none()
                && g.valid_from <= now
                && g.valid_until.is_none_or(|u| now < u)
        });
        if !consented {
            let err = NodeError::ConsentRequired(format!(
                "the survivor has no active consent for REFERRAL naming {to_agency}"
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let target = ActionTarget::referral(
            caller.principal.agency.clone(),
            to_agency.clone(),
            grants_to_receiver,
        );
        let action = if parent.is_some() {
            Action::ReferOnward
        } else {
            Action::MakeReferral
        };
        state
            .authorize(caller, purpose, action, target, Some(&gid))
            .await?;
        let record = ReferralRecord {
            id: new_local_id(),
            survivor_id: gid.local().to_owned(),
            from_agency: caller.principal.agency.clone(),
            to_agency,
            service: input.service,
            urgency: input.urgency,
            status: ReferralStatus::Pending,
            notes: input.notes,
            created_at: now,
            updated_at: now,
            created_by: caller.principal.user.clone(),
            parent_id: parent,
        };
        let written =
            crate::changes::create_referral_keyed(state, caller, &gid, &record, key.clone()).await;
        let written = idempotency::settle(key.as_ref(), &state.db, written).await;
        match refused_in_write(state, caller, written, Some(&gid), None).await? {
            Written::Done(history) => Ok(Referral::new(state.agency.as_str(), record, history)),
            Written::Replayed(outcome) => replay_referral(state, outcome).await,
        }
    }

    /// The receiving agency accepts a pending referral.
    async fn accept_referral(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> Result<Referral> {
        answer_referral(ctx, &id, ReferralStatus::Accepted, note).await
    }

    /// The receiving agency declines a pending referral.
    async fn decline_referral(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Referral> {
        answer_referral(ctx, &id, ReferralStatus::Declined, reason).await
    }

    /// The receiving agency completes an accepted referral.
    async fn complete_referral(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> Result<Referral> {
        answer_referral(ctx, &id, ReferralStatus::Completed, note).await
    }

    /// The referring agency withdraws a pending or accepted referral.
    async fn withdraw_referral(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Referral> {
        answer_referral(ctx, &id, ReferralStatus::Withdrawn, reason).await
    }

    /// Records a consent the survivor gave in person, witnessed by staff of
    /// the owning agency.
    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        input: RecordConsentInput,
    ) -> Result<ConsentGrant> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        own_change(state, caller, purpose, Action::RecordConsent, Some(&gid)).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_grant(state, outcome).await;
        }
        let grantee = state.known_agency(&input.grantee)?;
        let now = exchange_schema::audit::now_millis();
        let grant = validate_grant(state, caller, &gid, grantee, input, now)?;
        let written =
            crate::changes::record_consent_keyed(state, caller, &gid, &grant, now, key.clone())
                .await;
        let written = idempotency::settle(key.as_ref(), &state.db, written).await;
        match refused_in_write(state, caller, written, Some(&gid), None).await? {
            Written::Done(()) => Ok(ConsentGrant::new(state.agency.as_str(), grant, now)),
            Written::Replayed(outcome) => replay_grant(state, outcome).await,
        }
    }

    /// Revokes a consent grant; takes effect on the very next request.
    async fn revoke_consent(
        &self,
        ctx: &Context<'_>,
        grant_id: ID,
        reason: Option<String>,
    ) -> Result<ConsentGrant> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&grant_id)?;
        own_change(state, caller, purpose, Action::RevokeConsent, None).await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_grant(state, outcome).await;
        }
        if let Some(reason) = &reason {
            check_text("reason", reason, SHORT_TEXT, false)?;
        }
        let now = exchange_schema::audit::now_millis();
        let by = format!("{}/{}", caller.principal.agency, caller.principal.user);
        let local = gid.local().to_owned();
        let agency = state.agency.clone();
        let caller_for_event = caller.clone();
        let node = ctx.data_unchecked::<std::sync::Arc<NodeState>>().clone();
        let written_key = key.clone();
        let vault = state.vault.clone();
        let outcome = state
            .audit
            .record::<_, crate::error::NodeError, _>(move |conn| {
                Box::pin(async move {
                    let written = Outcome::ConsentGrant { id: local.clone() };
                    idempotency::write(written_key.as_ref(), conn, &written).await?;
                    let grant = grants::get(conn, &vault, &local)
                        .await
                        .map_err(NodeError::internal)?
                        .ok_or(NodeError::NotFound("consent grant"))?;
                    crate::changes::require_survivor(conn, &grant.survivor_id).await?;
                    if !grants::revoke(conn, &vault, &local, now, &by, reason.as_deref())
                        .await
                        .map_err(NodeError::internal)?
                    {
                        return Err(NodeError::Conflict(
                            "the consent grant is already revoked".into(),
                        ));
                    }
                    let survivor = GlobalId::new(agency.clone(), grant.survivor_id.clone())?;
                    let mut event = change_event(
                        &caller_for_event,
                        AuditKind::ConsentRevoked,
                        Some(survivor),
                        Some(format!("{agency}:{local}")),
                    );
                    event.withheld = crate::disclosure::revoked_categories(&grant.categories);
                    let revoked = grants::get(conn, &vault, &local)
                        .await
                        .map_err(NodeError::internal)?
                        .ok_or(NodeError::NotFound("consent grant"))?;
                    let receipt = crate::receipt::for_grant(
                        &node,
                        &revoked,
                        crate::receipt::ConsentEvent::Withdrawn,
                        now,
                    );
                    crate::store::portal::insert_receipt(conn, &vault, &receipt)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok((revoked, event))
                })
            })
            .await;
        let outcome = idempotency::settle(key.as_ref(), &state.db, outcome).await;
        match refused_in_write(state, caller, outcome, None, Some(gid.to_string())).await? {
            Written::Done(grant) => Ok(ConsentGrant::new(state.agency.as_str(), grant, now)),
            Written::Replayed(outcome) => replay_grant(state, outcome).await,
        }
    }

    /// Issues a consent code for the survivor portal, replacing any earlier
    /// code (its PIN, its lock and its sessions end). Own caseworkers and
    /// supervisors only. The code is shown here once and is stored only as
    /// an argon2 hash: hand it to the survivor, who chooses a PIN at first
    /// sign-in.
    async fn issue_consent_code(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
    ) -> Result<IssuedConsentCode> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        own_change(state, caller, purpose, Action::RecordConsent, Some(&gid)).await?;
        let key = idempotency::field_key(ctx);
        if idempotency::stored(key.as_ref(), &state.db)
            .await?
            .is_some()
        {
            return Err(code_not_replayed(state, caller, &gid).await.into());
        }
        let event = change_event(
            caller,
            AuditKind::ConsentCodeIssued,
            Some(gid.clone()),
            None,
        );
        let issued_by = format!("{}/{}", caller.principal.agency, caller.principal.user);
        let issued =
            crate::portal::credentials::issue_keyed(state, &gid, issued_by, event, key.clone())
                .await;
        let issued = idempotency::settle(key.as_ref(), &state.db, issued).await;
        let (code, issued_at) =
            match refused_in_write(state, caller, issued, Some(&gid), None).await? {
                Written::Done(issued) => issued,
                Written::Replayed(_) => {
                    return Err(code_not_replayed(state, caller, &gid).await.into());
                }
            };
        Ok(IssuedConsentCode {
            survivor_id: gid.to_string().into(),
            code: code.expose().to_owned(),
            issued_at,
        })
    }

    /// Opens a break-glass window for one survivor: an emergency in which the
    /// survivor is in danger and cannot be asked. Needs the EMERGENCY
    /// purpose, a permitted role and a written justification; every use is
    /// marked for mandatory review.
    async fn open_break_glass(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        justification: String,
    ) -> Result<BreakGlassWindow> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&survivor_id)?;
        if purpose != Purpose::Emergency {
            return Err(NodeError::bad_input("break-glass needs the EMERGENCY purpose").into());
        }
        check_text(
            "justification",
            &justification,
            crate::records::LONG_TEXT,
            true,
        )?;
        if justification.trim().chars().count() < exchange_policies::MIN_JUSTIFICATION_CHARS {
            return Err(NodeError::JustificationRequired.into());
        }
        let mut with_justification = caller.clone();
        with_justification.justification = Some(justification.clone());
        let caller = &with_justification;
        let decision = state
            .authorize(
                caller,
                purpose,
                Action::OpenBreakGlass,
                ActionTarget::owned_by(state.agency.clone()),
                Some(&gid),
            )
            .await?;
        let key = idempotency::field_key(ctx);
        if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
            return replay_break_glass(state, outcome);
        }
        let now = exchange_schema::audit::now_millis();
        let opening = BreakGlassOpening {
            id: new_local_id(),
            survivor_id: gid.local().to_owned(),
            agency: caller.principal.agency.clone(),
            user: caller.principal.user.clone(),
            justification,
            opened_at: now,
            expires_at: state.policies.break_glass_expiry(now),
        };
        let mut event = change_event(
            caller,
            AuditKind::Disclosure,
            Some(gid.clone()),
            Some(format!("break-glass:{}", opening.id)),
        );
        event.reason = "BREAK_GLASS_OPENED".into();
        event.break_glass = true;
        event.explanation = Some(decision.explanation);
        event.policy_set = Some(state.policies.set_hash().to_owned());
        let stored = opening.clone();
        let local = gid.local().to_owned();
        let written_key = key.clone();
        let (owner, survivor) = (state.agency.clone(), gid.clone());
        let vault = state.vault.clone();
        let outcome = state
            .audit
            .record::<_, crate::error::NodeError, _>(move |conn| {
                Box::pin(async move {
                    let written = Outcome::BreakGlass {
                        id: stored.id.clone(),
                        survivor_id: stored.survivor_id.clone(),
                        opened_at_ms: crate::store::to_ms(stored.opened_at),
                        expires_at_ms: crate::store::to_ms(stored.expires_at),
                    };
                    idempotency::write(written_key.as_ref(), conn, &written).await?;
                    crate::changes::require_survivor(conn, &local).await?;
                    break_glass::insert(conn, &vault, &stored)
                        .await
                        .map_err(NodeError::internal)?;
                    // The owner's staff learn of every emergency opening.
                    crate::store::notifications::queue(
                        conn,
                        &owner,
                        NotificationKind::BreakGlassOpened,
                        &format!("{owner}:{}", stored.id),
                        Some(&survivor),
                    )
                    .await
                    .map_err(NodeError::internal)?;
                    Ok(((), event))
                })
            })
            .await;
        let outcome = idempotency::settle(key.as_ref(), &state.db, outcome).await;
        if let Written::Replayed(outcome) =
            refused_in_write(state, caller, outcome, Some(&gid), None).await?
        {
            return replay_break_glass(state, outcome);
        }
        Ok(BreakGlassWindow {
            id: ID(format!("{}:{}", state.agency, opening.id)),
            survivor_id: ID(gid.to_string()),
            opened_at: opening.opened_at,
            expires_at: opening.expires_at,
        })
    }
}

/// An open break-glass window.
#[derive(async_graphql::SimpleObject)]
pub struct BreakGlassWindow {
    pub id: ID,
    pub survivor_id: ID,
    pub opened_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The check every change to this node's own records starts with: the
/// caller is on the node's own staff, and the policy permits `action`.
async fn own_change(
    state: &NodeState,
    caller: &Caller,
    purpose: Purpose,
    action: Action,
    survivor: Option<&GlobalId>,
) -> Result<(), NodeError> {
    own_staff(state, caller, survivor).await?;
    state
        .authorize(
            caller,
            purpose,
            action,
            ActionTarget::owned_by(state.agency.clone()),
            survivor,
        )
        .await?;
    Ok(())
}

/// A change refused inside its transaction (the record is gone, or changed
/// meanwhile) is audited as a denial, like a refusal before the write;
/// other errors pass through unchanged.
async fn refused_in_write<T>(
    state: &NodeState,
    caller: &Caller,
    outcome: Result<T, NodeError>,
    survivor: Option<&GlobalId>,
    subject: Option<String>,
) -> Result<T, NodeError> {
    match outcome {
        Err(err @ (NodeError::NotFound(_) | NodeError::Conflict(_) | NodeError::Moved(_))) => {
            Err(state.deny(caller, err, survivor, subject).await)
        }
        other => other,
    }
}

async fn own_staff(
    state: &NodeState,
    caller: &Caller,
    survivor: Option<&GlobalId>,
) -> Result<(), NodeError> {
    if state.is_own_staff(caller) {
        return Ok(());
    }
    let err = NodeError::Forbidden(format!(
        "only staff of {} may change its records",
        state.agency
    ));
    Err(state.deny(caller, err, survivor, None).await)
}

async fn disclosed_one(
    ctx: &Context<'_>,
    state: &NodeState,
    caller: &Caller,
    purpose: Purpose,
    record: SurvivorRecord,
) -> Result<Survivor> {
    let mut out = disclose(
        state,
        caller,
        purpose,
        vec![record],
        &selected_categories(ctx),
    )
    .await?;
    out.pop()
        .map(Survivor::from)
        .ok_or_else(|| NodeError::internal(anyhow::anyhow!("disclosure returned nothing")).into())
}

fn validate_grant(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    grantee: exchange_schema::AgencyId,
    input: RecordConsentInput,
    now: OffsetDateTime,
) -> Result<ConsentGrantRecord, NodeError> {
    if grantee == state.agency {
        return Err(NodeError::bad_input(
            "the owning agency needs no consent to see its own records",
        ));
    }
    if input.method == ConsentMethod::Portal {
        return Err(NodeError::bad_input(
            "PORTAL consents are given by the survivor in the consent portal",
        ));
    }
    if input.categories.is_empty() || input.purposes.is_empty() {
        return Err(NodeError::bad_input(
            "a consent names at least one category and one purpose",
        ));
    }
    if input.purposes.iter().any(|p| {
        matches!(
            p,
            Purpose::Emergency | Purpose::Audit | Purpose::CaseManagement
        )
    }) {
        return Err(NodeError::bad_input(
            "EMERGENCY, AUDIT and CASE_MANAGEMENT are not purposes a survivor grants",
        ));
    }
    let mut categories = input.categories;
    categories.sort();
    categories.dedup();
    let mut purposes = input.purposes;
    purposes.sort();
    purposes.dedup();
    let valid_from = input.valid_from.unwrap_or(now);
    if let Some(until) = input.valid_until
        && until <= valid_from
    {
        return Err(NodeError::bad_input("validUntil must be after validFrom"));
    }
    if let Some(witness) = &input.witness {
        check_text("witness", witness, SHORT_TEXT, false)?;
    }
    Ok(ConsentGrantRecord {
        id: new_local_id(),
        survivor_id: survivor.local().to_owned(),
        grantee,
        categories,
        purposes,
        valid_from,
        valid_until: input.valid_until,
        method: input.method,
        recorded_by: format!("{}/{}", caller.principal.agency, caller.principal.user),
        witness: input.witness,
        created_at: now,
        revoked_at: None,
        revoked_by: None,
        revocation_reason: None,
    })
}

/// Accept, decline, complete (receiving agency) or withdraw (referring
/// agency) a referral held by this node.
async fn answer_referral(
    ctx: &Context<'_>,
    id: &str,
    to: ReferralStatus,
    note: Option<String>,
) -> Result<Referral> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let gid = state.local_id(id)?;
    if let Some(note) = &note {
        check_text("note", note, crate::records::LONG_TEXT, true)?;
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    let record = referrals::get(&mut conn, &state.vault, gid.local())
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let me = &caller.principal.agency;
    let Some(record) = record.filter(|r| &r.from_agency == me || &r.to_agency == me) else {
        return Err(state
            .deny(
                caller,
                NodeError::NotFound("referral"),
                None,
                Some(gid.to_string()),
            )
            .await
            .into());
    };
    let (entitled, action) = match to {
        ReferralStatus::Withdrawn => (&record.from_agency == me, Action::WithdrawReferral),
        _ => (&record.to_agency == me, Action::AnswerReferral),
    };
    if !entitled {
        let err = NodeError::Forbidden(format!(
            "only the {} agency may set a referral to {to}",
            if to == ReferralStatus::Withdrawn {
                "referring"
            } else {
                "receiving"
            }
        ));
        return Err(state
            .deny(caller, err, None, Some(gid.to_string()))
            .await
            .into());
    }
    let target = ActionTarget::referral(
        record.from_agency.clone(),
        record.to_agency.clone(),
        Vec::new(),
    );
    state
        .authorize(caller, purpose, action, target, None)
        .await?;
    let key = idempotency::field_key(ctx);
    if let Some(outcome) = idempotency::stored(key.as_ref(), &state.db).await? {
        return replay_referral(state, outcome).await;
    }
    let from = record.status;
    let allowed = matches!(
        (from, to),
        (
            ReferralStatus::Pending,
            ReferralStatus::Accepted | ReferralStatus::Declined | ReferralStatus::Withdrawn
        ) | (
            ReferralStatus::Accepted,
            ReferralStatus::Completed | ReferralStatus::Withdrawn
        )
    );
    if !allowed {
        let err = NodeError::Conflict(format!("a {from} referral cannot become {to}"));
        return Err(state
            .deny(caller, err, None, Some(gid.to_string()))
            .await
            .into());
    }
    let step = ReferralEvent {
        status: to,
        at: exchange_schema::audit::now_millis(),
        by_agency: me.clone(),
        by_user: caller.principal.user.clone(),
        note,
    };
    let survivor = GlobalId::new(state.agency.clone(), record.survivor_id.clone())?;
    // The other agency of the referral is told.
    let (recipient, kind) = if to == ReferralStatus::Withdrawn {
        (
            record.to_agency.clone(),
            NotificationKind::ReferralWithdrawn,
        )
    } else {
        (
            record.from_agency.clone(),
            NotificationKind::ReferralAnswered,
        )
    };
    let notified = (recipient, kind, gid.to_string(), survivor.clone());
    let mut event = change_event(
        caller,
        AuditKind::ReferralStatusChanged,
        Some(survivor),
        Some(gid.to_string()),
    );
    event.reason = format!("{from}->{to}");
    let local = gid.local().to_owned();
    let written_key = key.clone();
    let survivor_local = record.survivor_id.clone();
    let vault = state.vault.clone();
    let outcome = state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let written = Outcome::Referral { id: local.clone() };
                idempotency::write(written_key.as_ref(), conn, &written).await?;
                crate::changes::require_survivor(conn, &survivor_local).await?;
                if !referrals::transition(conn, &vault, &local, from, &step)
                    .await
                    .map_err(NodeError::internal)?
                {
                    return Err(NodeError::Conflict(
                        "the referral changed meanwhile; reload it".into(),
                    ));
                }
                let (recipient, kind, subject, survivor) = &notified;
                crate::store::notifications::queue(conn, recipient, *kind, subject, Some(survivor))
                    .await
                    .map_err(NodeError::internal)?;
                let record = referrals::get(conn, &vault, &local)
                    .await
                    .map_err(NodeError::internal)?
                    .ok_or(NodeError::NotFound("referral"))?;
                let history = referrals::history(conn, &vault, &local)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((record, history), event))
            })
        })
        .await;
    let outcome = idempotency::settle(key.as_ref(), &state.db, outcome).await;
    match refused_in_write(state, caller, outcome, None, Some(gid.to_string())).await? {
        Written::Done((record, history)) => {
            Ok(Referral::new(state.agency.as_str(), record, history))
        }
        Written::Replayed(outcome) => replay_referral(state, outcome).await,
    }
}

/// A stored outcome of another kind than the field's: the store is not
/// what this code wrote.
fn foreign_outcome(outcome: &Outcome) -> NodeError {
    NodeError::internal(anyhow::anyhow!(
        "the stored idempotency outcome {outcome:?} does not fit this mutation"
    ))
}

/// A retried `registerSurvivor` or `updateSurvivor`: the record as it is
/// now, disclosed (and audited) as for any read by the caller.
async fn replay_survivor(
    ctx: &Context<'_>,
    state: &NodeState,
    caller: &Caller,
    purpose: Purpose,
    outcome: Outcome,
) -> Result<Survivor> {
    let Outcome::Survivor { id } = &outcome else {
        return Err(foreign_outcome(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let record = survivors::get(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    match record {
        Some(record) => disclosed_one(ctx, state, caller, purpose, record).await,
        None => Err(NodeError::NotFound("survivor").into()),
    }
}

/// A retried referral change: the referral as it is now. Its `survivor`
/// field is disclosed afresh, under the consents in force now.
async fn replay_referral(state: &NodeState, outcome: Outcome) -> Result<Referral> {
    let Outcome::Referral { id } = &outcome else {
        return Err(foreign_outcome(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let record = referrals::get(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("referral"))?;
    let history = referrals::history(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?;
    Ok(Referral::new(state.agency.as_str(), record, history))
}

/// A retried `recordConsent` or `revokeConsent`: the grant as it is now.
async fn replay_grant(state: &NodeState, outcome: Outcome) -> Result<ConsentGrant> {
    let Outcome::ConsentGrant { id } = &outcome else {
        return Err(foreign_outcome(&outcome).into());
    };
    let mut conn = crate::store::acquire(&state.db).await?;
    let grant = grants::get(&mut conn, &state.vault, id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("consent grant"))?;
    Ok(ConsentGrant::new(
        state.agency.as_str(),
        grant,
        time::OffsetDateTime::now_utc(),
    ))
}

/// A retried `openBreakGlass`: the window it opened.
fn replay_break_glass(state: &NodeState, outcome: Outcome) -> Result<BreakGlassWindow> {
    let Outcome::BreakGlass {
        id,
        survivor_id,
        opened_at_ms,
        expires_at_ms,
    } = &outcome
    else {
        return Err(foreign_outcome(&outcome).into());
    };
    Ok(BreakGlassWindow {
        id: ID(format!("{}:{id}", state.agency)),
        survivor_id: ID(format!("{}:{survivor_id}", state.agency)),
        opened_at: crate::store::from_ms(*opened_at_ms),
        expires_at: crate::store::from_ms(*expires_at_ms),
    })
}

/// A retried `issueConsentCode`: the code was issued by the first request
/// and is never stored in clear, so it cannot be shown again. Refused (and
/// audited); nothing new is issued.
async fn code_not_replayed(state: &NodeState, caller: &Caller, survivor: &GlobalId) -> NodeError {
    let err = NodeError::Conflict(
        "the consent code was issued by the first request with this Idempotency-Key and is \
         shown only once; issue a new code with a new key"
            .into(),
    );
    state.deny(caller, err, Some(survivor), None).await
}

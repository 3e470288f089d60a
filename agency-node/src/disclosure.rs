//! The one place a survivor's record is disclosed.
//!
//! Every read of a survivor's categories — `survivor(id)`, `survivors`, a
//! referral's `survivor`, `_entities` — calls [`disclose`]. It loads the
//! grants naming the requesting agency (and any break-glass opening of the
//! requesting user), asks the policy engine once per distinct situation
//! (the engine's [`exchange_policies::DecisionScope`] caches within the call),
//! moves only the allowed categories into the [`DisclosedSurvivor`] it
//! returns and drops the rest, and appends one audit entry per record before
//! anything is returned. Nothing is cached across requests, so a revocation
//! takes effect on the very next request.

use std::collections::HashMap;

use exchange_schema::audit::Withheld;
use exchange_schema::{
    AuditEvent, AuditKind, Category, Decision, GlobalId, Purpose, WithheldReason,
};
use time::OffsetDateTime;

use crate::error::NodeResult;
use crate::records::{CaseDetails, Contact, HealthNotes, Identity, LegalStatus};
use crate::state::{Caller, NodeState};
use crate::store::survivors::SurvivorRecord;
use crate::store::{break_glass, grants};

/// A survivor's record as the requester may see it: withheld categories are
/// `None` and listed in `withheld` with their reason.
#[derive(Debug, Clone)]
pub struct DisclosedSurvivor {
    pub id: GlobalId,
    pub registered_at: OffsetDateTime,
    pub identity: Option<Identity>,
    pub contact: Option<Contact>,
    pub case: Option<CaseDetails>,
    pub health: Option<HealthNotes>,
    pub legal: Option<LegalStatus>,
    pub withheld: Vec<(Category, WithheldReason)>,
    /// The categories the decision allowed: what case notes, services and
    /// follow-ups may travel with this answer.
    pub allowed: Vec<Category>,
    /// Whether this disclosure relied on break-glass.
    pub break_glass: bool,
    /// The categories the requester may see that were erased (withheld as
    /// `ERASED`); an erasure is told only to whom the category would have
    /// been disclosed.
    pub erased: Vec<crate::store::survivors::ErasedCategory>,
}

/// Decides and discloses a batch of records for one request, auditing each.
/// `selected` are the categories the operation asked for; they are what the
/// audit entry lists as disclosed.
pub async fn disclose(
    state: &NodeState,
    caller: &Caller,
    purpose: Purpose,
    records: Vec<SurvivorRecord>,
    selected: &[Category],
) -> NodeResult<Vec<DisclosedSurvivor>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let now = OffsetDateTime::now_utc();
    // EMERGENCY is the break-glass purpose: it always needs the written
    // justification (header `x-exchange-justification`), and saying so is
    // clearer than answering with every category withheld.
    if purpose == Purpose::Emergency && !caller.facts(purpose, now).is_justified() {
        let survivor = match records.as_slice() {
            [one] => Some(GlobalId::new(state.agency.clone(), one.id.clone())?),
            _ => None,
        };
        return Err(state
            .deny(
                caller,
                crate::error::NodeError::JustificationRequired,
                survivor.as_ref(),
                None,
            )
            .await);
    }
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let mut conn = crate::store::acquire(&state.db).await?;
    let grants_by_survivor = if caller.principal.agency == state.agency {
        HashMap::new()
    } else {
        grants::for_survivors(&mut conn, &state.vault, &ids, &caller.principal.agency)
            .await
            .map_err(crate::error::NodeError::internal)?
    };
    let mut openings = HashMap::new();
    if purpose == Purpose::Emergency {
        for id in &ids {
            if let Some(opening) = break_glass::latest(
                &mut conn,
                &state.vault,
                id,
                &caller.principal.agency,
                &caller.principal.user,
            )
            .await
            .map_err(crate::error::NodeError::internal)?
            {
                openings.insert(id.clone(), opening.facts());
            }
        }
    }
    drop(conn);

    let mut scope = state.policies.scope(caller.facts(purpose, now));
    let mut disclosed = Vec::with_capacity(records.len());
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        let facts: Vec<exchange_policies::GrantFacts> = grants_by_survivor
            .get(&record.id)
            .map(|gs| gs.iter().map(grants::ConsentGrantRecord::facts).collect())
            .unwrap_or_default();
        let decision = scope.disclose(&state.agency, &facts, openings.get(&record.id));
        let id = GlobalId::new(state.agency.clone(), record.id.clone())?;

        let allowed = |c: Category| decision.is_allowed(c);
        let erased: Vec<_> = record
            .erased
            .iter()
            .filter(|e| allowed(e.category))
            .cloned()
            .collect();
        let mut withheld = decision.withheld();
        withheld.extend(erased.iter().map(|e| (e.category, WithheldReason::Erased)));
        let out = DisclosedSurvivor {
            id: id.clone(),
            registered_at: record.created_at,
            identity: record.identity.filter(|_| allowed(Category::Identity)),
            contact: record.contact.filter(|_| allowed(Category::Contact)),
            case: record.case.filter(|_| allowed(Category::Case)),
            health: record.health.filter(|_| allowed(Category::Health)),
            legal: record.legal.filter(|_| allowed(Category::Legal)),
            withheld,
            allowed: decision.allowed(),
            break_glass: decision.break_glass_used(),
            erased,
        };

        let mut event = caller.event(
            AuditKind::Disclosure,
            if decision.allowed().is_empty() {
                Decision::Deny
            } else {
                Decision::Permit
            },
            decision.reason_code(),
        );
        event.purpose = Some(purpose);
        event.survivor = Some(id);
        event.disclosed = decision
            .allowed()
            .into_iter()
            .filter(|c| selected.contains(c) && !out.erased.iter().any(|e| e.category == *c))
            .collect();
        event.withheld = out
            .withheld
            .iter()
            .map(|(category, reason)| Withheld {
                category: *category,
                reason: *reason,
            })
            .collect();
        event.explanation = Some(decision.explanation());
        event.policy_set = Some(state.policies.set_hash().to_owned());
        event.break_glass = out.break_glass;
        events.push(event);
        disclosed.push(out);
    }
    // A disclosure that relied on break-glass tells the owner's staff: its
    // entry and the notification commit together, before anything is
    // returned (so no emergency read goes untold).
    let (emergency, routine): (Vec<AuditEvent>, Vec<AuditEvent>) =
        events.into_iter().partition(|e| e.break_glass);
    for event in emergency {
        let owner = state.agency.clone();
        let survivor = event.survivor.clone();
        let subject = survivor
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        state
            .audit
            .record::<_, crate::error::NodeError, _>(move |conn| {
                Box::pin(async move {
                    crate::store::notifications::queue(
                        conn,
                        &owner,
                        exchange_schema::NotificationKind::BreakGlassRead,
                        &subject,
                        survivor.as_ref(),
                    )
                    .await
                    .map_err(crate::error::NodeError::internal)?;
                    Ok(((), event))
                })
            })
            .await?;
    }
    state.audit.append_all(routine).await?;
    Ok(disclosed)
}

/// The audit entry's `withheld` list for a revoked grant: its categories,
/// withheld from now on because the grant was revoked.
pub fn revoked_categories(
    categories: &[exchange_schema::Category],
) -> Vec<exchange_schema::audit::Withheld> {
    categories
        .iter()
        .map(|c| exchange_schema::audit::Withheld {
            category: *c,
            reason: exchange_schema::WithheldReason::GrantRevoked,
        })
        .collect()
}

/// The audit event for a record change made by the caller.
pub fn change_event(
    caller: &Caller,
    kind: AuditKind,
    survivor: Option<GlobalId>,
    subject: Option<String>,
) -> AuditEvent {
    let mut event = caller.event(kind, Decision::Permit, kind.as_str());
    event.survivor = survivor;
    event.subject = subject;
    event
}

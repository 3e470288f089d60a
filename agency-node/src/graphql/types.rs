//! The subgraph's output types. `Survivor` is built only from a
//! [`DisclosedSurvivor`], so a withheld category has no data to return.

use async_graphql::{ComplexObject, Context, ID, Result, SimpleObject};
use exchange_schema::audit::AuditEntry as StoredAuditEntry;
use exchange_schema::{
    AgencyKind, AuditKind, Category, ConsentMethod, Decision, Purpose, ReferralStatus, Role,
    ServiceKind, Urgency, WithheldReason,
};
use time::OffsetDateTime;

use crate::disclosure::DisclosedSurvivor;
use crate::records::{CaseDetails, Contact, HealthNotes, Identity, LegalStatus};
use crate::store::grants::ConsentGrantRecord;
use crate::store::referrals::{ReferralEvent, ReferralRecord};

/// A survivor's record, as far as the requester may see it. A category that
/// is not disclosed is `null` and listed under `withheld` with the reason.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Survivor {
    /// Global ID: `<owning agency>:<local id>`.
    pub id: ID,
    /// The agency whose node owns the record.
    pub owner: String,
    pub registered_at: OffsetDateTime,
    pub identity: Option<Identity>,
    pub contact: Option<Contact>,
    pub case: Option<CaseDetails>,
    pub health: Option<HealthNotes>,
    pub legal: Option<LegalStatus>,
    /// Categories not disclosed to this requester, and why.
    pub withheld: Vec<WithheldCategory>,
    /// True when this answer relied on a break-glass opening.
    pub break_glass: bool,
    /// The categories the disclosure decision allowed (case notes,
    /// services and follow-ups travel only under these).
    #[graphql(skip)]
    pub allowed: Vec<Category>,
    /// The local ID at this node.
    #[graphql(skip)]
    pub local_id: String,
}

#[ComplexObject]
impl Survivor {
    /// Case notes in the categories disclosed to the requester (and
    /// `category`, if given), newest first. Corrected notes are left out
    /// unless `includeSuperseded`.
    #[graphql(complexity = "first.unwrap_or(20) as usize * child_complexity")]
    async fn case_notes(
        &self,
        ctx: &Context<'_>,
        category: Option<Category>,
        #[graphql(default = false)] include_superseded: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, super::case::CaseNote>> {
        super::case::case_notes(ctx, self, category, include_superseded, first, after).await
    }

    /// Services planned and delivered; `null` unless `CASE` is disclosed.
    async fn services(&self, ctx: &Context<'_>) -> Result<Option<Vec<super::case::Service>>> {
        super::case::services(ctx, self).await
    }

    /// Follow-ups, soonest due first; `null` unless `CASE` is disclosed.
    async fn follow_ups(&self, ctx: &Context<'_>) -> Result<Option<Vec<super::case::FollowUp>>> {
        super::case::follow_ups(ctx, self).await
    }

    /// The newest version of the care plan: whole where `CASE` is
    /// disclosed; to a partner agency without it, only the actions it is
    /// responsible for; otherwise `null`.
    async fn care_plan(&self, ctx: &Context<'_>) -> Result<Option<super::care_plan::CarePlan>> {
        super::care_plan::care_plan(ctx, self).await
    }

    /// Every version of the care plan, newest first; `null` unless `CASE`
    /// is disclosed.
    async fn care_plan_versions(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::care_plan::CarePlan>>> {
        super::care_plan::care_plan_versions(ctx, self).await
    }

    /// Every referral of the survivor, onward ones included, newest first:
    /// the chain as the owner sees it. `null` for anyone but the owner's
    /// staff.
    async fn referrals(&self, ctx: &Context<'_>) -> Result<Option<Vec<Referral>>> {
        super::case::survivor_referrals(ctx, self).await
    }

    /// The owning agency's caseworkers on the case; `null` for anyone but
    /// the owner's staff.
    async fn assigned_caseworkers(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::case::CaseworkerAssignment>>> {
        super::case::assigned_caseworkers(ctx, self).await
    }
}

/// A category withheld from the requester, and why.
#[derive(SimpleObject)]
pub struct WithheldCategory {
    pub category: Category,
    pub reason: WithheldReason,
    /// When the category was erased (reason `ERASED` only).
    pub erased_at: Option<OffsetDateTime>,
    /// The retention rule it was erased under, or `REQUEST` (reason
    /// `ERASED` only).
    pub erasure_rule: Option<String>,
}

impl From<DisclosedSurvivor> for Survivor {
    fn from(d: DisclosedSurvivor) -> Self {
        Self {
            owner: d.id.agency().to_string(),
            id: ID(d.id.to_string()),
            registered_at: d.registered_at,
            identity: d.identity,
            contact: d.contact,
            case: d.case,
            health: d.health,
            legal: d.legal,
            withheld: d
                .withheld
                .into_iter()
                .map(|(category, reason)| {
                    let erased = d.erased.iter().find(|e| e.category == category);
                    WithheldCategory {
                        category,
                        reason,
                        erased_at: erased.map(|e| e.at),
                        erasure_rule: erased.and_then(|e| e.rule.clone()),
                    }
                })
                .collect(),
            break_glass: d.break_glass,
            allowed: d.allowed,
            local_id: d.id.local().to_owned(),
        }
    }
}

/// A referral of a survivor from one agency to another, visible only to
/// those two agencies and to the owner of the survivor's record (which
/// keeps every referral of its survivors, onward ones included).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Referral {
    /// Global ID: `<owning agency>:<local id>` (the node that keeps it).
    pub id: ID,
    /// Global ID of the survivor referred.
    pub survivor_id: ID,
    pub from_agency: String,
    pub to_agency: String,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub status: ReferralStatus,
    pub notes: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Every status the referral went through, oldest first.
    pub history: Vec<ReferralStatusChange>,
    /// For an onward referral: the accepted referral it continues.
    pub parent_id: Option<ID>,
}

#[ComplexObject]
impl Referral {
    /// The survivor's record, through the same disclosure decision as
    /// `survivor(id)`.
    async fn survivor(&self, ctx: &Context<'_>) -> Result<Option<Survivor>> {
        super::query::survivor_by_id(ctx, &self.survivor_id).await
    }
}

impl Referral {
    pub fn new(agency: &str, record: ReferralRecord, history: Vec<ReferralEvent>) -> Self {
        Self {
            id: ID(format!("{agency}:{}", record.id)),
            survivor_id: ID(format!("{agency}:{}", record.survivor_id)),
            from_agency: record.from_agency.to_string(),
            to_agency: record.to_agency.to_string(),
            service: record.service,
            urgency: record.urgency,
            status: record.status,
            notes: record.notes,
            created_at: record.created_at,
            updated_at: record.updated_at,
            history: history
                .into_iter()
                .map(ReferralStatusChange::from)
                .collect(),
            parent_id: record.parent_id.map(|p| ID(format!("{agency}:{p}"))),
        }
    }
}

/// One step in a referral's history.
#[derive(SimpleObject)]
pub struct ReferralStatusChange {
    pub status: ReferralStatus,
    pub at: OffsetDateTime,
    pub by_agency: String,
    pub by_user: String,
    pub note: Option<String>,
}

impl From<ReferralEvent> for ReferralStatusChange {
    fn from(e: ReferralEvent) -> Self {
        Self {
            status: e.status,
            at: e.at,
            by_agency: e.by_agency.to_string(),
            by_user: e.by_user,
            note: e.note,
        }
    }
}

/// A survivor's consent for one agency to see named categories for named
/// purposes, for a time.
#[derive(SimpleObject)]
pub struct ConsentGrant {
    /// Global ID: `<owning agency>:<local id>`.
    pub id: ID,
    pub survivor_id: ID,
    /// The agency allowed to see the categories.
    pub grantee: String,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
    pub method: ConsentMethod,
    pub recorded_by: String,
    pub witness: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<String>,
    pub revocation_reason: Option<String>,
    /// Whether the grant is in force now.
    pub active: bool,
}

impl ConsentGrant {
    pub fn new(agency: &str, g: ConsentGrantRecord, now: OffsetDateTime) -> Self {
        Self {
            active: g.is_active(now),
            id: ID(format!("{agency}:{}", g.id)),
            survivor_id: ID(format!("{agency}:{}", g.survivor_id)),
            grantee: g.grantee.to_string(),
            categories: g.categories,
            purposes: g.purposes,
            valid_from: g.valid_from,
            valid_until: g.valid_until,
            method: g.method,
            recorded_by: g.recorded_by,
            witness: g.witness,
            created_at: g.created_at,
            revoked_at: g.revoked_at,
            revoked_by: g.revoked_by,
            revocation_reason: g.revocation_reason,
        }
    }
}

/// One entry of a node's audit log: metadata only, never record contents.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    pub actor_agency: Option<String>,
    pub actor_user: Option<String>,
    pub actor_roles: Vec<Role>,
    pub survivor_id: Option<ID>,
    pub subject: Option<String>,
    pub disclosed: Vec<Category>,
    pub withheld: Vec<WithheldCategory>,
    pub purpose: Option<Purpose>,
    pub justification: Option<String>,
    pub decision: Decision,
    pub reason: String,
    pub explanation: Option<String>,
    pub policy_set: Option<String>,
    pub break_glass: bool,
    pub trace_id: Option<String>,
    /// Hex SHA-256 chain hash of this entry.
    pub hash: String,
    pub prev_hash: String,
}

impl From<StoredAuditEntry> for AuditEntry {
    fn from(e: StoredAuditEntry) -> Self {
        let ev = e.event;
        Self {
            seq: e.seq,
            at: ev.at,
            kind: ev.kind,
            actor_agency: ev.actor_agency.map(|a| a.to_string()),
            actor_user: ev.actor_user,
            actor_roles: ev.actor_roles,
            survivor_id: ev.survivor.map(|s| ID(s.to_string())),
            subject: ev.subject,
            disclosed: ev.disclosed,
            withheld: ev
                .withheld
                .into_iter()
                .map(|w| WithheldCategory {
                    category: w.category,
                    reason: w.reason,
                    erased_at: None,
                    erasure_rule: None,
                })
                .collect(),
            purpose: ev.purpose,
            justification: ev.justification,
            decision: ev.decision,
            reason: ev.reason,
            explanation: ev.explanation,
            policy_set: ev.policy_set,
            break_glass: ev.break_glass,
            trace_id: ev.trace_id,
            hash: e.hash,
            prev_hash: e.prev_hash,
        }
    }
}

/// The agency this node belongs to.
#[derive(SimpleObject)]
pub struct NodeAgency {
    pub id: String,
    pub name: String,
    pub kind: AgencyKind,
}

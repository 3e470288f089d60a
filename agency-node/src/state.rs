//! What every request handler shares: the node's identity, database, audit
//! log, policy engine and trust list ([`NodeState`]); and who is asking, for
//! what purpose ([`Caller`]).

use std::sync::Arc;

use exchange_policies::{Action, ActionDecision, ActionTarget, PolicyEngine, RequestFacts};
use exchange_schema::{AgencyId, AgencyKind, AuditEvent, AuditKind, Decision, GlobalId, Purpose};
use exchange_trust::{Federation, Principal, TokenVerifier};
use time::OffsetDateTime;

use crate::error::{NodeError, NodeResult};
use crate::store::Db;
use exchange_audit::AuditLog;

/// The node's shared state. One per running node.
pub struct NodeState {
    pub agency: AgencyId,
    pub agency_kind: AgencyKind,
    pub db: Db,
    pub audit: AuditLog,
    pub policies: Arc<PolicyEngine>,
    pub federation: Arc<Federation>,
    pub verifier: Arc<TokenVerifier>,
    /// The node's Ed25519 key: it signs audit checkpoints and consent
    /// receipts.
    pub node_key: Arc<aws_lc_rs::signature::Ed25519KeyPair>,
    /// The survivors' data keys: every piece of a survivor's record is
    /// sealed and opened with them.
    pub vault: crate::vault::Vault,
    /// The retention rules in force ([`crate::retention`]).
    pub retention: crate::retention::RetentionRules,
    /// How long the agency takes at most to answer a survivor's request
    /// to correct or erase their record ([`crate::rights`]).
    pub answer_requests_within: time::Duration,
    /// The node's Prometheus metrics (served on `[metrics] listen`).
    pub metrics: Arc<exchange_service::metrics::Metrics>,
    /// The identity providers' keys published at JWKS URLs, fetched into
    /// `verifier`; tokens are verified through it.
    pub jwks: Arc<exchange_service::jwks::JwksRefresher>,
}

/// An authenticated request: who, for what purpose, in which trace.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The declared purpose; `None` when the request declared none.
    pub purpose: Option<Purpose>,
    pub justification: Option<String>,
    pub trace_id: String,
}

impl Caller {
    /// The declared purpose, or the error every disclosing field returns.
    pub fn purpose(&self) -> NodeResult<Purpose> {
        self.purpose
            .ok_or_else(|| NodeError::PurposeRequired("none was declared".into()))
    }

    /// An audit event pre-filled with who is asking, why, and the trace.
    pub fn event(
        &self,
        kind: AuditKind,
        decision: Decision,
        reason: impl Into<String>,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(kind, decision, reason);
        event.actor_agency = Some(self.principal.agency.clone());
        event.actor_user = Some(self.principal.user.clone());
        event.actor_roles = self.principal.roles.clone();
        event.purpose = self.purpose;
        event.justification = self.justification.clone();
        event.trace_id = Some(self.trace_id.clone());
        event
    }

    /// The facts the policy engine decides on.
    pub fn facts(&self, purpose: Purpose, now: OffsetDateTime) -> RequestFacts {
        RequestFacts {
            agency: self.principal.agency.clone(),
            agency_kind: self.principal.agency_kind,
            roles: self.principal.roles.clone(),
            user: self.principal.user.clone(),
            purpose,
            justification: self.justification.clone(),
            now,
        }
    }
}

impl NodeState {
    /// Whether the caller is staff of this node's agency.
    pub fn is_own_staff(&self, caller: &Caller) -> bool {
        caller.principal.agency == self.agency
    }

    /// Asks the policy engine whether the caller may take `action`; a refusal
    /// is audited as a denial and returned as FORBIDDEN.
    pub async fn authorize(
        &self,
        caller: &Caller,
        purpose: Purpose,
        action: Action,
        target: ActionTarget,
        survivor: Option<&GlobalId>,
    ) -> NodeResult<ActionDecision> {
        let now = OffsetDateTime::now_utc();
        let decision = self
            .policies
            .scope(caller.facts(purpose, now))
            .authorize(action, target);
        if decision.permitted {
            return Ok(decision);
        }
        let mut event = caller.event(AuditKind::Denial, Decision::Deny, decision.reason);
        event.purpose = Some(purpose);
        event.survivor = survivor.cloned();
        event.subject = Some(format!("{action:?}"));
        event.explanation = Some(decision.explanation.clone());
        event.policy_set = Some(self.policies.set_hash().to_owned());
        self.audit.append(event).await?;
        Err(NodeError::Forbidden(format!(
            "not permitted by policy ({})",
            decision.reason
        )))
    }

    /// Audits a refusal that is not a policy decision (not found, consent
    /// missing, wrong agency) and returns the error.
    pub async fn deny(
        &self,
        caller: &Caller,
        error: NodeError,
        survivor: Option<&GlobalId>,
        subject: Option<String>,
    ) -> NodeError {
        let mut event = caller.event(AuditKind::Denial, Decision::Deny, error.code().as_str());
        event.survivor = survivor.cloned();
        event.subject = subject;
        event.policy_set = Some(self.policies.set_hash().to_owned());
        if let Err(audit_error) = self.audit.append(event).await {
            return audit_error.into();
        }
        error
    }

    /// Parses a global ID that must name a record of this node.
    pub fn local_id(&self, raw: &str) -> NodeResult<GlobalId> {
        let id = GlobalId::parse(raw)?;
        if id.agency() != &self.agency {
            return Err(NodeError::bad_input(format!(
                "this node holds records of {} only; route the request to the record's owner",
                self.agency
            )));
        }
        Ok(id)
    }

    /// Checks that an agency is a member of the federation.
    pub fn known_agency(&self, raw: &str) -> NodeResult<AgencyId> {
        let id = AgencyId::parse(raw)?;
        if self.federation.agency(&id).is_none() {
            return Err(NodeError::bad_input(format!("unknown agency {id}")));
        }
        Ok(id)
    }
}

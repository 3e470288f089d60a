//! Non-disclosure actions (consent, registration, referrals, the audit log,
//! break-glass) and their decisions.

use std::fmt::Write as _;

use exchange_schema::{AgencyId, Purpose};

use crate::engine::CedarOutcome;
use crate::grant::{GrantFacts, GrantState};

/// Something a user does other than reading a survivor's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    RecordConsent,
    RevokeConsent,
    RegisterSurvivor,
    UpdateSurvivor,
    MakeReferral,
    AnswerReferral,
    WithdrawReferral,
    ReadAuditLog,
    /// Count a node's records for the federation's statistics (counts
    /// only, never a record).
    CountRecords,
    OpenBreakGlass,
    IssueConsentCode,
    /// Append a case note (never edit one).
    WriteCaseNote,
    /// Record or update a service, or schedule or close a follow-up.
    RecordService,
    /// Replace the caseworkers assigned to a case.
    AssignCaseworkers,
    /// Propose a new care plan version, or record the survivor's
    /// witnessed agreement to one.
    ChangeCarePlan,
    /// Move an action of the care plan on.
    UpdatePlanAction,
    /// Refer a survivor onward from an agency that accepted a referral of
    /// them (the referral is kept at the owner node).
    ReferOnward,
    /// Move a survivor's case to another agency's node (checked at the
    /// sending node, and again at the receiving node with the sending
    /// agency as the case's owner).
    TransferCase,
    /// Close a survivor's case, or open it again.
    CloseCase,
}

pub(crate) enum ResourceKind {
    SurvivorRecord,
    Referral,
    AuditLog,
    Statistics,
    Case,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Self::RecordConsent,
        Self::RevokeConsent,
        Self::RegisterSurvivor,
        Self::UpdateSurvivor,
        Self::MakeReferral,
        Self::AnswerReferral,
        Self::WithdrawReferral,
        Self::ReadAuditLog,
        Self::CountRecords,
        Self::OpenBreakGlass,
        Self::IssueConsentCode,
        Self::WriteCaseNote,
        Self::RecordService,
        Self::AssignCaseworkers,
        Self::ChangeCarePlan,
        Self::UpdatePlanAction,
        Self::ReferOnward,
        Self::TransferCase,
        Self::CloseCase,
    ];

    /// The action's name in policy files (`Action::"recordConsent"`).
    pub const fn cedar_name(self) -> &'static str {
        match self {
            Self::RecordConsent => "recordConsent",
            Self::RevokeConsent => "revokeConsent",
            Self::RegisterSurvivor => "registerSurvivor",
            Self::UpdateSurvivor => "updateSurvivor",
            Self::MakeReferral => "makeReferral",
            Self::AnswerReferral => "answerReferral",
            Self::WithdrawReferral => "withdrawReferral",
            Self::ReadAuditLog => "readAuditLog",
            Self::CountRecords => "countRecords",
            Self::OpenBreakGlass => "openBreakGlass",
            Self::IssueConsentCode => "issueConsentCode",
            Self::WriteCaseNote => "writeCaseNote",
            Self::RecordService => "recordService",
            Self::AssignCaseworkers => "assignCaseworkers",
            Self::ChangeCarePlan => "changeCarePlan",
            Self::UpdatePlanAction => "updatePlanAction",
            Self::ReferOnward => "referOnward",
            Self::TransferCase => "transferCase",
            Self::CloseCase => "closeCase",
        }
    }

    /// Parses a policy-file name such as `makeReferral`.
    pub fn from_cedar_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.cedar_name() == name)
    }

    pub(crate) fn resource_kind(self) -> ResourceKind {
        match self {
            Self::MakeReferral
            | Self::ReferOnward
            | Self::AnswerReferral
            | Self::WithdrawReferral => ResourceKind::Referral,
            Self::ReadAuditLog => ResourceKind::AuditLog,
            Self::CountRecords => ResourceKind::Statistics,
            Self::WriteCaseNote
            | Self::RecordService
            | Self::AssignCaseworkers
            | Self::ChangeCarePlan
            | Self::UpdatePlanAction
            | Self::TransferCase
            | Self::CloseCase => ResourceKind::Case,
            Self::RecordConsent
            | Self::RevokeConsent
            | Self::RegisterSurvivor
            | Self::UpdateSurvivor
            | Self::OpenBreakGlass
            | Self::IssueConsentCode => ResourceKind::SurvivorRecord,
        }
    }
}

/// What an action is done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTarget {
    /// The agency whose node owns the record, the referral (the referring
    /// agency) or the audit log. For `RegisterSurvivor`: the node's agency.
    pub owner: AgencyId,
    /// For referrals: the receiving agency. For a case: the partner agency
    /// (one holding an accepted referral of the survivor).
    pub receiver: Option<AgencyId>,
    /// For `MakeReferral` and `ReferOnward`: the survivor's consent grants; the engine looks
    /// for an active one naming the receiver and the REFERRAL purpose.
    pub grants: Vec<GrantFacts>,
}

impl ActionTarget {
    /// A survivor record or an audit log owned by `owner`.
    pub fn owned_by(owner: AgencyId) -> Self {
        Self {
            owner,
            receiver: None,
            grants: Vec::new(),
        }
    }

    /// A survivor's case at `owner`'s node, acted on by an agency that holds
    /// an accepted referral of the survivor (`partner`), if any. The engine
    /// reads `receiver` as the partner: `partnerOfRequester` is true when it
    /// is the requester's agency.
    pub fn case(owner: AgencyId, partner: Option<AgencyId>) -> Self {
        Self {
            owner,
            receiver: partner,
            grants: Vec::new(),
        }
    }

    /// A referral from `owner` (the referring agency) to `receiver`, with
    /// the survivor's grants (needed for `MakeReferral`).
    pub fn referral(owner: AgencyId, receiver: AgencyId, grants: Vec<GrantFacts>) -> Self {
        Self {
            owner,
            receiver: Some(receiver),
            grants,
        }
    }
}

/// The decision on an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDecision {
    pub permitted: bool,
    /// The policies that decided (the permits that allowed, the forbids that
    /// denied; empty for a default deny).
    pub policy_ids: Vec<String>,
    /// `PERMITTED`, `FORBIDDEN_BY_POLICY`, `NOT_PERMITTED`,
    /// `CONSENT_REQUIRED` (makeReferral without an active REFERRAL grant to
    /// the receiver), `JUSTIFICATION_REQUIRED`, `BREAK_GLASS_DISABLED` or
    /// `POLICY_ERROR`.
    pub reason: &'static str,
    /// For `MakeReferral`: the REFERRAL grant that covered it, or the one
    /// that explains why not.
    pub grant_id: Option<String>,
    /// Everything, for the audit entry.
    pub explanation: String,
    /// The hash of the policy set that decided.
    pub policy_set: String,
}

/// The facts of one action decision, gathered for its explanation.
pub(crate) struct ActionFacts<'f> {
    pub action: Action,
    pub owner: &'f AgencyId,
    pub receiver: Option<&'f AgencyId>,
    pub owned: bool,
    pub received: bool,
    pub consent: Option<GrantState>,
    pub grant_id: Option<&'f str>,
    pub justified: bool,
    pub purpose: Purpose,
    pub policy_set: &'f str,
}

impl ActionFacts<'_> {
    pub fn decide(&self, cedar: Option<&CedarOutcome>, reason: &'static str) -> ActionDecision {
        let permitted = cedar.is_some_and(|c| c.allowed);
        let policy_ids = cedar.map(|c| c.policy_ids.clone()).unwrap_or_default();
        let mut explanation = format!(
            "{} {} ({reason}) for purpose {}; target owned by {}{}",
            self.action.cedar_name(),
            if permitted { "permitted" } else { "denied" },
            self.purpose,
            self.owner,
            if self.owned {
                " (the requester's agency)"
            } else {
                ""
            },
        );
        if let Some(receiver) = self.receiver {
            let _ = write!(
                explanation,
                "; {} {receiver}{}",
                if matches!(self.action.resource_kind(), ResourceKind::Case) {
                    "partner"
                } else {
                    "receiver"
                },
                if self.received {
                    " (the requester's agency)"
                } else {
                    ""
                }
            );
        }
        if let Some(state) = self.consent {
            let _ = write!(explanation, "; referral consent {}", state.as_str());
            if let Some(grant) = self.grant_id {
                let _ = write!(explanation, " (grant {grant})");
            }
        }
        if self.action == Action::OpenBreakGlass {
            let _ = write!(
                explanation,
                "; justification {}",
                if self.justified {
                    "given"
                } else {
                    "missing or too short"
                }
            );
        }
        match cedar {
            None => explanation.push_str("; break-glass is switched off in this deployment"),
            Some(c) if c.policy_ids.is_empty() => {
                explanation.push_str("; no policy permits it (default deny)");
            }
            Some(c) => {
                let _ = write!(explanation, "; policies [{}]", c.policy_ids.join(", "));
            }
        }
        if let Some(c) = cedar.filter(|c| !c.errors.is_empty()) {
            let _ = write!(explanation, "; evaluation errors: {}", c.errors.join("; "));
        }
        let _ = write!(explanation, ". Policy set {}", self.policy_set);
        ActionDecision {
            permitted,
            policy_ids,
            reason,
            grant_id: self.grant_id.map(str::to_owned),
            explanation,
            policy_set: self.policy_set.to_owned(),
        }
    }
}

//! The disclosure decision for one survivor record: for each category,
//! disclosed (and on what basis) or withheld (and why), with the policies
//! and grant that decided it and a full explanation for the audit log.

use std::fmt::Write as _;
use std::sync::Arc;

use exchange_schema::{Category, Purpose, WithheldReason};

use crate::engine::CedarOutcome;
use crate::grant::{BreakGlassState, GrantState, category_index};

/// Why a category was disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisclosureBasis {
    /// The requester's agency owns the record.
    Owner,
    /// The survivor's active grant with this ID covers the request.
    Grant { grant_id: String },
    /// The break-glass opening with this ID; marked for mandatory review.
    BreakGlass { id: String },
    /// A policy permits it without ownership, grant or break-glass (the
    /// baseline has no such rule; a local policy could add one).
    Policy,
}

impl DisclosureBasis {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::Grant { .. } => "GRANT",
            Self::BreakGlass { .. } => "BREAK_GLASS",
            Self::Policy => "POLICY",
        }
    }
}

/// The outcome for one category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryOutcome {
    Allowed(DisclosureBasis),
    Withheld(WithheldReason),
}

/// The decision for one category of one record.
#[derive(Debug, Clone)]
pub struct CategoryDecision {
    pub category: Category,
    pub outcome: CategoryOutcome,
    /// The consent state for this agency, category and purpose.
    pub grant_state: GrantState,
    /// When not disclosed on a grant: the grant that explains the state.
    pub(crate) related_grant: Option<String>,
    pub(crate) cedar: Arc<CedarOutcome>,
}

impl CategoryDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, CategoryOutcome::Allowed(_))
    }

    /// `OWNER`, `GRANT`, `BREAK_GLASS`, `POLICY`, or the withheld reason.
    pub fn reason_code(&self) -> &'static str {
        match &self.outcome {
            CategoryOutcome::Allowed(basis) => basis.as_str(),
            CategoryOutcome::Withheld(reason) => reason.as_str(),
        }
    }

    /// The grant that covered the disclosure, or the one that explains why
    /// it did not (revoked, expired, ...).
    pub fn grant_id(&self) -> Option<&str> {
        match &self.outcome {
            CategoryOutcome::Allowed(DisclosureBasis::Grant { grant_id }) => Some(grant_id),
            _ => self.related_grant.as_deref(),
        }
    }

    /// The IDs of the policies that decided (empty: nothing permitted, the
    /// default deny).
    pub fn policy_ids(&self) -> &[String] {
        &self.cedar.policy_ids
    }

    /// Evaluation errors, if any (they deny).
    pub fn errors(&self) -> &[String] {
        &self.cedar.errors
    }

    /// One line in plain words.
    pub fn explanation(&self) -> String {
        let mut out = String::new();
        let policies = if self.cedar.policy_ids.is_empty() {
            "no policy permits it (default deny)".to_owned()
        } else {
            format!("policies [{}]", self.cedar.policy_ids.join(", "))
        };
        match &self.outcome {
            CategoryOutcome::Allowed(basis) => {
                let _ = write!(out, "{}: disclosed", self.category);
                match basis {
                    DisclosureBasis::Owner => out.push_str(" to the owning agency"),
                    DisclosureBasis::Grant { grant_id } => {
                        let _ = write!(out, " under active grant {grant_id}");
                    }
                    DisclosureBasis::BreakGlass { id } => {
                        let _ = write!(out, " under break-glass {id} (for review)");
                    }
                    DisclosureBasis::Policy => out.push_str(" by policy alone"),
                }
                let _ = write!(out, "; {policies}");
            }
            CategoryOutcome::Withheld(reason) => {
                let _ = write!(out, "{}: withheld {reason}; {policies}", self.category);
            }
        }
        let _ = write!(out, "; consent {}", self.grant_state.as_str());
        if let Some(grant) = &self.related_grant {
            let _ = write!(out, " (grant {grant})");
        }
        if !self.cedar.errors.is_empty() {
            let _ = write!(out, "; evaluation errors: {}", self.cedar.errors.join("; "));
        }
        out
    }
}

/// The decision for all five categories of one survivor record.
#[derive(Debug, Clone)]
pub struct RecordDisclosure {
    pub(crate) decisions: [CategoryDecision; 5],
    pub(crate) owned: bool,
    pub(crate) purpose: Purpose,
    pub(crate) break_glass: Option<(String, BreakGlassState)>,
    pub(crate) policy_set: Arc<str>,
}

impl RecordDisclosure {
    /// The decision for one category.
    pub fn decision(&self, category: Category) -> &CategoryDecision {
        &self.decisions[category_index(category)]
    }

    /// All five decisions, in [`Category::ALL`] order.
    pub fn decisions(&self) -> &[CategoryDecision] {
        &self.decisions
    }

    pub fn is_allowed(&self, category: Category) -> bool {
        self.decision(category).is_allowed()
    }

    /// The disclosed categories.
    pub fn allowed(&self) -> Vec<Category> {
        self.decisions
            .iter()
            .filter(|d| d.is_allowed())
            .map(|d| d.category)
            .collect()
    }

    /// The withheld categories and why, as told to the requester.
    pub fn withheld(&self) -> Vec<(Category, WithheldReason)> {
        self.decisions
            .iter()
            .filter_map(|d| match d.outcome {
                CategoryOutcome::Withheld(reason) => Some((d.category, reason)),
                CategoryOutcome::Allowed(_) => None,
            })
            .collect()
    }

    /// Whether any category was disclosed through break-glass.
    pub fn break_glass_used(&self) -> bool {
        self.decisions.iter().any(|d| {
            matches!(
                d.outcome,
                CategoryOutcome::Allowed(DisclosureBasis::BreakGlass { .. })
            )
        })
    }

    /// The IDs of every policy that decided any category, sorted, once each.
    pub fn policy_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .decisions
            .iter()
            .flat_map(|d| d.cedar.policy_ids.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The IDs of the grants that covered a disclosure, sorted, once each.
    pub fn grant_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .decisions
            .iter()
            .filter_map(|d| match &d.outcome {
                CategoryOutcome::Allowed(DisclosureBasis::Grant { grant_id }) => {
                    Some(grant_id.as_str())
                }
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// `NONE` (nothing disclosed), `PARTIAL` (some withheld), else, all
    /// disclosed: `BREAK_GLASS` if any through break-glass, `GRANT` if any
    /// under a grant, `OWNER` if all as owner, `POLICY` otherwise.
    pub fn reason_code(&self) -> &'static str {
        let allowed = self.decisions.iter().filter(|d| d.is_allowed()).count();
        if allowed == 0 {
            return "NONE";
        }
        if allowed < self.decisions.len() {
            return "PARTIAL";
        }
        let any = |f: fn(&DisclosureBasis) -> bool| {
            self.decisions.iter().any(|d| match &d.outcome {
                CategoryOutcome::Allowed(basis) => f(basis),
                CategoryOutcome::Withheld(_) => false,
            })
        };
        if any(|b| matches!(b, DisclosureBasis::BreakGlass { .. })) {
            "BREAK_GLASS"
        } else if any(|b| matches!(b, DisclosureBasis::Grant { .. })) {
            "GRANT"
        } else if any(|b| matches!(b, DisclosureBasis::Policy)) {
            "POLICY"
        } else {
            "OWNER"
        }
    }

    /// The hash of the policy set that decided.
    pub fn policy_set(&self) -> &str {
        &self.policy_set
    }

    /// Everything, for the audit entry: purpose, ownership, break-glass, and
    /// per category the outcome, policies and grant.
    pub fn explanation(&self) -> String {
        let mut out = format!(
            "{} for purpose {}; {}",
            self.reason_code(),
            self.purpose,
            if self.owned {
                "record owned by the requester's agency"
            } else {
                "record owned by another agency"
            }
        );
        if let Some((id, state)) = &self.break_glass {
            let _ = write!(out, "; break-glass {id} {}", state.as_str());
        }
        for decision in &self.decisions {
            out.push_str(". ");
            out.push_str(&decision.explanation());
        }
        let _ = write!(out, ". Policy set {}", self.policy_set);
        out
    }
}

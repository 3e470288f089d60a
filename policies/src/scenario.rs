//! A described situation ("a LEGAL_AID caseworker asks for HEALTH for
//! LEGAL_ASSISTANCE under an active grant") turned into engine inputs and a
//! plain-language answer. Used by the `exchange-policy explain` command and by
//! the decision-table tests, so both exercise the same engine path as a node.

use std::fmt::Write as _;
use std::str::FromStr;

use exchange_schema::{AgencyId, AgencyKind, Category, Purpose, Role, VocabularyError};
use time::{Duration, OffsetDateTime, macros::datetime};

use crate::disclosure::{CategoryOutcome, DisclosureBasis, RecordDisclosure};
use crate::engine::{PolicyEngine, RequestFacts};
use crate::grant::{BreakGlassFacts, GrantFacts};

/// The fixed time every scenario happens at.
pub const SCENARIO_NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

/// The requesting agency of a scenario.
pub const REQUESTING_AGENCY: &str = "requesting-agency";
/// The owner of the record when the requester is not the owner.
pub const OWNING_AGENCY: &str = "owning-agency";
/// An agency that is neither requester nor owner.
pub const THIRD_AGENCY: &str = "third-agency";

/// Why a scenario description could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Vocabulary(#[from] VocabularyError),
    #[error("grant description part {0:?} is not key=value")]
    GrantPart(String),
    #[error("unknown grant key {0:?} (expected categories, purposes, state, agency)")]
    GrantKey(String),
    #[error("unknown grant state {0:?} (expected active, expired, not_yet_valid, revoked)")]
    GrantState(String),
    #[error("unknown grant agency {0:?} (expected self or other)")]
    GrantAgency(String),
    #[error("a grant needs at least one category and one purpose")]
    GrantEmpty,
    #[error("unknown break-glass state {0:?} (expected none, active, expired)")]
    BreakGlass(String),
}

/// Where a described grant stands at [`SCENARIO_NOW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantTiming {
    Active,
    Expired,
    NotYetValid,
    Revoked,
}

/// A described grant: `categories=HEALTH,LEGAL;purposes=LEGAL_ASSISTANCE;state=active`
/// with optional `agency=other` (a grant to a third agency, not the requester).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    pub timing: GrantTiming,
    /// `true`: the grant names the requester's agency.
    pub to_requester: bool,
}

fn parse_list<T: FromStr<Err = VocabularyError>>(raw: &str) -> Result<Vec<T>, ScenarioError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<T>().map_err(ScenarioError::from))
        .collect()
}

impl FromStr for GrantSpec {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = GrantSpec {
            categories: Vec::new(),
            purposes: Vec::new(),
            timing: GrantTiming::Active,
            to_requester: true,
        };
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ScenarioError::GrantPart(part.to_owned()))?;
            match key.trim() {
                "categories" => spec.categories = parse_list(value)?,
                "purposes" => spec.purposes = parse_list(value)?,
                "state" => {
                    spec.timing = match value.trim() {
                        "active" => GrantTiming::Active,
                        "expired" => GrantTiming::Expired,
                        "not_yet_valid" => GrantTiming::NotYetValid,
                        "revoked" => GrantTiming::Revoked,
                        other => return Err(ScenarioError::GrantState(other.to_owned())),
                    }
                }
                "agency" => {
                    spec.to_requester = match value.trim() {
                        "self" => true,
                        "other" => false,
                        other => return Err(ScenarioError::GrantAgency(other.to_owned())),
                    }
                }
                other => return Err(ScenarioError::GrantKey(other.to_owned())),
            }
        }
        if spec.categories.is_empty() || spec.purposes.is_empty() {
            return Err(ScenarioError::GrantEmpty);
        }
        Ok(spec)
    }
}

impl GrantSpec {
    /// The grant as a node would store it, at [`SCENARIO_NOW`].
    pub fn to_facts(&self, id: String) -> GrantFacts {
        let day = Duration::days(1);
        let (valid_from, valid_until, revoked_at) = match self.timing {
            GrantTiming::Active => (SCENARIO_NOW - day, Some(SCENARIO_NOW + day), None),
            GrantTiming::Expired => (SCENARIO_NOW - day * 30, Some(SCENARIO_NOW - day), None),
            GrantTiming::NotYetValid => (SCENARIO_NOW + day, None, None),
            GrantTiming::Revoked => (SCENARIO_NOW - day, None, Some(SCENARIO_NOW - day / 2)),
        };
        GrantFacts {
            id,
            grantee: agency(if self.to_requester {
                REQUESTING_AGENCY
            } else {
                THIRD_AGENCY
            }),
            categories: self.categories.clone(),
            purposes: self.purposes.clone(),
            valid_from,
            valid_until,
            revoked_at,
        }
    }
}

/// A described break-glass opening for the requester on this survivor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakGlassSpec {
    #[default]
    None,
    /// Opened an hour ago.
    Active,
    /// Opened six hours ago, closed two hours ago.
    Expired,
}

impl FromStr for BreakGlassSpec {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" | "" => Ok(Self::None),
            "active" => Ok(Self::Active),
            "expired" => Ok(Self::Expired),
            other => Err(ScenarioError::BreakGlass(other.to_owned())),
        }
    }
}

fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap_or_else(|_| unreachable!("{id} is a valid agency ID"))
}

/// One described request for one survivor record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub agency_kind: AgencyKind,
    pub roles: Vec<Role>,
    pub purpose: Purpose,
    pub owner_is_self: bool,
    pub grants: Vec<GrantSpec>,
    pub break_glass: BreakGlassSpec,
    pub justification: Option<String>,
}

impl Scenario {
    /// The request as a node would describe it.
    pub fn request(&self) -> RequestFacts {
        RequestFacts {
            agency: agency(REQUESTING_AGENCY),
            agency_kind: self.agency_kind,
            roles: self.roles.clone(),
            user: "scenario-user".to_owned(),
            purpose: self.purpose,
            justification: self.justification.clone(),
            now: SCENARIO_NOW,
        }
    }

    /// The agency that owns the record.
    pub fn owner(&self) -> AgencyId {
        agency(if self.owner_is_self {
            REQUESTING_AGENCY
        } else {
            OWNING_AGENCY
        })
    }

    /// The grants as stored, named `grant-1`, `grant-2`, ...
    pub fn grant_facts(&self) -> Vec<GrantFacts> {
        self.grants
            .iter()
            .enumerate()
            .map(|(i, g)| g.to_facts(format!("grant-{}", i + 1)))
            .collect()
    }

    /// The break-glass opening as stored.
    pub fn break_glass_facts(&self) -> Option<BreakGlassFacts> {
        let hours = Duration::hours;
        let (opened, expires) = match self.break_glass {
            BreakGlassSpec::None => return None,
            BreakGlassSpec::Active => (SCENARIO_NOW - hours(1), SCENARIO_NOW + hours(3)),
            BreakGlassSpec::Expired => (SCENARIO_NOW - hours(6), SCENARIO_NOW - hours(2)),
        };
        Some(BreakGlassFacts {
            id: "break-glass-1".to_owned(),
            opened_at: opened,
            expires_at: expires,
        })
    }

    /// Decides the record.
    pub fn disclose(&self, engine: &PolicyEngine) -> RecordDisclosure {
        let mut scope = engine.scope(self.request());
        scope.disclose(
            &self.owner(),
            &self.grant_facts(),
            self.break_glass_facts().as_ref(),
        )
    }

    /// The decision on `category`, in plain language, for a
    /// data-protection officer.
    pub fn explain(&self, engine: &PolicyEngine, category: Category) -> String {
        let record = self.disclose(engine);
        let decision = record.decision(category);
        let mut out = String::new();
        let roles: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            out,
            "Request: a {} user of a {} agency asks for {} for the purpose {}, on a record {}.",
            roles.join("+"),
            self.agency_kind,
            category,
            self.purpose,
            if self.owner_is_self {
                "their own agency keeps"
            } else {
                "another agency keeps"
            }
        );
        let verdict = match &decision.outcome {
            CategoryOutcome::Allowed(_) => "DISCLOSED",
            CategoryOutcome::Withheld(_) => "WITHHELD",
        };
        let _ = writeln!(out, "Decision: {verdict}");
        let _ = writeln!(
            out,
            "Reason code: {} ({})",
            decision.reason_code(),
            reason_text(decision.reason_code())
        );
        if decision.policy_ids().is_empty() {
            let _ = writeln!(
                out,
                "Policies that decided: none. No rule permits this, so it is denied by default."
            );
        } else {
            let _ = writeln!(out, "Policies that decided:");
            for id in decision.policy_ids() {
                let info = engine.policy(id);
                let _ = writeln!(
                    out,
                    "  - {id} ({}, in {}): {}",
                    info.map_or("?", |p| p.effect.as_str()),
                    info.map_or("?", |p| p.file.as_str()),
                    info.and_then(|p| p.description.as_deref())
                        .unwrap_or("(no description)")
                );
            }
        }
        let grant = match (&decision.outcome, decision.grant_id()) {
            (CategoryOutcome::Allowed(DisclosureBasis::Grant { grant_id }), _) => {
                format!("{grant_id} (active) covered it")
            }
            (_, Some(id)) => format!(
                "{id} is the closest grant; its state: {}",
                decision.grant_state.as_str()
            ),
            (_, None) => "no grant names this agency and category".to_owned(),
        };
        let _ = writeln!(out, "Grant: {grant}");
        for (i, g) in self.grant_facts().iter().enumerate() {
            let cats: Vec<&str> = g.categories.iter().map(|c| c.as_str()).collect();
            let purposes: Vec<&str> = g.purposes.iter().map(|p| p.as_str()).collect();
            let _ = writeln!(
                out,
                "  grant-{}: to {}, categories {}, purposes {}, {:?}",
                i + 1,
                g.grantee,
                cats.join(","),
                purposes.join(","),
                self.grants[i].timing
            );
        }
        let bg = match self.break_glass {
            BreakGlassSpec::None => "none",
            BreakGlassSpec::Active => "an opening is active",
            BreakGlassSpec::Expired => "the opening has expired",
        };
        let _ = writeln!(
            out,
            "Break-glass: {bg}; justification {}.",
            if self.request().is_justified() {
                "given"
            } else {
                "missing or shorter than 20 characters"
            }
        );
        let _ = writeln!(
            out,
            "Explanation for the audit log: {}",
            decision.explanation()
        );
        let _ = write!(out, "Policy set: {}", engine.set_hash());
        out
    }
}

/// A reason code in plain words.
pub fn reason_text(code: &str) -> &'static str {
    match code {
        "OWNER" => "the requester's own agency keeps this record",
        "GRANT" => "the survivor's active consent covers this agency, category and purpose",
        "BREAK_GLASS" => "emergency break-glass access, marked for mandatory review",
        "POLICY" => "a policy permits it without consent",
        "NO_GRANT" => "the survivor has given this agency no consent for this category",
        "GRANT_EXPIRED" => "the survivor's consent has ended",
        "GRANT_NOT_YET_VALID" => "the survivor's consent has not started yet",
        "GRANT_REVOKED" => "the survivor withdrew their consent",
        "PURPOSE_NOT_GRANTED" => "the survivor consented to this category, but for another purpose",
        "FORBIDDEN_BY_POLICY" => "a rule no consent can override forbids it",
        _ => "see the explanation",
    }
}

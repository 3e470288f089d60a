//! The federation's disclosure policy engine.
//!
//! A node loads a Cedar policy set (the shipped [`PolicyEngine::baseline`] or
//! a directory, [`PolicyEngine::load_dir`]), validated in strict mode against
//! the schema in `policies/exchange.cedarschema`. For each GraphQL request it
//! opens a [`DecisionScope`] and asks it, per survivor record, which
//! categories may be disclosed ([`DecisionScope::disclose`]) and, per action,
//! whether it is permitted ([`DecisionScope::authorize`]). Every decision
//! names the policies and the grant that decided it, and the version
//! ([`PolicyEngine::set_hash`]) of the set.
//!
//! * [`source`]: reading, validating and hashing policy files.
//! * [`grant`]: consent grants and break-glass openings, and their state.
//! * [`engine`]: the engine and the per-request scope with its cache.
//! * [`disclosure`], [`action`]: the decisions.
//! * [`scenario`]: described situations, for the CLI and decision tables.

pub mod action;
pub mod disclosure;
pub mod engine;
pub mod error;
pub mod grant;
pub mod scenario;
pub mod source;

pub use action::{Action, ActionDecision, ActionTarget};
pub use disclosure::{CategoryDecision, CategoryOutcome, DisclosureBasis, RecordDisclosure};
pub use engine::{
    BreakGlassOptions, DecisionScope, EngineOptions, MIN_JUSTIFICATION_CHARS, PolicyEngine,
    RequestFacts,
};
pub use error::{PolicyError, PolicyProblem};
pub use grant::{BreakGlassFacts, BreakGlassState, GrantCoverage, GrantFacts, GrantState};
pub use source::{PolicyEffect, PolicyFile, PolicyInfo};

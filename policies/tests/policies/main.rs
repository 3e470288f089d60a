//! The policy crate's integration suite: the decision tables under
//! `tests/decisions/`, the consent property, the engine as a node uses it,
//! invalid policy sets, and the `exchange-policy` command.

mod cli;
mod consent_property;
mod decision_tables;
mod engine;
mod invalid_sets;

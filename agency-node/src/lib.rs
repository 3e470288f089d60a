//! An agency node: the agency's records (survivors, referrals, consent
//! grants), the one decision path that discloses them
//! ([`disclosure`]), the GraphQL subgraph that serves them ([`graphql`]),
//! the tamper-evident audit log ([`audit`]), and the calls it makes to
//! other nodes to hand a case over ([`peers`]).
//!
//! `main.rs` is a thin wrapper over [`cli`]; tests build an
//! [`app::Application`] on port 0.

pub mod app;
pub mod audit_endpoints;
pub mod backup;
pub mod changes;
pub mod cli;
pub mod config;
pub mod disclosure;
pub mod error;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod notifications;
pub mod peers;
pub mod portal;
pub mod receipt;
pub mod records;
pub mod retention;
pub mod rights;
pub mod seed;
pub mod signing_key;
pub mod state;
pub mod statistics;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod vault;
pub mod webhooks;

pub use app::Application;
pub use config::NodeConfig;

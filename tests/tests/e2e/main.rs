//! End-to-end tests: a gateway and three agency nodes on loopback ports,
//! in-process, driven over HTTP.

mod access;
mod audit;
mod auditors;
mod backup;
mod case;
mod consent;
mod erasure;
mod failure;
mod graphiql_browser;
mod idempotency;
mod limits;
mod metrics;
mod mtls;
mod notifications;
mod otlp;
mod pathway;
mod portal_browser;
mod referrals;
mod statistics;
mod trace;
mod transfer;
mod webhooks;

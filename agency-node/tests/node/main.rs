//! The agency node's integration suite: a real node on a loopback port, on
//! SQLite and on PostgreSQL, driven over HTTP.

mod common;

mod audit_trail;
mod auth;
mod bad_input;
mod consent;
mod contract;
mod lifecycle;
mod referrals;

//! The agency node's integration suite: a real node on a loopback port, on
//! SQLite and on PostgreSQL, driven over HTTP.

mod common;

mod audit_export;
mod audit_trail;
mod auth;
mod bad_input;
mod consent;
mod contract;
mod lifecycle;
mod portal;
mod referrals;
mod shared_log;

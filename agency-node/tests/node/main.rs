//! The agency node's integration suite: a real node on a loopback port, on
//! SQLite and on PostgreSQL, driven over HTTP.

mod common;

mod at_rest;
mod audit_export;
mod audit_trail;
mod audit_verify;
mod auth;
mod backup;
mod bad_input;
mod break_glass;
mod care_plan;
mod case_management;
mod case_status;
mod coded_intake;
mod consent;
mod contract;
mod dev_token;
mod idempotency;
mod jwks_rollover;
mod key_rotation;
mod lifecycle;
mod limits;
mod metrics;
mod notifications;
mod onward_referral;
mod parsed_operations;
mod policy_startup;
mod portal;
mod portal_replicas;
mod referral_pages;
mod referrals;
mod replicas;
mod retention;
mod rights_requests;
mod scratch_database;
mod seed;
mod shared_log;
mod signing_key_rotation;
mod statistics;
mod storage_faults;
mod traces;
mod transfer_store;

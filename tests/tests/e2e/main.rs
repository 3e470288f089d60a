//! End-to-end tests: a gateway and three agency nodes on loopback ports,
//! in-process, driven over HTTP.

mod access;
mod audit;
mod consent;
mod failure;
mod mtls;
mod referrals;
mod trace;

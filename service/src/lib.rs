//! What an agency node and the gateway share as running services: their
//! database connection and the read-only opening an auditor uses, reading
//! request bodies within a limit, the cache of parsed operations, layered
//! configuration, the stop signal, secret files, command output, metrics, and
//! mutual TLS with the development PKI. Each piece is written
//! once here so the two cannot drift apart.

pub mod body;
pub mod config;
pub mod db;
pub mod documents;
pub mod files;
pub mod jwks;
pub mod lang;
pub mod metrics;
pub mod output;
#[cfg(feature = "web-pages")]
pub mod pages;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
#[cfg(feature = "web-pages")]
pub mod translations;

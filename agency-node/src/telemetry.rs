//! Structured logs, as the gateway writes them too.

pub use exchange_service::telemetry::init;

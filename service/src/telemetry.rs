//! Structured logs: JSON lines for collectors by default, or a readable
//! format for a terminal. `RUST_LOG` sets the filter (default `info`).
//!
//! And traces ([`init_with_traces`]): the processes that serve requests
//! (the gateway and the nodes) make OpenTelemetry spans and export them
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter
//! reads the standard `OTEL_EXPORTER_OTLP_*` variables, among them
//! `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` by default, or
//! `http/json`); otherwise spans are made and go nowhere. An incoming W3C
//! `traceparent` becomes a request span's parent ([`remote_parent`]), so
//! one trace runs from the client through the gateway to every node.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The environment variable that switches OTLP export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the tracer provider alive; flushes and shuts it down when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("shutting down the trace exporter: {err}");
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("building the OTLP exporter: {0}")]
    Exporter(String),
}

/// A tracer provider for `service`: exporting over OTLP/HTTP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exporting nothing otherwise.
pub fn provider(service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint_set = std::env::var(OTLP_ENDPOINT_ENV).is_ok_and(|v| !v.trim().is_empty());
    let builder = if endpoint_set {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder.with_batch_exporter(exporter)
    } else {
        builder
    };
    Ok(builder.build())
}

/// Installs the global subscriber: log lines (`json` or `pretty`, filtered
/// by `RUST_LOG`, default `info`) and the OpenTelemetry layer for
/// `service`. Call once, from `main`; keep the guard until the end.
pub fn init_with_traces(
    log_format: LogFormat,
    service: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let provider = provider(service)?;
    let tracer = provider.tracer(service.to_owned());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match log_format {
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init(),
    };
    Ok(TelemetryGuard { provider })
}

/// The OpenTelemetry context of a remote parent span (an incoming
/// `traceparent`'s trace ID, parent span ID and sampled flag).
pub fn remote_parent(
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    sampled: bool,
) -> opentelemetry::Context {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(parent_id),
        flags,
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(remote)
}

//! The process-wide tracing set-up of a test binary: an OpenTelemetry layer
//! over an in-memory exporter, so tests can read the gateway's spans.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();

/// Installs the subscriber once for the whole test binary.
pub fn install() {
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("e2e");
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .try_init();
        // Kept for the life of the process.
        std::mem::forget(provider);
        exporter
    });
}

/// The spans finished so far.
pub fn finished_spans() -> Vec<opentelemetry_sdk::trace::SpanData> {
    EXPORTER
        .get()
        .map(|e| e.get_finished_spans().unwrap_or_default())
        .unwrap_or_default()
}

//! Logs and traces.
//!
//! Every operation gets a `graphql.operation` span and every node call a
//! `node.call` span under it, through `tracing` and `tracing-opentelemetry`.
//! An incoming W3C `traceparent` becomes the operation span's parent, and
//! each node call passes its own `traceparent` on, so one trace spans the
//! gateway and the nodes (each node writes the trace ID into its audit
//! entries). Spans are exported over OTLP/HTTP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the standard
//! `OTEL_EXPORTER_OTLP_*` variables); otherwise they are created, give their
//! IDs to the audit log and the nodes, and go nowhere.
//!
//! Without any OpenTelemetry layer installed (a library user's own
//! subscriber), trace IDs still flow: they come from the incoming
//! `traceparent` or are generated per operation.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use exchange_service::telemetry::{
    OTLP_ENDPOINT_ENV, TelemetryError, TelemetryGuard, init_with_traces as init, provider,
};

/// A W3C trace context: trace ID, the parent span ID to send, and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` header by the rules every node also uses
    /// ([`exchange_schema::TraceContext`]).
    pub fn parse(header: &str) -> Option<Self> {
        let context = exchange_schema::TraceContext::parse(header)?;
        Some(Self {
            trace_id: TraceId::from_bytes(context.trace_id),
            span_id: SpanId::from_bytes(context.parent_id),
            sampled: context.sampled(),
        })
    }

    /// A fresh trace (used when neither the client nor a tracer gave one).
    pub fn generate() -> Self {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        let span = *uuid::Uuid::new_v4().as_bytes();
        let mut span_bytes = [0u8; 8];
        span_bytes.copy_from_slice(&span[..8]);
        Self {
            trace_id: TraceId::from_bytes(bytes),
            span_id: SpanId::from_bytes(span_bytes),
            sampled: false,
        }
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The trace ID as 32 lowercase hex digits (as written in audit logs).
    pub fn trace_id_hex(&self) -> String {
        self.trace_id.to_string()
    }

    fn context(&self) -> opentelemetry::Context {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(
            self.trace_id,
            self.span_id,
            flags,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(remote)
    }
}

/// Makes `incoming` the parent of `span` (when an OpenTelemetry layer is
/// installed).
pub fn adopt(span: &Span, incoming: Option<TraceParent>) {
    if let Some(parent) = incoming {
        let _ = span.set_parent(parent.context());
    }
}

/// The trace context to hand on from `span`: the span's own IDs when an
/// OpenTelemetry layer tracks it, else `fallback` with a fresh span ID.
pub fn outgoing(span: &Span, fallback: &TraceParent) -> TraceParent {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        TraceParent {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            sampled: sc.is_sampled(),
        }
    } else {
        TraceParent {
            span_id: TraceParent::generate().span_id,
            ..*fallback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let h = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let tp = TraceParent::parse(h).unwrap();
        assert_eq!(tp.header(), h);
        assert_eq!(tp.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        for bad in [
            "",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-xyz",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_a_tracer_the_fallback_trace_is_kept() {
        let fallback = TraceParent::generate();
        let out = outgoing(&Span::none(), &fallback);
        assert_eq!(out.trace_id, fallback.trace_id);
        assert_ne!(out.span_id, fallback.span_id);
    }
}

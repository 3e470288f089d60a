//! An OTLP/HTTP trace receiver on loopback for the suites: it keeps every
//! `/v1/traces` body (the JSON protocol, `OTEL_EXPORTER_OTLP_PROTOCOL=
//! http/json`) and reads the spans out of them with their service names.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The environment that makes a process (node or gateway) export its spans
/// to `endpoint` as JSON, in batches sent every 100 ms.
pub fn exporter_env(endpoint: &str) -> [(&'static str, String); 3] {
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

/// One span as exported, with the `service.name` of its process.
#[derive(Debug, Clone)]
pub struct ExportedSpan {
    pub service: String,
    pub span: Value,
}

impl ExportedSpan {
    pub fn name(&self) -> &str {
        self.span["name"].as_str().unwrap_or_default()
    }
    pub fn trace_id(&self) -> &str {
        self.span["traceId"].as_str().unwrap_or_default()
    }
    pub fn span_id(&self) -> &str {
        self.span["spanId"].as_str().unwrap_or_default()
    }
    pub fn parent_span_id(&self) -> &str {
        self.span["parentSpanId"].as_str().unwrap_or_default()
    }
}

/// The receiver: its endpoint (for `OTEL_EXPORTER_OTLP_ENDPOINT`) and what
/// it received.
pub struct OtlpReceiver {
    pub endpoint: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                        kept.lock().unwrap_or_else(|p| p.into_inner()).push(value);
                    }
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        "{}",
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, received }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        let received = self.received.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for body in received.iter() {
            for resource in body["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        out.push(ExportedSpan {
                            service: service.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The spans received, once `done` holds of them (checked every 100 ms
    /// for at most 10 s); fails the test with what was received otherwise.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[ExportedSpan]) -> bool,
    ) -> Vec<ExportedSpan> {
        for _ in 0..100 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let names: Vec<(String, String, String)> = self
            .spans()
            .iter()
            .map(|s| {
                (
                    s.service.clone(),
                    s.name().to_owned(),
                    s.trace_id().to_owned(),
                )
            })
            .collect();
        panic!("the receiver never got {what}: {names:?}")
    }
}

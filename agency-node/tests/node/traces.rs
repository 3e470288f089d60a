//! The node's spans reach a real OTLP/HTTP receiver: `agency-node serve`
//! started with `OTEL_EXPORTER_OTLP_ENDPOINT` (and the JSON protocol)
//! exports a `graphql.request` span for a request, in the trace of the
//! request's `traceparent` and with its span as parent (as the gateway's
//! `node.call` span is), under the service name `agency-node`; the spans
//! are flushed when SIGTERM stops the node.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::lifecycle::terminate;

/// An OTLP/HTTP receiver on loopback: keeps every `/v1/traces` body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                    kept.lock().unwrap().push(value);
                }
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "{}",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Every span the receiver got, with its service name.
fn spans(received: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for body in received {
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
                    out.push((service.clone(), span.clone()));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_span_is_exported_in_the_callers_trace_to_an_otlp_receiver() {
    let (endpoint, received) = receiver().await;
    let mut harness = TestNode::start(Backend::Sqlite).await;
    harness.stop().await;
    let token = harness.caseworker(OWNER);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = harness.data_dir.join("traced.toml");
    std::fs::write(
        &config,
        format!(
            "agency = \"{OWNER}\"\nfederation = \"{}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            harness.federation_path().display(),
            harness.data_dir.join("traced").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the node did not become ready");

    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let answer: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({ "query": "{ survivors(first: 1) { nodes { id } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["errors"].is_null(), "{answer}");
    // A request with no trace context (refused: no token): its audit entry
    // names the trace the node's span started.
    let refused = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ agency { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    terminate(child).await;

    let mut found = None;
    for _ in 0..50 {
        let got = spans(&received.lock().unwrap());
        found = got
            .into_iter()
            .find(|(_, s)| s["name"] == "graphql.request" && s["traceId"] == trace_id);
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (service, span) = found.unwrap_or_else(|| {
        panic!(
            "no graphql.request span of trace {trace_id}: {:?}",
            received.lock().unwrap()
        )
    });
    assert_eq!(service, "agency-node");
    assert_eq!(span["parentSpanId"], parent_id, "{span}");

    let db = agency_node::store::open(
        &agency_node::store::sqlite_url(&harness.data_dir.join("traced")),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let denial = exchange_test_kit::events(&db)
        .await
        .into_iter()
        .find(|e| e.kind == exchange_schema::AuditKind::Denial)
        .expect("the refusal is audited");
    let audited = denial.trace_id.expect("a trace ID");
    assert_ne!(audited, trace_id);
    let traces: Vec<String> = spans(&received.lock().unwrap())
        .into_iter()
        .filter(|(_, s)| s["name"] == "graphql.request")
        .filter_map(|(_, s)| s["traceId"].as_str().map(str::to_owned))
        .collect();
    assert!(
        traces.contains(&audited),
        "the audit entry's trace {audited} is no exported span's: {traces:?}"
    );
}

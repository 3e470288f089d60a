//! The node's spans reach a real OTLP/HTTP receiver: `agency-node serve`
//! started with `OTEL_EXPORTER_OTLP_ENDPOINT` (and the JSON protocol)
//! exports a `graphql.request` span for a request, in the trace of the
//! request's `traceparent` and with its span as parent (as the gateway's
//! `node.call` span is), under the service name `agency-node`; the spans
//! are flushed when SIGTERM stops the node.

use std::process::{Command, Stdio};
use std::time::Duration;

use exchange_test_kit::otlp::{OtlpReceiver, exporter_env};
use serde_json::{Value, json};

use crate::common::*;
use crate::lifecycle::terminate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_span_is_exported_in_the_callers_trace_to_an_otlp_receiver() {
    let receiver = OtlpReceiver::start().await;
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
        .envs(exporter_env(&receiver.endpoint))
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

    let spans = receiver
        .wait_until("the request's graphql.request span", |spans| {
            spans
                .iter()
                .any(|s| s.name() == "graphql.request" && s.trace_id() == trace_id)
        })
        .await;
    let span = spans
        .iter()
        .find(|s| s.name() == "graphql.request" && s.trace_id() == trace_id)
        .expect("found above");
    let service = span.service.as_str();
    assert_eq!(service, "agency-node");
    assert_eq!(span.parent_span_id(), parent_id, "{span:?}");

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
    let traces: Vec<String> = receiver
        .spans()
        .iter()
        .filter(|s| s.name() == "graphql.request")
        .map(|s| s.trace_id().to_owned())
        .collect();
    assert!(
        traces.contains(&audited),
        "the audit entry's trace {audited} is no exported span's: {traces:?}"
    );
}

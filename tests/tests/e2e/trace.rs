//! One trace across the gateway and the nodes: the gateway's spans and the
//! nodes' audit entries carry the same W3C trace ID.

use exchange_schema::AuditKind;
use exchange_test_kit::{LEGAL, SHELTER, TestFederation, tracing_setup};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_gateway_and_the_nodes() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Hana").await;
    fed.grant(&survivor, LEGAL, &["IDENTITY"], &["LEGAL_ASSISTANCE"])
        .await;

    let answer = fed
        .gateway_gql(
            &fed.caseworker(LEGAL),
            "LEGAL_ASSISTANCE",
            "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(answer.data()["survivor"]["identity"]["givenName"], "Hana");

    // The node's disclosure entry for this read...
    let disclosure = fed
        .node(SHELTER)
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditKind::Disclosure)
        .expect("the node audited the disclosure");
    let trace_id = disclosure.trace_id.expect("a trace ID");
    // ...carries the trace of the gateway's spans for the operation.
    let spans = tracing_setup::finished_spans();
    let operation = spans
        .iter()
        .find(|s| {
            s.name == "graphql.operation" && s.span_context.trace_id().to_string() == trace_id
        })
        .expect("the gateway's operation span is in the same trace");
    let call = spans
        .iter()
        .find(|s| s.name == "node.call" && s.span_context.trace_id().to_string() == trace_id)
        .expect("the gateway's node call span is in the same trace");
    assert_eq!(call.parent_span_id, operation.span_context.span_id());
    // The gateway's own audit entry names the same trace.
    let federated = fed
        .gateway_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditKind::FederatedOperation)
        .expect("the gateway audited the operation");
    assert_eq!(federated.trace_id.as_deref(), Some(trace_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_trace_context_is_continued() {
    let fed = TestFederation::start().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = fed
        .client
        .post(format!("{}/graphql", fed.gateway_base))
        .bearer_auth(fed.caseworker(SHELTER))
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "{ agency { id } }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let federated = fed
        .gateway_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditKind::FederatedOperation)
        .expect("audited");
    assert_eq!(federated.trace_id.as_deref(), Some(trace_id));
}

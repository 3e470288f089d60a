//! The gateway's Prometheus metrics on their own listener: operations by
//! root field, requests by route, the federated operations it audited, each
//! node's circuit (an open one once a hung node failed), and never a
//! survivor's name or ID, a user or a token in them; the public listener
//! does not serve them.

use exchange_test_kit::{Options, SHELTER, SILENT, TestFederation};
use serde_json::json;

async fn scrape(fed: &TestFederation) -> String {
    let response = fed
        .client
        .get(format!("{}/metrics", fed.gateway_metrics))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_counts_operations_and_circuits_and_names_no_one() {
    let fed = TestFederation::start_with(Options::hung_node()).await;
    let survivor = fed.register_survivor(SHELTER, "Olumide-Metrics").await;
    let token = fed.caseworker(SHELTER);
    let read = fed
        .gateway_gql(
            &token,
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    // The hung node fails its part once: its circuit opens.
    let scattered = fed
        .gateway_gql(
            &token,
            "REFERRAL",
            "{ referrals(direction: INCOMING, first: 5) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(scattered.status, 200, "{}", scattered.body);

    let text = scrape(&fed).await;
    for expected in [
        "exchange_graphql_operations_total{operation=\"query:survivor\"} 1",
        "exchange_graphql_operations_total{operation=\"mutation:registerSurvivor\"} 1",
        "exchange_graphql_operations_total{operation=\"query:referrals\"} 1",
        "exchange_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"}",
        "exchange_audit_entries_total{kind=\"FEDERATED_OPERATION\",decision=\"PERMIT\"}",
        &format!("exchange_node_circuit_state{{agency=\"{SHELTER}\"}} 0"),
        &format!("exchange_node_circuit_state{{agency=\"{SILENT}\"}} 2"),
        "exchange_db_pool_connections{pool=\"audit\",state=\"idle\"}",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    let local = survivor.split_once(':').expect("global ID").1;
    for secret in ["Olumide", local, "caseworker@", token.as_str()] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    let public = fed
        .client
        .get(format!("{}/metrics", fed.gateway_base))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        public.status(),
        404,
        "the public listener serves no metrics"
    );
}

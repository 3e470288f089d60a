//! The node's Prometheus metrics, on a listener of their own: requests by
//! route and status, GraphQL root fields, categories disclosed by purpose
//! and withheld by reason, refusals by code, the audit writer's commits and
//! the database pool, and never a name, an ID, a user or a token in any
//! label; neither the API's listener nor the portal's serves them.

use serde_json::json;

use crate::common::*;

on_both_backends!(the_metrics_count_what_happened_and_name_no_one,);

async fn the_metrics_count_what_happened_and_name_no_one(backend: Backend) {
    let node = crate::portal::start_with_node_config(backend, |config| {
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (survivor, _) = node
        .survivor_sharing_identity_with_shelter("Zainab-Metrics")
        .await;
    let shelter = node.caseworker(SHELTER);
    let read = node
        .read_survivor(&shelter, "SERVICE_COORDINATION", &survivor)
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let refused = node
        .gql(
            None,
            Some("CASE_MANAGEMENT"),
            "{ agency { id } }",
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 401);

    let base = node.metrics.clone().expect("metrics listener on");
    let scrape = node
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = scrape.text().await.unwrap();
    for expected in [
        "exchange_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"}",
        "exchange_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"401\"}",
        "exchange_graphql_operations_total{operation=\"mutation:registerSurvivor\"}",
        "exchange_graphql_operations_total{operation=\"query:survivor\"}",
        "exchange_graphql_operation_duration_seconds_count{operation=\"query:survivor\"} 1",
        "exchange_disclosed_categories_total{category=\"IDENTITY\",purpose=\"SERVICE_COORDINATION\"} 1",
        "exchange_withheld_categories_total{category=\"HEALTH\",reason=\"NO_GRANT\"} 1",
        "exchange_refusals_total{code=\"UNAUTHENTICATED\"} 1",
        "exchange_audit_entries_total{kind=\"SURVIVOR_REGISTERED\",decision=\"PERMIT\"} 1",
        "exchange_audit_commit_duration_seconds_count",
        "exchange_audit_queue_depth",
        "exchange_db_pool_connections{pool=\"records\",state=\"idle\"}",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // No one is named: not the survivor, their ID, the users or a token.
    let local = survivor.split_once(':').unwrap().1;
    for secret in ["Zainab", local, "caseworker@", shelter.as_str()] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    // Only the metrics listener serves them.
    for public in [node.base.clone(), node.portal.clone().unwrap()] {
        let status = node
            .client
            .get(format!("{public}/metrics"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{public}/metrics");
    }
}

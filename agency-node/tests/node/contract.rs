//! The federation contract: the SDL a node serves is the checked-in
//! `schema/subgraph.graphql`, and the node is a Federation v2 subgraph.

use serde_json::json;

use crate::common::*;

/// What the node serves through `_service` equals the checked-in contract.
async fn served_sdl_matches_the_contract(backend: Backend) {
    let node = TestNode::start(backend).await;
    let response = node
        .gql(
            Some(&node.caseworker(OWNER)),
            None,
            "{ _service { sdl } }",
            json!({}),
        )
        .await;
    let served = response.data()["_service"]["sdl"]
        .as_str()
        .unwrap()
        .to_owned();
    let contract = exchange_schema::SUBGRAPH_SDL;
    assert!(
        served.trim() == contract.trim(),
        "the node's SDL drifted from {}; if the change is intended, run\n  \
         cargo run -p agency-node -- schema > {}\nand review the diff",
        exchange_schema::SUBGRAPH_SDL_PATH,
        exchange_schema::SUBGRAPH_SDL_PATH
    );
    assert_eq!(agency_node::graphql::subgraph_sdl().trim(), contract.trim());
    for needle in [
        "url: \"https://specs.apollo.dev/federation/v2",
        "type Survivor @key(fields: \"id\")",
        "type Referral @key(fields: \"id\")",
    ] {
        assert!(served.contains(needle), "missing {needle}");
    }
}

/// Health and readiness answer without a token; GraphiQL is served on GET.
async fn health_readiness_and_graphiql(backend: Backend) {
    let node = TestNode::start(backend).await;
    let get = |path: &str| node.client.get(format!("{}{path}", node.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let page = get("/graphql").await.unwrap().text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
}

on_both_backends!(
    served_sdl_matches_the_contract,
    health_readiness_and_graphiql
);

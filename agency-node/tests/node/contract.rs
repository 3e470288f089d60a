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

/// Health and readiness answer without a token; GraphiQL is served on GET
/// from the node itself (a member agency may reach it directly), under its
/// Content-Security-Policy, and every script and stylesheet it names is
/// served by the node, not a CDN.
async fn health_readiness_and_graphiql(backend: Backend) {
    let node = TestNode::start(backend).await;
    let get = |path: &str| node.client.get(format!("{}{path}", node.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let response = get("/graphql").await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("data-endpoint=\"/graphql\""), "{page}");
    let assets: Vec<&str> = page
        .split(['"'])
        .filter(|s| s.starts_with(exchange_graphiql::ASSETS_PREFIX))
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    for asset in assets {
        let response = get(asset).await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(
            kind.starts_with("text/javascript")
                || kind.starts_with("text/css")
                || kind.starts_with("text/plain"),
            "{asset}: {kind}"
        );
    }
    assert_eq!(
        get("/graphiql/graphiql-3.9.0/nothing.js")
            .await
            .unwrap()
            .status(),
        404
    );
}

on_both_backends!(
    served_sdl_matches_the_contract,
    health_readiness_and_graphiql
);

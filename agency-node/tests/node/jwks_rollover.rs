//! An identity provider that publishes its keys at a JWKS URL rolls its
//! signing key over while the node runs: the node fetched the first key at
//! start, accepts a token of the new key as soon as the provider publishes
//! it (one fetch, no restart, no edit of the federation file), refuses a
//! key the provider never published (audited as UNKNOWN_KEY), and keeps
//! the keys it has while the provider's endpoint fails.

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, AuditKind, Role};
use exchange_trust::{DevIdentityProvider, FederationFile, KeyEntry, MintRequest};
use serde_json::json;

use crate::common::*;

fn jwks_of(providers: &[&DevIdentityProvider]) -> String {
    let keys: Vec<serde_json::Value> = providers
        .iter()
        .map(|p| {
            json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": p.kid(), "x": URL_SAFE_NO_PAD.encode(p.public_key_raw()) })
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_rolls_its_key_over_mid_run_and_the_node_follows() {
    let owner = AgencyId::parse(OWNER).unwrap();
    let issuer = DevIdentityProvider::issuer_for(&owner);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys: Vec<DevIdentityProvider> = dirs
        .iter()
        .map(|d| {
            DevIdentityProvider::load_or_generate(d.path(), &owner)
                .unwrap()
                .with_issuer(issuer.clone())
        })
        .collect();

    // The provider's JWKS endpoint: what it publishes can change or fail.
    let published: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(Some(jwks_of(&[&keys[0]]))));
    let served = published.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let served = served.clone();
            async move {
                match served.read().unwrap().clone() {
                    Some(body) => (axum::http::StatusCode::OK, body),
                    None => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The federation file names the owner's keys by that URL only.
    let node = TestNode::start_with(Backend::Sqlite, |config| {
        let text = std::fs::read_to_string(&config.federation).unwrap();
        let mut file: FederationFile = toml::from_str(&text).unwrap();
        let entry = file.agencies.iter_mut().find(|a| a.id == OWNER).unwrap();
        entry.keys = vec![KeyEntry {
            jwks_url: Some(url.clone()),
            ..KeyEntry::default()
        }];
        let path = config.federation.with_file_name("federation-jwks.toml");
        std::fs::write(&path, file.to_toml().unwrap()).unwrap();
        config.federation = path;
    })
    .await;
    let ask = |token: String| {
        let node = &node;
        async move {
            node.gql(
                Some(&token),
                Some("CASE_MANAGEMENT"),
                "{ survivors(first: 1) { nodes { id } } }",
                json!({}),
            )
            .await
        }
    };
    let mint = |provider: &DevIdentityProvider, user: &str| {
        provider
            .mint(&MintRequest::new(
                owner.clone(),
                user,
                vec![Role::Caseworker],
                AUDIENCE,
            ))
            .unwrap()
    };

    // The key fetched at start.
    let first = ask(mint(&keys[0], "ana")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.errors().is_empty(), "{}", first.body);

    // The provider publishes its new key beside the old and signs with it.
    *published.write().unwrap() = Some(jwks_of(&[&keys[0], &keys[1]]));
    let rolled = ask(mint(&keys[1], "ana")).await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    assert!(rolled.errors().is_empty(), "{}", rolled.body);

    // A key it never published is refused, and the refusal audited.
    let forged = ask(mint(&keys[2], "mallory")).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(forged.code(), "UNAUTHENTICATED");
    let denial = node
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditKind::Denial)
        .expect("the refusal is audited");
    assert_eq!(denial.reason, "UNKNOWN_KEY");

    // The endpoint fails: the keys the node has keep working.
    *published.write().unwrap() = None;
    let still = ask(mint(&keys[1], "ben")).await;
    assert_eq!(still.status, 200, "{}", still.body);
}

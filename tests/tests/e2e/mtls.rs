//! Mutual TLS between the gateway and the nodes: a node with TLS on refuses
//! a client without a certificate from the federation's CA, and the gateway
//! (with one) is served.

use exchange_service::tls::DevPki;
use exchange_test_kit::{Options, SHELTER, TestFederation, tls_identity};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_tls_refuses_clients_without_a_valid_certificate() {
    let fed = TestFederation::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let pki = fed.pki.as_ref().expect("a local CA");
    let node = fed.node(SHELTER);
    assert!(node.base.starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.ca_file()).expect("CA"))
        .expect("CA parses");
    let token = fed.caseworker(SHELTER);
    let body = json!({ "query": "{ agency { id } }" });

    // No client certificate: the handshake fails, no HTTP is served.
    let anonymous = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .build()
        .expect("client");
    let refused = anonymous
        .post(format!("{}/graphql", node.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate must be refused"
    );

    // A certificate from another CA: refused as well.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = DevPki::load_or_create(other_dir.path()).expect("other CA");
    let stranger = other
        .identity("stranger", &["stranger.test".into()], false, true)
        .expect("identity");
    let mut pem = std::fs::read(&stranger.cert_file).expect("cert");
    pem.extend(std::fs::read(&stranger.key_file).expect("key"));
    let foreign = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(reqwest::Identity::from_pem(&pem).expect("identity"))
        .build()
        .expect("client");
    let refused = foreign
        .post(format!("{}/graphql", node.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client certificate from another CA must be refused"
    );

    // The gateway, with its certificate, reaches the node by its TLS identity.
    let through = fed
        .gateway_gql(&token, "CASE_MANAGEMENT", "{ agency { id } }", json!({}))
        .await;
    assert_eq!(through.data()["agency"]["id"], SHELTER);
    assert_eq!(tls_identity(SHELTER), "node.shelter-north.test");
}

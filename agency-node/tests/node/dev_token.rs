//! `agency-node dev token` end to end: a token minted by the real binary
//! from a node's configuration works against that node; a key the trust list
//! does not name gives a clear error (never a token the node would refuse),
//! and following its advice makes the next token work.

use agency_node::NodeConfig;
use exchange_schema::{AgencyId, AgencyKind, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation, FederationFile, KeyEntry};
use serde_json::json;

use crate::common::{AUDIENCE, Backend, OWNER, SHELTER, TestNode, on_both_backends};

on_both_backends!(
    a_dev_token_from_the_binary_queries_the_node,
    a_dev_key_the_trust_list_does_not_name_is_explained_not_minted,
);

/// Writes the node's configuration as a file for the binary.
fn config_file(node: &TestNode, federation: &std::path::Path) -> std::path::PathBuf {
    let mut text = format!(
        "agency = \"{OWNER}\"\nlisten = \"127.0.0.1:0\"\nfederation = {:?}\ndata_dir = {:?}\n",
        federation.display().to_string(),
        node.data_dir.display().to_string(),
    );
    if node.backend == Backend::Postgres {
        text.push_str(&format!("database_url = {:?}\n", node.database_url));
    }
    let path = node.data_dir.join("agency-node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `agency-node --config <file> dev token <args>`.
fn dev_token(node: &TestNode, config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--config", config.to_str().unwrap(), "dev", "token"];
    all.extend_from_slice(args);
    node.cli(&all)
}

async fn a_dev_token_from_the_binary_queries_the_node(backend: Backend) {
    let node = TestNode::start(backend).await;
    let config = config_file(&node, node.federation_path());

    let (ok, out) = dev_token(&node, &config, &["--role", "CASEWORKER"]);
    assert!(ok, "{out}");
    let token = out.trim();
    assert_eq!(token.split('.').count(), 3, "one JWT on stdout: {out}");

    // The node's own caseworker registers a survivor and reads it back.
    let registered = node
        .gql(
            Some(token),
            Some("CASE_MANAGEMENT"),
            "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
            json!({ "input": crate::common::full_survivor_input("Olga") }),
        )
        .await;
    let id = registered.data()["registerSurvivor"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = node.read_survivor(token, "CASE_MANAGEMENT", &id).await;
    assert_eq!(read.data()["survivor"]["identity"]["givenName"], "Olga");
    let events = node.audit_events().await;
    let last = events.last().unwrap();
    assert_eq!(last.actor_user.as_deref(), Some("dev-caseworker"));
    assert_eq!(last.actor_agency.as_ref().unwrap().as_str(), OWNER);

    // Another member agency's user, with a role and a name.
    let (ok, out) = dev_token(
        &node,
        &config,
        &[
            "--agency",
            SHELTER,
            "--role",
            "SUPERVISOR",
            "--user",
            "night-supervisor",
        ],
    );
    assert!(ok, "{out}");
    let answer = node
        .gql(
            Some(out.trim()),
            Some("REFERRAL"),
            "query { agency { id } }",
            json!({}),
        )
        .await;
    assert_eq!(answer.data()["agency"]["id"], OWNER);
    let events = node.audit_events().await;
    assert!(
        events
            .iter()
            .all(|e| e.reason != "UNKNOWN_KEY" && e.subject.as_deref() != Some("authentication")),
        "no authentication failure: {events:?}"
    );
}

async fn a_dev_key_the_trust_list_does_not_name_is_explained_not_minted(backend: Backend) {
    // A federation whose key for the node's agency has no private key on
    // this machine (as when the trust list names the agency's real
    // identity provider).
    let dir = tempfile::tempdir().unwrap();
    let spec = |id: &str, kind, services| AgencySpec {
        id: AgencyId::parse(id).unwrap(),
        name: id.into(),
        kind,
        services,
        languages: vec!["en".into()],
        region: "Test".into(),
        node_url: None,
        tls_identity: None,
        webhook: None,
    };
    let federation = DevFederation::create(
        dir.path(),
        &[
            spec(OWNER, AgencyKind::Shelter, vec![ServiceKind::Shelter]),
            spec(SHELTER, AgencyKind::Shelter, vec![ServiceKind::Shelter]),
        ],
        AUDIENCE,
    )
    .unwrap();
    std::fs::remove_file(
        federation
            .provider(&AgencyId::parse(OWNER).unwrap())
            .unwrap()
            .private_key_path(),
    )
    .unwrap();
    let federation_path = federation.path.clone();
    let node = TestNode::start_with(backend, |config: &mut NodeConfig| {
        config.federation = federation_path.clone();
    })
    .await;
    let config = config_file(&node, &federation_path);

    // No token: an explanation naming the key to trust.
    let (ok, out) = dev_token(&node, &config, &["--role", "CASEWORKER"]);
    assert!(!ok, "{out}");
    assert!(out.contains("does not trust"), "{out}");
    let public = node
        .data_dir
        .join("dev-idp")
        .join(format!("{OWNER}-idp.pub.pem"));
    assert!(public.is_file(), "the key was generated in the data dir");
    assert!(out.contains(&public.display().to_string()), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.split('.').count() == 3 && !l.contains(' ')),
        "{out}"
    );
    let value = |name: &str| {
        let prefix = format!("{name} = \"");
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {name} in the advice: {out}"))
            .to_owned()
    };

    // Following the advice, a restarted node trusts the next token.
    let mut file: FederationFile =
        toml::from_str(&std::fs::read_to_string(&federation_path).unwrap()).unwrap();
    let entry = file.agencies.iter_mut().find(|a| a.id == OWNER).unwrap();
    entry.issuer = value("issuer");
    entry.keys = vec![KeyEntry {
        kid: Some(value("kid")),
        pem_file: Some(value("pem_file")),
        ..KeyEntry::default()
    }];
    std::fs::write(&federation_path, file.to_toml().unwrap()).unwrap();
    let (ok, out) = dev_token(&node, &config, &["--role", "CASEWORKER"]);
    assert!(ok, "{out}");
    let restarted = TestNode::start_with(backend, |config: &mut NodeConfig| {
        config.federation = federation_path.clone();
    })
    .await;
    let answer = restarted
        .gql(
            Some(out.trim()),
            Some("CASE_MANAGEMENT"),
            "query { survivors(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(
        answer.data()["survivors"]["edges"].is_array(),
        "{:?}",
        answer.body
    );
}

/// The README's single-node quick start with the shipped files
/// (`deploy/agency-node.toml`, `deploy/federation.example.toml`), run from a
/// copy of `deploy/`: `dev token` first, then a node built from the same
/// configuration accepts the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_single_node_configuration_accepts_its_dev_token() {
    let root = tempfile::tempdir().unwrap();
    let deploy = root.path().join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for name in ["agency-node.toml", "federation.example.toml"] {
        std::fs::copy(shipped.join(name), deploy.join(name)).unwrap();
    }

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .current_dir(root.path())
        .args([
            "--config",
            "deploy/agency-node.toml",
            "dev",
            "token",
            "--role",
            "CASEWORKER",
        ])
        .env_remove("AGENCY_NODE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = stdout.trim().to_owned();

    // The same configuration, its relative paths taken from the copy's root
    // (as `serve` started there would), on free ports.
    let mut config = NodeConfig::load(Some(&deploy.join("agency-node.toml"))).unwrap();
    config.data_dir = root.path().join(&config.data_dir);
    config.federation = root.path().join(&config.federation);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.portal = None;
    let app = agency_node::Application::build(config)
        .await
        .expect("the shipped configuration starts once `dev token` made its key");
    let base = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let answer = exchange_test_kit::graphql::post(
        &reqwest::Client::new(),
        &base,
        Some(&token),
        Some("CASE_MANAGEMENT"),
        None,
        "query { agency { id } survivors(first: 1) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(answer.data()["agency"]["id"], OWNER);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

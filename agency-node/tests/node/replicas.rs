//! Two replicas of a node: two `agency-node serve` processes on one
//! PostgreSQL database and one key store answer as one under load (a
//! survivor registered through one is read through the other), the one
//! audit chain they both append to verifies afterwards with the shared
//! signing key, and a replica stopped by SIGTERM while requests are in
//! flight finishes them: every registration it answered has its audit
//! entry, and nothing is written for one it did not answer.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use exchange_schema::AuditKind;
use serde_json::{Value, json};

use crate::common::*;
use crate::lifecycle::{serve, terminate};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One registration through the replica on `port`: the new survivor's ID,
/// or `None` when the replica did not answer (it was stopping).
async fn register(client: &reqwest::Client, port: u16, token: &str, name: &str) -> Option<String> {
    let response = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(token)
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .json(&json!({
            "query": exchange_test_kit::survivors::REGISTER_SURVIVOR,
            "variables": { "input": full_survivor_input(name) },
        }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body: Value = response.json().await.ok()?;
    assert_eq!(status, 200, "{body}");
    Some(
        body["data"]["registerSurvivor"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
    )
}

async fn read_name(client: &reqwest::Client, port: u16, token: &str, id: &str) -> String {
    let answer = exchange_test_kit::graphql::post(
        client,
        &format!("http://127.0.0.1:{port}"),
        Some(token),
        Some("CASE_MANAGEMENT"),
        None,
        "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
        json!({ "id": id }),
    )
    .await;
    answer.data()["survivor"]["identity"]["givenName"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?}", answer.body))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_node_processes_on_one_postgresql_answer_as_one_and_their_log_verifies() {
    let keys = fresh_postgres_database().await;
    let keys_url = keys.url().to_owned();
    // The harness makes the federation, the databases' schemas, the
    // signing key and the KEK; then its own server stops, and two
    // processes take over its data directory and databases.
    let mut harness = TestNode::start_with(Backend::Postgres, |config| {
        config.vault.key_store_url = Some(agency_node::config::DatabaseUrl(keys_url.clone()));
    })
    .await;
    harness.stop().await;
    let token = harness.caseworker(OWNER);
    let ports = [free_port(), free_port()];
    let mut replicas = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let config = harness.data_dir.join(format!("replica-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "agency = \"{OWNER}\"\nfederation = \"{}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{}\"\ndatabase_url = \"{}\"\n[vault]\nkey_store_url = \"{}\"\n",
                harness.federation_path().display(),
                harness.data_dir.display(),
                harness.database_url,
                keys_url,
            ),
        )
        .unwrap();
        replicas.push(serve(&config, *port).await);
    }
    let client = reqwest::Client::new();

    // Load on both at once: registrations alternate between the replicas.
    let registered = futures::future::join_all((0..60).map(|i| {
        let (client, token) = (client.clone(), token.clone());
        let port = ports[i % 2];
        async move { register(&client, port, &token, &format!("Replica {i}")).await }
    }))
    .await;
    let registered: Vec<String> = registered
        .into_iter()
        .map(|id| id.expect("both replicas answer"))
        .collect();
    assert_eq!(registered.iter().collect::<HashSet<_>>().len(), 60);
    // Answer as one: each survivor reads the same through the other one
    // (its data keys, made by one replica, open on the other).
    for (i, id) in registered.iter().enumerate().take(6) {
        let other = ports[(i + 1) % 2];
        assert_eq!(
            read_name(&client, other, &token, id).await,
            format!("Replica {i}")
        );
    }

    // Replica 0 stops while registrations are in flight on it.
    let in_flight = {
        let (client, token) = (client.clone(), token.clone());
        let port = ports[0];
        tokio::spawn(async move {
            futures::future::join_all((0..150).map(|i| {
                let (client, token) = (client.clone(), token.clone());
                async move { register(&client, port, &token, &format!("Draining {i}")).await }
            }))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut replicas = replicas.into_iter();
    terminate(replicas.next().unwrap()).await;
    let answered: Vec<String> = in_flight.await.unwrap().into_iter().flatten().collect();
    assert!(
        !answered.is_empty(),
        "the stopping replica answered none in flight"
    );
    eprintln!(
        "registrations sent to the stopping replica: 150, answered: {}",
        answered.len()
    );
    // The other replica goes on serving.
    let after = register(&client, ports[1], &token, "After").await;
    assert!(after.is_some(), "the second replica still answers");
    terminate(replicas.next().unwrap()).await;

    // Every registration answered, by either replica, before or during
    // the drain, has its audit entry; none has two; there are no others.
    // (The harness's own pool closed with its server: a new one reads.)
    let db = agency_node::store::open(&harness.database_url, Duration::from_secs(5))
        .await
        .unwrap();
    let events = exchange_test_kit::events(&db).await;
    let logged: Vec<String> = events
        .iter()
        .filter(|e| e.kind == AuditKind::SurvivorRegistered)
        .filter_map(|e| e.survivor.as_ref().map(ToString::to_string))
        .collect();
    let unique: HashSet<&String> = logged.iter().collect();
    assert_eq!(unique.len(), logged.len(), "no registration logged twice");
    let expected: HashSet<&String> = registered
        .iter()
        .chain(&answered)
        .chain(after.iter())
        .collect();
    for id in &expected {
        assert!(
            unique.contains(id),
            "{id} was answered but has no audit entry"
        );
    }
    // The harness registered no one; every entry is an answered request.
    assert_eq!(
        unique.len(),
        expected.len(),
        "an entry for a request never answered"
    );

    // The one chain both replicas appended to verifies, with the key they
    // share pinned, and holds the checkpoints both signed on SIGTERM.
    let key = std::fs::read(
        harness
            .data_dir
            .join(exchange_audit::keys::SIGNING_KEY_FILE),
    )
    .unwrap();
    let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&key).unwrap();
    let public = hex::encode(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref());
    let out = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .args([
            "audit",
            "verify",
            "--database",
            &harness.database_url,
            "--public-key",
            &public,
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("checkpoint"), "{text}");
    drop(keys);
}

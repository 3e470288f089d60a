//! Backups that restore: a node on SQLite is backed up while it runs
//! (records and key store, apart), loses its databases, is restored from
//! the backup and started in place; its audit log verifies with its pinned
//! key, a survivor registered before the backup reads through the gateway
//! as before, and one registered after it is gone, as a restore point
//! says. Refusals: a backup never overwrites a file, and a node on
//! PostgreSQL is told to use pg_dump.

use exchange_audit::verify::{VerifyOptions, verify_database};
use exchange_test_kit::{LEGAL, SHELTER, TestFederation};
use serde_json::json;

const READ: &str = "query($id: ID!) { survivor(id: $id) { identity { givenName } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_its_online_backup_verifies_and_answers_through_the_gateway() {
    let mut fed = TestFederation::start().await;
    let kept = fed.register_survivor(SHELTER, "Before-Backup").await;
    fed.grant(&kept, LEGAL, &["IDENTITY"], &["LEGAL_ASSISTANCE"])
        .await;
    let lawyer = fed.caseworker(LEGAL);

    let backups = tempfile::tempdir().expect("backup dir");
    let (records, keys) = (
        backups.path().join("records.db"),
        backups.path().join("keys.db"),
    );
    {
        let node = fed.node(SHELTER);
        agency_node::backup::sqlite(&node.state.db, &node.state.vault, &records, &keys)
            .await
            .expect("online backup");
        // A backup never overwrites a file.
        let again =
            agency_node::backup::sqlite(&node.state.db, &node.state.vault, &records, &keys).await;
        assert!(
            matches!(again, Err(agency_node::backup::BackupError::Exists(_))),
            "{again:?}"
        );
    }
    let lost = fed.register_survivor(SHELTER, "After-Backup").await;
    fed.grant(&lost, LEGAL, &["IDENTITY"], &["LEGAL_ASSISTANCE"])
        .await;

    // The node stops and loses its databases; the KEK and the signing key
    // were kept elsewhere (here: left in place).
    fed.node_mut(SHELTER).stop().await;
    let data_dir = fed.node(SHELTER).data_dir.clone();
    for name in ["node.db", "keys.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{name}{suffix}")));
        }
    }
    std::fs::copy(&records, data_dir.join("node.db")).expect("restoring the records");
    std::fs::copy(&keys, data_dir.join("keys.db")).expect("restoring the key store");
    fed.restart_node_in_place(SHELTER).await;

    // The restored log verifies with the node's own key pinned.
    let node = fed.node(SHELTER);
    let report = verify_database(
        &node.state.db,
        &VerifyOptions {
            expected_key: Some(node.state.audit.public_key_hex()),
            ..VerifyOptions::default()
        },
    )
    .await
    .expect("the restored log verifies");
    assert!(report.checkpoints_verified >= 1, "{report:?}");

    let read = fed
        .gateway_gql(&lawyer, "LEGAL_ASSISTANCE", READ, json!({ "id": kept }))
        .await;
    assert_eq!(
        read.data()["survivor"]["identity"]["givenName"],
        "Before-Backup",
        "{}",
        read.body
    );
    let gone = fed
        .gateway_gql(&lawyer, "LEGAL_ASSISTANCE", READ, json!({ "id": lost }))
        .await;
    assert!(
        gone.body["data"]["survivor"].is_null(),
        "a survivor registered after the backup is not in it: {}",
        gone.body
    );
    assert!(
        !gone.body.to_string().contains("NODE_UNAVAILABLE"),
        "the restored node answered: {}",
        gone.body
    );
}

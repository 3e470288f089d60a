//! Backups of a node on PostgreSQL restore: `pg_dump` of the records
//! database and, apart, of the key store, restored with `pg_restore` into
//! new databases under a node started on them (the same key-encryption key
//! and signing key): the survivor reads as before and the log verifies with
//! the node's pinned key. `agency-node backup` refuses a PostgreSQL node,
//! naming pg_dump; on SQLite it copies while the node runs and never
//! overwrites a file.

use std::process::Command;

use serde_json::json;

use crate::common::*;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_pg_dump_reads_as_before_and_its_log_verifies() {
    let keys = fresh_postgres_database().await;
    let keys_url = keys.url().to_owned();
    let mut node = TestNode::start_with(Backend::Postgres, |config| {
        config.vault.key_store_url = Some(agency_node::config::DatabaseUrl(keys_url.clone()));
    })
    .await;
    let survivor = node.register_full_survivor("Dumped").await;
    let public_key = node.state.audit.public_key_hex();

    // `agency-node backup` is for SQLite: on PostgreSQL it says what to use.
    let config = node.command_config(
        "backup.toml",
        &format!("[vault]\nkey_store_url = \"{keys_url}\"\n"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (records_dump, keys_dump) = (
        dir.path().join("records.dump"),
        dir.path().join("keys.dump"),
    );
    let (ok, output) = node.cli(&[
        "--config",
        config.to_str().unwrap(),
        "backup",
        "--records",
        records_dump.to_str().unwrap(),
        "--keys",
        keys_dump.to_str().unwrap(),
    ]);
    assert!(!ok && output.contains("pg_dump"), "{output}");

    // The operator's backup: pg_dump of each database, while the node runs.
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--file",
            records_dump.to_str().unwrap(),
            &node.database_url,
        ],
    );
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--file",
            keys_dump.to_str().unwrap(),
            &keys_url,
        ],
    );
    node.stop().await;

    // Restored into new databases, under a node on the same data
    // directory (its KEK and signing key).
    let (records_restored, keys_restored) = (
        fresh_postgres_database().await,
        fresh_postgres_database().await,
    );
    for (dump, target) in [
        (&records_dump, &records_restored),
        (&keys_dump, &keys_restored),
    ] {
        run(
            "pg_restore",
            &[
                "--no-owner",
                "--dbname",
                target.url(),
                dump.to_str().unwrap(),
            ],
        );
    }
    let data_dir = node.data_dir.clone();
    let (records_url, keys_url) = (
        records_restored.url().to_owned(),
        keys_restored.url().to_owned(),
    );
    let restored = TestNode::start_with(Backend::Postgres, |config| {
        config.data_dir = data_dir;
        config.database_url = Some(agency_node::config::DatabaseUrl(records_url.clone()));
        config.vault.key_store_url = Some(agency_node::config::DatabaseUrl(keys_url.clone()));
    })
    .await;
    assert_eq!(restored.state.audit.public_key_hex(), public_key);
    let read = restored
        .gql(
            Some(&restored.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        read.data()["survivor"]["identity"]["givenName"],
        "Dumped",
        "{}",
        read.body
    );
    let (ok, output) = restored.cli(&[
        "audit",
        "verify",
        "--database",
        &records_url,
        "--public-key",
        &public_key,
    ]);
    assert!(ok, "{output}");
    drop((records_restored, keys_restored, keys));
}

/// The copy at `records` is a whole log: it verifies with `node`'s key.
fn assert_verifies(node: &TestNode, records: &std::path::Path) {
    let (ok, output) = node.cli(&[
        "audit",
        "verify",
        "--database",
        &format!("sqlite://{}", records.display()),
        "--public-key",
        &node.state.audit.public_key_hex(),
    ]);
    assert!(ok, "{output}");
}

/// `agency-node backup` of `node` into a new directory: the directory, the
/// records' copy's path, and the command's arguments.
fn backup_command(node: &TestNode) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let config = node.command_config("backup.toml", "");
    let dir = tempfile::tempdir().unwrap();
    let (records, keys) = (dir.path().join("records.db"), dir.path().join("keys.db"));
    let args = [
        "--config",
        config.to_str().unwrap(),
        "backup",
        "--records",
        records.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    (dir, records, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_command_copies_a_running_sqlite_node_and_never_overwrites() {
    let node = TestNode::start(Backend::Sqlite).await;
    node.register_full_survivor("Copied").await;
    let (dir, records, args) = backup_command(&node);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, output) = node.cli(&args);
    assert!(ok, "{output}");
    let keys = dir.path().join("keys.db");
    assert!(records.metadata().unwrap().len() > 0 && keys.metadata().unwrap().len() > 0);
    let (ok, output) = node.cli(&args);
    assert!(!ok && output.contains("exists already"), "{output}");
    assert_verifies(&node, &records);
}

/// The disk fills while the copy is written (a file-size limit on the
/// backup process, so its writes fail with EFBIG as on a full disk): the
/// command fails with a clear error and leaves no file at either backup
/// path, not even a partial one, so the retry, with room, succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_short_by_a_full_disk_leaves_nothing_and_can_be_retried() {
    let node = TestNode::start(Backend::Sqlite).await;
    node.register_full_survivor("Cut-Short").await;
    let (dir, records, args) = backup_command(&node);
    // 16 KiB: far less than the records' copy.
    let output = Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_agency-node"))
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("copying the records database failed"),
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a failed backup left {left:?}");

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, output) = node.cli(&args);
    assert!(ok, "{output}");
    assert_verifies(&node, &records);
}

//! Rotating a node's audit-signing key without breaking verification: with
//! the node stopped, `keys rotate-signing-key` has the old key sign a
//! checkpoint announcing the new one (a SIGNING_KEY_ROTATED entry); the
//! node restarted signs with the new key; `audit verify` with the old key
//! pinned follows the handover and verifies the whole log, while pinning
//! the new key alone fails at the first checkpoint (the old key's).

use aws_lc_rs::signature::KeyPair as _;
use exchange_audit::keys::SIGNING_KEY_FILE;
use exchange_schema::AuditKind;

use crate::common::*;

fn public_key(data_dir: &std::path::Path) -> String {
    let bytes = std::fs::read(data_dir.join(SIGNING_KEY_FILE)).unwrap();
    let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&bytes).unwrap();
    hex::encode(key.public_key().as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_announced_by_the_old_one_and_verification_follows() {
    let mut first = TestNode::start(Backend::Sqlite).await;
    first.register_full_survivor("Before").await;
    first.stop().await;
    let (data_dir, database_url) = (first.data_dir.clone(), first.database_url.clone());
    let old_key = public_key(&data_dir);

    let config = first.command_config("rotate.toml", "");
    let (ok, output) = first.cli(&[
        "--config",
        config.to_str().unwrap(),
        "keys",
        "rotate-signing-key",
    ]);
    assert!(ok, "{output}");
    let new_key = public_key(&data_dir);
    assert_ne!(new_key, old_key);
    assert!(
        output.contains(&new_key) && output.contains(&old_key),
        "{output}"
    );

    // The node restarted on the same data signs with the new key.
    let mut second = TestNode::start_with(Backend::Sqlite, |c| {
        c.data_dir = data_dir.clone();
        c.database_url = Some(agency_node::config::DatabaseUrl(database_url.clone()));
    })
    .await;
    assert_eq!(second.state.audit.public_key_hex(), new_key);
    second.register_full_survivor("After").await;
    let rotated = second
        .audit_events()
        .await
        .into_iter()
        .find(|e| e.kind == AuditKind::SigningKeyRotated)
        .expect("the rotation is an entry of the log");
    assert_eq!(rotated.subject.as_deref(), Some(new_key.as_str()));
    second.stop().await;

    let verify = |key: &str| {
        first.cli(&[
            "audit",
            "verify",
            "--database",
            &database_url,
            "--public-key",
            key,
        ])
    };
    let (ok, output) = verify(&old_key);
    assert!(ok, "{output}");
    assert!(
        output.contains(&format!("checkpoints after it verified with {new_key}")),
        "{output}"
    );
    let (ok, output) = verify(&new_key);
    assert!(
        !ok,
        "the new key did not sign the first checkpoints: {output}"
    );
}

on_both_backends!(a_replica_still_running_with_the_retired_key_writes_nothing_more);

/// The operator rotates the key while a replica still runs with the old
/// one (it holds the key in memory): that replica's next write sees the
/// handover and is refused (AUDIT_UNAVAILABLE, so it discloses nothing
/// unlogged), its `/readyz` probe fails from then on, and nothing it could
/// sign lands after the handover; a process started with the old key is
/// refused at start; a rotation cut short after its announcement is
/// finished by running it again, which announces nothing more; the log
/// verifies with the old key pinned.
async fn a_replica_still_running_with_the_retired_key_writes_nothing_more(backend: Backend) {
    let stale = TestNode::start(backend).await;
    let survivor = stale.register_full_survivor("Before").await;
    let (data_dir, database_url) = (stale.data_dir.clone(), stale.database_url.clone());
    let old_key = public_key(&data_dir);
    let config = stale.command_config("rotate.toml", "");
    let rotate = || {
        stale.cli(&[
            "--config",
            config.to_str().unwrap(),
            "keys",
            "rotate-signing-key",
        ])
    };
    let old_pkcs8 = std::fs::read(data_dir.join(SIGNING_KEY_FILE)).unwrap();
    let (ok, output) = rotate();
    assert!(ok, "{output}");
    let new_key = public_key(&data_dir);
    let entries = stale.count("audit_log").await;

    let owner = stale.caseworker(OWNER);
    let registered = stale
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            exchange_test_kit::survivors::REGISTER_SURVIVOR,
            serde_json::json!({ "input": full_survivor_input("After") }),
        )
        .await;
    assert_eq!(
        registered.code(),
        "AUDIT_UNAVAILABLE",
        "{:?}",
        registered.body
    );
    let read = stale
        .read_survivor(&owner, "CASE_MANAGEMENT", &survivor)
        .await;
    assert_eq!(read.code(), "AUDIT_UNAVAILABLE", "{:?}", read.body);
    assert!(
        !read.body["data"]["survivor"].is_object(),
        "{:?}",
        read.body
    );
    assert!(
        !stale.state.audit.probe().await,
        "the retired replica says ready"
    );
    assert_eq!(
        stale.count("audit_log").await,
        entries,
        "it wrote after the handover"
    );

    // A rotation cut short after its announcement leaves the old key in
    // place and the new one beside it: a process given the old key is
    // refused at start, and the rotation run again only moves the file.
    let new_pkcs8 = std::fs::read(data_dir.join(SIGNING_KEY_FILE)).unwrap();
    for (file, bytes) in [
        (SIGNING_KEY_FILE, &old_pkcs8),
        (exchange_audit::keys::NEXT_SIGNING_KEY_FILE, &new_pkcs8),
    ] {
        let _ = std::fs::remove_file(data_dir.join(file));
        exchange_trust::files::write_private(&data_dir.join(file), bytes).unwrap();
    }
    let db = exchange_service::db::Db::connect(&database_url)
        .await
        .unwrap();
    let old = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&old_pkcs8).unwrap();
    let refused = exchange_audit::AuditLog::open(
        db.clone(),
        std::sync::Arc::new(old),
        exchange_audit::AuditOptions::new(OWNER),
    )
    .await
    .err()
    .expect("a log opened with a retired key");
    assert!(refused.to_string().contains(&new_key), "{refused}");
    db.close().await;
    let (ok, output) = rotate();
    assert!(ok, "{output}");
    assert_eq!(public_key(&data_dir), new_key);
    let rotations = stale
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::SigningKeyRotated)
        .count();
    assert_eq!(rotations, 1, "the finished rotation was announced again");
    let (ok, output) = stale.cli(&[
        "audit",
        "verify",
        "--database",
        &database_url,
        "--public-key",
        &old_key,
    ]);
    assert!(ok, "{output}");
}

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

    let config = data_dir.join("rotate.toml");
    std::fs::write(
        &config,
        format!(
            "agency = \"{OWNER}\"\nfederation = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\n",
            first.federation_path().display(),
            data_dir.display(),
        ),
    )
    .unwrap();
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

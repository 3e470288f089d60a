//! Rotation of the key-encryption key with the real binary, on a node's
//! live key store: `agency-node keys status` counts the data keys each KEK
//! wraps, `keys rewrap` wraps every live one again under the new KEK while
//! the old one is listed as retired, after which the new KEK alone opens
//! the survivor's record and the old one alone opens nothing.

use agency_node::NodeConfig;
use agency_node::config::DatabaseUrl;
use exchange_schema::AgencyId;

use crate::common::{Backend, OWNER, TestNode, on_both_backends};

on_both_backends!(a_new_kek_takes_over_and_the_retired_one_can_be_destroyed);

fn private_file(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The node's configuration with this KEK and these retired ones.
fn config(node: &TestNode, kek: &std::path::Path, retired: &[&std::path::Path]) -> NodeConfig {
    let mut config = NodeConfig::new(
        AgencyId::parse(OWNER).unwrap(),
        node.federation_path(),
        &node.data_dir,
    );
    config.database_url = Some(DatabaseUrl(node.database_url.clone()));
    config.vault.kek_file = Some(kek.to_owned());
    config.vault.retired_kek_files = retired.iter().map(|p| p.to_path_buf()).collect();
    config
}

/// The same, as a file for the binary.
fn config_file(node: &TestNode, kek: &std::path::Path, retired: &[&std::path::Path]) -> String {
    let mut text = format!(
        "agency = \"{OWNER}\"\nfederation = {:?}\ndata_dir = {:?}\ndatabase_url = {:?}\n\
         [vault]\nkek_file = {:?}\nretired_kek_files = {:?}\n",
        node.federation_path().display().to_string(),
        node.data_dir.display().to_string(),
        node.database_url,
        kek.display().to_string(),
        retired
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    text.push('\n');
    let path = node.data_dir.join("rotation.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `(KEK role, live keys)` from `keys status` or `keys rewrap`.
fn census(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (_id, role, live) = (fields.next()?, fields.next()?, fields.next()?);
            let count = live.split(' ').next()?.parse().ok()?;
            Some((role.to_owned(), count))
        })
        .collect()
}

async fn reads_with(
    node: &TestNode,
    config: &NodeConfig,
    survivor: &str,
) -> Result<String, String> {
    let vault = agency_node::app::open_vault(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let read = agency_node::store::survivors::get(&mut conn, &vault, survivor).await;
    vault.close().await;
    match read {
        Ok(Some(record)) => Ok(record.identity.map(|i| i.given_name).unwrap_or_default()),
        Ok(None) => Err("not found".into()),
        Err(err) => Err(format!("{err:#}")),
    }
}

async fn a_new_kek_takes_over_and_the_retired_one_can_be_destroyed(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Rotated").await;
    let local = &survivor[OWNER.len() + 1..];
    let old = node.data_dir.join("old-kek");
    let current = node.data_dir.join(agency_node::vault::kek::KEK_FILE);
    private_file(&old, &std::fs::read(&current).unwrap());
    let new = node.data_dir.join("new-kek");
    private_file(&new, &[7u8; 32]);

    let file = config_file(&node, &new, &[&old]);
    let (ok, out) = node.cli(&["--config", &file, "keys", "status"]);
    assert!(ok, "{out}");
    assert_eq!(
        census(&out),
        vec![("current".to_owned(), 0), ("retired".to_owned(), 6)],
        "{out}"
    );
    let (ok, out) = node.cli(&["--config", &file, "keys", "rewrap"]);
    assert!(ok, "{out}");
    assert!(out.contains("wrapped 6 data keys again"), "{out}");
    assert_eq!(
        census(&out),
        vec![("current".to_owned(), 6), ("retired".to_owned(), 0)],
        "{out}"
    );

    // The retired KEK can go: the new one alone reads the record.
    assert_eq!(
        reads_with(&node, &config(&node, &new, &[]), local).await,
        Ok("Rotated".to_owned())
    );
    let old_only = reads_with(&node, &config(&node, &old, &[]), local).await;
    assert!(
        old_only
            .as_ref()
            .is_err_and(|e| e.contains("does not have")),
        "{old_only:?}"
    );
    // A retired KEK file that is missing stops the command with the reason.
    let missing = node.data_dir.join("no-such-kek");
    let file = config_file(&node, &new, &[&missing]);
    let (ok, out) = node.cli(&["--config", &file, "keys", "status"]);
    assert!(!ok);
    assert!(out.contains("no key-encryption key at"), "{out}");
}

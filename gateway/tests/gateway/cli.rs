//! `exchange-gateway` as a process: its configuration is the file and then
//! `EXCHANGE_GATEWAY__*` environment variables, which override the file; a
//! configuration that does not check out stops it with status 2 and a
//! message naming the field, before anything listens.

use std::process::Command;

/// A copy of the reference configuration (`deploy/gateway.toml`) in `dir`.
fn reference_config(dir: &std::path::Path) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("deploy/gateway.toml")).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn gateway(config: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exchange-gateway"));
    command.arg("--config").arg(config);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("exchange-gateway runs")
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = reference_config(dir.path());
    // Each variable alone makes the (valid) reference file invalid: proof
    // that the variable, nested with `__`, overrides the file.
    for (name, value, field) in [
        (
            "EXCHANGE_GATEWAY__NODES__TIMEOUT_MS",
            "1",
            "nodes.timeout_ms",
        ),
        (
            "EXCHANGE_GATEWAY__NODES__MAX_IN_FLIGHT_PER_NODE",
            "0",
            "nodes.max_in_flight_per_node",
        ),
        ("EXCHANGE_GATEWAY__LOG_FORMAT", "xml", "log_format"),
        (
            "EXCHANGE_GATEWAY__DATABASE_URL",
            "mysql://gateway:s3cret@db/audit",
            "database_url",
        ),
    ] {
        let out = gateway(&config, &[(name, value)]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        // A typed field (the log format) is refused as the file and the
        // environment are read; the others by the checks after it.
        assert!(
            (err.starts_with("error: invalid configuration: ")
                || err.starts_with("error: reading configuration: "))
                && err.contains(field),
            "{name}: {err}"
        );
        assert!(!err.contains("s3cret"), "{name}: {err}");
    }
}

#[test]
fn an_unknown_field_stops_the_gateway_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = reference_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replacen("[nodes]", "[nodes]\ntimeout_secs = 5", 1);
    std::fs::write(&config, text).unwrap();
    let out = gateway(&config, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timeout_secs"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `exchange-gateway keys rotate-signing-key` rotates the key of the
/// gateway's own audit log as a node's is rotated: the old key announces
/// the new one at a SIGNING_KEY_ROTATED entry, the new key is put in
/// place, and the log verifies with the old key pinned; a gateway still
/// running with the old key writes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_signing_key_rotates_and_its_log_verifies_across_the_handover() {
    use exchange_audit::keys::{load_or_generate_signing_key, public_key_hex};
    use exchange_schema::{AuditEvent, AuditKind, Decision};

    let dir = tempfile::tempdir().unwrap();
    let config = reference_config(dir.path());
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("gateway.db").display()
    );
    let db = exchange_service::db::Db::connect(&url).await.unwrap();
    db.migrate(&exchange_audit::MIGRATIONS).await.unwrap();
    let running = exchange_audit::AuditLog::open(
        db.clone(),
        std::sync::Arc::new(load_or_generate_signing_key(&data_dir).unwrap()),
        exchange_audit::AuditOptions::new(exchange_gateway::app::AUDIT_LOG_ID),
    )
    .await
    .unwrap();
    let event = || AuditEvent::new(AuditKind::Disclosure, Decision::Permit, "FEDERATED");
    running.append(event()).await.unwrap();
    let old_key = public_key_hex(&data_dir).unwrap();

    let env = [
        ("EXCHANGE_GATEWAY__DATA_DIR", data_dir.to_str().unwrap()),
        ("EXCHANGE_GATEWAY__DATABASE_URL", url.as_str()),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_exchange-gateway"));
    command
        .arg("--config")
        .arg(&config)
        .args(["keys", "rotate-signing-key"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = public_key_hex(&data_dir).unwrap();
    assert_ne!(new_key, old_key);
    assert!(said.contains(&old_key) && said.contains(&new_key), "{said}");

    // The gateway process that kept running with the old key.
    assert!(running.append(event()).await.is_err());
    drop(running);
    let rotated = exchange_audit::AuditLog::open(
        db.clone(),
        std::sync::Arc::new(load_or_generate_signing_key(&data_dir).unwrap()),
        exchange_audit::AuditOptions::new(exchange_gateway::app::AUDIT_LOG_ID),
    )
    .await
    .unwrap();
    rotated.append(event()).await.unwrap();
    let verified = exchange_audit::verify::verify_database(
        &db,
        &exchange_audit::verify::VerifyOptions {
            expected_key: Some(old_key.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(verified.last_seq, 3);
    let pinned_new = exchange_audit::verify::verify_database(
        &db,
        &exchange_audit::verify::VerifyOptions {
            expected_key: Some(new_key),
            ..Default::default()
        },
    )
    .await;
    assert!(
        pinned_new.is_err(),
        "the new key signed the first checkpoints"
    );
}

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

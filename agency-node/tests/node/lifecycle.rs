//! The node as a process: `--help` documents every subcommand, SIGTERM stops
//! it cleanly after signing a final checkpoint, and a second start reuses
//! its data and key.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

#[test]
fn help_documents_every_subcommand() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agency-node"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = run(&["--help"]);
    for sub in ["serve", "audit", "schema", "dev"] {
        assert!(top.contains(sub), "--help lists {sub}");
    }
    assert!(run(&["audit", "--help"]).contains("verify"));
    assert!(run(&["audit", "verify", "--help"]).contains("--public-key"));
    assert!(run(&["dev", "token", "--help"]).contains("--role"));
}

/// `AGENCY_NODE__*` environment variables override the configuration file
/// (nested sections with `__`): each one below makes the valid reference
/// file invalid, and the node refuses to start naming the field.
#[test]
fn environment_variables_override_the_file() {
    let reference =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agency-node.toml");
    for (name, value, field) in [
        ("AGENCY_NODE__MAX_BODY_BYTES", "1", "max_body_bytes"),
        (
            "AGENCY_NODE__BREAK_GLASS__WINDOW_MINUTES",
            "100000",
            "break_glass.window_minutes",
        ),
        ("AGENCY_NODE__AGENCY", "Not An Agency", "agency"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_agency-node"))
            .args(["--config", reference.to_str().unwrap(), "serve"])
            .env(name, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        // A typed field (the agency ID) is refused as the file and the
        // environment are read; the others by the checks after it.
        assert!(
            (err.contains("invalid configuration") || err.contains("reading configuration"))
                && err.contains(field),
            "{name}: {err}"
        );
    }
}

/// `agency-node schema | head`: a reader that stops early ends the output
/// quietly; the command does not panic on the closed pipe.
#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .arg("schema")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Starts `agency-node serve` with `config` and waits until `port` is ready.
pub(crate) async fn serve(config: &std::path::Path, port: u16) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("node did not become ready");
}

/// One unauthenticated request: one audit entry.
async fn knock(port: u16) {
    let denied = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\":\"{ agency { id } }\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
}

/// Sends SIGTERM and waits (at most 10 s) for a clean exit.
pub(crate) async fn terminate(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("node did not stop within 10 s of SIGTERM")
}

/// A node started as a process stops on SIGTERM with exit status 0 after
/// signing a final checkpoint; a second start on the same configuration
/// reuses its database and its signing key, so the log of both runs
/// verifies as one with the first run's key pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_node_cleanly_and_a_second_start_reuses_its_data_and_key() {
    // Borrow a test federation and data directory from the harness.
    let mut harness = TestNode::start(Backend::Sqlite).await;
    harness.stop().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = harness.data_dir.join("process");
    let config = harness.data_dir.join("process.toml");
    std::fs::write(
        &config,
        format!(
            "agency = \"{OWNER}\"\nfederation = \"{}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            harness.federation_path().display(),
            data_dir.display()
        ),
    )
    .unwrap();
    let key_file = data_dir.join(exchange_audit::keys::SIGNING_KEY_FILE);

    let first = serve(&config, port).await;
    knock(port).await;
    terminate(first).await;
    let key_bytes = std::fs::read(&key_file).unwrap();
    let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&key_bytes).unwrap();
    let public = hex::encode(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref());
    let verify = || {
        let out = Command::new(env!("CARGO_BIN_EXE_agency-node"))
            .args([
                "audit",
                "verify",
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--public-key",
                &public,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    let text = verify();
    assert!(
        text.contains("checkpoint"),
        "a final checkpoint was signed on shutdown: {text}"
    );

    let second = serve(&config, port).await;
    knock(port).await;
    terminate(second).await;
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key_bytes,
        "the second start kept the signing key"
    );
    verify();
    let db = agency_node::store::Db::connect(&agency_node::store::sqlite_url(&data_dir))
        .await
        .unwrap();
    let entries = audit_entry_count(&db).await;
    db.close().await;
    assert_eq!(entries, 2, "one log across both runs");
}

async fn audit_entry_count(db: &agency_node::store::Db) -> i64 {
    use sqlx::Row as _;
    sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>("n")
}

/// A database whose node migration was applied with other contents (as one
/// created before the audit log had migrations of its own) is refused at
/// start, saying which migration set differs and what to do; the node's
/// records and log in it are left as they were.
#[tokio::test]
async fn a_database_of_an_incompatible_layout_is_refused_at_start() {
    let mut node = TestNode::start(Backend::Sqlite).await;
    node.register_full_survivor("Layout").await;
    node.stop().await;
    let db = agency_node::store::Db::connect(&node.database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 1")
        .execute(db.pool())
        .await
        .unwrap();
    let entries = audit_entry_count(&db).await;
    db.close().await;

    let config = agency_node::NodeConfig::new(
        exchange_schema::AgencyId::parse(OWNER).unwrap(),
        node.federation_path(),
        &node.data_dir,
    );
    let err = match agency_node::Application::build(config).await {
        Ok(_) => panic!("a node started on a database of another layout"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("created by an earlier, incompatible layout")
            && err.contains("node records migration 1"),
        "{err}"
    );
    let db = agency_node::store::Db::connect(&node.database_url)
        .await
        .unwrap();
    assert_eq!(audit_entry_count(&db).await, entries, "nothing was written");
}

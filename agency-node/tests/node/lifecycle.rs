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

/// A node started as a process stops on SIGTERM with exit status 0, and its
/// log verifies afterwards with its own key pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_node_cleanly() {
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            ready = r.status().is_success();
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "node became ready");
    // One unauthenticated request leaves one audit entry to checkpoint.
    let denied = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\":\"{ agency { id } }\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("node did not stop within 10 s of SIGTERM")
    });
    assert!(exited.success(), "exit status {exited:?}");

    let key = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(
        &std::fs::read(data_dir.join(agency_node::app::NODE_KEY_FILE)).unwrap(),
    )
    .unwrap();
    let public = hex::encode(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref());
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
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("checkpoint"),
        "a final checkpoint was signed on shutdown: {text}"
    );
}

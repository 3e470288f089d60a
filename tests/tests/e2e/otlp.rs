//! One trace from the client through the gateway to every node, as an
//! operator's tracing backend receives it: the gateway and three nodes run
//! as processes of their own (`exchange-gateway`, `agency-node serve`), each
//! exporting its spans over OTLP/HTTP to one receiver the test starts. A
//! query the gateway scatters to every node, sent with the client's
//! `traceparent`, arrives as one trace: the gateway's `graphql.operation`
//! under the client's span, a `node.call` per node under it, and each
//! node's `graphql.request` under its `node.call`, each under its own
//! service name.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use exchange_schema::Role;
use exchange_test_kit::otlp::{OtlpReceiver, exporter_env};
use exchange_test_kit::{AUDIENCE, NODE_AGENCIES, SHELTER, agencies::mint, specs};
use serde_json::json;

/// A program of the workspace, built beside this test binary (`cargo test
/// --workspace`, as `scripts/test.sh` runs it, builds every program before
/// any test runs).
fn program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the suites with `cargo test --workspace` (scripts/test.sh), \
         or `cargo build -p agency-node -p exchange-gateway` first",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `program` with `args`, exporting to `endpoint`; its output goes
/// to `log`. Killed when dropped.
fn spawn(program: &Path, args: &[&str], endpoint: &str, log: &Path) -> tokio::process::Child {
    let out = std::fs::File::create(log).expect("log file");
    tokio::process::Command::new(program)
        .args(args)
        .envs(exporter_env(endpoint))
        .stdout(Stdio::null())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("the program starts")
}

/// Waits until `base/readyz` answers 200; fails with the program's log.
async fn ready(client: &reqwest::Client, base: &str, log: &Path) {
    for _ in 0..150 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{base} never became ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_reaches_the_receiver_from_the_gateway_process_and_every_node_process() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let receiver = OtlpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let node_ports: Vec<(&str, u16)> = NODE_AGENCIES.iter().map(|a| (*a, free_port())).collect();
    let url_of = |agency: &str| {
        node_ports
            .iter()
            .find(|(a, _)| *a == agency)
            .map(|(_, port)| format!("http://127.0.0.1:{port}"))
    };
    let dev = exchange_trust::DevFederation::create_with_issuers(
        root,
        &specs(&url_of, false),
        AUDIENCE,
        None,
    )
    .expect("a development federation");
    let client = reqwest::Client::new();

    let node = program("agency-node");
    let mut children = Vec::new();
    for (agency, port) in &node_ports {
        let config = root.join(format!("{agency}.toml"));
        std::fs::write(
            &config,
            format!(
                "agency = \"{agency}\"\nfederation = {:?}\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n",
                dev.path.display().to_string(),
                root.join(agency).display().to_string(),
            ),
        )
        .unwrap();
        let log = root.join(format!("{agency}.log"));
        children.push(spawn(
            &node,
            &["--config", config.to_str().unwrap(), "serve"],
            &receiver.endpoint,
            &log,
        ));
        ready(&client, &format!("http://127.0.0.1:{port}"), &log).await;
    }
    let gateway_port = free_port();
    let gateway_config = root.join("gateway.toml");
    std::fs::write(
        &gateway_config,
        format!(
            "listen = \"127.0.0.1:{gateway_port}\"\ndata_dir = {:?}\nfederation = {:?}\n",
            root.join("gateway").display().to_string(),
            dev.path.display().to_string(),
        ),
    )
    .unwrap();
    let gateway_log = root.join("gateway.log");
    children.push(spawn(
        &program("exchange-gateway"),
        &["--config", gateway_config.to_str().unwrap()],
        &receiver.endpoint,
        &gateway_log,
    ));
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    ready(&client, &gateway, &gateway_log).await;

    // The client's span: the whole operation is in its trace.
    let (trace_id, client_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let answer: serde_json::Value = client
        .post(format!("{gateway}/graphql"))
        .bearer_auth(mint(&dev, SHELTER, &[Role::Caseworker], AUDIENCE))
        .header("x-exchange-purpose", "REFERRAL")
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&json!({ "query": "{ referrals(direction: INCOMING, first: 5) { edges { node { id } } } }" }))
        .send()
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("JSON");
    assert!(answer.get("errors").is_none(), "{answer}");

    let spans = receiver
        .wait_until(
            "a graphql.request span from every node in the trace",
            |spans| {
                spans
                    .iter()
                    .filter(|s| s.trace_id() == trace_id && s.name() == "graphql.request")
                    .count()
                    >= NODE_AGENCIES.len()
            },
        )
        .await;
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id() == trace_id).collect();
    let operation = in_trace
        .iter()
        .find(|s| s.name() == "graphql.operation")
        .unwrap_or_else(|| panic!("no graphql.operation in the trace: {in_trace:?}"));
    assert_eq!(operation.service, "exchange-gateway");
    assert_eq!(operation.parent_span_id(), client_span, "{operation:?}");
    let calls: Vec<_> = in_trace
        .iter()
        .filter(|s| s.name() == "node.call")
        .collect();
    assert_eq!(calls.len(), NODE_AGENCIES.len(), "{calls:?}");
    let requests: Vec<_> = in_trace
        .iter()
        .filter(|s| s.name() == "graphql.request")
        .collect();
    assert_eq!(requests.len(), NODE_AGENCIES.len(), "{requests:?}");
    for request in &requests {
        assert_eq!(request.service, "agency-node");
        let parent = calls
            .iter()
            .find(|c| c.span_id() == request.parent_span_id())
            .unwrap_or_else(|| panic!("a node's span is under no node.call: {request:?}"));
        assert_eq!(parent.service, "exchange-gateway");
        assert!(
            in_trace
                .iter()
                .any(|s| s.span_id() == parent.parent_span_id()),
            "a node.call outside the operation: {parent:?}"
        );
    }
    drop(children);
}

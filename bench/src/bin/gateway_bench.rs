//! `gateway-bench`: measures the gateway on loopback and prints figures (no
//! assertion, no pass/fail: these machines are shared and noisy, so compare
//! ratios measured in one run).
//!
//! ```sh
//! cargo run --release -p exchange-bench --bin gateway-bench
//! ```
//!
//! It starts eight agency nodes in this process (plain HTTP on loopback, to
//! measure the gateway rather than TLS) and each gateway in a child process
//! of its own (this binary, `serve-gateway`), so the gateway's resident
//! memory is its own. It prints:
//!
//! 1. the same routed read straight to a node and through the gateway:
//!    latency p50/p99 one request at a time, and throughput with 16
//!    concurrent clients; the added latency and the throughput ratio (goals:
//!    at most 0.3 ms added at p50, at least 0.7 of direct throughput). Two
//!    reads: (1) `{ agency { id name kind } }`, which the node answers from
//!    memory without an audit entry, so the gateway's own durable audit
//!    write is all extra; (1') one survivor record, which the node
//!    discloses and audits durably before answering, as every read of
//!    survivor data. Each measured twice: (a) with the gateway, the nodes
//!    and the client sharing every core, and (b) with the gateway pinned to
//!    a core of its own and the nodes and the client to the others, as when
//!    the gateway runs on its own machine (b needs two cores or more);
//! 2. a scattered query (`referrals`) over 1, 2, 4 and 8 nodes, each of
//!    which holds four referrals concerning the caller's agency: p50 and
//!    its ratio to one node (goal: at most 1.3x at 8);
//!
//!    2'. the floor of this machine for the same fan-out: a child process
//!    (`serve-fan-out`) that sends each request's body to k servers at once
//!    and returns their answers side by side, over servers in this process
//!    that answer at once with the bytes node 0 gives the query. None of the
//!    exchange's work (token, parse, plan, audit, merge) is done, so its
//!    ratio at 8 is the best any HTTP fan-out reaches on this machine; and
//!    one of those servers asked straight, for what a bare hop adds. These
//!    targets take turns with the scatter gateways;
//! 3. the gateway's VmRSS (and peak VmHWM) under 50 concurrent clients
//!    (goal: at most 40 MB).
//!
//! Whatever is compared takes turns: direct and gateway requests alternate
//! one by one (and throughput rounds alternate), and the four scatter
//! gateways run at once and alternate likewise, so that a change in the
//! machine's load during the run affects both sides of each ratio alike.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use exchange_gateway::config::NodesConfig;
use exchange_gateway::{Application, GatewayConfig};
use exchange_schema::{AgencyId, AgencyKind, Role, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation, MintRequest};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use serde_json::json;

/// The allocator the shipped binaries use (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AUDIENCE: &str = "survivor-exchange-bench";
const NODES: usize = 8;
/// How many nodes the scattered query is sent to, in turn.
const SCATTER_WIDTHS: [usize; 4] = [1, 2, 4, 8];
const LATENCY_REQUESTS: usize = 2_000;
const THROUGHPUT_REQUESTS: usize = 4_000;
const THROUGHPUT_CLIENTS: usize = 16;
/// Alternating rounds over which throughput is measured.
const THROUGHPUT_ROUNDS: usize = 4;
/// Sequential requests over which CPU time per request is measured.
const CPU_REQUESTS: usize = 500;
const MEMORY_CLIENTS: usize = 50;
const MEMORY_REQUESTS_PER_CLIENT: usize = 60;
/// A routed read the node answers without touching its database.
const ROUTED_DIRECTORY_READ: &str = "{ agency { id name kind } }";
/// A routed read of one survivor record, disclosed and audited at the node.
const ROUTED_RECORD_READ: &str = "query($id: ID!) { survivor(id: $id) { id owner identity { givenName } case { riskLevel needs } } }";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve-gateway") {
        let config = args
            .get(2)
            .context("serve-gateway <config.toml> [CPU,...]")?;
        // Pinned before the runtime starts, so that it sizes its worker
        // pool to the CPUs it has, as on a machine of that size.
        if let Some(cpus) = args.get(3) {
            let cpus = cpus
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<usize>, _>>()?;
            pin_this_process(&cpus)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(serve_gateway(Path::new(config)));
    }
    if args.get(1).map(String::as_str) == Some("serve-fan-out") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(serve_fan_out(args[2..].to_vec()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

/// Child mode: runs one gateway until standard input closes.
async fn serve_gateway(config: &Path) -> anyhow::Result<()> {
    let _telemetry = exchange_gateway::telemetry::init(
        exchange_service::config::LogFormat::Json,
        "exchange-gateway-bench",
    )?;
    let app = Application::build(GatewayConfig::load(Some(config))?).await?;
    println!("LISTENING {}", app.address());
    std::io::stdout().flush()?;
    app.run(stdin_closed()).await
}

/// Child mode: the floor of a fan-out over HTTP, with none of the
/// exchange's work. Each `POST /graphql` sends its body to every URL given,
/// at once, with an HTTP client set up as the gateway's node client, waits
/// for every answer and returns them side by side in a JSON array: no
/// token, no parse, no plan, no audit, no merge. Runs until standard input
/// closes.
async fn serve_fan_out(urls: Vec<String>) -> anyhow::Result<()> {
    use axum::body::Bytes;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(NodesConfig::default().pool_max_idle_per_node)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    let urls: Arc<[String]> = urls.into();
    let fan_out = move |body: Bytes| {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            let answers = futures::future::join_all(urls.iter().map(|url| {
                let request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                async move { request.send().await?.error_for_status()?.bytes().await }
            }))
            .await;
            let mut out = b"[".to_vec();
            for (i, answer) in answers.into_iter().enumerate() {
                match answer {
                    Ok(bytes) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&bytes);
                    }
                    Err(_) => return Err(axum::http::StatusCode::BAD_GATEWAY),
                }
            }
            out.push(b']');
            Ok(out)
        }
    };
    let router = axum::Router::new().route("/graphql", axum::routing::post(fan_out));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, router)
        .with_graceful_shutdown(stdin_closed())
        .await?;
    Ok(())
}

/// Resolves when standard input closes (the bench's signal to a child to
/// stop).
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// A server that answers every `POST /graphql` with `answer`, as it is:
/// the nodes of the fan-out floor.
async fn serve_fixed_answer(answer: axum::body::Bytes) -> anyhow::Result<String> {
    use axum::body::Bytes;
    let router = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |_body: Bytes| {
            let answer = answer.clone();
            async move { ([("content-type", "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

fn agency_name(i: usize) -> String {
    format!("agency-{i:02}")
}

fn specs(urls: &[Option<String>]) -> Vec<AgencySpec> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| AgencySpec {
            id: AgencyId::parse(&agency_name(i)).expect("valid"),
            name: format!("Bench agency {i}"),
            kind: if i % 2 == 0 {
                AgencyKind::Shelter
            } else {
                AgencyKind::LegalAid
            },
            services: vec![ServiceKind::Shelter],
            languages: vec!["en".into()],
            region: "Bench".into(),
            node_url: url.clone(),
            tls_identity: None,
        })
        .collect()
}

/// A server in a child process of its own (this binary): a gateway, or the
/// fan-out floor.
struct ChildServer {
    child: Child,
    base: String,
}

impl ChildServer {
    /// Starts a gateway named `name` (its own data directory: two
    /// processes never share an audit log) over the first `k` nodes, on
    /// `cpus` only when given.
    fn start(
        root: &Path,
        name: &str,
        keys: &Path,
        node_urls: &[String],
        k: usize,
        cpus: Option<&[usize]>,
    ) -> anyhow::Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("keys"))?;
        for entry in std::fs::read_dir(keys)? {
            let entry = entry?;
            let target = dir.join("keys").join(entry.file_name());
            if !target.exists() {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        let urls: Vec<Option<String>> = (0..NODES)
            .map(|i| (i < k).then(|| node_urls[i].clone()))
            .collect();
        let federation = DevFederation::create(&dir, &specs(&urls), AUDIENCE)?;
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nfederation = \"{}\"\nlog_format = \"json\"\n",
                dir.join("data").display(),
                federation.path.display()
            ),
        )?;
        let mut args = vec!["serve-gateway".to_owned(), config.display().to_string()];
        if let Some(cpus) = cpus {
            args.push(
                cpus.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        Self::spawn(name, &args)
    }

    /// Starts the fan-out floor (`serve-fan-out`) over `urls`.
    fn start_fan_out(name: &str, urls: &[String]) -> anyhow::Result<Self> {
        let mut args = vec!["serve-fan-out".to_owned()];
        args.extend(urls.iter().cloned());
        Self::spawn(name, &args)
    }

    /// Runs this binary with `args` and waits for the `LISTENING` line.
    fn spawn(name: &str, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // The gateway logs (warnings and errors) to its standard output:
        // pass them on to ours, on standard error, rather than lose them.
        let label = name.to_owned();
        std::thread::spawn(move || {
            for log in reader.lines().map_while(Result::ok) {
                eprintln!("{label}: {log}");
            }
        });
        let address = line
            .trim()
            .strip_prefix("LISTENING ")
            .with_context(|| format!("unexpected output of {name}: {line:?}"))?;
        Ok(Self {
            base: format!("http://{address}"),
            child,
        })
    }

    /// CPU time the gateway process has used so far (user + system).
    fn cpu(&self) -> Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

struct Target {
    client: reqwest::Client,
    url: String,
    token: String,
    purpose: &'static str,
    body: Vec<u8>,
}

impl Target {
    /// One request, timed.
    async fn once(&self) -> anyhow::Result<Duration> {
        self.answer().await.map(|(elapsed, _)| elapsed)
    }

    /// One request: how long it took and the answer, or an error when the
    /// status is not a success or the answer carries `errors`.
    async fn answer(&self) -> anyhow::Result<(Duration, axum::body::Bytes)> {
        let started = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("x-exchange-purpose", self.purpose)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let elapsed = started.elapsed();
        if !status.is_success() || bytes.windows(8).any(|w| w == b"\"errors\"") {
            anyhow::bail!(
                "request failed ({status}): {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((elapsed, bytes))
    }

    /// Runs `total` requests with `clients` concurrent clients; how many
    /// were sent and how long they took.
    async fn burst(
        self: &Arc<Self>,
        clients: usize,
        total: usize,
    ) -> anyhow::Result<(usize, Duration)> {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let target = self.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..total / clients {
                    target.once().await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok((total / clients * clients, started.elapsed()))
    }

    /// Requests per second with `clients` concurrent clients.
    async fn throughput(self: &Arc<Self>, clients: usize, total: usize) -> anyhow::Result<f64> {
        let (sent, took) = self.burst(clients, total).await?;
        Ok(sent as f64 / took.as_secs_f64())
    }
}

/// Sequential latencies of several targets, one request to each in turn
/// (after a warm-up), each list sorted. Taking turns gives every target the
/// same moments of a shared, noisy machine, so their ratios compare like
/// with like; the order rotates so that no target always follows the same
/// one.
async fn interleaved_latencies(
    targets: &[&Target],
    n: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    for _ in 0..n / 10 {
        for target in targets {
            target.once().await?;
        }
    }
    let mut out = vec![Vec::with_capacity(n); targets.len()];
    for i in 0..n {
        for j in 0..targets.len() {
            let k = (i + j) % targets.len();
            out[k].push(targets[k].once().await?);
        }
    }
    for latencies in &mut out {
        latencies.sort_unstable();
    }
    Ok(out)
}

/// Requests per second of several targets with `clients` concurrent
/// clients, measured in `THROUGHPUT_ROUNDS` alternating rounds (each target
/// in turn) for the same reason as [`interleaved_latencies`].
async fn interleaved_throughput(
    targets: &[&Arc<Target>],
    clients: usize,
    total: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut sent = vec![0usize; targets.len()];
    let mut took = vec![Duration::ZERO; targets.len()];
    for _ in 0..THROUGHPUT_ROUNDS {
        for (k, target) in targets.iter().enumerate() {
            let (n, t) = target.burst(clients, total / THROUGHPUT_ROUNDS).await?;
            sent[k] += n;
            took[k] += t;
        }
    }
    Ok(sent
        .iter()
        .zip(&took)
        .map(|(n, t)| *n as f64 / t.as_secs_f64())
        .collect())
}

/// CPU time per request, in microseconds, of `CPU_REQUESTS` sequential
/// requests to `target`: the gateway's (when given) and this process's
/// (the nodes' and the client's).
async fn cpu_per_request(
    target: &Target,
    gateway: Option<&ChildServer>,
) -> anyhow::Result<(f64, f64)> {
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / CPU_REQUESTS as f64;
    let gateway_before = gateway.map(ChildServer::cpu).unwrap_or_default();
    let here_before = process_cpu("/proc/self/stat");
    for _ in 0..CPU_REQUESTS {
        target.once().await?;
    }
    let gateway_cpu = gateway
        .map(|g| g.cpu().saturating_sub(gateway_before))
        .unwrap_or_default();
    let here_cpu = process_cpu("/proc/self/stat").saturating_sub(here_before);
    Ok((per_request(gateway_cpu), per_request(here_cpu)))
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn bench() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = tempfile::tempdir()?;
    let none: Vec<Option<String>> = vec![None; NODES];
    let dev = DevFederation::create(root.path(), &specs(&none), AUDIENCE)?;
    let mut node_urls = Vec::new();
    let mut shutdowns = Vec::new();
    for i in 0..NODES {
        let agency = agency_name(i);
        let config: agency_node::NodeConfig = toml::from_str(&format!(
            "agency = \"{agency}\"\nfederation = \"{}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n",
            dev.path.display(),
            root.path().join(&agency).display()
        ))?;
        let app = agency_node::Application::build(config).await?;
        node_urls.push(format!("http://{}", app.address()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdowns.push(tx);
        tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
    }
    let token = |i: usize, role: Role| {
        let agency = AgencyId::parse(&agency_name(i)).expect("valid");
        let mut request = MintRequest::new(agency.clone(), "bench-user", vec![role], AUDIENCE);
        request.ttl = Duration::from_secs(3600);
        dev.provider(&agency).expect("provider").mint(&request)
    };
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()?;
    let body = |query: &str| serde_json::to_vec(&json!({ "query": query })).expect("JSON");
    let caseworker = token(0, Role::Caseworker)?;
    let all_cpus = allowed_cpus()?;

    println!(
        "gateway-bench: loopback, {} cores, release build expected",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();

    // 1. Direct versus through the gateway, for two routed reads: one the
    // node answers from memory without an audit entry, and one survivor
    // record, which the node discloses and audits durably before it
    // answers, as every read of survivor data.
    let gateway = ChildServer::start(
        root.path(),
        "gateway-routed",
        &root.path().join("keys"),
        &node_urls,
        NODES,
        None,
    )?;
    // The gateway on a core of its own, as when it runs on its own machine:
    // the nodes and the client share the other cores, for the direct and
    // the gateway runs alike.
    let own_core = match all_cpus.split_last() {
        Some((gateway_cpu, rest)) if !rest.is_empty() => Some((
            ChildServer::start(
                root.path(),
                "gateway-routed-own-core",
                &root.path().join("keys"),
                &node_urls,
                NODES,
                Some(&[*gateway_cpu]),
            )?,
            *gateway_cpu,
            rest.to_vec(),
        )),
        _ => None,
    };
    let survivor = register_survivor(&client, &node_urls[0], &caseworker).await?;
    let reads = [
        (
            "1",
            "the node's own agency, `{ agency { id name kind } }`: answered from memory, no audit entry at the node",
            body(ROUTED_DIRECTORY_READ),
        ),
        (
            "1'",
            "one survivor record, `survivor(id) { id owner identity { givenName } case { riskLevel needs } }`: the node discloses it and writes its audit entry durably before answering",
            serde_json::to_vec(&json!({
                "query": ROUTED_RECORD_READ,
                "variables": { "id": survivor },
            }))?,
        ),
    ];
    for (number, what, request) in reads {
        // The routed read sent to the server at `base`.
        let routed_at = |base: &str| {
            Arc::new(Target {
                client: client.clone(),
                url: format!("{base}/graphql"),
                token: caseworker.clone(),
                purpose: "CASE_MANAGEMENT",
                body: request.clone(),
            })
        };
        let direct = routed_at(&node_urls[0]);
        println!(
            "{number}. routed read of {what} ({LATENCY_REQUESTS} sequential requests each, direct and via the gateway taking turns; {THROUGHPUT_CLIENTS} clients for throughput, {THROUGHPUT_ROUNDS} alternating rounds)"
        );
        println!(
            "   a. shared cores: gateway, nodes and client on all {cpus} cores",
            cpus = all_cpus.len()
        );
        routed_figures(&direct, &routed_at(&gateway.base), &gateway).await?;
        match &own_core {
            Some((own, gateway_cpu, rest)) => {
                pin_this_process(rest)?;
                println!(
                    "   b. separate cores: gateway on CPU {gateway_cpu}; nodes and client on CPU {}",
                    rest.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                routed_figures(&direct, &routed_at(&own.base), own).await?;
                pin_this_process(&all_cpus)?;
            }
            None => println!("   b. separate cores: skipped, one CPU only"),
        }
        println!();
    }
    drop(own_core);

    // 2. Scatter-gather over 1, 2, 4, 8 nodes. Every node holds referrals
    // that concern agency 0 (received by it, or at its own node sent by
    // it), so that each node's page carries data to merge.
    for (i, base) in node_urls.iter().enumerate() {
        let to = agency_name(if i == 0 { 1 } else { 0 });
        seed_referrals(&client, base, &token(i, Role::Caseworker)?, &to).await?;
    }
    let scatter = "{ referrals(direction: ALL, first: 10) { edges { cursor node { id createdAt } } pageInfo { hasNextPage } } }";
    println!(
        "2. scattered query `referrals(first: 10)` over k nodes, each holding {REFERRALS_PER_NODE} referrals concerning the caller ({LATENCY_REQUESTS} sequential requests each, the four gateways taking turns)"
    );
    // The scattered query sent to `url`.
    let scatter_at = |url: String| Target {
        client: client.clone(),
        url,
        token: caseworker.clone(),
        purpose: "REFERRAL",
        body: body(scatter),
    };
    // One gateway per k, all running at once so that their requests can
    // take turns.
    let mut scatter_gateways = Vec::new();
    for k in SCATTER_WIDTHS {
        let gw = ChildServer::start(
            root.path(),
            &format!("gateway-scatter-{k}"),
            &root.path().join("keys"),
            &node_urls,
            k,
            None,
        )?;
        let target = scatter_at(format!("{}/graphql", gw.base));
        scatter_gateways.push((k, gw, target));
    }
    // The floor: the same fan-out with none of the exchange's work, over
    // servers that answer with the bytes node 0 gives the same query.
    let (_, node_answer) = scatter_at(format!("{}/graphql", node_urls[0]))
        .answer()
        .await?;
    let mut fixed_urls = Vec::new();
    for _ in 0..NODES {
        fixed_urls.push(serve_fixed_answer(node_answer.clone()).await?);
    }
    let mut floors = Vec::new();
    for k in SCATTER_WIDTHS {
        let floor = ChildServer::start_fan_out(&format!("fan-out-{k}"), &fixed_urls[..k])?;
        let target = scatter_at(format!("{}/graphql", floor.base));
        floors.push((k, floor, target));
    }
    // And one of those servers asked straight, for what the bare hop adds.
    let straight = scatter_at(fixed_urls[0].clone());
    // Gateways, floors and the straight request all take turns, so every
    // ratio comes from the same moments of the machine.
    let targets: Vec<&Target> = scatter_gateways
        .iter()
        .chain(&floors)
        .map(|(_, _, t)| t)
        .chain([&straight])
        .collect();
    let mut latencies = interleaved_latencies(&targets, LATENCY_REQUESTS).await?;
    let straight_latencies = latencies
        .pop()
        .context("the straight request's latencies")?;
    let floor_latencies = latencies.split_off(SCATTER_WIDTHS.len());
    width_figures(
        &scatter_gateways,
        &latencies,
        ("node", "   (goal: <= 1.3x at 8)"),
        ("gateway", "nodes and client"),
    )
    .await?;
    drop(scatter_gateways);
    println!(
        "2'. the floor of this machine: the same fan-out with none of the exchange's work (a child process that sends each request's body to k servers at once and returns their answers side by side, over servers in this process that answer at once with the {} bytes node 0 gives the query; no token, parse, plan, audit or merge), taking turns with the gateways above",
        node_answer.len()
    );
    println!(
        "   one server asked straight: p50 {:.3} ms  p99 {:.3} ms; the bare hop adds {:.3} ms at p50",
        pct(&straight_latencies, 0.5),
        pct(&straight_latencies, 0.99),
        pct(&floor_latencies[0], 0.5) - pct(&straight_latencies, 0.5),
    );
    width_figures(
        &floors,
        &floor_latencies,
        ("server", ""),
        ("fan-out", "servers and client"),
    )
    .await?;
    drop(floors);
    println!();

    // 3. Resident memory under 50 concurrent clients.
    let (idle_rss, _) = gateway.rss_kib();
    let load = Arc::new(Target {
        client: reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(MEMORY_CLIENTS)
            .build()?,
        url: format!("{}/graphql", gateway.base),
        token: caseworker.clone(),
        purpose: "REFERRAL",
        body: body(scatter),
    });
    let sampler_pid = gateway.child.id();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = sampling.clone();
    let sampler = tokio::spawn(async move {
        let mut max = 0u64;
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            let status =
                std::fs::read_to_string(format!("/proc/{sampler_pid}/status")).unwrap_or_default();
            if let Some(v) = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                max = max.max(v);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        max
    });
    let rps = load
        .throughput(MEMORY_CLIENTS, MEMORY_CLIENTS * MEMORY_REQUESTS_PER_CLIENT)
        .await?;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let max_rss = sampler.await?;
    let (_, hwm) = gateway.rss_kib();
    println!(
        "3. gateway memory under {MEMORY_CLIENTS} concurrent clients (scattered query over {NODES} nodes, {rps:.0} req/s)"
    );
    println!(
        "   VmRSS idle {:.1} MB, max sampled under load {:.1} MB, peak VmHWM {:.1} MB   (goal: <= 40 MB)",
        idle_rss as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(gateway);
    for tx in shutdowns {
        let _ = tx.send(());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Sends one mutation straight to the node at `base` as `caseworker`, for
/// `purpose`, and returns its `data`, or an error carrying the answer.
async fn node_mutation(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
    purpose: &str,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let answer: serde_json::Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(caseworker)
        .header("x-exchange-purpose", purpose)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    match (answer.get("errors"), answer.get("data")) {
        (None, Some(data)) => Ok(data.clone()),
        _ => anyhow::bail!("seeding the bench's data: {answer}"),
    }
}

/// Registers an invented survivor at the node at `base` (the caseworker's
/// own agency); its global ID.
async fn register_survivor(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
) -> anyhow::Result<String> {
    let data = node_mutation(
        client,
        base,
        caseworker,
        "CASE_MANAGEMENT",
        "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
        json!({ "input": {
            "identity": { "givenName": "Bench", "familyName": "Invented", "languages": ["en"] },
            "case": { "exploitationTypes": ["labour"], "riskLevel": "HIGH", "needs": ["SHELTER"] },
        } }),
    )
    .await?;
    data["registerSurvivor"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("registering the bench survivor: {data}"))
}

/// Referrals each node holds for the scattered query.
const REFERRALS_PER_NODE: usize = 4;

/// Registers an invented survivor at the node at `base`, records their
/// consent to be referred to `to`, and refers them there
/// [`REFERRALS_PER_NODE`] times, with the node's own mutations.
async fn seed_referrals(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
    to: &str,
) -> anyhow::Result<()> {
    let survivor = register_survivor(client, base, caseworker).await?;
    node_mutation(
        client,
        base,
        caseworker,
        "CASE_MANAGEMENT",
        "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
        json!({ "input": {
            "survivorId": survivor, "grantee": to, "categories": ["IDENTITY", "CASE"],
            "purposes": ["REFERRAL"], "method": "WITNESSED_VERBAL", "witness": "Bench witness",
        } }),
    )
    .await?;
    for _ in 0..REFERRALS_PER_NODE {
        node_mutation(
            client,
            base,
            caseworker,
            "REFERRAL",
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": {
                "survivorId": survivor, "toAgency": to, "service": "SHELTER", "urgency": "ROUTINE",
            } }),
        )
        .await?;
    }
    Ok(())
}

/// Prints, for each fan-out width k (the first being 1), the p50 and p99 of
/// its `latencies`, the p50's ratio to the first, and the CPU per request
/// of the child server and of this process. `ratio_to` names what k counts
/// and the note printed after k = 8; the last pair names the two processes.
async fn width_figures(
    widths: &[(usize, ChildServer, Target)],
    latencies: &[Vec<Duration>],
    (ratio_to, note_at_8): (&str, &str),
    (child, here): (&str, &str),
) -> anyhow::Result<()> {
    let base = pct(&latencies[0], 0.5);
    for ((k, server, target), lat) in widths.iter().zip(latencies) {
        let p50 = pct(lat, 0.5);
        println!(
            "   k = {k}: p50 {p50:.3} ms  p99 {:.3} ms  ratio to one {ratio_to} {:.2}x{}",
            pct(lat, 0.99),
            p50 / base,
            if *k == 8 { note_at_8 } else { "" }
        );
        let (child_cpu, here_cpu) = cpu_per_request(target, Some(server)).await?;
        println!("          CPU per request: {child} {child_cpu:.0} us, {here} {here_cpu:.0} us");
    }
    Ok(())
}

/// Measures a routed read straight to a node and through the gateway,
/// and prints latency, throughput and CPU time per request.
async fn routed_figures(
    direct: &Arc<Target>,
    via: &Arc<Target>,
    gateway: &ChildServer,
) -> anyhow::Result<()> {
    let latencies = interleaved_latencies(&[direct, via], LATENCY_REQUESTS).await?;
    let (d, g) = (&latencies[0], &latencies[1]);
    let rps =
        interleaved_throughput(&[direct, via], THROUGHPUT_CLIENTS, THROUGHPUT_REQUESTS).await?;
    let (d_rps, g_rps) = (rps[0], rps[1]);
    let (_, direct_cpu) = cpu_per_request(direct, None).await?;
    let (via_gateway_cpu, via_here_cpu) = cpu_per_request(via, Some(gateway)).await?;
    println!(
        "      direct to node : p50 {:.3} ms  p99 {:.3} ms  {:.0} req/s",
        pct(d, 0.5),
        pct(d, 0.99),
        d_rps
    );
    println!(
        "      via gateway    : p50 {:.3} ms  p99 {:.3} ms  {:.0} req/s",
        pct(g, 0.5),
        pct(g, 0.99),
        g_rps
    );
    println!(
        "      added latency  : p50 {:.3} ms  p99 {:.3} ms   throughput ratio {:.2}   (goals: <= 0.3 ms at p50, >= 0.7)",
        pct(g, 0.5) - pct(d, 0.5),
        pct(g, 0.99) - pct(d, 0.99),
        g_rps / d_rps
    );
    println!(
        "      CPU per sequential request: direct: node and client {direct_cpu:.0} us; via gateway: gateway {via_gateway_cpu:.0} us, node and client {via_here_cpu:.0} us"
    );
    Ok(())
}

/// The CPUs this process may run on.
fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins every thread of this process to `cpus`; threads they start later
/// inherit the mask. Passes over the threads until a pass finds none it has
/// not pinned, so a thread started meanwhile is not missed.
fn pin_this_process(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    let mut pinned = std::collections::BTreeSet::new();
    loop {
        let mut new = 0;
        for entry in std::fs::read_dir("/proc/self/task")? {
            let tid: i32 = entry?.file_name().to_string_lossy().parse()?;
            if pinned.insert(tid) {
                new += 1;
                // A thread may end between the listing and here.
                let _ = sched_setaffinity(Pid::from_raw(tid), &set);
            }
        }
        if new == 0 {
            return Ok(());
        }
    }
}

/// User plus system CPU time of the process whose `stat` file is `path`
/// (`/proc/<pid>/stat`), in clock ticks of 10 ms; zero if unreadable.
fn process_cpu(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold
    // spaces): utime and stime are the 12th and 13th of them.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

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

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use exchange_bench::child::{ChildServer, run_child_mode};
use exchange_bench::cpus::{allowed_cpus, pin_this_process};
use exchange_bench::load::{
    Target, cpu_per_request, interleaved_latencies, interleaved_throughput, pct,
};
use exchange_bench::nodes::{
    Nodes, REFERRALS_PER_NODE, ROUTED_DIRECTORY_READ, ROUTED_RECORD_READ, agency_name,
    register_survivor, seed_referrals,
};
use exchange_schema::Role;
use serde_json::json;

/// The allocator the shipped binaries use (see `gateway/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(result) = run_child_mode(&args) {
        return result;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
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

/// The nodes a gateway over the first `k` of `node_urls` names (the others
/// are in its federation without a node).
fn first_nodes(node_urls: &[String], k: usize) -> Vec<Option<String>> {
    (0..NODES)
        .map(|i| (i < k).then(|| node_urls[i].clone()))
        .collect()
}

async fn bench() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = tempfile::tempdir()?;
    let nodes = Nodes::start(root.path(), NODES).await?;
    let node_urls = nodes.urls.clone();
    let token = |i: usize, role: Role| nodes.token(i, role);
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
        &first_nodes(&node_urls, NODES),
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
                &first_nodes(&node_urls, NODES),
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
            &first_nodes(&node_urls, k),
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
    let sampler_pid = gateway.pid();
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
    nodes.stop().await;
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
        let (child_cpu, here_cpu) = cpu_per_request(target, Some(server), CPU_REQUESTS).await?;
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
    let rps = interleaved_throughput(
        &[direct, via],
        THROUGHPUT_CLIENTS,
        THROUGHPUT_REQUESTS,
        THROUGHPUT_ROUNDS,
    )
    .await?;
    let (d_rps, g_rps) = (rps[0], rps[1]);
    let (_, direct_cpu) = cpu_per_request(direct, None, CPU_REQUESTS).await?;
    let (via_gateway_cpu, via_here_cpu) = cpu_per_request(via, Some(gateway), CPU_REQUESTS).await?;
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

//! `hive-bench`: the exchange's gateway side by side with Hive Router in
//! front of the same agency node, on loopback. Prints figures and whether
//! this run meets the goals, and asserts nothing else: the machine is shared
//! and noisy, so compare the ratios measured in one run.
//!
//! ```sh
//! bash scripts/hive-bench.sh
//! ```
//!
//! The script builds Hive Router and composes the supergraph, then runs
//! `hive-bench --hive-router <hive_router> --supergraph <supergraph.graphql>`.
//!
//! It starts one agency node in this process (SQLite, plain HTTP on
//! loopback) with a seeded survivor the caller may read. For each query it
//! starts, fresh, the gateway in a child process (this binary,
//! `serve-gateway`) and Hive Router in another (see
//! [`exchange_bench::hive`]: JWT plugin on with the agency's key, the
//! `Authorization`, purpose and justification headers propagated, request
//! deduplication off), both in front of that node. Two queries, each sent
//! to both routers and straight to the node:
//!
//! 1. `{ agency { id name kind } }`, which the node answers from memory
//!    without an audit entry;
//! 2. one survivor record, which the node discloses and audits durably
//!    before answering.
//!
//! Before measuring, each router's `data` must equal the node's, and each
//! must refuse a token it cannot verify; otherwise the bench stops with an
//! error saying which. Then, per query, for the gateway and for Hive, with
//! the ratio gateway/Hive on each line:
//!
//! * the router's CPU time per request (user + system from
//!   `/proc/<pid>/stat`, over sequential requests, the two routers in
//!   alternating rounds);
//! * throughput with 16 concurrent clients (alternating rounds, direct
//!   included);
//! * added p50 and p99 latency over direct, one client at a time (direct,
//!   gateway and Hive requests taking turns one by one);
//! * peak resident memory (VmHWM) at the end.
//!
//! Goals: the gateway's CPU per request at most Hive's (Hive with its JWT
//! plugin), and its added latency within 0.05 ms of Hive's, on both
//! queries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use exchange_bench::child::{ChildServer, run_child_mode};
use exchange_bench::hive::HiveRouter;
use exchange_bench::load::{
    Target, cpu_per_request, interleaved_latencies, interleaved_throughput, pct,
};
use exchange_bench::nodes::{
    Nodes, ROUTED_DIRECTORY_READ, ROUTED_RECORD_READ, agency_name, register_survivor,
};
use exchange_schema::{AgencyId, Role};
use serde_json::json;

/// The allocator the shipped binaries use (see `gateway/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sequential requests per target for latency (after a warm-up of a tenth).
const LATENCY_REQUESTS: usize = 2_000;
/// Requests per target for throughput, over all its rounds.
const THROUGHPUT_REQUESTS: usize = 4_000;
const THROUGHPUT_CLIENTS: usize = 16;
/// Alternating rounds over which throughput is measured.
const THROUGHPUT_ROUNDS: usize = 4;
/// Sequential requests per router over which CPU time per request is
/// measured, in [`CPU_ROUNDS`] alternating rounds.
const CPU_REQUESTS: usize = 2_000;
const CPU_ROUNDS: usize = 4;
/// The node's subgraph name in the composed supergraph
/// (`scripts/hive-bench.sh`).
const SUBGRAPH: &str = "agency";
/// Goal: the gateway's added latency at most Hive's plus this, in ms.
const LATENCY_MARGIN_MS: f64 = 0.05;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(result) = run_child_mode(&args) {
        return result;
    }
    let options = Options::parse(&args[1..])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(options))
}

/// The command line: where Hive Router and the supergraph are.
struct Options {
    hive_router: PathBuf,
    supergraph: PathBuf,
}

impl Options {
    const USAGE: &str = "usage: hive-bench --hive-router <hive_router binary> --supergraph <supergraph.graphql> (scripts/hive-bench.sh builds both)";

    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let (mut hive_router, mut supergraph) = (None, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let slot = match arg.as_str() {
                "--hive-router" => &mut hive_router,
                "--supergraph" => &mut supergraph,
                _ => anyhow::bail!("unknown argument {arg:?}\n{}", Self::USAGE),
            };
            *slot =
                Some(PathBuf::from(args.next().with_context(|| {
                    format!("{arg} needs a value\n{}", Self::USAGE)
                })?));
        }
        let options = Self {
            hive_router: hive_router.context(Self::USAGE)?,
            supergraph: supergraph.context(Self::USAGE)?,
        };
        for path in [&options.hive_router, &options.supergraph] {
            anyhow::ensure!(
                path.is_file(),
                "{} is not a file\n{}",
                path.display(),
                Self::USAGE
            );
        }
        Ok(options)
    }
}

/// One query of the comparison.
struct Query {
    title: &'static str,
    body: Vec<u8>,
}

async fn bench(options: Options) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = tempfile::tempdir()?;
    let nodes = Nodes::start(root.path(), 1).await?;
    let node_url = nodes.urls[0].clone();
    let agency = AgencyId::parse(&agency_name(0))?;
    let caseworker = nodes.token(0, Role::Caseworker)?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()?;
    let survivor = register_survivor(&client, &node_url, &caseworker).await?;
    let queries = [
        Query {
            title: "`{ agency { id name kind } }`: the node answers from memory, no audit entry at the node",
            body: serde_json::to_vec(&json!({ "query": ROUTED_DIRECTORY_READ }))?,
        },
        Query {
            title: "one survivor record, `survivor(id) { id owner identity { givenName } case { riskLevel needs } }`: the node discloses it and writes its audit entry durably before answering",
            body: serde_json::to_vec(&json!({
                "query": ROUTED_RECORD_READ,
                "variables": { "id": survivor },
            }))?,
        },
    ];

    println!(
        "hive-bench: the exchange's gateway and Hive Router ({}) in front of one agency node, loopback, {} cores, release build expected",
        options.hive_router.display(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "gateway worker threads: {}",
        std::env::var("EXCHANGE_GATEWAY__RUNTIME__WORKER_THREADS").unwrap_or_else(|_| {
            "one per core (EXCHANGE_GATEWAY__RUNTIME__WORKER_THREADS unset)".into()
        })
    );
    println!(
        "{LATENCY_REQUESTS} sequential requests per target for latency (direct, gateway and Hive taking turns); {THROUGHPUT_CLIENTS} clients, {THROUGHPUT_REQUESTS} requests per target in {THROUGHPUT_ROUNDS} alternating rounds for throughput; {CPU_REQUESTS} sequential requests per router in {CPU_ROUNDS} alternating rounds for CPU"
    );
    println!();

    let mut verdicts = Vec::new();
    let mut direct_cpus = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let number = i + 1;
        // Fresh routers for each query, so that each one's peak memory is
        // that query's.
        let gateway = ChildServer::start(
            root.path(),
            &format!("gateway-{number}"),
            &root.path().join("keys"),
            &[Some(node_url.clone())],
            None,
        )?;
        let hive = HiveRouter {
            binary: &options.hive_router,
            supergraph: &options.supergraph,
            subgraph: SUBGRAPH,
            node_url: &node_url,
            dev: &nodes.dev,
            agency: &agency,
        }
        .start(
            &root.path().join(format!("hive-{number}")),
            &format!("hive-{number}"),
        )
        .await?;
        let target = |base: &str, token: &str| {
            Arc::new(Target {
                client: client.clone(),
                url: format!("{base}/graphql"),
                token: token.to_owned(),
                purpose: "CASE_MANAGEMENT",
                body: query.body.clone(),
            })
        };
        let direct = target(&node_url, &caseworker);
        let via_gateway = target(&gateway.base, &caseworker);
        let via_hive = target(&hive.base, &caseworker);

        check_answers(
            &direct,
            &[("the gateway", &via_gateway), ("Hive Router", &via_hive)],
        )
        .await
        .with_context(|| format!("query {number}: {}", query.title))?;
        // A token no agency signed must be refused by each router (Hive
        // Router logs a warning for it).
        let forged = forged_token(&caseworker)?;
        for (name, base) in [("the gateway", &gateway.base), ("Hive Router", &hive.base)] {
            if target(base, &forged).answer().await.is_ok() {
                anyhow::bail!(
                    "query {number}: {name} answered a request whose token's signature is wrong: it does not verify tokens, so it cannot be compared"
                );
            }
        }

        println!(
            "{number}. checked: both routers answer with the node's data and refuse a forged token"
        );
        let latencies =
            interleaved_latencies(&[&direct, &via_gateway, &via_hive], LATENCY_REQUESTS).await?;
        let rps = interleaved_throughput(
            &[&direct, &via_gateway, &via_hive],
            THROUGHPUT_CLIENTS,
            THROUGHPUT_REQUESTS,
            THROUGHPUT_ROUNDS,
        )
        .await?;
        let (mut gateway_cpu, mut hive_cpu) = (0.0, 0.0);
        for _ in 0..CPU_ROUNDS {
            let per_round = CPU_REQUESTS / CPU_ROUNDS;
            gateway_cpu += cpu_per_request(&via_gateway, Some(&gateway), per_round)
                .await?
                .0
                / CPU_ROUNDS as f64;
            hive_cpu +=
                cpu_per_request(&via_hive, Some(&hive), per_round).await?.0 / CPU_ROUNDS as f64;
        }
        // The node runs in this process, with the load generator: their
        // CPU together per direct request. The load generator's share is
        // the same for both queries, so the difference between the two is
        // the node's work to disclose and audit a record.
        let direct_cpu = cpu_per_request(&direct, None, CPU_REQUESTS).await?.1;
        direct_cpus.push(direct_cpu);
        let (_, gateway_hwm) = gateway.rss_kib();
        let (_, hive_hwm) = hive.rss_kib();

        let (d, g, h) = (&latencies[0], &latencies[1], &latencies[2]);
        let added = |l: &[Duration], p: f64| pct(l, p) - pct(d, p);
        let figures = Figures {
            cpu_us: (gateway_cpu, hive_cpu),
            rps: (rps[1], rps[2]),
            added_p50_ms: (added(g, 0.5), added(h, 0.5)),
            added_p99_ms: (added(g, 0.99), added(h, 0.99)),
            hwm_mb: (gateway_hwm as f64 / 1024.0, hive_hwm as f64 / 1024.0),
        };
        println!("   {}", query.title);
        println!(
            "   direct to the node: p50 {:.3} ms, p99 {:.3} ms, {:.0} req/s, {:.0} us CPU per request (node and load generator)",
            pct(d, 0.5),
            pct(d, 0.99),
            rps[0],
            direct_cpu
        );
        println!();
        figures.print();
        println!();
        verdicts.push((number, figures.verdict()));
        drop((gateway, hive));
    }

    println!("Goals (this run):");
    for (number, verdict) in verdicts {
        println!("   query {number}: {verdict}");
    }
    if let [directory, record] = direct_cpus[..] {
        println!(
            "   the node's own work for a record read (its CPU per direct request, less the directory read's): {:.0} us",
            record - directory
        );
    }
    nodes.stop().await;
    Ok(())
}

/// Sends the query once straight to the node and once through each router,
/// and fails, naming the router, unless each router's `data` is the node's.
async fn check_answers(direct: &Target, routers: &[(&str, &Arc<Target>)]) -> anyhow::Result<()> {
    let expected = direct
        .data()
        .await
        .context("the node's own answer (direct)")?;
    for (name, router) in routers {
        let data = router
            .data()
            .await
            .with_context(|| format!("{name} did not answer the query correctly"))?;
        if data != expected {
            anyhow::bail!(
                "{name} answered with other data than the node's.\n  node:   {expected}\n  {name}: {data}"
            );
        }
    }
    Ok(())
}

/// `token` with its signature's first character changed, so that no key
/// verifies it.
fn forged_token(token: &str) -> anyhow::Result<String> {
    let (signed, signature) = token.rsplit_once('.').context("a compact JWS")?;
    let mut signature = signature.to_owned();
    let first = if signature.starts_with('A') { "B" } else { "A" };
    signature.replace_range(..1, first);
    Ok(format!("{signed}.{signature}"))
}

/// One query's figures, each a pair (gateway, Hive).
struct Figures {
    cpu_us: (f64, f64),
    rps: (f64, f64),
    added_p50_ms: (f64, f64),
    added_p99_ms: (f64, f64),
    hwm_mb: (f64, f64),
}

impl Figures {
    /// Prints the figures as a Markdown table, with the ratio gateway/Hive
    /// on each line.
    fn print(&self) {
        let ratio = |(g, h): (f64, f64)| {
            if h > 0.0 {
                format!("{:.2}", g / h)
            } else {
                "n/a".to_owned()
            }
        };
        println!("   | measure | gateway | Hive Router | gateway/Hive |");
        println!("   |---|---|---|---|");
        let rows = [
            (
                "router CPU per request",
                self.cpu_us,
                format!("{:.0} us", self.cpu_us.0),
                format!("{:.0} us", self.cpu_us.1),
            ),
            (
                "throughput, 16 clients",
                self.rps,
                format!("{:.0} req/s", self.rps.0),
                format!("{:.0} req/s", self.rps.1),
            ),
            (
                "added p50 latency over direct",
                self.added_p50_ms,
                format!("{:+.3} ms", self.added_p50_ms.0),
                format!("{:+.3} ms", self.added_p50_ms.1),
            ),
            (
                "added p99 latency over direct",
                self.added_p99_ms,
                format!("{:+.3} ms", self.added_p99_ms.0),
                format!("{:+.3} ms", self.added_p99_ms.1),
            ),
            (
                "peak memory (VmHWM)",
                self.hwm_mb,
                format!("{:.1} MB", self.hwm_mb.0),
                format!("{:.1} MB", self.hwm_mb.1),
            ),
        ];
        for (name, pair, gateway, hive) in rows {
            println!("   | {name} | {gateway} | {hive} | {} |", ratio(pair));
        }
    }

    /// Whether this run meets each goal.
    fn verdict(&self) -> String {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        let (g, h) = self.cpu_us;
        let cpu = format!(
            "CPU per request at most Hive's: {} ({g:.0} against {h:.0} us)",
            met(g <= h)
        );
        let latency = |what: &str, (g, h): (f64, f64)| {
            format!(
                "added {what} within {LATENCY_MARGIN_MS} ms of Hive's: {} ({:+.3} ms more)",
                met(g <= h + LATENCY_MARGIN_MS),
                g - h
            )
        };
        format!(
            "{cpu}; {}; {}",
            latency("p50", self.added_p50_ms),
            latency("p99", self.added_p99_ms)
        )
    }
}

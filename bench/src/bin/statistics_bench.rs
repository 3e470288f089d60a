//! `statistics-bench`: the time and memory of a statistics release over a
//! federation of synthetic records. Prints figures; asserts nothing.
//!
//! ```sh
//! cargo run --release -p exchange-bench --bin statistics-bench -- --survivors 1000000 --nodes 4
//! ```
//!
//! It starts `--nodes` agency nodes in this process (SQLite, each in its
//! own directory under a temporary root), and fills them with `--survivors`
//! synthetic survivors in total, registered in the last quarter
//! ([`agency_node::seed::SyntheticIntake`]: coded intake with skewed
//! values), sealed under their own data keys like any record, written in
//! bulk (one transaction per batch, not through the audited mutation, to
//! keep generation short). Then it produces the quarter's release as the
//! gateway does: every node counts its records for every table of the
//! catalogue at once (the nodes opening each record), the counts are
//! summed and every table protected. It prints the generation time, the
//! release time with its two steps, and the process's resident memory
//! before and after the release and at peak (VmHWM).

use std::time::Instant;

use agency_node::records::Validate as _;
use agency_node::statistics::count;
use anyhow::Context as _;
use exchange_bench::nodes::agency_name;
use exchange_schema::AgencyId;
use exchange_schema::statistics::{self, CountTable, Period, Protection};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Survivors generated per transaction.
const BATCH: usize = 2_000;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} takes a number"))?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

/// Resident memory and its peak, in MiB (`/proc/self/status`).
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> anyhow::Result<()> {
    let survivors = arg("--survivors", 100_000)?;
    let nodes = arg("--nodes", 4)?.max(1);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(survivors, nodes))
}

async fn run(survivors: usize, node_count: usize) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = tempfile::tempdir()?;
    let none: Vec<Option<String>> = vec![None; node_count];
    let dev = exchange_trust::DevFederation::create(
        root.path(),
        &exchange_bench::nodes::specs(&none),
        exchange_bench::nodes::AUDIENCE,
    )?;
    let now = time::OffsetDateTime::now_utc();
    let quarter = Period::of(Period::of(now).start() - time::Duration::days(1));
    println!(
        "statistics-bench: {survivors} synthetic survivors on {node_count} nodes (SQLite), quarter {quarter}"
    );
    let mut states = Vec::new();
    let generation = Instant::now();
    for i in 0..node_count {
        let agency = agency_name(i);
        let config = agency_node::NodeConfig::new(
            AgencyId::parse(&agency)?,
            &dev.path,
            &root.path().join(&agency),
        );
        let app = agency_node::Application::build(config).await?;
        let state = app.state();
        let share = survivors / node_count + usize::from(i < survivors % node_count);
        let mut intake = agency_node::seed::SyntheticIntake::new(&agency);
        let mut written = 0;
        while written < share {
            let batch = (share - written).min(BATCH);
            let mut records = Vec::with_capacity(batch);
            for n in 0..batch {
                let mut record = intake.record(written + n, quarter, "bench");
                record
                    .identity
                    .validate()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                records.push(record);
            }
            let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
            let keys = state.vault.create_many(&ids).await?;
            let mut tx = state.db.pool().begin().await?;
            for record in &records {
                agency_node::store::survivors::insert_sealed(
                    &mut tx,
                    keys.get(&record.id)?,
                    record,
                )
                .await?;
            }
            tx.commit().await?;
            written += batch;
        }
        states.push(state);
        // The app (and its listener) is dropped; the state stays usable.
        drop(app);
    }
    let generated = generation.elapsed();
    println!(
        "  generated and sealed in {:.1} s ({:.0} survivors/s)",
        generated.as_secs_f64(),
        survivors as f64 / generated.as_secs_f64()
    );
    let (rss_before, _) = memory();

    let release = Instant::now();
    let tables: Vec<&'static statistics::TableSpec> = statistics::CATALOGUE.iter().collect();
    let counted =
        futures::future::join_all(states.iter().map(|s| count(s, quarter, &tables))).await;
    let counting = release.elapsed();
    let mut sums: Vec<CountTable> = tables.iter().map(|t| CountTable::new(t.id)).collect();
    for node in counted {
        let node = node.map_err(|e| anyhow::anyhow!("counting failed: {e:?}"))?;
        for (sum, table) in sums.iter_mut().zip(&node) {
            sum.merge(table);
        }
    }
    let protecting = Instant::now();
    let mut withheld = 0;
    let mut published = 0;
    for (spec, sum) in tables.iter().zip(&sums) {
        let (table, hidden) = statistics::protect(spec, sum, Protection::default());
        withheld += hidden.len();
        published += table.cells.iter().flatten().filter(|c| c.is_some()).count();
    }
    let protected = protecting.elapsed();
    let total = release.elapsed();
    let (rss_after, peak) = memory();
    let counted_total: u64 = sums[1].cells.values().sum();
    println!(
        "  release: {:.2} s in all: counting at the nodes {:.2} s ({:.0} records/s), summing and protecting {:.1} ms",
        total.as_secs_f64(),
        counting.as_secs_f64(),
        counted_total as f64 / counting.as_secs_f64(),
        protected.as_secs_f64() * 1000.0
    );
    println!(
        "  {counted_total} survivors counted; {published} cells published, {withheld} numbers withheld"
    );
    println!(
        "  memory: {rss_before:.0} MiB resident before the release, {rss_after:.0} MiB after, {peak:.0} MiB peak (VmHWM, generation included)"
    );
    Ok(())
}

//! Durable audit appends per second, on SQLite and (when
//! `EXCHANGE_TEST_POSTGRES_URL` is set, as `scripts/postgres.sh` does) on
//! PostgreSQL: many concurrent requests appending through the group-commit
//! writer, against a baseline of one entry per transaction measured in the
//! same run. Also the full disclosure path per record for a page of 100
//! survivors with mixed grants.
//!
//! Run: `source scripts/postgres.sh; cargo bench -p agency-node --bench audit_append`

use std::sync::Arc;
use std::time::Instant;

use agency_node::store::Db;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use exchange_audit::{AuditLog, AuditOptions};
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Category, Decision, GlobalId, Purpose};
use exchange_test_kit::scratch::ScratchDatabase;

fn event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(AuditKind::Disclosure, Decision::Permit, "GRANT");
    e.actor_agency = Some(AgencyId::parse("legal-aid-city").unwrap());
    e.actor_user = Some(format!("caseworker-{}", i % 17));
    e.survivor =
        Some(GlobalId::new(AgencyId::parse("shelter-north").unwrap(), format!("s{i}")).unwrap());
    e.disclosed = vec![Category::Identity, Category::Legal];
    e.purpose = Some(Purpose::LegalAssistance);
    e.policy_set = Some("0".repeat(64));
    e.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    e
}

fn key() -> Arc<Ed25519KeyPair> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Arc::new(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
}

/// Appends `total` entries from `concurrency` tasks; entries per second.
async fn grouped(db: &Db, total: usize, concurrency: usize) -> f64 {
    let log = AuditLog::open(db.clone(), key(), AuditOptions::new("bench"))
        .await
        .unwrap();
    let start = Instant::now();
    let per_task = total / concurrency;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                log.append(event(t * per_task + i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (per_task * concurrency) as f64 / start.elapsed().as_secs_f64()
}

/// One entry per transaction: each `record` commits on its own.
async fn one_per_transaction(db: &Db, total: usize) -> f64 {
    let log = AuditLog::open(db.clone(), key(), AuditOptions::new("bench"))
        .await
        .unwrap();
    let start = Instant::now();
    for i in 0..total {
        let e = event(i);
        log.record(move |_conn| {
            Box::pin(async move { Ok::<_, agency_node::error::NodeError>(((), e)) })
        })
        .await
        .unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// One `append` at a time (a quiet log, as behind one gateway request):
/// median and 99th percentile until durable, in microseconds.
async fn sequential_latency(db: &Db, total: usize) -> (f64, f64) {
    let log = AuditLog::open(db.clone(), key(), AuditOptions::new("bench"))
        .await
        .unwrap();
    let mut times = Vec::with_capacity(total);
    for i in 0..total {
        let start = Instant::now();
        log.append(event(i)).await.unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let us = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    (us(0.5), us(0.99))
}

/// Signing and serialising the head once, as every write transaction does
/// (once per group, whatever its size): microseconds per signature.
fn signing_cost(total: usize) -> f64 {
    use exchange_schema::audit::Checkpoint;
    let key = key();
    let head = [7u8; 32];
    let start = Instant::now();
    let mut bytes = 0;
    for seq in 0..total {
        let checkpoint = Checkpoint::sign(&key, "bench", seq as u64, &head);
        bytes += serde_json::to_string(&checkpoint).unwrap().len();
    }
    assert!(bytes > 0);
    start.elapsed().as_secs_f64() * 1e6 / total as f64
}

async fn run(name: &str, url: &str) {
    let db = agency_node::store::open(url, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let baseline = one_per_transaction(&db, 500).await;
    let grouped_rate = grouped(&db, 20_000, 200).await;
    let (p50, p99) = sequential_latency(&db, 1_000).await;
    println!(
        "{name:<10} one entry per transaction: {baseline:>9.0}/s   group commit (200 concurrent requests): {grouped_rate:>9.0}/s   ratio {:.1}x",
        grouped_rate / baseline
    );
    println!(
        "{name:<10} one append at a time until durable: p50 {p50:.0} us  p99 {p99:.0} us   ({:.2}x the transaction baseline's mean)",
        p50 / (1e6 / baseline)
    );
    let sign = signing_cost(5_000);
    println!(
        "{name:<10} signing the head in each write transaction: {sign:.1} us a transaction \
         ({:.1}% of one durable single-entry transaction, {:.1}% of one sequential append)",
        100.0 * sign / (1e6 / baseline),
        100.0 * sign / p50
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let dir = tempfile::tempdir().unwrap();
    println!("durable audit appends (synchronous=FULL on SQLite; fsync on PostgreSQL)");
    run("SQLite", &agency_node::store::sqlite_url(dir.path())).await;
    match ScratchDatabase::from_env("exchange_bench")
        .await
        .expect("creating a scratch PostgreSQL database")
    {
        Some(database) => run("PostgreSQL", database.url()).await,
        None => println!(
            "PostgreSQL  not measured: set EXCHANGE_TEST_POSTGRES_URL (source scripts/postgres.sh)"
        ),
    }
}

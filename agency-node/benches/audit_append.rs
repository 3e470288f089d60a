//! Durable audit appends per second, on SQLite and (when
//! `EXCHANGE_TEST_POSTGRES_URL` is set, as `scripts/postgres.sh` does) on
//! PostgreSQL: many concurrent requests appending through the group-commit
//! writer, against a baseline of one entry per transaction measured in the
//! same run. Also the CPU of one append at a time, as one request pays it,
//! against its floor on this machine: the same durable SQLite transaction
//! written by the calling thread (rusqlite), with and without its flush.
//!
//! Run: `source scripts/postgres.sh; cargo bench -p agency-node --bench audit_append`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The process's CPU time so far (user, system), every thread included:
/// the runtime's workers and sqlx's SQLite worker threads too.
fn cpu_time() -> (Duration, Duration) {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let duration = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    (duration(usage.user_time()), duration(usage.system_time()))
}

/// What a run of writes cost: each write's wall time and the process's
/// CPU time over them all.
#[derive(Default)]
struct WriteCost {
    times: Vec<Duration>,
    user: Duration,
    system: Duration,
}

impl WriteCost {
    /// Adds `total` writes, each timed by `write`.
    fn measure(&mut self, total: usize, mut write: impl FnMut(usize) -> Duration) {
        let (user, system) = cpu_time();
        let first = self.times.len();
        for i in 0..total {
            self.times.push(write(first + i));
        }
        let (user_after, system_after) = cpu_time();
        self.user += user_after - user;
        self.system += system_after - system;
    }

    fn percentile_us(&self, p: f64) -> f64 {
        let mut times = self.times.clone();
        times.sort();
        times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
    }

    fn per_write_us(&self, time: Duration) -> f64 {
        time.as_secs_f64() * 1e6 / self.times.len() as f64
    }

    fn user_us(&self) -> f64 {
        self.per_write_us(self.user)
    }

    fn system_us(&self) -> f64 {
        self.per_write_us(self.system)
    }

    fn cpu_us(&self) -> f64 {
        self.per_write_us(self.user + self.system)
    }
}

/// One `append` at a time (a quiet log, as behind one gateway request):
/// wall time until durable and the process's CPU per append.
fn sequential(log: &AuditLog, cost: &mut WriteCost, total: usize) {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        cost.measure(total, |i| {
            let start = Instant::now();
            handle.block_on(log.append(event(i))).unwrap();
            start.elapsed()
        })
    })
}

/// The floor of one durable append on this machine: the transaction the
/// audit writer makes for a group of one (read the stored head, insert the
/// chained entry, upsert the signed head, commit), on a database with the
/// audit log's own tables, indexes and triggers, but written by the calling
/// thread through rusqlite: no async runtime, no hand-off to a worker
/// thread. `synchronous` is `FULL` (the node's) or `OFF` (no flush, to show
/// the flush's share).
fn bare_transactions(
    conn: &mut rusqlite::Connection,
    synchronous: &str,
    cost: &mut WriteCost,
    total: usize,
) {
    use rusqlite::{OptionalExtension, TransactionBehavior, params};
    conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
        .unwrap();
    let key = key();
    cost.measure(total, |i| {
        let start = Instant::now();
        let event = event(i);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let (seq, prev) = tx
            .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .unwrap()
            .query_row([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
            .optional()
            .unwrap()
            .map(|(seq, hash)| {
                let mut prev = [0u8; 32];
                hex::decode_to_slice(hash, &mut prev).unwrap();
                (seq as u64, prev)
            })
            .unwrap_or((0, exchange_schema::audit::GENESIS));
        let seq = seq + 1;
        let hash = exchange_schema::audit::chain_hash_event(&prev, seq, &event);
        tx.prepare_cached(
            "INSERT INTO audit_log (seq, at, kind, actor_agency, survivor, purpose, decision, \
             break_glass, event, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .unwrap()
        .execute(params![
            seq as i64,
            event.at.unix_timestamp(),
            "DISCLOSURE",
            event.actor_agency.as_ref().map(|a| a.as_str().to_owned()),
            event.survivor.as_ref().map(|s| s.to_string()),
            "LEGAL_ASSISTANCE",
            "PERMIT",
            0,
            serde_json::to_string(&event).unwrap(),
            hex::encode(prev),
            hex::encode(hash),
        ])
        .unwrap();
        let checkpoint = exchange_schema::audit::Checkpoint::sign(&key, "floor", seq, &hash);
        tx.prepare_cached(
            "INSERT INTO audit_head (id, seq, checkpoint) VALUES (1, ?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, checkpoint = excluded.checkpoint",
        )
        .unwrap()
        .execute(params![seq as i64, serde_json::to_string(&checkpoint).unwrap()])
        .unwrap();
        tx.commit().unwrap();
        start.elapsed()
    });
}

/// The floor's database: the node's migrations applied, then the pool
/// closed, so that only rusqlite writes to it.
async fn floor_database(dir: &Path) -> rusqlite::Connection {
    let floor = dir.join("floor");
    std::fs::create_dir_all(&floor).unwrap();
    let db = agency_node::store::open(
        &agency_node::store::sqlite_url(&floor),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    db.pool().close().await;
    let conn = rusqlite::Connection::open(floor.join(agency_node::store::DATABASE_FILE)).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    conn
}

/// One append at a time through the audit log against the floor, in four
/// rounds taking turns, so that the machine's load falls on each alike.
async fn floor(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let db = agency_node::store::open(
        &agency_node::store::sqlite_url(dir),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let log = AuditLog::open(db, key(), AuditOptions::new("bench"))
        .await
        .unwrap();
    let mut conn = floor_database(dir).await;
    let (mut through_the_log, mut bare, mut unflushed) = Default::default();
    for _round in 0..4 {
        sequential(&log, &mut through_the_log, 500);
        tokio::task::block_in_place(|| {
            bare_transactions(&mut conn, "FULL", &mut bare, 500);
            bare_transactions(&mut conn, "OFF", &mut unflushed, 500);
        });
    }
    println!(
        "SQLite     floor of one durable append: the same transaction written by the calling \
         thread (rusqlite), 4 rounds of 500 taking turns with the log's own"
    );
    for (label, cost) in [
        (
            "through the audit log (its writer thread and the caller's wake-up)",
            &through_the_log,
        ),
        ("bare, synchronous=FULL (the flush included)", &bare),
        ("bare, synchronous=OFF (no flush)", &unflushed),
    ] {
        println!(
            "SQLite       {label:<66} CPU {:>6.1} us (user {:>5.1}, system {:>5.1})   p50 {:>5.0} us  p99 {:>6.0} us",
            cost.cpu_us(),
            cost.user_us(),
            cost.system_us(),
            cost.percentile_us(0.5),
            cost.percentile_us(0.99)
        );
    }
    println!(
        "SQLite     the log's CPU over the bare durable transaction: {:+.1} us ({:.2}x); \
         the flush's CPU: {:.1} us",
        through_the_log.cpu_us() - bare.cpu_us(),
        through_the_log.cpu_us() / bare.cpu_us(),
        bare.cpu_us() - unflushed.cpu_us()
    );
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
    let log = AuditLog::open(db.clone(), key(), AuditOptions::new("bench"))
        .await
        .unwrap();
    let mut one = WriteCost::default();
    sequential(&log, &mut one, 2_000);
    let (p50, p99) = (one.percentile_us(0.5), one.percentile_us(0.99));
    println!(
        "{name:<10} one entry per transaction: {baseline:>9.0}/s   group commit (200 concurrent requests): {grouped_rate:>9.0}/s   ratio {:.1}x",
        grouped_rate / baseline
    );
    println!(
        "{name:<10} one append at a time until durable: p50 {p50:.0} us  p99 {p99:.0} us   ({:.2}x the transaction baseline's mean)",
        p50 / (1e6 / baseline)
    );
    println!(
        "{name:<10} one append at a time, CPU per append (every thread of the process): {:.1} us \
         (user {:.1}, system {:.1})",
        one.cpu_us(),
        one.user_us(),
        one.system_us()
    );
    let sign = signing_cost(5_000);
    println!(
        "{name:<10} signing the head in each write transaction: {sign:.1} us a transaction \
         ({:.1}% of one durable single-entry transaction, {:.1}% of one sequential append)",
        100.0 * sign / (1e6 / baseline),
        100.0 * sign / p50
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let dir = tempfile::tempdir().unwrap();
    println!("durable audit appends (synchronous=FULL on SQLite; fsync on PostgreSQL)");
    run("SQLite", &agency_node::store::sqlite_url(dir.path())).await;
    floor(&dir.path().join("turns")).await;
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

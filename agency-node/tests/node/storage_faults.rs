//! Storage faults: a node answers a disclosure only once its audit entry is
//! durable, whatever the storage does. Each test drives real requests while
//! the storage fails (a full disk, a read-only file system, a database
//! locked by another process, PostgreSQL backends terminated), tags every
//! request with its own trace ID, and afterwards, from a fresh connection
//! that sees only committed rows, checks that every answer that disclosed
//! data has its entry; that refusals carry `AUDIT_UNAVAILABLE` and no data;
//! that `/readyz` says not-ready while the log cannot be written; and that
//! the node recovers by itself once the fault clears.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use exchange_schema::AuditKind;
use serde_json::json;
use sqlx::Row as _;

use crate::common::*;

/// A small tmpfs mounted for one test, unmounted when dropped. Mounting
/// needs root, which CI has; without it the test fails, it never skips.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size_mib: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a {size_mib} MiB tmpfs failed: the storage fault tests run as root (as CI does)"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte; returns the filler file.
    fn fill(root: &Path) -> PathBuf {
        use std::io::Write as _;
        let filler = root.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 16, 4096, 512, 1] {
            let bytes = vec![0u8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(n) if n == chunk => continue,
                    Ok(_) => break,
                    Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                    Err(err) => panic!("filling the disk: {err}"),
                }
            }
        }
        let _ = file.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// What one request got back.
#[derive(Debug, Clone)]
struct Answer {
    trace: String,
    /// The answer carried the survivor's name: data left the node.
    disclosed: bool,
    /// The first error's code, if any.
    code: Option<String>,
    /// The first error's message, if any (for the failure report).
    message: Option<String>,
}

/// The tally of a load run.
#[derive(Debug, Default)]
struct Tally {
    answers: Vec<Answer>,
}

impl Tally {
    fn disclosed(&self) -> usize {
        self.answers.iter().filter(|a| a.disclosed).count()
    }

    fn refused(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| a.code.as_deref() == Some("AUDIT_UNAVAILABLE"))
            .count()
    }

    /// Every error is `AUDIT_UNAVAILABLE` and carries no data.
    fn assert_refusals_are_clean(&self) {
        for answer in &self.answers {
            if let Some(code) = &answer.code {
                assert_eq!(
                    code,
                    "AUDIT_UNAVAILABLE",
                    "{}: {answer:?}",
                    answer.message.as_deref().unwrap_or_default()
                );
                assert!(!answer.disclosed, "a refusal carried data: {answer:?}");
            }
        }
    }
}

static TRACE: AtomicU64 = AtomicU64::new(1);

/// Reads the survivor (as the owner) with a trace ID of its own.
async fn traced_read(node: &TestNode, token: &str, survivor: &str, name: &str) -> Answer {
    let n = TRACE.fetch_add(1, Ordering::Relaxed);
    let trace = format!(
        "{:032x}",
        0xfa17_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(n)
    );
    let response = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(token)
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": SURVIVOR_QUERY, "variables": { "id": survivor } }))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the node answers");
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    Answer {
        trace,
        disclosed: body.to_string().contains(name),
        code: body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned),
        message: body["errors"][0]["message"].as_str().map(str::to_owned),
    }
}

/// Registers a survivor (the database grows); returns the error code, if any.
async fn register(node: &TestNode, token: &str) -> Option<String> {
    let response = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(token)
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .json(&json!({
            "query": "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
            "variables": { "input": full_survivor_input("Filler") },
        }))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the node answers");
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(|code| format!("{code}: {}", body["errors"][0]["message"]))
}

/// Runs `workers` concurrent loops of a traced read and a registration until
/// `stop` says so or each has made `max_rounds` rounds.
async fn load(
    node: &Arc<TestNode>,
    survivor: &str,
    name: &str,
    workers: usize,
    max_rounds: usize,
    stop: impl Fn(&Tally) -> bool + Send + Sync + 'static,
) -> Tally {
    let tally = Arc::new(tokio::sync::Mutex::new(Tally::default()));
    let stop = Arc::new(stop);
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (node, tally, stop, done) = (node.clone(), tally.clone(), stop.clone(), done.clone());
        let (survivor, name) = (survivor.to_owned(), name.to_owned());
        tasks.push(tokio::spawn(async move {
            let token = node.caseworker(OWNER);
            for _ in 0..max_rounds {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                let answer = traced_read(&node, &token, &survivor, &name).await;
                let registered = register(&node, &token).await;
                let mut tally = tally.lock().await;
                tally.answers.push(answer);
                if let Some(code) = registered {
                    assert!(
                        code.starts_with("AUDIT_UNAVAILABLE: "),
                        "a failed registration's code: {code}"
                    );
                }
                if stop(&tally) {
                    done.store(true, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a load worker panicked");
    }
    Arc::try_unwrap(tally).unwrap().into_inner()
}

/// The trace IDs of the stored disclosure entries, read after the node
/// stopped through a new connection, so only what was committed counts.
async fn stored_disclosure_traces(database_url: &str) -> HashSet<String> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("opening the stopped node's database");
    let rows = sqlx::query("SELECT event FROM audit_log ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            serde_json::from_str::<exchange_schema::AuditEvent>(&r.get::<String, _>("event"))
                .unwrap()
        })
        .filter(|e| e.kind == AuditKind::Disclosure)
        .filter_map(|e| e.trace_id)
        .collect()
}

/// Every answer that disclosed data has its entry among those stored.
fn assert_every_disclosure_is_logged(tally: &Tally, stored: &HashSet<String>) {
    let missing: Vec<&Answer> = tally
        .answers
        .iter()
        .filter(|a| a.disclosed && !stored.contains(&a.trace))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} disclosed answers have no durable audit entry: {:?}",
        missing.len(),
        tally.disclosed(),
        &missing[..missing.len().min(5)]
    );
}

async fn readyz(node: &TestNode) -> u16 {
    node.client
        .get(format!("{}/readyz", node.base))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("readyz answers")
        .status()
        .as_u16()
}

/// Reads until one discloses again (the node recovered by itself), at most
/// `attempts` times with a short pause between.
async fn until_recovered(node: &TestNode, survivor: &str, name: &str, attempts: usize) -> Tally {
    let token = node.caseworker(OWNER);
    let mut tally = Tally::default();
    for _ in 0..attempts {
        let answer = traced_read(node, &token, survivor, name).await;
        let recovered = answer.disclosed;
        tally.answers.push(answer);
        if recovered {
            return tally;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node did not recover within {attempts} reads: {tally:?}");
}

/// A full disk, then a database locked by another process, under load: no
/// answer with data lacks its durable entry, refusals are
/// `AUDIT_UNAVAILABLE` with no data, `/readyz` is 503 while the log cannot
/// be written, and the node recovers by itself when space is freed and the
/// lock released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_disk_discloses_nothing_without_its_entry() {
    let disk = SmallDisk::mount(16);
    let data_dir = disk.path().join("node");
    let node = Arc::new(
        TestNode::start_with(Backend::Sqlite, |config| {
            config.database_url = Some(agency_node::config::DatabaseUrl(
                agency_node::store::sqlite_url(&data_dir),
            ));
            config.data_dir = data_dir.clone();
            // A lock held by another process is waited out this long.
            config.audit.write_timeout_ms = 300;
        })
        .await,
    );
    let name = "Diskfull";
    let survivor = node.register_full_survivor(name).await;

    let healthy = load(&node, &survivor, name, 4, 5, |_| false).await;
    assert_eq!(healthy.disclosed(), 20, "{healthy:?}");
    assert_eq!(readyz(&node).await, 200);

    // The disk fills while requests run: load until the node has refused a
    // good number of them.
    let filling = {
        let root = disk.path().to_owned();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(100));
            SmallDisk::fill(&root)
        })
    };
    let full = load(&node, &survivor, name, 6, 400, |t| t.refused() >= 30).await;
    let filler = filling.await.unwrap();
    full.assert_refusals_are_clean();
    assert!(
        full.refused() >= 30,
        "the full disk never made the node refuse: {} answers, {} disclosed",
        full.answers.len(),
        full.disclosed()
    );
    assert_eq!(readyz(&node).await, 503, "not ready while the disk is full");

    std::fs::remove_file(&filler).unwrap();
    let after_full = until_recovered(&node, &survivor, name, 100).await;
    assert_eq!(readyz(&node).await, 200, "ready again once space is freed");

    // Another process holds the database's write lock: requests are
    // refused within the write timeout, and served again once it lets go.
    let mut holder = {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&node.database_url)
            .await
            .unwrap()
    };
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let locked = load(&node, &survivor, name, 4, 50, |t| t.refused() >= 10).await;
    locked.assert_refusals_are_clean();
    assert!(locked.refused() >= 10, "{locked:?}");
    assert_eq!(
        readyz(&node).await,
        503,
        "not ready while the database is locked"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    let after_locked = until_recovered(&node, &survivor, name, 100).await;
    assert_eq!(readyz(&node).await, 200);

    let database_url = node.database_url.clone();
    let mut node = Arc::try_unwrap(node).unwrap_or_else(|_| panic!("node still shared"));
    node.stop().await;
    let stored = stored_disclosure_traces(&database_url).await;
    for tally in [&healthy, &full, &after_full, &locked, &after_locked] {
        tally.assert_refusals_are_clean();
        assert_every_disclosure_is_logged(tally, &stored);
    }
    eprintln!(
        "storage faults (SQLite): full disk {} answers, {} disclosed, {} refused; \
         locked {} answers, {} disclosed, {} refused; {} disclosure entries stored",
        full.answers.len(),
        full.disclosed(),
        full.refused(),
        locked.answers.len(),
        locked.disclosed(),
        locked.refused(),
        stored.len()
    );
    let (ok, report) = node.cli(&["audit", "verify", "--database", &database_url]);
    assert!(ok, "{report}");
}

/// Runs `sql` on a connection of its own (read-write, whatever the
/// database's default).
async fn admin(database_url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("an admin connection");
    sqlx::query("SET default_transaction_read_only = off")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ends every other client session of the node's account on its database
/// (its pooled connections; never the server's own workers, such as an
/// autovacuum worker analysing the fresh tables); returns how many.
async fn terminate_node_sessions(database_url: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("an admin connection");
    sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend' AND usename = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get::<i64, _>("n")
}

/// PostgreSQL backends terminated again and again under load, then the
/// database made read-only: no answer with data lacks its durable entry,
/// every refusal is `AUDIT_UNAVAILABLE` with no data, `/readyz` is 503
/// while the database is read-only, and the node recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_and_a_read_only_database_disclose_nothing_without_entries() {
    let node = Arc::new(TestNode::start(Backend::Postgres).await);
    let url = node.database_url.clone();
    let name = "Terminated";
    let survivor = node.register_full_survivor(name).await;

    let killer = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut ended = 0;
            for _ in 0..25 {
                ended += terminate_node_sessions(&url).await;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            ended
        })
    };
    let terminated = load(&node, &survivor, name, 4, 40, |_| false).await;
    let ended = killer.await.unwrap();
    assert!(ended > 0, "no session was terminated");
    terminated.assert_refusals_are_clean();
    let after_terminated = until_recovered(&node, &survivor, name, 100).await;

    // New sessions start read-only; the node's current ones are ended.
    admin(
        &url,
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$",
    )
    .await;
    terminate_node_sessions(&url).await;
    let read_only = load(&node, &survivor, name, 4, 30, |t| t.refused() >= 10).await;
    read_only.assert_refusals_are_clean();
    assert!(read_only.refused() >= 10, "{read_only:?}");
    assert_eq!(
        readyz(&node).await,
        503,
        "not ready on a read-only database"
    );
    admin(
        &url,
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', current_database()); END $$",
    )
    .await;
    terminate_node_sessions(&url).await;
    let after_read_only = until_recovered(&node, &survivor, name, 100).await;
    assert_eq!(readyz(&node).await, 200);

    let mut node = Arc::try_unwrap(node).unwrap_or_else(|_| panic!("node still shared"));
    node.stop().await;
    let stored = stored_disclosure_traces(&url).await;
    for tally in [&terminated, &after_terminated, &read_only, &after_read_only] {
        assert_every_disclosure_is_logged(tally, &stored);
    }
    eprintln!(
        "storage faults (PostgreSQL): {ended} sessions terminated under load: {} answers, \
         {} disclosed, {} refused; read-only {} answers, {} disclosed, {} refused; \
         {} disclosure entries stored",
        terminated.answers.len(),
        terminated.disclosed(),
        terminated.refused(),
        read_only.answers.len(),
        read_only.disclosed(),
        read_only.refused(),
        stored.len()
    );
    let (ok, report) = node.cli(&["audit", "verify", "--database", &url]);
    assert!(ok, "{report}");
}

/// A PostgreSQL server of the test's own (a new cluster in a temporary
/// directory, run by the `postgres` account on a free loopback port), so
/// that restarting it disturbs no other test.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl PrivateCluster {
    fn as_postgres(args: &[&str]) -> std::process::Output {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("running a PostgreSQL command as the postgres account");
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        let data = dir.path().join("data");
        Self::as_postgres(&[
            &format!("{PG_BIN}/initdb"),
            "--auth=trust",
            "--username=postgres",
            "--no-sync",
            "-D",
            data.to_str().unwrap(),
        ]);
        let cluster = Self { dir, port };
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let mut args = vec![format!("{PG_BIN}/pg_ctl")];
        args.extend(action.iter().map(|a| (*a).to_owned()));
        args.extend([
            "-w".to_owned(),
            "-t".to_owned(),
            "120".to_owned(),
            "-D".to_owned(),
            data.display().to_string(),
            "-o".to_owned(),
            options,
            "-l".to_owned(),
            self.dir.path().join("log").display().to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::as_postgres(&args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/pg_ctl"),
                "stop",
                "-m",
                "immediate",
                "-D",
            ])
            .arg(&data)
            .output();
    }
}

/// The PostgreSQL server restarts under load: requests during the restart
/// are refused with `AUDIT_UNAVAILABLE`, none that disclosed data lacks its
/// durable entry, and the node serves again once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_discloses_nothing_without_entries() {
    let cluster = PrivateCluster::start();
    let url = cluster.url();
    let node = Arc::new(
        TestNode::start_with(Backend::Sqlite, |config| {
            config.database_url = Some(agency_node::config::DatabaseUrl(url.clone()));
            config.audit.write_timeout_ms = 1000;
        })
        .await,
    );
    let name = "Restarted";
    let survivor = node.register_full_survivor(name).await;

    // 0: before the restart, 1: the server is down, 2: it is back. It stays
    // down until requests have been refused while it was (or for 30 s).
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let refused_while_down = Arc::new(AtomicU64::new(0));
    let restart = {
        let (phase, refused_while_down) = (phase.clone(), refused_while_down.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            cluster.pg_ctl(&["stop", "-m", "fast"]);
            phase.store(1, Ordering::Relaxed);
            for _ in 0..300 {
                if refused_while_down.load(Ordering::Relaxed) >= 3 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            cluster.pg_ctl(&["start"]);
            phase.store(2, Ordering::Relaxed);
            cluster
        })
    };
    let during = load(&node, &survivor, name, 4, 2000, {
        let (phase, refused_while_down) = (phase.clone(), refused_while_down.clone());
        move |t| {
            let now = phase.load(Ordering::Relaxed);
            if now == 1 {
                refused_while_down.store(t.refused() as u64, Ordering::Relaxed);
            }
            now == 2
        }
    })
    .await;
    let cluster = restart.await.unwrap();
    during.assert_refusals_are_clean();
    assert!(
        during.refused() >= 3,
        "requests were not refused while the server was down: {during:?}"
    );
    let after = until_recovered(&node, &survivor, name, 200).await;
    assert_eq!(readyz(&node).await, 200);

    let mut node = Arc::try_unwrap(node).unwrap_or_else(|_| panic!("node still shared"));
    node.stop().await;
    let stored = stored_disclosure_traces(&url).await;
    for tally in [&during, &after] {
        assert_every_disclosure_is_logged(tally, &stored);
    }
    eprintln!(
        "storage faults (PostgreSQL restart): {} answers, {} disclosed, {} refused; \
         {} disclosure entries stored",
        during.answers.len(),
        during.disclosed(),
        during.refused(),
        stored.len()
    );
    let (ok, report) = node.cli(&["audit", "verify", "--database", &url]);
    assert!(ok, "{report}");
    drop(cluster);
}

/// A node process whose disk is full still stops on SIGTERM, with exit
/// status 0, within the time `terminate` allows (10 s), while requests it
/// must refuse are in flight; and it answers them `AUDIT_UNAVAILABLE`
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_whose_disk_is_full() {
    let disk = SmallDisk::mount(16);
    let mut harness = TestNode::start(Backend::Sqlite).await;
    harness.stop().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = disk.path().join("process");
    let config = harness.data_dir.join("process.toml");
    std::fs::write(
        &config,
        format!(
            "agency = \"{OWNER}\"\nfederation = \"{}\"\nlisten = \"127.0.0.1:{port}\"\n\
             data_dir = \"{}\"\n[audit]\nwrite_timeout_ms = 2000\n",
            harness.federation_path().display(),
            data_dir.display()
        ),
    )
    .unwrap();
    let child = crate::lifecycle::serve(&config, port).await;
    let token = harness.caseworker(OWNER);
    let client = reqwest::Client::new();
    let read = |client: reqwest::Client, token: String| async move {
        let response = client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .bearer_auth(token)
            .header("x-exchange-purpose", "CASE_MANAGEMENT")
            .json(&json!({ "query": "{ survivors(first: 5) { edges { node { id } } } }" }))
            .send()
            .await;
        match response {
            Ok(response) => response.json::<serde_json::Value>().await.ok(),
            // The node may close the connection once it stops.
            Err(_) => None,
        }
    };
    let registered = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(&token)
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .json(&json!({
            "query": "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
            "variables": { "input": full_survivor_input("Stopping") },
        }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(
        registered["data"]["registerSurvivor"]["id"].is_string(),
        "{registered}"
    );
    let filler = SmallDisk::fill(disk.path());
    let refused = read(client.clone(), token.clone())
        .await
        .expect("an answer");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "AUDIT_UNAVAILABLE",
        "{refused}"
    );
    let in_flight: Vec<_> = (0..4)
        .map(|_| tokio::spawn(read(client.clone(), token.clone())))
        .collect();
    crate::lifecycle::terminate(child).await;
    for request in in_flight {
        if let Some(answer) = request.await.unwrap() {
            assert!(
                answer.get("data").is_none_or(|d| d["survivors"].is_null()),
                "{answer}"
            );
        }
    }
    std::fs::remove_file(filler).unwrap();
}

/// Every case-management change and every audited read (case notes, due
/// follow-ups, consent grants, the audit log itself) is refused
/// with `AUDIT_UNAVAILABLE` while the log cannot be written, and leaves no
/// row behind; the same requests succeed once the fault clears. The fault
/// is a write lock held by another process on SQLite, and a read-only
/// database on PostgreSQL.
async fn case_management_writes_nothing_without_its_entry(backend: Backend) {
    let node = TestNode::start_with(backend, |config| {
        config.audit.write_timeout_ms = 300;
    })
    .await;
    let owner = node.caseworker(OWNER);
    let supervisor = node.token(OWNER, &[exchange_schema::Role::Supervisor]);
    let survivor = node.register_full_survivor("Faulted").await;
    // A case closed before the fault, to be opened again under it.
    let closed = node.register_full_survivor("Closed").await;
    let closing = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { closeCase(survivorId: $id, reason: GOALS_MET) { open } }",
            json!({ "id": closed }),
        )
        .await;
    assert_eq!(
        closing.data()["closeCase"]["open"],
        false,
        "{}",
        closing.body
    );
    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let requests: Vec<(&str, String, &str, serde_json::Value)> = vec![
        (
            "consentGrants",
            owner.clone(),
            "query($id: ID!) { consentGrants(survivorId: $id) { id } }",
            json!({ "id": survivor }),
        ),
        (
            "auditLog",
            supervisor.clone(),
            "query { auditLog(first: 1) { edges { node { seq } } } }",
            json!({}),
        ),
        (
            "addCaseNote",
            owner.clone(),
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": "HEALTH", "body": "x" } }),
        ),
        (
            "recordService",
            owner.clone(),
            "mutation($input: RecordServiceInput!) { recordService(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "kind": "SHELTER", "providerAgency": OWNER } }),
        ),
        (
            "scheduleFollowUp",
            owner.clone(),
            "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "kind": "PHONE_CALL", "dueAt": due } }),
        ),
        (
            "proposeCarePlan",
            owner.clone(),
            "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
            json!({ "input": { "survivorId": survivor, "goals": ["g"], "actions": [] } }),
        ),
        (
            "assignCaseworkers",
            supervisor.clone(),
            "mutation($id: ID!) { assignCaseworkers(survivorId: $id, users: [\"cw\"]) { user } }",
            json!({ "id": survivor }),
        ),
        (
            "closeCase",
            owner.clone(),
            "mutation($id: ID!) { closeCase(survivorId: $id, reason: CONTACT_LOST) { open } }",
            json!({ "id": survivor }),
        ),
        (
            "reopenCase",
            owner.clone(),
            "mutation($id: ID!) { reopenCase(survivorId: $id) { open } }",
            json!({ "id": closed }),
        ),
        (
            "caseStatus",
            owner.clone(),
            "query($id: ID!) { caseStatus(survivorId: $id) { open } }",
            json!({ "id": survivor }),
        ),
        (
            "survivor",
            owner.clone(),
            "query($id: ID!) { survivor(id: $id) { caseNotes { edges { node { id } } } } }",
            json!({ "id": survivor }),
        ),
        (
            "followUpsDue",
            owner.clone(),
            "query($b: DateTime!) { followUpsDue(before: $b) { edges { node { id } } } }",
            json!({ "b": due }),
        ),
    ];
    let tables = [
        "case_notes",
        "services",
        "follow_ups",
        "care_plans",
        "case_assignments",
        "case_closures",
        // A reopening rewrites its closing's row.
        "case_closures WHERE reopened_at IS NULL",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(node.count(table).await);
    }

    // The fault.
    let mut holder = None;
    match backend {
        Backend::Sqlite => {
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&node.database_url)
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            holder = Some(conn);
        }
        Backend::Postgres => {
            admin(
                &node.database_url,
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$",
            )
            .await;
            terminate_node_sessions(&node.database_url).await;
        }
    }
    for (field, token, query, variables) in &requests {
        let answer = node
            .gql(
                Some(token),
                Some(purpose_of(field)),
                query,
                variables.clone(),
            )
            .await;
        assert_eq!(
            answer.code(),
            "AUDIT_UNAVAILABLE",
            "{field}: {}",
            answer.body
        );
        assert!(
            answer.body["data"].is_null() || answer.body["data"][field].is_null(),
            "{field} answered with data: {}",
            answer.body
        );
    }

    // The fault clears.
    match backend {
        Backend::Sqlite => {
            let mut conn = holder.take().unwrap();
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            admin(
                &node.database_url,
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', current_database()); END $$",
            )
            .await;
            terminate_node_sessions(&node.database_url).await;
        }
    }
    for (table, count) in tables.iter().zip(&before) {
        assert_eq!(
            node.count(table).await,
            *count,
            "{table} changed under the fault"
        );
    }
    for (field, token, query, variables) in &requests {
        let mut answer = None;
        // The pool may hand out a connection ended by the fault once.
        for _ in 0..5 {
            let a = node
                .gql(
                    Some(token),
                    Some(purpose_of(field)),
                    query,
                    variables.clone(),
                )
                .await;
            if a.errors().is_empty() {
                answer = Some(a);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.is_some(), "{field} did not recover");
    }
    let (ok, report) = node.cli(&["audit", "verify", "--database", &node.database_url]);
    assert!(ok, "{report}");
}

/// The purpose each request of the test declares.
fn purpose_of(field: &str) -> &'static str {
    if field == "auditLog" {
        "AUDIT"
    } else {
        "CASE_MANAGEMENT"
    }
}

on_both_backends!(case_management_writes_nothing_without_its_entry);

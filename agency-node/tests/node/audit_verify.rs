//! `agency-node audit verify` on a database, run as the real binary: it
//! opens the database read-only and never migrates it (a mistyped path is
//! an error that creates nothing; a database without an audit log is an
//! error, not an empty log that verifies), reports missing append-only
//! triggers with its own exit status, and names a log cut below the
//! checkpoints collected from it earlier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agency_node::cli::{VERIFY_FAILED, VERIFY_OK, VERIFY_UNCHECKED, VERIFY_UNGUARDED};
use agency_node::store::Db;
use exchange_schema::audit::Checkpoint;
use sqlx::Row as _;

use crate::common::{Backend, SHELTER, TestNode, fresh_postgres_database, on_both_backends};

on_both_backends!(
    a_database_without_an_audit_log_is_refused_and_left_untouched,
    a_read_only_database_refuses_every_write,
    verifying_a_live_log_writes_nothing,
    missing_append_only_triggers_are_reported_with_their_own_status,
    a_log_cut_below_collected_checkpoints_is_named,
);

/// Runs `agency-node` with `args`: (exit status, stdout and stderr).
fn run(args: &[&str]) -> (i32, String) {
    exchange_test_kit::process::run(env!("CARGO_BIN_EXE_agency-node"), args)
}

fn status(code: u8) -> i32 {
    i32::from(code)
}

/// Every file under `dir` with its bytes: what "the directory is unchanged"
/// compares. A SQLite `-shm` file is the readers' shared-memory index,
/// which any reader updates, not data: only its presence counts.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.insert(path.clone(), Vec::new());
                pending.push(path);
            } else if path.to_string_lossy().ends_with("-shm") {
                files.insert(path.clone(), Vec::new());
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A mistyped `--data-dir` or `--database` fails (status 2), names the path
/// it looked at, and creates nothing: no directory, no database file.
#[test]
fn a_missing_sqlite_database_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let before = snapshot(dir.path());

    let typo = dir.path().join("nodee");
    let (code, out) = run(&["audit", "verify", "--data-dir", typo.to_str().unwrap()]);
    assert_eq!(code, status(VERIFY_UNCHECKED), "{out}");
    let expected = typo.join("node.db");
    assert!(
        out.contains(&format!("no database at {}", expected.display())),
        "{out}"
    );

    let empty = dir.path().join("empty");
    let (code, out) = run(&["audit", "verify", "--data-dir", empty.to_str().unwrap()]);
    assert_eq!(code, status(VERIFY_UNCHECKED), "{out}");
    assert!(out.contains("no database at"), "{out}");

    // Even a URL asking for creation only reads.
    let url = format!("sqlite://{}?mode=rwc", empty.join("node.db").display());
    let (code, out) = run(&["audit", "verify", "--database", &url]);
    assert_eq!(code, status(VERIFY_UNCHECKED), "{out}");
    assert!(out.contains("no database at"), "{out}");

    assert_eq!(snapshot(dir.path()), before, "nothing was created");
}

/// A database that holds no audit tables (an empty file, another program's
/// database, an empty PostgreSQL database) is refused with status 2 and is
/// not migrated: afterwards it holds exactly what it held before.
async fn a_database_without_an_audit_log_is_refused_and_left_untouched(backend: Backend) {
    let refused = |url: &str| {
        let (code, out) = run(&["audit", "verify", "--database", url]);
        assert_eq!(code, status(VERIFY_UNCHECKED), "{out}");
        assert!(
            out.contains("the database holds no audit log (it has no audit_log table)"),
            "{out}"
        );
        assert!(!out.contains("entries verified"), "{out}");
    };
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            // An empty file is an empty SQLite database.
            std::fs::write(dir.path().join("node.db"), b"").unwrap();
            let (code, out) = run(&[
                "audit",
                "verify",
                "--data-dir",
                dir.path().to_str().unwrap(),
            ]);
            assert_eq!(code, status(VERIFY_UNCHECKED), "{out}");
            assert!(out.contains("holds no audit log"), "{out}");
            assert_eq!(
                std::fs::read(dir.path().join("node.db")).unwrap(),
                b"",
                "not migrated"
            );

            let other = dir.path().join("other.db");
            let url = format!("sqlite://{}?mode=rwc", other.display());
            sqlx::any::install_default_drivers();
            let db = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
                .execute(&db)
                .await
                .unwrap();
            db.close().await;
            let before = snapshot(dir.path());
            refused(&url);
            assert_eq!(snapshot(dir.path()), before, "not migrated");
        }
        Backend::Postgres => {
            let scratch = fresh_postgres_database().await;
            refused(scratch.url());
            let tables = query_one(
                scratch.url(),
                "SELECT COUNT(*) AS n FROM pg_tables WHERE schemaname = current_schema()",
            )
            .await;
            assert_eq!(tables, 0, "not migrated");
        }
    }
}

/// A node with a signed history, stopped.
async fn stopped_node(backend: Backend) -> TestNode {
    let mut node = TestNode::start(backend).await;
    for i in 0..3 {
        let survivor = node.register_full_survivor(&format!("Verified {i}")).await;
        node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
            .await;
    }
    node.state.audit.checkpoint_now().await.unwrap();
    node.stop().await;
    node
}

/// The database as `audit verify` opens it refuses every write: an entry
/// appended, a table created.
async fn a_read_only_database_refuses_every_write(backend: Backend) {
    let node = stopped_node(backend).await;
    let db = Db::open_read_only(&node.database_url).await.unwrap();
    let insert = sqlx::query("INSERT INTO audit_checkpoints (seq, checkpoint) VALUES (999, '{}')")
        .execute(db.pool())
        .await;
    assert!(insert.is_err(), "an insert was accepted");
    let create = sqlx::query("CREATE TABLE scribbled (id INTEGER)")
        .execute(db.pool())
        .await;
    assert!(create.is_err(), "a table was created");
    db.close().await;
    let count: i64 = query_one(
        &node.database_url,
        "SELECT COUNT(*) AS n FROM audit_checkpoints WHERE seq = 999",
    )
    .await;
    assert_eq!(count, 0);
}

/// One number from a plain connection (no migration run).
async fn query_one(url: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query(sql).fetch_one(&pool).await.unwrap().get("n");
    pool.close().await;
    n
}

/// Verifying a stopped node's log succeeds (status 0) and leaves its SQLite
/// file byte for byte as it was; the PostgreSQL database keeps its
/// migration history unchanged.
async fn verifying_a_live_log_writes_nothing(backend: Backend) {
    let node = stopped_node(backend).await;
    let key = node.state.audit.public_key_hex();
    let migrations = || {
        query_one(
            &node.database_url,
            "SELECT COUNT(*) AS n FROM _sqlx_migrations",
        )
    };
    let before = migrations().await;
    let files = (backend == Backend::Sqlite).then(|| snapshot(&node.data_dir));
    let source = match backend {
        Backend::Sqlite => ["--data-dir", node.data_dir.to_str().unwrap()],
        Backend::Postgres => ["--database", node.database_url.as_str()],
    };
    let mut args = vec!["audit", "verify", "--public-key", &key];
    args.extend(source);
    let (code, out) = run(&args);
    assert_eq!(code, status(VERIFY_OK), "{out}");
    assert!(out.contains("entries verified through seq"), "{out}");
    assert!(!out.contains("append-only"), "{out}");
    if let Some(files) = files {
        assert_eq!(
            snapshot(&node.data_dir),
            files,
            "the data directory changed"
        );
    }
    assert_eq!(migrations().await, before);
}

/// The statements that drop the append-only triggers on `backend`, by the
/// change each guards.
fn drop_guard(backend: Backend, change: &str) -> &'static str {
    match (backend, change) {
        (Backend::Sqlite, "UPDATE") => "DROP TRIGGER audit_log_no_update",
        (Backend::Sqlite, "DELETE") => "DROP TRIGGER audit_log_no_delete",
        (Backend::Postgres, _) => "DROP TRIGGER audit_log_no_update ON audit_log",
        _ => unreachable!("UPDATE or DELETE"),
    }
}

async fn exec(db: &Db, sql: &str) {
    sqlx::query(sql).execute(db.pool()).await.unwrap();
}

/// A log whose chain verifies but whose append-only triggers were dropped
/// is reported with status 3 (`UNGUARDED`), naming the changes nothing
/// refuses; a tampered log without its triggers still fails with status 1.
async fn missing_append_only_triggers_are_reported_with_their_own_status(backend: Backend) {
    let node = stopped_node(backend).await;
    let db = Db::connect(&node.database_url).await.unwrap();
    let key = node.state.audit.public_key_hex();
    let url = node.database_url.clone();
    let verify = || run(&["audit", "verify", "--database", &url, "--public-key", &key]);

    exec(&db, drop_guard(backend, "DELETE")).await;
    let (code, out) = verify();
    assert_eq!(code, status(VERIFY_UNGUARDED), "{out}");
    assert!(out.contains("entries verified through seq"), "{out}");
    assert!(
        out.contains("UNGUARDED: the chain verifies, but the log is not protected against changes"),
        "{out}"
    );
    let expected = match backend {
        // SQLite: one trigger per change; only DELETE is now unguarded.
        Backend::Sqlite => "nothing in the database refuses DELETE of audit_log",
        // PostgreSQL: one trigger guards both.
        Backend::Postgres => "nothing in the database refuses UPDATE or DELETE of audit_log",
    };
    assert!(out.contains(expected), "{out}");

    if backend == Backend::Sqlite {
        exec(&db, drop_guard(backend, "UPDATE")).await;
        let (code, out) = verify();
        assert_eq!(code, status(VERIFY_UNGUARDED), "{out}");
        assert!(
            out.contains("nothing in the database refuses UPDATE or DELETE of audit_log"),
            "{out}"
        );
    }

    // Unguarded and tampered: the tampering decides the status.
    exec(&db, "DELETE FROM audit_log WHERE seq = 2").await;
    let (code, out) = verify();
    assert_eq!(code, status(VERIFY_FAILED), "{out}");
    assert!(out.contains("FAILED: entry 2 was deleted"), "{out}");
    assert!(out.contains("append-only triggers are missing"), "{out}");
    db.close().await;
}

/// Against checkpoints collected earlier (the node's `/audit/checkpoints`,
/// as the gateway collects them), `audit verify` fails with status 1 when
/// the log's own checkpoints stop before the newest collected one, and when
/// the log ends before it, naming both seqs and when it was signed.
async fn a_log_cut_below_collected_checkpoints_is_named(backend: Backend) {
    let mut node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Collected").await;
    node.state.audit.checkpoint_now().await.unwrap();
    let (early, _) = node.state.audit.head().await;
    node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
        .await;
    node.register_full_survivor("Collected later").await;
    node.state.audit.checkpoint_now().await.unwrap();
    let (late, _) = node.state.audit.head().await;
    assert!(early < late, "{early} < {late}");
    let served = node
        .client
        .get(format!("{}/audit/checkpoints", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    node.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let collected = dir.path().join("collected-checkpoints.jsonl");
    std::fs::write(&collected, &served).unwrap();
    let newest: Checkpoint = served
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Checkpoint>(l).unwrap())
        .max_by_key(|cp| cp.seq)
        .unwrap();
    assert_eq!(newest.seq, late);
    let signed_at = newest
        .signed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    let key = node.state.audit.public_key_hex();
    let url = node.database_url.clone();
    let collected = collected.to_str().unwrap().to_owned();
    let verify = || {
        run(&[
            "audit",
            "verify",
            "--database",
            &url,
            "--public-key",
            &key,
            "--collected",
            &collected,
        ])
    };
    let (code, out) = verify();
    assert_eq!(code, status(VERIFY_OK), "untouched, it matches: {out}");

    // The log's newest checkpoints removed; the entries stay.
    let db = Db::connect(&node.database_url).await.unwrap();
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq > $1")
        .bind(early as i64)
        .execute(db.pool())
        .await
        .unwrap();
    let newest_own: i64 = sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("seq");
    let (code, out) = verify();
    assert_eq!(code, status(VERIFY_FAILED), "{out}");
    assert!(
        out.contains(&format!(
            "FAILED: the log's newest checkpoint is at seq {newest_own} but a checkpoint collected \
             earlier (signed at {signed_at}) covers seq {late} > {newest_own}: its checkpoints were cut"
        )),
        "{out}"
    );

    // Then the entries after it cut too.
    for change in ["UPDATE", "DELETE"] {
        let sql = drop_guard(backend, change);
        if backend == Backend::Sqlite || change == "UPDATE" {
            exec(&db, sql).await;
        }
    }
    sqlx::query("DELETE FROM audit_log WHERE seq > $1")
        .bind(newest_own)
        .execute(db.pool())
        .await
        .unwrap();
    // As the attacker would, the signed head that covers them goes too.
    let head_guards: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_head_forward_only",
            "DROP TRIGGER audit_head_no_delete",
        ],
        Backend::Postgres => &["DROP TRIGGER audit_head_forward_only ON audit_head"],
    };
    for sql in head_guards {
        exec(&db, sql).await;
    }
    exec(&db, "DELETE FROM audit_head").await;
    db.close().await;
    let (code, out) = verify();
    assert_eq!(code, status(VERIFY_FAILED), "{out}");
    assert!(
        out.contains(&format!(
            "FAILED: the log ends at seq {newest_own} but a checkpoint collected earlier \
             (signed at {signed_at}) covers seq {late} > {newest_own}: entries were cut"
        )),
        "{out}"
    );
}

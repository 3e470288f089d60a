//! The PostgreSQL suite's scratch databases are dropped when the test that
//! made them ends, passing or panicking, so test runs do not pile databases
//! up on the server (`exchange_test_kit::scratch`).

use agency_node::store::Db;
use exchange_test_kit::scratch::ADMIN_URL_VAR;
use sqlx::Connection as _;

use crate::common::fresh_postgres_database;

/// A connection as the test account, on the server the suite uses.
async fn admin_connection() -> sqlx::PgConnection {
    let admin = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| {
        panic!("{ADMIN_URL_VAR} must be set: the PostgreSQL suite never skips")
    });
    sqlx::PgConnection::connect(&admin).await.unwrap()
}

async fn exists(name: &str) -> bool {
    let mut conn = admin_connection().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    count == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_database_is_dropped_with_its_value_even_while_a_pool_uses_it() {
    let scratch = fresh_postgres_database().await;
    let name = scratch.name().to_owned();
    assert!(name.starts_with("exchange_test_"), "{name}");
    let db = Db::connect(scratch.url()).await.unwrap();
    assert!(exists(&name).await, "the database was created");
    drop(scratch);
    assert!(!exists(&name).await, "{name} is still on the server");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_database_is_dropped_when_the_test_holding_it_panics() {
    let (name_tx, name_rx) = tokio::sync::oneshot::channel();
    let failing_test = tokio::spawn(async move {
        let scratch = fresh_postgres_database().await;
        name_tx.send(scratch.name().to_owned()).unwrap();
        panic!("a failing test");
    });
    assert!(failing_test.await.unwrap_err().is_panic());
    let name = name_rx.await.unwrap();
    assert!(!exists(&name).await, "{name} is still on the server");
}

/// The drop, `WITH (FORCE)`, must end every session on the database, an
/// autovacuum worker's too; a worker belongs to no role, so only a member
/// of `pg_signal_backend` may end it, and without that a drop that met
/// autovacuum failed and left the database behind. `scripts/postgres.sh`
/// grants the role; a server set up by hand needs the same grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_account_may_end_autovacuum_on_its_scratch_databases() {
    let mut conn = admin_connection().await;
    let may_signal: bool =
        sqlx::query_scalar("SELECT pg_has_role(current_user, 'pg_signal_backend', 'USAGE')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        may_signal,
        "the test account needs `GRANT pg_signal_backend TO <account>` (scripts/postgres.sh does it)"
    );
}

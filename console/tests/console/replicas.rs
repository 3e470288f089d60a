//! Console sessions in a database (`[session] database_url`): replicas of
//! the console share them (signed in at one, known at the other; signed out
//! or revoked at one, gone at the other), a console restarted on its SQLite file keeps
//! its caseworkers signed in, what is stored opens only with the session
//! key and holds no token in clear, and a store that fails answers 503
//! SESSIONS_UNAVAILABLE without handing out a session.

use exchange_console::config::SessionConfig;
use sqlx::Row as _;

use crate::{Harness, IdentityProvider};

/// A session configuration on `database_url`, its key in `dir`.
fn shared(database_url: &str, dir: &std::path::Path) -> SessionConfig {
    SessionConfig {
        database_url: Some(exchange_service::config::DatabaseUrl(
            database_url.to_owned(),
        )),
        key_file: Some(dir.join("session.key")),
        ..SessionConfig::default()
    }
}

async fn replicas_share_sessions_and_their_ends(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        IdentityProvider::Development,
        shared(database_url, dir.path()),
    )
    .await;
    let mut first = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let cookie = first.cookie.clone().expect("a session");
    let (second_url, second_state) = h.replica(h.config.clone()).await;
    let mut second = first.at(&second_url);

    // Known at the other replica, with the caseworker's name.
    let inbox = second.get("/referrals").await;
    assert_eq!(inbox.status, 200, "{inbox:?}");
    assert!(
        inbox.body.contains("Caseworker of shelter-north"),
        "{}",
        inbox.body
    );

    // Stored sealed: no cookie token, no access token, no user in clear.
    let access_token = h
        .state
        .sessions
        .get(&cookie)
        .and_then(|s| s.signed_in)
        .expect("signed in")
        .access_token;
    let store = h.state.shared_sessions.as_ref().expect("a shared store");
    let rows = sqlx::query("SELECT token_digest, user_digest, sealed FROM console_sessions")
        .fetch_all(store.db().pool())
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        let text = format!(
            "{} {} {}",
            row.get::<String, _>("token_digest"),
            row.get::<Option<String>, _>("user_digest")
                .unwrap_or_default(),
            row.get::<String, _>("sealed")
        );
        for secret in [
            cookie.as_str(),
            access_token.as_str(),
            "caseworker@shelter-north",
        ] {
            assert!(
                !text.contains(secret),
                "a session row holds {secret} in clear"
            );
        }
    }

    // A replica given another key opens none of it: the browser is not
    // signed in there, and the session stays whole for the others.
    let other_key = tempfile::tempdir().unwrap();
    let (third_url, _) = h
        .replica(exchange_console::config::ConsoleConfig {
            session: shared(database_url, other_key.path()),
            ..h.config.clone()
        })
        .await;
    let elsewhere = first.at(&third_url).get("/referrals").await;
    assert_eq!(elsewhere.status, 303, "{elsewhere:?}");
    assert_eq!(elsewhere.location.as_deref(), Some("/"));

    // Signed out at the second replica: gone at the first.
    let csrf = inbox.csrf();
    let out = second.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{out:?}");
    let after = first.get("/referrals").await;
    assert_eq!(after.status, 303, "{after:?}");
    assert_eq!(after.location.as_deref(), Some("/"));

    // A revocation at one replica ends the caseworker's sessions at all.
    let mut again = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    assert_eq!(again.get("/referrals").await.status, 200);
    let ended = second_state
        .end_user_sessions("shelter-north", "caseworker@shelter-north")
        .await
        .unwrap();
    assert_eq!(ended, 1);
    let revoked = again.get("/referrals").await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_on_one_postgresql_share_sessions_and_their_ends() {
    let db = exchange_test_kit::fresh_postgres_database().await;
    replicas_share_sessions_and_their_ends(db.url()).await;
}

/// On SQLite the second console is the first restarted on its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_restarted_on_its_session_file_keeps_its_caseworkers_signed_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sessions.db").display()
    );
    replicas_share_sessions_and_their_ends(&url).await;
}

/// The session database fails (its pool closed, as when the database is
/// gone): pages answer 503 SESSIONS_UNAVAILABLE in plain words, hand out
/// no cookie, and nothing panics; a console with a working store (another
/// replica) still knows the caseworker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_session_store_answers_503_and_hands_out_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sessions.db").display()
    );
    let h = Harness::start_with(IdentityProvider::Development, shared(&url, dir.path())).await;
    let mut browser = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let cookie = browser.cookie.clone();
    let (replica_url, _) = h.replica(h.config.clone()).await;
    h.state
        .shared_sessions
        .as_ref()
        .expect("a shared store")
        .db()
        .pool()
        .close()
        .await;

    let page = browser.get("/referrals").await;
    assert_eq!(page.status, 503, "{page:?}");
    assert_eq!(page.code.as_deref(), Some("SESSIONS_UNAVAILABLE"));
    assert!(
        page.body.contains("cannot reach its session store"),
        "{}",
        page.body
    );
    assert_eq!(browser.cookie, cookie, "a cookie was handed out");
    // A new visitor (no cookie): refused the same way, given no session.
    let mut stranger = h.browser();
    let start = stranger.get("/").await;
    assert_eq!(start.status, 503, "{start:?}");
    assert!(
        stranger.cookie.is_none(),
        "a session the store does not hold was handed out"
    );

    let at_replica = browser.at(&replica_url).get("/referrals").await;
    assert_eq!(at_replica.status, 200, "{at_replica:?}");
    // The failing console says it is not ready, so traffic goes elsewhere;
    // the other is ready.
    assert_eq!(h.browser().get("/readyz").await.status, 503);
    assert_eq!(browser.at(&replica_url).get("/readyz").await.status, 200);
}

/// A console whose sessions are in a SQLite file in a temporary directory
/// (kept while the directory lives), a caseworker signed in, and that
/// caseworker's session, to store under other tokens.
async fn signed_in_on_sqlite() -> (
    tempfile::TempDir,
    Harness,
    exchange_console::session::Session,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sessions.db").display()
    );
    let h = Harness::start_with(IdentityProvider::Development, shared(&url, dir.path())).await;
    let browser = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    let session = h
        .state
        .sessions
        .get(browser.cookie.as_deref().expect("a session"))
        .expect("the working copy");
    (dir, h, session)
}

/// A stored session past its end opens nowhere, and the purge (run as
/// sessions are saved) removes it and only it; a session ended while a
/// request that loaded it ran is not written back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_stored_session_opens_nowhere_and_is_purged() {
    let (_dir, h, session) = signed_in_on_sqlite().await;
    let store = h.state.shared_sessions.as_ref().expect("a shared store");
    let now = time::OffsetDateTime::now_utc();
    store
        .insert("ended-token", &session, now - time::Duration::minutes(1))
        .await
        .unwrap();
    store
        .insert("live-token", &session, now + time::Duration::hours(1))
        .await
        .unwrap();
    assert!(store.load("ended-token").await.unwrap().is_none());
    assert!(store.load("live-token").await.unwrap().is_some());
    assert!(store.purge_ended().await.unwrap() >= 1);

    let left: Vec<String> = sqlx::query("SELECT token_digest FROM console_sessions")
        .fetch_all(store.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("token_digest"))
        .collect();
    let digest = |t: &str| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(!left.contains(&digest("ended-token")), "{left:?}");
    assert!(left.contains(&digest("live-token")), "{left:?}");

    // A request that loaded a session before another replica ended it
    // writes it back only if it is still there: the sign-out stands.
    store.delete("live-token").await.unwrap();
    let still_there = store
        .update("live-token", &session, now + time::Duration::hours(1))
        .await
        .unwrap();
    assert!(!still_there);
    assert!(store.load("live-token").await.unwrap().is_none());
}

/// A purge of ended sessions that fails (here a trigger refuses it, as a
/// full disk or a lost connection would at that moment) is logged and tried
/// again later: the save it rode on stands and no request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_purge_of_ended_sessions_refuses_no_save() {
    let (_dir, h, session) = signed_in_on_sqlite().await;
    let store = h.state.shared_sessions.as_ref().expect("a shared store");
    let now = time::OffsetDateTime::now_utc();
    store
        .insert("ended-token", &session, now - time::Duration::minutes(1))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_purges BEFORE DELETE ON console_sessions \
         WHEN OLD.expires_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000 \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
    )
    .execute(store.db().pool())
    .await
    .unwrap();
    let count = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_one(store.db().pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    let before = count("SELECT COUNT(*) FROM console_sessions").await;
    // Enough saves that one of them purges (every 256th does).
    for n in 0..300 {
        store
            .insert(
                &format!("live-{n}"),
                &session,
                now + time::Duration::hours(1),
            )
            .await
            .unwrap_or_else(|e| panic!("save {n} refused by its failing purge: {e}"));
    }
    assert_eq!(
        count("SELECT COUNT(*) FROM console_sessions").await,
        before + 300,
        "the ended session is still there: the purge failed"
    );
    sqlx::query("DROP TRIGGER refuse_purges")
        .execute(store.db().pool())
        .await
        .unwrap();
    assert_eq!(store.purge_ended().await.unwrap(), 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM console_sessions").await,
        before + 299
    );
}

/// The session database hangs (another session holds an exclusive lock on
/// the sessions' table, which PostgreSQL waits on without end): the request
/// is refused with 503 SESSIONS_UNAVAILABLE after `store_timeout_ms`, not
/// held; once the lock goes, the caseworker is still signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_store_that_hangs_is_given_up_on_within_its_time_bound() {
    use sqlx::Connection as _;
    let db = exchange_test_kit::fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        IdentityProvider::Development,
        SessionConfig {
            store_timeout_ms: 300,
            ..shared(db.url(), dir.path())
        },
    )
    .await;
    let mut browser = h
        .signed_in("shelter-north", "caseworker@shelter-north")
        .await;
    sqlx::any::install_default_drivers();
    let mut holder = sqlx::AnyConnection::connect(db.url()).await.unwrap();
    let mut lock = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE console_sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    // Without the bound the request would wait as long as the lock lasts:
    // this only tells a refusal from a hang.
    let page = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        browser.get("/referrals"),
    )
    .await
    .expect("the request was held by the hung store, not refused");
    assert_eq!(page.status, 503, "{page:?}");
    assert_eq!(page.code.as_deref(), Some("SESSIONS_UNAVAILABLE"));
    lock.rollback().await.unwrap();
    let after = browser.get("/referrals").await;
    assert_eq!(after.status, 200, "{after:?}");
}

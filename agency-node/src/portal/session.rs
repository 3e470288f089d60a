//! Portal sessions, kept in the node's database so that every replica of
//! the node answers a browser as one: a random token in an `HttpOnly;
//! Secure; SameSite=Strict` cookie, the CSRF token every form carries, the
//! chosen language, and — once signed in — which survivor.
//!
//! Every visitor gets a session, so even the sign-in form carries a CSRF
//! token; signing in replaces the session with a fresh one (no fixation).
//! Sessions end after an idle period and at most a few hours after sign-in.
//! Tokens are kept only as SHA-256 digests. The store reads the time from
//! a [`Clock`]: the system's, or a clock a test moves. A database that
//! cannot be read or written is an error the caller shows; no session is
//! assumed.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_service::db::{Db, from_ms, to_ms};
use sqlx::Row as _;
use time::OffsetDateTime;

use super::i18n::Lang;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "portal_session";
/// Longest a signed-in session lasts, however active.
const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(4 * 3600);
/// Most sessions held at once; beyond it the oldest anonymous ones go.
const MAX_SESSIONS: i64 = 20_000;

/// A signed-in survivor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The survivor's local ID.
    pub survivor_id: String,
    /// When the code used was issued: a newer code ends this session.
    pub code_issued_at: OffsetDateTime,
    /// False until the survivor has chosen a PIN for a new code.
    pub pin_chosen: bool,
}

/// One visitor's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf_token: String,
    pub lang: Option<Lang>,
    pub signed_in: Option<SignedIn>,
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
}

/// Where the session store reads the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

impl Session {
    /// A session that is not stored: only to answer a visitor when the
    /// store cannot be read (an error page carries no form that works).
    pub fn transient(lang: Option<Lang>) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            csrf_token: random_token(),
            lang,
            signed_in: None,
            created: now,
            last_seen: now,
        }
    }
}

/// The system's clock: what a running node uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The node's portal sessions, in its database.
#[derive(Debug)]
pub struct SessionStore {
    db: Db,
    idle: Duration,
    clock: Arc<dyn Clock>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not recoverable for a security token.
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

impl SessionStore {
    /// A store in `db` whose sessions end after `idle` without use, on the
    /// system clock.
    pub fn new(db: Db, idle: Duration) -> Self {
        Self::with_clock(db, idle, Arc::new(SystemClock))
    }

    /// A store reading the time from `clock`.
    pub fn with_clock(db: Db, idle: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { db, idle, clock }
    }

    fn alive(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.last_seen < self.idle
            && (session.signed_in.is_none() || now - session.created < ABSOLUTE_LIFETIME)
    }

    /// Deletes what has expired, and the oldest anonymous sessions beyond
    /// [`MAX_SESSIONS`].
    async fn sweep(&self, now: OffsetDateTime) -> Result<(), sqlx::Error> {
        let idle_since = to_ms(now - self.idle);
        let signed_in_since = to_ms(now - ABSOLUTE_LIFETIME);
        sqlx::query(
            "DELETE FROM portal_sessions WHERE last_seen_at <= $1 \
             OR (survivor_id IS NOT NULL AND created_at <= $2)",
        )
        .bind(idle_since)
        .bind(signed_in_since)
        .execute(self.db.pool())
        .await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM portal_sessions")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        if count >= MAX_SESSIONS {
            sqlx::query(
                "DELETE FROM portal_sessions WHERE token_hash IN (SELECT token_hash \
                 FROM portal_sessions WHERE survivor_id IS NULL ORDER BY last_seen_at LIMIT $1)",
            )
            .bind(count - MAX_SESSIONS + 1)
            .execute(self.db.pool())
            .await?;
        }
        Ok(())
    }

    /// A new session; its token (for the cookie) and the session.
    pub async fn create(
        &self,
        lang: Option<Lang>,
        signed_in: Option<SignedIn>,
    ) -> Result<(String, Session), sqlx::Error> {
        let token = random_token();
        let now = self.clock.now();
        self.sweep(now).await?;
        let session = Session {
            csrf_token: random_token(),
            lang,
            signed_in,
            created: now,
            last_seen: now,
        };
        let who = session.signed_in.as_ref();
        sqlx::query(
            "INSERT INTO portal_sessions (token_hash, csrf_token, lang, survivor_id, \
             code_issued_at, pin_chosen, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key(&token))
        .bind(&session.csrf_token)
        .bind(session.lang.map(|l| l.tag().to_owned()))
        .bind(who.map(|w| w.survivor_id.clone()))
        .bind(who.map(|w| to_ms(w.code_issued_at)))
        .bind(i64::from(who.is_some_and(|w| w.pin_chosen)))
        .bind(to_ms(now))
        .bind(to_ms(now))
        .execute(self.db.pool())
        .await?;
        Ok((token, session))
    }

    /// The live session for a cookie token, touched; `None` when unknown or
    /// expired (an expired one is removed).
    pub async fn get(&self, token: &str) -> Result<Option<Session>, sqlx::Error> {
        let now = self.clock.now();
        let k = key(token);
        let Some(row) = sqlx::query(
            "SELECT csrf_token, lang, survivor_id, code_issued_at, pin_chosen, created_at, \
             last_seen_at FROM portal_sessions WHERE token_hash = $1",
        )
        .bind(&k)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let survivor: Option<String> = row.try_get("survivor_id")?;
        let issued: Option<i64> = row.try_get("code_issued_at")?;
        let lang: Option<String> = row.try_get("lang")?;
        let mut session = Session {
            csrf_token: row.try_get("csrf_token")?,
            lang: lang.as_deref().and_then(Lang::parse),
            signed_in: match (survivor, issued) {
                (Some(survivor_id), Some(issued)) => Some(SignedIn {
                    survivor_id,
                    code_issued_at: from_ms(issued),
                    pin_chosen: row.try_get::<i64, _>("pin_chosen")? != 0,
                }),
                _ => None,
            },
            created: from_ms(row.try_get("created_at")?),
            last_seen: from_ms(row.try_get("last_seen_at")?),
        };
        if !self.alive(&session, now) {
            self.remove(token).await?;
            return Ok(None);
        }
        sqlx::query("UPDATE portal_sessions SET last_seen_at = $2 WHERE token_hash = $1")
            .bind(&k)
            .bind(to_ms(now))
            .execute(self.db.pool())
            .await?;
        session.last_seen = now;
        Ok(Some(session))
    }

    /// Sets the session's language.
    pub async fn set_lang(&self, token: &str, lang: Lang) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE portal_sessions SET lang = $2 WHERE token_hash = $1")
            .bind(key(token))
            .bind(lang.tag())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records that the signed-in survivor has chosen their PIN.
    pub async fn set_pin_chosen(&self, token: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE portal_sessions SET pin_chosen = 1 WHERE token_hash = $1 \
             AND survivor_id IS NOT NULL",
        )
        .bind(key(token))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn remove(&self, token: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
            .bind(key(token))
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of a survivor (a new code was issued).
    pub async fn sign_out_survivor(&self, survivor_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM portal_sessions WHERE survivor_id = $1")
            .bind(survivor_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

/// Compares a submitted CSRF token with the session's in constant time.
pub fn csrf_matches(session: &Session, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|submitted| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            session.csrf_token.as_bytes(),
            submitted.as_bytes(),
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's database, migrated, in a temporary directory.
    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(
            &crate::store::sqlite_url(dir.path()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        (dir, db)
    }

    /// A clock that moves only when the test moves it.
    #[derive(Debug)]
    struct ManualClock(std::sync::Mutex<OffsetDateTime>);

    impl ManualClock {
        fn new() -> Arc<Self> {
            Arc::new(Self(std::sync::Mutex::new(OffsetDateTime::now_utc())))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_token_only_and_its_token_is_not_stored() {
        let (_dir, db) = db().await;
        let store = SessionStore::new(db.clone(), Duration::from_secs(60));
        let (token, session) = store.create(None, None).await.unwrap();
        assert_eq!(
            store.get(&token).await.unwrap().map(|s| s.csrf_token),
            Some(session.csrf_token)
        );
        assert!(store.get("not-a-token").await.unwrap().is_none());
        let stored: String = sqlx::query("SELECT token_hash FROM portal_sessions")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("token_hash");
        assert_ne!(stored, token);
        assert_eq!(stored, key(&token));
    }

    /// Two stores on one database (two replicas of a node): a session made
    /// by one is found, changed and ended through the other.
    #[tokio::test]
    async fn two_replicas_share_their_sessions() {
        let (_dir, db) = db().await;
        let one = SessionStore::new(db.clone(), Duration::from_secs(60));
        let other = SessionStore::new(db, Duration::from_secs(60));
        let who = SignedIn {
            survivor_id: "s1".into(),
            code_issued_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            pin_chosen: false,
        };
        let (token, _) = one.create(Some(Lang::Ar), Some(who.clone())).await.unwrap();
        let seen = other
            .get(&token)
            .await
            .unwrap()
            .expect("the other replica knows it");
        assert_eq!(seen.signed_in, Some(who));
        assert_eq!(seen.lang, Some(Lang::Ar));
        other.set_pin_chosen(&token).await.unwrap();
        other.set_lang(&token, Lang::Fr).await.unwrap();
        let again = one.get(&token).await.unwrap().unwrap();
        assert!(again.signed_in.unwrap().pin_chosen);
        assert_eq!(again.lang, Some(Lang::Fr));
        other.remove(&token).await.unwrap();
        assert!(one.get(&token).await.unwrap().is_none());
    }

    /// A session ends once it has gone unused for the idle period; each use
    /// starts the period again.
    #[tokio::test]
    async fn an_idle_session_expires() {
        let (_dir, db) = db().await;
        let idle = Duration::from_secs(15 * 60);
        let clock = ManualClock::new();
        let store = SessionStore::with_clock(db, idle, clock.clone());
        let (token, _) = store.create(None, None).await.unwrap();
        clock.advance(idle - Duration::from_secs(1));
        assert!(
            store.get(&token).await.unwrap().is_some(),
            "used just in time"
        );
        clock.advance(idle - Duration::from_secs(1));
        assert!(
            store.get(&token).await.unwrap().is_some(),
            "the last use started the idle period again"
        );
        clock.advance(idle);
        assert!(
            store.get(&token).await.unwrap().is_none(),
            "idle for the whole period"
        );
    }

    /// However active, a signed-in session ends four hours after sign-in;
    /// an anonymous one lives as long as it is used.
    #[tokio::test]
    async fn a_signed_in_session_ends_after_its_absolute_lifetime() {
        let (_dir, db) = db().await;
        let clock = ManualClock::new();
        let store = SessionStore::with_clock(db, Duration::from_secs(3600), clock.clone());
        let who = SignedIn {
            survivor_id: "a".into(),
            code_issued_at: OffsetDateTime::UNIX_EPOCH,
            pin_chosen: true,
        };
        let (signed_in, _) = store.create(None, Some(who)).await.unwrap();
        let (anonymous, _) = store.create(None, None).await.unwrap();
        for _ in 0..4 {
            clock.advance(Duration::from_secs(59 * 60));
            assert!(store.get(&signed_in).await.unwrap().is_some());
            assert!(store.get(&anonymous).await.unwrap().is_some());
        }
        clock.advance(Duration::from_secs(5 * 60));
        assert!(store.get(&signed_in).await.unwrap().is_none());
        assert!(store.get(&anonymous).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn signing_a_survivor_out_ends_their_sessions_only() {
        let (_dir, db) = db().await;
        let store = SessionStore::new(db, Duration::from_secs(60));
        let who = |id: &str| SignedIn {
            survivor_id: id.into(),
            code_issued_at: OffsetDateTime::UNIX_EPOCH,
            pin_chosen: true,
        };
        let (a, _) = store.create(None, Some(who("a"))).await.unwrap();
        let (b, _) = store.create(None, Some(who("b"))).await.unwrap();
        store.sign_out_survivor("a").await.unwrap();
        assert!(store.get(&a).await.unwrap().is_none());
        assert!(store.get(&b).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_csrf_token_must_match_exactly() {
        let (_dir, db) = db().await;
        let store = SessionStore::new(db, Duration::from_secs(60));
        let (_, session) = store.create(None, None).await.unwrap();
        assert!(csrf_matches(&session, Some(&session.csrf_token.clone())));
        assert!(!csrf_matches(&session, None));
        assert!(!csrf_matches(&session, Some("")));
        assert!(!csrf_matches(&session, Some("forged")));
    }

    /// The database closed: the store says so, it assumes no session.
    #[tokio::test]
    async fn a_store_that_cannot_be_read_is_an_error() {
        let (_dir, db) = db().await;
        let store = SessionStore::new(db.clone(), Duration::from_secs(60));
        let (token, _) = store.create(None, None).await.unwrap();
        db.pool().close().await;
        assert!(store.get(&token).await.is_err());
        assert!(store.create(None, None).await.is_err());
    }
}

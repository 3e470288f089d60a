//! Portal sessions, kept in the node's memory: a random token in an
//! `HttpOnly; Secure; SameSite=Strict` cookie, the CSRF token every form
//! carries, the chosen language, and — once signed in — which survivor.
//!
//! Every visitor gets a session, so even the sign-in form carries a CSRF
//! token; signing in replaces the session with a fresh one (no fixation).
//! Sessions end after an idle period and at most a few hours after sign-in;
//! a restart of the node signs everyone out, which is the safe direction.
//! Tokens are kept only as SHA-256 digests. The store reads the time from
//! a [`Clock`]: the system's monotonic clock, or a clock a test moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::i18n::Lang;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "portal_session";
/// Longest a signed-in session lasts, however active.
const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(4 * 3600);
/// Most sessions held at once; beyond it the oldest anonymous ones go.
const MAX_SESSIONS: usize = 20_000;

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
    created: Instant,
    last_seen: Instant,
}

/// Where the session store reads the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
}

/// The system's monotonic clock: what a running node uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The node's portal sessions.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    clock: Arc<dyn Clock>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not recoverable for a security token.
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl SessionStore {
    /// A store whose sessions end after `idle` without use, on the system
    /// clock.
    pub fn new(idle: Duration) -> Self {
        Self::with_clock(idle, Arc::new(SystemClock))
    }

    /// A store reading the time from `clock`.
    pub fn with_clock(idle: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) < self.idle
            && (session.signed_in.is_none()
                || now.duration_since(session.created) < ABSOLUTE_LIFETIME)
    }

    /// A new session; its token (for the cookie) and the session.
    pub fn create(&self, lang: Option<Lang>, signed_in: Option<SignedIn>) -> (String, Session) {
        let token = random_token();
        let now = self.clock.now();
        let session = Session {
            csrf_token: random_token(),
            lang,
            signed_in,
            created: now,
            last_seen: now,
        };
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| self.alive(s, now));
        }
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .filter(|(_, s)| s.signed_in.is_none())
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(key(&token), session.clone());
        (token, session)
    }

    /// The live session for a cookie token, touched; `None` when unknown or
    /// expired (an expired one is removed).
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = self.clock.now();
        let mut sessions = self.lock();
        let k = key(token);
        let alive = sessions.get(&k).is_some_and(|s| self.alive(s, now));
        if !alive {
            sessions.remove(&k);
            return None;
        }
        let session = sessions.get_mut(&k)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// Changes a live session in place.
    pub fn update(&self, token: &str, change: impl FnOnce(&mut Session)) {
        if let Some(session) = self.lock().get_mut(&key(token)) {
            change(session);
        }
    }

    /// Ends a session.
    pub fn remove(&self, token: &str) {
        self.lock().remove(&key(token));
    }

    /// Ends every session of a survivor (a new code was issued).
    pub fn sign_out_survivor(&self, survivor_id: &str) {
        self.lock().retain(|_, s| {
            s.signed_in
                .as_ref()
                .is_none_or(|who| who.survivor_id != survivor_id)
        });
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

    #[test]
    fn a_session_is_found_by_its_token_only() {
        let store = SessionStore::new(Duration::from_secs(60));
        let (token, session) = store.create(None, None);
        assert_eq!(
            store.get(&token).map(|s| s.csrf_token),
            Some(session.csrf_token)
        );
        assert!(store.get("not-a-token").is_none());
    }

    /// A clock that moves only when the test moves it.
    #[derive(Debug)]
    struct ManualClock(Mutex<Instant>);

    impl ManualClock {
        fn new() -> Arc<Self> {
            Arc::new(Self(Mutex::new(Instant::now())))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    /// A session ends once it has gone unused for the idle period; each use
    /// starts the period again.
    #[test]
    fn an_idle_session_expires() {
        let idle = Duration::from_secs(15 * 60);
        let clock = ManualClock::new();
        let store = SessionStore::with_clock(idle, clock.clone());
        let (token, _) = store.create(None, None);
        clock.advance(idle - Duration::from_secs(1));
        assert!(store.get(&token).is_some(), "used just in time");
        clock.advance(idle - Duration::from_secs(1));
        assert!(
            store.get(&token).is_some(),
            "the last use started the idle period again"
        );
        clock.advance(idle);
        assert!(store.get(&token).is_none(), "idle for the whole period");
    }

    /// However active, a signed-in session ends four hours after sign-in;
    /// an anonymous one lives as long as it is used.
    #[test]
    fn a_signed_in_session_ends_after_its_absolute_lifetime() {
        let store = SessionStore::new(Duration::from_secs(24 * 3600));
        let who = SignedIn {
            survivor_id: "a".into(),
            code_issued_at: OffsetDateTime::UNIX_EPOCH,
            pin_chosen: true,
        };
        let (_, signed_in) = store.create(None, Some(who));
        let (_, anonymous) = store.create(None, None);
        let just_before = signed_in.created + ABSOLUTE_LIFETIME - Duration::from_secs(1);
        let just_after = signed_in.created + ABSOLUTE_LIFETIME + Duration::from_secs(1);
        assert!(store.alive(&signed_in, just_before));
        assert!(!store.alive(&signed_in, just_after));
        assert!(store.alive(&anonymous, just_after));
    }

    #[test]
    fn signing_a_survivor_out_ends_their_sessions_only() {
        let store = SessionStore::new(Duration::from_secs(60));
        let who = |id: &str| SignedIn {
            survivor_id: id.into(),
            code_issued_at: OffsetDateTime::UNIX_EPOCH,
            pin_chosen: true,
        };
        let (a, _) = store.create(None, Some(who("a")));
        let (b, _) = store.create(None, Some(who("b")));
        store.sign_out_survivor("a");
        assert!(store.get(&a).is_none());
        assert!(store.get(&b).is_some());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let store = SessionStore::new(Duration::from_secs(60));
        let (_, session) = store.create(None, None);
        assert!(csrf_matches(&session, Some(&session.csrf_token.clone())));
        assert!(!csrf_matches(&session, None));
        assert!(!csrf_matches(&session, Some("")));
        assert!(!csrf_matches(&session, Some("forged")));
    }
}

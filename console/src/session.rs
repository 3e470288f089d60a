//! Console sessions, kept server-side in memory: a random token in an
//! `HttpOnly; Secure; SameSite=Lax` cookie (Lax so that the identity
//! provider's redirect back to the callback carries it), the CSRF token
//! every form carries, the chosen language, the sign-in in progress (state,
//! nonce and PKCE verifier) and, once signed in, the caseworker's tokens.
//!
//! Signing in replaces the session with a fresh one (no fixation); a session
//! ends after an idle period, at most some hours after sign-in, and when its
//! access token expires; signing out removes it. Tokens are kept only as
//! SHA-256 digests.
//!
//! This store is the process's working copy. Alone (the default) it is the
//! only copy, and a restart signs everyone out, the safe direction; with
//! `[session] database_url` the sessions live in the database
//! ([`crate::shared_sessions`]), shared by the console's replicas and kept
//! across restarts, and each request loads its session here and writes it
//! back. Times are wall-clock, so that a session read by another replica
//! keeps its age.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, AgencyKind, Role};
use exchange_service::lang::Lang;
use exchange_trust::Principal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "console_session";
/// Most sessions held at once; beyond it the oldest go.
const MAX_SESSIONS: usize = 20_000;
/// Longest a sign-in may wait at the identity provider.
const SIGN_IN_LIFETIME: Duration = Duration::from_secs(600);

/// How long ago `at` was (zero if the clock went back).
fn since(at: OffsetDateTime) -> Duration {
    (OffsetDateTime::now_utc() - at)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

/// A sign-in sent to an identity provider and not yet back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub agency: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    started: OffsetDateTime,
}

impl PendingSignIn {
    pub fn new(agency: String, state: String, nonce: String, pkce_verifier: String) -> Self {
        Self {
            agency,
            state,
            nonce,
            pkce_verifier,
            started: OffsetDateTime::now_utc(),
        }
    }

    pub fn expired(&self) -> bool {
        since(self.started) > SIGN_IN_LIFETIME
    }
}

/// A signed-in caseworker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    /// Who the access token says they are (checked as the gateway checks it).
    #[serde(with = "principal_record")]
    pub principal: Principal,
    /// The `name` claim of the ID token, when the provider gave one.
    pub display_name: Option<String>,
    /// The bearer token sent to the gateway; never shown to the browser.
    pub access_token: String,
    /// The ID token, as `id_token_hint` at sign-out.
    pub id_token: String,
    /// The refresh token, when the provider issued one: the console renews
    /// the access token with it, and so learns when the provider has ended
    /// the caseworker's access.
    pub refresh_token: Option<String>,
    /// When the provider last confirmed the sign-in (sign-in or refresh).
    pub confirmed_at: OffsetDateTime,
    signed_in_at: OffsetDateTime,
}

/// A [`Principal`] as a stored session holds it.
mod principal_record {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Record {
        agency: AgencyId,
        agency_kind: AgencyKind,
        user: String,
        roles: Vec<Role>,
        issuer: String,
        expires_at: OffsetDateTime,
    }

    pub fn serialize<S: serde::Serializer>(p: &Principal, s: S) -> Result<S::Ok, S::Error> {
        Record {
            agency: p.agency.clone(),
            agency_kind: p.agency_kind,
            user: p.user.clone(),
            roles: p.roles.clone(),
            issuer: p.issuer.clone(),
            expires_at: p.expires_at,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Principal, D::Error> {
        let r = Record::deserialize(d)?;
        Ok(Principal {
            agency: r.agency,
            agency_kind: r.agency_kind,
            user: r.user,
            roles: r.roles,
            issuer: r.issuer,
            expires_at: r.expires_at,
        })
    }
}

impl SignedIn {
    pub fn new(
        principal: Principal,
        display_name: Option<String>,
        access_token: String,
        id_token: String,
        refresh_token: Option<String>,
    ) -> Self {
        Self {
            principal,
            display_name,
            access_token,
            id_token,
            refresh_token,
            confirmed_at: OffsetDateTime::now_utc(),
            signed_in_at: OffsetDateTime::now_utc(),
        }
    }

    /// The same sign-in with the tokens of a refresh, confirmed now.
    pub fn renewed(&self, renewed: SignedIn) -> Self {
        Self {
            signed_in_at: self.signed_in_at,
            display_name: renewed.display_name.or_else(|| self.display_name.clone()),
            refresh_token: renewed.refresh_token.or_else(|| self.refresh_token.clone()),
            ..renewed
        }
    }

    /// Whether the provider should be asked again: `revalidate` has passed
    /// since it last confirmed, or the access token ends within a minute.
    pub fn due_for_refresh(&self, revalidate: Duration) -> bool {
        self.refresh_token.is_some()
            && (since(self.confirmed_at) >= revalidate
                || self.principal.expires_at - OffsetDateTime::now_utc()
                    < time::Duration::seconds(60))
    }
}

/// One browser's session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub csrf_token: String,
    pub lang: Option<Lang>,
    pub pending: Option<PendingSignIn>,
    pub signed_in: Option<SignedIn>,
    /// A one-time notice for the next page (an action's outcome), as a
    /// message ID of the translations.
    pub notice: Option<String>,
    /// Break-glass windows this caseworker opened, while they last.
    pub break_glass: Vec<BreakGlass>,
    last_seen: OffsetDateTime,
}

/// A break-glass window open on one survivor's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BreakGlass {
    pub survivor_id: String,
    /// The written justification every read through it carries.
    pub justification: String,
    pub expires_at: OffsetDateTime,
}

impl Session {
    /// The open window on `survivor`, if any.
    pub fn break_glass_on(&self, survivor: &str) -> Option<&BreakGlass> {
        let now = OffsetDateTime::now_utc();
        self.break_glass
            .iter()
            .find(|w| w.survivor_id == survivor && w.expires_at > now)
    }

    /// The latest expiry of the open windows, for the banner.
    pub fn break_glass_until(&self) -> Option<OffsetDateTime> {
        let now = OffsetDateTime::now_utc();
        self.break_glass
            .iter()
            .filter(|w| w.expires_at > now)
            .map(|w| w.expires_at)
            .max()
    }
}

impl Session {
    fn fresh() -> Self {
        Self {
            csrf_token: random_token(),
            lang: None,
            pending: None,
            signed_in: None,
            notice: None,
            break_glass: Vec::new(),
            last_seen: OffsetDateTime::now_utc(),
        }
    }
}

/// Why a session is gone, for the page the browser lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No cookie or an unknown one.
    None,
    /// It was signed in and timed out or its token expired.
    Expired,
}

/// Every session of this console.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not recoverable for a security token.
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a session token: how a session is found, in memory and in
/// the shared store.
pub(crate) fn key(token: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

/// Compares two CSRF tokens in constant time.
pub fn csrf_matches(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|given| {
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes())
            .is_ok()
    })
}

impl SessionStore {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn alive(&self, session: &Session) -> bool {
        if since(session.last_seen) > self.idle {
            return false;
        }
        match &session.signed_in {
            // With a refresh token an expired access token is renewed (or
            // the session ended) on the next request; without one it ends
            // the session.
            Some(s) => {
                since(s.signed_in_at) <= self.absolute
                    && (s.refresh_token.is_some()
                        || s.principal.expires_at > OffsetDateTime::now_utc())
            }
            None => true,
        }
    }

    /// The session of `token`, touched; a new anonymous one (and its token)
    /// when there is none or it ended. The [`Ended`] says which.
    pub fn open(&self, token: Option<&str>) -> (String, Session, Ended) {
        let mut sessions = self.lock();
        if let Some(token) = token {
            let k = key(token);
            if let Some(session) = sessions.get_mut(&k) {
                if self.alive(session) {
                    session.last_seen = OffsetDateTime::now_utc();
                    return (token.to_owned(), session.clone(), Ended::None);
                }
                let was_signed_in = session.signed_in.is_some();
                let lang = session.lang;
                sessions.remove(&k);
                let (token, mut session) = self.insert(&mut sessions);
                session.lang = lang;
                if let Some(stored) = sessions.get_mut(&key(&token)) {
                    stored.lang = lang;
                }
                let ended = if was_signed_in {
                    Ended::Expired
                } else {
                    Ended::None
                };
                return (token, session, ended);
            }
        }
        let (token, session) = self.insert(&mut sessions);
        (token, session, Ended::None)
    }

    fn insert(&self, sessions: &mut HashMap<[u8; 32], Session>) -> (String, Session) {
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| self.alive(s));
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        let token = random_token();
        let session = Session::fresh();
        sessions.insert(key(&token), session.clone());
        (token, session)
    }

    /// The session of `token` if it is alive, without counting this as
    /// activity: a page left open must not keep a session from ending.
    pub fn peek(&self, token: &str) -> Option<Session> {
        let sessions = self.lock();
        sessions.get(&key(token)).filter(|s| self.alive(s)).cloned()
    }

    /// Changes the session of `token` with `change`, if it still exists.
    pub fn update(&self, token: &str, change: impl FnOnce(&mut Session)) {
        if let Some(session) = self.lock().get_mut(&key(token)) {
            change(session);
        }
    }

    /// Ends the session of `token` and starts a fresh one holding `change`'s
    /// result, returning its token: used at sign-in so that the token a
    /// browser held before is worthless after.
    pub fn rotate(&self, token: &str, change: impl FnOnce(&mut Session)) -> String {
        let mut sessions = self.lock();
        let lang = sessions.remove(&key(token)).and_then(|s| s.lang);
        let (new_token, _) = self.insert(&mut sessions);
        if let Some(session) = sessions.get_mut(&key(&new_token)) {
            session.lang = lang;
            change(session);
        }
        new_token
    }

    /// Ends the session of `token`.
    pub fn end(&self, token: &str) -> Option<Session> {
        self.lock().remove(&key(token))
    }

    /// When `session` ends if nothing happens: its idle limit, or for a
    /// signed-in one the sign-in's absolute limit if that comes first.
    pub fn ends_at(&self, session: &Session) -> OffsetDateTime {
        let idle = session.last_seen + self.idle;
        match &session.signed_in {
            Some(s) => idle.min(s.signed_in_at + self.absolute),
            None => idle,
        }
    }

    /// The working copy of `token`'s session, as it is (alive or not).
    pub fn get(&self, token: &str) -> Option<Session> {
        self.lock().get(&key(token)).cloned()
    }

    /// Makes `session` the working copy of `token`'s (loaded from the
    /// shared store).
    pub fn put(&self, token: &str, session: Session) {
        self.lock().insert(key(token), session);
    }

    /// Drops the working copy of `token`'s session.
    pub fn forget(&self, token: &str) {
        self.lock().remove(&key(token));
    }

    /// Ends every session of `user` at `agency` (an administrator's or a
    /// provider's revocation); the number ended.
    pub fn end_user(&self, agency: &str, user: &str) -> usize {
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|_, s| {
            !s.signed_in
                .as_ref()
                .is_some_and(|s| s.principal.agency.as_str() == agency && s.principal.user == user)
        });
        before - sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_session_leaves_the_old_token_worthless_and_keeps_the_language() {
        let store = SessionStore::new(Duration::from_secs(60), Duration::from_secs(3600));
        let (old, session, _) = store.open(None);
        store.update(&old, |s| s.lang = Some(Lang::Fr));
        let new = store.rotate(&old, |s| s.notice = Some("x".into()));
        assert_ne!(old, new);
        let (again, fresh, _) = store.open(Some(&old));
        assert_ne!(again, old, "the old token must open a new session");
        assert_ne!(fresh.csrf_token, session.csrf_token);
        let (same, kept, _) = store.open(Some(&new));
        assert_eq!(same, new);
        assert_eq!(kept.lang, Some(Lang::Fr));
        assert_eq!(kept.notice.as_deref(), Some("x"));
    }

    #[test]
    fn an_idle_session_ends() {
        let store = SessionStore::new(Duration::from_millis(1), Duration::from_secs(3600));
        let (token, _, _) = store.open(None);
        std::thread::sleep(Duration::from_millis(5));
        let (other, _, _) = store.open(Some(&token));
        assert_ne!(other, token);
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("abc", Some("")));
    }
}

//! Console sessions in a database (`[session] database_url`), so that the
//! console's replicas answer as one and a restart signs no one out.
//!
//! A row is found by the SHA-256 of the session's cookie token, never the
//! token. The session (its CSRF token, a sign-in in progress, the
//! caseworker's access, ID and refresh tokens) is sealed with AES-256-GCM
//! under the key in `[session] key_file`, with the token's digest as
//! associated data, so that the database alone (a backup, a read-only
//! account) yields no caseworker's token, and a sealed session moved to
//! another row does not open. A row that does not open (another key, an
//! edited row) is no session: the browser starts a new one.
//!
//! Each request loads its session into the process's working copy
//! ([`crate::session::SessionStore`]) before the handler and writes it back
//! after ([`through_shared_store`]); when the database cannot be read or
//! written the request is answered `503 SESSIONS_UNAVAILABLE`, and a
//! session whose write failed is never handed to the browser.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use aws_lc_rs::digest;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use exchange_service::db::{Db, Migrations};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::ConsoleState;
use crate::session::{SESSION_COOKIE, Session, key};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The console's one table, `console_sessions`.
pub static MIGRATIONS: Migrations = Migrations {
    name: "console sessions",
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Saves between two purges of ended sessions.
const PURGE_EVERY: u64 = 256;

/// How a session is written: a new row, or the row loaded, if it is still
/// there.
#[derive(Clone, Copy)]
enum Write {
    Insert,
    Update,
}

/// Why the shared store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error("the session database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a session could not be sealed or encoded: {0}")]
    Seal(String),
    #[error("the session database did not answer within {0:?}")]
    TimedOut(Duration),
}

/// The sessions of every replica of the console.
pub struct SharedSessions {
    db: Db,
    key: RandomizedNonceKey,
    saves: AtomicU64,
    /// How long one read or write may take before the request is refused.
    timeout: Duration,
}

impl std::fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSessions").finish_non_exhaustive()
    }
}

impl SharedSessions {
    /// Connects to `database_url` (migrating it) with the sealing key in
    /// `key_file`: 32 bytes, readable by its owner only (or root-owned and
    /// at most 0640), generated there if the file does not exist yet
    /// (every replica must be given the same one).
    pub async fn open(
        database_url: &str,
        key_file: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        if !key_file.exists() {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
            // Replicas starting together on one volume: the first key
            // published whole wins and every replica reads that one.
            if exchange_service::files::publish_private(key_file, &bytes)? {
                tracing::info!(path = %key_file.display(), "generated the console's session key");
            }
        }
        exchange_service::files::check_private(key_file)?;
        let bytes = std::fs::read(key_file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", key_file.display()))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "{} holds {} bytes: a session key is 32",
            key_file.display(),
            bytes.len()
        );
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("{} is not an AES-256 key", key_file.display()))?;
        let db = Db::connect_with(database_url, timeout).await?;
        db.migrate(&MIGRATIONS).await?;
        Ok(Self {
            db,
            key,
            saves: AtomicU64::new(0),
            timeout,
        })
    }

    /// The database (tests close its pool to fail it).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs `work` within the store's time bound: a database that hangs
    /// (a partition, a stuck lock) refuses the request, never holds it.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SessionsError>>,
    ) -> Result<T, SessionsError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(SessionsError::TimedOut(self.timeout)))
    }

    /// The session of `token`, if a live row holds one that opens.
    pub async fn load(&self, token: &str) -> Result<Option<Session>, SessionsError> {
        self.bounded(self.load_now(token)).await
    }

    async fn load_now(&self, token: &str) -> Result<Option<Session>, SessionsError> {
        let digest = key(token);
        let row = sqlx::query(
            "SELECT sealed FROM console_sessions WHERE token_digest = $1 AND expires_at > $2",
        )
        .bind(hex::encode(digest))
        .bind(now_ms())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: String = row.try_get("sealed")?;
        let opened = STANDARD
            .decode(sealed)
            .ok()
            .and_then(|bytes| self.unseal(&digest, bytes))
            .and_then(|plain| serde_json::from_slice::<Session>(&plain).ok());
        if opened.is_none() {
            tracing::warn!("a stored console session did not open (another key, or an edited row)");
        }
        Ok(opened)
    }

    /// Stores the new session `token` (one this process just handed out),
    /// until `ends_at`.
    pub async fn insert(
        &self,
        token: &str,
        session: &Session,
        ends_at: OffsetDateTime,
    ) -> Result<(), SessionsError> {
        self.bounded(self.write(token, session, ends_at, Write::Insert))
            .await
            .map(|_| ())
    }

    /// Writes back `token`'s session, loaded at the start of the request,
    /// only if its row is still there: a sign-out or a revocation at
    /// another replica meanwhile is not undone. Answers whether it was.
    pub async fn update(
        &self,
        token: &str,
        session: &Session,
        ends_at: OffsetDateTime,
    ) -> Result<bool, SessionsError> {
        self.bounded(self.write(token, session, ends_at, Write::Update))
            .await
    }

    async fn write(
        &self,
        token: &str,
        session: &Session,
        ends_at: OffsetDateTime,
        how: Write,
    ) -> Result<bool, SessionsError> {
        let digest = key(token);
        let plain = serde_json::to_vec(session).map_err(|e| SessionsError::Seal(e.to_string()))?;
        let sealed = STANDARD.encode(self.seal(&digest, plain)?);
        let user = session
            .signed_in
            .as_ref()
            .map(|s| user_digest(s.principal.agency.as_str(), &s.principal.user));
        let sql = match how {
            Write::Insert => {
                "INSERT INTO console_sessions (token_digest, user_digest, sealed, expires_at) \
                 VALUES ($1, $2, $3, $4)"
            }
            Write::Update => {
                "UPDATE console_sessions SET user_digest = $2, sealed = $3, expires_at = $4 \
                 WHERE token_digest = $1"
            }
        };
        let done = sqlx::query(sql)
            .bind(hex::encode(digest))
            .bind(user)
            .bind(sealed)
            .bind(to_ms(ends_at))
            .execute(self.db.pool())
            .await?;
        if self
            .saves
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            // The session is saved; a purge that fails now is tried again
            // at a later save and never refuses this request.
            if let Err(error) = self.purge_ended().await {
                tracing::warn!(%error, "ended console sessions could not be purged this time");
            }
        }
        Ok(done.rows_affected() == 1)
    }

    /// Whether the session database answers now, within the time bound.
    pub async fn reachable(&self) -> bool {
        self.bounded(async {
            sqlx::query("SELECT 1")
                .execute(self.db.pool())
                .await
                .map_err(SessionsError::from)
        })
        .await
        .is_ok()
    }

    /// Removes `token`'s session.
    pub async fn delete(&self, token: &str) -> Result<(), SessionsError> {
        self.bounded(async {
            sqlx::query("DELETE FROM console_sessions WHERE token_digest = $1")
                .bind(hex::encode(key(token)))
                .execute(self.db.pool())
                .await?;
            Ok(())
        })
        .await
    }

    /// Removes every session of `user` at `agency`; the number removed.
    pub async fn end_user(&self, agency: &str, user: &str) -> Result<u64, SessionsError> {
        self.bounded(async {
            let done = sqlx::query("DELETE FROM console_sessions WHERE user_digest = $1")
                .bind(user_digest(agency, user))
                .execute(self.db.pool())
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Removes the sessions that have ended; the number removed.
    pub async fn purge_ended(&self) -> Result<u64, SessionsError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    fn seal(&self, digest: &[u8; 32], mut plain: Vec<u8>) -> Result<Vec<u8>, SessionsError> {
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(&digest[..]), &mut plain)
            .map_err(|_| SessionsError::Seal("sealing failed".into()))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&plain);
        Ok(out)
    }

    fn unseal(&self, digest: &[u8; 32], mut bytes: Vec<u8>) -> Option<Vec<u8>> {
        const NONCE: usize = aws_lc_rs::aead::NONCE_LEN;
        if bytes.len() < NONCE {
            return None;
        }
        let mut sealed = bytes.split_off(NONCE);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(&digest[..]), &mut sealed)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Digest of a caseworker at an agency, so that a revocation finds their
/// sessions without the table naming them.
fn user_digest(agency: &str, user: &str) -> String {
    let mut named = b"exchange/console-user/v1\0".to_vec();
    named.extend_from_slice(agency.as_bytes());
    named.push(0);
    named.extend_from_slice(user.as_bytes());
    hex::encode(digest::digest(&digest::SHA256, &named))
}

fn to_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

/// The token a response's `Set-Cookie` gives the session cookie, if any.
fn token_set_by(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Middleware, with a shared store configured: loads the request's session
/// into the working copy, runs the handler, writes back the sessions it
/// touched (the one it came with and loaded, and the one it handed out, if
/// another), removing those it ended. Without a shared store it only runs
/// the handler.
pub async fn through_shared_store(
    State(state): State<Arc<ConsoleState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(shared) = state.shared_sessions.as_ref() else {
        return next.run(request).await;
    };
    // The probes and the static files touch no session.
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" || path.starts_with("/static/") {
        return next.run(request).await;
    }
    let accept_language = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The session the request came with, if the store holds one that
    // opens here. One it does not (none, ended, or sealed under another
    // key) is left as it is: this request neither writes nor removes it.
    let mut loaded = None;
    if let Some(token) = crate::routes::cookie(request.headers(), SESSION_COOKIE) {
        match shared.load(&token).await {
            Ok(Some(session)) => {
                state.sessions.put(&token, session);
                loaded = Some(token);
            }
            Ok(None) => state.sessions.forget(&token),
            Err(err) => return unavailable(accept_language.as_deref(), err),
        }
    }
    let response = next.run(request).await;
    let handed_out = token_set_by(&response).filter(|t| Some(t) != loaded.as_ref());
    if let Some(token) = &loaded {
        let written = match state.sessions.get(token) {
            Some(session) => shared
                .update(token, &session, state.sessions.ends_at(&session))
                .await
                .map(|still_there| {
                    if !still_there {
                        // Ended at another replica while this request ran.
                        state.sessions.forget(token);
                    }
                }),
            // Ended by this request (signed out, expired, replaced at
            // sign-in), or by one beside it in this process.
            None => shared.delete(token).await,
        };
        if let Err(err) = written {
            return unavailable(accept_language.as_deref(), err);
        }
    }
    if let Some(token) = &handed_out
        && let Some(session) = state.sessions.get(token)
        && let Err(err) = shared
            .insert(token, &session, state.sessions.ends_at(&session))
            .await
    {
        return unavailable(accept_language.as_deref(), err);
    }
    response
}

/// `503 SESSIONS_UNAVAILABLE`: the page saying so, with no cookie.
fn unavailable(accept_language: Option<&str>, err: SessionsError) -> Response {
    crate::routes::bare_refusal(
        accept_language,
        crate::error::ConsoleError::SessionsUnavailable(err.to_string()),
    )
}

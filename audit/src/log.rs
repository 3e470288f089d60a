//! The writer of a node's (or the gateway's) append-only, tamper-evident
//! audit log.
//!
//! Every entry is chained to its predecessor with
//! [`exchange_schema::audit::chain_hash`]. Two kinds of signature cover it:
//! * the **signed head** (`audit_head`), rewritten in the very transaction
//!   that writes a group of entries or a change, so every entry a client is
//!   answered on is covered by a signature before the answer leaves; it only
//!   moves forward;
//! * **checkpoints** (`audit_checkpoints`), the log's signed history, every
//!   `checkpoint_every` entries and on a timer
//!   ([`exchange_schema::audit::Checkpoint`]).
//!
//! Two ways in, both serialised by one lock on the chain head so entries are
//! numbered and chained in commit order:
//! * [`AuditLog::append`] for reads and denials: entries are queued and
//!   written in groups (group commit), and the caller is answered only once
//!   its entry is durable. On SQLite the groups are written by a thread that
//!   owns its own connection ([`sqlite_writer`]: one hand-off per request
//!   instead of several round trips to sqlx's worker thread); on PostgreSQL
//!   by a task on a pooled connection.
//! * [`AuditLog::record`] for changes: the change and its entry are written in
//!   one transaction, so there is no change without its entry and no entry
//!   for a change that failed.
//!
//! **Storage faults.** A caller is answered only after the transaction
//! holding its entry committed. When the storage fails (disk full, I/O
//! error, read-only or locked database, PostgreSQL restarted or its backend
//! terminated) or does not confirm within `timeout`, the caller gets
//! [`AuditError::Unavailable`] and discloses nothing. A connection is
//! reused only after its transaction ended cleanly: after any failure it is
//! closed, never handed back to the pool. (The cause of disclosures without
//! entries under a full disk was exactly such a connection: a rollback that
//! sqlx queues when a transaction is dropped can itself fail, leaving SQLite
//! inside the transaction while sqlx counts it as ended; the pool then gave
//! that connection to the group writer, whose entries went into a
//! transaction that never committed.) Every write transaction is opened with
//! an explicit `BEGIN` (`BEGIN IMMEDIATE` on SQLite), which fails rather than
//! nests if a connection were still inside one. [`AuditLog::probe`] tells
//! `/readyz` whether a durable write succeeds now.
//!
//! The head is kept in memory, but this process need not be the log's only
//! writer: another process on the same data directory or database (a second
//! gateway or node, or a restarted one while the old one still drains)
//! appends to the same chain. Each write transaction takes the log's write
//! lock first and chains its entries to the stored head read inside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::Ed25519KeyPair;
use exchange_schema::audit::{ChainHash, Checkpoint, GENESIS, chain_hash_event};
use exchange_schema::{AuditEvent, Decision};
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use exchange_service::db::{Backend, Db, to_ms};

use crate::AuditError;

mod sqlite_writer;

/// How the log groups, signs and waits.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The log's identity in checkpoints: the agency ID (or `gateway`).
    pub log_id: String,
    /// Add a checkpoint to the history after this many new entries.
    pub checkpoint_every: u64,
    /// Add a checkpoint to the history at least this often while it moves.
    pub checkpoint_interval: Duration,
    /// Most entries written in one transaction.
    pub max_batch: usize,
    /// Longest a request waits for its entry (or its change) to become
    /// durable; past it the request is refused with `AUDIT_UNAVAILABLE` and
    /// nothing is disclosed.
    pub timeout: Duration,
    /// Where durable entries are counted (by kind and decision, the
    /// categories disclosed and withheld, refusals by code) and the
    /// writer's queue and commit time reported; none: not counted.
    pub metrics: Option<exchange_service::metrics::AuditMetrics>,
}

impl AuditOptions {
    pub fn new(log_id: impl Into<String>) -> Self {
        Self {
            log_id: log_id.into(),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            max_batch: 512,
            timeout: Duration::from_secs(5),
            metrics: None,
        }
    }
}

#[derive(Clone, Copy)]
struct ChainState {
    seq: u64,
    head: ChainHash,
    checkpointed_seq: u64,
}

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<Result<u64, ()>>,
}

struct Inner {
    db: Db,
    key: Arc<Ed25519KeyPair>,
    /// `key`'s public half, hex.
    public_key: String,
    /// Set once a handover in the log retired `key`: from then on this
    /// process writes nothing (another process signs the log now).
    retired: std::sync::atomic::AtomicBool,
    options: AuditOptions,
    chain: Mutex<ChainState>,
    /// When a write to the log last failed, unless one succeeded since.
    failed_at: std::sync::Mutex<Option<Instant>>,
}

/// How long after a failed append `/readyz` keeps saying not-ready without
/// probing: a probe's one small row can still fit where entries no longer
/// do (SQLite reuses its write-ahead log's space), so while appends fail
/// under traffic the node stays not-ready; once appends succeed, or the
/// failures are this old and a probe succeeds, it is ready again.
const RECENT_FAILURE: Duration = Duration::from_secs(5);

/// The audit log of one node (or the gateway). Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
    queue: mpsc::Sender<Pending>,
}

/// A change to run in the same transaction as its audit entry: it returns
/// its result and the event that describes it.
pub type Change<'c, T, E> = BoxFuture<'c, Result<(T, AuditEvent), E>>;

/// The error of a change run with [`AuditLog::record`]: the log's own
/// failures convert into it, and it says whether it is a storage fault
/// (which makes `/readyz` not-ready like a failed append).
pub trait ChangeError: From<AuditError> {
    fn is_audit_unavailable(&self) -> bool;
}

impl AuditLog {
    /// Opens the log: reads the head and starts the group-commit writer and
    /// the checkpoint timer. Both stop when every clone is dropped.
    pub async fn open(
        db: Db,
        key: Arc<Ed25519KeyPair>,
        options: AuditOptions,
    ) -> anyhow::Result<Self> {
        let mut conn = db.pool().acquire().await?;
        let (seq, head) = stored_head(&mut conn).await?;
        let public_key = hex::encode(aws_lc_rs::signature::KeyPair::public_key(&*key).as_ref());
        if let Some(handover) = newest_handover(&mut conn, 0, seq).await?
            && handover.key != public_key
        {
            anyhow::bail!(
                "the audit log's signing key was rotated at seq {} to {}; this process's key ({public_key}) \
                 is not that key: start it with the log's current key",
                handover.seq,
                handover.key
            );
        }
        let checkpointed: Option<i64> =
            sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
                .fetch_one(&mut *conn)
                .await?
                .try_get("seq")?;
        drop(conn);
        let inner = Arc::new(Inner {
            db,
            key,
            public_key,
            retired: Default::default(),
            options,
            chain: Mutex::new(ChainState {
                seq,
                head,
                checkpointed_seq: checkpointed.unwrap_or(0) as u64,
            }),
            failed_at: std::sync::Mutex::new(None),
        });
        let (queue, rx) = mpsc::channel(inner.options.max_batch * 8);
        match inner.db.sqlite_file() {
            Some(file) => sqlite_writer::spawn(inner.clone(), rx, file.to_path_buf())?,
            None => {
                tokio::spawn(group_commit(inner.clone(), rx));
            }
        }
        tokio::spawn(checkpoint_timer(Arc::downgrade(&inner)));
        Ok(Self { inner, queue })
    }

    /// Appends an event on its own; returns its sequence number once durable.
    pub async fn append(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let (done, wait) = oneshot::channel();
        let queued = async {
            self.queue
                .send(Pending { event, done })
                .await
                .map_err(|_| ())?;
            wait.await.map_err(|_| ())?
        };
        match tokio::time::timeout(self.inner.options.timeout, queued).await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(())) => Err(self.inner.unavailable("the audit writer failed")),
            Err(_) => Err(self
                .inner
                .unavailable("the audit writer did not confirm in time")),
        }
    }

    /// Appends many events and waits until all are durable.
    pub async fn append_all(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        let queued = async {
            let mut waits = Vec::with_capacity(events.len());
            for event in events {
                let (done, wait) = oneshot::channel();
                self.queue
                    .send(Pending { event, done })
                    .await
                    .map_err(|_| ())?;
                waits.push(wait);
            }
            for wait in waits {
                wait.await.map_err(|_| ())??;
            }
            Ok::<(), ()>(())
        };
        match tokio::time::timeout(self.inner.options.timeout, queued).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(self.inner.unavailable("the audit writer failed")),
            Err(_) => Err(self
                .inner
                .unavailable("the audit writer did not confirm in time")),
        }
    }

    /// Runs `change` and appends the event it returns in one transaction.
    /// If the change fails, nothing is written and the error is returned; a
    /// refused change should be audited by the caller with [`Self::append`].
    /// A storage failure (or no confirmation within the timeout) is
    /// [`AuditError::Unavailable`]; the change may then still have been
    /// committed if only its confirmation was lost, which is what
    /// idempotency keys are for.
    pub async fn record<T, E, F>(&self, change: F) -> Result<T, E>
    where
        E: ChangeError,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Change<'c, T, E>,
    {
        let inner = &self.inner;
        let limit = inner.options.timeout;
        let mut chain = tokio::time::timeout(limit, inner.chain.lock())
            .await
            .map_err(|_| inner.unavailable("the audit log stayed busy"))?;
        if inner.is_retired() {
            return Err(inner
                .unavailable("this process's signing key was retired")
                .into());
        }
        let mut conn = match tokio::time::timeout(limit, WriteConnection::pooled(&inner.db)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => return Err(inner.storage_failed(err).into()),
            Err(_) => return Err(inner.unavailable("no database connection in time").into()),
        };
        let mut tx = match begin_append(conn.connection(), inner.db.backend()).await {
            Ok(tx) => tx,
            Err(err) => return Err(inner.storage_failed(err).into()),
        };
        // A failed change leaves `conn` to be closed on drop, whatever state
        // the failure left it in.
        let started = Instant::now();
        let (value, event) = change(&mut tx).await.inspect_err(|err| {
            if err.is_audit_unavailable() {
                inner.write_failed();
            }
        })?;
        let written = async {
            // Another process may have appended since this one last wrote:
            // chain the entry to the stored head, read under the write lock.
            adopt_stored_head(&mut tx, inner, &mut chain).await?;
            let seq = chain.seq + 1;
            let row = EntryRow::new(seq, &chain.head, &event)?;
            let head = row.hash;
            insert_rows(&mut tx, vec![row]).await?;
            write_signed_head(&mut tx, inner, seq, &head).await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>((seq, head))
        }
        .await;
        let (seq, head) = written.map_err(|err| inner.storage_failed(err))?;
        conn.release();
        chain.seq = seq;
        chain.head = head;
        inner.write_succeeded();
        inner.count(std::slice::from_ref(&event), started);
        inner.maybe_checkpoint(&mut chain, false).await;
        Ok(value)
    }

    /// Hands the log over to a new signing key (`next_public`, hex):
    /// appends a `SIGNING_KEY_ROTATED` entry and, at it, a checkpoint signed
    /// by the current key that announces the new one; answers the entry's
    /// `seq`. The caller must be the log's only writer (every process of
    /// the node stopped) and must sign with the new key from then on.
    pub async fn hand_over(&self, next_public: &str) -> anyhow::Result<u64> {
        let next_public = next_public.trim().to_ascii_lowercase();
        anyhow::ensure!(
            hex::decode(&next_public).is_ok_and(|k| k.len() == 32),
            "the new key is not an Ed25519 public key in hex"
        );
        anyhow::ensure!(
            next_public != self.inner.public_key,
            "the new key is the current key"
        );
        let mut event = AuditEvent::new(
            exchange_schema::AuditKind::SigningKeyRotated,
            Decision::Permit,
            "ROTATED",
        );
        event.subject = Some(next_public.clone());
        let seq = self.append(event).await?;
        let mut chain = self.inner.chain.lock().await;
        anyhow::ensure!(
            chain.seq == seq,
            "another process appended to the log during the rotation; stop every process of the node first"
        );
        anyhow::ensure!(
            chain.checkpointed_seq < seq,
            "a checkpoint was signed at the rotation's entry already; run the rotation again"
        );
        let checkpoint = Checkpoint::sign_handover(
            &self.inner.key,
            &self.inner.options.log_id,
            seq,
            &chain.head,
            &next_public,
        );
        let mut conn = WriteConnection::pooled(&self.inner.db).await?;
        sqlx::query(INSERT_CHECKPOINT_SQL)
            .bind(seq as i64)
            .bind(serde_json::to_string(&checkpoint)?)
            .execute(conn.connection())
            .await?;
        conn.release();
        chain.checkpointed_seq = seq;
        Ok(seq)
    }

    /// Whether a durable write to the log's database succeeds now (within
    /// the timeout): one row rewritten in its own transaction. `/readyz`
    /// asks this, so a node whose storage is full, failing, read-only or
    /// locked says it is not ready, and says ready again once it recovers.
    pub async fn probe(&self) -> bool {
        let inner = &self.inner;
        if inner.failed_within(RECENT_FAILURE) || inner.is_retired() {
            return false;
        }
        let write = async {
            let mut conn = WriteConnection::pooled(&inner.db).await?;
            let mut tx = begin_write(conn.connection(), inner.db.backend()).await?;
            sqlx::query("UPDATE storage_probe SET at = $1 WHERE id = 1")
                .bind(to_ms(time::OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            conn.release();
            Ok::<_, anyhow::Error>(())
        };
        let ok = match tokio::time::timeout(inner.options.timeout, write).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = ?err, "the audit log's storage refuses writes");
                false
            }
            Err(_) => {
                tracing::warn!("the audit log's storage did not confirm a write in time");
                false
            }
        };
        if ok {
            inner.write_succeeded();
        } else {
            inner.write_failed();
        }
        ok
    }

    /// Adds a checkpoint of the current head to the history now (if it
    /// moved since the last one).
    pub async fn checkpoint_now(&self) -> anyhow::Result<()> {
        let mut chain = self.inner.chain.lock().await;
        self.inner.checkpoint(&mut chain).await
    }

    /// The sequence number and hash of the newest entry.
    pub async fn head(&self) -> (u64, ChainHash) {
        let chain = self.inner.chain.lock().await;
        (chain.seq, chain.head)
    }

    /// The database the log is written to.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The log's identity in checkpoints.
    pub fn log_id(&self) -> &str {
        &self.inner.options.log_id
    }

    /// Hex of the public key that signs checkpoints.
    pub fn public_key_hex(&self) -> String {
        self.inner.public_key.clone()
    }
}

impl Inner {
    fn failed_at(&self) -> Option<Instant> {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed_within(&self, window: Duration) -> bool {
        self.failed_at().is_some_and(|at| at.elapsed() < window)
    }

    fn write_failed(&self) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn write_succeeded(&self) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The refusal for a request whose entry could not be made durable.
    fn unavailable(&self, why: &'static str) -> AuditError {
        self.write_failed();
        AuditError::Unavailable(anyhow::anyhow!(why))
    }

    /// The refusal for a write that failed in the database (logged).
    fn storage_failed(&self, err: impl Into<anyhow::Error>) -> AuditError {
        self.write_failed();
        AuditError::Unavailable(err.into())
    }

    /// Whether the history needs a checkpoint now: `checkpoint_every` new
    /// entries since the last one, or `force` and any new entry.
    fn checkpoint_due(&self, chain: &ChainState, force: bool) -> bool {
        let due = chain.seq
            >= chain
                .checkpointed_seq
                .saturating_add(self.options.checkpoint_every);
        (due || force) && chain.seq > chain.checkpointed_seq
    }

    async fn maybe_checkpoint(&self, chain: &mut ChainState, force: bool) {
        if self.checkpoint_due(chain, force)
            && let Err(err) = self.checkpoint(chain).await
        {
            tracing::error!(error = ?err, "signing an audit checkpoint failed");
        }
    }

    async fn checkpoint(&self, chain: &mut ChainState) -> anyhow::Result<()> {
        if chain.seq == 0 || chain.seq == chain.checkpointed_seq {
            return Ok(());
        }
        let checkpoint = Checkpoint::sign(&self.key, &self.options.log_id, chain.seq, &chain.head);
        let mut conn = WriteConnection::pooled(&self.db).await?;
        sqlx::query(INSERT_CHECKPOINT_SQL)
            .bind(chain.seq as i64)
            .bind(serde_json::to_string(&checkpoint)?)
            .execute(conn.connection())
            .await?;
        conn.release();
        chain.checkpointed_seq = chain.seq;
        Ok(())
    }
}

/// A connection used for one write. It goes back to the pool only through
/// [`WriteConnection::release`], after its transaction ended cleanly; when
/// dropped otherwise (a failed statement, commit or rollback, or a request
/// abandoned halfway) it is closed, so no connection whose transaction state
/// is unknown ever serves another request.
struct WriteConnection {
    conn: Option<PoolConnection<Any>>,
}

impl WriteConnection {
    async fn pooled(db: &Db) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(db.pool().acquire().await?),
        })
    }

    fn connection(&mut self) -> &mut AnyConnection {
        self.conn
            .as_deref_mut()
            .expect("a write connection is used only before it is released")
    }

    /// Hands the connection back to the pool: its last transaction ended.
    fn release(mut self) {
        drop(self.conn.take());
    }
}

impl Drop for WriteConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Detached, the connection leaves the pool; dropping it closes
            // it (SQLite rolls back whatever was open, PostgreSQL ends the
            // session), and the pool opens a fresh one when needed.
            drop(conn.detach());
        }
    }
}

/// Begins a write transaction that fails rather than nests: `BEGIN
/// IMMEDIATE` on SQLite (which also takes the database's write lock at once,
/// so no other writer can commit in between), `BEGIN` on PostgreSQL. sqlx
/// refuses a custom `BEGIN` on a connection it counts as inside a
/// transaction, and SQLite refuses one on a connection that is.
async fn begin_write(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<sqlx::Transaction<'_, Any>, sqlx::Error> {
    conn.begin_with(match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    })
    .await
}

/// Begins a write transaction that holds the audit log's write lock until
/// it ends ([`begin_write`], plus on PostgreSQL `LOCK TABLE ... IN SHARE
/// ROW EXCLUSIVE MODE`, which conflicts with every `INSERT` and with
/// itself): meanwhile no other writer, in this process or another, can
/// append, so a head read inside it stays the stored head.
pub async fn begin_append(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<sqlx::Transaction<'_, Any>, sqlx::Error> {
    let mut tx = begin_write(conn, backend).await?;
    if backend == Backend::Postgres {
        sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Signs the new head and stores it as the log's signed head, in the
/// transaction that wrote the entries it covers.
async fn write_signed_head(
    conn: &mut AnyConnection,
    inner: &Inner,
    seq: u64,
    head: &ChainHash,
) -> anyhow::Result<()> {
    let checkpoint = Checkpoint::sign(&inner.key, &inner.options.log_id, seq, head);
    sqlx::query(UPSERT_HEAD_SQL)
        .bind(seq as i64)
        .bind(serde_json::to_string(&checkpoint)?)
        .execute(conn)
        .await?;
    Ok(())
}

/// The log's signed head, if it has one: the newest entry a writer of this
/// version acknowledged is covered by it.
pub async fn signed_head(conn: &mut AnyConnection) -> anyhow::Result<Option<Checkpoint>> {
    let row = sqlx::query("SELECT checkpoint FROM audit_head WHERE id = 1")
        .fetch_optional(conn)
        .await?;
    match row {
        Some(row) => Ok(Some(serde_json::from_str(
            &row.try_get::<String, _>("checkpoint")?,
        )?)),
        None => Ok(None),
    }
}

/// A checkpoint of the log's history.
const INSERT_CHECKPOINT_SQL: &str =
    "INSERT INTO audit_checkpoints (seq, checkpoint) VALUES ($1, $2)";

/// The signed head's upsert, in the transaction of the entries it covers.
const UPSERT_HEAD_SQL: &str = "INSERT INTO audit_head (id, seq, checkpoint) VALUES (1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, checkpoint = excluded.checkpoint";

const INSERT_ENTRY_INTO: &str = "INSERT INTO audit_log (seq, at, kind, actor_agency, survivor, \
     purpose, decision, break_glass, event, prev_hash, hash)";
/// The columns of [`INSERT_ENTRY_INTO`], in the order [`EntryRow::bind`]
/// binds them.
const ENTRY_COLUMNS: usize = 11;

/// One entry, chained and ready to bind.
struct EntryRow {
    seq: i64,
    at: i64,
    kind: &'static str,
    actor_agency: Option<String>,
    survivor: Option<String>,
    purpose: Option<&'static str>,
    decision: &'static str,
    break_glass: i64,
    event: String,
    prev: ChainHash,
    hash: ChainHash,
}

impl EntryRow {
    fn new(seq: u64, prev: &ChainHash, event: &AuditEvent) -> anyhow::Result<Self> {
        Ok(Self {
            seq: seq as i64,
            at: to_ms(event.at),
            kind: event.kind.as_str(),
            actor_agency: event.actor_agency.as_ref().map(|a| a.as_str().to_owned()),
            survivor: event.survivor.as_ref().map(ToString::to_string),
            purpose: event.purpose.map(|p| p.as_str()),
            decision: decision_str(event.decision),
            break_glass: i64::from(event.break_glass),
            event: String::from_utf8(event.canonical_bytes())?,
            prev: *prev,
            hash: chain_hash_event(prev, seq, event),
        })
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(self.seq)
            .bind(self.at)
            .bind(self.kind)
            .bind(self.actor_agency)
            .bind(self.survivor)
            .bind(self.purpose)
            .bind(self.decision)
            .bind(self.break_glass)
            .bind(self.event)
            .bind(hex::encode(self.prev))
            .bind(hex::encode(self.hash))
    }
}

pub fn decision_str(decision: Decision) -> &'static str {
    match decision {
        Decision::Permit => "PERMIT",
        Decision::Deny => "DENY",
    }
}

fn parse_hash(hex_hash: &str) -> anyhow::Result<ChainHash> {
    crate::lines::parse_hash(hex_hash)
        .ok_or_else(|| anyhow::anyhow!("stored audit hash is not 32 bytes of hex"))
}

/// The sequence number and hash of the newest stored entry (0 and the
/// genesis hash for an empty log).
async fn stored_head(conn: &mut AnyConnection) -> anyhow::Result<(u64, ChainHash)> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    match last {
        Some(row) => {
            let seq: i64 = row.try_get("seq")?;
            let hash: String = row.try_get("hash")?;
            Ok((seq as u64, parse_hash(&hash)?))
        }
        None => Ok((0, GENESIS)),
    }
}

/// Moves the cached head to the stored one if another writer has appended
/// since; returns whether it moved.
async fn adopt_stored_head(
    conn: &mut AnyConnection,
    inner: &Inner,
    chain: &mut ChainState,
) -> anyhow::Result<bool> {
    let stored = stored_head(conn).await?;
    let since = chain.seq;
    let moved = adopt_head(chain, stored);
    if moved {
        inner.refuse_if_retired(conn, since, chain.seq).await?;
    }
    Ok(moved)
}

/// A handover of the log to a new signing key: the `SIGNING_KEY_ROTATED`
/// entry at `seq` announcing `key` (hex).
pub struct Handover {
    pub seq: u64,
    pub key: String,
}

/// The newest handover among the entries after `after` up to `upto`.
pub async fn newest_handover(
    conn: &mut AnyConnection,
    after: u64,
    upto: u64,
) -> anyhow::Result<Option<Handover>> {
    let row = sqlx::query(NEWEST_HANDOVER_SQL)
        .bind(after as i64)
        .bind(upto as i64)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Handover::from_entry(row.try_get("seq")?, &row.try_get::<String, _>("event")?).map(Some)
}

/// The SQL of [`newest_handover`], in SQLite's numbered parameters too.
const NEWEST_HANDOVER_SQL: &str = "SELECT seq, event FROM audit_log WHERE kind = 'SIGNING_KEY_ROTATED' \
     AND seq > $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1";

impl Handover {
    /// The handover a stored `SIGNING_KEY_ROTATED` entry announces.
    fn from_entry(seq: i64, event: &str) -> anyhow::Result<Self> {
        let event: serde_json::Value = serde_json::from_str(event)?;
        let key = event["subject"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the handover at seq {seq} names no key"))?;
        Ok(Self {
            seq: seq as u64,
            key: key.to_owned(),
        })
    }
}

/// Moves `chain`'s head to `stored` (the newest stored entry's `seq` and
/// hash) if they differ; returns whether it moved.
fn adopt_head(chain: &mut ChainState, (seq, head): (u64, ChainHash)) -> bool {
    if seq == chain.seq && head == chain.head {
        return false;
    }
    tracing::warn!(
        cached = chain.seq,
        stored = seq,
        "another process appended to this audit log; continuing from its head"
    );
    chain.seq = seq;
    chain.head = head;
    true
}

impl Inner {
    /// Fails, and retires this process's writer for good, when a handover
    /// among the entries after `after` up to `upto` (appended by another
    /// process: `keys rotate-signing-key` while this one still ran)
    /// announced a key other than this process's: what this process would
    /// sign after it, the log's verifiers would refuse.
    async fn refuse_if_retired(
        &self,
        conn: &mut AnyConnection,
        after: u64,
        upto: u64,
    ) -> anyhow::Result<()> {
        self.retire_unless_ours(newest_handover(conn, after, upto).await?)
    }

    /// [`Self::refuse_if_retired`]'s decision on the newest handover found.
    fn retire_unless_ours(&self, handover: Option<Handover>) -> anyhow::Result<()> {
        match handover {
            Some(handover) if handover.key != self.public_key => {
                self.retired
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::error!(
                    seq = handover.seq,
                    new_key = %handover.key,
                    "the audit log was handed over to a new signing key while this process ran \
                     with the old one; it writes nothing more: restart it with the new key"
                );
                anyhow::bail!(
                    "this process's signing key was retired at seq {}",
                    handover.seq
                )
            }
            _ => Ok(()),
        }
    }

    fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts entries that became durable (see [`AuditOptions::metrics`]).
    fn count(&self, events: &[AuditEvent], started: Instant) {
        let refs: Vec<&AuditEvent> = events.iter().collect();
        self.count_refs(&refs, started);
    }

    fn count_refs(&self, events: &[&AuditEvent], started: Instant) {
        use exchange_service::metrics::{
            CodeLabels, DisclosureLabels, EntryLabels, WithheldLabels,
        };
        let Some(metrics) = &self.options.metrics else {
            return;
        };
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.group_size.observe(events.len() as f64);
        for event in events {
            metrics
                .entries
                .get_or_create(&EntryLabels {
                    kind: event.kind.as_str().to_owned(),
                    decision: match event.decision {
                        exchange_schema::Decision::Permit => "PERMIT",
                        exchange_schema::Decision::Deny => "DENY",
                    }
                    .to_owned(),
                })
                .inc();
            let purpose = event.purpose.map_or("NONE", |p| p.as_str());
            for category in &event.disclosed {
                metrics
                    .disclosed
                    .get_or_create(&DisclosureLabels {
                        category: category.as_str().to_owned(),
                        purpose: purpose.to_owned(),
                    })
                    .inc();
            }
            for withheld in &event.withheld {
                metrics
                    .withheld
                    .get_or_create(&WithheldLabels {
                        category: withheld.category.as_str().to_owned(),
                        reason: withheld.reason.as_str().to_owned(),
                    })
                    .inc();
            }
            // A denial's reason is its error code, or why a token was
            // refused (then the code is UNAUTHENTICATED); anything else is
            // not a label (it could be text).
            if event.kind == exchange_schema::AuditKind::Denial {
                let code = match exchange_schema::ErrorCode::parse(&event.reason) {
                    Some(code) => code.as_str(),
                    None if exchange_trust::AuthError::REASON_CODES
                        .contains(&event.reason.as_str()) =>
                    {
                        exchange_schema::ErrorCode::Unauthenticated.as_str()
                    }
                    None => "OTHER",
                };
                metrics
                    .refusals
                    .get_or_create(&CodeLabels {
                        code: code.to_owned(),
                    })
                    .inc();
            }
        }
    }
}

/// The group-commit writer on PostgreSQL: takes whatever is queued (up to
/// `max_batch`), writes it in one transaction, then answers every waiter.
/// SQLite's is a thread of its own ([`sqlite_writer`]).
async fn group_commit(inner: Arc<Inner>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(inner.options.max_batch);
    while rx.recv_many(&mut batch, inner.options.max_batch).await > 0 {
        if !inner.ready_to_write(&mut batch, rx.len()) {
            continue;
        }
        let started = Instant::now();
        let written = write_batch(&inner, &batch).await;
        inner.answer(&mut batch, written, started);
    }
    let mut chain = inner.chain.lock().await;
    inner.maybe_checkpoint(&mut chain, true).await;
}

impl Inner {
    /// Drops the waiters that gave up (timed out or went away: they need no
    /// entry) and reports the queue; whether any waiter is left.
    fn ready_to_write(&self, batch: &mut Vec<Pending>, queued: usize) -> bool {
        batch.retain(|pending| !pending.done.is_closed());
        if let Some(metrics) = &self.options.metrics {
            metrics.queue_depth.set(queued as i64);
        }
        !batch.is_empty()
    }

    /// Answers every waiter of `batch` (emptied): its entry's `seq` once the
    /// group is durable, a failure otherwise.
    fn answer(&self, batch: &mut Vec<Pending>, written: anyhow::Result<u64>, started: Instant) {
        match written {
            Ok(first_seq) => {
                self.write_succeeded();
                let events: Vec<&AuditEvent> = batch.iter().map(|p| &p.event).collect();
                self.count_refs(&events, started);
                for (i, pending) in batch.drain(..).enumerate() {
                    let _ = pending.done.send(Ok(first_seq + i as u64));
                }
            }
            Err(err) => {
                self.write_failed();
                tracing::error!(error = ?err, "writing audit entries failed");
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(()));
                }
            }
        }
    }
}

/// One PostgreSQL group: a connection from the pool, which checks it first
/// (PostgreSQL connections can break while idle), closed if the group fails.
async fn write_batch(inner: &Inner, batch: &[Pending]) -> anyhow::Result<u64> {
    let mut chain = inner.chain.lock().await;
    let mut conn = WriteConnection::pooled(&inner.db).await?;
    let first = write_group(conn.connection(), inner, &mut chain, batch).await?;
    conn.release();
    inner.maybe_checkpoint(&mut chain, false).await;
    Ok(first)
}

/// Writes a group in one transaction under the log's write lock, chained
/// after the stored head, with the signed head that covers it; returns the
/// first entry's `seq`. The cached head moves only once the commit
/// succeeded; nothing is written if anything fails.
async fn write_group(
    conn: &mut AnyConnection,
    inner: &Inner,
    chain: &mut ChainState,
    batch: &[Pending],
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !inner.is_retired(),
        "this process's signing key was retired"
    );
    let mut tx = begin_append(conn, inner.db.backend()).await?;
    // A working copy: the cached head moves only after the commit.
    let mut at = *chain;
    adopt_stored_head(&mut tx, inner, &mut at).await?;
    let (rows, head) = chain_rows(&at, batch)?;
    let first = at.seq + 1;
    let last = at.seq + batch.len() as u64;
    insert_all(&mut tx, rows).await?;
    write_signed_head(&mut tx, inner, last, &head).await?;
    tx.commit().await?;
    chain.seq = last;
    chain.head = head;
    Ok(first)
}

/// Rows per `INSERT` statement of a group. Every statement size from 1 to
/// this is prepared once per connection and cached, so a group costs no
/// statement preparation, and a group of up to this many rows is one
/// statement.
const ROWS_PER_INSERT: usize = 16;

/// The `INSERT` of `rows` entries (1 to [`ROWS_PER_INSERT`]).
fn insert_entries_sql(rows: usize) -> &'static str {
    static STATEMENTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        (1..=ROWS_PER_INSERT)
            .map(|rows| {
                let values: Vec<String> = (0..rows)
                    .map(|row| {
                        let params: Vec<String> = (1..=ENTRY_COLUMNS)
                            .map(|column| format!("${}", row * ENTRY_COLUMNS + column))
                            .collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                format!("{INSERT_ENTRY_INTO} VALUES {}", values.join(", "))
            })
            .collect()
    });
    &STATEMENTS[rows - 1]
}

/// The group's rows, chained after `chain`'s head, and the new head.
fn chain_rows(chain: &ChainState, batch: &[Pending]) -> anyhow::Result<(Vec<EntryRow>, ChainHash)> {
    let first = chain.seq + 1;
    let mut head = chain.head;
    let mut rows = Vec::with_capacity(batch.len());
    for (i, pending) in batch.iter().enumerate() {
        let row = EntryRow::new(first + i as u64, &head, &pending.event)?;
        head = row.hash;
        rows.push(row);
    }
    Ok((rows, head))
}

/// Inserts `rows` in statements of at most [`ROWS_PER_INSERT`] rows.
async fn insert_all(conn: &mut AnyConnection, rows: Vec<EntryRow>) -> anyhow::Result<()> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        insert_rows(conn, rows.by_ref().take(ROWS_PER_INSERT).collect()).await?;
    }
    Ok(())
}

/// One `INSERT` of 1 to [`ROWS_PER_INSERT`] rows.
async fn insert_rows(conn: &mut AnyConnection, rows: Vec<EntryRow>) -> anyhow::Result<()> {
    let mut query = sqlx::query(insert_entries_sql(rows.len()));
    for row in rows {
        query = row.bind(query);
    }
    query.execute(conn).await?;
    Ok(())
}

async fn checkpoint_timer(inner: std::sync::Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(inner) => inner.options.checkpoint_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let mut chain = inner.chain.lock().await;
        inner.maybe_checkpoint(&mut chain, true).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement size numbers its parameters row after row, one per
    /// column, so that rows bound in order land in their own columns.
    #[test]
    fn a_group_statement_numbers_its_parameters_row_after_row() {
        assert_eq!(
            insert_entries_sql(1),
            format!("{INSERT_ENTRY_INTO} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        );
        let two = insert_entries_sql(2);
        assert!(
            two.ends_with(
                "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11), \
                 ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
            ),
            "{two}"
        );
        let full = insert_entries_sql(ROWS_PER_INSERT);
        assert_eq!(full.matches('(').count(), ROWS_PER_INSERT + 1);
        let last = ROWS_PER_INSERT * ENTRY_COLUMNS;
        assert!(full.ends_with(&format!("${last})")), "{full}");
        assert!(!full.contains(&format!("${}", last + 1)));
    }
}

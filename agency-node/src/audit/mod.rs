//! The node's append-only, tamper-evident audit log.
//!
//! Every entry is chained to its predecessor with
//! [`exchange_schema::audit::chain_hash`]; the head is signed with the node's
//! Ed25519 key every `checkpoint_every` entries and on a timer
//! ([`exchange_schema::audit::Checkpoint`]).
//!
//! Two ways in, both serialised by one lock on the chain head so entries are
//! numbered and chained in commit order:
//! * [`AuditLog::append`] for reads and denials: entries are queued and
//!   written in groups (group commit), and the caller is answered only once
//!   its entry is durable.
//! * [`AuditLog::record`] for changes: the change and its entry are written in
//!   one transaction, so there is no change without its entry and no entry
//!   for a change that failed.
//!
//! The head is kept in memory, but this process need not be the log's only
//! writer: another process on the same data directory or database (a second
//! gateway or node, or a restarted one while the old one still drains)
//! appends to the same chain. An append never trusts the cached head blindly:
//! a group whose numbers are already taken is written again after the stored
//! head, and a change reads the stored head inside its own transaction.

pub mod endpoints;
pub mod export;
pub mod query;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::Ed25519KeyPair;
use exchange_schema::audit::{AuditEntry, ChainHash, Checkpoint, GENESIS, chain_hash_event};
use exchange_schema::{AuditEvent, Decision};
use futures::future::BoxFuture;
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::NodeError;
use crate::store::{Db, to_ms};

/// How the log groups and signs.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The log's identity in checkpoints: the agency ID (or `gateway`).
    pub log_id: String,
    /// Sign the head after this many new entries.
    pub checkpoint_every: u64,
    /// Sign the head at least this often while it moves.
    pub checkpoint_interval: Duration,
    /// Most entries written in one transaction.
    pub max_batch: usize,
}

impl AuditOptions {
    pub fn new(log_id: impl Into<String>) -> Self {
        Self {
            log_id: log_id.into(),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            max_batch: 512,
        }
    }
}

struct ChainState {
    seq: u64,
    head: ChainHash,
    checkpointed_seq: u64,
}

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<Result<u64, String>>,
}

struct Inner {
    db: Db,
    key: Arc<Ed25519KeyPair>,
    options: AuditOptions,
    chain: Mutex<ChainState>,
}

/// The audit log of one node (or the gateway). Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
    queue: mpsc::Sender<Pending>,
}

/// A change to run in the same transaction as its audit entry: it returns
/// its result and the event that describes it.
pub type Change<'c, T> = BoxFuture<'c, Result<(T, AuditEvent), NodeError>>;

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
        let checkpointed: Option<i64> =
            sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
                .fetch_one(&mut *conn)
                .await?
                .try_get("seq")?;
        drop(conn);
        let inner = Arc::new(Inner {
            db,
            key,
            options,
            chain: Mutex::new(ChainState {
                seq,
                head,
                checkpointed_seq: checkpointed.unwrap_or(0) as u64,
            }),
        });
        let (queue, rx) = mpsc::channel(inner.options.max_batch * 8);
        tokio::spawn(group_commit(inner.clone(), rx));
        tokio::spawn(checkpoint_timer(Arc::downgrade(&inner)));
        Ok(Self { inner, queue })
    }

    /// Appends an event on its own; returns its sequence number once durable.
    pub async fn append(&self, event: AuditEvent) -> Result<u64, NodeError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Pending { event, done })
            .await
            .map_err(|_| NodeError::internal(anyhow::anyhow!("audit writer stopped")))?;
        match wait.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(message)) => Err(NodeError::internal(anyhow::anyhow!(message))),
            Err(_) => Err(NodeError::internal(anyhow::anyhow!("audit writer stopped"))),
        }
    }

    /// Appends many events and waits until all are durable.
    pub async fn append_all(&self, events: Vec<AuditEvent>) -> Result<(), NodeError> {
        let mut waits = Vec::with_capacity(events.len());
        for event in events {
            let (done, wait) = oneshot::channel();
            self.queue
                .send(Pending { event, done })
                .await
                .map_err(|_| NodeError::internal(anyhow::anyhow!("audit writer stopped")))?;
            waits.push(wait);
        }
        for wait in waits {
            match wait.await {
                Ok(Ok(_)) => {}
                Ok(Err(message)) => return Err(NodeError::internal(anyhow::anyhow!(message))),
                Err(_) => return Err(NodeError::internal(anyhow::anyhow!("audit writer stopped"))),
            }
        }
        Ok(())
    }

    /// Runs `change` and appends the event it returns in one transaction.
    /// If the change fails, nothing is written and the error is returned; a
    /// refused change should be audited by the caller with [`Self::append`].
    pub async fn record<T, F>(&self, change: F) -> Result<T, NodeError>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Change<'c, T>,
    {
        let mut chain = self.inner.chain.lock().await;
        let mut conn = self.inner.db.pool().acquire().await?;
        let mut tx = conn.begin().await?;
        let (value, event) = change(&mut tx).await?;
        // Another process may have appended since this one last wrote: chain
        // the entry to the stored head, read in this transaction.
        adopt_stored_head(&mut tx, &mut chain).await?;
        let seq = chain.seq + 1;
        let hash = insert_entry(&mut tx, seq, &chain.head, &event).await?;
        tx.commit().await?;
        chain.seq = seq;
        chain.head = hash;
        drop(conn);
        self.inner.maybe_checkpoint(&mut chain, false).await;
        Ok(value)
    }

    /// Signs the current head now (if it moved since the last checkpoint).
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
        use aws_lc_rs::signature::KeyPair;
        hex::encode(self.inner.key.public_key().as_ref())
    }
}

impl Inner {
    async fn maybe_checkpoint(&self, chain: &mut ChainState, force: bool) {
        let due = chain.seq >= chain.checkpointed_seq + self.options.checkpoint_every;
        if (due || force)
            && chain.seq > chain.checkpointed_seq
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
        sqlx::query("INSERT INTO audit_checkpoints (seq, checkpoint) VALUES ($1, $2)")
            .bind(chain.seq as i64)
            .bind(serde_json::to_string(&checkpoint)?)
            .execute(self.db.pool())
            .await?;
        chain.checkpointed_seq = chain.seq;
        Ok(())
    }
}

/// Writes one entry; returns its hash.
async fn insert_entry(
    conn: &mut AnyConnection,
    seq: u64,
    prev: &ChainHash,
    event: &AuditEvent,
) -> Result<ChainHash, NodeError> {
    let row = EntryRow::new(seq, prev, event)?;
    let hash = row.hash;
    row.bind(sqlx::query(insert_entries_sql(1)))
        .execute(conn)
        .await?;
    Ok(hash)
}

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
    fn new(seq: u64, prev: &ChainHash, event: &AuditEvent) -> Result<Self, NodeError> {
        Ok(Self {
            seq: seq as i64,
            at: to_ms(event.at),
            kind: event.kind.as_str(),
            actor_agency: event.actor_agency.as_ref().map(|a| a.as_str().to_owned()),
            survivor: event.survivor.as_ref().map(ToString::to_string),
            purpose: event.purpose.map(|p| p.as_str()),
            decision: decision_str(event.decision),
            break_glass: i64::from(event.break_glass),
            event: String::from_utf8(event.canonical_bytes()).map_err(NodeError::internal)?,
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
    let bytes = hex::decode(hex_hash)?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("stored audit hash is not 32 bytes"))
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
    chain: &mut ChainState,
) -> anyhow::Result<bool> {
    let (seq, head) = stored_head(conn).await?;
    if seq == chain.seq && head == chain.head {
        return Ok(false);
    }
    tracing::warn!(
        cached = chain.seq,
        stored = seq,
        "another process appended to this audit log; continuing from its head"
    );
    chain.seq = seq;
    chain.head = head;
    Ok(true)
}

/// The group-commit writer: takes whatever is queued (up to `max_batch`),
/// writes it in one transaction, then answers every waiter.
async fn group_commit(inner: Arc<Inner>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(inner.options.max_batch);
    let mut writer = Writer::default();
    while rx.recv_many(&mut batch, inner.options.max_batch).await > 0 {
        let result = write_batch(&inner, &mut writer, &batch).await;
        match result {
            Ok(first_seq) => {
                for (i, pending) in batch.drain(..).enumerate() {
                    let _ = pending.done.send(Ok(first_seq + i as u64));
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, "writing audit entries failed");
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err("audit log write failed".to_owned()));
                }
            }
        }
    }
    let mut chain = inner.chain.lock().await;
    inner.maybe_checkpoint(&mut chain, true).await;
}

/// The group-commit writer's connection. On SQLite it keeps one of its own,
/// taken out of the pool: a pooled connection costs a round trip to its
/// worker thread each time it goes back (sqlx checks it on release), and
/// under load that check was a measurable share of the gateway's CPU. A
/// SQLite file cannot drop a connection, so the only reason to replace it is
/// a failed group, after which it is closed and the next group opens
/// another. PostgreSQL connections can break while idle, so there each
/// group takes a connection from the pool, which checks it first.
#[derive(Default)]
struct Writer {
    own: Option<AnyConnection>,
}

impl Writer {
    async fn connection<'a>(
        &'a mut self,
        db: &Db,
        pooled: &'a mut Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    ) -> anyhow::Result<&'a mut AnyConnection> {
        if db.backend() != crate::store::Backend::Sqlite {
            return Ok(&mut **pooled.insert(db.pool().acquire().await?));
        }
        if db.pool().is_closed() {
            // The database was closed (shutting down): nothing more is
            // written, as through the pool.
            if let Some(conn) = self.own.take() {
                let _ = conn.close().await;
            }
            anyhow::bail!("the database is closed");
        }
        match &mut self.own {
            Some(conn) => Ok(conn),
            own => Ok(own.insert(db.pool().acquire().await?.detach())),
        }
    }
}

async fn write_batch(inner: &Inner, writer: &mut Writer, batch: &[Pending]) -> anyhow::Result<u64> {
    let mut chain = inner.chain.lock().await;
    let mut pooled = None;
    let result = write_batch_on(inner, writer, &mut pooled, &mut chain, batch).await;
    drop(pooled);
    if result.is_err()
        && let Some(conn) = writer.own.take()
    {
        // Whatever state the failure left it in, it is not reused.
        let _ = conn.close().await;
    }
    let first = result?;
    inner.maybe_checkpoint(&mut chain, false).await;
    Ok(first)
}

async fn write_batch_on(
    inner: &Inner,
    writer: &mut Writer,
    pooled: &mut Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    chain: &mut ChainState,
    batch: &[Pending],
) -> anyhow::Result<u64> {
    let conn = writer.connection(&inner.db, pooled).await?;
    let head = match insert_batch(conn, chain, batch).await {
        Ok(head) => head,
        // The cheap path assumes the cached head is the stored one. When
        // another process has appended, the numbers are taken (the insert
        // breaks the key on `seq`): write the group again after the stored
        // head, read while holding the database's write lock, so that no
        // other writer can move it in between and the second attempt cannot
        // collide. Any other failure leaves the head where it is.
        Err(err) => match insert_batch_locked(conn, inner.db.backend(), chain, batch).await? {
            Some(head) => head,
            None => return Err(err),
        },
    };
    let first = chain.seq + 1;
    chain.seq = first + batch.len() as u64 - 1;
    chain.head = head;
    Ok(first)
}

/// Rows per `INSERT` statement of a group. Every statement size from 1 to
/// this is prepared once per connection and cached, so a group costs no
/// statement preparation; a group of up to this many rows is one statement,
/// atomic on its own, and so one round trip to the database (on SQLite, to
/// its worker thread) rather than `BEGIN`, an `INSERT` per row and `COMMIT`.
/// A larger group is one transaction of statements of at most this size.
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

/// Writes a group after the cached head; returns the new head. Nothing is
/// written if it fails. See [`ROWS_PER_INSERT`] for how it is written.
async fn insert_batch(
    conn: &mut AnyConnection,
    chain: &ChainState,
    batch: &[Pending],
) -> anyhow::Result<ChainHash> {
    let (rows, head) = chain_rows(chain, batch)?;
    if rows.len() <= ROWS_PER_INSERT {
        insert_rows(conn, rows).await?;
    } else {
        let mut tx = conn.begin().await?;
        insert_all(&mut tx, rows).await?;
        tx.commit().await?;
    }
    Ok(head)
}

/// Begins a transaction that holds the audit log's write lock until it
/// ends: meanwhile no other writer, in this process or another, can append,
/// so a head read inside it stays the stored head. On PostgreSQL that is
/// `LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE`, which conflicts with every
/// `INSERT` and with itself; SQLite has no `LOCK TABLE`, and a statement
/// that deletes nothing takes the database's write lock (the log's
/// no-delete trigger fires per row, so not at all).
pub async fn begin_exclusive(
    conn: &mut AnyConnection,
    backend: crate::store::Backend,
) -> anyhow::Result<sqlx::Transaction<'_, sqlx::Any>> {
    let mut tx = conn.begin().await?;
    let lock = match backend {
        crate::store::Backend::Sqlite => "DELETE FROM audit_log WHERE 0 = 1",
        crate::store::Backend::Postgres => "LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE",
    };
    sqlx::query(lock).execute(&mut *tx).await?;
    Ok(tx)
}

/// Writes a group after the stored head, read inside
/// [`begin_exclusive`]'s transaction so that no other writer can move it
/// before the group is written. Returns the new head, or `None`, writing
/// nothing, when the stored head is the cached one: then the first attempt
/// failed for another reason than a second writer.
async fn insert_batch_locked(
    conn: &mut AnyConnection,
    backend: crate::store::Backend,
    chain: &mut ChainState,
    batch: &[Pending],
) -> anyhow::Result<Option<ChainHash>> {
    let mut tx = begin_exclusive(conn, backend).await?;
    if !adopt_stored_head(&mut tx, chain).await? {
        return Ok(None);
    }
    let (rows, head) = chain_rows(chain, batch)?;
    insert_all(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(Some(head))
}

/// The group's rows, chained after `chain`'s head, and the new head.
fn chain_rows(chain: &ChainState, batch: &[Pending]) -> anyhow::Result<(Vec<EntryRow>, ChainHash)> {
    let first = chain.seq + 1;
    let mut head = chain.head;
    let mut rows = Vec::with_capacity(batch.len());
    for (i, pending) in batch.iter().enumerate() {
        // Keep the source error as it is: formatting it here (with `{:?}`)
        // would resolve its backtrace on a path that usually recovers, and
        // symbolising costs the process some hundred megabytes of debug info.
        let row = EntryRow::new(first + i as u64, &head, &pending.event).map_err(|e| match e {
            NodeError::Internal(source) => source,
            other => anyhow::anyhow!(other.message()),
        })?;
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

/// Reads entries of a live log for auditors, newest first.
pub mod read {
    use super::*;
    use exchange_schema::{AgencyId, Purpose};
    use time::OffsetDateTime;

    /// What an auditor filters the log by.
    #[derive(Debug, Clone, Default)]
    pub struct AuditFilter {
        pub actor_agency: Option<AgencyId>,
        pub survivor: Option<String>,
        pub purpose: Option<Purpose>,
        pub decision: Option<Decision>,
        pub break_glass: Option<bool>,
        pub since: Option<OffsetDateTime>,
        pub until: Option<OffsetDateTime>,
        /// Only entries with `seq` below this (cursor).
        pub before_seq: Option<u64>,
    }

    /// Entries matching `filter`, newest first, at most `limit`.
    pub async fn entries(
        db: &Db,
        filter: &AuditFilter,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT seq, event, prev_hash, hash FROM audit_log WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, bind: Bind| {
            binds.push(bind);
            sql.push_str(&format!(" AND {clause} ${}", binds.len()));
        };
        if let Some(agency) = &filter.actor_agency {
            push(&mut sql, "actor_agency =", Bind::Text(agency.to_string()));
        }
        if let Some(survivor) = &filter.survivor {
            push(&mut sql, "survivor =", Bind::Text(survivor.clone()));
        }
        if let Some(purpose) = filter.purpose {
            push(
                &mut sql,
                "purpose =",
                Bind::Text(purpose.as_str().to_owned()),
            );
        }
        if let Some(decision) = filter.decision {
            push(
                &mut sql,
                "decision =",
                Bind::Text(decision_str(decision).to_owned()),
            );
        }
        if let Some(flag) = filter.break_glass {
            push(&mut sql, "break_glass =", Bind::Int(i64::from(flag)));
        }
        if let Some(since) = filter.since {
            push(&mut sql, "at >=", Bind::Int(to_ms(since)));
        }
        if let Some(until) = filter.until {
            push(&mut sql, "at <", Bind::Int(to_ms(until)));
        }
        if let Some(before) = filter.before_seq {
            push(&mut sql, "seq <", Bind::Int(before as i64));
        }
        binds.push(Bind::Int(limit));
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", binds.len()));
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(db.pool()).await?;
        rows.iter()
            .map(|row| {
                let event: String = row.try_get("event")?;
                Ok(AuditEntry {
                    seq: row.try_get::<i64, _>("seq")? as u64,
                    event: serde_json::from_str(&event)?,
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect()
    }

    enum Bind {
        Text(String),
        Int(i64),
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

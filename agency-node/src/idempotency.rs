//! Idempotent mutations: the `Idempotency-Key` header at the node.
//!
//! A mutation sent with a key ([`exchange_schema::IdempotencyKey`]) is
//! remembered per caller (agency and user subject: no one can replay or
//! probe another caller's key), per key and per mutation root field (its
//! alias or name), with a [`fingerprint`] of the request. The row is written
//! by the change itself, first, inside the transaction that makes the
//! change and appends its audit entry ([`FieldKey::write`] inside
//! [`exchange_audit::AuditLog::record`]): a committed change always has its
//! row, and a change that failed never has one, so a retry after a failure
//! (a full disk, a lost connection) simply runs again.
//!
//! * The same key with another request (another fingerprint) is refused
//!   with `IDEMPOTENCY_KEY_REUSED` before anything runs ([`check_request`]).
//! * A retry with the same key and request makes no change and writes no
//!   change entry: each root field that committed answers from its stored
//!   outcome ([`FieldKey::stored`]); a field that had not committed runs.
//! * Two requests with the same key at once: the row's primary key and the
//!   transaction decide. The loser's insert finds the winner's committed
//!   row (on PostgreSQL it waits for the winner's transaction to end), its
//!   own transaction is rolled back, and it answers from the winner's
//!   outcome ([`FieldKey::settle`]), or with `CONFLICT` if that row is
//!   gone meanwhile.
//!
//! # What is stored, and why not the answer
//!
//! Only the change's [`Outcome`] is kept: the ID of the record it created or
//! changed (and, for a break-glass window, its non-personal times). A replay
//! answers by reading that record again and resolving the client's
//! selection as the caller may see it *now*, through the one disclosure
//! path ([`crate::disclosure::disclose`]), which decides and audits again.
//! Keeping the first answer instead would keep a second copy of survivor
//! data outside the record (beyond erasure), and would serve category data
//! after the survivor revoked the grant that allowed it — no cache may do
//! that. So a replay never shows more than the caller may see at the time
//! of the retry. The cost: when the record changed between the first
//! request and the retry, the replay shows it as it is now. A consent code
//! is never stored in clear, so a replay of `issueConsentCode` cannot show
//! it again and is refused with `CONFLICT` (issue a new one with a new key).
//!
//! Keys live for the node's `idempotency_window` (default 24 hours); a
//! periodic [`sweep`] deletes expired rows, and an expired row of the key a
//! request names is deleted before the request runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Context;
use aws_lc_rs::digest;
use exchange_schema::{IdempotencyKey, Purpose};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::error::NodeError;
use crate::state::Caller;
use crate::store::{Db, to_ms};

/// The default `idempotency_window`: 24 hours.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// What a committed change made, as stored under its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// A survivor registered or updated (local ID).
    Survivor { id: String },
    /// A referral created or answered (local ID).
    Referral { id: String },
    /// A consent grant recorded or revoked (local ID).
    ConsentGrant { id: String },
    /// A consent code issued for this survivor (the code is not kept).
    ConsentCode { survivor_id: String },
    /// A break-glass window opened.
    BreakGlass {
        id: String,
        survivor_id: String,
        opened_at_ms: i64,
        expires_at_ms: i64,
    },
    /// A case note added (local ID).
    CaseNote { id: String },
    /// A service recorded or moved on (local ID).
    Service { id: String },
    /// A follow-up scheduled or closed (local ID).
    FollowUp { id: String },
    /// A case's caseworkers replaced.
    Assignment { survivor_id: String },
    /// A care plan version proposed or agreed to, or one of its actions
    /// moved on.
    CarePlan { survivor_id: String, version: i64 },
    /// A case closed or opened again.
    CaseStatus { survivor_id: String },
}

/// A mutation request's key, checked against the store and handed to the
/// resolvers in the request's data.
#[derive(Debug, Clone)]
pub struct RequestKey {
    agency: String,
    user: String,
    key: IdempotencyKey,
    fingerprint: String,
    window: Duration,
}

impl RequestKey {
    pub fn new(
        caller: &Caller,
        key: IdempotencyKey,
        fingerprint: String,
        window: Duration,
    ) -> Self {
        Self {
            agency: caller.principal.agency.as_str().to_owned(),
            user: caller.principal.user.clone(),
            key,
            fingerprint,
            window,
        }
    }
}

/// The SHA-256 (hex) of a request: its [`canonical_operation`] text, its
/// variables as canonical JSON (object keys sorted, no spaces), its
/// operation name and its declared purpose, each length-prefixed so that no
/// two different requests hash the same bytes.
pub fn fingerprint(
    operation: &str,
    variables: &Value,
    operation_name: Option<&str>,
    purpose: Option<Purpose>,
) -> String {
    let mut variables_text = String::new();
    canonical_json(variables, &mut variables_text);
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"exchange idempotency fingerprint v1\0");
    for part in [
        canonical_operation(operation).as_str(),
        variables_text.as_str(),
        operation_name.unwrap_or(""),
        purpose.map_or("", |p| p.as_str()),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.update(&[u8::from(operation_name.is_some())]);
    hex::encode(ctx.finish().as_ref())
}

/// An operation's text without what GraphQL ignores: each run of white
/// space, line terminators, commas and comments outside strings becomes one
/// space where it separates two name or number characters, and nothing
/// elsewhere. Strings and block strings are kept as written. Two texts with
/// the same canonical form are the same operation.
pub fn canonical_operation(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut gap = false;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => gap = true,
            '#' => {
                while chars.peek().is_some_and(|&n| n != '\n' && n != '\r') {
                    chars.next();
                }
                gap = true;
            }
            _ => {
                if gap && out.chars().last().is_some_and(word) && word(c) {
                    out.push(' ');
                }
                gap = false;
                out.push(c);
                if c == '"' {
                    copy_string(&mut chars, &mut out);
                }
            }
        }
    }
    out
}

/// Copies a string whose opening `"` was just copied: a block string
/// (`"""..."""`) or a plain one, escapes included.
fn copy_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    let mut rest = chars.clone();
    if rest.next() == Some('"') && rest.next() == Some('"') {
        out.push_str("\"\"");
        chars.next();
        chars.next();
        let mut quotes = 0;
        for c in chars.by_ref() {
            out.push(c);
            if c == '"' {
                quotes += 1;
                if quotes == 3 && !out.ends_with("\\\"\"\"") {
                    return;
                }
            } else {
                quotes = 0;
            }
        }
        return;
    }
    if chars.peek() == Some(&'"') {
        // The empty string `""`.
        out.push('"');
        chars.next();
        return;
    }
    let mut escaped = false;
    for c in chars.by_ref() {
        out.push(c);
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return,
            _ => escaped = false,
        }
    }
}

/// JSON with object keys sorted at every level and no spaces.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Before a keyed mutation runs: drops this caller's rows of the key that
/// have expired, then refuses the request with
/// [`NodeError::IdempotencyKeyReused`] if the key is held for another
/// request.
pub async fn check_request(
    db: &Db,
    request: &RequestKey,
    now: OffsetDateTime,
) -> Result<(), NodeError> {
    let mut conn = db.pool().acquire().await?;
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE agency = $1 AND user_id = $2 AND idem_key = $3 \
         AND expires_at <= $4",
    )
    .bind(&request.agency)
    .bind(&request.user)
    .bind(request.key.as_str())
    .bind(to_ms(now))
    .execute(&mut *conn)
    .await?;
    let other = sqlx::query(
        "SELECT 1 AS held FROM idempotency_keys WHERE agency = $1 AND user_id = $2 \
         AND idem_key = $3 AND fingerprint <> $4 LIMIT 1",
    )
    .bind(&request.agency)
    .bind(&request.user)
    .bind(request.key.as_str())
    .bind(&request.fingerprint)
    .fetch_optional(&mut *conn)
    .await?;
    match other {
        Some(_) => Err(NodeError::IdempotencyKeyReused),
        None => Ok(()),
    }
}

/// Deletes every key whose window ended at or before `now`; returns how
/// many rows went. Run periodically by [`spawn_sweeper`].
pub async fn sweep(db: &Db, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(to_ms(now))
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Sweeps expired keys every `every` until the database is closed.
pub fn spawn_sweeper(db: Db, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if db.pool().is_closed() {
                return;
            }
            match sweep(&db, OffsetDateTime::now_utc()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired idempotency keys swept"),
                Err(err) => tracing::warn!(error = ?err, "sweeping idempotency keys failed"),
            }
        }
    });
}

/// The key of one mutation root field: the request's key and the field's
/// response key (alias or name).
#[derive(Debug, Clone)]
pub struct FieldKey {
    request: RequestKey,
    field: String,
    /// Set when this field's row was found already written inside the
    /// change's transaction (another request with the key got there first).
    taken: Arc<AtomicBool>,
}

/// A change's result, or the outcome an earlier request with the same key
/// stored for this field.
#[derive(Debug)]
pub enum Written<T> {
    Done(T),
    Replayed(Outcome),
}

/// The key of the root field being resolved, when the request has one.
pub fn field_key(ctx: &Context<'_>) -> Option<FieldKey> {
    let request = ctx.data_opt::<RequestKey>()?;
    Some(FieldKey {
        request: request.clone(),
        field: ctx.item.node.response_key().node.to_string(),
        taken: Arc::new(AtomicBool::new(false)),
    })
}

impl FieldKey {
    /// The outcome an earlier request with this key stored for this field,
    /// if its window has not ended. Another request's row under the key is
    /// [`NodeError::IdempotencyKeyReused`].
    pub async fn stored(&self, db: &Db) -> Result<Option<Outcome>, NodeError> {
        let mut conn = db.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT fingerprint, outcome FROM idempotency_keys WHERE agency = $1 AND user_id = $2 \
             AND idem_key = $3 AND field = $4 AND expires_at > $5",
        )
        .bind(&self.request.agency)
        .bind(&self.request.user)
        .bind(self.request.key.as_str())
        .bind(&self.field)
        .bind(to_ms(OffsetDateTime::now_utc()))
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let fingerprint: String = row.try_get("fingerprint")?;
        if fingerprint != self.request.fingerprint {
            return Err(NodeError::IdempotencyKeyReused);
        }
        let outcome: String = row.try_get("outcome")?;
        serde_json::from_str(&outcome)
            .map(Some)
            .map_err(NodeError::internal)
    }

    /// Inside the change's transaction, before the change: writes this
    /// field's row. If a committed row holds it already, nothing is written,
    /// the key is marked taken and the change fails (and is rolled back);
    /// [`Self::settle`] then answers from that row.
    pub async fn write(
        &self,
        conn: &mut AnyConnection,
        outcome: &Outcome,
    ) -> Result<(), NodeError> {
        let now = OffsetDateTime::now_utc();
        let expires = now + self.request.window;
        let written = sqlx::query(
            "INSERT INTO idempotency_keys (agency, user_id, idem_key, field, fingerprint, outcome, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&self.request.agency)
        .bind(&self.request.user)
        .bind(self.request.key.as_str())
        .bind(&self.field)
        .bind(&self.request.fingerprint)
        .bind(serde_json::to_string(outcome).map_err(NodeError::internal)?)
        .bind(to_ms(now))
        .bind(to_ms(expires))
        .execute(conn)
        .await?;
        if written.rows_affected() == 0 {
            self.taken.store(true, Ordering::SeqCst);
            return Err(NodeError::Conflict(
                "another request with this Idempotency-Key is in progress; retry it".into(),
            ));
        }
        Ok(())
    }

    /// After the change: its result, or, when [`Self::write`] found the key
    /// taken, the outcome the other request stored.
    pub async fn settle<T>(
        &self,
        db: &Db,
        result: Result<T, NodeError>,
    ) -> Result<Written<T>, NodeError> {
        match result {
            Ok(value) => Ok(Written::Done(value)),
            Err(err) if self.taken.load(Ordering::SeqCst) => match self.stored(db).await? {
                Some(outcome) => Ok(Written::Replayed(outcome)),
                None => Err(err),
            },
            Err(err) => Err(err),
        }
    }
}

/// Writes `key`'s row (when there is one) inside a change's transaction.
pub async fn write(
    key: Option<&FieldKey>,
    conn: &mut AnyConnection,
    outcome: &Outcome,
) -> Result<(), NodeError> {
    match key {
        Some(key) => key.write(conn, outcome).await,
        None => Ok(()),
    }
}

/// [`FieldKey::settle`] for a field that may have no key.
pub async fn settle<T>(
    key: Option<&FieldKey>,
    db: &Db,
    result: Result<T, NodeError>,
) -> Result<Written<T>, NodeError> {
    match key {
        Some(key) => key.settle(db, result).await,
        None => result.map(Written::Done),
    }
}

/// [`FieldKey::stored`] for a field that may have no key.
pub async fn stored(key: Option<&FieldKey>, db: &Db) -> Result<Option<Outcome>, NodeError> {
    match key {
        Some(key) => key.stored(db).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// White space, commas and comments do not change the operation; names
    /// stay apart; strings are kept as written.
    #[test]
    fn ignored_tokens_do_not_change_the_canonical_operation() {
        let a = "mutation Reg($i: RegisterSurvivorInput!) {\n  registerSurvivor(input: $i) { id, owner } # note\n}";
        let b = "mutation Reg($i:RegisterSurvivorInput!){registerSurvivor(input:$i){id owner}}";
        assert_eq!(canonical_operation(a), canonical_operation(b));
        assert_eq!(
            canonical_operation(b),
            "mutation Reg($i:RegisterSurvivorInput!){registerSurvivor(input:$i){id owner}}"
        );
        assert_ne!(
            canonical_operation("{ a(n: \"x  y\") }"),
            canonical_operation("{ a(n: \"x y\") }"),
            "string contents are significant"
        );
        assert_eq!(
            canonical_operation("{ a(n: \"# not, a comment\") }"),
            "{a(n:\"# not, a comment\")}"
        );
        assert_eq!(
            canonical_operation("{ a(n: \"\"\"x , \\\"\"\" y\"\"\") b }"),
            "{a(n:\"\"\"x , \\\"\"\" y\"\"\")b}"
        );
        assert_eq!(canonical_operation("{ a(n: \"\") b }"), "{a(n:\"\")b}");
        assert_ne!(
            canonical_operation("{ ab }"),
            canonical_operation("{ a b }")
        );
    }

    /// The fingerprint depends on every part of the request, and not on the
    /// order of the variables' keys.
    #[test]
    fn the_fingerprint_covers_operation_variables_name_and_purpose() {
        let op = "mutation { x(a: $a) }";
        let base = fingerprint(
            op,
            &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
            None,
            Some(Purpose::CaseManagement),
        );
        assert_eq!(
            base,
            fingerprint(
                "mutation{x(a:$a)}",
                &json!({"b": [1, {"x": 1, "y": 2}], "a": 1}),
                None,
                Some(Purpose::CaseManagement)
            )
        );
        assert_eq!(base.len(), 64);
        for other in [
            fingerprint(
                "mutation { y(a: $a) }",
                &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
                None,
                Some(Purpose::CaseManagement),
            ),
            fingerprint(
                op,
                &json!({"a": 2, "b": [1, {"y": 2, "x": 1}]}),
                None,
                Some(Purpose::CaseManagement),
            ),
            fingerprint(
                op,
                &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
                Some("X"),
                Some(Purpose::CaseManagement),
            ),
            fingerprint(
                op,
                &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
                Some(""),
                Some(Purpose::CaseManagement),
            ),
            fingerprint(
                op,
                &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
                None,
                Some(Purpose::Referral),
            ),
            fingerprint(op, &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}), None, None),
        ] {
            assert_ne!(base, other);
        }
    }
}

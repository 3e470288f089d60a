//! What a database must hold before `audit verify` vouches for its log:
//! the audit tables (a database without them is not an empty log that
//! verifies, but not a node's or gateway's database at all), and the
//! append-only triggers the migrations create, which refuse an `UPDATE` or
//! a `DELETE` of `audit_log` (found in `sqlite_master` on SQLite and in
//! `pg_trigger` on PostgreSQL). Read-only: nothing here writes.
//!
//! A trigger counts as a guard when it fires on the event for every row
//! (no `WHEN` condition, not `UPDATE OF` some columns only, not disabled)
//! and raises an error. The migrations create no trigger on
//! `audit_checkpoints`, so there is none to look for there.

use std::fmt;

use sqlx::Row as _;

use exchange_service::db::{Backend, Db};

/// The tables a node's or gateway's audit log lives in.
pub const AUDIT_TABLES: [&str; 2] = ["audit_log", "audit_checkpoints"];

/// A change to `audit_log` the database must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuardedChange {
    Update,
    Delete,
}

impl GuardedChange {
    pub const ALL: [Self; 2] = [Self::Update, Self::Delete];

    fn keyword(self) -> &'static str {
        match self {
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for GuardedChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Why the database's audit schema could not be checked or is not there.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database holds no audit log (it has no {table} table): it is not a node's or gateway's \
         database, or none ever started on it"
    )]
    NoAuditTable { table: &'static str },
    #[error("reading the database schema failed: {0}")]
    Read(#[from] sqlx::Error),
}

/// Fails unless both audit tables exist.
pub async fn require_audit_tables(db: &Db) -> Result<(), SchemaError> {
    for table in AUDIT_TABLES {
        let found = match db.backend() {
            Backend::Sqlite => {
                sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1")
                    .bind(table)
                    .fetch_optional(db.pool())
                    .await?
                    .is_some()
            }
            Backend::Postgres => sqlx::query("SELECT to_regclass($1)::text AS found")
                .bind(table)
                .fetch_one(db.pool())
                .await?
                .try_get::<Option<String>, _>("found")?
                .is_some(),
        };
        if !found {
            return Err(SchemaError::NoAuditTable { table });
        }
    }
    Ok(())
}

/// The changes to `audit_log` that no trigger refuses, in
/// [`GuardedChange::ALL`] order; empty when the log is guarded.
pub async fn unguarded_changes(db: &Db) -> Result<Vec<GuardedChange>, SchemaError> {
    let guarded: Vec<GuardedChange> = match db.backend() {
        Backend::Sqlite => sqlx::query(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'",
        )
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get::<Option<String>, _>("sql"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .flat_map(|sql| sqlite_guards(&sql))
        .collect(),
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT t.tgtype::int8 AS tgtype, t.tgenabled::text AS enabled, \
                 (t.tgqual IS NULL) AS unconditional, p.prosrc AS body \
                 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
                 WHERE t.tgrelid = to_regclass('audit_log')::oid AND NOT t.tgisinternal",
            )
            .fetch_all(db.pool())
            .await?;
            let mut guarded = Vec::new();
            for row in &rows {
                let tgtype: i64 = row.try_get("tgtype")?;
                let enabled: String = row.try_get("enabled")?;
                let unconditional: bool = row.try_get("unconditional")?;
                let body: Option<String> = row.try_get("body")?;
                guarded.extend(postgres_guards(
                    tgtype,
                    &enabled,
                    unconditional,
                    body.as_deref(),
                ));
            }
            guarded
        }
    };
    Ok(GuardedChange::ALL
        .into_iter()
        .filter(|change| !guarded.contains(change))
        .collect())
}

/// The changes a SQLite `CREATE TRIGGER` statement on `audit_log` refuses:
/// it fires on them unconditionally and its body calls `RAISE(ABORT | FAIL
/// | ROLLBACK, ...)`.
fn sqlite_guards(sql: &str) -> Vec<GuardedChange> {
    let upper = sql.to_ascii_uppercase();
    let tokens: Vec<&str> = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let Some(begin) = tokens.iter().position(|t| *t == "BEGIN") else {
        return Vec::new();
    };
    let (head, body) = tokens.split_at(begin);
    let raises = body
        .windows(2)
        .any(|pair| pair[0] == "RAISE" && matches!(pair[1], "ABORT" | "FAIL" | "ROLLBACK"));
    if !raises || head.contains(&"WHEN") {
        return Vec::new();
    }
    GuardedChange::ALL
        .into_iter()
        .filter(|change| {
            head.iter().enumerate().any(|(i, t)| {
                *t == change.keyword()
                    && !(*change == GuardedChange::Update && head.get(i + 1) == Some(&"OF"))
            })
        })
        .collect()
}

/// `pg_trigger.tgtype` bits (see PostgreSQL's `pg_trigger.h`).
const TRIGGER_TYPE_DELETE: i64 = 1 << 3;
const TRIGGER_TYPE_UPDATE: i64 = 1 << 4;

/// The changes a PostgreSQL trigger on `audit_log` refuses: it is enabled
/// for ordinary sessions (`O` or `A`), has no `WHEN` condition, and its
/// function raises an exception.
fn postgres_guards(
    tgtype: i64,
    enabled: &str,
    unconditional: bool,
    body: Option<&str>,
) -> Vec<GuardedChange> {
    let raises = body.is_some_and(|b| {
        b.to_ascii_uppercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|pair| pair == ["RAISE", "EXCEPTION"])
    });
    if !matches!(enabled, "O" | "A") || !unconditional || !raises {
        return Vec::new();
    }
    let mut guards = Vec::new();
    if tgtype & TRIGGER_TYPE_UPDATE != 0 {
        guards.push(GuardedChange::Update);
    }
    if tgtype & TRIGGER_TYPE_DELETE != 0 {
        guards.push(GuardedChange::Delete);
    }
    guards
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migration's triggers guard; a conditional, column-limited or
    /// silent one does not.
    #[test]
    fn a_sqlite_trigger_guards_only_when_it_always_raises() {
        let migration = include_str!("../../migrations/sqlite/1001_audit_log.sql");
        let found: Vec<GuardedChange> = migration
            .split("CREATE TRIGGER")
            .skip(1)
            .flat_map(|stmt| sqlite_guards(&format!("CREATE TRIGGER{stmt}")))
            .collect();
        assert_eq!(found, [GuardedChange::Update, GuardedChange::Delete]);

        let lax = [
            "CREATE TRIGGER g BEFORE UPDATE OF event ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END",
            "CREATE TRIGGER g BEFORE DELETE ON audit_log WHEN old.seq > 99 BEGIN SELECT RAISE(ABORT, 'no'); END",
            "CREATE TRIGGER g BEFORE DELETE ON audit_log BEGIN SELECT 1; END",
            "CREATE TRIGGER g BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(IGNORE); END",
        ];
        for sql in lax {
            assert_eq!(sqlite_guards(sql), [], "{sql}");
        }
        assert_eq!(
            sqlite_guards(
                "create trigger keep after delete on audit_log begin select raise (rollback, 'x'); end"
            ),
            [GuardedChange::Delete]
        );
    }

    /// The migration's trigger (`BEFORE UPDATE OR DELETE ... FOR EACH ROW`,
    /// tgtype 27) guards both; disabled, conditional or silent ones do not.
    #[test]
    fn a_postgres_trigger_guards_only_when_enabled_and_raising() {
        let body = Some("\nBEGIN\n    RAISE EXCEPTION 'audit log is append-only';\nEND;\n");
        let both = 1 | 2 | TRIGGER_TYPE_DELETE | TRIGGER_TYPE_UPDATE;
        assert_eq!(
            postgres_guards(both, "O", true, body),
            [GuardedChange::Update, GuardedChange::Delete]
        );
        assert_eq!(postgres_guards(both, "D", true, body), []);
        assert_eq!(postgres_guards(both, "R", true, body), []);
        assert_eq!(postgres_guards(both, "O", false, body), []);
        assert_eq!(
            postgres_guards(both, "O", true, Some("BEGIN RETURN NULL; END")),
            []
        );
        assert_eq!(
            postgres_guards(1 | 2 | TRIGGER_TYPE_DELETE, "A", true, body),
            [GuardedChange::Delete]
        );
    }
}

//! Reads entries of a live log for auditors, newest first.

use exchange_schema::audit::AuditEntry;
use exchange_schema::{AgencyId, Decision, Purpose};
use exchange_service::db::{Db, to_ms};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::log::decision_str;

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
pub async fn entries(db: &Db, filter: &AuditFilter, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
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

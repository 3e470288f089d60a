//! The node's part of the federation's statistics: counting its own
//! records for the tables of the declared catalogue
//! ([`exchange_schema::statistics::CATALOGUE`]) in one quarter. Counts
//! leave the node, records do not; the gateway sums every node's counts
//! and protects the sum before anything is published.
//!
//! Only a statistician, for the `STATISTICS` purpose, may ask (the
//! `countRecords` policy); every count is audited (`STATISTICS_COUNTED`).
//! A survivor who opted out of statistics is not counted, nor are their
//! referrals, services and case closings; a record erased as a whole is not counted, and
//! a category erased reads as `UNKNOWN`. The coded values sit inside the
//! sealed categories, so the node opens each record to count it, as it
//! would to read it.

use exchange_schema::statistics::{
    CountTable, Dimension, Measure, Period, TableSpec, time_to_answer_band,
};
use sqlx::Row;

use crate::error::NodeError;
use crate::state::NodeState;
use crate::store::survivors::SurvivorRecord;
use crate::store::to_ms;

/// Survivors opened per batch while counting.
const BATCH: i64 = 500;

/// The value of a survivor's record along a dimension (several for
/// exploitation types, `UNKNOWN` when not recorded or erased).
fn survivor_values(record: &SurvivorRecord, dimension: Dimension) -> Vec<String> {
    let unknown = || vec!["UNKNOWN".to_owned()];
    match dimension {
        Dimension::Sex => record
            .identity
            .as_ref()
            .and_then(|i| i.sex)
            .map_or_else(unknown, |s| vec![s.as_str().to_owned()]),
        Dimension::AgeBand => record
            .identity
            .as_ref()
            .and_then(|i| i.age_band)
            .map_or_else(unknown, |a| vec![a.as_str().to_owned()]),
        Dimension::Nationality => record
            .identity
            .as_ref()
            .and_then(|i| i.nationality.clone())
            .map_or_else(unknown, |n| vec![n]),
        Dimension::Disability => {
            match record.health.as_ref().and_then(|h| h.functioning.as_ref()) {
                None => unknown(),
                Some(f) => {
                    let levels = [
                        f.seeing,
                        f.hearing,
                        f.walking,
                        f.cognition,
                        f.self_care,
                        f.communication,
                    ];
                    if levels.iter().flatten().any(|l| l.counts_as_disability()) {
                        vec!["YES".to_owned()]
                    } else if levels.iter().all(Option::is_some) {
                        vec!["NO".to_owned()]
                    } else {
                        unknown()
                    }
                }
            }
        }
        Dimension::ExploitationType => match &record.case {
            Some(case) if !case.exploitation_types.is_empty() => case
                .exploitation_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            _ => unknown(),
        },
        Dimension::Region => record
            .case
            .as_ref()
            .and_then(|c| c.region_of_identification.clone())
            .map_or_else(unknown, |r| vec![r]),
        Dimension::Service
        | Dimension::ReferralStatus
        | Dimension::TimeToAnswer
        | Dimension::ClosureReason => unknown(),
    }
}

/// Every combination of the record's values along `dimensions`.
fn keys(record: &SurvivorRecord, dimensions: &[Dimension]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for dimension in dimensions {
        let values = survivor_values(record, *dimension);
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut key = prefix.clone();
                    key.push(v.clone());
                    key
                })
            })
            .collect();
    }
    out
}

/// Counts the node's records for `tables` in `period`.
pub async fn count(
    state: &NodeState,
    period: Period,
    tables: &[&'static TableSpec],
) -> Result<Vec<CountTable>, NodeError> {
    let (start, end) = (to_ms(period.start()), to_ms(period.end()));
    let mut out: Vec<CountTable> = tables.iter().map(|t| CountTable::new(t.id)).collect();
    let survivor_tables: Vec<usize> = (0..tables.len())
        .filter(|i| tables[*i].measure == Measure::Survivors)
        .collect();
    if !survivor_tables.is_empty() {
        // Keyset pages in registration order, on the (created_at, id) index.
        let mut after: (i64, String) = (start - 1, String::new());
        loop {
            let mut conn = crate::store::acquire(&state.db).await?;
            let rows = sqlx::query(
                "SELECT id, created_at FROM survivors WHERE created_at < $2 \
                 AND (created_at > $3 OR (created_at = $3 AND id > $4)) \
                 AND created_at >= $1 AND statistics_opt_out = 0 \
                 ORDER BY created_at, id LIMIT $5",
            )
            .bind(start)
            .bind(end)
            .bind(after.0)
            .bind(&after.1)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let ids: Vec<String> = rows
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            let Some(last) = rows.last() else {
                break;
            };
            after = (last.try_get("created_at")?, last.try_get("id")?);
            // Records erased as a whole are left out by `get_many`.
            let records = crate::store::survivors::get_many(&mut conn, &state.vault, &ids)
                .await
                .map_err(NodeError::internal)?;
            drop(conn);
            for record in &records {
                for i in &survivor_tables {
                    for key in keys(record, tables[*i].dimensions) {
                        out[*i].add(key);
                    }
                }
            }
        }
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    for (i, table) in tables.iter().enumerate() {
        let sql = match table.measure {
            Measure::Survivors => continue,
            // The answer is the first acceptance or refusal of the
            // referral; its time, from when the referral was made.
            Measure::Referrals => {
                "SELECT r.service AS a, r.status AS b, r.created_at AS made, \
                 (SELECT MIN(e.at) FROM referral_events e WHERE e.referral_id = r.id \
                  AND e.status IN ('ACCEPTED', 'DECLINED')) AS answered \
                 FROM referrals r JOIN survivors s ON s.id = r.survivor_id \
                 WHERE r.created_at >= $1 AND r.created_at < $2 AND s.statistics_opt_out = 0"
            }
            Measure::ServicesDelivered => {
                "SELECT v.kind AS a FROM services v \
                 JOIN survivors s ON s.id = v.survivor_id \
                 WHERE v.delivered_at >= $1 AND v.delivered_at < $2 AND s.statistics_opt_out = 0"
            }
            // Each closing in the period, reopened since or not.
            Measure::CasesClosed => {
                "SELECT c.reason AS a FROM case_closures c \
                 JOIN survivors s ON s.id = c.survivor_id \
                 WHERE c.closed_at >= $1 AND c.closed_at < $2 AND s.statistics_opt_out = 0"
            }
        };
        let rows = sqlx::query(sql)
            .bind(start)
            .bind(end)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let mut key: Vec<String> = vec![row.try_get("a")?];
            match table.dimensions.get(1) {
                Some(Dimension::TimeToAnswer) => {
                    let made: i64 = row.try_get("made")?;
                    let answered: Option<i64> = row.try_get("answered")?;
                    key.push(time_to_answer_band(answered.map(|at| at - made)).to_owned());
                }
                Some(_) => key.push(row.try_get("b")?),
                None => {}
            }
            out[i].add(key);
        }
    }
    Ok(out)
}

/// Records a survivor's choice to be counted in statistics or not.
pub async fn set_opt_out(
    conn: &mut sqlx::AnyConnection,
    survivor_id: &str,
    opted_out: bool,
) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE survivors SET statistics_opt_out = $2 WHERE id = $1")
        .bind(survivor_id)
        .bind(i64::from(opted_out))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the survivor opted out of statistics.
pub async fn opted_out(conn: &mut sqlx::AnyConnection, survivor_id: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT statistics_opt_out FROM survivors WHERE id = $1")
        .bind(survivor_id)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64, _>("statistics_opt_out")? != 0,
        None => false,
    })
}

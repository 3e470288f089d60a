//! A survivor's requests to correct or erase their record, as stored
//! (`rights_requests`): kind, parts, times and status in clear, the
//! survivor's words and the agency's answer sealed under the record's key.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, open_rows, to_ms};
use crate::rights::{RequestKind, RequestStatus};
use crate::vault::{Field, Part, SurvivorKeys, Vault};

/// A request as stored, its sealed texts opened (`None` when absent or
/// erased with the record).
#[derive(Debug, Clone, PartialEq)]
pub struct RightsRequest {
    pub id: String,
    pub survivor_id: String,
    pub kind: RequestKind,
    pub parts: Vec<Part>,
    pub details: Option<String>,
    pub asked_at: OffsetDateTime,
    pub answer_due_at: OffsetDateTime,
    pub status: RequestStatus,
    pub answer: Option<String>,
    pub answered_at: Option<OffsetDateTime>,
    /// `agency/user` of the staff member who answered.
    pub answered_by: Option<String>,
}

const COLUMNS: &str = "id, survivor_id, kind, parts, details, asked_at, answer_due_at, status, \
     answer, answered_at, answered_by";

fn parts_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn decode(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<RightsRequest> {
    let survivor_id: String = row.try_get("survivor_id")?;
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let parts: String = row.try_get("parts")?;
    Ok(RightsRequest {
        id: row.try_get("id")?,
        kind: RequestKind::parse(&kind)
            .ok_or_else(|| anyhow::anyhow!("unknown request kind {kind:?}"))?,
        parts: parts
            .split(',')
            .map(|p| Part::parse(p).ok_or_else(|| anyhow::anyhow!("unknown record part {p:?}")))
            .collect::<anyhow::Result<_>>()?,
        details: keys.open_or_erased(
            &survivor_id,
            Field::RightsRequestDetails,
            row.try_get::<Option<String>, _>("details")?.as_deref(),
        )?,
        asked_at: from_ms(row.try_get("asked_at")?),
        answer_due_at: from_ms(row.try_get("answer_due_at")?),
        status: RequestStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown request status {status:?}"))?,
        answer: keys.open_or_erased(
            &survivor_id,
            Field::RightsRequestAnswer,
            row.try_get::<Option<String>, _>("answer")?.as_deref(),
        )?,
        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(from_ms),
        answered_by: row.try_get("answered_by")?,
        survivor_id,
    })
}

/// Stores a new request (status `OPEN`); `sealed_details` are its words,
/// sealed already ([`Field::RightsRequestDetails`]).
pub async fn insert(
    conn: &mut AnyConnection,
    request: &RightsRequest,
    sealed_details: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO rights_requests ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL)"
    ))
    .bind(&request.id)
    .bind(&request.survivor_id)
    .bind(request.kind.as_str())
    .bind(parts_text(&request.parts))
    .bind(sealed_details)
    .bind(to_ms(request.asked_at))
    .bind(to_ms(request.answer_due_at))
    .bind(RequestStatus::Open.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// One survivor's requests, newest first.
pub async fn for_survivor(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<RightsRequest>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rights_requests WHERE survivor_id = $1 \
         ORDER BY asked_at DESC, id DESC"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    open_rows(vault, &rows, "survivor_id", decode).await
}

/// The requests with this status (every status when `None`), the first
/// due first, at most `limit`.
pub async fn list(
    conn: &mut AnyConnection,
    vault: &Vault,
    status: Option<RequestStatus>,
    limit: i64,
) -> anyhow::Result<Vec<RightsRequest>> {
    let filter = if status.is_some() {
        "WHERE status = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM rights_requests {filter} ORDER BY answer_due_at, id LIMIT $1"
    );
    let mut query = sqlx::query(&sql).bind(limit);
    if let Some(status) = status {
        query = query.bind(status.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    open_rows(vault, &rows, "survivor_id", decode).await
}

/// One request.
pub async fn get(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<RightsRequest>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rights_requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(open_rows(vault, &rows, "survivor_id", decode)
        .await?
        .into_iter()
        .next())
}

/// How many of a survivor's requests are open.
pub async fn open_count(conn: &mut AnyConnection, survivor_id: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM rights_requests WHERE survivor_id = $1 AND status = $2",
    )
    .bind(survivor_id)
    .bind(RequestStatus::Open.as_str())
    .fetch_one(conn)
    .await?
    .try_get("n")?)
}

/// Records the answer to an open request; `false` when it was no longer
/// open. `answer` is already sealed (or `None`).
pub async fn answer(
    conn: &mut AnyConnection,
    id: &str,
    status: RequestStatus,
    sealed_answer: Option<&str>,
    at: OffsetDateTime,
    by: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE rights_requests SET status = $2, answer = $3, answered_at = $4, answered_by = $5 \
         WHERE id = $1 AND status = $6",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(sealed_answer)
    .bind(to_ms(at))
    .bind(by)
    .bind(RequestStatus::Open.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

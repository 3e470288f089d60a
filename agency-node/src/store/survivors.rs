//! Survivor rows: one JSON column per data category.

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, placeholders, to_ms};
use crate::records::{CaseDetails, Contact, HealthNotes, Identity, LegalStatus};

/// A survivor's stored record, all categories included. Never handed to a
/// client as is: it goes through [`crate::disclosure`] first.
#[derive(Debug, Clone)]
pub struct SurvivorRecord {
    /// Local ID at this node.
    pub id: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    pub identity: Option<Identity>,
    pub contact: Option<Contact>,
    pub case: Option<CaseDetails>,
    pub health: Option<HealthNotes>,
    pub legal: Option<LegalStatus>,
}

const COLUMNS: &str =
    "id, created_at, updated_at, created_by, identity, contact, case_details, health, legal";

fn encode<T: Serialize>(value: &Option<T>) -> anyhow::Result<Option<String>> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).context("encoding a category"))
        .transpose()
}

fn decode<T: DeserializeOwned>(row: &AnyRow, column: &str) -> anyhow::Result<Option<T>> {
    let raw: Option<String> = row.try_get(column)?;
    raw.map(|s| serde_json::from_str(&s).with_context(|| format!("decoding stored {column}")))
        .transpose()
}

fn from_row(row: &AnyRow) -> anyhow::Result<SurvivorRecord> {
    Ok(SurvivorRecord {
        id: row.try_get("id")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        created_by: row.try_get("created_by")?,
        identity: decode(row, "identity")?,
        contact: decode(row, "contact")?,
        case: decode(row, "case_details")?,
        health: decode(row, "health")?,
        legal: decode(row, "legal")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, record: &SurvivorRecord) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO survivors (id, created_at, updated_at, created_by, identity, contact, \
         case_details, health, legal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&record.id)
    .bind(to_ms(record.created_at))
    .bind(to_ms(record.updated_at))
    .bind(&record.created_by)
    .bind(encode(&record.identity)?)
    .bind(encode(&record.contact)?)
    .bind(encode(&record.case)?)
    .bind(encode(&record.health)?)
    .bind(encode(&record.legal)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every category of an existing record back.
pub async fn update(conn: &mut AnyConnection, record: &SurvivorRecord) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE survivors SET updated_at = $2, identity = $3, contact = $4, case_details = $5, \
         health = $6, legal = $7 WHERE id = $1",
    )
    .bind(&record.id)
    .bind(to_ms(record.updated_at))
    .bind(encode(&record.identity)?)
    .bind(encode(&record.contact)?)
    .bind(encode(&record.case)?)
    .bind(encode(&record.health)?)
    .bind(encode(&record.legal)?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<SurvivorRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM survivors WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn exists(conn: &mut AnyConnection, id: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT id FROM survivors WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// Survivors by local ID, in the order of `ids`; missing ones are skipped.
pub async fn get_many(
    conn: &mut AnyConnection,
    ids: &[String],
) -> anyhow::Result<Vec<SurvivorRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM survivors WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(conn).await?;
    let mut found: Vec<SurvivorRecord> =
        rows.iter().map(from_row).collect::<anyhow::Result<_>>()?;
    found.sort_by_key(|r| ids.iter().position(|id| id == &r.id));
    Ok(found)
}

/// A page of the node's survivors in registration order, after a cursor.
pub async fn page(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    limit: i64,
) -> anyhow::Result<Vec<SurvivorRecord>> {
    let rows = match after {
        Some((at, id)) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM survivors WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
                 ORDER BY created_at, id LIMIT $3"
            ))
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM survivors ORDER BY created_at, id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

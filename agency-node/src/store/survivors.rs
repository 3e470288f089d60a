//! Survivor rows: one JSON column per data category, each sealed under the
//! survivor's data key ([`crate::vault`]).

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, placeholders, to_ms};
use crate::records::{CaseDetails, Contact, HealthNotes, Identity, LegalStatus};
use crate::vault::{Field, Part, SurvivorKey, SurvivorKeys, Vault, VaultError};
use exchange_schema::Category;

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
    /// The categories erased (their data key destroyed by a retention rule
    /// or on request): they read as `None`.
    pub erased: Vec<ErasedCategory>,
}

/// A category of a record that was erased: when, and under which rule
/// (unknown only while an erasure is half done).
#[derive(Debug, Clone, PartialEq)]
pub struct ErasedCategory {
    pub category: Category,
    pub at: OffsetDateTime,
    pub rule: Option<String>,
}

/// A whole record was erased: it reads as erased (`ERASED`), with when and
/// under which rule, never as not found.
#[derive(Debug, thiserror::Error)]
#[error("the record was erased")]
pub struct ErasedRecord {
    pub at: OffsetDateTime,
    pub rule: Option<String>,
}

const COLUMNS: &str =
    "id, created_at, updated_at, created_by, identity, contact, case_details, health, legal";

fn encode<T: Serialize>(
    key: &SurvivorKey,
    field: Field,
    value: &Option<T>,
) -> anyhow::Result<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let json = serde_json::to_string(value).context("encoding a category")?;
    Ok(Some(key.seal(field, &json)?))
}

fn decode<T: DeserializeOwned>(
    key: &SurvivorKey,
    row: &AnyRow,
    field: Field,
) -> anyhow::Result<Option<T>> {
    let column = field.location().1;
    let raw: Option<String> = row.try_get(column)?;
    let Some(json) = key.open_or_erased(field, raw.as_deref())? else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_str(&json).with_context(|| format!("decoding stored {column}"))?,
    ))
}

fn from_row(keys: &SurvivorKeys, row: &AnyRow) -> anyhow::Result<SurvivorRecord> {
    let id: String = row.try_get("id")?;
    let key = keys.get(&id)?;
    // The record as a whole erased: it reads as erased, never as found.
    if let Some(at) = key.erased(Part::Record) {
        return Err(VaultError::Destroyed {
            survivor: id,
            part: Part::Record,
            at,
        }
        .into());
    }
    let erased = Part::ALL
        .into_iter()
        .filter_map(|part| {
            Some(ErasedCategory {
                category: part.category()?,
                at: key.erased(part)?,
                rule: None,
            })
        })
        .collect();
    Ok(SurvivorRecord {
        erased,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        created_by: row.try_get("created_by")?,
        identity: decode(key, row, Field::SurvivorIdentity)?,
        contact: decode(key, row, Field::SurvivorContact)?,
        case: decode(key, row, Field::SurvivorCase)?,
        health: decode(key, row, Field::SurvivorHealth)?,
        legal: decode(key, row, Field::SurvivorLegal)?,
        id,
    })
}

/// The records of `rows`; a wholly erased one is left out of a listing
/// (`skip_erased`) or, read alone, is an [`ErasedRecord`] error.
async fn from_rows(
    conn: &mut AnyConnection,
    vault: &Vault,
    rows: &[AnyRow],
    skip_erased: bool,
) -> anyhow::Result<Vec<SurvivorRecord>> {
    let ids = rows
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = vault.keys(&ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (row, id) in rows.iter().zip(&ids) {
        match from_row(&keys, row) {
            Ok(mut record) => {
                if !record.erased.is_empty() {
                    let rules = crate::retention::erasures_of(conn, id).await?;
                    for erased in &mut record.erased {
                        erased.rule = rules
                            .get(&Part::of(erased.category))
                            .map(|(_, rule)| rule.clone());
                    }
                }
                out.push(record);
            }
            Err(err) => match err.downcast_ref::<VaultError>() {
                Some(VaultError::Destroyed { .. }) if skip_erased => {}
                Some(VaultError::Destroyed { at, .. }) => {
                    let rule = crate::retention::erasures_of(conn, id)
                        .await?
                        .get(&Part::Record)
                        .map(|(_, rule)| rule.clone());
                    return Err(ErasedRecord { at: *at, rule }.into());
                }
                _ => return Err(err),
            },
        }
    }
    Ok(out)
}

/// Stores a new survivor's record, sealed under a data key made for it.
pub async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    record: &SurvivorRecord,
) -> anyhow::Result<()> {
    let key = vault.create(&record.id).await?;
    insert_sealed(conn, &key, record).await
}

/// Inserts a record whose data keys exist already (`key`, from
/// [`Vault::create`] or [`Vault::create_many`] for a bulk import).
pub async fn insert_sealed(
    conn: &mut AnyConnection,
    key: &crate::vault::SurvivorKey,
    record: &SurvivorRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO survivors (id, created_at, updated_at, created_by, identity, contact, \
         case_details, health, legal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&record.id)
    .bind(to_ms(record.created_at))
    .bind(to_ms(record.updated_at))
    .bind(&record.created_by)
    .bind(encode(key, Field::SurvivorIdentity, &record.identity)?)
    .bind(encode(key, Field::SurvivorContact, &record.contact)?)
    .bind(encode(key, Field::SurvivorCase, &record.case)?)
    .bind(encode(key, Field::SurvivorHealth, &record.health)?)
    .bind(encode(key, Field::SurvivorLegal, &record.legal)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every category of an existing record back.
pub async fn update(
    conn: &mut AnyConnection,
    vault: &Vault,
    record: &SurvivorRecord,
) -> anyhow::Result<bool> {
    let key = vault.key(&record.id).await?;
    let done = sqlx::query(
        "UPDATE survivors SET updated_at = $2, identity = $3, contact = $4, case_details = $5, \
         health = $6, legal = $7 WHERE id = $1",
    )
    .bind(&record.id)
    .bind(to_ms(record.updated_at))
    .bind(encode(&key, Field::SurvivorIdentity, &record.identity)?)
    .bind(encode(&key, Field::SurvivorContact, &record.contact)?)
    .bind(encode(&key, Field::SurvivorCase, &record.case)?)
    .bind(encode(&key, Field::SurvivorHealth, &record.health)?)
    .bind(encode(&key, Field::SurvivorLegal, &record.legal)?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<SurvivorRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM survivors WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(from_rows(conn, vault, &[row], false).await?.pop())
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
    vault: &Vault,
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
    let rows = query.fetch_all(&mut *conn).await?;
    let mut found = from_rows(conn, vault, &rows, true).await?;
    found.sort_by_key(|r| ids.iter().position(|id| id == &r.id));
    Ok(found)
}

/// A page of the node's survivors in registration order, after a cursor.
pub async fn page(
    conn: &mut AnyConnection,
    vault: &Vault,
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
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM survivors ORDER BY created_at, id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    from_rows(conn, vault, &rows, true).await
}

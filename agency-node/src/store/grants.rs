//! Consent grants as stored: who may see which categories of a survivor's
//! record, for which purposes, from when until when, how the consent was
//! given, and when and by whom it was revoked.

use std::collections::HashMap;

use exchange_schema::{AgencyId, Category, ConsentMethod, Purpose};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, join_wire, open_rows, placeholders, split_wire, to_ms};
use crate::vault::{Field, SurvivorKeys, Vault};

/// A stored consent grant.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentGrantRecord {
    pub id: String,
    pub survivor_id: String,
    pub grantee: AgencyId,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
    pub method: ConsentMethod,
    /// Who recorded it: `agency/user` of the caseworker, or `survivor`.
    pub recorded_by: String,
    /// Who witnessed a consent given outside the portal.
    pub witness: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<String>,
    pub revocation_reason: Option<String>,
}

impl ConsentGrantRecord {
    /// The facts the policy engine decides on.
    pub fn facts(&self) -> exchange_policies::GrantFacts {
        exchange_policies::GrantFacts {
            id: self.id.clone(),
            grantee: self.grantee.clone(),
            categories: self.categories.clone(),
            purposes: self.purposes.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            revoked_at: self.revoked_at,
        }
    }

    /// Whether the grant is in force at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && self.valid_from <= now
            && self.valid_until.is_none_or(|until| now < until)
    }
}

const COLUMNS: &str = "id, survivor_id, grantee, categories, purposes, valid_from, valid_until, \
     method, recorded_by, witness, created_at, revoked_at, revoked_by, revocation_reason";

/// A grant as read: an erased survivor's grant keeps its facts and reads
/// without its texts.
fn from_row(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<ConsentGrantRecord> {
    let grantee: String = row.try_get("grantee")?;
    let method: String = row.try_get("method")?;
    let survivor_id: String = row.try_get("survivor_id")?;
    let open = |field: Field, column: &str| -> anyhow::Result<Option<String>> {
        Ok(keys.open_or_erased(
            &survivor_id,
            field,
            row.try_get::<Option<String>, _>(column)?.as_deref(),
        )?)
    };
    let witness = open(Field::GrantWitness, "witness")?;
    let revocation_reason = open(Field::GrantRevocationReason, "revocation_reason")?;
    Ok(ConsentGrantRecord {
        id: row.try_get("id")?,
        survivor_id,
        grantee: AgencyId::parse(&grantee)?,
        categories: split_wire(&row.try_get::<String, _>("categories")?)?,
        purposes: split_wire(&row.try_get::<String, _>("purposes")?)?,
        valid_from: from_ms(row.try_get("valid_from")?),
        valid_until: row.try_get::<Option<i64>, _>("valid_until")?.map(from_ms),
        method: method.parse()?,
        recorded_by: row.try_get("recorded_by")?,
        witness,
        created_at: from_ms(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(from_ms),
        revoked_by: row.try_get("revoked_by")?,
        revocation_reason,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    grant: &ConsentGrantRecord,
) -> anyhow::Result<()> {
    let key = vault.key(&grant.survivor_id).await?;
    sqlx::query(&format!(
        "INSERT INTO consent_grants ({COLUMNS}) VALUES ({})",
        placeholders(1, 14)
    ))
    .bind(&grant.id)
    .bind(&grant.survivor_id)
    .bind(grant.grantee.as_str())
    .bind(join_wire(&grant.categories))
    .bind(join_wire(&grant.purposes))
    .bind(to_ms(grant.valid_from))
    .bind(grant.valid_until.map(to_ms))
    .bind(grant.method.as_str())
    .bind(&grant.recorded_by)
    .bind(key.seal_opt(Field::GrantWitness, grant.witness.as_deref())?)
    .bind(to_ms(grant.created_at))
    .bind(grant.revoked_at.map(to_ms))
    .bind(&grant.revoked_by)
    .bind(key.seal_opt(
        Field::GrantRevocationReason,
        grant.revocation_reason.as_deref(),
    )?)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<ConsentGrantRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM consent_grants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let rows: Vec<AnyRow> = row.into_iter().collect();
    Ok(open_rows(vault, &rows, "survivor_id", from_row)
        .await?
        .pop())
}

/// Marks a grant revoked; false when it was already revoked or is unknown.
pub async fn revoke(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
    at: OffsetDateTime,
    by: &str,
    reason: Option<&str>,
) -> anyhow::Result<bool> {
    let Some(survivor) = super::survivor_of(conn, "consent_grants", id).await? else {
        return Ok(false);
    };
    let key = vault.key(&survivor).await?;
    let done = sqlx::query(
        "UPDATE consent_grants SET revoked_at = $2, revoked_by = $3, revocation_reason = $4 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(to_ms(at))
    .bind(by)
    .bind(key.seal_opt(Field::GrantRevocationReason, reason)?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every grant of one survivor, oldest first.
pub async fn for_survivor(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<ConsentGrantRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM consent_grants WHERE survivor_id = $1 ORDER BY created_at, id"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    open_rows(vault, &rows, "survivor_id", from_row).await
}

/// Grants of several survivors naming one grantee, keyed by survivor: what a
/// page of records needs for its disclosure decisions, in one query.
pub async fn for_survivors(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_ids: &[String],
    grantee: &AgencyId,
) -> anyhow::Result<HashMap<String, Vec<ConsentGrantRecord>>> {
    let mut out: HashMap<String, Vec<ConsentGrantRecord>> = HashMap::new();
    if survivor_ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM consent_grants WHERE grantee = $1 AND survivor_id IN ({}) \
         ORDER BY created_at, id",
        placeholders(2, survivor_ids.len())
    );
    let mut query = sqlx::query(&sql).bind(grantee.as_str());
    for id in survivor_ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(conn).await?;
    for grant in open_rows(vault, &rows, "survivor_id", from_row).await? {
        out.entry(grant.survivor_id.clone())
            .or_default()
            .push(grant);
    }
    Ok(out)
}

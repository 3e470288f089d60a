//! The at-rest data upgrade: a database written before encryption at rest
//! has its survivors' content in clear; at start-up every such value is
//! sealed under its survivor's data key ([`crate::vault`]).
//!
//! Each survivor is done in its own transaction with a `RECORD_UPGRADED`
//! audit entry (reason `SEALED_AT_REST`; no contents). Values already sealed
//! are left as they are, so an upgrade interrupted half-way runs again at
//! the next start; once every survivor is done, `data_upgrades` says so and
//! later starts skip it. (SQLite may keep the old clear text in free pages
//! until they are reused; the upgrade ends with `VACUUM` on SQLite so the
//! file holds none.)

use exchange_audit::AuditLog;
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Decision, GlobalId};
use sqlx::{AnyConnection, Row as _};

use super::{Backend, Db};
use crate::vault::{Field, Part, SurvivorKey, Vault, is_sealed};

/// The upgrade's name in `data_upgrades` and its audit entries' reason.
pub const UPGRADE: &str = "SEALED_AT_REST";

/// How the rows holding a field are found for one survivor, and keyed.
struct Rows {
    /// `SELECT <key columns>, <column> FROM ... WHERE <survivor is $1>`.
    scope: &'static str,
    /// The row's key columns (compared in the `UPDATE`).
    key: &'static [&'static str],
}

fn rows_of(field: Field) -> Rows {
    let (table, _) = field.location();
    match table {
        "survivors" => Rows {
            scope: "id = $1",
            key: &["id"],
        },
        "care_plans" => Rows {
            scope: "survivor_id = $1",
            key: &["survivor_id", "version"],
        },
        "care_plan_actions" => Rows {
            scope: "survivor_id = $1",
            key: &["survivor_id", "version", "position"],
        },
        "referral_events" => Rows {
            scope: "referral_id IN (SELECT id FROM referrals WHERE survivor_id = $1)",
            key: &["referral_id", "position"],
        },
        _ => Rows {
            scope: "survivor_id = $1",
            key: &["id"],
        },
    }
}

/// Seals whatever of one survivor's content is still in clear; returns how
/// many values it sealed.
pub async fn seal_survivor(conn: &mut AnyConnection, key: &SurvivorKey) -> anyhow::Result<usize> {
    let mut sealed = 0;
    for field in Field::ALL {
        let (table, column) = field.location();
        let rows = rows_of(field);
        // A case note is sealed in the part of its own category.
        let category = if field == Field::CaseNoteBody {
            ", category"
        } else {
            ""
        };
        let select = format!(
            "SELECT {}, {column}{category} FROM {table} WHERE {} AND {column} IS NOT NULL",
            rows.key.join(", "),
            rows.scope
        );
        let found = sqlx::query(&select)
            .bind(key.survivor_id())
            .fetch_all(&mut *conn)
            .await?;
        let matching = rows
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 2))
            .collect::<Vec<_>>()
            .join(" AND ");
        let update = format!("UPDATE {table} SET {column} = $1 WHERE {matching}");
        for row in found {
            let value: String = row.try_get(column)?;
            if is_sealed(&value) {
                continue;
            }
            let part = if field == Field::CaseNoteBody {
                Part::of(row.try_get::<String, _>("category")?.parse()?)
            } else {
                field.part()
            };
            let mut query = sqlx::query(&update).bind(key.seal_in(part, field, &value)?);
            for (i, k) in rows.key.iter().enumerate() {
                query = match *k {
                    "version" | "position" => query.bind(row.try_get::<i64, _>(i)?),
                    _ => query.bind(row.try_get::<String, _>(i)?),
                };
            }
            query.execute(&mut *conn).await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// Runs the upgrade unless `data_upgrades` says it is done; returns how
/// many survivors' records it sealed.
pub async fn upgrade_once(
    db: &Db,
    vault: &Vault,
    audit: &AuditLog,
    agency: &AgencyId,
) -> anyhow::Result<usize> {
    if super::upgrade_done(db, UPGRADE).await? {
        return Ok(0);
    }
    let mut conn = db.pool().acquire().await?;
    let ids: Vec<String> = sqlx::query("SELECT id FROM survivors ORDER BY id")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    drop(conn);
    let mut upgraded = 0;
    for id in ids {
        let key = vault.create(&id).await?;
        let gid = GlobalId::new(agency.clone(), id.clone())?;
        let written = audit
            .record::<_, SealError, _>(move |conn| {
                Box::pin(async move {
                    let sealed = seal_survivor(conn, &key)
                        .await
                        .map_err(SealError::Storage)?;
                    if sealed == 0 {
                        return Err(SealError::Unchanged);
                    }
                    let mut event =
                        AuditEvent::new(AuditKind::RecordUpgraded, Decision::Permit, UPGRADE);
                    event.survivor = Some(gid);
                    Ok(((), event))
                })
            })
            .await;
        match written {
            Ok(()) => upgraded += 1,
            Err(SealError::Unchanged) => {}
            Err(err) => return Err(anyhow::anyhow!(err)),
        }
    }
    super::mark_upgrade_done(db, UPGRADE).await?;
    if upgraded > 0 {
        if db.backend() == Backend::Sqlite {
            let mut conn = db.pool().acquire().await?;
            // The clear text may linger in free pages: rewrite the file.
            sqlx::query("VACUUM").execute(&mut *conn).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await?;
        }
        tracing::info!(records = upgraded, "survivor records sealed at rest");
    }
    Ok(upgraded)
}

/// Why a survivor's upgrade wrote nothing.
#[derive(Debug, thiserror::Error)]
enum SealError {
    #[error("nothing of the record was in clear")]
    Unchanged,
    #[error("storage: {0}")]
    Storage(#[source] anyhow::Error),
    #[error(transparent)]
    Audit(#[from] exchange_audit::AuditError),
}

impl exchange_audit::ChangeError for SealError {
    fn is_audit_unavailable(&self) -> bool {
        matches!(self, Self::Audit(_) | Self::Storage(_))
    }
}

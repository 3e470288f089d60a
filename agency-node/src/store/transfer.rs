//! A survivor's case as it moves between nodes: the rows that travel
//! ([`MOVED_TABLES`]), exported as a [`CasePackage`] at the sending node,
//! imported at the receiving one (only known tables and columns, every row
//! belonging to the survivor, the closed lists checked as they are read
//! back), deleted at the sending node with a tombstone per ID, and the
//! transfers each node took part in.
//!
//! What does not travel: the portal credentials (the survivor gets a new
//! code from the new owner), the assigned caseworkers (staff of the old
//! owner) and break-glass openings (emergencies of the old owner's staff,
//! in its audit log); they are deleted with the record. The audit log
//! keeps every entry at both nodes.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context as _;
use exchange_schema::AgencyId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Column as _, Row};
use time::OffsetDateTime;

use super::{from_ms, to_ms};
use crate::vault::{Field, Vault};

/// Which rows of a table belong to the survivor.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// `id = $1` (the survivor's own row).
    Own,
    /// `survivor_id = $1`.
    Survivor,
    /// Rows of the survivor's referrals.
    Referral,
}

/// A table that travels with the record, in the order rows are inserted
/// (parents before children).
pub struct MovedTable {
    pub name: &'static str,
    columns: &'static [&'static str],
    /// Integer columns (times, versions, positions); the rest are text.
    integers: &'static [&'static str],
    scope: Scope,
    /// The order rows are read and inserted in (self-references first).
    order: &'static str,
}

/// Every table that travels, parents first.
pub const MOVED_TABLES: &[MovedTable] = &[
    MovedTable {
        name: "survivors",
        columns: &[
            "id",
            "created_at",
            "updated_at",
            "created_by",
            "identity",
            "contact",
            "case_details",
            "health",
            "legal",
            "statistics_opt_out",
        ],
        integers: &["created_at", "updated_at", "statistics_opt_out"],
        scope: Scope::Own,
        order: "id",
    },
    MovedTable {
        name: "consent_grants",
        columns: &[
            "id",
            "survivor_id",
            "grantee",
            "categories",
            "purposes",
            "valid_from",
            "valid_until",
            "method",
            "recorded_by",
            "witness",
            "created_at",
            "revoked_at",
            "revoked_by",
            "revocation_reason",
        ],
        integers: &["valid_from", "valid_until", "created_at", "revoked_at"],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "consent_receipts",
        columns: &[
            "id",
            "survivor_id",
            "grant_id",
            "event",
            "created_at",
            "receipt",
        ],
        integers: &["created_at"],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "referrals",
        columns: &[
            "id",
            "survivor_id",
            "from_agency",
            "to_agency",
            "service",
            "urgency",
            "status",
            "notes",
            "created_at",
            "updated_at",
            "created_by",
            "parent_id",
        ],
        integers: &["created_at", "updated_at"],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "referral_events",
        columns: &[
            "referral_id",
            "position",
            "status",
            "at",
            "by_agency",
            "by_user",
            "note",
        ],
        integers: &["position", "at"],
        scope: Scope::Referral,
        order: "referral_id, position",
    },
    MovedTable {
        name: "case_notes",
        columns: &[
            "id",
            "survivor_id",
            "category",
            "body",
            "author_agency",
            "author_user",
            "author_role",
            "created_at",
            "supersedes",
        ],
        integers: &["created_at"],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "services",
        columns: &[
            "id",
            "survivor_id",
            "kind",
            "provider_agency",
            "status",
            "planned_for",
            "started_at",
            "delivered_at",
            "outcome",
            "created_at",
            "created_by",
            "updated_at",
        ],
        integers: &[
            "planned_for",
            "started_at",
            "delivered_at",
            "created_at",
            "updated_at",
        ],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "follow_ups",
        columns: &[
            "id",
            "survivor_id",
            "kind",
            "due_at",
            "assigned_agency",
            "assigned_user",
            "service_id",
            "status",
            "created_at",
            "created_by",
            "closed_at",
            "closed_by",
            "due_notified_at",
        ],
        integers: &["due_at", "created_at", "closed_at", "due_notified_at"],
        scope: Scope::Survivor,
        order: "created_at, id",
    },
    MovedTable {
        name: "care_plans",
        columns: &[
            "survivor_id",
            "version",
            "goals",
            "created_at",
            "created_by",
            "agreed_at",
            "agreement_method",
            "agreement_by",
            "witness",
            "change_requested_at",
            "change_request",
        ],
        integers: &["version", "created_at", "agreed_at", "change_requested_at"],
        scope: Scope::Survivor,
        order: "version",
    },
    MovedTable {
        name: "care_plan_actions",
        columns: &[
            "survivor_id",
            "version",
            "position",
            "description",
            "responsible_agency",
            "due_at",
            "status",
            "updated_at",
            "updated_by",
        ],
        integers: &["version", "position", "due_at", "updated_at"],
        scope: Scope::Survivor,
        order: "version, position",
    },
    MovedTable {
        name: "rights_requests",
        columns: &[
            "id",
            "survivor_id",
            "kind",
            "parts",
            "details",
            "asked_at",
            "answer_due_at",
            "status",
            "answer",
            "answered_at",
            "answered_by",
        ],
        integers: &["asked_at", "answer_due_at", "answered_at"],
        scope: Scope::Survivor,
        order: "asked_at, id",
    },
    MovedTable {
        name: "case_closures",
        columns: &[
            "id",
            "survivor_id",
            "closed_at",
            "closed_by",
            "reason",
            "reopened_at",
            "reopened_by",
        ],
        integers: &["closed_at", "reopened_at"],
        scope: Scope::Survivor,
        order: "closed_at, id",
    },
];

/// Tables deleted with the record at the sending node without travelling.
const LEFT_BEHIND: &[&str] = &[
    "portal_credentials",
    "case_assignments",
    "break_glass_openings",
    "legal_holds",
];

/// One row, column by column: integers as JSON numbers, text as strings.
pub type PackedRow = BTreeMap<String, Value>;

/// Everything of one survivor that travels, table by table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePackage {
    /// The survivor's local ID (kept: the new global ID is
    /// `<new owner>:<same local id>`).
    pub survivor_id: String,
    pub tables: BTreeMap<String, Vec<PackedRow>>,
}

impl CasePackage {
    /// The rows of a table (none when it has none).
    pub fn rows(&self, table: &str) -> &[PackedRow] {
        self.tables.get(table).map_or(&[], Vec::as_slice)
    }

    /// The text column `column` of each row of `table`.
    pub fn texts(&self, table: &str, column: &str) -> Vec<&str> {
        self.rows(table)
            .iter()
            .filter_map(|r| r.get(column).and_then(Value::as_str))
            .collect()
    }
}

fn scoped_sql(table: &MovedTable, what: &str) -> String {
    let filter = match table.scope {
        Scope::Own => "id = $1",
        Scope::Survivor => "survivor_id = $1",
        Scope::Referral => "referral_id IN (SELECT id FROM referrals WHERE survivor_id = $1)",
    };
    format!("{what} FROM {} WHERE {filter}", table.name)
}

/// Reads every row of the survivor that travels, its sealed values opened
/// (the package travels over the federation's mutual TLS and is sealed
/// again under the receiver's own key as it is imported).
pub async fn export(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<CasePackage> {
    let key = vault.key(survivor_id).await?;
    let mut tables = BTreeMap::new();
    for table in MOVED_TABLES {
        let sql = format!(
            "{} ORDER BY {}",
            scoped_sql(table, &format!("SELECT {}", table.columns.join(", "))),
            table.order
        );
        let rows = sqlx::query(&sql)
            .bind(survivor_id)
            .fetch_all(&mut *conn)
            .await?;
        let mut packed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut out = PackedRow::new();
            for column in row.columns() {
                let name = column.name();
                let value = if table.integers.contains(&name) {
                    row.try_get::<Option<i64>, _>(name)?
                        .map_or(Value::Null, Value::from)
                } else {
                    let text = row.try_get::<Option<String>, _>(name)?;
                    let text = match Field::at(table.name, name) {
                        Some(field) => key.open_opt(field, text.as_deref())?,
                        None => text,
                    };
                    text.map_or(Value::Null, Value::from)
                };
                out.insert(name.to_owned(), value);
            }
            packed.push(out);
        }
        tables.insert(table.name.to_owned(), packed);
    }
    Ok(CasePackage {
        survivor_id: survivor_id.to_owned(),
        tables,
    })
}

/// Why a package cannot be imported: the sender's mistake, not a fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PackageRefused(pub String);

/// Checks a package before anything is written: known tables and columns
/// only, every row the survivor's, the survivor's own row present once.
pub fn check(package: &CasePackage) -> Result<(), PackageRefused> {
    let known: HashSet<&str> = MOVED_TABLES.iter().map(|t| t.name).collect();
    if let Some(unknown) = package.tables.keys().find(|t| !known.contains(t.as_str())) {
        return Err(PackageRefused(format!("unknown table {unknown:?}")));
    }
    let referrals: HashSet<&str> = package.texts("referrals", "id").into_iter().collect();
    for table in MOVED_TABLES {
        for row in package.rows(table.name) {
            if let Some(column) = row.keys().find(|c| !table.columns.contains(&c.as_str())) {
                return Err(PackageRefused(format!(
                    "unknown column {column:?} of {}",
                    table.name
                )));
            }
            for (column, value) in row {
                let fits = if table.integers.contains(&column.as_str()) {
                    value.is_null() || value.is_i64()
                } else {
                    value.is_null() || value.is_string()
                };
                if !fits {
                    return Err(PackageRefused(format!(
                        "{}.{column} has the wrong type",
                        table.name
                    )));
                }
            }
            let own = |column: &str| {
                row.get(column).and_then(Value::as_str) == Some(package.survivor_id.as_str())
            };
            let belongs = match table.scope {
                Scope::Own => own("id"),
                Scope::Survivor => own("survivor_id"),
                Scope::Referral => row
                    .get("referral_id")
                    .and_then(Value::as_str)
                    .is_some_and(|r| referrals.contains(r)),
            };
            if !belongs {
                return Err(PackageRefused(format!(
                    "a row of {} does not belong to the survivor",
                    table.name
                )));
            }
        }
    }
    if package.survivor_id.is_empty() || package.rows("survivors").len() != 1 {
        return Err(PackageRefused(
            "the package holds no survivor record".into(),
        ));
    }
    Ok(())
}

/// Inserts a checked package's rows, parents first, sealing the
/// survivor's content under a data key made here. An ID already held here
/// fails on its key (reported as a conflict by the caller).
pub async fn import(
    conn: &mut AnyConnection,
    vault: &Vault,
    package: &CasePackage,
) -> anyhow::Result<()> {
    let key = vault.create(&package.survivor_id).await?;
    for table in MOVED_TABLES {
        for row in package.rows(table.name) {
            let columns: Vec<&str> = table
                .columns
                .iter()
                .copied()
                .filter(|c| row.contains_key(*c))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                columns.join(", "),
                super::placeholders(1, columns.len())
            );
            let mut query = sqlx::query(&sql);
            for column in &columns {
                let value = &row[*column];
                query = if table.integers.contains(column) {
                    query.bind(value.as_i64())
                } else {
                    let text = value.as_str();
                    query.bind(match Field::at(table.name, column) {
                        Some(field) => key.seal_opt(field, text)?,
                        None => text.map(str::to_owned),
                    })
                };
            }
            query
                .execute(&mut *conn)
                .await
                .with_context(|| format!("importing a row of {}", table.name))?;
        }
    }
    Ok(())
}

/// Deletes everything of the survivor at the sending node (children first)
/// and leaves a tombstone for every ID that moved: the survivor, its
/// grants, referrals, notes, services and follow-ups.
pub async fn remove_and_tombstone(
    conn: &mut AnyConnection,
    package: &CasePackage,
    new_owner: &AgencyId,
    at: OffsetDateTime,
) -> anyhow::Result<()> {
    let survivor = package.survivor_id.as_str();
    for table in MOVED_TABLES.iter().rev() {
        sqlx::query(&scoped_sql(table, "DELETE"))
            .bind(survivor)
            .execute(&mut *conn)
            .await?;
        if table.name == "consent_grants" {
            for left in LEFT_BEHIND {
                sqlx::query(&format!("DELETE FROM {left} WHERE survivor_id = $1"))
                    .bind(survivor)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    let mut ids = vec![survivor];
    for table in [
        "consent_grants",
        "referrals",
        "case_notes",
        "services",
        "follow_ups",
    ] {
        ids.extend(package.texts(table, "id"));
    }
    for id in ids {
        sqlx::query("INSERT INTO moved_records (id, new_owner, moved_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(new_owner.as_str())
            .bind(to_ms(at))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The agency a moved ID went to, if it moved.
pub async fn moved_to(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<AgencyId>> {
    let row = sqlx::query("SELECT new_owner FROM moved_records WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| Ok(AgencyId::parse(&r.try_get::<String, _>("new_owner")?)?))
        .transpose()
}

/// A transfer as one node saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRecord {
    pub id: String,
    pub survivor_id: String,
    /// `OUT` (sent from here) or `IN` (received here).
    pub direction: String,
    pub peer: AgencyId,
    /// `PENDING`, `COMPLETED`, `ABORTED` (out) or `RECEIVED` (in).
    pub status: String,
    pub consent_method: String,
    pub requested_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const TRANSFER_COLUMNS: &str = "id, survivor_id, direction, peer_agency, status, consent_method, \
     requested_by, created_at, updated_at";

fn transfer_from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<TransferRecord> {
    Ok(TransferRecord {
        id: row.try_get("id")?,
        survivor_id: row.try_get("survivor_id")?,
        direction: row.try_get("direction")?,
        peer: AgencyId::parse(&row.try_get::<String, _>("peer_agency")?)?,
        status: row.try_get("status")?,
        consent_method: row.try_get("consent_method")?,
        requested_by: row.try_get("requested_by")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

pub async fn insert_transfer(conn: &mut AnyConnection, t: &TransferRecord) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO case_transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&t.id)
    .bind(&t.survivor_id)
    .bind(&t.direction)
    .bind(t.peer.as_str())
    .bind(&t.status)
    .bind(&t.consent_method)
    .bind(&t.requested_by)
    .bind(to_ms(t.created_at))
    .bind(to_ms(t.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_transfer(
    conn: &mut AnyConnection,
    id: &str,
) -> anyhow::Result<Option<TransferRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM case_transfers WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// The survivor's transfer out that is still being handed over, if any.
pub async fn pending_out(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Option<TransferRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM case_transfers WHERE survivor_id = $1 AND \
         direction = 'OUT' AND status = 'PENDING'"
    ))
    .bind(survivor_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// Every transfer out still being handed over (for the resume at start).
pub async fn all_pending_out(conn: &mut AnyConnection) -> anyhow::Result<Vec<TransferRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM case_transfers WHERE direction = 'OUT' AND \
         status = 'PENDING' ORDER BY created_at"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(transfer_from_row).collect()
}

/// Moves a pending transfer out to `status`; false when it was no longer
/// pending.
pub async fn settle_transfer(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    at: OffsetDateTime,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE case_transfers SET status = $2, updated_at = $3 WHERE id = $1 AND \
         status = 'PENDING'",
    )
    .bind(id)
    .bind(status)
    .bind(to_ms(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the survivor's record is being handed over (read-only here).
pub async fn is_moving(conn: &mut AnyConnection, survivor_id: &str) -> anyhow::Result<bool> {
    Ok(pending_out(conn, survivor_id).await?.is_some())
}

/// The transfers that brought the survivor's case here, oldest first.
pub async fn received(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Vec<TransferRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM case_transfers WHERE survivor_id = $1 AND \
         direction = 'IN' ORDER BY created_at"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(transfer_from_row).collect()
}

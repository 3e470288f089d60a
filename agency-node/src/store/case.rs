//! Case management as stored at the owner node: case notes (append-only),
//! services, follow-ups and the caseworkers assigned to a case.
//!
//! Nothing here decides who may read or write: the resolvers in
//! [`crate::graphql::case`] do, and every write runs inside the audit
//! transaction. Listings are keyset-paginated on an index, so a page costs
//! the same however long the case.

use exchange_schema::{
    AgencyId, Category, FollowUpKind, FollowUpStatus, Role, ServiceKind, ServiceStatus,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, open_rows, placeholders, to_ms};
use crate::vault::{Field, Part, SurvivorKeys, Vault, VaultError};

/// One case note. Never updated: a correction is a new note whose
/// `supersedes` names this one.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseNoteRecord {
    pub id: String,
    pub survivor_id: String,
    /// The category the note belongs to: it travels only where this
    /// category is disclosed.
    pub category: Category,
    pub body: String,
    pub author_agency: AgencyId,
    pub author_user: String,
    pub author_role: Role,
    pub created_at: OffsetDateTime,
    pub supersedes: Option<String>,
    /// The note that corrects this one, if any (read, never stored here).
    pub superseded_by: Option<String>,
}

/// A service planned for or delivered to a survivor.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub id: String,
    pub survivor_id: String,
    pub kind: ServiceKind,
    pub provider: AgencyId,
    pub status: ServiceStatus,
    pub planned_for: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub outcome: Option<String>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub updated_at: OffsetDateTime,
}

/// A follow-up assigned to an agency (and optionally one of its users).
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpRecord {
    pub id: String,
    pub survivor_id: String,
    pub kind: FollowUpKind,
    pub due_at: OffsetDateTime,
    pub assigned_agency: AgencyId,
    pub assigned_user: Option<String>,
    pub service_id: Option<String>,
    pub status: FollowUpStatus,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub closed_at: Option<OffsetDateTime>,
    pub closed_by: Option<String>,
}

/// A caseworker of the owner assigned to a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub user: String,
    pub assigned_at: OffsetDateTime,
    pub assigned_by: String,
}

fn opt_time(row: &AnyRow, column: &str) -> anyhow::Result<Option<OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(from_ms))
}

// ---- Case notes ---------------------------------------------------------

const NOTE_COLUMNS: &str = "n.id, n.survivor_id, n.category, n.body, n.author_agency, \
     n.author_user, n.author_role, n.created_at, n.supersedes, s.id AS superseded_by";

/// A note as read; a note whose category was erased reads as erased
/// ([`crate::vault::VaultError::Destroyed`]).
fn note_from_row(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<CaseNoteRecord> {
    let survivor_id: String = row.try_get("survivor_id")?;
    let category: Category = row.try_get::<String, _>("category")?.parse()?;
    let body = keys.get(&survivor_id)?.open_in(
        Part::of(category),
        Field::CaseNoteBody,
        &row.try_get::<String, _>("body")?,
    )?;
    Ok(CaseNoteRecord {
        id: row.try_get("id")?,
        survivor_id,
        category,
        body,
        author_agency: AgencyId::parse(&row.try_get::<String, _>("author_agency")?)?,
        author_user: row.try_get("author_user")?,
        author_role: row.try_get::<String, _>("author_role")?.parse()?,
        created_at: from_ms(row.try_get("created_at")?),
        supersedes: row.try_get("supersedes")?,
        superseded_by: row.try_get("superseded_by")?,
    })
}

/// Appends a note. A second correction of the same note fails on the
/// unique index, which the caller reports as a conflict.
pub async fn insert_note(
    conn: &mut AnyConnection,
    vault: &Vault,
    note: &CaseNoteRecord,
) -> anyhow::Result<()> {
    let key = vault.key(&note.survivor_id).await?;
    sqlx::query(
        "INSERT INTO case_notes (id, survivor_id, category, body, author_agency, author_user, \
         author_role, created_at, supersedes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&note.id)
    .bind(&note.survivor_id)
    .bind(note.category.as_str())
    .bind(key.seal_in(Part::of(note.category), Field::CaseNoteBody, &note.body)?)
    .bind(note.author_agency.as_str())
    .bind(&note.author_user)
    .bind(note.author_role.as_str())
    .bind(to_ms(note.created_at))
    .bind(&note.supersedes)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_note(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<CaseNoteRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {NOTE_COLUMNS} FROM case_notes n LEFT JOIN case_notes s ON s.supersedes = n.id \
         WHERE n.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let rows: Vec<AnyRow> = row.into_iter().collect();
    Ok(open_rows(vault, &rows, "survivor_id", note_from_row)
        .await?
        .pop())
}

/// A page of a survivor's notes in `categories`, newest first, after a
/// `(created_at, id)` cursor; superseded notes only when asked for.
pub async fn notes_page(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
    categories: &[Category],
    include_superseded: bool,
    after: Option<(i64, String)>,
    limit: i64,
) -> anyhow::Result<Vec<CaseNoteRecord>> {
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    let mut next = 2 + categories.len();
    let mut sql = format!(
        "SELECT {NOTE_COLUMNS} FROM case_notes n LEFT JOIN case_notes s ON s.supersedes = n.id \
         WHERE n.survivor_id = $1 AND n.category IN ({})",
        placeholders(2, categories.len())
    );
    if !include_superseded {
        sql.push_str(" AND s.id IS NULL");
    }
    if after.is_some() {
        sql.push_str(&format!(
            " AND (n.created_at, n.id) < (${}, ${})",
            next,
            next + 1
        ));
        next += 2;
    }
    sql.push_str(&format!(
        " ORDER BY n.created_at DESC, n.id DESC LIMIT ${next}"
    ));
    let mut query = sqlx::query(&sql).bind(survivor_id);
    for category in categories {
        query = query.bind(category.as_str());
    }
    if let Some((at, id)) = after {
        query = query.bind(at).bind(id);
    }
    let rows = query.bind(limit).fetch_all(conn).await?;
    // Notes of an erased category are gone: the page leaves them out.
    let notes = open_rows(
        vault,
        &rows,
        "survivor_id",
        |row, keys| match note_from_row(row, keys) {
            Ok(note) => Ok(Some(note)),
            Err(err) if matches!(err.downcast_ref(), Some(VaultError::Destroyed { .. })) => {
                Ok(None)
            }
            Err(err) => Err(err),
        },
    )
    .await?;
    Ok(notes.into_iter().flatten().collect())
}

// ---- Services -----------------------------------------------------------

const SERVICE_COLUMNS: &str = "id, survivor_id, kind, provider_agency, status, planned_for, \
     started_at, delivered_at, outcome, created_at, created_by, updated_at";

fn service_from_row(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<ServiceRecord> {
    let survivor_id: String = row.try_get("survivor_id")?;
    let outcome = keys.get(&survivor_id)?.open_opt(
        Field::ServiceOutcome,
        row.try_get::<Option<String>, _>("outcome")?.as_deref(),
    )?;
    Ok(ServiceRecord {
        id: row.try_get("id")?,
        survivor_id,
        kind: row.try_get::<String, _>("kind")?.parse()?,
        provider: AgencyId::parse(&row.try_get::<String, _>("provider_agency")?)?,
        status: row.try_get::<String, _>("status")?.parse()?,
        planned_for: opt_time(row, "planned_for")?,
        started_at: opt_time(row, "started_at")?,
        delivered_at: opt_time(row, "delivered_at")?,
        outcome,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

pub async fn insert_service(
    conn: &mut AnyConnection,
    vault: &Vault,
    s: &ServiceRecord,
) -> anyhow::Result<()> {
    let key = vault.key(&s.survivor_id).await?;
    sqlx::query(&format!(
        "INSERT INTO services ({SERVICE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&s.id)
    .bind(&s.survivor_id)
    .bind(s.kind.as_str())
    .bind(s.provider.as_str())
    .bind(s.status.as_str())
    .bind(s.planned_for.map(to_ms))
    .bind(s.started_at.map(to_ms))
    .bind(s.delivered_at.map(to_ms))
    .bind(key.seal_opt(Field::ServiceOutcome, s.outcome.as_deref())?)
    .bind(to_ms(s.created_at))
    .bind(&s.created_by)
    .bind(to_ms(s.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_service(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<ServiceRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let rows: Vec<AnyRow> = row.into_iter().collect();
    Ok(open_rows(vault, &rows, "survivor_id", service_from_row)
        .await?
        .pop())
}

/// Moves a service from `from` to `updated.status`, writing its dates and
/// outcome; false when it was no longer in `from` (a concurrent change won).
pub async fn update_service(
    conn: &mut AnyConnection,
    vault: &Vault,
    from: ServiceStatus,
    updated: &ServiceRecord,
) -> anyhow::Result<bool> {
    let key = vault.key(&updated.survivor_id).await?;
    let done = sqlx::query(
        "UPDATE services SET status = $3, started_at = $4, delivered_at = $5, outcome = $6, \
         updated_at = $7 WHERE id = $1 AND status = $2",
    )
    .bind(&updated.id)
    .bind(from.as_str())
    .bind(updated.status.as_str())
    .bind(updated.started_at.map(to_ms))
    .bind(updated.delivered_at.map(to_ms))
    .bind(key.seal_opt(Field::ServiceOutcome, updated.outcome.as_deref())?)
    .bind(to_ms(updated.updated_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A survivor's services, newest first (a case has tens, not thousands).
pub async fn services_for(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<ServiceRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE survivor_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 200"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    open_rows(vault, &rows, "survivor_id", service_from_row).await
}

// ---- Follow-ups ---------------------------------------------------------

const FOLLOW_UP_COLUMNS: &str = "id, survivor_id, kind, due_at, assigned_agency, assigned_user, \
     service_id, status, created_at, created_by, closed_at, closed_by";

fn follow_up_from_row(row: &AnyRow) -> anyhow::Result<FollowUpRecord> {
    Ok(FollowUpRecord {
        id: row.try_get("id")?,
        survivor_id: row.try_get("survivor_id")?,
        kind: row.try_get::<String, _>("kind")?.parse()?,
        due_at: from_ms(row.try_get("due_at")?),
        assigned_agency: AgencyId::parse(&row.try_get::<String, _>("assigned_agency")?)?,
        assigned_user: row.try_get("assigned_user")?,
        service_id: row.try_get("service_id")?,
        status: row.try_get::<String, _>("status")?.parse()?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        closed_at: opt_time(row, "closed_at")?,
        closed_by: row.try_get("closed_by")?,
    })
}

pub async fn insert_follow_up(conn: &mut AnyConnection, f: &FollowUpRecord) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO follow_ups ({FOLLOW_UP_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&f.id)
    .bind(&f.survivor_id)
    .bind(f.kind.as_str())
    .bind(to_ms(f.due_at))
    .bind(f.assigned_agency.as_str())
    .bind(&f.assigned_user)
    .bind(&f.service_id)
    .bind(f.status.as_str())
    .bind(to_ms(f.created_at))
    .bind(&f.created_by)
    .bind(f.closed_at.map(to_ms))
    .bind(&f.closed_by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_follow_up(
    conn: &mut AnyConnection,
    id: &str,
) -> anyhow::Result<Option<FollowUpRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(follow_up_from_row).transpose()
}

/// Closes an open follow-up; false when it was no longer open.
pub async fn close_follow_up(
    conn: &mut AnyConnection,
    id: &str,
    to: FollowUpStatus,
    at: OffsetDateTime,
    by: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE follow_ups SET status = $2, closed_at = $3, closed_by = $4 \
         WHERE id = $1 AND status = $5",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(to_ms(at))
    .bind(by)
    .bind(FollowUpStatus::Open.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A survivor's follow-ups, soonest due first.
pub async fn follow_ups_for(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Vec<FollowUpRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE survivor_id = $1 \
         ORDER BY due_at, id LIMIT 200"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(follow_up_from_row).collect()
}

/// A page of the open follow-ups assigned to `agency` and due before
/// `before`, soonest first, after a `(due_at, id)` cursor: one range of
/// the `follow_ups_due` index.
pub async fn due_page(
    conn: &mut AnyConnection,
    agency: &AgencyId,
    before: OffsetDateTime,
    after: Option<(i64, String)>,
    limit: i64,
) -> anyhow::Result<Vec<FollowUpRecord>> {
    let (cursor, limit_at) = if after.is_some() {
        (" AND (due_at, id) > ($4, $5)", 6)
    } else {
        ("", 4)
    };
    let sql = format!(
        "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE assigned_agency = $1 AND status = $2 \
         AND due_at < $3{cursor} ORDER BY due_at, id LIMIT ${limit_at}"
    );
    let mut query = sqlx::query(&sql)
        .bind(agency.as_str())
        .bind(FollowUpStatus::Open.as_str())
        .bind(to_ms(before));
    if let Some((at, id)) = after {
        query = query.bind(at).bind(id);
    }
    let rows = query.bind(limit).fetch_all(conn).await?;
    rows.iter().map(follow_up_from_row).collect()
}

// ---- Assigned caseworkers -----------------------------------------------

pub async fn assignments(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Vec<Assignment>> {
    let rows = sqlx::query(
        "SELECT user_id, assigned_at, assigned_by FROM case_assignments WHERE survivor_id = $1 \
         ORDER BY assigned_at, user_id",
    )
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Assignment {
                user: row.try_get("user_id")?,
                assigned_at: from_ms(row.try_get("assigned_at")?),
                assigned_by: row.try_get("assigned_by")?,
            })
        })
        .collect()
}

/// Replaces a case's assigned caseworkers with `users`; a user already
/// assigned keeps their original assignment time.
pub async fn replace_assignments(
    conn: &mut AnyConnection,
    survivor_id: &str,
    users: &[String],
    at: OffsetDateTime,
    by: &str,
) -> anyhow::Result<()> {
    let kept = assignments(&mut *conn, survivor_id).await?;
    for old in &kept {
        if !users.contains(&old.user) {
            sqlx::query("DELETE FROM case_assignments WHERE survivor_id = $1 AND user_id = $2")
                .bind(survivor_id)
                .bind(&old.user)
                .execute(&mut *conn)
                .await?;
        }
    }
    for user in users {
        if kept.iter().any(|k| &k.user == user) {
            continue;
        }
        sqlx::query(
            "INSERT INTO case_assignments (survivor_id, user_id, assigned_at, assigned_by) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(survivor_id)
        .bind(user)
        .bind(to_ms(at))
        .bind(by)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One closing of a survivor's case, and its reopening if it was.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseClosureRecord {
    pub id: String,
    pub closed_at: OffsetDateTime,
    pub closed_by: String,
    pub reason: exchange_schema::CaseClosureReason,
    pub reopened_at: Option<OffsetDateTime>,
    pub reopened_by: Option<String>,
}

/// Every closing of a survivor's case, oldest first. The case is closed
/// while the newest has no reopening.
pub async fn case_closures(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Vec<CaseClosureRecord>> {
    let rows = sqlx::query(
        "SELECT id, closed_at, closed_by, reason, reopened_at, reopened_by FROM case_closures \
         WHERE survivor_id = $1 ORDER BY closed_at, id",
    )
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CaseClosureRecord {
                id: row.try_get("id")?,
                closed_at: from_ms(row.try_get("closed_at")?),
                closed_by: row.try_get("closed_by")?,
                reason: row.try_get::<String, _>("reason")?.parse()?,
                reopened_at: opt_time(row, "reopened_at")?,
                reopened_by: row.try_get("reopened_by")?,
            })
        })
        .collect()
}

/// Records the closing `closure` of a survivor's case.
pub async fn close_case(
    conn: &mut AnyConnection,
    survivor_id: &str,
    closure: &CaseClosureRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO case_closures (id, survivor_id, closed_at, closed_by, reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&closure.id)
    .bind(survivor_id)
    .bind(to_ms(closure.closed_at))
    .bind(&closure.closed_by)
    .bind(closure.reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the reopening of the closing `id`, if it was not reopened yet;
/// answers whether it was done.
pub async fn reopen_case(
    conn: &mut AnyConnection,
    id: &str,
    at: OffsetDateTime,
    by: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE case_closures SET reopened_at = $2, reopened_by = $3 \
         WHERE id = $1 AND reopened_at IS NULL",
    )
    .bind(id)
    .bind(to_ms(at))
    .bind(by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! Referrals as stored, with their status history. A referral is owned by
//! the referring agency's node; the receiving agency answers it through its
//! own token, and the answer is recorded here.

use exchange_schema::{AgencyId, ReferralStatus, ServiceKind, Urgency};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, open_rows, to_ms};
use crate::vault::{Field, SurvivorKey, SurvivorKeys, Vault};

/// A stored referral.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralRecord {
    pub id: String,
    pub survivor_id: String,
    pub from_agency: AgencyId,
    pub to_agency: AgencyId,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub status: ReferralStatus,
    pub notes: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    /// For an onward referral: the accepted referral it continues.
    pub parent_id: Option<String>,
}

/// One step in a referral's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralEvent {
    pub status: ReferralStatus,
    pub at: OffsetDateTime,
    pub by_agency: AgencyId,
    pub by_user: String,
    pub note: Option<String>,
}

/// Which referrals a listing wants, seen from the requesting agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent to the requesting agency.
    Incoming,
    /// Sent by the requesting agency.
    Outgoing,
    /// Either.
    Both,
}

const COLUMNS: &str = "id, survivor_id, from_agency, to_agency, service, urgency, status, notes, \
     created_at, updated_at, created_by, parent_id";

/// A referral as read: an erased survivor's referral keeps its coded
/// facts (service, status, dates) and reads without its notes.
fn from_row(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<ReferralRecord> {
    let survivor_id: String = row.try_get("survivor_id")?;
    let notes = keys.open_or_erased(
        &survivor_id,
        Field::ReferralNotes,
        row.try_get::<Option<String>, _>("notes")?.as_deref(),
    )?;
    Ok(ReferralRecord {
        id: row.try_get("id")?,
        survivor_id,
        from_agency: AgencyId::parse(&row.try_get::<String, _>("from_agency")?)?,
        to_agency: AgencyId::parse(&row.try_get::<String, _>("to_agency")?)?,
        service: row.try_get::<String, _>("service")?.parse()?,
        urgency: row.try_get::<String, _>("urgency")?.parse()?,
        status: row.try_get::<String, _>("status")?.parse()?,
        notes,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        created_by: row.try_get("created_by")?,
        parent_id: row.try_get("parent_id")?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    referral: &ReferralRecord,
    first: &ReferralEvent,
) -> anyhow::Result<()> {
    let key = vault.key(&referral.survivor_id).await?;
    sqlx::query(&format!(
        "INSERT INTO referrals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&referral.id)
    .bind(&referral.survivor_id)
    .bind(referral.from_agency.as_str())
    .bind(referral.to_agency.as_str())
    .bind(referral.service.as_str())
    .bind(referral.urgency.as_str())
    .bind(referral.status.as_str())
    .bind(key.seal_opt(Field::ReferralNotes, referral.notes.as_deref())?)
    .bind(to_ms(referral.created_at))
    .bind(to_ms(referral.updated_at))
    .bind(&referral.created_by)
    .bind(&referral.parent_id)
    .execute(&mut *conn)
    .await?;
    append_event(conn, &key, &referral.id, first).await
}

async fn append_event(
    conn: &mut AnyConnection,
    key: &SurvivorKey,
    referral_id: &str,
    event: &ReferralEvent,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO referral_events (referral_id, position, status, at, by_agency, by_user, note) \
         SELECT $1, COALESCE(MAX(position), 0) + 1, $2, $3, $4, $5, $6 FROM referral_events WHERE referral_id = $1",
    )
    .bind(referral_id)
    .bind(event.status.as_str())
    .bind(to_ms(event.at))
    .bind(event.by_agency.as_str())
    .bind(&event.by_user)
    .bind(key.seal_opt(Field::ReferralEventNote, event.note.as_deref())?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a referral from `from` to the event's status; false when it was no
/// longer in `from` (a concurrent answer won).
pub async fn transition(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
    from: ReferralStatus,
    event: &ReferralEvent,
) -> anyhow::Result<bool> {
    let Some(survivor) = super::survivor_of(conn, "referrals", id).await? else {
        return Ok(false);
    };
    let key = vault.key(&survivor).await?;
    let done = sqlx::query(
        "UPDATE referrals SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(event.status.as_str())
    .bind(to_ms(event.at))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    append_event(conn, &key, id, event).await?;
    Ok(true)
}

pub async fn get(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Option<ReferralRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM referrals WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let rows: Vec<AnyRow> = row.into_iter().collect();
    Ok(open_rows(vault, &rows, "survivor_id", from_row)
        .await?
        .pop())
}

/// One referral's history, oldest first.
pub async fn history(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<Vec<ReferralEvent>> {
    Ok(histories(conn, vault, &[id])
        .await?
        .pop()
        .unwrap_or_default())
}

/// The histories of several referrals (a page of them) in one query rather
/// than one query each: every referral in `ids` has an entry, in order of
/// `ids`, each history oldest first.
pub async fn histories(
    conn: &mut AnyConnection,
    vault: &Vault,
    ids: &[&str],
) -> anyhow::Result<Vec<Vec<ReferralEvent>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT e.referral_id, r.survivor_id, e.status, e.at, e.by_agency, e.by_user, e.note \
         FROM referral_events e JOIN referrals r ON r.id = e.referral_id \
         WHERE e.referral_id IN ({}) ORDER BY e.referral_id, e.position",
        super::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(conn).await?;
    let events = open_rows(vault, &rows, "survivor_id", |row, keys| {
        Ok((
            row.try_get::<String, _>("referral_id")?,
            event_from_row(row, keys)?,
        ))
    })
    .await?;
    let mut by_id: std::collections::HashMap<String, Vec<ReferralEvent>> =
        std::collections::HashMap::with_capacity(ids.len());
    for (referral, event) in events {
        by_id.entry(referral).or_default().push(event);
    }
    Ok(ids
        .iter()
        .map(|id| by_id.remove(*id).unwrap_or_default())
        .collect())
}

fn event_from_row(row: &AnyRow, keys: &SurvivorKeys) -> anyhow::Result<ReferralEvent> {
    let survivor_id: String = row.try_get("survivor_id")?;
    Ok(ReferralEvent {
        status: row.try_get::<String, _>("status")?.parse()?,
        at: from_ms(row.try_get("at")?),
        by_agency: AgencyId::parse(&row.try_get::<String, _>("by_agency")?)?,
        by_user: row.try_get("by_user")?,
        note: keys.open_or_erased(
            &survivor_id,
            Field::ReferralEventNote,
            row.try_get::<Option<String>, _>("note")?.as_deref(),
        )?,
    })
}

/// A page of the referrals the requesting agency may see, newest first:
/// those it sent or received (by `direction`), optionally by status, after a
/// `(created_at, id)` cursor; at most `limit` rows. Visibility is part of
/// the query: a referral between two other agencies is never read.
pub async fn page(
    conn: &mut AnyConnection,
    vault: &Vault,
    requester: &AgencyId,
    direction: Direction,
    statuses: &[ReferralStatus],
    after: Option<(i64, String)>,
    limit: i64,
) -> anyhow::Result<Vec<ReferralRecord>> {
    let sql = page_sql(direction, after.is_some(), statuses.len());
    let mut query = sqlx::query(&sql).bind(requester.as_str());
    if let Some((at, id)) = after {
        query = query.bind(at).bind(id);
    }
    for status in statuses {
        query = query.bind(status.as_str());
    }
    let rows = query.bind(limit).fetch_all(conn).await?;
    open_rows(vault, &rows, "survivor_id", from_row).await
}

/// The statement [`page`] runs. Its parameters: `$1` the requesting agency;
/// then, with a cursor, its `created_at` and `id`; then each status; last,
/// the limit.
///
/// Every branch reads one index (`referrals_by_to` or `referrals_by_from`)
/// in its order from the cursor on and stops at the limit, so a page costs
/// the same however many referrals the node holds. Both directions are the
/// two branches, each limited, merged: a single `to_agency = $1 OR
/// from_agency = $1` made both backends read every referral of the agency
/// and sort them for each page. A referral the agency sent to itself is
/// listed once (the second branch leaves it out).
pub fn page_sql(direction: Direction, after: bool, statuses: usize) -> String {
    let mut next = 2;
    let mut filters = String::new();
    if after {
        filters.push_str(&format!(
            " AND (created_at, id) < (${a}, ${b})",
            a = next,
            b = next + 1
        ));
        next += 2;
    }
    if statuses > 0 {
        filters.push_str(&format!(
            " AND status IN ({})",
            super::placeholders(next, statuses)
        ));
        next += statuses;
    }
    let order = format!("ORDER BY created_at DESC, id DESC LIMIT ${next}");
    let branch =
        |agency: &str| format!("SELECT {COLUMNS} FROM referrals WHERE {agency}{filters} {order}");
    match direction {
        Direction::Incoming => branch("to_agency = $1"),
        Direction::Outgoing => branch("from_agency = $1"),
        Direction::Both => format!(
            "SELECT * FROM ({}) AS incoming UNION ALL SELECT * FROM ({}) AS outgoing {order}",
            branch("to_agency = $1"),
            branch("from_agency = $1 AND to_agency <> $1"),
        ),
    }
}

/// Referrals concerning one survivor (for the survivor's own view).
pub async fn for_survivor(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<ReferralRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM referrals WHERE survivor_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    open_rows(vault, &rows, "survivor_id", from_row).await
}

/// Whether `agency` holds an accepted referral of the survivor: it works
/// on the case as a partner and may add notes, services and follow-ups.
pub async fn is_partner(
    conn: &mut AnyConnection,
    survivor_id: &str,
    agency: &AgencyId,
) -> anyhow::Result<bool> {
    Ok(accepted_to(conn, survivor_id, agency).await?.is_some())
}

/// The newest accepted referral of the survivor to `agency`, if any.
pub async fn accepted_to(
    conn: &mut AnyConnection,
    survivor_id: &str,
    agency: &AgencyId,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM referrals WHERE survivor_id = $1 AND to_agency = $2 AND status = $3 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(survivor_id)
    .bind(agency.as_str())
    .bind(ReferralStatus::Accepted.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

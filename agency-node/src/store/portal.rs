//! The survivor portal's stored state: one consent credential per survivor
//! (the argon2 hashes of the consent code and of the PIN the survivor chose,
//! the failed-attempt counter and the lock) and the signed consent receipts.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, to_ms};

/// A survivor's portal credential as stored. Nothing in it reveals the code
/// or the PIN: `locator` is the code's first, non-secret group.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalCredential {
    pub survivor_id: String,
    pub locator: String,
    pub code_hash: String,
    /// `None` until the survivor chooses a PIN at first sign-in.
    pub pin_hash: Option<String>,
    pub failed_attempts: i64,
    pub locked_until: Option<OffsetDateTime>,
    pub issued_at: OffsetDateTime,
    /// `agency/user` of the caseworker who issued the code.
    pub issued_by: String,
}

const COLUMNS: &str = "survivor_id, locator, code_hash, pin_hash, failed_attempts, locked_until, issued_at, issued_by";

fn credential(row: &AnyRow) -> anyhow::Result<PortalCredential> {
    Ok(PortalCredential {
        survivor_id: row.try_get("survivor_id")?,
        locator: row.try_get("locator")?,
        code_hash: row.try_get("code_hash")?,
        pin_hash: row.try_get("pin_hash")?,
        failed_attempts: row.try_get("failed_attempts")?,
        locked_until: row.try_get::<Option<i64>, _>("locked_until")?.map(from_ms),
        issued_at: from_ms(row.try_get("issued_at")?),
        issued_by: row.try_get("issued_by")?,
    })
}

/// Replaces the survivor's credential (a new code voids the old code, its
/// PIN and its lock).
pub async fn replace_credential(
    conn: &mut AnyConnection,
    credential: &PortalCredential,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM portal_credentials WHERE survivor_id = $1")
        .bind(&credential.survivor_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO portal_credentials ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&credential.survivor_id)
    .bind(&credential.locator)
    .bind(&credential.code_hash)
    .bind(&credential.pin_hash)
    .bind(credential.failed_attempts)
    .bind(credential.locked_until.map(to_ms))
    .bind(to_ms(credential.issued_at))
    .bind(&credential.issued_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a locator is already taken (codes are drawn again until not).
pub async fn locator_taken(conn: &mut AnyConnection, locator: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM portal_credentials WHERE locator = $1")
        .bind(locator)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

pub async fn by_locator(
    conn: &mut AnyConnection,
    locator: &str,
) -> anyhow::Result<Option<PortalCredential>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM portal_credentials WHERE locator = $1"
    ))
    .bind(locator)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(credential).transpose()
}

pub async fn for_survivor(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<Option<PortalCredential>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM portal_credentials WHERE survivor_id = $1"
    ))
    .bind(survivor_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(credential).transpose()
}

/// Counts a failed sign-in; the new count. The increment is done by the
/// database, so concurrent failures are all counted.
pub async fn count_failure(conn: &mut AnyConnection, survivor_id: &str) -> anyhow::Result<i64> {
    sqlx::query(
        "UPDATE portal_credentials SET failed_attempts = failed_attempts + 1 WHERE survivor_id = $1",
    )
    .bind(survivor_id)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT failed_attempts FROM portal_credentials WHERE survivor_id = $1")
        .bind(survivor_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("failed_attempts")?)
}

/// Locks the credential until `until` and starts counting afresh.
pub async fn lock(
    conn: &mut AnyConnection,
    survivor_id: &str,
    until: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE portal_credentials SET locked_until = $2, failed_attempts = 0 WHERE survivor_id = $1",
    )
    .bind(survivor_id)
    .bind(to_ms(until))
    .execute(conn)
    .await?;
    Ok(())
}

/// Clears the failure count after a successful sign-in.
pub async fn clear_failures(conn: &mut AnyConnection, survivor_id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE portal_credentials SET failed_attempts = 0, locked_until = NULL WHERE survivor_id = $1",
    )
    .bind(survivor_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the PIN the survivor chose; false if one was already chosen for
/// this code (the PIN is chosen once per code).
pub async fn set_pin(
    conn: &mut AnyConnection,
    survivor_id: &str,
    issued_at: OffsetDateTime,
    pin_hash: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE portal_credentials SET pin_hash = $3 \
         WHERE survivor_id = $1 AND issued_at = $2 AND pin_hash IS NULL",
    )
    .bind(survivor_id)
    .bind(to_ms(issued_at))
    .bind(pin_hash)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A stored, signed consent receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReceipt {
    pub id: String,
    pub survivor_id: String,
    pub grant_id: String,
    /// `GIVEN` or `WITHDRAWN`.
    pub event: String,
    pub created_at: OffsetDateTime,
    /// The signed receipt, as JSON.
    pub receipt: String,
}

fn receipt(row: &AnyRow, keys: &crate::vault::SurvivorKeys) -> anyhow::Result<StoredReceipt> {
    let survivor_id: String = row.try_get("survivor_id")?;
    let receipt = keys.get(&survivor_id)?.open(
        crate::vault::Field::ConsentReceipt,
        &row.try_get::<String, _>("receipt")?,
    )?;
    Ok(StoredReceipt {
        id: row.try_get("id")?,
        survivor_id: row.try_get("survivor_id")?,
        grant_id: row.try_get("grant_id")?,
        event: row.try_get("event")?,
        created_at: from_ms(row.try_get("created_at")?),
        receipt,
    })
}

pub async fn insert_receipt(
    conn: &mut AnyConnection,
    vault: &crate::vault::Vault,
    r: &StoredReceipt,
) -> anyhow::Result<()> {
    let key = vault.key(&r.survivor_id).await?;
    sqlx::query(
        "INSERT INTO consent_receipts (id, survivor_id, grant_id, event, created_at, receipt) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.survivor_id)
    .bind(&r.grant_id)
    .bind(&r.event)
    .bind(to_ms(r.created_at))
    .bind(key.seal(crate::vault::Field::ConsentReceipt, &r.receipt)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// A survivor's receipts, newest first.
pub async fn receipts_for(
    conn: &mut AnyConnection,
    vault: &crate::vault::Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<StoredReceipt>> {
    let rows = sqlx::query(
        "SELECT id, survivor_id, grant_id, event, created_at, receipt FROM consent_receipts \
         WHERE survivor_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(survivor_id)
    .fetch_all(conn)
    .await?;
    super::open_rows(vault, &rows, "survivor_id", receipt).await
}

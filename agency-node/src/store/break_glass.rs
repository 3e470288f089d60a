//! Break-glass openings: an emergency access window a permitted user opened
//! for one survivor, with the written justification. The policy engine is
//! told of the opening; it permits only inside the window.

use exchange_schema::AgencyId;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, to_ms};
use crate::vault::{Field, Vault};

#[derive(Debug, Clone, PartialEq)]
pub struct BreakGlassOpening {
    pub id: String,
    pub survivor_id: String,
    pub agency: AgencyId,
    pub user: String,
    pub justification: String,
    pub opened_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl BreakGlassOpening {
    pub fn facts(&self) -> exchange_policies::BreakGlassFacts {
        exchange_policies::BreakGlassFacts {
            id: self.id.clone(),
            opened_at: self.opened_at,
            expires_at: self.expires_at,
        }
    }
}

pub async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    opening: &BreakGlassOpening,
) -> anyhow::Result<()> {
    let key = vault.key(&opening.survivor_id).await?;
    sqlx::query(
        "INSERT INTO break_glass_openings (id, survivor_id, agency, user_id, justification, opened_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&opening.id)
    .bind(&opening.survivor_id)
    .bind(opening.agency.as_str())
    .bind(&opening.user)
    .bind(key.seal(Field::BreakGlassJustification, &opening.justification)?)
    .bind(to_ms(opening.opened_at))
    .bind(to_ms(opening.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest opening by this user of this agency for this survivor.
pub async fn latest(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
    agency: &AgencyId,
    user: &str,
) -> anyhow::Result<Option<BreakGlassOpening>> {
    let row = sqlx::query(
        "SELECT id, survivor_id, agency, user_id, justification, opened_at, expires_at \
         FROM break_glass_openings WHERE survivor_id = $1 AND agency = $2 AND user_id = $3 \
         ORDER BY opened_at DESC, id DESC LIMIT 1",
    )
    .bind(survivor_id)
    .bind(agency.as_str())
    .bind(user)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key = vault.key(survivor_id).await?;
    Some(row)
        .map(|row| -> anyhow::Result<_> {
            Ok(BreakGlassOpening {
                id: row.try_get("id")?,
                survivor_id: row.try_get("survivor_id")?,
                agency: AgencyId::parse(&row.try_get::<String, _>("agency")?)?,
                user: row.try_get("user_id")?,
                justification: key.open(
                    Field::BreakGlassJustification,
                    &row.try_get::<String, _>("justification")?,
                )?,
                opened_at: from_ms(row.try_get("opened_at")?),
                expires_at: from_ms(row.try_get("expires_at")?),
            })
        })
        .transpose()
}

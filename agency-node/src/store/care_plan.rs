//! Care plans as stored at the owner node: one row per version (goals as a
//! JSON list of text) and one per action. A version is never rewritten; its
//! agreement is set once, a change request is kept on it, and its actions'
//! progress is recorded in place.

use exchange_schema::{AgencyId, ConsentMethod, PlanActionStatus};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::{from_ms, to_ms};
use crate::vault::{Field, SurvivorKey, Vault};

/// The survivor's agreement to a plan version.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub at: OffsetDateTime,
    /// PORTAL (the survivor, signed in) or witnessed by staff.
    pub method: ConsentMethod,
    /// `<agency>/<user>` of the recording staff, or `survivor`.
    pub by: String,
    pub witness: Option<String>,
}

/// A change the survivor asked for, in their words.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequest {
    pub at: OffsetDateTime,
    pub text: String,
}

/// One action of a plan version.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanAction {
    pub position: i64,
    pub description: String,
    pub responsible: AgencyId,
    pub due_at: Option<OffsetDateTime>,
    pub status: PlanActionStatus,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// One version of a survivor's care plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CarePlanRecord {
    pub survivor_id: String,
    pub version: i64,
    pub goals: Vec<String>,
    pub actions: Vec<PlanAction>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub agreement: Option<Agreement>,
    pub change_request: Option<ChangeRequest>,
}

const COLUMNS: &str = "survivor_id, version, goals, created_at, created_by, agreed_at, \
     agreement_method, agreement_by, witness, change_requested_at, change_request";

fn plan_from_row(row: &AnyRow, key: &SurvivorKey) -> anyhow::Result<CarePlanRecord> {
    let agreement = match row.try_get::<Option<i64>, _>("agreed_at")? {
        Some(at) => Some(Agreement {
            at: from_ms(at),
            method: row
                .try_get::<Option<String>, _>("agreement_method")?
                .unwrap_or_default()
                .parse()?,
            by: row
                .try_get::<Option<String>, _>("agreement_by")?
                .unwrap_or_default(),
            witness: key.open_opt(
                Field::CarePlanWitness,
                row.try_get::<Option<String>, _>("witness")?.as_deref(),
            )?,
        }),
        None => None,
    };
    let change_request = match row.try_get::<Option<i64>, _>("change_requested_at")? {
        Some(at) => Some(ChangeRequest {
            at: from_ms(at),
            text: key
                .open_opt(
                    Field::CarePlanChangeRequest,
                    row.try_get::<Option<String>, _>("change_request")?
                        .as_deref(),
                )?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(CarePlanRecord {
        survivor_id: row.try_get("survivor_id")?,
        version: row.try_get("version")?,
        goals: serde_json::from_str(
            &key.open(Field::CarePlanGoals, &row.try_get::<String, _>("goals")?)?,
        )?,
        actions: Vec::new(),
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        agreement,
        change_request,
    })
}

fn action_from_row(row: &AnyRow, key: &SurvivorKey) -> anyhow::Result<PlanAction> {
    Ok(PlanAction {
        position: row.try_get("position")?,
        description: key.open(
            Field::CarePlanActionDescription,
            &row.try_get::<String, _>("description")?,
        )?,
        responsible: AgencyId::parse(&row.try_get::<String, _>("responsible_agency")?)?,
        due_at: row.try_get::<Option<i64>, _>("due_at")?.map(from_ms),
        status: row.try_get::<String, _>("status")?.parse()?,
        updated_at: from_ms(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

async fn with_actions(
    conn: &mut AnyConnection,
    key: &SurvivorKey,
    mut plans: Vec<CarePlanRecord>,
) -> anyhow::Result<Vec<CarePlanRecord>> {
    let Some(first) = plans.first() else {
        return Ok(plans);
    };
    let survivor = first.survivor_id.clone();
    let rows = sqlx::query(
        "SELECT version, position, description, responsible_agency, due_at, status, updated_at, \
         updated_by FROM care_plan_actions WHERE survivor_id = $1 ORDER BY version, position",
    )
    .bind(&survivor)
    .fetch_all(conn)
    .await?;
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        if let Some(plan) = plans.iter_mut().find(|p| p.version == version) {
            plan.actions.push(action_from_row(row, key)?);
        }
    }
    Ok(plans)
}

/// Every version of a survivor's plan, newest first.
pub async fn versions(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Vec<CarePlanRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM care_plans WHERE survivor_id = $1 ORDER BY version DESC"
    ))
    .bind(survivor_id)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let key = vault.key(survivor_id).await?;
    let plans = rows
        .iter()
        .map(|row| plan_from_row(row, &key))
        .collect::<anyhow::Result<_>>()?;
    with_actions(conn, &key, plans).await
}

/// The newest version of a survivor's plan.
pub async fn latest(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
) -> anyhow::Result<Option<CarePlanRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM care_plans WHERE survivor_id = $1 ORDER BY version DESC LIMIT 1"
    ))
    .bind(survivor_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key = vault.key(survivor_id).await?;
    let plan = plan_from_row(&row, &key)?;
    Ok(with_actions(conn, &key, vec![plan]).await?.pop())
}

/// The version number a new plan takes.
pub async fn next_version(conn: &mut AnyConnection, survivor_id: &str) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM care_plans WHERE survivor_id = $1",
    )
    .bind(survivor_id)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("next")?)
}

/// Stores a new version with its actions. A version number taken meanwhile
/// fails on the primary key, which the caller reports as a conflict.
pub async fn insert(
    conn: &mut AnyConnection,
    vault: &Vault,
    plan: &CarePlanRecord,
) -> anyhow::Result<()> {
    let key = vault.key(&plan.survivor_id).await?;
    sqlx::query(
        "INSERT INTO care_plans (survivor_id, version, goals, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&plan.survivor_id)
    .bind(plan.version)
    .bind(key.seal(Field::CarePlanGoals, &serde_json::to_string(&plan.goals)?)?)
    .bind(to_ms(plan.created_at))
    .bind(&plan.created_by)
    .execute(&mut *conn)
    .await?;
    for action in &plan.actions {
        sqlx::query(
            "INSERT INTO care_plan_actions (survivor_id, version, position, description, \
             responsible_agency, due_at, status, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&plan.survivor_id)
        .bind(plan.version)
        .bind(action.position)
        .bind(key.seal(Field::CarePlanActionDescription, &action.description)?)
        .bind(action.responsible.as_str())
        .bind(action.due_at.map(to_ms))
        .bind(action.status.as_str())
        .bind(to_ms(action.updated_at))
        .bind(&action.updated_by)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records the agreement to a version not yet agreed to; false otherwise.
pub async fn agree(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
    version: i64,
    agreement: &Agreement,
) -> anyhow::Result<bool> {
    let key = vault.key(survivor_id).await?;
    let done = sqlx::query(
        "UPDATE care_plans SET agreed_at = $3, agreement_method = $4, agreement_by = $5, \
         witness = $6 WHERE survivor_id = $1 AND version = $2 AND agreed_at IS NULL",
    )
    .bind(survivor_id)
    .bind(version)
    .bind(to_ms(agreement.at))
    .bind(agreement.method.as_str())
    .bind(&agreement.by)
    .bind(key.seal_opt(Field::CarePlanWitness, agreement.witness.as_deref())?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps the survivor's request for a change on a version not agreed to;
/// a later request replaces an earlier one. False when agreed meanwhile.
pub async fn request_change(
    conn: &mut AnyConnection,
    vault: &Vault,
    survivor_id: &str,
    version: i64,
    request: &ChangeRequest,
) -> anyhow::Result<bool> {
    let key = vault.key(survivor_id).await?;
    let done = sqlx::query(
        "UPDATE care_plans SET change_requested_at = $3, change_request = $4 \
         WHERE survivor_id = $1 AND version = $2 AND agreed_at IS NULL",
    )
    .bind(survivor_id)
    .bind(version)
    .bind(to_ms(request.at))
    .bind(key.seal(Field::CarePlanChangeRequest, &request.text)?)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One step of a plan action: from which status to which, when, by whom.
#[derive(Debug, Clone, Copy)]
pub struct ActionStep<'a> {
    pub position: i64,
    pub from: PlanActionStatus,
    pub to: PlanActionStatus,
    pub at: OffsetDateTime,
    pub by: &'a str,
}

/// Moves an action of a version from `step.from` to `step.to`; false when
/// it was no longer in `step.from`.
pub async fn update_action(
    conn: &mut AnyConnection,
    survivor_id: &str,
    version: i64,
    step: ActionStep<'_>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE care_plan_actions SET status = $5, updated_at = $6, updated_by = $7 \
         WHERE survivor_id = $1 AND version = $2 AND position = $3 AND status = $4",
    )
    .bind(survivor_id)
    .bind(version)
    .bind(step.position)
    .bind(step.from.as_str())
    .bind(step.to.as_str())
    .bind(to_ms(step.at))
    .bind(step.by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

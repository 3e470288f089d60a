//! The coded-intake data upgrade: survivor records stored before the
//! federation's coded vocabularies (`exchange_schema::intake`) are rewritten
//! into them at start-up.
//!
//! What maps, maps ([`exchange_schema::intake::legacy`]): a free-text gender
//! onto a gender identity, a nationality written as a code or an English
//! country name onto its ISO 3166-1 alpha-2 code, a language onto its
//! canonical BCP 47 tag, an exploitation type onto the closed list. The
//! rest is never dropped: it is kept as `unmapped` text in the same
//! category (so the same consent governs it), and the coded field reads
//! unknown (`UNKNOWN`, or left out of a list). A date of birth gives the age
//! band.
//!
//! Each record that changes is rewritten in its own transaction with a
//! `RECORD_UPGRADED` audit entry (reason `CODED_INTAKE`; no contents). An
//! upgrade interrupted half-way runs again at the next start and leaves the
//! records already upgraded as they are; once all are done, `data_upgrades`
//! says so and later starts skip it.

use exchange_audit::AuditLog;
use exchange_schema::intake::{
    AgeBand, CountryCode, ExploitationType, GenderIdentity, LanguageTag, legacy,
};
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Decision, GlobalId};
use serde_json::{Map, Value, json};
use sqlx::Row;

use super::Db;

/// The upgrade's name in `data_upgrades` and its audit entries' reason.
pub const UPGRADE: &str = "CODED_INTAKE";

/// Runs the upgrade unless `data_upgrades` says it is done; returns how
/// many records it rewrote.
pub async fn upgrade_once(db: &Db, audit: &AuditLog, agency: &AgencyId) -> anyhow::Result<usize> {
    if super::upgrade_done(db, UPGRADE).await? {
        return Ok(0);
    }
    let upgraded = upgrade(db, audit, agency).await?;
    super::mark_upgrade_done(db, UPGRADE).await?;
    if upgraded > 0 {
        tracing::info!(
            records = upgraded,
            "coded intake: survivor records upgraded"
        );
    }
    Ok(upgraded)
}

/// Rewrites every survivor record not yet in the coded form; returns how
/// many it rewrote. Safe to run again: an upgraded record stays as it is.
pub async fn upgrade(db: &Db, audit: &AuditLog, agency: &AgencyId) -> anyhow::Result<usize> {
    // Which records need it, read once; each is read again and rewritten
    // under the write lock (another replica may have upgraded it since).
    let pending: Vec<String> = {
        let mut conn = db.pool().acquire().await?;
        let rows = sqlx::query("SELECT id, identity, case_details FROM survivors ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
        let mut pending = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let identity: Option<String> = row.try_get("identity")?;
            let case: Option<String> = row.try_get("case_details")?;
            let (_, _, changed) = upgrade_record(identity.as_deref(), case.as_deref())
                .map_err(|err| anyhow::anyhow!("survivor {id}: {err}"))?;
            if changed {
                pending.push(id);
            }
        }
        pending
    };
    let mut upgraded = 0;
    for id in pending {
        let gid = GlobalId::new(agency.clone(), id.clone())?;
        let written = audit
            .record::<_, UpgradeError, _>(move |conn| {
                Box::pin(async move {
                    let row =
                        sqlx::query("SELECT identity, case_details FROM survivors WHERE id = $1")
                            .bind(&id)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(UpgradeError::storage)?;
                    let identity: Option<String> =
                        row.try_get("identity").map_err(UpgradeError::storage)?;
                    let case: Option<String> =
                        row.try_get("case_details").map_err(UpgradeError::storage)?;
                    let (identity, case, changed) =
                        upgrade_record(identity.as_deref(), case.as_deref())?;
                    if !changed {
                        // Upgraded meanwhile by another process: roll back,
                        // no entry.
                        return Err(UpgradeError::Unchanged);
                    }
                    sqlx::query(
                        "UPDATE survivors SET identity = $1, case_details = $2 WHERE id = $3",
                    )
                    .bind(identity.map(|v| v.to_string()))
                    .bind(case.map(|v| v.to_string()))
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(UpgradeError::storage)?;
                    let mut event =
                        AuditEvent::new(AuditKind::RecordUpgraded, Decision::Permit, UPGRADE);
                    event.survivor = Some(gid);
                    Ok(((), event))
                })
            })
            .await;
        match written {
            Ok(()) => upgraded += 1,
            Err(UpgradeError::Unchanged) => {}
            Err(err) => return Err(anyhow::anyhow!(err)),
        }
    }
    Ok(upgraded)
}

/// A stored record's identity and case in the coded form, and whether
/// either changed.
fn upgrade_record(
    identity: Option<&str>,
    case: Option<&str>,
) -> Result<(Option<Value>, Option<Value>, bool), UpgradeError> {
    // A sealed record was written by a build that stores the coded form
    // (encryption at rest came after it): nothing to do.
    if identity.is_some_and(crate::vault::is_sealed) || case.is_some_and(crate::vault::is_sealed) {
        return Ok((None, None, false));
    }
    let identity = identity.map(upgrade_identity).transpose()?;
    let case = case.map(upgrade_case).transpose()?;
    let changed =
        identity.as_ref().is_some_and(|(_, c)| *c) || case.as_ref().is_some_and(|(_, c)| *c);
    Ok((identity.map(|(v, _)| v), case.map(|(v, _)| v), changed))
}

/// Why a record's upgrade wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The record is already in the coded form.
    #[error("the record is already upgraded")]
    Unchanged,
    /// A stored category is not the JSON object it should be.
    #[error("a stored {0} is not a JSON object")]
    Malformed(&'static str),
    #[error("storage: {0}")]
    Storage(#[source] anyhow::Error),
    #[error(transparent)]
    Audit(#[from] exchange_audit::AuditError),
}

impl UpgradeError {
    fn storage(err: impl Into<anyhow::Error>) -> Self {
        Self::Storage(err.into())
    }
}

impl exchange_audit::ChangeError for UpgradeError {
    fn is_audit_unavailable(&self) -> bool {
        matches!(self, Self::Audit(_) | Self::Storage(_))
    }
}

fn object(text: &str, what: &'static str) -> Result<Map<String, Value>, UpgradeError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(UpgradeError::Malformed(what)),
    }
}

fn keep_unmapped(map: &mut Map<String, Value>, field: &str, text: &str) {
    let list = map
        .entry("unmapped")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        let item = json!({ "field": field, "text": text });
        if !items.contains(&item) {
            items.push(item);
        }
    }
}

/// A stored identity in the coded form, and whether it changed.
pub fn upgrade_identity(text: &str) -> Result<(Value, bool), UpgradeError> {
    let before = object(text, "identity")?;
    let mut map = before.clone();
    if let Some(gender) = map.remove("gender")
        && let Some(text) = gender.as_str().filter(|t| !t.trim().is_empty())
    {
        let coded = legacy::gender_identity(text).unwrap_or_else(|| {
            keep_unmapped(&mut map, "identity.gender", text);
            GenderIdentity::Unknown
        });
        map.entry("gender_identity")
            .or_insert_with(|| json!(coded.as_str()));
    }
    if let Some(text) = map
        .get("nationality")
        .and_then(Value::as_str)
        .map(str::to_owned)
        && CountryCode::nationality("identity.nationality", &text).is_err()
    {
        let coded = legacy::country(&text).unwrap_or_else(|| {
            keep_unmapped(&mut map, "identity.nationality", &text);
            CountryCode::unknown()
        });
        map.insert("nationality".into(), json!(coded.as_str()));
    }
    if let Some(Value::Array(languages)) = map.get("languages").cloned() {
        let mut coded = Vec::new();
        for language in languages {
            let Some(text) = language.as_str() else {
                continue;
            };
            match LanguageTag::parse("identity.languages", text)
                .ok()
                .or_else(|| legacy::language(text))
            {
                Some(tag) => coded.push(json!(tag.as_str())),
                None => keep_unmapped(&mut map, "identity.languages", text),
            }
        }
        map.insert("languages".into(), Value::Array(coded));
    }
    if !map.contains_key("age_band")
        && let Some(birth) = map
            .get("date_of_birth")
            .and_then(Value::as_str)
            .and_then(|d| {
                time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
            })
    {
        let band = AgeBand::on(birth, time::OffsetDateTime::now_utc().date());
        map.insert("age_band".into(), json!(band.as_str()));
    }
    let changed = map != before;
    Ok((Value::Object(map), changed))
}

/// A stored case in the coded form, and whether it changed.
pub fn upgrade_case(text: &str) -> Result<(Value, bool), UpgradeError> {
    let before = object(text, "case")?;
    let mut map = before.clone();
    if let Some(Value::Array(types)) = map.get("exploitation_types").cloned() {
        let mut coded: Vec<Value> = Vec::new();
        for kind in types {
            let Some(text) = kind.as_str() else { continue };
            match text
                .parse::<ExploitationType>()
                .ok()
                .or_else(|| legacy::exploitation_type(text))
            {
                Some(kind) => {
                    let kind = json!(kind.as_str());
                    if !coded.contains(&kind) {
                        coded.push(kind);
                    }
                }
                None => keep_unmapped(&mut map, "case.exploitationTypes", text),
            }
        }
        map.insert("exploitation_types".into(), Value::Array(coded));
    }
    let changed = map != before;
    Ok((Value::Object(map), changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_maps_what_maps_and_keeps_the_rest_as_unmapped_text() {
        let (upgraded, changed) = upgrade_identity(
            r#"{"given_name":"Ana","date_of_birth":"1990-05-01","nationality":"Narnian",
                "gender":"female","languages":["EN","Romanian","pt-br"]}"#,
        )
        .unwrap();
        assert!(changed);
        assert_eq!(upgraded["gender_identity"], "WOMAN");
        assert!(
            upgraded.get("sex").is_none(),
            "sex is never inferred from gender"
        );
        assert!(upgraded.get("gender").is_none());
        assert_eq!(upgraded["nationality"], "UNKNOWN");
        assert_eq!(upgraded["languages"], json!(["en", "pt-BR"]));
        assert_eq!(upgraded["age_band"], "AGE_35_44");
        assert_eq!(
            upgraded["unmapped"],
            json!([
                { "field": "identity.nationality", "text": "Narnian" },
                { "field": "identity.languages", "text": "Romanian" },
            ])
        );
        let again = upgrade_identity(&upgraded.to_string()).unwrap();
        assert_eq!(
            again,
            (upgraded, false),
            "an upgraded identity stays as it is"
        );
    }

    #[test]
    fn a_case_maps_its_exploitation_types_and_keeps_the_rest() {
        let (upgraded, changed) = upgrade_case(
            r#"{"exploitation_types":["labour","Forced Labor","online scam compound"],
                "risk_level":"HIGH","needs":[]}"#,
        )
        .unwrap();
        assert!(changed);
        assert_eq!(upgraded["exploitation_types"], json!(["FORCED_LABOUR"]));
        assert_eq!(
            upgraded["unmapped"],
            json!([{ "field": "case.exploitationTypes", "text": "online scam compound" }])
        );
        assert!(!upgrade_case(&upgraded.to_string()).unwrap().1);
    }

    #[test]
    fn a_stored_category_that_is_not_an_object_is_an_error() {
        assert!(matches!(
            upgrade_identity("[1]"),
            Err(UpgradeError::Malformed("identity"))
        ));
    }
}

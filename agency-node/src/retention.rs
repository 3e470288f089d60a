//! Retention periods, legal holds and erasure, at the owner node.
//!
//! The rules are read from `retention.toml` in the policy directory (the
//! shipped `policies/baseline/retention.toml` when there is none): for each
//! part of a record ([`Part`]) and kind of owning agency, how many days
//! after registration or after the last activity it is kept. The expiry job
//! ([`run`], every `retention.check_every_minutes`) erases each part whose
//! period has ended, unless a legal hold is in force; an erasure asked for
//! ([`erase`]) goes the same way.
//!
//! Erasing is crypto-shredding: the erasure is recorded (`erasures`: the
//! part, when, which rule; no contents) with its `RECORD_ERASED` audit
//! entry in one transaction, then the part's data key is destroyed in the
//! key store ([`crate::vault`]), which makes every copy of that part
//! unreadable, backups included. Should the key store fail between the two,
//! the next run destroys the key (the erasure row says it is due). Nothing
//! is deleted from the audit log, which still verifies; an erased part
//! reads as erased (`ERASED`), with when and under which rule.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use exchange_schema::{AgencyKind, AuditEvent, AuditKind, Decision, GlobalId};
use serde::Deserialize;
use sqlx::{AnyConnection, Row as _};
use time::{Duration, OffsetDateTime};

use crate::error::NodeError;
use crate::state::NodeState;
use crate::store::{from_ms, to_ms};
use crate::vault::{Field, Part};

/// The federation's default rules.
pub const BASELINE_RULES: &str = include_str!("../../policies/baseline/retention.toml");

/// The rules file's name in a policy directory.
pub const RULES_FILE: &str = "retention.toml";

/// The rule name an erasure asked for is recorded under.
pub const REQUEST_RULE: &str = "REQUEST";

/// From when a period runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Anchor {
    /// The record was created.
    Registered,
    /// The latest change to the record, its notes, services, referrals or
    /// care plan.
    LastActivity,
}

/// One retention rule, as the data-protection officer writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub name: String,
    /// `IDENTITY`, `CONTACT`, `CASE`, `HEALTH`, `LEGAL` or `RECORD`.
    pub part: String,
    pub after: Anchor,
    pub days: u32,
    #[serde(default)]
    pub agency_kinds: Vec<AgencyKind>,
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RetentionRule>,
}

/// A rules file that cannot be used: the node does not start with it.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// The rules in force, checked.
#[derive(Debug, Clone)]
pub struct RetentionRules {
    rules: Vec<(RetentionRule, Part)>,
}

impl RetentionRules {
    /// Parses and checks a rules file (`file` names it in errors): names
    /// unique and well formed, parts known, periods of at least a day.
    pub fn parse(file: &str, text: &str) -> Result<Self, RulesError> {
        let invalid = |message: String| RulesError::Invalid {
            file: file.to_owned(),
            message,
        };
        let parsed: RulesFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut names = HashSet::new();
        let mut rules = Vec::new();
        for rule in parsed.rule {
            let well_formed = !rule.name.is_empty()
                && rule.name.len() <= 64
                && rule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !well_formed {
                return Err(invalid(format!(
                    "rule name {:?} must be 1 to 64 of a-z, 0-9 and -",
                    rule.name
                )));
            }
            if !names.insert(rule.name.clone()) {
                return Err(invalid(format!("two rules are named {:?}", rule.name)));
            }
            let part = Part::parse(&rule.part).ok_or_else(|| {
                invalid(format!(
                    "rule {:?}: part {:?} is not IDENTITY, CONTACT, CASE, HEALTH, LEGAL or RECORD",
                    rule.name, rule.part
                ))
            })?;
            if rule.days == 0 {
                return Err(invalid(format!(
                    "rule {:?}: days must be at least 1",
                    rule.name
                )));
            }
            rules.push((rule, part));
        }
        Ok(Self { rules })
    }

    /// The rules of a policy directory's `retention.toml`, or the baseline.
    pub fn load(policies: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(path) = policies.map(|dir| dir.join(RULES_FILE))
            && path.exists()
        {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            return Ok(Self::parse(&path.display().to_string(), &text)?);
        }
        Ok(Self::parse("baseline retention.toml", BASELINE_RULES)?)
    }

    /// The rules an agency of `kind` applies.
    pub fn for_kind(&self, kind: AgencyKind) -> Vec<(&RetentionRule, Part)> {
        self.rules
            .iter()
            .filter(|(rule, _)| rule.agency_kinds.is_empty() || rule.agency_kinds.contains(&kind))
            .map(|(rule, part)| (rule, *part))
            .collect()
    }

    /// When each part of a record with these anchors is due for erasure
    /// at an agency of `kind`, and by which rule (the shortest period
    /// wins; a RECORD rule covers every part).
    pub fn due_dates(
        &self,
        kind: AgencyKind,
        anchors: &Anchors,
    ) -> BTreeMap<Part, (OffsetDateTime, String)> {
        let mut due: BTreeMap<Part, (OffsetDateTime, String)> = BTreeMap::new();
        for (rule, part) in self.for_kind(kind) {
            let from = match rule.after {
                Anchor::Registered => anchors.registered,
                Anchor::LastActivity => anchors.last_activity,
            };
            let at = from + Duration::days(i64::from(rule.days));
            let covered: Vec<Part> = if part == Part::Record {
                Part::ALL.to_vec()
            } else {
                vec![part]
            };
            for covered in covered {
                let sooner = due.get(&covered).is_none_or(|(old, _)| at < *old);
                if sooner {
                    due.insert(covered, (at, rule.name.clone()));
                }
            }
        }
        due
    }
}

/// The times a record's periods run from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchors {
    pub registered: OffsetDateTime,
    pub last_activity: OffsetDateTime,
}

/// Reads the anchors of a page of survivors after `after` (by ID).
async fn anchors_page(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> anyhow::Result<Vec<(String, Anchors)>> {
    let rows = sqlx::query(
        "SELECT s.id, s.created_at, s.updated_at, \
           (SELECT MAX(created_at) FROM case_notes WHERE survivor_id = s.id) AS notes, \
           (SELECT MAX(updated_at) FROM services WHERE survivor_id = s.id) AS services, \
           (SELECT MAX(updated_at) FROM referrals WHERE survivor_id = s.id) AS referrals, \
           (SELECT MAX(created_at) FROM care_plans WHERE survivor_id = s.id) AS plans \
         FROM survivors s WHERE s.id > $1 ORDER BY s.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut last: i64 = row.try_get("updated_at")?;
        for column in ["notes", "services", "referrals", "plans"] {
            if let Some(at) = row.try_get::<Option<i64>, _>(column)? {
                last = last.max(at);
            }
        }
        out.push((
            row.try_get("id")?,
            Anchors {
                registered: from_ms(row.try_get("created_at")?),
                last_activity: from_ms(last),
            },
        ));
    }
    Ok(out)
}

/// One part of a record's retention, as its survivor and caseworkers see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PartRetention {
    pub part: &'static str,
    /// When it is due for erasure, by which rule and why (none when no
    /// rule covers it).
    pub due_at: Option<OffsetDateTime>,
    pub rule: Option<String>,
    pub why: Option<String>,
    /// When it was erased, and under which rule.
    pub erased_at: Option<OffsetDateTime>,
    pub erasure_rule: Option<String>,
    /// Whether a legal hold keeps it past its date.
    pub held: bool,
}

/// The retention of each part of one survivor's record.
pub async fn schedule(
    state: &NodeState,
    survivor_id: &str,
) -> Result<Vec<PartRetention>, NodeError> {
    let mut conn = crate::store::acquire(&state.db).await?;
    // The page after the ID just before this one: this survivor's anchors.
    let before = sqlx::query("SELECT MAX(id) AS id FROM survivors WHERE id < $1")
        .bind(survivor_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get::<Option<String>, _>("id")?
        .unwrap_or_default();
    let anchors = anchors_page(&mut conn, &before, 1)
        .await?
        .into_iter()
        .find(|(id, _)| id == survivor_id)
        .map(|(_, anchors)| anchors)
        .ok_or(NodeError::NotFound("survivor"))?;
    let erased = erasures_of(&mut conn, survivor_id).await?;
    let held = hold_in_force(&mut conn, &state.vault, survivor_id)
        .await?
        .is_some();
    let due = state.retention.due_dates(state.agency_kind, &anchors);
    let why = |name: &str| {
        state
            .retention
            .rules
            .iter()
            .find(|(rule, _)| rule.name == name)
            .and_then(|(rule, _)| rule.why.clone())
    };
    Ok(Part::ALL
        .into_iter()
        .map(|part| {
            let (due_at, rule) = due
                .get(&part)
                .map_or((None, None), |(at, rule)| (Some(*at), Some(rule.clone())));
            let erasure = erased.get(&part);
            PartRetention {
                part: part.as_str(),
                why: rule.as_deref().and_then(why),
                due_at,
                rule,
                erased_at: erasure.map(|(at, _)| *at),
                erasure_rule: erasure.map(|(_, rule)| rule.clone()),
                held,
            }
        })
        .collect())
}

/// A legal hold as stored (its reason opened).
#[derive(Debug, Clone, PartialEq)]
pub struct LegalHold {
    pub id: String,
    pub survivor_id: String,
    pub reason: String,
    pub placed_at: OffsetDateTime,
    pub placed_by: String,
    pub lifted_at: Option<OffsetDateTime>,
    pub lifted_by: Option<String>,
}

/// The hold in force on a survivor's record, if any.
pub async fn hold_in_force(
    conn: &mut AnyConnection,
    vault: &crate::vault::Vault,
    survivor_id: &str,
) -> anyhow::Result<Option<LegalHold>> {
    let row = sqlx::query(
        "SELECT id, survivor_id, reason, placed_at, placed_by, lifted_at, lifted_by \
         FROM legal_holds WHERE survivor_id = $1 AND lifted_at IS NULL \
         ORDER BY placed_at, id LIMIT 1",
    )
    .bind(survivor_id)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key = vault.key(survivor_id).await?;
    Ok(Some(LegalHold {
        id: row.try_get("id")?,
        survivor_id: row.try_get("survivor_id")?,
        reason: key.open(Field::LegalHoldReason, &row.try_get::<String, _>("reason")?)?,
        placed_at: from_ms(row.try_get("placed_at")?),
        placed_by: row.try_get("placed_by")?,
        lifted_at: row.try_get::<Option<i64>, _>("lifted_at")?.map(from_ms),
        lifted_by: row.try_get("lifted_by")?,
    }))
}

/// The longest reason a hold may give.
pub const MOST_REASON_CHARS: usize = 2000;

/// Places a legal hold on a survivor's record: from now on nothing of it
/// is erased until the hold is lifted. The reason is required.
pub async fn place_hold(
    state: &NodeState,
    event: AuditEvent,
    survivor_id: &str,
    reason: &str,
    by: &str,
) -> Result<LegalHold, NodeError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(NodeError::bad_input(
            "a legal hold needs its reason: say which proceedings or duty require the record",
        ));
    }
    if reason.chars().count() > MOST_REASON_CHARS {
        return Err(NodeError::bad_input(format!(
            "a legal hold's reason is at most {MOST_REASON_CHARS} characters"
        )));
    }
    let hold = LegalHold {
        id: crate::store::new_local_id(),
        survivor_id: survivor_id.to_owned(),
        reason: reason.to_owned(),
        placed_at: exchange_schema::audit::now_millis(),
        placed_by: by.to_owned(),
        lifted_at: None,
        lifted_by: None,
    };
    let stored = hold.clone();
    let vault = state.vault.clone();
    let mut event = event;
    event.reason = "PLACED".into();
    event.subject = Some(format!("legal-hold:{}", hold.id));
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &stored.survivor_id).await?;
                let key = vault.key(&stored.survivor_id).await?;
                sqlx::query(
                    "INSERT INTO legal_holds (id, survivor_id, reason, placed_at, placed_by) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&stored.id)
                .bind(&stored.survivor_id)
                .bind(key.seal(Field::LegalHoldReason, &stored.reason)?)
                .bind(to_ms(stored.placed_at))
                .bind(&stored.placed_by)
                .execute(&mut *conn)
                .await?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(hold)
}

/// Lifts a hold in force on the survivor's record; `NOT_FOUND` when there
/// is none.
pub async fn lift_hold(
    state: &NodeState,
    event: AuditEvent,
    survivor_id: &str,
    by: &str,
) -> Result<LegalHold, NodeError> {
    let mut conn = crate::store::acquire(&state.db).await?;
    let Some(mut hold) = hold_in_force(&mut conn, &state.vault, survivor_id).await? else {
        return Err(NodeError::NotFound("legal hold"));
    };
    drop(conn);
    let now = exchange_schema::audit::now_millis();
    let (id, lifted_by) = (hold.id.clone(), by.to_owned());
    let mut event = event;
    event.reason = "LIFTED".into();
    event.subject = Some(format!("legal-hold:{}", hold.id));
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE legal_holds SET lifted_at = $2, lifted_by = $3 \
                     WHERE id = $1 AND lifted_at IS NULL",
                )
                .bind(&id)
                .bind(to_ms(now))
                .bind(&lifted_by)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(NodeError::Conflict("the hold was lifted meanwhile".into()));
                }
                Ok(((), event))
            })
        })
        .await?;
    hold.lifted_at = Some(now);
    hold.lifted_by = Some(by.to_owned());
    Ok(hold)
}

/// What a survivor's erasures say: for each erased part, when and by which
/// rule.
pub async fn erasures_of(
    conn: &mut AnyConnection,
    survivor_id: &str,
) -> anyhow::Result<BTreeMap<Part, (OffsetDateTime, String)>> {
    let rows = sqlx::query("SELECT part, erased_at, rule FROM erasures WHERE survivor_id = $1")
        .bind(survivor_id)
        .fetch_all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        if let Some(part) = Part::parse(&row.try_get::<String, _>("part")?) {
            out.insert(
                part,
                (from_ms(row.try_get("erased_at")?), row.try_get("rule")?),
            );
        }
    }
    Ok(out)
}

/// Erases exactly these parts of a survivor's record (the record as a
/// whole is every part: [`Part::ALL`]) under `rule` at `at`: records the
/// erasure with its audit entry, then destroys the parts' data keys. A
/// legal hold in force refuses it (`CONFLICT`, naming the hold's reason).
/// Returns the parts newly erased (a part erased before is left as it was).
pub async fn erase(
    state: &NodeState,
    event: AuditEvent,
    survivor_id: &str,
    parts: &[Part],
    rule: &str,
    at: OffsetDateTime,
) -> Result<Vec<Part>, NodeError> {
    let mut parts = parts.to_vec();
    parts.sort();
    parts.dedup();
    if parts.is_empty() {
        return Err(NodeError::bad_input("name at least one part to erase"));
    }
    let mut conn = crate::store::acquire(&state.db).await?;
    if let Some(hold) = hold_in_force(&mut conn, &state.vault, survivor_id).await? {
        return Err(NodeError::Conflict(format!(
            "the record is under a legal hold since {}: {}",
            hold.placed_at.date(),
            hold.reason
        )));
    }
    let already = erasures_of(&mut conn, survivor_id).await?;
    drop(conn);
    let new: Vec<Part> = parts
        .iter()
        .copied()
        .filter(|p| !already.contains_key(p))
        .collect();
    if !new.is_empty() {
        let (local, rule_name, written) = (survivor_id.to_owned(), rule.to_owned(), new.clone());
        let owner = state.agency.clone();
        let mut event = event;
        event.reason = rule.to_owned();
        event.explanation = Some(format!(
            "erased: {}",
            new.iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        state
            .audit
            .record::<_, NodeError, _>(move |conn| {
                Box::pin(async move {
                    crate::changes::require_survivor(conn, &local).await?;
                    if written.contains(&Part::Record) {
                        notify_partners(conn, &owner, &local, at).await?;
                    }
                    for part in &written {
                        sqlx::query(
                            "INSERT INTO erasures (survivor_id, part, erased_at, rule) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (survivor_id, part) DO NOTHING",
                        )
                        .bind(&local)
                        .bind(part.as_str())
                        .bind(to_ms(at))
                        .bind(&rule_name)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(((), event))
                })
            })
            .await?;
    }
    // The keys go last: should this fail, the next run finishes the job.
    state.vault.destroy(survivor_id, &parts, at).await?;
    Ok(new)
}

/// Inside a whole record's erasure: its pending referrals are withdrawn
/// (with a history step, no note), and every other agency holding a
/// referral of it is told (`RECORD_ERASED`, the survivor's global ID only),
/// through the gateway's subscriptions and the agencies' signed webhooks,
/// each delivery audited where it happens.
async fn notify_partners(
    conn: &mut AnyConnection,
    owner: &exchange_schema::AgencyId,
    survivor_id: &str,
    at: OffsetDateTime,
) -> Result<(), NodeError> {
    let rows = sqlx::query(
        "SELECT id, from_agency, to_agency, status FROM referrals WHERE survivor_id = $1",
    )
    .bind(survivor_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut partners = std::collections::BTreeSet::new();
    for row in &rows {
        for column in ["from_agency", "to_agency"] {
            let agency: String = row.try_get(column)?;
            if agency != owner.as_str() {
                partners.insert(agency);
            }
        }
        let status: String = row.try_get("status")?;
        if status == exchange_schema::ReferralStatus::Pending.as_str() {
            let id: String = row.try_get("id")?;
            let withdrawn = exchange_schema::ReferralStatus::Withdrawn.as_str();
            sqlx::query("UPDATE referrals SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(&id)
                .bind(withdrawn)
                .bind(to_ms(at))
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO referral_events (referral_id, position, status, at, by_agency, \
                 by_user, note) SELECT $1, COALESCE(MAX(position), 0) + 1, $2, $3, $4, $5, NULL \
                 FROM referral_events WHERE referral_id = $1",
            )
            .bind(&id)
            .bind(withdrawn)
            .bind(to_ms(at))
            .bind(owner.as_str())
            .bind("retention")
            .execute(&mut *conn)
            .await?;
        }
    }
    let gid = GlobalId::new(owner.clone(), survivor_id.to_owned())?;
    for partner in partners {
        let partner = exchange_schema::AgencyId::parse(&partner)?;
        crate::store::notifications::queue(
            conn,
            &partner,
            exchange_schema::NotificationKind::RecordErased,
            &gid.to_string(),
            Some(&gid),
        )
        .await
        .map_err(NodeError::internal)?;
    }
    Ok(())
}

/// What one run of the expiry job did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionRun {
    /// Survivor, parts erased, rule.
    pub erased: Vec<(String, Vec<Part>, String)>,
    /// Survivors with parts due that a legal hold kept.
    pub held: Vec<String>,
}

/// The expiry job: erases every part whose period ended by `now` (the
/// clock is the caller's, so tests inject one), except under a legal hold;
/// and destroys any key an earlier erasure recorded but could not destroy.
pub async fn run(
    state: &NodeState,
    rules: &RetentionRules,
    now: OffsetDateTime,
) -> Result<RetentionRun, NodeError> {
    let mut report = RetentionRun::default();
    let mut after = String::new();
    loop {
        let mut conn = crate::store::acquire(&state.db).await?;
        let page = anchors_page(&mut conn, &after, 500).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.clone();
        let mut due_now: Vec<(String, BTreeMap<String, Vec<Part>>)> = Vec::new();
        for (survivor, anchors) in &page {
            let erased = erasures_of(&mut conn, survivor).await?;
            let mut by_rule: BTreeMap<String, Vec<Part>> = BTreeMap::new();
            for (part, (at, rule)) in rules.due_dates(state.agency_kind, anchors) {
                if at <= now && !erased.contains_key(&part) {
                    by_rule.entry(rule).or_default().push(part);
                }
            }
            if !by_rule.is_empty() {
                due_now.push((survivor.clone(), by_rule));
            }
        }
        drop(conn);
        for (survivor, by_rule) in due_now {
            let gid = GlobalId::new(state.agency.clone(), survivor.clone())?;
            for (rule, parts) in by_rule {
                let mut event = AuditEvent::new(AuditKind::RecordErased, Decision::Permit, &rule);
                event.survivor = Some(gid.clone());
                match erase(state, event, &survivor, &parts, &rule, now).await {
                    Ok(new) if !new.is_empty() => report.erased.push((survivor.clone(), new, rule)),
                    Ok(_) => {}
                    Err(NodeError::Conflict(_)) => {
                        if !report.held.contains(&survivor) {
                            report.held.push(survivor.clone());
                        }
                    }
                    Err(err) => return Err(err),
                }
            }
        }
    }
    // Erasures recorded whose key destruction did not happen (the key
    // store failed after the entry committed).
    let mut conn = crate::store::acquire(&state.db).await?;
    let recorded = sqlx::query("SELECT survivor_id, part, erased_at FROM erasures")
        .fetch_all(&mut *conn)
        .await?;
    drop(conn);
    for row in recorded {
        let survivor: String = row.try_get("survivor_id")?;
        if let Some(part) = Part::parse(&row.try_get::<String, _>("part")?) {
            state
                .vault
                .destroy(&survivor, &[part], from_ms(row.try_get("erased_at")?))
                .await?;
        }
    }
    Ok(report)
}

/// Runs the expiry job every `every` until the database closes.
pub fn spawn(state: std::sync::Arc<NodeState>, rules: RetentionRules, every: std::time::Duration) {
    tokio::spawn(async move {
        // The first run comes one period after the start, not at once.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if state.db.pool().is_closed() {
                break;
            }
            match run(&state, &rules, OffsetDateTime::now_utc()).await {
                Ok(report) if !report.erased.is_empty() || !report.held.is_empty() => {
                    tracing::info!(
                        erased = report.erased.len(),
                        held = report.held.len(),
                        "retention: parts of records erased"
                    );
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = ?err, "retention run failed; retried next time")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(days)
    }

    #[test]
    fn the_baseline_rules_parse() {
        let rules = RetentionRules::parse("baseline", BASELINE_RULES).unwrap();
        assert!(!rules.for_kind(AgencyKind::Shelter).is_empty());
        assert!(
            rules.for_kind(AgencyKind::LawEnforcement).len()
                > rules.for_kind(AgencyKind::Shelter).len()
        );
    }

    #[test]
    fn the_shortest_period_wins_and_a_record_rule_covers_every_part() {
        let rules = RetentionRules::parse(
            "t",
            r#"
            [[rule]]
            name = "contact"
            part = "CONTACT"
            after = "LAST_ACTIVITY"
            days = 10
            [[rule]]
            name = "all"
            part = "RECORD"
            after = "REGISTERED"
            days = 100
            [[rule]]
            name = "police"
            part = "RECORD"
            after = "REGISTERED"
            days = 5
            agency_kinds = ["LAW_ENFORCEMENT"]
            "#,
        )
        .unwrap();
        let anchors = Anchors {
            registered: at(0),
            last_activity: at(50),
        };
        let due = rules.due_dates(AgencyKind::Shelter, &anchors);
        assert_eq!(due[&Part::Contact], (at(60), "contact".into()));
        assert_eq!(due[&Part::Health], (at(100), "all".into()));
        assert_eq!(due.len(), Part::ALL.len());
        let police = rules.due_dates(AgencyKind::LawEnforcement, &anchors);
        assert!(
            police
                .values()
                .all(|(when, rule)| *when == at(5) && rule == "police")
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (text, expected) in [
            (
                "[[rule]]\nname = \"x\"\npart = \"EYES\"\nafter = \"REGISTERED\"\ndays = 1",
                "part",
            ),
            (
                "[[rule]]\nname = \"x\"\npart = \"CASE\"\nafter = \"REGISTERED\"\ndays = 0",
                "days",
            ),
            (
                "[[rule]]\nname = \"X Y\"\npart = \"CASE\"\nafter = \"REGISTERED\"\ndays = 1",
                "name",
            ),
            (
                "[[rule]]\nname = \"x\"\npart = \"CASE\"\nafter = \"SOON\"\ndays = 1",
                "SOON",
            ),
            (
                "[[rule]]\nname = \"x\"\npart = \"CASE\"\nafter = \"REGISTERED\"\ndays = 1\nextra = 1",
                "extra",
            ),
            (
                "[[rule]]\nname = \"x\"\npart = \"CASE\"\nafter = \"REGISTERED\"\ndays = 1\n\
                 [[rule]]\nname = \"x\"\npart = \"LEGAL\"\nafter = \"REGISTERED\"\ndays = 1",
                "two rules",
            ),
        ] {
            let err = RetentionRules::parse("f", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}

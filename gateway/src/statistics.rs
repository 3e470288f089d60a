//! The federation's statistics releases: the gateway asks every node for
//! its counts of one quarter (`statisticsCounts`, with the statistician's
//! token and the `STATISTICS` purpose, so each node decides and audits for
//! itself), sums them, protects the sums ([`exchange_schema::statistics::protect`]:
//! small-cell and secondary suppression, rounding) and keeps the release.
//!
//! * `POST /statistics/releases/{period}`: produce the release of an ended
//!   quarter (statisticians). A quarter is released **once**: asking again
//!   is a `CONFLICT`, and the stored release is what everyone reads. Since
//!   quarters do not overlap, no two releases count the same survivor, and
//!   no one can recover a withheld cell by differencing releases.
//! * `GET /statistics/releases`: the released quarters (public).
//! * `GET /statistics/releases/{period}.json` and `.csv`: a release with
//!   its metadata (period, k, rounding), public, no sign-in.
//!
//! Every production, and every refusal of one, is audited in the gateway's
//! log (`STATISTICS_COUNTED`, the period as reason).

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_schema::statistics::{self, CountTable, Period, Protection, ReleasedTable};
use exchange_schema::{
    AgencyId, AuditEvent, AuditKind, Decision, ErrorCode, PURPOSE_HEADER, Purpose, Role,
};
use serde::{Deserialize, Serialize};

use crate::http::HttpState;
use crate::nodes::Forwarded;

/// The release directory's name in the gateway's data directory.
pub const RELEASES_DIR: &str = "statistics";

/// A release as kept and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Release {
    pub period: String,
    /// When it was produced (RFC 3339).
    pub produced_at: String,
    /// How it was protected.
    pub protection: Protection,
    /// The agencies whose nodes counted.
    pub agencies: Vec<String>,
    pub tables: Vec<ReleasedTable>,
}

/// Where releases are kept: one JSON file per quarter, written once.
#[derive(Debug)]
pub struct ReleaseStore {
    dir: PathBuf,
    protection: Protection,
    /// One production at a time (the second finds the first's file).
    producing: tokio::sync::Mutex<()>,
    /// The deployment's region map, for the dashboard.
    regions: Option<crate::regions::RegionMap>,
}

impl ReleaseStore {
    pub fn open(data_dir: &Path, protection: Protection) -> anyhow::Result<Self> {
        let dir = data_dir.join(RELEASES_DIR);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            protection,
            producing: tokio::sync::Mutex::new(()),
            regions: None,
        })
    }

    /// The store with the deployment's region map.
    pub fn with_regions(mut self, regions: Option<crate::regions::RegionMap>) -> Self {
        self.regions = regions;
        self
    }

    /// The deployment's region map, if it has one.
    pub fn regions(&self) -> Option<&crate::regions::RegionMap> {
        self.regions.as_ref()
    }

    fn file(&self, period: Period) -> PathBuf {
        self.dir.join(format!("{period}.json"))
    }

    /// The release of `period`, if produced.
    pub fn get(&self, period: Period) -> anyhow::Result<Option<Release>> {
        match std::fs::read(self.file(period)) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The released quarters, newest first.
    pub fn periods(&self) -> anyhow::Result<Vec<Period>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(period) = name
                .strip_suffix(".json")
                .and_then(|p| Period::parse(p).ok())
            {
                out.push(period);
            }
        }
        out.sort_by(|a, b| b.cmp(a));
        Ok(out)
    }

    fn draft(&self, period: Period) -> PathBuf {
        self.dir.join(format!(".{period}.json.tmp"))
    }

    /// Writes a release to a draft file, flushed to disk, not yet served.
    fn prepare(&self, period: Period, release: &Release) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(self.draft(period))?;
        file.write_all(&serde_json::to_vec_pretty(release)?)?;
        file.sync_all()?;
        Ok(())
    }

    /// Serves a prepared release: the draft renamed into place, so a reader
    /// sees all of it or none.
    fn publish(&self, period: Period) -> anyhow::Result<()> {
        std::fs::rename(self.draft(period), self.file(period))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Drops a prepared release that will not be served.
    fn discard(&self, period: Period) {
        let _ = std::fs::remove_file(self.draft(period));
    }
}

/// A refusal, with its stable code.
struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn response(&self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": { "code": self.code.as_str() } }]
        });
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        exchange_service::body::json_response(status, body.to_string())
    }
}

fn internal(err: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %err, "statistics release failed");
    Refusal::new(ErrorCode::Internal, "the release could not be produced")
}

#[derive(Deserialize)]
struct CountsAnswer {
    data: Option<CountsData>,
    errors: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountsData {
    statistics_counts: Vec<NodeCount>,
}

#[derive(Deserialize)]
struct NodeCount {
    table: String,
    cells: Vec<NodeCell>,
}

#[derive(Deserialize)]
struct NodeCell {
    key: Vec<String>,
    count: u64,
}

const COUNTS_QUERY: &str = "query($period: String!) { statisticsCounts(period: $period) { \
    table cells { key count } } }";

/// `POST /statistics/releases/{period}`.
pub async fn produce(
    State(state): State<HttpState>,
    UrlPath(period): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.gateway.jwks.verify_authorization(authorization).await {
        Ok(p) => Some(p),
        Err(err) => {
            let refusal = Refusal::new(
                ErrorCode::Unauthenticated,
                format!("authentication failed: {}", err.reason_code()),
            );
            return finish(&state, None, &period, Err(refusal)).await;
        }
    };
    let outcome = release(&state, principal.as_ref(), authorization, &period, &headers).await;
    finish(&state, principal.as_ref(), &period, outcome).await
}

async fn release(
    state: &HttpState,
    principal: Option<&exchange_trust::Principal>,
    authorization: Option<&str>,
    period: &str,
    headers: &HeaderMap,
) -> Result<Release, Refusal> {
    let principal = principal.ok_or_else(|| Refusal::new(ErrorCode::Unauthenticated, "sign in"))?;
    let Some(declared) = headers.get(PURPOSE_HEADER) else {
        return Err(Refusal::new(
            ErrorCode::PurposeRequired,
            "declare the STATISTICS purpose in the `x-exchange-purpose` header",
        ));
    };
    let purpose = declared
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<Purpose>().ok());
    if purpose != Some(Purpose::Statistics) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "a release is produced for the STATISTICS purpose only",
        ));
    }
    if !principal.roles.contains(&Role::Statistician) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "releases are produced by the federation's statisticians",
        ));
    }
    let period =
        Period::parse(period).map_err(|e| Refusal::new(ErrorCode::BadUserInput, e.to_string()))?;
    if period.end() > time::OffsetDateTime::now_utc() {
        return Err(Refusal::new(
            ErrorCode::BadUserInput,
            format!("{period} has not ended: a quarter is released once, after it ends"),
        ));
    }
    let store = &state.statistics;
    let _one_at_a_time = store.producing.lock().await;
    if store.get(period).map_err(internal)?.is_some() {
        return Err(Refusal::new(
            ErrorCode::Conflict,
            format!("{period} is released already; a release is never produced twice"),
        ));
    }
    let forwarded = Forwarded {
        authorization: authorization.unwrap_or_default().to_owned(),
        purpose: Some(Purpose::Statistics.as_str().to_owned()),
        justification: None,
        idempotency_key: None,
    };
    let agencies: Vec<AgencyId> = state.nodes.agencies().cloned().collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "query": COUNTS_QUERY,
        "variables": { "period": period.to_string() },
    }))
    .map_err(internal)?;
    let traceparent = crate::telemetry::TraceParent::generate().header();
    let calls = agencies.iter().map(|agency| {
        state
            .nodes
            .call(agency, body.clone(), &forwarded, &traceparent)
    });
    let answers = futures::future::join_all(calls).await;
    let mut sums: Vec<CountTable> = statistics::CATALOGUE
        .iter()
        .map(|t| CountTable::new(t.id))
        .collect();
    for (agency, answer) in agencies.iter().zip(answers) {
        // Every node must count: a sum without one would be published as
        // the federation's and be wrong.
        let answer = answer.map_err(|err| {
            Refusal::new(
                ErrorCode::NodeUnavailable,
                format!("{agency}'s node did not answer ({err}); nothing was released"),
            )
        })?;
        let parsed: CountsAnswer = serde_json_bytes::from_value(answer.body).map_err(|_| {
            Refusal::new(
                ErrorCode::NodeUnavailable,
                format!("{agency}'s node answered something else; nothing was released"),
            )
        })?;
        let Some(data) = parsed.data.filter(|_| parsed.errors.is_none()) else {
            let code = parsed
                .errors
                .as_ref()
                .and_then(|e| e.first())
                .and_then(|e| e["extensions"]["code"].as_str())
                .unwrap_or("INTERNAL_SERVER_ERROR")
                .to_owned();
            return Err(Refusal::new(
                ErrorCode::parse(&code).unwrap_or(ErrorCode::NodeUnavailable),
                format!("{agency}'s node refused to count ({code}); nothing was released"),
            ));
        };
        for table in data.statistics_counts {
            let (Some(spec), Some(sum)) = (
                statistics::table(&table.table),
                sums.iter_mut().find(|s| s.table == table.table),
            ) else {
                continue;
            };
            let mut counted = CountTable::new(&table.table);
            for cell in table.cells {
                // Only values of the table's dimensions are published: a
                // node answering anything else releases nothing.
                if !spec.accepts(&cell.key) {
                    return Err(Refusal::new(
                        ErrorCode::NodeUnavailable,
                        format!(
                            "{agency}'s node counted a value outside the catalogue; nothing was released"
                        ),
                    ));
                }
                counted.cells.insert(cell.key, cell.count);
            }
            sum.merge(&counted);
        }
    }
    let tables = statistics::CATALOGUE
        .iter()
        .zip(&sums)
        .map(|(spec, sum)| statistics::protect(spec, sum, store.protection).0)
        .collect();
    let release = Release {
        period: period.to_string(),
        produced_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(internal)?,
        protection: store.protection,
        agencies: agencies.iter().map(|a| a.to_string()).collect(),
        tables,
    };
    store.prepare(period, &release).map_err(internal)?;
    Ok(release)
}

/// Audits the outcome in the gateway's log, then answers.
async fn finish(
    state: &HttpState,
    principal: Option<&exchange_trust::Principal>,
    period: &str,
    outcome: Result<Release, Refusal>,
) -> Response {
    let mut event = match &outcome {
        Ok(_) => AuditEvent::new(
            AuditKind::StatisticsCounted,
            Decision::Permit,
            "RELEASE_PRODUCED",
        ),
        Err(refusal) => AuditEvent::new(
            AuditKind::Denial,
            Decision::Deny,
            format!("REJECTED_{}", refusal.code),
        ),
    };
    if let Some(p) = principal {
        event.actor_agency = Some(p.agency.clone());
        event.actor_user = Some(p.user.clone());
        event.actor_roles = p.roles.clone();
    }
    event.purpose = Some(Purpose::Statistics);
    event.subject = Some(format!(
        "statistics-release:{}",
        period.chars().take(20).collect::<String>()
    ));
    if let Err(refusal) = &outcome {
        event.explanation = Some(refusal.message.clone());
    }
    let prepared = outcome
        .as_ref()
        .ok()
        .and_then(|r| Period::parse(&r.period).ok());
    // The entry first: a release is served only once its entry is durable.
    if let Err(err) = state.gateway.audit.append(event).await {
        tracing::error!(error = ?err, "writing the gateway audit entry failed");
        if let Some(period) = prepared {
            state.statistics.discard(period);
        }
        return Refusal::new(ErrorCode::AuditUnavailable, "the audit log is unavailable")
            .response();
    }
    if let Some(period) = prepared
        && let Err(err) = state.statistics.publish(period)
    {
        state.statistics.discard(period);
        return internal(err).response();
    }
    match outcome {
        Ok(release) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&release).unwrap_or_default(),
        )
            .into_response(),
        Err(refusal) => refusal.response(),
    }
}

/// `GET /statistics/releases`: the released quarters, newest first.
pub async fn list(State(state): State<HttpState>) -> Response {
    match state.statistics.periods() {
        Ok(periods) => exchange_service::body::json_response(
            StatusCode::OK,
            serde_json::json!({
                "releases": periods.iter().map(|p| p.to_string()).collect::<Vec<_>>()
            })
            .to_string(),
        ),
        Err(err) => internal(err).response(),
    }
}

/// `GET /statistics/releases/{period}.json` or `.csv`.
pub async fn download(State(state): State<HttpState>, UrlPath(file): UrlPath<String>) -> Response {
    let (name, csv) = match (file.strip_suffix(".json"), file.strip_suffix(".csv")) {
        (Some(name), _) => (name, false),
        (_, Some(name)) => (name, true),
        _ => {
            return Refusal::new(ErrorCode::NotFound, "ask for <period>.json or <period>.csv")
                .response();
        }
    };
    let period = match Period::parse(name) {
        Ok(p) => p,
        Err(err) => return Refusal::new(ErrorCode::BadUserInput, err.to_string()).response(),
    };
    let release = match state.statistics.get(period) {
        Ok(Some(release)) => release,
        Ok(None) => {
            return Refusal::new(ErrorCode::NotFound, format!("{period} is not released"))
                .response();
        }
        Err(err) => return internal(err).response(),
    };
    let (content_type, body) = if csv {
        ("text/csv; charset=utf-8", release_csv(&release))
    } else {
        (
            "application/json",
            serde_json::to_string_pretty(&release).unwrap_or_default(),
        )
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"statistics-{file}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A release as CSV: one row per published number (cells, then totals),
/// an empty count where it is withheld; the metadata in every row so that
/// a row read alone still says how it was protected.
pub fn release_csv(release: &Release) -> String {
    let mut out = String::from(
        "period,k,rounding_base,table,measure,dimension_1,value_1,dimension_2,value_2,count\n",
    );
    let number = |p: &Option<u64>| p.map(|n| n.to_string()).unwrap_or_default();
    for table in &release.tables {
        let dim = |i: usize| {
            table
                .dimensions
                .get(i)
                .map(|d| d.as_str())
                .unwrap_or_default()
        };
        let mut row = |v1: &str, v2: &str, count: String| {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                release.period,
                release.protection.k,
                release.protection.rounding_base,
                table.table,
                table.measure.as_str(),
                dim(0),
                csv_field(v1),
                dim(1),
                csv_field(v2),
                count
            ));
        };
        let two = table.dimensions.len() == 2;
        for (r, row_value) in table.rows.iter().enumerate() {
            for (c, column) in table.columns.iter().enumerate() {
                row(
                    row_value,
                    if two { column } else { "" },
                    number(&table.cells[r][c]),
                );
            }
            if two {
                row(row_value, "TOTAL", number(&table.row_totals[r]));
            }
        }
        if two {
            for (c, column) in table.columns.iter().enumerate() {
                row("TOTAL", column, number(&table.column_totals[c]));
            }
        }
        row(
            "TOTAL",
            if two { "TOTAL" } else { "" },
            number(&table.total),
        );
    }
    out
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(period: &str) -> Release {
        Release {
            period: period.into(),
            produced_at: "2026-10-02T00:00:00Z".into(),
            protection: Protection::default(),
            agencies: vec!["shelter-north".into()],
            tables: Vec::new(),
        }
    }

    #[test]
    fn a_release_is_served_only_once_published_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReleaseStore::open(dir.path(), Protection::default()).unwrap();
        let q3 = Period::parse("2026-Q3").unwrap();
        store.prepare(q3, &release("2026-Q3")).unwrap();
        assert_eq!(store.get(q3).unwrap(), None, "a draft is not served");
        assert!(store.periods().unwrap().is_empty());
        store.discard(q3);
        store.prepare(q3, &release("2026-Q3")).unwrap();
        store.publish(q3).unwrap();
        assert_eq!(store.get(q3).unwrap(), Some(release("2026-Q3")));
        assert_eq!(store.periods().unwrap(), vec![q3]);
        // A file that does not parse is an error, never "not released".
        let q2 = Period::parse("2026-Q2").unwrap();
        std::fs::write(dir.path().join(RELEASES_DIR).join("2026-Q2.json"), b"{").unwrap();
        assert!(store.get(q2).is_err());
    }

    #[test]
    fn csv_fields_with_separators_are_quoted() {
        assert_eq!(csv_field("RO"), "RO");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}

//! What the gateway does for auditors beyond the `auditLog` field:
//!
//! * **Federated export** (`GET /audit/export?format=jsonl|csv&<filters>`):
//!   every node's `/audit/export` with the auditor's own token and the same
//!   filters, plus the gateway's own log, gathered into one file. JSON Lines
//!   is a bundle ([`exchange_audit::export::bundle_line`]) that
//!   `agency-node audit verify --export FILE` checks log by log, offline;
//!   CSV has one header row and a `log_id` column. Each node decides for
//!   itself whether the caller may export its log; a node that refuses or
//!   fails fails the whole export, naming the agency, since a file silently
//!   missing a log would be misleading evidence.
//! * **Checkpoint collection**: every `collect_interval_secs`, and on demand
//!   (`POST /audit/checkpoints/collect`), the gateway fetches each node's new
//!   signed checkpoints (`GET /audit/checkpoints?after=<seq>`), checks each
//!   signature against the node's key and appends them to
//!   `collected-checkpoints.jsonl` in its data directory, the file
//!   `agency-node audit verify --checkpoints` reads. Auditors download it
//!   with `GET /audit/checkpoints`. A node that later rewrites its history
//!   and signs it again cannot change what was collected: verifying its log
//!   against this file reports the fork. The collector also notices a fork
//!   itself when the node's checkpoint at the last collected `seq` changes
//!   or disappears; the conflicting checkpoint is kept as evidence in
//!   `checkpoint-forks.jsonl` and nothing more is collected from that node.
//!
//! **Which key is a node's key.** The federation file lists each agency's
//! identity-provider keys, not its node's checkpoint key, and a node
//! generates that key on first start. So a node's key is pinned in
//! `[auditors.pinned_keys]` of the gateway's configuration when the operator
//! has it from the agency out of band, and otherwise on first collection
//! (trust on first use): the key of the first checkpoint collected from the
//! agency is kept in the collected file itself, and every later checkpoint
//! must be signed by it. A node presenting another key is refused
//! (`KEY_MISMATCH`) and nothing from it is stored.
//!
//! Every request to these endpoints needs a token with the AUDITOR or
//! DATA_PROTECTION_OFFICER role and the AUDIT purpose, and is written to the
//! gateway's own audit log, refusals included.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_audit::export::{bundle_line, export_csv, export_jsonl};
use exchange_audit::query::{ExportFormat, ExportQuery};
use exchange_audit::verify::load_checkpoints;
use exchange_schema::audit::{Checkpoint, CheckpointError};
use exchange_schema::{
    AgencyId, AuditEvent, AuditKind, Decision, ErrorCode, JUSTIFICATION_HEADER, PURPOSE_HEADER,
    Purpose, Role,
};
use exchange_trust::Principal;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::app::AUDIT_LOG_ID;
use crate::config::AuditorsConfig;
use crate::error::NodeFailure;
use crate::http::HttpState;
use crate::nodes::{Forwarded, Nodes};
use crate::telemetry::TraceParent;

/// File name of the collected checkpoints in the gateway's data directory.
pub const COLLECTED_FILE: &str = "collected-checkpoints.jsonl";
/// File name of checkpoints that contradict collected ones (evidence).
pub const FORKS_FILE: &str = "checkpoint-forks.jsonl";

/// What is known of one node's log.
#[derive(Debug, Clone)]
struct Known {
    /// Hex of the key every checkpoint of this log must be signed with.
    key: String,
    last_seq: u64,
    last_head: String,
    /// A fork was seen: nothing more is collected from this node.
    forked: bool,
}

/// The gateway's store of collected checkpoints: an append-only JSON Lines
/// file, and what it says per log, rebuilt from the file at start-up.
pub struct CheckpointStore {
    path: PathBuf,
    forks_path: PathBuf,
    pinned: BTreeMap<String, String>,
    logs: Mutex<BTreeMap<String, Known>>,
}

/// Why the collected checkpoints could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: exchange_audit::verify::CheckpointFileError,
    },
    #[error(
        "{path}: the checkpoint of log {log_id} at seq {seq} does not verify against its pinned key: {reason}"
    )]
    Invalid {
        path: String,
        log_id: String,
        seq: u64,
        reason: String,
    },
}

/// What one collection round did at one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCollection {
    pub agency: String,
    /// `COLLECTED`, `UNCHANGED`, `FAILED`, `KEY_MISMATCH` or `FORK`.
    pub outcome: &'static str,
    /// Checkpoints appended to the store.
    pub collected: u64,
    /// The highest `seq` collected from this node so far.
    pub last_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

enum Step {
    Append(Vec<Checkpoint>),
    Refuse(&'static str, String),
    Fork(String, Vec<Checkpoint>),
}

impl CheckpointStore {
    /// Opens (or starts) the store in `data_dir`, checking every stored
    /// checkpoint against the pinned keys.
    pub fn open(data_dir: &Path, config: &AuditorsConfig) -> Result<Self, StoreError> {
        let path = data_dir.join(COLLECTED_FILE);
        let pinned: BTreeMap<String, String> = config
            .pinned_keys
            .iter()
            .map(|(agency, key)| (agency.clone(), key.trim().to_ascii_lowercase()))
            .collect();
        let stored = match std::fs::File::open(&path) {
            Ok(file) => load_checkpoints(std::io::BufReader::new(file)).map_err(|source| {
                StoreError::Read {
                    path: path.display().to_string(),
                    source,
                }
            })?,
            Err(_) => Vec::new(),
        };
        let mut logs: BTreeMap<String, Known> = BTreeMap::new();
        for cp in stored {
            let key = logs
                .get(&cp.log_id)
                .map(|k| k.key.clone())
                .or_else(|| pinned.get(&cp.log_id).cloned())
                .unwrap_or_else(|| cp.public_key.to_ascii_lowercase());
            cp.verify(Some(&key)).map_err(|err| StoreError::Invalid {
                path: path.display().to_string(),
                log_id: cp.log_id.clone(),
                seq: cp.seq,
                reason: err.to_string(),
            })?;
            let known = logs.entry(cp.log_id.clone()).or_insert(Known {
                key,
                last_seq: 0,
                last_head: String::new(),
                forked: false,
            });
            // A key rotation: the checkpoints after it are the new key's.
            if let Some(next) = &cp.next_key {
                known.key = next.to_ascii_lowercase();
            }
            if cp.seq > known.last_seq {
                known.last_seq = cp.seq;
                known.last_head = cp.head.clone();
            }
        }
        Ok(Self {
            forks_path: data_dir.join(FORKS_FILE),
            path,
            pinned,
            logs: Mutex::new(logs),
        })
    }

    /// The path of the collected file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fetches every node's new checkpoints concurrently and stores those
    /// that verify. One round at a time.
    pub async fn collect(&self, nodes: &Nodes, config: &AuditorsConfig) -> Vec<NodeCollection> {
        let mut logs = self.logs.lock().await;
        let agencies: Vec<AgencyId> = nodes.agencies().cloned().collect();
        let fetches = agencies.iter().map(|agency| {
            let known = logs.get(agency.as_str());
            let skip = known.is_some_and(|k| k.forked);
            // Ask from the last collected seq itself, to see that it stands.
            let after = known.map_or(0, |k| k.last_seq.saturating_sub(1));
            async move {
                if skip {
                    return None;
                }
                Some(
                    nodes
                        .get_raw(
                            agency,
                            &format!("/audit/checkpoints?after={after}"),
                            None,
                            config.export_timeout(),
                            config.max_export_bytes,
                        )
                        .await,
                )
            }
        });
        let answers = futures::future::join_all(fetches).await;
        let mut report = Vec::with_capacity(agencies.len());
        for (agency, answer) in agencies.iter().zip(answers) {
            let id = agency.as_str();
            let last = |logs: &BTreeMap<String, Known>| logs.get(id).map_or(0, |k| k.last_seq);
            let mut entry = NodeCollection {
                agency: id.to_owned(),
                outcome: "UNCHANGED",
                collected: 0,
                last_seq: last(&logs),
                detail: None,
            };
            let step = match answer {
                None => Step::Refuse(
                    "FORK",
                    "a fork was seen earlier; nothing more is collected from this node".into(),
                ),
                Some(Err(failure)) => Step::Refuse("FAILED", format!("the node {failure}")),
                Some(Ok((status, _))) if status != 200 => {
                    Step::Refuse("FAILED", format!("the node answered with HTTP {status}"))
                }
                Some(Ok((_, body))) => match load_checkpoints(&body[..]) {
                    Err(err) => Step::Refuse("FAILED", err.to_string()),
                    Ok(checkpoints) => self.check(id, logs.get(id), checkpoints),
                },
            };
            match step {
                Step::Append(new) if new.is_empty() => {}
                Step::Append(new) => match self.append(&self.path, &new) {
                    Ok(()) => {
                        let first_key = new[0].public_key.to_ascii_lowercase();
                        let known = logs.entry(id.to_owned()).or_insert(Known {
                            key: self.pinned.get(id).cloned().unwrap_or(first_key),
                            last_seq: 0,
                            last_head: String::new(),
                            forked: false,
                        });
                        if let Some(cp) = new.last() {
                            known.last_seq = cp.seq;
                            known.last_head = cp.head.clone();
                        }
                        // The node rotated its key: follow the handover.
                        if let Some(next) = new.iter().rev().find_map(|c| c.next_key.as_ref()) {
                            known.key = next.to_ascii_lowercase();
                        }
                        entry.outcome = "COLLECTED";
                        entry.collected = new.len() as u64;
                        entry.last_seq = known.last_seq;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "appending collected checkpoints failed");
                        entry.outcome = "FAILED";
                        entry.detail = Some("the gateway could not store the checkpoints".into());
                    }
                },
                Step::Refuse(outcome, detail) => {
                    tracing::warn!(agency = id, outcome, detail, "checkpoint collection");
                    entry.outcome = outcome;
                    entry.detail = Some(detail);
                }
                Step::Fork(detail, evidence) => {
                    tracing::error!(agency = id, detail, "audit log fork detected");
                    if let Err(err) = self.append(&self.forks_path, &evidence) {
                        tracing::error!(error = %err, "keeping the fork evidence failed");
                    }
                    if let Some(known) = logs.get_mut(id) {
                        known.forked = true;
                    }
                    entry.outcome = "FORK";
                    entry.detail = Some(detail);
                }
            }
            report.push(entry);
        }
        report
    }

    /// Decides what to do with the checkpoints a node served.
    fn check(&self, id: &str, known: Option<&Known>, served: Vec<Checkpoint>) -> Step {
        let key = known
            .map(|k| k.key.clone())
            .or_else(|| self.pinned.get(id).cloned())
            .or_else(|| served.first().map(|cp| cp.public_key.to_ascii_lowercase()));
        let Some(mut key) = key else {
            return Step::Append(Vec::new());
        };
        let (last_seq, last_head) = known.map_or((0, ""), |k| (k.last_seq, k.last_head.as_str()));
        let mut new = Vec::new();
        let mut still_there = last_seq == 0;
        for cp in served {
            if cp.log_id != id {
                return Step::Refuse(
                    "FAILED",
                    format!(
                        "the node served a checkpoint of log {:?} at seq {}",
                        cp.log_id, cp.seq
                    ),
                );
            }
            if let Err(err) = cp.verify(Some(&key)) {
                return match err {
                    CheckpointError::UnexpectedKey(seq) => Step::Refuse(
                        "KEY_MISMATCH",
                        format!(
                            "the checkpoint at seq {seq} is signed by key {}, not by the node's key {key}",
                            cp.public_key
                        ),
                    ),
                    other => Step::Refuse("FAILED", other.to_string()),
                };
            }
            // A rotation, announced under the key it replaces: the node's
            // later checkpoints are signed by the key it names.
            if let Some(next) = &cp.next_key {
                key = next.to_ascii_lowercase();
            }
            let floor = new.last().map_or(last_seq, |c: &Checkpoint| c.seq);
            if cp.seq == last_seq && last_seq > 0 {
                if !cp.head.eq_ignore_ascii_case(last_head) {
                    return Step::Fork(
                        format!(
                            "fork: the checkpoint collected at seq {last_seq} says {last_head}, the node now signs {}",
                            cp.head
                        ),
                        vec![cp],
                    );
                }
                still_there = true;
            } else if cp.seq > floor {
                new.push(cp);
            }
        }
        if !still_there {
            return Step::Fork(
                format!(
                    "fork: the node no longer serves the checkpoint collected at seq {last_seq}"
                ),
                new,
            );
        }
        Step::Append(new)
    }

    fn append(&self, path: &Path, checkpoints: &[Checkpoint]) -> std::io::Result<()> {
        let mut text = String::new();
        for cp in checkpoints {
            text.push_str(&serde_json::to_string(cp).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }

    /// The collected file's contents (empty before the first collection).
    pub async fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let _guard = self.logs.lock().await;
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => Ok(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }
}

/// Collects every `interval` until the gateway stops; a zero interval
/// collects only on demand.
pub async fn collect_periodically(
    store: Arc<CheckpointStore>,
    nodes: Arc<Nodes>,
    config: AuditorsConfig,
) {
    if config.collect_interval_secs == 0 {
        return;
    }
    let mut ticker =
        tokio::time::interval(std::time::Duration::from_secs(config.collect_interval_secs));
    loop {
        ticker.tick().await;
        let report = store.collect(&nodes, &config).await;
        let collected: u64 = report.iter().map(|r| r.collected).sum();
        tracing::info!(collected, "collected audit checkpoints");
    }
}

// ---------------------------------------------------------------------------
// HTTP.

/// An auditor's request, authenticated and authorised.
struct AuditorCall {
    principal: Principal,
    forwarded: Forwarded,
}

/// A refusal or failure, with its stable code.
struct Refusal {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    extensions: Vec<(&'static str, String)>,
    /// The token check's reason code, when authentication failed.
    audit_reason: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extensions: Vec::new(),
            audit_reason: None,
        }
    }

    fn response(&self) -> Response {
        let mut extensions = serde_json::Map::new();
        extensions.insert("code".into(), self.code.as_str().into());
        for (name, value) in &self.extensions {
            extensions.insert((*name).into(), value.clone().into());
        }
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": extensions }]
        });
        exchange_service::body::json_response(self.status, body.to_string())
    }
}

fn internal() -> Refusal {
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

/// Checks the token (with the nodes' own rules), the AUDIT purpose and the
/// auditor or data-protection officer role.
async fn authorise(
    state: &HttpState,
    headers: &HeaderMap,
) -> Result<AuditorCall, Box<(Option<Principal>, Refusal)>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = state
        .gateway
        .jwks
        .verify_authorization(authorization)
        .await
        .map_err(|err| {
            let mut refusal = Refusal::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                format!("authentication failed: {}", err.reason_code()),
            );
            refusal.audit_reason = Some(err.reason_code());
            Box::new((None, refusal))
        })?;
    let refuse = |status, code, message: &str| {
        Err(Box::new((
            Some(principal.clone()),
            Refusal::new(status, code, message),
        )))
    };
    let purpose = match headers.get(PURPOSE_HEADER).map(|v| v.to_str()) {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::PurposeRequired,
                "declare the AUDIT purpose in the `x-exchange-purpose` header",
            );
        }
        Some(Ok(raw)) => raw.trim().parse::<Purpose>().ok(),
        Some(Err(_)) => None,
    };
    if purpose != Some(Purpose::Audit) {
        return refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "audit logs are read for the AUDIT purpose only",
        );
    }
    if !principal
        .roles
        .iter()
        .any(|r| matches!(r, Role::Auditor | Role::DataProtectionOfficer))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "the federated audit endpoints are for auditors and data-protection officers",
        );
    }
    Ok(AuditorCall {
        forwarded: Forwarded {
            authorization: authorization.unwrap_or_default().to_owned(),
            purpose: Some(Purpose::Audit.as_str().to_owned()),
            justification: headers
                .get(JUSTIFICATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            idempotency_key: None,
        },
        principal,
    })
}

/// Writes the gateway's audit entry for an auditor endpoint call.
async fn audit(
    state: &HttpState,
    principal: Option<&Principal>,
    trace: &TraceParent,
    subject: String,
    outcome: Result<String, &Refusal>,
) -> Result<(), Refusal> {
    let mut event = match &outcome {
        Ok(_) => AuditEvent::new(AuditKind::AuditRead, Decision::Permit, "AUDIT_READ"),
        Err(Refusal {
            audit_reason: Some(reason),
            ..
        }) => AuditEvent::new(AuditKind::Denial, Decision::Deny, *reason),
        Err(refusal) => AuditEvent::new(
            AuditKind::AuditRead,
            Decision::Deny,
            format!("REJECTED_{}", refusal.code),
        ),
    };
    if let Some(p) = principal {
        event.actor_agency = Some(p.agency.clone());
        event.actor_user = Some(p.user.clone());
        event.actor_roles = p.roles.clone();
        event.purpose = Some(Purpose::Audit);
    }
    event.trace_id = Some(trace.trace_id_hex());
    event.subject = Some(subject);
    event.explanation = Some(match outcome {
        Ok(detail) => detail,
        Err(refusal) => format!("{}: {}", refusal.code, refusal.message),
    });
    state
        .gateway
        .audit
        .append(event)
        .await
        .map(|_| ())
        .map_err(|err| {
            tracing::error!(error = ?err, "writing the gateway audit entry failed");
            internal()
        })
}

fn trace_of(headers: &HeaderMap) -> TraceParent {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .unwrap_or_else(TraceParent::generate)
}

/// Runs an auditor endpoint: authorise, do the work, audit the outcome.
async fn guarded<F, Fut>(state: HttpState, headers: HeaderMap, subject: &str, work: F) -> Response
where
    F: FnOnce(HttpState, AuditorCall, TraceParent) -> Fut,
    Fut: std::future::Future<Output = Result<(String, Response), Refusal>>,
{
    let trace = trace_of(&headers);
    let call = match authorise(&state, &headers).await {
        Ok(call) => call,
        Err(denied) => {
            let (principal, refusal) = *denied;
            return match audit(
                &state,
                principal.as_ref(),
                &trace,
                subject.into(),
                Err(&refusal),
            )
            .await
            {
                Ok(()) => refusal.response(),
                Err(failure) => failure.response(),
            };
        }
    };
    let principal = call.principal.clone();
    let outcome = work(state.clone(), call, trace).await;
    let (audited, response) = match outcome {
        Ok((detail, response)) => (
            audit(&state, Some(&principal), &trace, subject.into(), Ok(detail)).await,
            response,
        ),
        Err(refusal) => (
            audit(
                &state,
                Some(&principal),
                &trace,
                subject.into(),
                Err(&refusal),
            )
            .await,
            refusal.response(),
        ),
    };
    match audited {
        Ok(()) => response,
        Err(failure) => failure.response(),
    }
}

fn file_response(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /audit/checkpoints`: the collected checkpoints, JSON Lines.
pub async fn download_checkpoints(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    guarded(
        state,
        headers,
        "collected checkpoints",
        |state, _, _| async move {
            let body = state.checkpoints.read_all().await.map_err(|err| {
                tracing::error!(error = %err, "reading the collected checkpoints failed");
                internal()
            })?;
            let lines = body.iter().filter(|b| **b == b'\n').count();
            Ok((
                format!("{lines} collected checkpoints"),
                file_response("application/jsonl", COLLECTED_FILE, body),
            ))
        },
    )
    .await
}

/// `POST /audit/checkpoints/collect`: a collection round now; the report
/// per node as JSON.
pub async fn collect_now(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    guarded(
        state,
        headers,
        "checkpoint collection",
        |state, _, _| async move {
            let report = state
                .checkpoints
                .collect(&state.nodes, &state.auditors)
                .await;
            let detail = report
                .iter()
                .map(|r| format!("{}: {} ({} new)", r.agency, r.outcome, r.collected))
                .collect::<Vec<_>>()
                .join("; ");
            let body = serde_json::json!({ "nodes": report }).to_string();
            Ok((
                detail,
                exchange_service::body::json_response(StatusCode::OK, body),
            ))
        },
    )
    .await
}

/// `GET /audit/export`: every node's export and the gateway's own, in one
/// file.
pub async fn export(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    guarded(
        state,
        headers,
        "federated audit export",
        |state, call, trace| async move {
            let query = ExportQuery::parse_raw(raw.as_deref()).map_err(|err| {
                Refusal::new(StatusCode::BAD_REQUEST, err.code(), err.to_string())
            })?;
            let path = match raw.as_deref().filter(|r| !r.is_empty()) {
                Some(raw) => format!("/audit/export?{raw}"),
                None => "/audit/export".to_owned(),
            };
            let nodes = &state.nodes;
            let agencies: Vec<AgencyId> = nodes.agencies().cloned().collect();
            let traceparent = trace.header();
            let calls = agencies.iter().map(|agency| {
                nodes.get_raw(
                    agency,
                    &path,
                    Some((&call.forwarded, &traceparent)),
                    state.auditors.export_timeout(),
                    state.auditors.max_export_bytes,
                )
            });
            let answers = futures::future::join_all(calls).await;
            let mut parts: Vec<(String, Vec<u8>)> = Vec::with_capacity(agencies.len() + 1);
            for (agency, answer) in agencies.iter().zip(answers) {
                parts.push((agency.as_str().to_owned(), node_part(agency, answer)?));
            }
            if let Err(err) = state.gateway.audit.checkpoint_now().await {
            tracing::error!(error = ?err, "signing the gateway's audit head before an export failed");
        }
        let mut own = Vec::new();
            let written = match query.format {
                ExportFormat::Jsonl => {
                    export_jsonl(state.gateway.audit.db(), AUDIT_LOG_ID, &query.filter, &mut own).await
                }
                ExportFormat::Csv => {
                    export_csv(state.gateway.audit.db(), AUDIT_LOG_ID, &query.filter, &mut own).await
                }
            };
            if let Err(err) = written {
                tracing::error!(error = %err, "exporting the gateway's audit log failed");
                return Err(internal());
            }
            parts.push((AUDIT_LOG_ID.to_owned(), own));
            let logs: Vec<String> = parts.iter().map(|(id, _)| id.clone()).collect();
            let body = match query.format {
                ExportFormat::Jsonl => {
                    let mut body = bundle_line(&logs).into_bytes();
                    body.push(b'\n');
                    for (_, part) in &parts {
                        body.extend_from_slice(part);
                    }
                    body
                }
                ExportFormat::Csv => {
                    let mut body = Vec::new();
                    for (i, (_, part)) in parts.iter().enumerate() {
                        body.extend_from_slice(if i == 0 { part } else { csv_rows(part) });
                    }
                    body
                }
            };
            let detail = format!(
                "export {} of [{}]: {} bytes",
                query.format.extension(),
                logs.join(","),
                body.len()
            );
            let filename = format!("audit-federation.{}", query.format.extension());
            Ok((
                detail,
                file_response(query.format.content_type(), &filename, body),
            ))
        },
    )
    .await
}

/// A node's export, or the refusal that fails the federated export.
fn node_part(
    agency: &AgencyId,
    answer: Result<(u16, Vec<u8>), NodeFailure>,
) -> Result<Vec<u8>, Refusal> {
    let named = |mut refusal: Refusal| {
        refusal
            .extensions
            .push(("agency", agency.as_str().to_owned()));
        refusal
    };
    match answer {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => {
            // The node's own refusal, with its code, passed on.
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let error = parsed.as_ref().and_then(|v| v.get("errors")?.get(0));
            let code = error
                .and_then(|e| e.get("extensions")?.get("code")?.as_str())
                .and_then(ErrorCode::parse);
            let message = error
                .and_then(|e| e.get("message")?.as_str())
                .unwrap_or("no reason given");
            Err(named(match code {
                Some(code) if status < 500 => Refusal::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    code,
                    format!("the node of agency {agency} refused the export: {message}"),
                ),
                _ => Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::NodeUnavailable,
                    format!("the node of agency {agency} answered with HTTP {status}"),
                ),
            }))
        }
        Err(failure) => Err(named(Refusal::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::NodeUnavailable,
            format!("the node of agency {agency} {failure}; the export needs every node"),
        ))),
    }
}

/// A CSV export without its header row (which holds no quoted line break).
fn csv_rows(part: &[u8]) -> &[u8] {
    part.windows(2)
        .position(|w| w == b"\r\n")
        .map_or(&[][..], |i| &part[i + 2..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};

    const NODE: &str = "shelter-north";

    fn new_key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn hex_of(key: &Ed25519KeyPair) -> String {
        hex::encode(key.public_key().as_ref())
    }

    fn config(pinned: &[(&str, String)]) -> AuditorsConfig {
        AuditorsConfig {
            pinned_keys: pinned
                .iter()
                .map(|(a, k)| ((*a).to_owned(), k.clone()))
                .collect(),
            ..AuditorsConfig::default()
        }
    }

    fn outcome(step: &Step) -> (&'static str, usize) {
        match step {
            Step::Append(new) => ("APPEND", new.len()),
            Step::Refuse(outcome, _) => (outcome, 0),
            Step::Fork(..) => ("FORK", 0),
        }
    }

    /// A node that rotated its key: the handover, signed by the old key,
    /// names the new one, which the later checkpoints are checked against
    /// (in the same round and, once stored, in later rounds and after the
    /// store is reopened); a key nobody handed over to is still refused.
    #[test]
    fn a_key_rotation_announced_by_the_old_key_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, stranger) = (new_key(), new_key(), new_key());
        let store = CheckpointStore::open(dir.path(), &config(&[(NODE, hex_of(&old))])).unwrap();
        let five = Checkpoint::sign(&old, NODE, 5, &[1; 32]);
        let handover = Checkpoint::sign_handover(&old, NODE, 6, &[2; 32], &hex_of(&new));
        let ten = Checkpoint::sign(&new, NODE, 10, &[3; 32]);
        let first = store.check(NODE, None, vec![five, handover.clone(), ten.clone()]);
        assert_eq!(outcome(&first), ("APPEND", 3));
        let Step::Append(new_ones) = first else {
            unreachable!()
        };
        store.append(&store.path, &new_ones).unwrap();
        // Reopened, the store knows the node by its new key.
        let reopened = CheckpointStore::open(dir.path(), &config(&[(NODE, hex_of(&old))])).unwrap();
        let logs = reopened.logs.try_lock().unwrap();
        let known = logs.get(NODE).unwrap();
        assert_eq!(known.key, hex_of(&new));
        let fifteen = Checkpoint::sign(&new, NODE, 15, &[4; 32]);
        assert_eq!(
            outcome(&reopened.check(NODE, Some(known), vec![ten.clone(), fifteen])),
            ("APPEND", 1)
        );
        let by_stranger = Checkpoint::sign(&stranger, NODE, 15, &[4; 32]);
        assert_eq!(
            outcome(&reopened.check(NODE, Some(known), vec![ten, by_stranger])),
            ("KEY_MISMATCH", 0)
        );
        // A handover signed by a key that was not the node's is refused.
        let forged = Checkpoint::sign_handover(&stranger, NODE, 6, &[2; 32], &hex_of(&stranger));
        let fresh = tempfile::tempdir().unwrap();
        let pinned = CheckpointStore::open(fresh.path(), &config(&[(NODE, hex_of(&old))])).unwrap();
        assert_eq!(
            outcome(&pinned.check(NODE, None, vec![forged])),
            ("KEY_MISMATCH", 0)
        );
    }

    #[test]
    fn served_checkpoints_are_checked_against_the_node_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), &config(&[])).unwrap();
        let (key, other) = (new_key(), new_key());
        let five = Checkpoint::sign(&key, NODE, 5, &[1; 32]);
        let ten = Checkpoint::sign(&key, NODE, 10, &[2; 32]);
        // Nothing known yet: the first key seen is the node's.
        let first = store.check(NODE, None, vec![five.clone(), ten.clone()]);
        assert_eq!(outcome(&first), ("APPEND", 2));
        let known = Known {
            key: hex_of(&key),
            last_seq: 10,
            last_head: ten.head.clone(),
            forked: false,
        };
        let k = Some(&known);
        assert_eq!(
            outcome(&store.check(NODE, k, vec![ten.clone()])),
            ("APPEND", 0)
        );
        let fifteen = Checkpoint::sign(&key, NODE, 15, &[3; 32]);
        assert_eq!(
            outcome(&store.check(NODE, k, vec![ten.clone(), fifteen.clone()])),
            ("APPEND", 1)
        );
        let foreign_key = Checkpoint::sign(&other, NODE, 15, &[3; 32]);
        assert_eq!(
            outcome(&store.check(NODE, k, vec![ten.clone(), foreign_key])),
            ("KEY_MISMATCH", 0)
        );
        let rewritten = Checkpoint::sign(&key, NODE, 10, &[9; 32]);
        let fork = store.check(NODE, k, vec![rewritten]);
        assert!(matches!(&fork, Step::Fork(detail, evidence)
            if detail.starts_with("fork: the checkpoint collected at seq 10") && evidence.len() == 1));
        let vanished = store.check(NODE, k, vec![fifteen.clone()]);
        assert!(matches!(&vanished, Step::Fork(detail, _) if detail.contains("no longer serves")));
        let theirs = Checkpoint::sign(&key, "legal-aid-city", 15, &[3; 32]);
        assert_eq!(
            outcome(&store.check(NODE, k, vec![ten.clone(), theirs])),
            ("FAILED", 0)
        );
        let mut forged = fifteen;
        forged.head = hex::encode([4; 32]);
        assert_eq!(
            outcome(&store.check(NODE, k, vec![ten, forged])),
            ("FAILED", 0)
        );

        // A pinned key wins over the first one seen.
        let pinned = CheckpointStore::open(dir.path(), &config(&[(NODE, hex_of(&other))])).unwrap();
        assert_eq!(
            outcome(&pinned.check(NODE, None, vec![five.clone()])),
            ("KEY_MISMATCH", 0)
        );
    }

    #[test]
    fn the_store_is_reopened_and_checked_against_pinned_keys() {
        let dir = tempfile::tempdir().unwrap();
        let key = new_key();
        let store = CheckpointStore::open(dir.path(), &config(&[])).unwrap();
        let cps = vec![
            Checkpoint::sign(&key, NODE, 5, &[1; 32]),
            Checkpoint::sign(&key, NODE, 10, &[2; 32]),
        ];
        store.append(store.path(), &cps).unwrap();
        let reopened = CheckpointStore::open(dir.path(), &config(&[])).unwrap();
        let logs = reopened.logs.try_lock().unwrap();
        assert_eq!(logs[NODE].last_seq, 10);
        assert_eq!(logs[NODE].key, hex_of(&key));
        drop(logs);
        let err = CheckpointStore::open(dir.path(), &config(&[(NODE, hex_of(&new_key()))]))
            .err()
            .expect("a stored checkpoint signed by another key is refused");
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    #[test]
    fn csv_parts_lose_only_their_header_row() {
        assert_eq!(
            csv_rows(b"a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n"),
            b"1,2\r\n3,\"x\r\ny\"\r\n"
        );
        assert_eq!(csv_rows(b"a,b\r\n"), b"");
        assert_eq!(csv_rows(b""), b"");
    }

    #[test]
    fn node_codes_are_passed_on() {
        let agency = AgencyId::parse("shelter-north").unwrap();
        let body = br#"{"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}"#.to_vec();
        let refusal = node_part(&agency, Ok((403, body))).unwrap_err();
        assert_eq!(
            (refusal.status, refusal.code),
            (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
        );
        let refusal = node_part(&agency, Err(NodeFailure::Unreachable)).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::NodeUnavailable);
        assert!(refusal.message.contains("shelter-north"));
    }
}

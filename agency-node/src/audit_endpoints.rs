//! The node's audit endpoints for auditors and checkpoint collectors:
//!
//! * `GET /audit/export?format=jsonl|csv&<filters>`: this node's log as
//!   evidence ([`super::export`]), filtered as [`super::query`] describes.
//!   Authenticated like GraphQL (bearer token, `x-exchange-purpose: AUDIT`)
//!   and authorised by the policy set's `readAuditLog` rules: auditors and
//!   data-protection officers of any agency, supervisors of this one. The
//!   export is itself audited (`AUDIT_READ`), and a refusal as a denial.
//!   The head is signed just before, so every exported entry is covered by
//!   a checkpoint.
//! * `GET /audit/checkpoints?after=<seq>`: the log's signed checkpoints
//!   after `seq`, JSON Lines, for the gateway or any auditor to collect.
//!   Checkpoints hold no personal data (a log ID, a position, a hash and a
//!   signature), so no token is asked for; in a deployment mutual TLS
//!   decides who may connect. Collecting is not audited: an entry per
//!   collection would move the head, which would call for a new checkpoint
//!   to collect, without end.
//!
//! Errors are JSON with a stable `extensions.code`, as from `/graphql`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::{AuditKind, Decision, ErrorCode, GlobalId};

use crate::error::NodeError;
use crate::http::{HttpState, authenticate, error_response, trace_id};
use exchange_audit::export::{export_checkpoints_after, export_csv, export_jsonl};
use exchange_audit::query::{ExportFormat, ExportQuery};

/// The HTTP status that goes with a stable code (the one table in
/// [`ErrorCode::http_status`]).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn node_error(error: NodeError) -> Response {
    if let NodeError::Internal(detail) | NodeError::AuditUnavailable(detail) = &error {
        tracing::error!(error = ?detail, "audit endpoint failed");
    }
    error_response(status_of(error.code()), error.code(), &error.message())
}

fn internal() -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

/// `GET /audit/export`.
pub async fn export(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let trace_id = trace_id(&headers);
    let node = &state.node;
    let caller = match authenticate(node, &headers, &trace_id).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let query = match ExportQuery::parse_raw(raw.as_deref()) {
        Ok(query) => query,
        Err(err) => return error_response(status_of(err.code()), err.code(), &err.to_string()),
    };
    let purpose = match caller.purpose() {
        Ok(purpose) => purpose,
        Err(err) => return node_error(err),
    };
    let target = ActionTarget::owned_by(node.agency.clone());
    if let Err(err) = node
        .authorize(&caller, purpose, Action::ReadAuditLog, target, None)
        .await
    {
        return node_error(err);
    }

    // Sign the head first, so the whole export is covered by a checkpoint.
    if let Err(err) = node.audit.checkpoint_now().await {
        tracing::error!(error = ?err, "signing the audit head before an export failed");
    }
    let log_id = node.audit.log_id();
    let mut body = Vec::new();
    let written = match query.format {
        ExportFormat::Jsonl => export_jsonl(&node.db, log_id, &query.filter, &mut body).await,
        ExportFormat::Csv => export_csv(&node.db, log_id, &query.filter, &mut body).await,
    };
    let summary = match written {
        Ok(summary) => summary,
        Err(err) => {
            tracing::error!(error = %err, "exporting the audit log failed");
            return internal();
        }
    };

    let mut event = caller.event(AuditKind::AuditRead, Decision::Permit, "AUDIT_EXPORT");
    event.purpose = Some(purpose);
    event.survivor = query
        .filter
        .survivor
        .as_deref()
        .and_then(|s| GlobalId::parse(s).ok());
    event.subject = Some(format!(
        "export {}: {} entries, {} elided, through seq {}",
        query.format.extension(),
        summary.entries,
        summary.elided,
        summary.last_seq
    ));
    event.explanation = raw
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!("filter: {}", r.chars().take(500).collect::<String>()));
    event.policy_set = Some(node.policies.set_hash().to_owned());
    if let Err(err) = node.audit.append(event).await {
        return node_error(err.into());
    }

    let disposition = format!(
        "attachment; filename=\"audit-{log_id}.{}\"",
        query.format.extension()
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(query.format.content_type()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /audit/checkpoints?after=<seq>`.
pub async fn checkpoints(State(state): State<HttpState>, RawQuery(raw): RawQuery) -> Response {
    let after = match parse_after(raw.as_deref()) {
        Ok(after) => after,
        Err(message) => {
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &message);
        }
    };
    let mut body = Vec::new();
    // Sign the head into the history first, so that what a collector takes
    // reaches the newest entry at the time it asks.
    if let Err(err) = state.node.audit.checkpoint_now().await {
        tracing::error!(error = ?err, "signing the audit head before serving checkpoints failed");
    }
    if let Err(err) = export_checkpoints_after(&state.node.db, after, &mut body).await {
        tracing::error!(error = %err, "reading the audit checkpoints failed");
        return internal();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(ExportFormat::Jsonl.content_type()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The `after` parameter (default 0), the only one accepted.
fn parse_after(raw: Option<&str>) -> Result<u64, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| "the query string is not form-encoded".to_owned())?;
    let mut after = None;
    for (name, value) in pairs {
        if name != "after" {
            return Err(format!(
                "unknown parameter {:?}: only after is accepted",
                name.chars().take(64).collect::<String>()
            ));
        }
        if after.is_some() {
            return Err("parameter \"after\" is given more than once".to_owned());
        }
        after = Some(
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| "parameter after must be a sequence number (0 or more)".to_owned())?,
        );
    }
    Ok(after.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_is_the_only_parameter() {
        assert_eq!(parse_after(None), Ok(0));
        assert_eq!(parse_after(Some("after=42")), Ok(42));
        assert!(parse_after(Some("after=-1")).is_err());
        assert!(parse_after(Some("after=1&after=2")).is_err());
        assert!(parse_after(Some("before=3")).is_err());
    }
}

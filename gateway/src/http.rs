//! The gateway's HTTP surface: `POST /graphql` (authenticated), GraphiQL on
//! `GET /graphql`, `/healthz` and `/readyz`, and the auditors' endpoints
//! (`/audit/export`, `/audit/checkpoints`, `/audit/checkpoints/collect`:
//! [`crate::audit`]).
//!
//! Before an operation is planned the handler checks the JSON content type
//! (which also stops browsers from sending cross-site requests without a
//! CORS preflight, and no CORS headers are sent unless configured), the body
//! limit, the bearer token (with exactly the node's rules:
//! [`exchange_trust::TokenVerifier`]), the declared purpose and the
//! justification, and the `Idempotency-Key` (read as the nodes read it:
//! [`exchange_schema::IdempotencyKey`]). The token is then passed on
//! unchanged for each node to check again; the key is passed on with
//! mutations only ([`crate::gateway`]).

use std::sync::Arc;

use apollo_compiler::response::JsonValue;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use exchange_schema::{JUSTIFICATION_HEADER, PURPOSE_HEADER, Purpose};
use exchange_service::body::{BodyError, read_body};
use tracing::Instrument as _;

use crate::error::{RequestError, graphql_error};
use crate::gateway::{Caller, ClientRequest, Gateway};
use crate::nodes::Forwarded;
use crate::telemetry::{TraceParent, adopt, outgoing};

/// Longest accepted justification, in bytes (as at the nodes).
pub const MAX_JUSTIFICATION_BYTES: usize = 2000;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub gateway: Arc<Gateway>,
    pub max_body_bytes: usize,
    pub graphql_path: String,
    /// The checkpoints collected from every node.
    pub checkpoints: Arc<crate::audit::CheckpointStore>,
    pub auditors: crate::config::AuditorsConfig,
}

pub fn router(state: HttpState) -> Router {
    let path = state.graphql_path.clone();
    Router::new()
        .route(&path, get(graphiql).post(graphql))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(exchange_graphiql::router())
        .route("/audit/export", get(crate::audit::export))
        .route(
            "/audit/checkpoints",
            get(crate::audit::download_checkpoints),
        )
        .route(
            "/audit/checkpoints/collect",
            axum::routing::post(crate::audit::collect_now),
        )
        .with_state(state)
}

/// GraphiQL from the binary (no CDN), under a strict Content-Security-Policy.
async fn graphiql(State(state): State<HttpState>) -> Response {
    exchange_graphiql::page(
        &state.graphql_path,
        "Survivor data exchange: federation gateway",
    )
}

/// Ready while a durable write to the gateway's audit log succeeds (the
/// gateway answers nothing it cannot audit). Node health is reported by the
/// `nodeHealth` field.
async fn readyz(State(state): State<HttpState>) -> Response {
    if !state.gateway.audit.probe().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log cannot be written",
        )
            .into_response();
    }
    let (seq, _) = state.gateway.audit.head().await;
    (StatusCode::OK, format!("ready (audit head {seq})")).into_response()
}

fn error_response(error: &RequestError) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": error.to_string(), "extensions": { "code": error.code().as_str() } }]
    });
    (
        error.status(),
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn graphql(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let span = tracing::info_span!(
        "graphql.operation",
        otel.kind = "server",
        agency = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    adopt(&span, incoming);
    let trace = outgoing(&span, &incoming.unwrap_or_else(TraceParent::generate));
    handle(state, headers, body, trace).instrument(span).await
}

async fn handle(state: HttpState, headers: HeaderMap, body: Body, trace: TraceParent) -> Response {
    let gateway = &state.gateway;
    let span = tracing::Span::current();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return error_response(&RequestError::UnsupportedMediaType);
    }
    let bytes: Bytes = match read_body(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => {
            return error_response(&RequestError::PayloadTooLarge(state.max_body_bytes));
        }
        Err(BodyError::Unreadable) => {
            return error_response(&RequestError::BadUserInput(
                "the request body could not be read".into(),
            ));
        }
    };

    // Authenticate before reading the operation, with the nodes' own rules.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match gateway.verifier.verify_authorization(authorization) {
        Ok(principal) => principal,
        Err(err) => {
            let refusal = RequestError::Unauthenticated(err.reason_code());
            if gateway
                .audit_refusal(None, None, &trace, &refusal)
                .await
                .is_err()
            {
                return error_response(&RequestError::Internal);
            }
            tracing::info!(reason = err.reason_code(), "authentication failed");
            return error_response(&refusal);
        }
    };
    span.record("agency", principal.agency.as_str());

    let caller = match read_caller(
        &headers,
        principal.clone(),
        authorization.unwrap_or_default(),
    ) {
        Ok(caller) => caller,
        Err(refusal) => return refuse(gateway, &principal, None, &trace, refusal).await,
    };
    let request: ClientRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(_) => {
            return refuse(
                gateway,
                &principal,
                Some(&caller),
                &trace,
                RequestError::MalformedBody,
            )
            .await;
        }
    };
    match gateway.execute(&caller, request, &trace).await {
        Ok(executed) => {
            let partial = executed.outcomes.iter().any(|o| o.failed());
            span.record("outcome", if partial { "partial" } else { "complete" });
            json_response(&executed.response)
        }
        // The log itself failed: there is nothing to record a refusal in,
        // and the operation was not refused at the gateway.
        Err(err @ RequestError::AuditUnavailable) => {
            span.record("outcome", err.code().as_str());
            error_response(&err)
        }
        Err(refusal) => refuse(gateway, &principal, Some(&caller), &trace, refusal).await,
    }
}

async fn refuse(
    gateway: &Gateway,
    principal: &exchange_trust::Principal,
    caller: Option<&Caller>,
    trace: &TraceParent,
    refusal: RequestError,
) -> Response {
    tracing::Span::current().record("outcome", refusal.code().as_str());
    if gateway
        .audit_refusal(Some(principal), caller, trace, &refusal)
        .await
        .is_err()
    {
        return error_response(&RequestError::AuditUnavailable);
    }
    error_response(&refusal)
}

fn json_response(value: &JsonValue) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(_) => {
            let error = graphql_error("internal error", exchange_schema::ErrorCode::Internal, None);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::to_vec(&error).unwrap_or_default(),
            )
                .into_response()
        }
    }
}

/// The purpose and justification headers, checked as a node checks them.
fn read_caller(
    headers: &HeaderMap,
    principal: exchange_trust::Principal,
    authorization: &str,
) -> Result<Caller, RequestError> {
    let purpose = match headers.get(PURPOSE_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(raw)) => Some(
            raw.trim()
                .parse::<Purpose>()
                .map_err(|e| RequestError::BadUserInput(e.to_string()))?,
        ),
        Some(Err(_)) => {
            return Err(RequestError::BadUserInput(
                "the purpose header is not text".into(),
            ));
        }
    };
    let justification = match headers.get(JUSTIFICATION_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(raw)) => {
            let trimmed = raw.trim();
            if trimmed.is_empty()
                || trimmed.len() > MAX_JUSTIFICATION_BYTES
                || trimmed.chars().any(char::is_control)
            {
                return Err(RequestError::BadUserInput(format!(
                    "the justification must be 1 to {MAX_JUSTIFICATION_BYTES} printable characters"
                )));
            }
            Some(trimmed.to_owned())
        }
        Some(Err(_)) => {
            return Err(RequestError::BadUserInput(
                "the justification header must be ASCII; percent-encode other text".into(),
            ));
        }
    };
    let idempotency_key = exchange_schema::IdempotencyKey::from_header_values(
        headers
            .get_all(exchange_schema::IDEMPOTENCY_KEY_HEADER)
            .iter()
            .map(|v| v.as_bytes()),
    )
    .map_err(|e| RequestError::BadUserInput(e.to_string()))?;
    Ok(Caller {
        forwarded: Forwarded {
            authorization: authorization.to_owned(),
            purpose: purpose.map(|p| p.as_str().to_owned()),
            justification: justification.clone(),
            idempotency_key,
        },
        principal,
        purpose,
        justification,
    })
}

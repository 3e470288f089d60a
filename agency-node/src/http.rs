//! The node's HTTP surface: `POST /graphql` (authenticated), GraphiQL on
//! `GET /graphql`, `/healthz` and `/readyz`, and the audit endpoints
//! (`/audit/export`, `/audit/checkpoints`: [`crate::audit_endpoints`]).
//!
//! The GraphQL handler owns everything that happens before a resolver runs:
//! the body limit, the JSON content type (which also keeps browsers from
//! sending cross-site requests without a preflight), bearer-token
//! verification (a failure is audited as a denial), the declared purpose and
//! justification, the trace ID, the `Idempotency-Key` of a mutation
//! ([`crate::idempotency`]), and giving every error a stable
//! `extensions.code`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use exchange_schema::{
    AuditEvent, AuditKind, Decision, ErrorCode, JUSTIFICATION_HEADER, PURPOSE_HEADER,
};
use serde_json::json;

use crate::audit_endpoints::status_of;
use crate::graphql::NodeSchema;
use crate::state::{Caller, NodeState};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub node: Arc<NodeState>,
    pub schema: NodeSchema,
    /// Operations already parsed (see [`crate::graphql::documents`]).
    pub documents: Arc<crate::graphql::documents::NodeDocuments>,
    /// The node's schema as apollo-compiler reads it, to check operations.
    pub operation_schema: Arc<apollo_compiler::validation::Valid<apollo_compiler::Schema>>,
    /// The limits every operation is held to before it runs.
    pub limits: crate::graphql::OperationLimits,
    pub max_body_bytes: usize,
    pub graphql_path: String,
    /// How long a mutation's `Idempotency-Key` is kept.
    pub idempotency_window: std::time::Duration,
}

pub fn router(state: HttpState) -> Router {
    let path = state.graphql_path.clone();
    Router::new()
        .route(&path, get(graphiql).post(graphql))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(exchange_graphiql::router())
        .route("/audit/export", get(crate::audit_endpoints::export))
        .route(
            "/audit/checkpoints",
            get(crate::audit_endpoints::checkpoints),
        )
        .with_state(state)
}

/// GraphiQL from the binary (no CDN), under a strict Content-Security-Policy.
async fn graphiql(State(state): State<HttpState>) -> Response {
    exchange_graphiql::page(&state.graphql_path, "Agency node")
}

/// Ready only while a durable write to the audit log succeeds: a node whose
/// storage is full, failing, read-only, locked or unreachable would refuse
/// every request that discloses or changes anything.
async fn readyz(State(state): State<HttpState>) -> Response {
    if state.node.audit.probe().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log cannot be written",
        )
            .into_response()
    }
}

pub use exchange_service::body::{BodyError, read_body};

/// A GraphQL-shaped error response with a stable code.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    exchange_service::body::json_response(status, body.to_string())
}

/// `POST /graphql`, in a `graphql.request` span whose parent is the
/// request's `traceparent` (the gateway's `node.call` span), so the trace
/// a client started runs on through this node.
async fn graphql(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!("graphql.request", agency = %state.node.agency);
    if let Some(parent) = headers
        .get(exchange_schema::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(exchange_schema::TraceContext::parse)
    {
        let _ = span.set_parent(exchange_service::telemetry::remote_parent(
            parent.trace_id,
            parent.parent_id,
            parent.sampled(),
        ));
    }
    graphql_request(state, headers, body).instrument(span).await
}

async fn graphql_request(state: HttpState, headers: HeaderMap, body: Body) -> Response {
    let started = std::time::Instant::now();
    let trace_id = span_trace_id().unwrap_or_else(|| trace_id(&headers));
    if !exchange_service::body::is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadUserInput,
            "send the operation as application/json",
        );
    }
    let bytes: Bytes = match read_body(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                &format!(
                    "the request body is larger than {} bytes",
                    state.max_body_bytes
                ),
            );
        }
        Err(BodyError::Unreadable) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the request body could not be read",
            );
        }
    };

    // Authenticate before even parsing the operation.
    let caller = match authenticate(&state.node, &headers, &trace_id).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    // A malformed key is refused whatever the operation; a well-formed one
    // is used by mutations only (a query changes nothing and is always
    // answered afresh).
    let idempotency_key = match exchange_schema::IdempotencyKey::from_header_values(
        headers
            .get_all(exchange_schema::IDEMPOTENCY_KEY_HEADER)
            .iter()
            .map(|v| v.as_bytes()),
    ) {
        Ok(key) => key,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &err.to_string(),
            );
        }
    };

    let mut request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the body must be a JSON object with `query` and optional `variables` and `operationName`",
            );
        }
    };
    // The limits hold before async-graphql parses, validates or runs
    // anything of the operation.
    let root_fields = match crate::graphql::documents::prepare(
        &state.documents,
        &state.operation_schema,
        &state.limits,
        &mut request,
    ) {
        Ok(fields) => fields,
        Err(refusal) => {
            tracing::info!(code = %refusal.code(), "operation refused before it ran");
            return error_response(
                status_of(refusal.code()),
                refusal.code(),
                &refusal.to_string(),
            );
        }
    };
    if let Some(key) = idempotency_key
        && is_mutation(&mut request)
    {
        let fingerprint = crate::idempotency::fingerprint(
            &request.query,
            &request
                .variables
                .clone()
                .into_value()
                .into_json()
                .unwrap_or_default(),
            request.operation_name.as_deref(),
            caller.purpose,
        );
        let keyed = crate::idempotency::RequestKey::new(
            &caller,
            key,
            fingerprint,
            state.idempotency_window,
        );
        match crate::idempotency::check_request(
            &state.node.db,
            &keyed,
            time::OffsetDateTime::now_utc(),
        )
        .await
        {
            Ok(()) => {}
            Err(err @ crate::error::NodeError::IdempotencyKeyReused) => {
                let err = state
                    .node
                    .deny(&caller, err, None, Some("idempotency key".into()))
                    .await;
                return error_response(status_of(err.code()), err.code(), &err.message());
            }
            Err(err) => {
                if let crate::error::NodeError::AuditUnavailable(source)
                | crate::error::NodeError::Internal(source) = &err
                {
                    tracing::error!(error = ?source, "checking an idempotency key failed");
                }
                return error_response(status_of(err.code()), err.code(), &err.message());
            }
        }
        request = request.data(keyed);
    }
    // Kept for a call this node makes on the caller's behalf (the hand-over
    // of a case transfer); never logged.
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| exchange_trust::parse_authorization_header(Some(v)).ok())
    {
        request = request.data(crate::peers::BearerToken(token.to_owned()));
    }
    let mut response = state.schema.execute(request.data(caller)).await;
    state.node.metrics.operation(&root_fields, started);
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::BadUserInput.as_str());
        }
    }
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(_) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            );
        }
    };
    exchange_service::body::json_response(StatusCode::OK, body)
}

/// Whether the operation the request selects is a mutation. A request
/// whose document does not parse, or names no operation it holds, is not:
/// execution refuses it with its own error.
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str()),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// Authenticates a request as every authenticated endpoint does: the bearer
/// token (a failure is audited as a denial), then the declared purpose and
/// justification headers. The error is the response to send.
pub async fn authenticate(
    node: &NodeState,
    headers: &HeaderMap,
    trace_id: &str,
) -> Result<Caller, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match node.jwks.verify_authorization(authorization).await {
        Ok(principal) => principal,
        Err(err) => {
            let mut event = AuditEvent::new(AuditKind::Denial, Decision::Deny, err.reason_code());
            event.actor_agency = err
                .claimed_agency()
                .and_then(|a| exchange_schema::AgencyId::parse(a).ok());
            event.actor_user = err.claimed_user().map(|u| format!("unverified:{u}"));
            event.trace_id = Some(trace_id.to_owned());
            event.subject = Some("authentication".into());
            if let Err(audit_err) = node.audit.append(event).await {
                tracing::error!(error = ?audit_err, "auditing an authentication failure failed");
                return Err(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error",
                ));
            }
            tracing::info!(reason = err.reason_code(), "authentication failed");
            return Err(error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                &format!("authentication failed: {}", err.reason_code()),
            ));
        }
    };

    // The same rules as the gateway's: [`exchange_schema::headers`].
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let (purpose, justification) = match exchange_schema::headers::purpose(header(PURPOSE_HEADER))
        .and_then(|p| {
            Ok((
                p,
                exchange_schema::headers::justification(header(JUSTIFICATION_HEADER))?,
            ))
        }) {
        Ok(read) => read,
        Err(err) => {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &err.to_string(),
            ));
        }
    };

    Ok(Caller {
        principal,
        purpose,
        justification,
        trace_id: trace_id.to_owned(),
    })
}

/// The trace ID of the current span, when an OpenTelemetry layer tracks
/// it: the incoming `traceparent`'s, or the one the tracer started for a
/// request without one, so the audit entries and the exported spans of a
/// request always name the same trace.
fn span_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The W3C trace ID of the request's `traceparent` (read by the gateway's
/// rules: [`exchange_schema::TraceContext`]), or a new random one.
pub fn trace_id(headers: &HeaderMap) -> String {
    headers
        .get(exchange_schema::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(exchange_schema::TraceContext::parse)
        .map(|context| context.trace_id_hex())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

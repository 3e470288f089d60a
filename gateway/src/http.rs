//! The gateway's HTTP surface: `POST /graphql` (authenticated), GraphiQL on
//! `GET /graphql`, `/healthz` and `/readyz`, and the auditors' endpoints
//! (`/audit/export`, `/audit/checkpoints`, `/audit/checkpoints/collect`:
//! [`crate::audit`]).
//!
//! The GraphQL handler checks the JSON content type (no CORS headers are
//! sent unless configured) and the body limit, then runs the operation
//! through the stages of [`crate::pipeline`] (authenticate, check, plan, fan
//! out, audit, merge, respond) and audits every refusal.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use exchange_service::body::{BodyError, read_body};
use tracing::Instrument as _;

use crate::error::RequestError;
use crate::nodes::Nodes;
use crate::pipeline::respond::{self, error_response, json_response};
use crate::pipeline::{Caller, ClientRequest, Gateway, authenticate};
use crate::telemetry::{TraceParent, adopt, outgoing};

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub gateway: Arc<Gateway>,
    /// The node clients, for the auditors' endpoints.
    pub nodes: Arc<Nodes>,
    pub max_body_bytes: usize,
    pub graphql_path: String,
    /// The notification subscription served at `<graphql path>/ws`.
    pub subscriptions: crate::subscriptions::NotificationSchema,
    /// The checkpoints collected from every node.
    pub checkpoints: Arc<crate::audit::CheckpointStore>,
    pub auditors: crate::config::AuditorsConfig,
    /// The statistics releases ([`crate::statistics`]).
    pub statistics: Arc<crate::statistics::ReleaseStore>,
}

pub fn router(state: HttpState) -> Router {
    let path = state.graphql_path.clone();
    Router::new()
        .route(&path, get(graphiql).post(graphql))
        .route(
            &format!("{}/ws", path.trim_end_matches('/')),
            get(subscribe),
        )
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
        .route("/statistics", get(crate::dashboard::latest))
        .route(
            "/statistics/dashboard.css",
            get(crate::dashboard::stylesheet),
        )
        .route("/statistics/{period}", get(crate::dashboard::quarter))
        .route("/statistics/releases", get(crate::statistics::list))
        .route(
            "/statistics/releases/{file}",
            get(crate::statistics::download).post(crate::statistics::produce),
        )
        .with_state(state)
}

/// The notification subscription over graphql-transport-ws (and the older
/// graphql-ws protocol), authenticated in `connection_init`
/// ([`crate::subscriptions`]).
async fn subscribe(
    State(state): State<HttpState>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::WebSocketUpgrade,
) -> Response {
    let schema = state.subscriptions.clone();
    let gateway = state.gateway.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            async_graphql_axum::GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| {
                    crate::subscriptions::authenticate(gateway.clone(), payload)
                })
                .serve()
        })
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

async fn graphql(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = headers
        .get(exchange_schema::TRACEPARENT_HEADER)
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
    if !respond::is_json(&headers) {
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
    let principal = match authenticate::principal(&gateway.jwks, &headers).await {
        Ok(principal) => principal,
        Err(refusal) => {
            if gateway
                .audit_refusal(None, None, &trace, &refusal)
                .await
                .is_err()
            {
                return error_response(&RequestError::Internal);
            }
            tracing::info!(reason = %refusal, "authentication failed");
            return error_response(&refusal);
        }
    };
    span.record("agency", principal.agency.as_str());

    let caller = match authenticate::caller(&headers, principal.clone()) {
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

//! Stage 7, respond: the HTTP response of an answered or refused operation,
//! always JSON and never cached. A refusal carries its stable code and the
//! HTTP status of the one table ([`exchange_schema::ErrorCode::http_status`]).

use apollo_compiler::response::JsonValue;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{RequestError, graphql_error};

/// Whether the request declares a JSON body (which also keeps browsers from
/// sending cross-site requests without a CORS preflight).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// A request refused as a whole.
pub fn error_response(error: &RequestError) -> Response {
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

/// An answer (which may carry field errors) with status 200.
pub fn json_response(value: &JsonValue) -> Response {
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

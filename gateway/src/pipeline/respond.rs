//! Stage 7, respond: the HTTP response of an answered or refused operation,
//! always JSON and never cached. A refusal carries its stable code and the
//! HTTP status of the one table ([`exchange_schema::ErrorCode::http_status`]).

use apollo_compiler::response::JsonValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use exchange_service::body::json_response as json_bytes;

use crate::error::{RequestError, graphql_error};

pub use exchange_service::body::is_json;

/// A request refused as a whole.
pub fn error_response(error: &RequestError) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": error.to_string(), "extensions": { "code": error.code().as_str() } }]
    });
    json_bytes(error.status(), body.to_string())
}

/// An answer (which may carry field errors) with status 200.
pub fn json_response(value: &JsonValue) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(StatusCode::OK, body),
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

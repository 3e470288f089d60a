//! The gateway's errors and their stable `extensions.code`.
//!
//! [`RequestError`] ends a whole request: before anything is forwarded (bad
//! body, failed token, invalid or too complex operation), or when the
//! gateway's own audit log cannot record the operation (then nothing is
//! answered). [`FieldError`] is
//! the error of one root field (its node is unavailable, its global ID is
//! malformed); the other fields are still answered. Messages never contain
//! record contents or token contents.

use axum::http::StatusCode;
use exchange_schema::limits::OperationError;
use exchange_schema::{AgencyId, ErrorCode};
use serde_json_bytes::{ByteString, Map, Value};

/// Why a request was refused as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    #[error("send the operation as application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error(
        "the body must be a JSON object with `query` and optional `variables` and `operationName`"
    )]
    MalformedBody,
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    BadUserInput(String),
    #[error("{0}")]
    InvalidOperation(String),
    #[error("{0}")]
    TooComplex(String),
    #[error("schema introspection is switched off on this gateway")]
    IntrospectionDisabled,
    #[error("internal error")]
    Internal,
    #[error("the audit log cannot be written, so nothing is answered; retry later")]
    AuditUnavailable,
}

impl RequestError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedMediaType
            | Self::MalformedBody
            | Self::BadUserInput(_)
            | Self::InvalidOperation(_) => ErrorCode::BadUserInput,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::TooComplex(_) => ErrorCode::OperationTooComplex,
            Self::IntrospectionDisabled => ErrorCode::Forbidden,
            Self::Internal => ErrorCode::Internal,
            Self::AuditUnavailable => ErrorCode::AuditUnavailable,
        }
    }

    /// The HTTP status: the code's, from the one table
    /// ([`ErrorCode::http_status`]), except that a body that is not JSON is
    /// `415 Unsupported Media Type`.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            other => StatusCode::from_u16(other.code().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The reason code written in the audit entry of the refusal.
    pub fn audit_reason(&self) -> String {
        match self {
            Self::Unauthenticated(reason) => (*reason).to_owned(),
            other => format!("REJECTED_{}", other.code()),
        }
    }
}

impl From<OperationError> for RequestError {
    fn from(error: OperationError) -> Self {
        match error {
            OperationError::IntrospectionDisabled => Self::IntrospectionDisabled,
            OperationError::TooManyTokens(_) | OperationError::OverLimit { .. } => {
                Self::TooComplex(error.to_string())
            }
            OperationError::Invalid(_) => Self::InvalidOperation(error.to_string()),
            OperationError::UnknownOperation(_) | OperationError::InvalidVariables(_) => {
                Self::BadUserInput(error.to_string())
            }
        }
    }
}

/// Why one node call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeFailure {
    #[error("did not answer within {0} ms")]
    Timeout(u64),
    #[error("could not be reached")]
    Unreachable,
    #[error("is skipped while its circuit is open after repeated failures")]
    CircuitOpen,
    #[error("answered with HTTP status {0}")]
    BadStatus(u16),
    #[error("answered with something that is not a GraphQL response")]
    BadAnswer,
    #[error("has no node URL in the federation file")]
    NoNode,
    #[error("answered with more than {0} bytes")]
    TooLarge(usize),
    #[error("already had {0} requests in flight and none finished in time; this one was not sent")]
    Saturated(usize),
}

impl NodeFailure {
    /// Whether the request may have reached the node (so a mutation's
    /// outcome is unknown) or certainly did not (nothing was written).
    pub fn maybe_delivered(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::BadStatus(_) | Self::BadAnswer | Self::TooLarge(_)
        )
    }

    /// Whether this failure counts against the node's circuit breaker.
    pub fn trips_breaker(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_)
                | Self::Unreachable
                | Self::BadStatus(_)
                | Self::BadAnswer
                | Self::TooLarge(_)
        )
    }

    /// A short stable name for logs and the audit entry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "TIMEOUT",
            Self::Unreachable => "UNREACHABLE",
            Self::CircuitOpen => "CIRCUIT_OPEN",
            Self::BadStatus(_) => "BAD_STATUS",
            Self::BadAnswer => "BAD_ANSWER",
            Self::NoNode => "NO_NODE",
            Self::TooLarge(_) => "TOO_LARGE",
            Self::Saturated(_) => "SATURATED",
        }
    }
}

/// A GraphQL error object with `extensions.code`.
pub fn graphql_error(message: &str, code: ErrorCode, path: Option<&str>) -> Value {
    let mut extensions = Map::new();
    extensions.insert("code", Value::String(code.as_str().into()));
    let mut error = Map::new();
    error.insert("message", Value::String(message.into()));
    if let Some(path) = path {
        error.insert("path", Value::Array(vec![Value::String(path.into())]));
    }
    error.insert("extensions", Value::Object(extensions));
    Value::Object(error)
}

/// The error a root field gets when its node failed: `NODE_UNAVAILABLE`,
/// naming the agency, and for mutations whether anything may have been
/// written (`extensions.outcome`: `NOT_SENT` or `UNKNOWN`).
pub fn node_unavailable(
    agency: &AgencyId,
    failure: &NodeFailure,
    path: &str,
    mutation: bool,
) -> Value {
    let mut message = format!("the node of agency {agency} {failure}");
    if mutation {
        if failure.maybe_delivered() {
            message.push_str(
                "; the change may or may not have been made there: read it back before retrying",
            );
        } else {
            message.push_str("; nothing was sent, so nothing was written");
        }
    }
    let mut error = graphql_error(&message, ErrorCode::NodeUnavailable, Some(path));
    if let Some(ext) = error.get_mut("extensions").and_then(Value::as_object_mut) {
        ext.insert("agency", Value::String(agency.as_str().into()));
        ext.insert("reason", Value::String(failure.reason().into()));
        if mutation {
            let outcome = if failure.maybe_delivered() {
                "UNKNOWN"
            } else {
                "NOT_SENT"
            };
            ext.insert("outcome", Value::String(outcome.into()));
        }
    }
    error
}

/// Adds `extensions.agency` to an error a node returned, so the client knows
/// which node said it.
pub fn tag_with_agency(mut error: Value, agency: &AgencyId) -> Value {
    if let Some(obj) = error.as_object_mut() {
        let ext = obj
            .entry(ByteString::from("extensions"))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(ext) = ext.as_object_mut() {
            ext.insert("agency", Value::String(agency.as_str().into()));
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::{NodeFailure, RequestError};

    /// A refusal answers the HTTP status of its code, from the one table
    /// the node uses too; only a body that is not JSON has a status of its
    /// own (415). Introspection switched off is FORBIDDEN, so 403 (the
    /// gateway and the node's GraphQL endpoint used to say 400 where the
    /// node's audit endpoints said 403).
    #[test]
    fn a_refusal_answers_the_status_of_its_code() {
        let refusals = [
            RequestError::PayloadTooLarge(1),
            RequestError::MalformedBody,
            RequestError::Unauthenticated("TOKEN_EXPIRED"),
            RequestError::BadUserInput("x".into()),
            RequestError::InvalidOperation("x".into()),
            RequestError::TooComplex("x".into()),
            RequestError::IntrospectionDisabled,
            RequestError::Internal,
            RequestError::AuditUnavailable,
        ];
        for refusal in refusals {
            assert_eq!(
                refusal.status().as_u16(),
                refusal.code().http_status(),
                "{refusal:?}"
            );
        }
        assert_eq!(RequestError::IntrospectionDisabled.status().as_u16(), 403);
        assert_eq!(RequestError::UnsupportedMediaType.status().as_u16(), 415);
    }

    /// A request refused for want of a slot was never sent: a mutation is
    /// certainly not applied, and the node is not blamed for it.
    #[test]
    fn a_saturated_request_was_not_delivered_and_does_not_trip_the_breaker() {
        let saturated = NodeFailure::Saturated(16);
        assert!(!saturated.maybe_delivered());
        assert!(!saturated.trips_breaker());
        assert_eq!(saturated.reason(), "SATURATED");
    }
}

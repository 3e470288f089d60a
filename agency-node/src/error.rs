//! The node's error type and its mapping to stable GraphQL error codes.
//!
//! Clients see a short message and `extensions.code`; anything internal
//! (database errors, I/O) is logged with the trace ID and replaced by a
//! generic message, so no record content or system detail leaks.

use exchange_schema::ErrorCode;

/// An error a request can end with.
///
/// Deliberately not `Display` (and so not `std::error::Error`): async-graphql
/// converts any `Display` type into a GraphQL error *without* an
/// `extensions.code`, so a `?` could silently drop the code. The only
/// conversion is the one below, which always sets it.
#[derive(Debug)]
pub enum NodeError {
    Unauthenticated(String),
    Forbidden(String),
    ConsentRequired(String),
    PurposeRequired(String),
    JustificationRequired,
    /// What was not found ("survivor", "referral", ...).
    NotFound(&'static str),
    BadInput(String),
    Conflict(String),
    /// The `Idempotency-Key` was used before with another request.
    IdempotencyKeyReused,
    /// Logged with its detail; the client sees only "internal error".
    Internal(anyhow::Error),
}

impl NodeError {
    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(why) => format!("authentication required: {why}"),
            Self::Forbidden(why)
            | Self::ConsentRequired(why)
            | Self::BadInput(why)
            | Self::Conflict(why) => why.clone(),
            Self::PurposeRequired(why) => format!(
                "this request can disclose data: declare a purpose in the `x-exchange-purpose` header ({why})"
            ),
            Self::JustificationRequired => "a break-glass request needs a written justification \
                (at least a sentence) in the `x-exchange-justification` header or argument"
                .into(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::IdempotencyKeyReused => {
                "this Idempotency-Key was used with a different request; \
                send a new request with a new key"
                    .into()
            }
            Self::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::ConsentRequired(_) => ErrorCode::ConsentRequired,
            Self::PurposeRequired(_) => ErrorCode::PurposeRequired,
            Self::JustificationRequired => ErrorCode::JustificationRequired,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadInput(_) => ErrorCode::BadUserInput,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<sqlx::Error> for NodeError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

impl From<anyhow::Error> for NodeError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl From<exchange_schema::IdError> for NodeError {
    fn from(err: exchange_schema::IdError) -> Self {
        Self::BadInput(err.to_string())
    }
}

impl From<NodeError> for async_graphql::Error {
    fn from(err: NodeError) -> Self {
        use async_graphql::ErrorExtensions;
        if let NodeError::Internal(source) = &err {
            tracing::error!(error = ?source, "request failed");
        }
        async_graphql::Error::new(err.message())
            .extend_with(|_, ext| ext.set("code", err.code().as_str()))
    }
}

pub type NodeResult<T> = Result<T, NodeError>;

//! The node's error type and its mapping to stable GraphQL error codes.
//!
//! Clients see a short message and `extensions.code`; anything internal
//! (database errors, I/O) is logged with the trace ID and replaced by a
//! generic message, so no record content or system detail leaks.

use exchange_schema::ErrorCode;

/// An error a request can end with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    ConsentRequired(String),
    #[error("this request can disclose data: declare a purpose in the `x-exchange-purpose` header ({0})")]
    PurposeRequired(String),
    #[error("a break-glass request needs a written justification in the `x-exchange-justification` header")]
    JustificationRequired,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl NodeError {
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
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| ext.set("code", err.code().as_str()))
    }
}

pub type NodeResult<T> = Result<T, NodeError>;

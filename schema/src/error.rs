//! Stable error codes, the `extensions.code` of every GraphQL error the
//! federation returns. Clients and tests match on these; messages may change.

use std::fmt;

/// The stable code of an error returned to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No bearer token, or one that failed verification.
    Unauthenticated,
    /// Authenticated, but this agency, role or purpose may not do this.
    Forbidden,
    /// The action needs a survivor's active consent that does not exist.
    ConsentRequired,
    /// The request can disclose data but declares no purpose.
    PurposeRequired,
    /// A break-glass request without a written justification.
    JustificationRequired,
    /// No such record, or not visible to the requester (indistinguishable).
    NotFound,
    /// The input is malformed: bad ID, unknown enum value, bad date, too long.
    BadUserInput,
    /// The record is not in a state that allows this change.
    Conflict,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The operation is too deep or too costly.
    OperationTooComplex,
    /// An agency node did not answer in time (gateway only).
    NodeUnavailable,
    /// The audit log cannot be written (storage full, failing or
    /// unreachable), so nothing that would need an entry is answered or
    /// changed. Retry later; the node or gateway reports not-ready meanwhile.
    AuditUnavailable,
    /// An `Idempotency-Key` was used again with a different request.
    IdempotencyKeyReused,
    /// Something failed on the server; details are in its log only.
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::ConsentRequired => "CONSENT_REQUIRED",
            Self::PurposeRequired => "PURPOSE_REQUIRED",
            Self::JustificationRequired => "JUSTIFICATION_REQUIRED",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::OperationTooComplex => "OPERATION_TOO_COMPLEX",
            Self::NodeUnavailable => "NODE_UNAVAILABLE",
            Self::AuditUnavailable => "AUDIT_UNAVAILABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

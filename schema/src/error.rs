//! Stable error codes, the `extensions.code` of every GraphQL error the
//! federation returns, in one table with the HTTP status each goes with and
//! the text it is written as (parsed back by [`ErrorCode::parse`]). Clients
//! and tests match on these; messages may change.

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
    /// The record moved to another agency's node in a case transfer; the
    /// error's `extensions.movedTo` is its new global ID.
    Moved,
    /// The record was erased (crypto-shredded: its data key destroyed) when
    /// its retention period ran out or at the survivor's request; the
    /// error's `extensions.erasedAt` says when and `extensions.erasureRule`
    /// under which rule. An erased record is never reported as not found.
    Erased,
}

/// Every code, with its text and the HTTP status of a response refused as a
/// whole with it (an error on one field of an answer travels in a 200).
const TABLE: [(ErrorCode, &str, u16); 16] = [
    (ErrorCode::Unauthenticated, "UNAUTHENTICATED", 401),
    (ErrorCode::Forbidden, "FORBIDDEN", 403),
    (ErrorCode::ConsentRequired, "CONSENT_REQUIRED", 403),
    (ErrorCode::PurposeRequired, "PURPOSE_REQUIRED", 400),
    (
        ErrorCode::JustificationRequired,
        "JUSTIFICATION_REQUIRED",
        400,
    ),
    (ErrorCode::NotFound, "NOT_FOUND", 404),
    (ErrorCode::BadUserInput, "BAD_USER_INPUT", 400),
    (ErrorCode::Conflict, "CONFLICT", 409),
    (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
    (ErrorCode::OperationTooComplex, "OPERATION_TOO_COMPLEX", 400),
    (ErrorCode::NodeUnavailable, "NODE_UNAVAILABLE", 502),
    (ErrorCode::AuditUnavailable, "AUDIT_UNAVAILABLE", 503),
    (
        ErrorCode::IdempotencyKeyReused,
        "IDEMPOTENCY_KEY_REUSED",
        409,
    ),
    (ErrorCode::Internal, "INTERNAL_SERVER_ERROR", 500),
    (ErrorCode::Moved, "MOVED", 410),
    (ErrorCode::Erased, "ERASED", 410),
];

impl ErrorCode {
    /// Every code, in the table's order.
    pub fn all() -> impl Iterator<Item = Self> {
        TABLE.iter().map(|(code, _, _)| *code)
    }

    pub const fn as_str(self) -> &'static str {
        TABLE[self as usize].1
    }

    /// The HTTP status of a response refused as a whole with this code.
    pub const fn http_status(self) -> u16 {
        TABLE[self as usize].2
    }

    /// The code written as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, name, _)| *name == text)
            .map(|(code, _, _)| *code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` and `http_status` index the table by the enum's order: a
    /// variant added out of order, or a row missing, fails here.
    #[test]
    fn every_code_is_its_own_row_and_round_trips() {
        for (i, (code, text, status)) in TABLE.iter().enumerate() {
            assert_eq!(*code as usize, i, "{text} is out of order");
            assert_eq!(code.as_str(), *text);
            assert_eq!(code.http_status(), *status);
            assert_eq!(ErrorCode::parse(text), Some(*code));
        }
        assert_eq!(ErrorCode::all().count(), TABLE.len());
        assert_eq!(ErrorCode::parse("bad_user_input"), None);
        assert_eq!(ErrorCode::AuditUnavailable.http_status(), 503);
    }
}

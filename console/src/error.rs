//! The console's refusals: each a stable code (sent in the
//! `x-exchange-error-code` header and shown on the error page), an HTTP
//! status and a message in the caseworker's language. Internal detail goes
//! to the log only.

use axum::http::StatusCode;
use exchange_schema::ErrorCode;

/// Why a console request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A form without the session's CSRF token, or from another origin.
    #[error("the form's CSRF token or origin did not match")]
    Csrf,
    /// A page that needs a signed-in caseworker.
    #[error("not signed in")]
    NotSignedIn,
    /// The session timed out or its token expired.
    #[error("the session expired")]
    SessionExpired,
    /// The identity provider no longer accepts the sign-in (its grant was
    /// revoked or the account disabled); the session has ended.
    #[error("sign-in revoked by the identity provider: {0}")]
    SignInRevoked(String),
    /// The identity provider could not be reached or answered nonsense.
    #[error("identity provider: {0}")]
    IdentityProvider(String),
    /// The provider or the console refused the sign-in (bad state, code,
    /// ID token or access token).
    #[error("sign-in refused: {0}")]
    SignInRefused(String),
    /// The gateway could not be reached.
    #[error("gateway unreachable: {0}")]
    GatewayUnavailable(String),
    /// The gateway refused the request with this code.
    #[error("the gateway refused the request: {code}: {message}")]
    Gateway { code: ErrorCode, message: String },
    /// A malformed request.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The shared session store (`[session] database_url`) could not be
    /// read or written.
    #[error("sessions unavailable: {0}")]
    SessionsUnavailable(String),
    /// Something the console itself got wrong.
    #[error("internal: {0}")]
    Internal(String),
}

impl ConsoleError {
    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Csrf => "CSRF_MISMATCH",
            Self::NotSignedIn => "NOT_SIGNED_IN",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::SignInRevoked(_) => "SIGN_IN_REVOKED",
            Self::IdentityProvider(_) => "IDENTITY_PROVIDER_UNAVAILABLE",
            Self::SignInRefused(_) => "SIGN_IN_REFUSED",
            Self::GatewayUnavailable(_) => "GATEWAY_UNAVAILABLE",
            Self::Gateway { code, .. } => code.as_str(),
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::SessionsUnavailable(_) => "SESSIONS_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotSignedIn | Self::SessionExpired | Self::SignInRevoked(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::IdentityProvider(_) | Self::GatewayUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::SignInRefused(_) => StatusCode::FORBIDDEN,
            Self::Gateway { code, .. } => {
                StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::SessionsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message ID of the translations shown to the caseworker.
    pub fn message_id(&self) -> &'static str {
        match self {
            Self::Csrf => "error-csrf",
            Self::NotSignedIn => "error-not-signed-in",
            Self::SessionExpired => "error-session-expired",
            Self::SignInRevoked(_) => "error-sign-in-revoked",
            Self::IdentityProvider(_) => "error-identity-provider",
            Self::SignInRefused(_) => "error-sign-in-refused",
            Self::GatewayUnavailable(_) => "error-gateway-unavailable",
            // The owner's log could not record the access: nothing was
            // shown, and saying so plainly tells the caseworker to retry.
            Self::Gateway {
                code: exchange_schema::ErrorCode::AuditUnavailable,
                ..
            } => "error-audit-unavailable",
            Self::Gateway { .. } => "error-gateway-refused",
            Self::BadRequest(_) => "error-bad-request",
            Self::SessionsUnavailable(_) => "error-sessions-unavailable",
            Self::Internal(_) => "error-internal",
        }
    }
}

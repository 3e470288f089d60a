//! Errors: [`TrustError`] for loading the federation and the development
//! identity provider, [`AuthError`] for a rejected bearer token.
//!
//! An [`AuthError`] has a stable [`AuthError::reason_code`] for audit logs and
//! metrics. Its messages never contain token contents; the only values taken
//! from a rejected token are the *unverified* claims in [`UnverifiedClaims`],
//! bounded and sanitised, for the audit entry of the denial.

use std::path::PathBuf;

use exchange_schema::ErrorCode;

use crate::keys::KeyError;

/// Why the federation file, a key, or the development identity provider
/// could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid federation file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("federation file, field `{field}`: {message}")]
    Federation {
        field: &'static str,
        message: String,
    },
    #[error("agency `{agency}`, field `{field}`: {message}")]
    Agency {
        /// The agency ID as written, or `agency[<index>]` when the ID itself
        /// is missing or invalid.
        agency: String,
        field: String,
        message: String,
    },
    #[error("agency `{agency}`, field `{field}`: {source}")]
    Key {
        agency: String,
        field: String,
        #[source]
        source: KeyError,
    },
    #[error("agency ID `{agency}` is listed more than once")]
    DuplicateAgency { agency: String },
    #[error("issuer `{issuer}` is used by both agency `{first}` and agency `{second}`")]
    DuplicateIssuer {
        issuer: String,
        first: String,
        second: String,
    },
    #[error("invalid verifier configuration: {0}")]
    Config(String),
    #[error("development key {path}: {message}")]
    DevKey { path: PathBuf, message: String },
    #[error(transparent)]
    KeyMaterial(#[from] KeyError),
    #[error("cannot sign token: {0}")]
    Signing(String),
}

/// Longest value kept from an unverified claim.
const MAX_CLAIMED_LEN: usize = 64;

/// Values read from a rejected token **without verification**: whoever made
/// the token chose them. For the audit entry of a denial only; never use them
/// for a decision. Each is at most 64 printable ASCII characters (anything
/// else is replaced by `?`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnverifiedClaims {
    pub(crate) agency: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) issuer: Option<String>,
}

impl UnverifiedClaims {
    pub(crate) fn sanitize(raw: &str) -> String {
        raw.chars()
            .take(MAX_CLAIMED_LEN)
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect()
    }

    /// Reads `agency`, `sub` and `iss` from a decoded payload, best effort.
    pub(crate) fn from_payload(payload: &[u8]) -> Self {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(payload) else {
            return Self::default();
        };
        let get = |name: &str| map.get(name).and_then(|v| v.as_str()).map(Self::sanitize);
        Self {
            agency: get("agency"),
            user: get("sub"),
            issuer: get("iss"),
        }
    }
}

/// Why a bearer token was rejected. Every variant maps to one stable
/// [`reason_code`](AuthError::reason_code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    Missing,
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the bearer token is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the token's signature algorithm is not allowed (only EdDSA, ES256 and RS256 are)")]
    AlgorithmNotAllowed { claimed: UnverifiedClaims },
    #[error("the token's issuer is not an agency of this federation")]
    UnknownIssuer { claimed: UnverifiedClaims },
    #[error("no key of the token's issuer matches its key ID")]
    UnknownKey { claimed: UnverifiedClaims },
    #[error("the token's signature is invalid")]
    BadSignature { claimed: UnverifiedClaims },
    #[error("the token has expired")]
    Expired { claimed: UnverifiedClaims },
    #[error("the token is not valid yet")]
    NotYetValid { claimed: UnverifiedClaims },
    #[error("the token was not issued for this federation (wrong audience)")]
    WrongAudience { claimed: UnverifiedClaims },
    #[error("the token's agency claim is not its issuer's agency")]
    AgencyMismatch { claimed: UnverifiedClaims },
    #[error("the token's claims are invalid: {detail}")]
    BadClaims {
        detail: &'static str,
        claimed: UnverifiedClaims,
    },
}

impl AuthError {
    /// Every [`Self::reason_code`]: a denial audited with one of these was
    /// refused as `UNAUTHENTICATED`.
    pub const REASON_CODES: [&'static str; 12] = [
        "TOKEN_MISSING",
        "TOKEN_MALFORMED",
        "TOKEN_TOO_LARGE",
        "ALGORITHM_NOT_ALLOWED",
        "UNKNOWN_ISSUER",
        "UNKNOWN_KEY",
        "BAD_SIGNATURE",
        "TOKEN_EXPIRED",
        "TOKEN_NOT_YET_VALID",
        "WRONG_AUDIENCE",
        "AGENCY_MISMATCH",
        "BAD_CLAIMS",
    ];

    /// The stable code for logs, metrics and tests.
    pub const fn reason_code(&self) -> &'static str {
        match self {
            Self::Missing => "TOKEN_MISSING",
            Self::Malformed => "TOKEN_MALFORMED",
            Self::TooLarge { .. } => "TOKEN_TOO_LARGE",
            Self::AlgorithmNotAllowed { .. } => "ALGORITHM_NOT_ALLOWED",
            Self::UnknownIssuer { .. } => "UNKNOWN_ISSUER",
            Self::UnknownKey { .. } => "UNKNOWN_KEY",
            Self::BadSignature { .. } => "BAD_SIGNATURE",
            Self::Expired { .. } => "TOKEN_EXPIRED",
            Self::NotYetValid { .. } => "TOKEN_NOT_YET_VALID",
            Self::WrongAudience { .. } => "WRONG_AUDIENCE",
            Self::AgencyMismatch { .. } => "AGENCY_MISMATCH",
            Self::BadClaims { .. } => "BAD_CLAIMS",
        }
    }

    /// The `extensions.code` a client is given for any rejected token.
    pub const fn error_code(&self) -> ErrorCode {
        ErrorCode::Unauthenticated
    }

    /// UNVERIFIED: the `agency` claim of the rejected token, if it could be
    /// read. For the audit log of the denial only.
    pub fn claimed_agency(&self) -> Option<&str> {
        self.claimed()?.agency.as_deref()
    }

    /// UNVERIFIED: the `sub` claim of the rejected token, if it could be read.
    /// For the audit log of the denial only.
    pub fn claimed_user(&self) -> Option<&str> {
        self.claimed()?.user.as_deref()
    }

    /// UNVERIFIED: the `iss` claim of the rejected token, if it could be read.
    /// For the audit log of the denial only.
    pub fn claimed_issuer(&self) -> Option<&str> {
        self.claimed()?.issuer.as_deref()
    }

    /// The unverified claims, for variants that can carry them.
    pub fn claimed(&self) -> Option<&UnverifiedClaims> {
        match self {
            Self::Missing | Self::Malformed | Self::TooLarge { .. } => None,
            Self::AlgorithmNotAllowed { claimed }
            | Self::UnknownIssuer { claimed }
            | Self::UnknownKey { claimed }
            | Self::BadSignature { claimed }
            | Self::Expired { claimed }
            | Self::NotYetValid { claimed }
            | Self::WrongAudience { claimed }
            | Self::AgencyMismatch { claimed }
            | Self::BadClaims { claimed, .. } => Some(claimed),
        }
    }

    pub(crate) fn with_claimed(mut self, value: UnverifiedClaims) -> Self {
        match &mut self {
            Self::Missing | Self::Malformed | Self::TooLarge { .. } => {}
            Self::AlgorithmNotAllowed { claimed }
            | Self::UnknownIssuer { claimed }
            | Self::UnknownKey { claimed }
            | Self::BadSignature { claimed }
            | Self::Expired { claimed }
            | Self::NotYetValid { claimed }
            | Self::WrongAudience { claimed }
            | Self::AgencyMismatch { claimed }
            | Self::BadClaims { claimed, .. } => *claimed = value,
        }
        self
    }

    pub(crate) fn algorithm_not_allowed() -> Self {
        Self::AlgorithmNotAllowed {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn unknown_issuer() -> Self {
        Self::UnknownIssuer {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn unknown_key() -> Self {
        Self::UnknownKey {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn bad_signature() -> Self {
        Self::BadSignature {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn expired() -> Self {
        Self::Expired {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn not_yet_valid() -> Self {
        Self::NotYetValid {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn wrong_audience() -> Self {
        Self::WrongAudience {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn agency_mismatch() -> Self {
        Self::AgencyMismatch {
            claimed: UnverifiedClaims::default(),
        }
    }
    pub(crate) fn bad_claims(detail: &'static str) -> Self {
        Self::BadClaims {
            detail,
            claimed: UnverifiedClaims::default(),
        }
    }
}

#[cfg(test)]
mod reason_code_tests {
    use super::*;

    #[test]
    fn every_refusal_reason_is_listed() {
        let claimed = UnverifiedClaims::default;
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::TooLarge { limit: 1 },
            AuthError::AlgorithmNotAllowed { claimed: claimed() },
            AuthError::UnknownIssuer { claimed: claimed() },
            AuthError::UnknownKey { claimed: claimed() },
            AuthError::BadSignature { claimed: claimed() },
            AuthError::Expired { claimed: claimed() },
            AuthError::NotYetValid { claimed: claimed() },
            AuthError::WrongAudience { claimed: claimed() },
            AuthError::AgencyMismatch { claimed: claimed() },
            AuthError::BadClaims {
                detail: "x",
                claimed: claimed(),
            },
        ];
        let codes: Vec<&str> = all.iter().map(AuthError::reason_code).collect();
        assert_eq!(codes, AuthError::REASON_CODES);
    }
}

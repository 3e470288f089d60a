//! Stage 1, authenticate: the bearer token (verified with exactly the
//! nodes' rules, [`exchange_trust::TokenVerifier`]), then the declared
//! purpose, the justification and the `Idempotency-Key`, read by the rules
//! every node uses ([`exchange_schema::headers`],
//! [`exchange_schema::IdempotencyKey`]). The token and headers are passed on
//! unchanged for each node to check again.

use axum::http::{HeaderMap, header};
use exchange_schema::{
    IDEMPOTENCY_KEY_HEADER, IdempotencyKey, JUSTIFICATION_HEADER, PURPOSE_HEADER,
};
use exchange_trust::Principal;

use crate::error::RequestError;
use crate::nodes::Forwarded;

use super::Caller;

/// The verified principal of the request's bearer token (its issuer's
/// keys fetched again when it names one not yet known).
pub async fn principal(
    jwks: &exchange_service::jwks::JwksRefresher,
    headers: &HeaderMap,
) -> Result<Principal, RequestError> {
    jwks.verify_authorization(authorization(headers))
        .await
        .map_err(|err| RequestError::Unauthenticated(err.reason_code()))
}

/// The caller: the verified principal and the headers that travel on.
pub fn caller(headers: &HeaderMap, principal: Principal) -> Result<Caller, RequestError> {
    let value = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let bad = |e: exchange_schema::HeaderError| RequestError::BadUserInput(e.to_string());
    let purpose = exchange_schema::headers::purpose(value(PURPOSE_HEADER)).map_err(bad)?;
    let justification =
        exchange_schema::headers::justification(value(JUSTIFICATION_HEADER)).map_err(bad)?;
    let idempotency_key = IdempotencyKey::from_header_values(
        headers
            .get_all(IDEMPOTENCY_KEY_HEADER)
            .iter()
            .map(|v| v.as_bytes()),
    )
    .map_err(|e| RequestError::BadUserInput(e.to_string()))?;
    Ok(Caller {
        forwarded: Forwarded {
            authorization: authorization(headers).unwrap_or_default().to_owned(),
            purpose: purpose.map(|p| p.as_str().to_owned()),
            justification: justification.clone(),
            idempotency_key,
        },
        principal,
        purpose,
        justification,
    })
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

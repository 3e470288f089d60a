//! Bearer-token verification, identical in every node and in the gateway.
//!
//! [`TokenVerifier::verify`] accepts a compact JWS only when, in this order:
//! it is at most [`MAX_TOKEN_BYTES`] and has three base64url parts; its
//! header's `alg` is EdDSA, ES256 or RS256 (checked on the raw header, before
//! the payload is decoded or any key is touched); its `iss` is a member
//! agency's issuer; a key of that issuer (matching `kid` when the token names
//! one) has exactly that algorithm; the signature verifies; `aud` is the
//! federation's; `exp`, `nbf` and `iat` hold with the configured leeway (at
//! most 60 s); `sub` is present; the `agency` claim is the issuer's agency;
//! and `roles` is a non-empty list of known roles.
//!
//! A verified token is remembered (keyed by its SHA-256) until it expires, so
//! a repeat costs a hash and a map lookup instead of a signature check. The
//! expiry (and `nbf`) is checked again on every hit. The federation behind a
//! verifier never changes; to reload it, build a new verifier.

use crate::VerificationKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, AgencyKind, Role};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::{AuthError, TrustError, UnverifiedClaims};
use crate::federation::Federation;
use crate::keys::{MAX_KID_LEN, TokenAlgorithm};

/// Default and largest accepted token size, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest clock-skew leeway a verifier accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// Default number of verified tokens remembered.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Longest accepted `sub`, in bytes.
const MAX_SUB_LEN: usize = 256;
/// Most roles one token may carry.
const MAX_ROLES: usize = 16;

/// Who is asking: the result of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The agency whose identity provider issued the token.
    pub agency: AgencyId,
    /// That agency's kind, from the federation file.
    pub agency_kind: AgencyKind,
    /// The user at that agency (`sub`), as its identity provider names them.
    pub user: String,
    /// The roles asserted by the identity provider; non-empty, no duplicates.
    pub roles: Vec<Role>,
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `exp`.
    pub expires_at: OffsetDateTime,
}

impl Principal {
    /// Whether the token asserted `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Tunables of a [`TokenVerifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Clock-skew allowance for `exp`, `nbf` and `iat`; at most 60 s, whole
    /// seconds. Default 60 s.
    pub leeway: Duration,
    /// Longest accepted token; at most [`MAX_TOKEN_BYTES`]. Default 8 KiB.
    pub max_token_bytes: usize,
    /// How many verified tokens to remember; 0 turns the cache off.
    /// Default 10,000.
    pub cache_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            leeway: MAX_LEEWAY,
            max_token_bytes: MAX_TOKEN_BYTES,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// Checks bearer tokens against a federation. `Send + Sync`: share one in an
/// `Arc` across all requests.
#[derive(Debug)]
pub struct TokenVerifier {
    federation: Arc<Federation>,
    leeway: i64,
    max_token_bytes: usize,
    cache: Mutex<TokenCache>,
    /// Keys fetched from agencies' `jwks_url`s, by agency: they replace
    /// that agency's earlier fetch as a whole (a key the provider dropped
    /// stops verifying), beside the keys the federation file lists.
    fetched: std::sync::RwLock<HashMap<exchange_schema::AgencyId, Vec<VerificationKey>>>,
}

impl TokenVerifier {
    /// A verifier with the default configuration (60 s leeway, 8 KiB tokens,
    /// 10,000 cached tokens).
    pub fn new(federation: impl Into<Arc<Federation>>) -> Self {
        Self::build(federation.into(), &VerifierConfig::default())
    }

    /// A verifier with `config`; rejects a leeway above 60 s or a size limit
    /// above [`MAX_TOKEN_BYTES`].
    pub fn with_config(
        federation: impl Into<Arc<Federation>>,
        config: VerifierConfig,
    ) -> Result<Self, TrustError> {
        if config.leeway > MAX_LEEWAY {
            return Err(TrustError::Config(format!(
                "leeway must be at most {} s",
                MAX_LEEWAY.as_secs()
            )));
        }
        if config.max_token_bytes == 0 || config.max_token_bytes > MAX_TOKEN_BYTES {
            return Err(TrustError::Config(format!(
                "max_token_bytes must be 1 to {MAX_TOKEN_BYTES}"
            )));
        }
        Ok(Self::build(federation.into(), &config))
    }

    fn build(federation: Arc<Federation>, config: &VerifierConfig) -> Self {
        Self {
            federation,
            // At most 60, so the cast cannot truncate.
            leeway: config.leeway.as_secs() as i64,
            max_token_bytes: config.max_token_bytes,
            cache: Mutex::new(TokenCache {
                entries: HashMap::new(),
                capacity: config.cache_capacity,
            }),
            fetched: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// Replaces the keys fetched from `agency`'s `jwks_url`s. Tokens already
    /// verified stay verified until they expire.
    pub fn set_fetched_keys(&self, agency: &exchange_schema::AgencyId, keys: Vec<VerificationKey>) {
        self.fetched
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agency.clone(), keys);
    }

    /// How many keys were fetched for `agency`.
    pub fn fetched_key_count(&self, agency: &exchange_schema::AgencyId) -> usize {
        self.fetched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(agency)
            .map_or(0, Vec::len)
    }

    /// The federation this verifier trusts.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// Verifies a bearer token (without the `Bearer ` prefix) now.
    pub fn verify(&self, bearer: &str) -> Result<Principal, AuthError> {
        self.verify_at(bearer, OffsetDateTime::now_utc())
    }

    /// Verifies the value of an `Authorization` header (see
    /// [`parse_authorization_header`]).
    pub fn verify_authorization(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        self.verify(parse_authorization_header(header)?)
    }

    /// Verifies a bearer token as if the time were `now`.
    pub fn verify_at(&self, bearer: &str, now: OffsetDateTime) -> Result<Principal, AuthError> {
        if bearer.is_empty() {
            return Err(AuthError::Missing);
        }
        if bearer.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge {
                limit: self.max_token_bytes,
            });
        }
        let now = now.unix_timestamp();
        let hash = token_hash(bearer);
        if let Some(hit) = self.cache_lookup(&hash, now) {
            return hit.map_err(|e| e.with_claimed(unverified_claims(bearer)));
        }
        match self.verify_uncached(bearer, now) {
            Ok(verified) => {
                let principal = verified.principal.clone();
                self.cache_insert(hash, verified, now);
                Ok(principal)
            }
            Err(e) => Err(e.with_claimed(unverified_claims(bearer))),
        }
    }

    /// How many verified tokens are remembered right now.
    pub fn cached_tokens(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        // The cache holds only verified principals; a panic elsewhere while
        // holding the lock cannot leave an entry half-written.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache_lookup(&self, hash: &[u8; 32], now: i64) -> Option<Result<Principal, AuthError>> {
        let mut cache = self.lock_cache();
        let entry = cache.entries.get(hash)?;
        match entry.times.check(now, self.leeway) {
            Ok(()) => Some(Ok(entry.principal.clone())),
            Err(e) => {
                if matches!(e, AuthError::Expired { .. }) {
                    cache.entries.remove(hash);
                }
                Some(Err(e))
            }
        }
    }

    fn cache_insert(&self, hash: [u8; 32], verified: Verified, now: i64) {
        let mut cache = self.lock_cache();
        if cache.capacity == 0 {
            return;
        }
        if cache.entries.len() >= cache.capacity {
            let leeway = self.leeway;
            cache.entries.retain(|_, e| !e.times.expired(now, leeway));
            if cache.entries.len() >= cache.capacity {
                let soonest = cache
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.times.exp)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    cache.entries.remove(&k);
                }
            }
        }
        cache.entries.insert(hash, verified);
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Verified, AuthError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        if header_b64.is_empty()
            || payload_b64.is_empty()
            || ![header_b64, payload_b64, signature_b64]
                .iter()
                .all(|p| p.bytes().all(is_base64url))
        {
            return Err(AuthError::Malformed);
        }

        // 1. The raw header, and its algorithm, before anything else.
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AuthError::Malformed)?;
        let header: RawHeader =
            serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed)?;
        let alg = TokenAlgorithm::from_header_name(&header.alg)
            .ok_or_else(AuthError::algorithm_not_allowed)?;
        if header.crit.is_some() {
            // We implement no JWS extension, so we must reject any `crit`.
            return Err(AuthError::Malformed);
        }
        if let Some(kid) = &header.kid
            && (kid.is_empty() || kid.len() > MAX_KID_LEN)
        {
            return Err(AuthError::Malformed);
        }

        // 2. The claims, read (not trusted) to find the issuer.
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::Malformed)?;
        let claims: RawClaims =
            serde_json::from_slice(&payload).map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    AuthError::bad_claims("a claim has the wrong type")
                }
                _ => AuthError::Malformed,
            })?;
        let issuer = claims
            .iss
            .as_deref()
            .ok_or_else(|| AuthError::bad_claims("missing iss"))?;
        let agency = self
            .federation
            .agency_by_issuer(issuer)
            .ok_or_else(AuthError::unknown_issuer)?;

        // 3. The key: chosen by issuer and kid; its algorithm must be alg.
        let fetched = self.fetched.read().unwrap_or_else(|p| p.into_inner());
        let by_kid: Vec<_> = agency
            .keys
            .iter()
            .chain(fetched.get(&agency.id).into_iter().flatten())
            .filter(|k| match (header.kid.as_deref(), k.kid()) {
                (Some(wanted), Some(have)) => wanted == have,
                _ => true,
            })
            .collect();
        if by_kid.is_empty() {
            return Err(AuthError::unknown_key());
        }
        let candidates: Vec<_> = by_kid
            .into_iter()
            .filter(|k| k.algorithm() == alg)
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::algorithm_not_allowed());
        }

        // 4. The signature.
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if signature_b64.is_empty()
            || !candidates
                .iter()
                .any(|k| k.verify(signing_input.as_bytes(), signature_b64))
        {
            return Err(AuthError::bad_signature());
        }

        // 5. The claims, now that the issuer vouches for them.
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => aud == self.federation.audience(),
            Some(Audience::Many(list)) => list.len() == 1 && list[0] == self.federation.audience(),
            None => false,
        };
        if !audience_ok {
            return Err(AuthError::wrong_audience());
        }
        let times = Times {
            exp: claims
                .exp
                .ok_or_else(|| AuthError::bad_claims("missing exp"))?,
            nbf: claims.nbf,
            iat: claims
                .iat
                .ok_or_else(|| AuthError::bad_claims("missing iat"))?,
        };
        times.check(now, self.leeway)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(times.exp)
            .map_err(|_| AuthError::bad_claims("exp out of range"))?;
        let user = claims
            .sub
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUB_LEN && !s.chars().any(char::is_control))
            .ok_or_else(|| AuthError::bad_claims("sub missing or invalid"))?;
        let claimed_agency = claims
            .agency
            .ok_or_else(|| AuthError::bad_claims("missing agency"))?;
        if claimed_agency != agency.id.as_str() {
            return Err(AuthError::agency_mismatch());
        }
        let raw_roles = claims
            .roles
            .ok_or_else(|| AuthError::bad_claims("missing roles"))?;
        if raw_roles.is_empty() || raw_roles.len() > MAX_ROLES {
            return Err(AuthError::bad_claims("roles must list 1 to 16 roles"));
        }
        let mut roles = Vec::with_capacity(raw_roles.len());
        for raw in &raw_roles {
            let role: Role = raw
                .parse()
                .map_err(|_| AuthError::bad_claims("unknown role"))?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }

        Ok(Verified {
            principal: Principal {
                agency: agency.id.clone(),
                agency_kind: agency.kind,
                user,
                roles,
                issuer: agency.issuer.clone(),
                expires_at,
            },
            times,
        })
    }
}

/// Extracts the token from an `Authorization: Bearer <token>` header value.
/// The scheme is case-insensitive; the token must not contain whitespace.
pub fn parse_authorization_header(header: Option<&str>) -> Result<&str, AuthError> {
    let Some(value) = header else {
        return Err(AuthError::Missing);
    };
    // Scheme, spaces and token: anything much longer than a token is refused
    // before it is looked at.
    if value.len() > MAX_TOKEN_BYTES + 64 {
        return Err(AuthError::TooLarge {
            limit: MAX_TOKEN_BYTES,
        });
    }
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(if value.eq_ignore_ascii_case("bearer") {
            AuthError::Missing
        } else {
            AuthError::Malformed
        });
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn token_hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Best effort, for the audit entry of a denial: never used for a decision.
fn unverified_claims(token: &str) -> UnverifiedClaims {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .map(|payload| UnverifiedClaims::from_payload(&payload))
        .unwrap_or_default()
}

/// The JWS header fields we read; others are ignored (no key is ever taken
/// from `jwk`, `jku`, `x5u` or `x5c`). Duplicate fields are an error.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims we read; others are ignored. Duplicate fields are an error.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    agency: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The time claims of a verified token, checked again on every cache hit.
#[derive(Debug, Clone, Copy)]
struct Times {
    exp: i64,
    nbf: Option<i64>,
    iat: i64,
}

impl Times {
    fn expired(&self, now: i64, leeway: i64) -> bool {
        now > self.exp.saturating_add(leeway)
    }

    fn check(&self, now: i64, leeway: i64) -> Result<(), AuthError> {
        if self.expired(now, leeway) {
            return Err(AuthError::expired());
        }
        let not_before = self.nbf.unwrap_or(i64::MIN).max(self.iat);
        if not_before.saturating_sub(leeway) > now {
            return Err(AuthError::not_yet_valid());
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Verified {
    principal: Principal,
    times: Times,
}

#[derive(Debug)]
struct TokenCache {
    entries: HashMap<[u8; 32], Verified>,
    capacity: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_forms() {
        assert_eq!(parse_authorization_header(Some("Bearer abc")), Ok("abc"));
        assert_eq!(parse_authorization_header(Some("bearer  abc")), Ok("abc"));
        assert_eq!(parse_authorization_header(Some("BEARER abc ")), Ok("abc"));
        let code = |h: Option<&str>| parse_authorization_header(h).unwrap_err().reason_code();
        assert_eq!(code(None), "TOKEN_MISSING");
        assert_eq!(code(Some("")), "TOKEN_MISSING");
        assert_eq!(code(Some("Bearer")), "TOKEN_MISSING");
        assert_eq!(code(Some("Bearer   ")), "TOKEN_MISSING");
        assert_eq!(code(Some("Basic dXNlcjpwYXNz")), "TOKEN_MALFORMED");
        assert_eq!(code(Some("abc")), "TOKEN_MALFORMED");
        assert_eq!(code(Some("Bearer a b")), "TOKEN_MALFORMED");
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES * 2));
        assert_eq!(code(Some(&huge)), "TOKEN_TOO_LARGE");
    }

    #[test]
    fn times_with_leeway() {
        let t = Times {
            exp: 1000,
            nbf: Some(500),
            iat: 400,
        };
        assert!(t.check(1060, 60).is_ok());
        assert_eq!(
            t.check(1061, 60).unwrap_err().reason_code(),
            "TOKEN_EXPIRED"
        );
        assert!(t.check(440, 60).is_ok());
        assert_eq!(
            t.check(439, 60).unwrap_err().reason_code(),
            "TOKEN_NOT_YET_VALID"
        );
        let extreme = Times {
            exp: i64::MAX,
            nbf: Some(i64::MIN),
            iat: i64::MIN,
        };
        assert!(extreme.check(0, 60).is_ok());
    }
}

//! Consent codes and PINs: how a survivor proves who they are to the portal.
//!
//! A caseworker of the owning agency issues a code at intake
//! (`issueConsentCode`); it is shown once and handed to the survivor. It has
//! four groups of four characters from an alphabet without look-alikes
//! (`ABCD-EFGH-JKMN-PQRS`): the first group finds the stored credential, the
//! whole code is the secret (about 79 bits). At first sign-in the survivor
//! chooses a PIN. Both are stored only as argon2id hashes, and hashing runs
//! off the async workers. After `max_failed_sign_ins` failures in a row the
//! code is locked for `lockout_minutes`; every sign-in, failed or not, is
//! audited. Unknown codes cost the same argon2 work as known ones.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use exchange_schema::{AuditEvent, AuditKind, Decision, GlobalId};
use time::OffsetDateTime;

use crate::error::NodeError;
use crate::state::NodeState;
use crate::store::portal::{self as store, PortalCredential};

/// Characters of a consent code: no 0/O, 1/I/L, or U/V pairs to confuse.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTWXYZ23456789";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 4;

/// The shortest and longest PIN a survivor may choose.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 6..=12;

/// A consent code in its normal form (`XXXX-XXXX-XXXX-XXXX`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsentCode(String);

impl std::fmt::Debug for ConsentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConsentCode({}-****)", self.locator())
    }
}

impl ConsentCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        let mut bytes = [0u8; GROUPS * GROUP_LEN];
        aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
        // 29 symbols: reject bytes >= 232 (8 * 29) to keep the draw uniform.
        let mut chars = Vec::with_capacity(GROUPS * GROUP_LEN);
        let mut pool = bytes.to_vec();
        while chars.len() < GROUPS * GROUP_LEN {
            if pool.is_empty() {
                let mut more = [0u8; 16];
                aws_lc_rs::rand::fill(&mut more).expect("system random number generator");
                pool.extend_from_slice(&more);
            }
            let b = pool.pop().unwrap_or(0);
            if usize::from(b) < 8 * ALPHABET.len() {
                chars.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
        let text: Vec<String> = chars
            .chunks(GROUP_LEN)
            .map(|g| g.iter().collect())
            .collect();
        Self(text.join("-"))
    }

    /// Reads a code as typed: case, spaces and dashes do not matter.
    pub fn parse(typed: &str) -> Option<Self> {
        let chars: Vec<char> = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if chars.len() != GROUPS * GROUP_LEN
            || !chars
                .iter()
                .all(|c| c.is_ascii() && ALPHABET.contains(&(*c as u8)))
        {
            return None;
        }
        let groups: Vec<String> = chars
            .chunks(GROUP_LEN)
            .map(|g| g.iter().collect())
            .collect();
        Some(Self(groups.join("-")))
    }

    /// The first group, which finds the credential (not secret).
    pub fn locator(&self) -> &str {
        &self.0[..GROUP_LEN]
    }

    /// The code as handed to the survivor.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Checks the form of a chosen PIN.
pub fn valid_pin(pin: &str) -> bool {
    PIN_DIGITS.contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).unwrap_or_default(),
    )
}

/// At most this many argon2 computations run at once: a flood of sign-in
/// attempts queues here instead of taking every core from the federation
/// endpoint.
static ARGON2_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// An argon2id hash (PHC string) of `secret` with a random salt.
pub async fn hash_secret(secret: String) -> Result<String, NodeError> {
    let _permit = ARGON2_PERMITS
        .acquire()
        .await
        .map_err(NodeError::internal)?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
        argon2()
            .hash_password_with_salt(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .map_err(NodeError::internal)?
    .map_err(NodeError::internal)
}

/// Whether `secret` matches an argon2 hash (false for a malformed hash).
pub async fn verify_secret(secret: String, hash: String) -> bool {
    let Ok(_permit) = ARGON2_PERMITS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        argon2()
            .verify_password(secret.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A hash nothing matches, verified against for unknown codes so that they
/// take as long as known ones.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut salt = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut salt);
    argon2()
        .hash_password_with_salt(b"decoy consent code", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Issues a new consent code for a survivor, replacing any earlier code
/// (and its PIN, its lock and its sessions). The caller has authorised the
/// caseworker; the code is returned once and never stored.
pub async fn issue(
    state: &NodeState,
    survivor: &GlobalId,
    issued_by: String,
    event: AuditEvent,
) -> Result<(ConsentCode, OffsetDateTime), NodeError> {
    issue_keyed(state, survivor, issued_by, event, None).await
}

/// [`issue`] under an idempotency key, written in the same transaction
/// (the code itself is never stored in clear, there or anywhere).
pub async fn issue_keyed(
    state: &NodeState,
    survivor: &GlobalId,
    issued_by: String,
    mut event: AuditEvent,
    key: Option<crate::idempotency::FieldKey>,
) -> Result<(ConsentCode, OffsetDateTime), NodeError> {
    let now = exchange_schema::audit::now_millis();
    // Draw until the locator is free (29^4 locators; collisions are rare).
    let mut code = ConsentCode::generate();
    for _ in 0..16 {
        let mut conn = state.db.pool().acquire().await?;
        if !store::locator_taken(&mut conn, code.locator())
            .await
            .map_err(NodeError::internal)?
        {
            break;
        }
        code = ConsentCode::generate();
    }
    let code_hash = hash_secret(code.expose().to_owned()).await?;
    let credential = PortalCredential {
        survivor_id: survivor.local().to_owned(),
        locator: code.locator().to_owned(),
        code_hash,
        pin_hash: None,
        failed_attempts: 0,
        locked_until: None,
        issued_at: now,
        issued_by,
    };
    event.survivor = Some(survivor.clone());
    state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let outcome = crate::idempotency::Outcome::ConsentCode {
                    survivor_id: credential.survivor_id.clone(),
                };
                crate::idempotency::write(key.as_ref(), conn, &outcome).await?;
                crate::changes::require_survivor(conn, &credential.survivor_id).await?;
                store::replace_credential(conn, &credential)
                    .await
                    .map_err(|e| {
                        // Another code took the locator in the meantime.
                        NodeError::Conflict(format!("could not issue a code, try again ({e})"))
                    })?;
                Ok(((), event))
            })
        })
        .await?;
    Ok((code, now))
}

/// What a sign-in attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Code and PIN are right.
    SignedIn {
        survivor_id: String,
        code_issued_at: OffsetDateTime,
        pin_chosen: bool,
    },
    /// Wrong code or PIN (which one is not said).
    Refused,
    /// Too many failures: locked until then.
    Locked(OffsetDateTime),
}

/// The portal's audit event for something the survivor did.
pub fn survivor_event(
    state: &NodeState,
    kind: AuditKind,
    decision: Decision,
    reason: &str,
    survivor_id: Option<&str>,
) -> AuditEvent {
    let mut event = AuditEvent::new(kind, decision, reason);
    event.actor_user = Some("survivor".into());
    event.survivor =
        survivor_id.and_then(|id| GlobalId::new(state.agency.clone(), id.to_owned()).ok());
    event.policy_set = Some(state.policies.set_hash().to_owned());
    event
}

/// Checks a code and PIN, counting failures and locking; audited either way.
pub async fn sign_in(
    state: &NodeState,
    typed_code: &str,
    typed_pin: &str,
    max_failures: u32,
    lockout: time::Duration,
) -> Result<SignInOutcome, NodeError> {
    let code = ConsentCode::parse(typed_code);
    let credential = match &code {
        Some(code) => {
            let mut conn = state.db.pool().acquire().await?;
            store::by_locator(&mut conn, code.locator())
                .await
                .map_err(NodeError::internal)?
        }
        None => None,
    };
    let (Some(code), Some(credential)) = (code, credential) else {
        // Same work as a real check, then a refusal naming no survivor.
        verify_secret(typed_code.to_owned(), DECOY_HASH.clone()).await;
        let event = survivor_event(
            state,
            AuditKind::PortalSignIn,
            Decision::Deny,
            "UNKNOWN_CODE",
            None,
        );
        state.audit.append(event).await?;
        return Ok(SignInOutcome::Refused);
    };
    let now = exchange_schema::audit::now_millis();
    if let Some(until) = credential.locked_until
        && until > now
    {
        let event = survivor_event(
            state,
            AuditKind::PortalSignIn,
            Decision::Deny,
            "LOCKED",
            Some(&credential.survivor_id),
        );
        state.audit.append(event).await?;
        return Ok(SignInOutcome::Locked(until));
    }
    let code_ok = verify_secret(code.expose().to_owned(), credential.code_hash.clone()).await;
    let pin_ok = match &credential.pin_hash {
        // A PIN is chosen after the first sign-in with the code alone.
        None => typed_pin.is_empty(),
        Some(hash) => verify_secret(typed_pin.to_owned(), hash.clone()).await,
    };
    let survivor_id = credential.survivor_id.clone();
    if code_ok && pin_ok {
        let event = survivor_event(
            state,
            AuditKind::PortalSignIn,
            Decision::Permit,
            "SIGNED_IN",
            Some(&survivor_id),
        );
        let id = survivor_id.clone();
        state
            .audit
            .record::<_, crate::error::NodeError, _>(move |conn| {
                Box::pin(async move {
                    store::clear_failures(conn, &id)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok(((), event))
                })
            })
            .await?;
        return Ok(SignInOutcome::SignedIn {
            survivor_id,
            code_issued_at: credential.issued_at,
            pin_chosen: credential.pin_hash.is_some(),
        });
    }
    let id = survivor_id.clone();
    let locked_event = survivor_event(
        state,
        AuditKind::PortalSignIn,
        Decision::Deny,
        "LOCKED_OUT",
        Some(&survivor_id),
    );
    let refused_event = survivor_event(
        state,
        AuditKind::PortalSignIn,
        Decision::Deny,
        "BAD_CREDENTIALS",
        Some(&survivor_id),
    );
    let outcome = state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let failures = store::count_failure(conn, &id)
                    .await
                    .map_err(NodeError::internal)?;
                if failures >= i64::from(max_failures) {
                    let until = now + lockout;
                    store::lock(conn, &id, until)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok((SignInOutcome::Locked(until), locked_event))
                } else {
                    Ok((SignInOutcome::Refused, refused_event))
                }
            })
        })
        .await?;
    Ok(outcome)
}

/// Stores the PIN a survivor chose for a new code; false when this code
/// already has one (or was replaced meanwhile).
pub async fn choose_pin(
    state: &NodeState,
    survivor_id: &str,
    code_issued_at: OffsetDateTime,
    pin: &str,
) -> Result<bool, NodeError> {
    let pin_hash = hash_secret(pin.to_owned()).await?;
    let event = survivor_event(
        state,
        AuditKind::PortalSignIn,
        Decision::Permit,
        "PIN_CHOSEN",
        Some(survivor_id),
    );
    let id = survivor_id.to_owned();
    state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let set = store::set_pin(conn, &id, code_issued_at, &pin_hash)
                    .await
                    .map_err(NodeError::internal)?;
                if !set {
                    return Err(NodeError::Conflict("a PIN was already chosen".into()));
                }
                Ok((true, event))
            })
        })
        .await
        .or_else(|err| match err {
            NodeError::Conflict(_) => Ok(false),
            other => Err(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_parses_back_to_itself() {
        for _ in 0..200 {
            let code = ConsentCode::generate();
            assert_eq!(ConsentCode::parse(code.expose()), Some(code.clone()));
            assert_eq!(code.expose().len(), 19);
        }
    }

    #[test]
    fn a_code_is_read_whatever_the_case_spaces_and_dashes() {
        let code = ConsentCode::parse("abcd efgh-jkmn pqrs").expect("valid");
        assert_eq!(code.expose(), "ABCD-EFGH-JKMN-PQRS");
        assert_eq!(code.locator(), "ABCD");
    }

    #[test]
    fn codes_with_look_alike_or_foreign_characters_are_refused() {
        assert_eq!(ConsentCode::parse("ABCD-EFGH-JKMN-PQR0"), None);
        assert_eq!(ConsentCode::parse("ABCD-EFGH-JKMN-PQRI"), None);
        assert_eq!(ConsentCode::parse("ABCD-EFGH-JKMN"), None);
        assert_eq!(ConsentCode::parse("ÄBCD-EFGH-JKMN-PQRS"), None);
        assert_eq!(ConsentCode::parse(""), None);
    }

    #[test]
    fn the_debug_form_hides_the_secret_part() {
        let code = ConsentCode::parse("ABCD-EFGH-JKMN-PQRS").expect("valid");
        assert_eq!(format!("{code:?}"), "ConsentCode(ABCD-****)");
    }

    #[test]
    fn pins_are_six_to_twelve_digits() {
        assert!(valid_pin("123456"));
        assert!(valid_pin("123456789012"));
        assert!(!valid_pin("12345"));
        assert!(!valid_pin("1234567890123"));
        assert!(!valid_pin("12345a"));
        assert!(!valid_pin("１２３４５６"));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_secret_only() {
        let hash = hash_secret("246810".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret("246810".into(), hash.clone()).await);
        assert!(!verify_secret("246811".into(), hash).await);
        assert!(!verify_secret("x".into(), "not a hash".into()).await);
    }
}

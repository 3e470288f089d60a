//! The audit event, and the hash chain and checkpoints that make a log of
//! them tamper-evident.
//!
//! Every node and the gateway append [`AuditEvent`]s. Entry `n` is hashed
//! with entry `n-1`'s hash ([`chain_hash`]), so editing, deleting or
//! reordering any entry breaks every later link. At intervals the head is
//! signed with the log keeper's Ed25519 key ([`Checkpoint`]), so the keeper
//! cannot rewrite history and recompute the chain without a signature that
//! differs from the ones auditors already collected.
//!
//! An event holds who, what, why and the decision, never record contents.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AgencyId, GlobalId};
use crate::vocabulary::{Category, Purpose, Role, WithheldReason};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum AuditKind {
    /// A survivor's record was read; lists categories disclosed and withheld.
    Disclosure,
    /// A request was refused (authentication failures included).
    Denial,
    SurvivorRegistered,
    SurvivorUpdated,
    ConsentGranted,
    ConsentRevoked,
    ReferralCreated,
    ReferralStatusChanged,
    /// Someone read this log.
    AuditRead,
    /// A federated operation passed through the gateway.
    FederatedOperation,
    /// A survivor signed in to the consent portal, or failed to.
    PortalSignIn,
    /// A new consent code was issued for a survivor.
    ConsentCodeIssued,
    /// A stored record was rewritten into a newer form at start-up (a data
    /// upgrade such as the coded intake); `reason` names the upgrade.
    RecordUpgraded,
    /// A case note was appended: `reason` is `NOTE:<category>` or, for a
    /// correction, `CORRECTION:<category>` (the explanation names the note
    /// corrected); `subject` the note. Never its text.
    CaseNoteAdded,
    /// A service was recorded, or its status changed (`reason` the step).
    ServiceRecorded,
    /// A follow-up was scheduled, or closed (`reason` the step).
    FollowUpRecorded,
    /// The caseworkers assigned to a case were replaced.
    CaseworkersAssigned,
    /// A new version of a survivor's care plan was proposed (`reason`
    /// `VERSION:<n>`).
    CarePlanProposed,
    /// The survivor agreed to a care plan version (`reason` the method:
    /// `PORTAL`, `WITNESSED_VERBAL` or `WITNESSED_WRITTEN`).
    CarePlanAgreed,
    /// The survivor asked for a change to a care plan version (in the
    /// portal; the request's text is kept with the plan, not here).
    CarePlanChangeRequested,
    /// An action of a care plan moved on (`reason` the step).
    CarePlanActionUpdated,
    /// A step of a case transfer (`reason` `STARTED`, `RECEIVED`,
    /// `COMPLETED` or `ABORTED`; `subject` the transfer; the explanation
    /// names the other agency and the survivor's consent). The sending node
    /// writes STARTED and then COMPLETED or ABORTED, the receiving node
    /// RECEIVED.
    CaseTransfer,
    /// The gateway delivered a notification (kind and IDs only) to a
    /// subscriber (`reason` `SUBSCRIPTION`; `subject` the notification).
    NotificationDelivered,
    /// A node's attempt to deliver a notification to an agency's webhook
    /// (`reason` `DELIVERED`, `RETRY`, `DEAD_LETTER`, or `REQUEUED` when a
    /// supervisor sends a dead letter again; `subject` the notification).
    WebhookDelivery,
    /// Parts of a survivor's record were erased by destroying their data
    /// keys (`reason` the retention rule, or `REQUEST` for an erasure asked
    /// for; the explanation lists the parts). Never any contents.
    RecordErased,
    /// A legal hold on a survivor's record was placed or lifted (`reason`
    /// `PLACED` or `LIFTED`; `subject` the hold). The hold's reason is kept
    /// with the record, sealed, not here.
    LegalHold,
    /// A survivor's request to correct or erase their record was asked for
    /// or answered (`reason` `ASKED:<kind>`, `DONE:<kind>` or
    /// `REFUSED:<kind>`; `subject` the request). The survivor's words and
    /// the answer are kept with the record, sealed, not here.
    RightsRequest,
    /// A node counted its records for the federation's statistics
    /// (`reason` the period; the explanation names the tables). Counts
    /// only; no survivor is named.
    StatisticsCounted,
    /// The log's signing key was rotated (`reason` `ROTATED`; `subject` the
    /// new public key, hex): the checkpoint at this entry, signed by the
    /// old key, announces the new one.
    SigningKeyRotated,
    /// The agency that holds a survivor's record closed their case or
    /// opened it again (`reason` `CLOSED:<closure reason>` or `REOPENED`).
    CaseStatusChanged,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disclosure => "DISCLOSURE",
            Self::Denial => "DENIAL",
            Self::SurvivorRegistered => "SURVIVOR_REGISTERED",
            Self::SurvivorUpdated => "SURVIVOR_UPDATED",
            Self::ConsentGranted => "CONSENT_GRANTED",
            Self::ConsentRevoked => "CONSENT_REVOKED",
            Self::ReferralCreated => "REFERRAL_CREATED",
            Self::ReferralStatusChanged => "REFERRAL_STATUS_CHANGED",
            Self::AuditRead => "AUDIT_READ",
            Self::FederatedOperation => "FEDERATED_OPERATION",
            Self::PortalSignIn => "PORTAL_SIGN_IN",
            Self::ConsentCodeIssued => "CONSENT_CODE_ISSUED",
            Self::RecordUpgraded => "RECORD_UPGRADED",
            Self::CaseNoteAdded => "CASE_NOTE_ADDED",
            Self::ServiceRecorded => "SERVICE_RECORDED",
            Self::FollowUpRecorded => "FOLLOW_UP_RECORDED",
            Self::CaseworkersAssigned => "CASEWORKERS_ASSIGNED",
            Self::CarePlanProposed => "CARE_PLAN_PROPOSED",
            Self::CarePlanAgreed => "CARE_PLAN_AGREED",
            Self::CarePlanChangeRequested => "CARE_PLAN_CHANGE_REQUESTED",
            Self::CarePlanActionUpdated => "CARE_PLAN_ACTION_UPDATED",
            Self::CaseTransfer => "CASE_TRANSFER",
            Self::NotificationDelivered => "NOTIFICATION_DELIVERED",
            Self::WebhookDelivery => "WEBHOOK_DELIVERY",
            Self::RecordErased => "RECORD_ERASED",
            Self::LegalHold => "LEGAL_HOLD",
            Self::RightsRequest => "RIGHTS_REQUEST",
            Self::StatisticsCounted => "STATISTICS_COUNTED",
            Self::SigningKeyRotated => "SIGNING_KEY_ROTATED",
            Self::CaseStatusChanged => "CASE_STATUS_CHANGED",
        }
    }
}

/// The outcome recorded with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    Permit,
    Deny,
}

/// A category withheld from a disclosure, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Withheld {
    pub category: Category,
    pub reason: WithheldReason,
}

/// One audit event. Field order is part of the hash: never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    /// The agency of the requester, if it could be established.
    pub actor_agency: Option<AgencyId>,
    /// The requester's user ID at their agency (`sub`), if established.
    pub actor_user: Option<String>,
    pub actor_roles: Vec<Role>,
    /// The survivor whose record was concerned.
    pub survivor: Option<GlobalId>,
    /// Another record concerned (a referral or a consent grant).
    pub subject: Option<String>,
    pub disclosed: Vec<Category>,
    pub withheld: Vec<Withheld>,
    pub purpose: Option<Purpose>,
    /// The written justification of a break-glass request.
    pub justification: Option<String>,
    pub decision: Decision,
    /// A stable reason code (`OWNER`, `GRANT`, `NO_GRANT`, `TOKEN_EXPIRED`, ...).
    pub reason: String,
    /// The full explanation: which policies and grants decided it.
    pub explanation: Option<String>,
    /// The hash of the policy set that made the decision.
    pub policy_set: Option<String>,
    /// Marks a break-glass access for mandatory review.
    pub break_glass: bool,
    /// W3C trace ID of the request.
    pub trace_id: Option<String>,
}

impl AuditEvent {
    /// An event with the given kind, decision and reason and nothing else.
    pub fn new(kind: AuditKind, decision: Decision, reason: impl Into<String>) -> Self {
        Self {
            at: now_millis(),
            kind,
            actor_agency: None,
            actor_user: None,
            actor_roles: Vec::new(),
            survivor: None,
            subject: None,
            disclosed: Vec::new(),
            withheld: Vec::new(),
            purpose: None,
            justification: None,
            decision,
            reason: reason.into(),
            explanation: None,
            policy_set: None,
            break_glass: false,
            trace_id: None,
        }
    }

    /// The canonical bytes hashed into the chain.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an audit event always serializes")
    }
}

/// The current time truncated to milliseconds, as stored.
pub fn now_millis() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now)
}

/// A 32-byte SHA-256 chain hash.
pub type ChainHash = [u8; 32];

/// The hash before the first entry.
pub const GENESIS: ChainHash = [0u8; 32];

/// `SHA-256` of an event's canonical bytes. The chain hashes this digest,
/// not the event itself, so an export can leave out entries an auditor did
/// not ask for (keeping only their digests) and still be verified whole.
pub fn event_digest(event: &AuditEvent) -> ChainHash {
    sha256(&[&event.canonical_bytes()])
}

/// `SHA-256("exchange-audit-v1" || prev || seq (u64 BE) || event digest)`.
pub fn chain_hash(prev: &ChainHash, seq: u64, digest: &ChainHash) -> ChainHash {
    sha256(&[b"exchange-audit-v1", prev, &seq.to_be_bytes(), digest])
}

/// The chain hash of an event at `seq` after `prev`.
pub fn chain_hash_event(prev: &ChainHash, seq: u64, event: &AuditEvent) -> ChainHash {
    chain_hash(prev, seq, &event_digest(event))
}

fn sha256(parts: &[&[u8]]) -> ChainHash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(ctx.finish().as_ref());
    hash
}

/// A chained entry as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1-based position in the log; consecutive.
    pub seq: u64,
    pub event: AuditEvent,
    /// Hex of the previous entry's hash.
    pub prev_hash: String,
    /// Hex of this entry's hash.
    pub hash: String,
}

/// A signed statement by a log keeper: "my log's entry `seq` has hash `head`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The agency (or gateway) whose log this is.
    pub log_id: String,
    pub seq: u64,
    /// Hex of the chain hash at `seq`.
    pub head: String,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    /// Hex of the signer's Ed25519 public key.
    pub public_key: String,
    /// Hex of the Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
    /// A key rotation: hex of the public key that signs this log's
    /// checkpoints from the next one on, announced here under the signature
    /// of the key it replaces. Verifiers and collectors follow the chain of
    /// keys from the one they pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_key: Option<String>,
}

/// Why a checkpoint did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint at seq {0} is not hex-encoded correctly")]
    Encoding(u64),
    #[error("checkpoint at seq {0} has a bad signature")]
    BadSignature(u64),
    #[error("checkpoint at seq {0} was signed by a key other than the expected one")]
    UnexpectedKey(u64),
}

impl Checkpoint {
    fn message(
        log_id: &str,
        seq: u64,
        head: &str,
        signed_at: OffsetDateTime,
        next_key: Option<&str>,
    ) -> Vec<u8> {
        let at = signed_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        match next_key {
            None => format!("exchange-checkpoint-v1\n{log_id}\n{seq}\n{head}\n{at}").into_bytes(),
            Some(next) => {
                format!("exchange-checkpoint-v2\n{log_id}\n{seq}\n{head}\n{at}\nnext-key:{next}")
                    .into_bytes()
            }
        }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        Self::message(
            &self.log_id,
            self.seq,
            &self.head,
            self.signed_at,
            self.next_key.as_deref(),
        )
    }

    /// A key rotation's checkpoint: the head at `seq`, signed by the
    /// retiring `key`, announcing `next_key` (hex) as the log's key from
    /// now on.
    pub fn sign_handover(
        key: &Ed25519KeyPair,
        log_id: &str,
        seq: u64,
        head: &ChainHash,
        next_key: &str,
    ) -> Self {
        Self::signed(key, log_id, seq, head, Some(next_key.to_ascii_lowercase()))
    }

    /// Signs the head of a log.
    pub fn sign(key: &Ed25519KeyPair, log_id: &str, seq: u64, head: &ChainHash) -> Self {
        Self::signed(key, log_id, seq, head, None)
    }

    fn signed(
        key: &Ed25519KeyPair,
        log_id: &str,
        seq: u64,
        head: &ChainHash,
        next_key: Option<String>,
    ) -> Self {
        let head = hex::encode(head);
        let signed_at = now_millis();
        let sig = key.sign(&Self::message(
            log_id,
            seq,
            &head,
            signed_at,
            next_key.as_deref(),
        ));
        Self {
            log_id: log_id.to_owned(),
            seq,
            head,
            signed_at,
            public_key: hex::encode(key.public_key().as_ref()),
            signature: hex::encode(sig.as_ref()),
            next_key,
        }
    }

    /// Verifies the signature, and that it was made by `expected_key` (hex)
    /// when one is given.
    pub fn verify(&self, expected_key: Option<&str>) -> Result<(), CheckpointError> {
        if let Some(expected) = expected_key
            && !expected.eq_ignore_ascii_case(&self.public_key)
        {
            return Err(CheckpointError::UnexpectedKey(self.seq));
        }
        let key = hex::decode(&self.public_key).map_err(|_| CheckpointError::Encoding(self.seq))?;
        let sig = hex::decode(&self.signature).map_err(|_| CheckpointError::Encoding(self.seq))?;
        UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(&self.signed_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature(self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    fn new_key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let event = AuditEvent::new(AuditKind::Disclosure, Decision::Permit, "GRANT");
        let base = chain_hash_event(&GENESIS, 1, &event);
        let mut edited = event.clone();
        edited.reason = "OWNER".into();
        assert_ne!(base, chain_hash_event(&GENESIS, 1, &edited));
        assert_ne!(base, chain_hash_event(&GENESIS, 2, &event));
        assert_ne!(base, chain_hash_event(&[1; 32], 1, &event));
    }

    #[test]
    fn a_handover_signature_covers_the_key_it_hands_over_to() {
        let (old, new, other) = (new_key(), new_key(), new_key());
        let next = hex::encode(new.public_key().as_ref());
        let handover = Checkpoint::sign_handover(&old, "shelter-north", 7, &[5; 32], &next);
        let old_hex = hex::encode(old.public_key().as_ref());
        handover.verify(Some(&old_hex)).unwrap();
        let mut swapped = handover.clone();
        swapped.next_key = Some(hex::encode(other.public_key().as_ref()));
        assert_eq!(
            swapped.verify(Some(&old_hex)),
            Err(CheckpointError::BadSignature(7))
        );
        let mut dropped = handover;
        dropped.next_key = None;
        assert_eq!(
            dropped.verify(Some(&old_hex)),
            Err(CheckpointError::BadSignature(7))
        );
    }

    #[test]
    fn checkpoint_signature_covers_every_field() {
        let key = new_key();
        let cp = Checkpoint::sign(&key, "shelter-north", 7, &[9; 32]);
        cp.verify(Some(&cp.public_key)).unwrap();
        let mut forged = cp.clone();
        forged.seq = 8;
        assert_eq!(forged.verify(None), Err(CheckpointError::BadSignature(8)));
        let other = Checkpoint::sign(&new_key(), "shelter-north", 7, &[9; 32]);
        assert_eq!(
            other.verify(Some(&cp.public_key)),
            Err(CheckpointError::UnexpectedKey(7))
        );
    }
}

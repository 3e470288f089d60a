//! Consent receipts: what a survivor takes away from each grant and each
//! revocation, signed with the node's Ed25519 key.
//!
//! The fields follow ISO/IEC TS 27560 (consent record information
//! structure) and the Kantara Initiative consent receipt: who the PII
//! principal is, who controls the data, who receives it, which categories,
//! for which purposes, from when until when, how consent was collected, and
//! whether it was given or withdrawn. The signature covers the domain tag
//! `exchange-consent-receipt-v1\n` followed by the receipt's JSON exactly as
//! this module serialises it; verification parses the receipt strictly
//! (unknown fields are refused) and serialises it again, so nothing can be
//! added to a receipt without breaking its signature.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use exchange_schema::{Category, ConsentMethod, Purpose};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the receipt is written in; bump on any change of the fields.
pub const RECEIPT_VERSION: &str = "exchange-consent-receipt/1";
const SIGNING_TAG: &[u8] = b"exchange-consent-receipt-v1\n";

/// Whether consent was given or withdrawn (ISO/IEC TS 27560 "event").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentEvent {
    Given,
    Withdrawn,
}

impl ConsentEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "GIVEN",
            Self::Withdrawn => "WITHDRAWN",
        }
    }
}

/// An organisation named in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The agency ID in the federation.
    pub id: String,
    pub name: String,
}

/// The receipt itself, without its signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentReceipt {
    /// [`RECEIPT_VERSION`].
    pub version: String,
    /// Unique ID of this receipt.
    pub receipt_id: String,
    /// When consent was given or withdrawn.
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    pub event: ConsentEvent,
    /// The consent record (grant) this receipt is about: a global ID.
    pub consent_record_id: String,
    /// The survivor, by global ID (never by name).
    pub pii_principal_id: String,
    /// The agency that holds the record and issued this receipt.
    pub pii_controller: Party,
    /// The agency allowed to see the categories.
    pub recipient: Party,
    pub pii_categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// How consent was collected: the portal or a witnessed consent.
    pub collection_method: ConsentMethod,
    /// Where the survivor can see and withdraw it.
    pub withdrawal_method: String,
    /// The policy set (hash) in force when the receipt was issued.
    pub policy_set: String,
}

/// The node's signature over a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptSignature {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// Hex of the node's public key (the key that signs its audit
    /// checkpoints).
    pub public_key: String,
    /// Hex of the signature.
    pub value: String,
}

/// A receipt with its signature: what the survivor downloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub receipt: ConsentReceipt,
    pub signature: ReceiptSignature,
}

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("RECEIPT_MALFORMED: not a consent receipt: {0}")]
    Malformed(String),
    #[error("RECEIPT_UNSUPPORTED: unsupported receipt version {0:?} or algorithm {1:?}")]
    Unsupported(String, String),
    #[error(
        "RECEIPT_BAD_SIGNATURE: the signature does not match the receipt (it was altered or signed by another key)"
    )]
    BadSignature,
    #[error("RECEIPT_UNEXPECTED_KEY: signed by key {found}, not by the expected key {expected}")]
    UnexpectedKey { found: String, expected: String },
}

fn signed_message(receipt: &ConsentReceipt) -> Vec<u8> {
    let mut message = SIGNING_TAG.to_vec();
    // Serialising a struct of strings, lists and enums cannot fail.
    message.extend(serde_json::to_vec(receipt).unwrap_or_default());
    message
}

impl SignedReceipt {
    /// Signs `receipt` with the node's key.
    pub fn sign(receipt: ConsentReceipt, key: &Ed25519KeyPair) -> Self {
        let signature = key.sign(&signed_message(&receipt));
        Self {
            signature: ReceiptSignature {
                algorithm: "Ed25519".into(),
                public_key: hex::encode(key.public_key().as_ref()),
                value: hex::encode(signature.as_ref()),
            },
            receipt,
        }
    }

    /// Parses a downloaded receipt strictly.
    pub fn parse(json: &str) -> Result<Self, ReceiptError> {
        serde_json::from_str(json).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// Checks the signature, and that it was made by `expected_key` (hex)
    /// when one is given.
    pub fn verify(&self, expected_key: Option<&str>) -> Result<(), ReceiptError> {
        if self.receipt.version != RECEIPT_VERSION || self.signature.algorithm != "Ed25519" {
            return Err(ReceiptError::Unsupported(
                self.receipt.version.clone(),
                self.signature.algorithm.clone(),
            ));
        }
        if let Some(expected) = expected_key
            && !expected
                .trim()
                .eq_ignore_ascii_case(&self.signature.public_key)
        {
            return Err(ReceiptError::UnexpectedKey {
                found: self.signature.public_key.clone(),
                expected: expected.trim().to_owned(),
            });
        }
        let key = hex::decode(&self.signature.public_key)
            .map_err(|_| ReceiptError::Malformed("publicKey is not hex".into()))?;
        let value = hex::decode(&self.signature.value)
            .map_err(|_| ReceiptError::Malformed("signature value is not hex".into()))?;
        UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(&signed_message(&self.receipt), &value)
            .map_err(|_| ReceiptError::BadSignature)
    }

    /// Pretty JSON, as downloaded.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The signed receipt for a grant being given or withdrawn at `at`, ready
/// to store in the same transaction as the change.
pub fn for_grant(
    state: &crate::state::NodeState,
    grant: &crate::store::grants::ConsentGrantRecord,
    event: ConsentEvent,
    at: OffsetDateTime,
) -> crate::store::portal::StoredReceipt {
    let name_of = |id: &exchange_schema::AgencyId| {
        state
            .federation
            .agency(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone())
    };
    let receipt = ConsentReceipt {
        version: RECEIPT_VERSION.into(),
        receipt_id: crate::store::new_local_id(),
        event_time: at,
        event,
        consent_record_id: format!("{}:{}", state.agency, grant.id),
        pii_principal_id: format!("{}:{}", state.agency, grant.survivor_id),
        pii_controller: Party {
            id: state.agency.to_string(),
            name: name_of(&state.agency),
        },
        recipient: Party {
            id: grant.grantee.to_string(),
            name: name_of(&grant.grantee),
        },
        pii_categories: grant.categories.clone(),
        purposes: grant.purposes.clone(),
        valid_from: grant.valid_from,
        valid_until: grant.valid_until,
        collection_method: grant.method,
        withdrawal_method: format!(
            "In the consent portal of {}, or by asking its staff",
            name_of(&state.agency)
        ),
        policy_set: state.policies.set_hash().to_owned(),
    };
    let signed = SignedReceipt::sign(receipt, &state.node_key);
    crate::store::portal::StoredReceipt {
        id: signed.receipt.receipt_id.clone(),
        survivor_id: grant.survivor_id.clone(),
        grant_id: grant.id.clone(),
        event: event.as_str().to_owned(),
        created_at: at,
        receipt: signed.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key")
    }

    fn receipt() -> ConsentReceipt {
        ConsentReceipt {
            version: RECEIPT_VERSION.into(),
            receipt_id: "r1".into(),
            event_time: OffsetDateTime::UNIX_EPOCH,
            event: ConsentEvent::Given,
            consent_record_id: "shelter-north:g1".into(),
            pii_principal_id: "shelter-north:s1".into(),
            pii_controller: Party {
                id: "shelter-north".into(),
                name: "North Shelter".into(),
            },
            recipient: Party {
                id: "legal-aid".into(),
                name: "Legal Aid".into(),
            },
            pii_categories: vec![Category::Legal],
            purposes: vec![Purpose::LegalAssistance],
            valid_from: OffsetDateTime::UNIX_EPOCH,
            valid_until: None,
            collection_method: ConsentMethod::Portal,
            withdrawal_method: "portal".into(),
            policy_set: "abc".into(),
        }
    }

    #[test]
    fn a_signed_receipt_verifies_after_a_round_trip_through_json() {
        let key = key();
        let signed = SignedReceipt::sign(receipt(), &key);
        let parsed = SignedReceipt::parse(&signed.to_json()).expect("parses");
        let own = hex::encode(key.public_key().as_ref());
        assert_eq!(parsed.verify(Some(&own)), Ok(()));
    }

    #[test]
    fn an_altered_receipt_fails_with_bad_signature() {
        let signed = SignedReceipt::sign(receipt(), &key());
        let json = signed
            .to_json()
            .replace("LEGAL_ASSISTANCE", "INVESTIGATION");
        let parsed = SignedReceipt::parse(&json).expect("still a receipt");
        assert_eq!(parsed.verify(None), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn a_receipt_signed_by_another_key_is_refused_when_the_key_is_pinned() {
        let signed = SignedReceipt::sign(receipt(), &key());
        let other = hex::encode(key().public_key().as_ref());
        assert!(matches!(
            signed.verify(Some(&other)),
            Err(ReceiptError::UnexpectedKey { .. })
        ));
    }

    #[test]
    fn an_added_field_makes_the_receipt_malformed() {
        let signed = SignedReceipt::sign(receipt(), &key());
        let json = signed
            .to_json()
            .replacen("\"version\"", "\"extra\": 1, \"version\"", 1);
        assert!(matches!(
            SignedReceipt::parse(&json),
            Err(ReceiptError::Malformed(_))
        ));
    }
}

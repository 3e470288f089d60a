//! Agency IDs and global record IDs.
//!
//! A global ID is `<agency>:<local id>`: the agency part names the node that
//! owns the record so any request can be routed to it. Clients treat it as
//! opaque; the gateway and nodes parse it with [`GlobalId::parse`], which
//! rejects anything that is not exactly that shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an ID was rejected. Never echoes more than a bounded prefix of input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "agency ID must be 2 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidAgency,
    #[error("global ID must have the form <agency>:<local id>")]
    MissingSeparator,
    #[error("local ID must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidLocal,
}

/// The identifier of an agency in the federation, such as `shelter-north`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyId(String);

impl AgencyId {
    /// Parses an agency ID: 2-40 of `[a-z0-9-]`, no leading or trailing `-`.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok_len = (2..=40).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_edges = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_len && ok_chars && ok_edges {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::InvalidAgency)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgencyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AgencyId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AgencyId> for String {
    fn from(value: AgencyId) -> Self {
        value.0
    }
}

/// What kind of record a global ID names; used only for messages and routing
/// decisions that depend on the record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Survivor,
    Referral,
    ConsentGrant,
}

/// A record's global ID: the owning agency and the record's local ID there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GlobalId {
    agency: AgencyId,
    local: String,
}

impl GlobalId {
    pub fn new(agency: AgencyId, local: impl Into<String>) -> Result<Self, IdError> {
        let local = local.into();
        check_local(&local)?;
        Ok(Self { agency, local })
    }

    /// Parses `<agency>:<local id>`.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let (agency, local) = raw.split_once(':').ok_or(IdError::MissingSeparator)?;
        let agency = AgencyId::parse(agency)?;
        check_local(local)?;
        Ok(Self {
            agency,
            local: local.to_owned(),
        })
    }

    /// The agency whose node owns the record.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// The record's ID inside its owner's node.
    pub fn local(&self) -> &str {
        &self.local
    }
}

fn check_local(local: &str) -> Result<(), IdError> {
    let ok_len = (1..=64).contains(&local.len());
    let ok_chars = local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(IdError::InvalidLocal)
    }
}

impl fmt::Display for GlobalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agency, self.local)
    }
}

impl FromStr for GlobalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for GlobalId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GlobalId> for String {
    fn from(value: GlobalId) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_well_formed_global_id() {
        let id = GlobalId::parse("shelter-north:0192ab-cd_EF").unwrap();
        assert_eq!(id.agency().as_str(), "shelter-north");
        assert_eq!(id.local(), "0192ab-cd_EF");
        assert_eq!(id.to_string(), "shelter-north:0192ab-cd_EF");
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "no-separator",
            ":x",
            "a:x",
            "Shelter:x",
            "shelter:",
            "shelter:x:y",
            "shelter:x'; DROP TABLE survivors;--",
            "-shelter:x",
            "shelter:\u{202e}x",
            "shelter:x\0",
        ] {
            assert!(GlobalId::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(raw in ".{0,120}") {
            if let Ok(id) = GlobalId::parse(&raw) {
                prop_assert_eq!(id.to_string(), raw);
            }
        }
    }
}

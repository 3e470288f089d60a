//! The closed lists the federation agrees on.
//!
//! Each list is a GraphQL enum, a serde enum and a database string at once,
//! with one stable wire name per value (`SCREAMING_SNAKE_CASE`). Values are
//! only ever added; a stored value that no longer parses is an error, never a
//! silent default.

/// A wire name that is not in the list it was read for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {list} value (expected one of: {expected})")]
pub struct VocabularyError {
    pub list: &'static str,
    pub expected: &'static str,
}

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $list:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            async_graphql::Enum, serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] #[graphql(name = $wire)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocabulary::VocabularyError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::vocabulary::VocabularyError {
                        list: $list,
                        expected: concat!($($wire, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// A part of a survivor's record that is shared, or not, as a whole.
    Category, "category" {
        /// Names, date of birth, nationality, gender, languages.
        Identity => "IDENTITY",
        /// Safe contact channel and current location: the most dangerous data.
        Contact => "CONTACT",
        /// Exploitation type, risk level, intake date, needs.
        Case => "CASE",
        /// Medical and psychosocial notes.
        Health => "HEALTH",
        /// Immigration status, proceedings, protection orders.
        Legal => "LEGAL",
    }
}

vocabulary! {
    /// Why a request is made. Every request that can disclose data declares one.
    Purpose, "purpose" {
        /// The owning agency managing its own case.
        CaseManagement => "CASE_MANAGEMENT",
        /// Making, reading or answering a referral.
        Referral => "REFERRAL",
        /// Coordinating services between agencies already serving the survivor.
        ServiceCoordination => "SERVICE_COORDINATION",
        /// Shelter placement and safety planning.
        ShelterPlacement => "SHELTER_PLACEMENT",
        /// Legal advice and representation.
        LegalAssistance => "LEGAL_ASSISTANCE",
        /// Medical and psychosocial care.
        HealthCare => "HEALTH_CARE",
        /// A criminal or labour investigation.
        Investigation => "INVESTIGATION",
        /// Oversight of the access logs.
        Audit => "AUDIT",
        /// Break-glass: the survivor is in danger and cannot be asked.
        Emergency => "EMERGENCY",
        /// Counting records for the federation's published statistics:
        /// counts leave a node, never a survivor's data.
        Statistics => "STATISTICS",
    }
}

vocabulary! {
    /// What an agency user is allowed to do, as asserted by the agency's IdP.
    Role, "role" {
        Caseworker => "CASEWORKER",
        Supervisor => "SUPERVISOR",
        Auditor => "AUDITOR",
        DataProtectionOfficer => "DATA_PROTECTION_OFFICER",
        /// Produces the federation's statistics releases (counts only).
        Statistician => "STATISTICIAN",
    }
}

vocabulary! {
    /// What an agency is; policies give kinds different limits.
    AgencyKind, "agency kind" {
        Shelter => "SHELTER",
        LegalAid => "LEGAL_AID",
        HealthClinic => "HEALTH_CLINIC",
        LabourInspectorate => "LABOUR_INSPECTORATE",
        ChildProtection => "CHILD_PROTECTION",
        LawEnforcement => "LAW_ENFORCEMENT",
        Outreach => "OUTREACH",
        Oversight => "OVERSIGHT",
    }
}

vocabulary! {
    /// Why a category was withheld; what the requester is told.
    WithheldReason, "withheld reason" {
        /// No grant names this agency for this category.
        NoGrant => "NO_GRANT",
        /// The only covering grant has expired.
        GrantExpired => "GRANT_EXPIRED",
        /// The only covering grant is not valid yet.
        GrantNotYetValid => "GRANT_NOT_YET_VALID",
        /// The covering grant was revoked.
        GrantRevoked => "GRANT_REVOKED",
        /// A grant names this agency and category, but not this purpose.
        PurposeNotGranted => "PURPOSE_NOT_GRANTED",
        /// A rule no consent can override forbids it.
        ForbiddenByPolicy => "FORBIDDEN_BY_POLICY",
        /// The category was erased: its retention period ran out, or the
        /// survivor asked for it (the answer says when, and under which rule).
        Erased => "ERASED",
    }
}

vocabulary! {
    /// How a consent was given.
    ConsentMethod, "consent method" {
        /// By the survivor in the consent portal.
        Portal => "PORTAL",
        /// Spoken, witnessed and recorded by a caseworker.
        WitnessedVerbal => "WITNESSED_VERBAL",
        /// Signed on paper, witnessed and recorded by a caseworker.
        WitnessedWritten => "WITNESSED_WRITTEN",
    }
}

vocabulary! {
    /// Where a referral stands.
    ReferralStatus, "referral status" {
        Pending => "PENDING",
        Accepted => "ACCEPTED",
        Declined => "DECLINED",
        Completed => "COMPLETED",
        Withdrawn => "WITHDRAWN",
    }
}

vocabulary! {
    /// The service a referral asks for.
    ServiceKind, "service" {
        Shelter => "SHELTER",
        LegalAid => "LEGAL_AID",
        Medical => "MEDICAL",
        Psychosocial => "PSYCHOSOCIAL",
        Interpretation => "INTERPRETATION",
        Employment => "EMPLOYMENT",
        Education => "EDUCATION",
        Repatriation => "REPATRIATION",
    }
}

vocabulary! {
    /// How soon a referral needs an answer.
    Urgency, "urgency" {
        Routine => "ROUTINE",
        Urgent => "URGENT",
        Emergency => "EMERGENCY",
    }
}

impl ReferralStatus {
    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Declined | Self::Completed | Self::Withdrawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), *c);
        }
        for p in Purpose::ALL {
            assert_eq!(p.as_str().parse::<Purpose>().unwrap(), *p);
        }
        let json = serde_json::to_string(&Purpose::LegalAssistance).unwrap();
        assert_eq!(json, "\"LEGAL_ASSISTANCE\"");
    }

    #[test]
    fn unknown_value_names_the_list() {
        let err = "GOSSIP".parse::<Purpose>().unwrap_err();
        assert_eq!(err.list, "purpose");
        assert!(err.expected.contains("REFERRAL"));
        assert!(!err.to_string().contains("GOSSIP"));
    }
}

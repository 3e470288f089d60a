//! The contents of a survivor's record, one type per data category.
//!
//! Each type is both the GraphQL output object and the input object used to
//! register or update a survivor, and is stored as JSON in its own column, so
//! a category is disclosed or withheld as a whole. [`Validate`] checks input
//! before anything is written: lengths, dates, and text free of control and
//! bidirectional-override characters (which PostgreSQL or a reader's screen
//! would mishandle).

use async_graphql::{Enum, InputObject, SimpleObject};
use exchange_schema::ServiceKind;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// Longest short text field (names, places), in characters.
pub const SHORT_TEXT: usize = 200;
/// Longest note, in characters.
pub const LONG_TEXT: usize = 4000;
/// Most items in a list field.
pub const LIST_ITEMS: usize = 20;

/// Checks input before it is stored.
pub trait Validate {
    fn validate(&self) -> Result<(), NodeError>;
}

/// Rejects text that is too long or holds characters that are never
/// legitimate in a record: NUL and other C0/C1 controls (newline and tab
/// allowed in notes), and bidirectional overrides that can disguise text.
pub fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
    multiline: bool,
) -> Result<(), NodeError> {
    if value.chars().count() > max_chars {
        return Err(NodeError::bad_input(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    let bad = value.chars().any(|c| {
        let allowed_ws = multiline && (c == '\n' || c == '\t');
        (c.is_control() && !allowed_ws)
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    });
    if bad {
        return Err(NodeError::bad_input(format!(
            "{field} contains control or bidirectional-override characters"
        )));
    }
    Ok(())
}

fn check_opt(
    field: &str,
    value: &Option<String>,
    max: usize,
    multiline: bool,
) -> Result<(), NodeError> {
    match value {
        Some(v) => check_text(field, v, max, multiline),
        None => Ok(()),
    }
}

fn check_list(field: &str, values: &[String]) -> Result<(), NodeError> {
    if values.len() > LIST_ITEMS {
        return Err(NodeError::bad_input(format!(
            "{field} has more than {LIST_ITEMS} items"
        )));
    }
    values
        .iter()
        .try_for_each(|v| check_text(field, v, SHORT_TEXT, false))
}

/// Checks an ISO 8601 calendar date (`YYYY-MM-DD`).
pub fn check_date(field: &str, value: &Option<String>) -> Result<(), NodeError> {
    if let Some(v) = value {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(v, format)
            .map_err(|_| NodeError::bad_input(format!("{field} must be a date as YYYY-MM-DD")))?;
    }
    Ok(())
}

/// Names, date of birth, nationality, gender, languages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "IdentityInput")]
pub struct Identity {
    pub given_name: String,
    pub family_name: Option<String>,
    /// A name the survivor prefers to be called by.
    pub preferred_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub gender: Option<String>,
    /// BCP 47 language tags, most preferred first.
    #[graphql(default)]
    pub languages: Vec<String>,
}

impl Validate for Identity {
    fn validate(&self) -> Result<(), NodeError> {
        if self.given_name.trim().is_empty() {
            return Err(NodeError::bad_input("identity.givenName must not be empty"));
        }
        check_text("identity.givenName", &self.given_name, SHORT_TEXT, false)?;
        check_opt("identity.familyName", &self.family_name, SHORT_TEXT, false)?;
        check_opt(
            "identity.preferredName",
            &self.preferred_name,
            SHORT_TEXT,
            false,
        )?;
        check_date("identity.dateOfBirth", &self.date_of_birth)?;
        check_opt("identity.nationality", &self.nationality, SHORT_TEXT, false)?;
        check_opt("identity.gender", &self.gender, SHORT_TEXT, false)?;
        check_list("identity.languages", &self.languages)
    }
}

/// How to reach the survivor safely and where they are. The most dangerous
/// category: in the wrong hands it leads a trafficker to the survivor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "ContactInput")]
pub struct Contact {
    /// The channel agreed with the survivor as safe (for example "through the caseworker only").
    pub safe_channel: Option<String>,
    pub phone: Option<String>,
    /// Where the survivor currently stays.
    pub current_location: Option<String>,
    /// When and how contact is safe.
    pub safety_notes: Option<String>,
}

impl Validate for Contact {
    fn validate(&self) -> Result<(), NodeError> {
        check_opt("contact.safeChannel", &self.safe_channel, SHORT_TEXT, false)?;
        check_opt("contact.phone", &self.phone, 40, false)?;
        check_opt(
            "contact.currentLocation",
            &self.current_location,
            SHORT_TEXT,
            false,
        )?;
        check_opt("contact.safetyNotes", &self.safety_notes, LONG_TEXT, true)
    }
}

/// The assessed risk to the survivor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// Exploitation type, risk, intake date and needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "CaseInput")]
pub struct CaseDetails {
    /// For example "labour", "sexual", "domestic servitude", "forced criminality".
    #[graphql(default)]
    pub exploitation_types: Vec<String>,
    pub risk_level: RiskLevel,
    /// `YYYY-MM-DD`.
    pub intake_date: Option<String>,
    /// Services the survivor needs.
    #[graphql(default)]
    pub needs: Vec<ServiceKind>,
    pub summary: Option<String>,
}

impl Validate for CaseDetails {
    fn validate(&self) -> Result<(), NodeError> {
        check_list("case.exploitationTypes", &self.exploitation_types)?;
        check_date("case.intakeDate", &self.intake_date)?;
        if self.needs.len() > LIST_ITEMS {
            return Err(NodeError::bad_input("case.needs has too many items"));
        }
        check_opt("case.summary", &self.summary, LONG_TEXT, true)
    }
}

/// Medical and psychosocial notes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "HealthInput")]
pub struct HealthNotes {
    pub medical_notes: Option<String>,
    pub psychosocial_notes: Option<String>,
    #[graphql(default)]
    pub allergies: Vec<String>,
}

impl Validate for HealthNotes {
    fn validate(&self) -> Result<(), NodeError> {
        check_opt("health.medicalNotes", &self.medical_notes, LONG_TEXT, true)?;
        check_opt(
            "health.psychosocialNotes",
            &self.psychosocial_notes,
            LONG_TEXT,
            true,
        )?;
        check_list("health.allergies", &self.allergies)
    }
}

/// Immigration status, proceedings, protection orders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "LegalInput")]
pub struct LegalStatus {
    pub immigration_status: Option<String>,
    /// Open proceedings, for example "criminal case against employer".
    #[graphql(default)]
    pub proceedings: Vec<String>,
    #[graphql(default)]
    pub protection_orders: Vec<String>,
    pub notes: Option<String>,
}

impl Validate for LegalStatus {
    fn validate(&self) -> Result<(), NodeError> {
        check_opt(
            "legal.immigrationStatus",
            &self.immigration_status,
            SHORT_TEXT,
            false,
        )?;
        check_list("legal.proceedings", &self.proceedings)?;
        check_list("legal.protectionOrders", &self.protection_orders)?;
        check_opt("legal.notes", &self.notes, LONG_TEXT, true)
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self) -> Result<(), NodeError> {
        self.as_ref().map_or(Ok(()), Validate::validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nul_controls_and_bidi_overrides() {
        assert!(check_text("f", "Ana\0", 10, false).is_err());
        assert!(check_text("f", "Ana\u{202E}", 10, false).is_err());
        assert!(check_text("f", "line\nbreak", 20, false).is_err());
        assert!(check_text("f", "line\nbreak", 20, true).is_ok());
        assert!(check_text("f", "أمينة", 10, false).is_ok());
        assert!(check_text("f", "Robert'); DROP TABLE survivors;--", 100, false).is_ok());
        assert!(check_text("f", &"x".repeat(11), 10, false).is_err());
    }

    #[test]
    fn dates_must_be_calendar_dates() {
        assert!(check_date("d", &Some("2001-02-29".into())).is_err());
        assert!(check_date("d", &Some("2000-02-29".into())).is_ok());
        assert!(check_date("d", &Some("yesterday".into())).is_err());
    }
}

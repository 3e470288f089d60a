//! The contents of a survivor's record, one type per data category.
//!
//! Each type is both the GraphQL output object and the input object used to
//! register or update a survivor, and is stored as JSON in its own column, so
//! a category is disclosed or withheld as a whole. [`Validate`] checks input
//! before anything is written: lengths, dates, coded values against the
//! federation's vocabularies (`exchange_schema::intake`), and text free of
//! control and bidirectional-override characters (which PostgreSQL or a
//! reader's screen would mishandle). Sex, gender identity, age band and
//! nationality are IDENTITY; exploitation types and countries are CASE;
//! functioning (disability) is HEALTH.

use async_graphql::{Enum, InputObject, SimpleObject};
use exchange_schema::ServiceKind;
use exchange_schema::intake::{
    AgeBand, CountryCode, DifficultyLevel, ExploitationType, GenderIdentity, LanguageTag,
    RegionCode, Sex, Unmapped,
};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// Longest short text field (names, places), in characters.
pub const SHORT_TEXT: usize = 200;
/// Longest note, in characters.
pub const LONG_TEXT: usize = 4000;
/// Most items in a list field.
pub const LIST_ITEMS: usize = 20;

/// Checks input before it is stored, and puts coded values in their
/// canonical form (a language tag's letter case, the age band a date of
/// birth gives).
pub trait Validate {
    fn validate(&mut self) -> Result<(), NodeError>;
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

/// Names, date of birth or age band, sex and gender identity, nationality,
/// languages. The coded fields take the federation's shared vocabularies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "IdentityInput")]
pub struct Identity {
    pub given_name: String,
    pub family_name: Option<String>,
    /// A name the survivor prefers to be called by.
    pub preferred_name: Option<String>,
    /// `YYYY-MM-DD`. When it is not known, give `ageBand` instead.
    pub date_of_birth: Option<String>,
    /// The age band when the survivor was registered or last updated:
    /// derived from `dateOfBirth` when that is given (a different band
    /// given with it is refused), or as given when the date is not known.
    pub age_band: Option<AgeBand>,
    pub sex: Option<Sex>,
    pub gender_identity: Option<GenderIdentity>,
    /// Free text, only with `genderIdentity: SELF_DESCRIBED`.
    pub gender_self_description: Option<String>,
    /// An ISO 3166-1 alpha-2 code (for example `NG`), `STATELESS` or
    /// `UNKNOWN`.
    pub nationality: Option<String>,
    /// BCP 47 language tags, most preferred first.
    #[graphql(default)]
    pub languages: Vec<String>,
    /// Text recorded before the coded fields existed that mapped onto no
    /// code; the coded field it came from reads unknown.
    #[graphql(skip_input)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<Unmapped>,
}

impl Validate for Identity {
    fn validate(&mut self) -> Result<(), NodeError> {
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
        if let Some(birth) = parse_date(&self.date_of_birth) {
            let today = time::OffsetDateTime::now_utc().date();
            if birth > today {
                return Err(NodeError::bad_input(
                    "identity.dateOfBirth must not be in the future",
                ));
            }
            let band = AgeBand::on(birth, today);
            match self.age_band {
                Some(given) if given != band && given != AgeBand::Unknown => {
                    return Err(NodeError::bad_input(
                        "identity.ageBand does not match identity.dateOfBirth",
                    ));
                }
                _ => self.age_band = Some(band),
            }
        }
        match (&self.gender_identity, &self.gender_self_description) {
            (Some(GenderIdentity::SelfDescribed), Some(text)) => {
                check_text("identity.genderSelfDescription", text, SHORT_TEXT, false)?;
            }
            (Some(GenderIdentity::SelfDescribed), None) => {
                return Err(NodeError::bad_input(
                    "identity.genderSelfDescription is required with genderIdentity SELF_DESCRIBED",
                ));
            }
            (_, Some(_)) => {
                return Err(NodeError::bad_input(
                    "identity.genderSelfDescription is only for genderIdentity SELF_DESCRIBED",
                ));
            }
            (_, None) => {}
        }
        if let Some(nationality) = &self.nationality {
            CountryCode::nationality("identity.nationality", nationality).map_err(intake)?;
        }
        check_list("identity.languages", &self.languages)?;
        self.languages = self
            .languages
            .iter()
            .map(|tag| {
                LanguageTag::parse("identity.languages", tag)
                    .map(String::from)
                    .map_err(intake)
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Washington Group Short Set on Functioning: the level of difficulty in
/// each of six domains; a domain left out was not asked or not answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "FunctioningInput")]
pub struct Functioning {
    pub seeing: Option<DifficultyLevel>,
    pub hearing: Option<DifficultyLevel>,
    pub walking: Option<DifficultyLevel>,
    /// Remembering or concentrating.
    pub cognition: Option<DifficultyLevel>,
    pub self_care: Option<DifficultyLevel>,
    pub communication: Option<DifficultyLevel>,
}

fn intake(err: exchange_schema::intake::IntakeError) -> NodeError {
    NodeError::bad_input(err.to_string())
}

fn parse_date(value: &Option<String>) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    value
        .as_ref()
        .and_then(|v| time::Date::parse(v, format).ok())
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
    fn validate(&mut self) -> Result<(), NodeError> {
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

/// Exploitation types and countries, risk, intake date and needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "CaseInput")]
pub struct CaseDetails {
    /// The forms of exploitation, from the federation's closed list.
    #[graphql(default)]
    pub exploitation_types: Vec<ExploitationType>,
    /// Free text, only with `OTHER` among `exploitationTypes`.
    pub exploitation_other: Option<String>,
    /// Where the exploitation took place: ISO 3166-1 alpha-2 codes, or
    /// `UNKNOWN`.
    #[graphql(default)]
    #[serde(default)]
    pub countries_of_exploitation: Vec<String>,
    pub risk_level: RiskLevel,
    /// Where the survivor was identified: an ISO 3166-2 subdivision code
    /// (`NG-LA`), as the federation's region map names regions, or
    /// `UNKNOWN`. Counted in the statistics by region.
    #[serde(default)]
    pub region_of_identification: Option<String>,
    /// `YYYY-MM-DD`.
    pub intake_date: Option<String>,
    /// Services the survivor needs.
    #[graphql(default)]
    pub needs: Vec<ServiceKind>,
    pub summary: Option<String>,
    /// Text recorded before the coded fields existed that mapped onto no
    /// code.
    #[graphql(skip_input)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<Unmapped>,
}

impl Validate for CaseDetails {
    fn validate(&mut self) -> Result<(), NodeError> {
        if self.exploitation_types.len() > LIST_ITEMS {
            return Err(NodeError::bad_input(
                "case.exploitationTypes has too many items",
            ));
        }
        let other = self.exploitation_types.contains(&ExploitationType::Other);
        match (&self.exploitation_other, other) {
            (Some(text), true) => check_text("case.exploitationOther", text, SHORT_TEXT, false)?,
            (Some(_), false) => {
                return Err(NodeError::bad_input(
                    "case.exploitationOther is only for exploitationTypes including OTHER",
                ));
            }
            (None, _) => {}
        }
        if self.countries_of_exploitation.len() > LIST_ITEMS {
            return Err(NodeError::bad_input(
                "case.countriesOfExploitation has too many items",
            ));
        }
        for country in &self.countries_of_exploitation {
            CountryCode::country("case.countriesOfExploitation", country).map_err(intake)?;
        }
        if let Some(region) = &self.region_of_identification {
            RegionCode::parse("case.regionOfIdentification", region).map_err(intake)?;
        }
        check_date("case.intakeDate", &self.intake_date)?;
        if self.needs.len() > LIST_ITEMS {
            return Err(NodeError::bad_input("case.needs has too many items"));
        }
        check_opt("case.summary", &self.summary, LONG_TEXT, true)
    }
}

/// Medical and psychosocial notes, and functioning (disability).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, SimpleObject, InputObject)]
#[graphql(input_name = "HealthInput")]
pub struct HealthNotes {
    pub medical_notes: Option<String>,
    pub psychosocial_notes: Option<String>,
    #[graphql(default)]
    pub allergies: Vec<String>,
    /// Disability by the Washington Group Short Set.
    #[serde(default)]
    pub functioning: Option<Functioning>,
}

impl Validate for HealthNotes {
    fn validate(&mut self) -> Result<(), NodeError> {
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
    fn validate(&mut self) -> Result<(), NodeError> {
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
    fn validate(&mut self) -> Result<(), NodeError> {
        self.as_mut().map_or(Ok(()), Validate::validate)
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

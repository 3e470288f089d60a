//! The coded vocabularies of a survivor's intake, shared by every node so
//! that a record means the same at every agency and can be counted.
//!
//! * Closed lists, as GraphQL enums (an unknown value is refused by the
//!   GraphQL layer as `BAD_USER_INPUT`, naming the argument): [`Sex`],
//!   [`GenderIdentity`], [`AgeBand`], [`ExploitationType`], and the
//!   Washington Group Short Set's [`DifficultyLevel`]s (its six domains are
//!   the fields of the node's `Functioning`).
//! * Open standards, as validated strings: nationality and countries of
//!   exploitation as ISO 3166-1 alpha-2 codes ([`CountryCode`], plus
//!   `STATELESS` for a nationality and `UNKNOWN`), and languages as BCP 47
//!   tags ([`LanguageTag`]). A value that is not a code is refused with
//!   [`IntakeError`], which names the field.
//! * [`legacy`]: how free text recorded before the vocabularies maps onto
//!   them, for the migration of existing records: what maps, maps; the rest
//!   is kept as [`Unmapped`] text and the coded field reads unknown.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Sex as recorded at intake.
    Sex, "sex" {
        Female => "FEMALE",
        Male => "MALE",
        Intersex => "INTERSEX",
        /// The survivor chose not to say.
        NotDisclosed => "NOT_DISCLOSED",
        /// Not asked or not known.
        Unknown => "UNKNOWN",
    }
}

vocabulary! {
    /// Gender identity, as the survivor states it.
    GenderIdentity, "gender identity" {
        Woman => "WOMAN",
        Man => "MAN",
        TransgenderWoman => "TRANSGENDER_WOMAN",
        TransgenderMan => "TRANSGENDER_MAN",
        NonBinary => "NON_BINARY",
        /// In the survivor's own words, in `genderSelfDescription`.
        SelfDescribed => "SELF_DESCRIBED",
        /// The survivor chose not to say.
        NotDisclosed => "NOT_DISCLOSED",
        /// Not asked or not known.
        Unknown => "UNKNOWN",
    }
}

vocabulary! {
    /// An age band, recorded when the date of birth is not known and
    /// derived from it when it is. The bands separate children (under 18)
    /// from adults, as every reporting framework does.
    AgeBand, "age band" {
        Age0To11 => "AGE_0_11",
        Age12To17 => "AGE_12_17",
        Age18To24 => "AGE_18_24",
        Age25To34 => "AGE_25_34",
        Age35To44 => "AGE_35_44",
        Age45To59 => "AGE_45_59",
        Age60Plus => "AGE_60_PLUS",
        Unknown => "UNKNOWN",
    }
}

vocabulary! {
    /// The forms of exploitation the federation counts (a closed list).
    ExploitationType, "exploitation type" {
        SexualExploitation => "SEXUAL_EXPLOITATION",
        ForcedLabour => "FORCED_LABOUR",
        DomesticServitude => "DOMESTIC_SERVITUDE",
        ForcedMarriage => "FORCED_MARRIAGE",
        ForcedCriminality => "FORCED_CRIMINALITY",
        ForcedBegging => "FORCED_BEGGING",
        OrganRemoval => "ORGAN_REMOVAL",
        /// Described in `exploitationOther`.
        Other => "OTHER",
    }
}

vocabulary! {
    /// The Washington Group's four answers to each domain's question.
    DifficultyLevel, "difficulty level" {
        NoDifficulty => "NO_DIFFICULTY",
        SomeDifficulty => "SOME_DIFFICULTY",
        ALotOfDifficulty => "A_LOT_OF_DIFFICULTY",
        CannotDoAtAll => "CANNOT_DO_AT_ALL",
    }
}

impl DifficultyLevel {
    /// The Washington Group's recommended cut-off: a person has a
    /// disability if any domain is at least "a lot of difficulty".
    pub fn counts_as_disability(self) -> bool {
        matches!(self, Self::ALotOfDifficulty | Self::CannotDoAtAll)
    }
}

impl AgeBand {
    /// The band of an age in whole years.
    pub fn for_age(years: i32) -> Self {
        match years {
            i32::MIN..0 => Self::Unknown,
            0..=11 => Self::Age0To11,
            12..=17 => Self::Age12To17,
            18..=24 => Self::Age18To24,
            25..=34 => Self::Age25To34,
            35..=44 => Self::Age35To44,
            45..=59 => Self::Age45To59,
            60.. => Self::Age60Plus,
        }
    }

    /// The band of someone born on `birth`, on `today`.
    pub fn on(birth: Date, today: Date) -> Self {
        let mut years = today.year() - birth.year();
        if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
            years -= 1;
        }
        Self::for_age(years)
    }
}

/// A coded value that is not in its list, naming the field it was given
/// for (`identity.nationality`, say). Never echoes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {expected}")]
pub struct IntakeError {
    pub field: String,
    pub expected: &'static str,
}

impl IntakeError {
    fn new(field: &str, expected: &'static str) -> Self {
        Self {
            field: field.to_owned(),
            expected,
        }
    }
}

/// A country as an ISO 3166-1 alpha-2 code (`NG`, `RO`), or one of the two
/// codes outside the standard: `STATELESS` (for a nationality only) and
/// `UNKNOWN`. Records store and send it as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCode(String);

impl CountryCode {
    pub const STATELESS: &'static str = "STATELESS";
    pub const UNKNOWN: &'static str = "UNKNOWN";

    /// A nationality: an assigned ISO 3166-1 alpha-2 code, `STATELESS` or
    /// `UNKNOWN`, in upper case.
    pub fn nationality(field: &str, text: &str) -> Result<Self, IntakeError> {
        if text == Self::STATELESS {
            return Ok(Self(text.to_owned()));
        }
        Self::country(field, text).map_err(|_| {
            IntakeError::new(
                field,
                "must be an ISO 3166-1 alpha-2 country code in upper case (for example NG), STATELESS or UNKNOWN",
            )
        })
    }

    /// A country: an assigned ISO 3166-1 alpha-2 code or `UNKNOWN`, in
    /// upper case.
    pub fn country(field: &str, text: &str) -> Result<Self, IntakeError> {
        let assigned = text.len() == 2
            && text.bytes().all(|b| b.is_ascii_uppercase())
            && isocountry::CountryCode::for_alpha2(text).is_ok();
        if assigned || text == Self::UNKNOWN {
            Ok(Self(text.to_owned()))
        } else {
            Err(IntakeError::new(
                field,
                "must be an ISO 3166-1 alpha-2 country code in upper case (for example NG) or UNKNOWN",
            ))
        }
    }

    pub fn unknown() -> Self {
        Self(Self::UNKNOWN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A region as an ISO 3166-2 subdivision code (`NG-LA`: a country's
/// alpha-2 code, a hyphen, one to three capital letters or digits), or
/// `UNKNOWN`: where a survivor was identified, as the federation's region
/// map names regions. The country part may be a user-assigned code (`XZ`)
/// for regions a federation defines itself, as the demo's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionCode(String);

impl RegionCode {
    /// `text` as a region code, or the error naming `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, IntakeError> {
        if Self::is_code(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(IntakeError::new(
                field,
                "must be an ISO 3166-2 subdivision code in upper case (for example NG-LA) or UNKNOWN",
            ))
        }
    }

    /// Whether `text` is a region code or `UNKNOWN`.
    pub fn is_code(text: &str) -> bool {
        if text == CountryCode::UNKNOWN {
            return true;
        }
        let Some((country, part)) = text.split_once('-') else {
            return false;
        };
        country.len() == 2
            && country.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=3).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A language as a valid BCP 47 tag (`en`, `pt-BR`, `sr-Latn`), in its
/// canonical letter case. Records store and send it as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Parses and validates `text` against the IANA language subtag
    /// registry; the tag is kept in canonical case (`pt-BR`, not `PT-br`).
    pub fn parse(field: &str, text: &str) -> Result<Self, IntakeError> {
        let refused = || {
            IntakeError::new(
                field,
                "must be a valid BCP 47 language tag (for example en, pt-BR or sr-Latn)",
            )
        };
        if text.len() > 35 {
            return Err(refused());
        }
        let tag = language_tags::LanguageTag::parse(text).map_err(|_| refused())?;
        tag.validate().map_err(|_| refused())?;
        let canonical = tag.canonicalize().map_err(|_| refused())?;
        Ok(Self(canonical.as_str().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<LanguageTag> for String {
    fn from(tag: LanguageTag) -> Self {
        tag.0
    }
}

/// Text recorded before the coded vocabularies that mapped onto no code:
/// kept, never dropped, beside the coded field that now reads unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject)]
pub struct Unmapped {
    /// The field it was recorded in, for example `identity.nationality`.
    pub field: String,
    /// The text as recorded.
    pub text: String,
}

/// How free text recorded before the vocabularies maps onto them. Each
/// function returns `None` when the text maps onto nothing; the caller then
/// keeps it as [`Unmapped`].
pub mod legacy {
    use super::*;

    fn words(text: &str) -> String {
        text.trim()
            .to_lowercase()
            .replace(['-', '_'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The gender identity a free-text gender names.
    pub fn gender_identity(text: &str) -> Option<GenderIdentity> {
        Some(match words(text).as_str() {
            "f" | "female" | "woman" | "girl" => GenderIdentity::Woman,
            "m" | "male" | "man" | "boy" => GenderIdentity::Man,
            "non binary" | "nonbinary" | "enby" => GenderIdentity::NonBinary,
            "trans woman" | "transgender woman" => GenderIdentity::TransgenderWoman,
            "trans man" | "transgender man" => GenderIdentity::TransgenderMan,
            "prefer not to say" | "not disclosed" | "declined" => GenderIdentity::NotDisclosed,
            "unknown" => GenderIdentity::Unknown,
            _ => return None,
        })
    }

    /// The country a free-text nationality or country names: an alpha-2 or
    /// alpha-3 code in any case, or the country's English short name.
    pub fn country(text: &str) -> Option<CountryCode> {
        let trimmed = text.trim();
        let upper = trimmed.to_uppercase();
        if upper == CountryCode::STATELESS || upper == CountryCode::UNKNOWN {
            return Some(CountryCode(upper));
        }
        let found = match upper.len() {
            2 => isocountry::CountryCode::for_alpha2(&upper).ok(),
            3 => isocountry::CountryCode::for_alpha3(&upper).ok(),
            _ => None,
        }
        .or_else(|| {
            let wanted = words(trimmed);
            isocountry::CountryCode::iter()
                .find(|c| words(c.name()) == wanted)
                .copied()
        })?;
        Some(CountryCode(found.alpha2().to_owned()))
    }

    /// The exploitation type a free-text description names.
    pub fn exploitation_type(text: &str) -> Option<ExploitationType> {
        Some(match words(text).as_str() {
            "sexual"
            | "sexual exploitation"
            | "sex trafficking"
            | "commercial sexual exploitation" => ExploitationType::SexualExploitation,
            "labour"
            | "labor"
            | "forced labour"
            | "forced labor"
            | "labour exploitation"
            | "labor exploitation" => ExploitationType::ForcedLabour,
            "domestic servitude" | "domestic" => ExploitationType::DomesticServitude,
            "forced marriage" | "marriage" => ExploitationType::ForcedMarriage,
            "forced criminality" | "criminality" | "criminal exploitation" => {
                ExploitationType::ForcedCriminality
            }
            "forced begging" | "begging" => ExploitationType::ForcedBegging,
            "organ removal" | "organ harvesting" => ExploitationType::OrganRemoval,
            _ => return None,
        })
    }

    /// A language tag, if the text is one.
    pub fn language(text: &str) -> Option<LanguageTag> {
        LanguageTag::parse("language", text.trim()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_are_iso_3166_2_shaped_or_unknown() {
        for good in ["NG-LA", "XZ-N", "GB-ENG", "FR-75", "UNKNOWN"] {
            assert!(
                RegionCode::parse("case.regionOfIdentification", good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "", "NG", "ng-la", "NG-", "NG-LAGO", "NGA-LA", "NG LA", "NG-LA-1", "-LA",
        ] {
            let err = RegionCode::parse("case.regionOfIdentification", bad).unwrap_err();
            assert_eq!(err.field, "case.regionOfIdentification", "{bad}");
        }
    }
    use time::macros::date;

    #[test]
    fn countries_are_assigned_upper_case_alpha_2_codes() {
        assert_eq!(CountryCode::country("f", "NG").unwrap().as_str(), "NG");
        assert_eq!(
            CountryCode::country("f", "UNKNOWN").unwrap().as_str(),
            "UNKNOWN"
        );
        for bad in [
            "ng",
            "NGA",
            "XX",
            "ZZ",
            "",
            "Nigeria",
            "STATELESS",
            "N\u{0}",
        ] {
            let err = CountryCode::country("case.countriesOfExploitation", bad).unwrap_err();
            assert_eq!(err.field, "case.countriesOfExploitation", "{bad}");
            assert!(!err.to_string().contains(bad) || bad.is_empty() || bad == "N\u{0}");
        }
        assert_eq!(
            CountryCode::nationality("identity.nationality", "STATELESS")
                .unwrap()
                .as_str(),
            "STATELESS"
        );
        let err = CountryCode::nationality("identity.nationality", "Narnia").unwrap_err();
        assert!(
            err.to_string().starts_with("identity.nationality must be"),
            "{err}"
        );
    }

    #[test]
    fn languages_are_valid_bcp_47_tags_in_canonical_case() {
        assert_eq!(LanguageTag::parse("f", "en").unwrap().as_str(), "en");
        assert_eq!(LanguageTag::parse("f", "pt-br").unwrap().as_str(), "pt-BR");
        assert_eq!(
            LanguageTag::parse("f", "sr-latn").unwrap().as_str(),
            "sr-Latn"
        );
        for bad in ["", "english", "en_GB", "xx-", "qqqqqqqqq", "en-ZZZZZ1"] {
            let err = LanguageTag::parse("identity.languages", bad).unwrap_err();
            assert_eq!(err.field, "identity.languages", "{bad}");
        }
    }

    #[test]
    fn age_bands_split_children_from_adults_on_the_birthday() {
        assert_eq!(
            AgeBand::on(date!(2008 - 12 - 06), date!(2026 - 12 - 05)),
            AgeBand::Age12To17
        );
        assert_eq!(
            AgeBand::on(date!(2008 - 12 - 05), date!(2026 - 12 - 05)),
            AgeBand::Age18To24
        );
        assert_eq!(
            AgeBand::on(date!(2030 - 01 - 01), date!(2026 - 12 - 05)),
            AgeBand::Unknown
        );
        assert_eq!(AgeBand::for_age(0), AgeBand::Age0To11);
        assert_eq!(AgeBand::for_age(60), AgeBand::Age60Plus);
    }

    #[test]
    fn legacy_text_maps_where_it_names_a_code_and_only_then() {
        assert_eq!(legacy::country(" nigeria ").unwrap().as_str(), "NG");
        assert_eq!(legacy::country("rou").unwrap().as_str(), "RO");
        assert_eq!(legacy::country("ro").unwrap().as_str(), "RO");
        assert_eq!(legacy::country("stateless").unwrap().as_str(), "STATELESS");
        assert_eq!(legacy::country("Invented"), None);
        assert_eq!(
            legacy::gender_identity("Female"),
            Some(GenderIdentity::Woman)
        );
        assert_eq!(
            legacy::gender_identity("non-binary"),
            Some(GenderIdentity::NonBinary)
        );
        assert_eq!(legacy::gender_identity("two-spirit"), None);
        assert_eq!(
            legacy::exploitation_type("labour"),
            Some(ExploitationType::ForcedLabour)
        );
        assert_eq!(
            legacy::exploitation_type("Domestic Servitude"),
            Some(ExploitationType::DomesticServitude)
        );
        assert_eq!(legacy::exploitation_type("online scam compound"), None);
        assert_eq!(legacy::language("PT-br").unwrap().as_str(), "pt-BR");
        assert_eq!(legacy::language("Romanian"), None);
    }

    #[test]
    fn the_washington_group_cut_off_is_a_lot_of_difficulty() {
        assert!(!DifficultyLevel::SomeDifficulty.counts_as_disability());
        assert!(DifficultyLevel::ALotOfDifficulty.counts_as_disability());
        assert!(DifficultyLevel::CannotDoAtAll.counts_as_disability());
        assert_eq!(DifficultyLevel::ALL.len(), 4);
    }
}

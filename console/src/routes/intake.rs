//! Registering a survivor with the standardized intake form: the coded
//! vocabularies every node shares (`docs/intake.md`), offered as choices so
//! that nothing is typed where a code exists, then `registerSurvivor`
//! through the gateway for the caseworker's own agency. The node checks
//! every code again; this form only keeps the caseworker from sending what
//! it would refuse.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use exchange_schema::Purpose;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::survivors::{SERVICES, field, pairs};
use super::{form_visit, redirect_to, signed_in_visit};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::pages::IntakePage;

pub const SEXES: [&str; 5] = ["FEMALE", "MALE", "INTERSEX", "NOT_DISCLOSED", "UNKNOWN"];
pub const GENDER_IDENTITIES: [&str; 8] = [
    "WOMAN",
    "MAN",
    "TRANSGENDER_WOMAN",
    "TRANSGENDER_MAN",
    "NON_BINARY",
    "SELF_DESCRIBED",
    "NOT_DISCLOSED",
    "UNKNOWN",
];
pub const AGE_BANDS: [&str; 8] = [
    "AGE_0_11",
    "AGE_12_17",
    "AGE_18_24",
    "AGE_25_34",
    "AGE_35_44",
    "AGE_45_59",
    "AGE_60_PLUS",
    "UNKNOWN",
];
pub const EXPLOITATION_TYPES: [&str; 8] = [
    "SEXUAL_EXPLOITATION",
    "FORCED_LABOUR",
    "DOMESTIC_SERVITUDE",
    "FORCED_MARRIAGE",
    "FORCED_CRIMINALITY",
    "FORCED_BEGGING",
    "ORGAN_REMOVAL",
    "OTHER",
];
pub const RISK_LEVELS: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];
/// The Washington Group Short Set: (form field, GraphQL field).
pub const FUNCTIONING: [(&str, &str); 6] = [
    ("seeing", "seeing"),
    ("hearing", "hearing"),
    ("walking", "walking"),
    ("cognition", "cognition"),
    ("self_care", "selfCare"),
    ("communication", "communication"),
];
pub const DIFFICULTY_LEVELS: [&str; 4] = [
    "NO_DIFFICULTY",
    "SOME_DIFFICULTY",
    "A_LOT_OF_DIFFICULTY",
    "CANNOT_DO_AT_ALL",
];
/// Longest free text of the form (a note, a summary).
const MAX_TEXT: usize = 4000;

/// `/survivors/new`: the intake form.
pub async fn intake_form(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let (visit, _) = match signed_in_visit(&state, &headers, "/survivors/new").await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    visit.page(
        &state,
        IntakePage {
            chrome: visit.chrome(),
        },
    )
}

#[derive(Deserialize)]
struct Registered {
    #[serde(rename = "registerSurvivor")]
    survivor: RegisteredId,
}

#[derive(Deserialize)]
struct RegisteredId {
    id: String,
}

/// `POST /survivors`: registers the survivor at the caseworker's own node.
pub async fn register(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = pairs(&body);
    let (visit, signed_in) =
        match form_visit(&state, &headers, "/survivors/new", field(&form, "csrf")).await {
            Ok(v) => v,
            Err(refused) => return refused,
        };
    let input = match intake_input(&form) {
        Ok(input) => input,
        Err(e) => return visit.refuse(&state, e),
    };
    let registered: Result<Registered, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    match registered {
        Ok(r) => {
            state.sessions.update(&visit.token, |s| {
                s.notice = Some("notice-registered".into())
            });
            visit.finish(
                &state,
                redirect_to(&format!("/survivors/{}", r.survivor.id)),
            )
        }
        Err(e) => visit.refuse(&state, e),
    }
}

fn text<'a>(form: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ConsoleError> {
    match field(form, name) {
        Some(v) if v.chars().count() > MAX_TEXT => {
            Err(ConsoleError::BadRequest("a text field is too long"))
        }
        other => Ok(other),
    }
}

fn code<'a>(
    form: &'a [(String, String)],
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ConsoleError> {
    match field(form, name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(_) => Err(ConsoleError::BadRequest("a choice the form does not offer")),
    }
}

fn codes<'a>(
    form: &'a [(String, String)],
    name: &str,
    allowed: &[&str],
) -> Result<Vec<&'a str>, ConsoleError> {
    let values: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if values.iter().all(|v| allowed.contains(v)) {
        Ok(values)
    } else {
        Err(ConsoleError::BadRequest("a choice the form does not offer"))
    }
}

/// A comma-separated list, trimmed, empty items dropped.
fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn date(value: Option<&str>) -> Result<Option<&str>, ConsoleError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(v, &format)
                .map(|_| Some(v))
                .map_err(|_| ConsoleError::BadRequest("a date is not a date"))
        }
    }
}

fn insert(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        object.insert(key.to_owned(), Value::String(v.to_owned()));
    }
}

/// The intake form read into `registerSurvivor`'s input: identity (a given
/// name at least), contact, case (a risk level), health with the
/// Washington Group answers, and legal. Codes must be the form's own
/// choices; the node checks them again (and the countries and languages).
pub fn intake_input(form: &[(String, String)]) -> Result<Value, ConsoleError> {
    let given =
        text(form, "given_name")?.ok_or(ConsoleError::BadRequest("a given name is needed"))?;
    let mut identity = Map::new();
    identity.insert("givenName".into(), given.into());
    insert(&mut identity, "familyName", text(form, "family_name")?);
    insert(
        &mut identity,
        "preferredName",
        text(form, "preferred_name")?,
    );
    insert(
        &mut identity,
        "dateOfBirth",
        date(field(form, "date_of_birth"))?,
    );
    insert(
        &mut identity,
        "ageBand",
        code(form, "age_band", &AGE_BANDS)?,
    );
    insert(&mut identity, "sex", code(form, "sex", &SEXES)?);
    let gender = code(form, "gender_identity", &GENDER_IDENTITIES)?;
    insert(&mut identity, "genderIdentity", gender);
    if gender == Some("SELF_DESCRIBED") {
        insert(
            &mut identity,
            "genderSelfDescription",
            text(form, "gender_self_description")?,
        );
    }
    insert(
        &mut identity,
        "nationality",
        field(form, "nationality").map(str::trim),
    );
    identity.insert("languages".into(), json!(list(field(form, "languages"))));

    let mut contact = Map::new();
    insert(&mut contact, "safeChannel", text(form, "safe_channel")?);
    insert(&mut contact, "phone", text(form, "phone")?);
    insert(
        &mut contact,
        "currentLocation",
        text(form, "current_location")?,
    );
    insert(&mut contact, "safetyNotes", text(form, "safety_notes")?);

    let risk = code(form, "risk_level", &RISK_LEVELS)?
        .ok_or(ConsoleError::BadRequest("a risk level is needed"))?;
    let exploitation = codes(form, "exploitation", &EXPLOITATION_TYPES)?;
    let mut case = Map::new();
    case.insert("riskLevel".into(), risk.into());
    case.insert("exploitationTypes".into(), json!(exploitation));
    if exploitation.contains(&"OTHER") {
        insert(
            &mut case,
            "exploitationOther",
            text(form, "exploitation_other")?,
        );
    }
    case.insert(
        "countriesOfExploitation".into(),
        json!(list(field(form, "countries"))),
    );
    insert(
        &mut case,
        "regionOfIdentification",
        field(form, "region").map(str::trim),
    );
    insert(&mut case, "intakeDate", date(field(form, "intake_date"))?);
    case.insert("needs".into(), json!(codes(form, "need", &SERVICES)?));
    insert(&mut case, "summary", text(form, "summary")?);

    let mut functioning = Map::new();
    for (name, key) in FUNCTIONING {
        insert(
            &mut functioning,
            key,
            code(form, &format!("functioning_{name}"), &DIFFICULTY_LEVELS)?,
        );
    }
    let mut health = Map::new();
    insert(&mut health, "medicalNotes", text(form, "medical_notes")?);
    insert(
        &mut health,
        "psychosocialNotes",
        text(form, "psychosocial_notes")?,
    );
    health.insert("allergies".into(), json!(list(field(form, "allergies"))));
    if !functioning.is_empty() {
        health.insert("functioning".into(), Value::Object(functioning));
    }
    let mut legal = Map::new();
    insert(
        &mut legal,
        "immigrationStatus",
        text(form, "immigration_status")?,
    );
    insert(&mut legal, "notes", text(form, "legal_notes")?);

    let mut input = Map::new();
    input.insert("identity".into(), Value::Object(identity));
    input.insert("case".into(), Value::Object(case));
    if !contact.is_empty() {
        input.insert("contact".into(), Value::Object(contact));
    }
    input.insert("health".into(), Value::Object(health));
    if !legal.is_empty() {
        input.insert("legal".into(), Value::Object(legal));
    }
    // Asked at intake; the survivor can change it in the portal.
    let opt_out = match field(form, "statistics_opt_out") {
        None => false,
        Some("yes") => true,
        Some(_) => return Err(ConsoleError::BadRequest("not a statistics choice")),
    };
    input.insert("statisticsOptOut".into(), opt_out.into());
    Ok(Value::Object(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Vec<(String, String)> {
        pairs(text)
    }

    #[test]
    fn the_intake_form_becomes_the_coded_registration_input() {
        let input = intake_input(&form(
            "given_name=Lea&sex=FEMALE&gender_identity=SELF_DESCRIBED&gender_self_description=femme\
             &nationality=RO&languages=ro,+en&risk_level=HIGH&exploitation=FORCED_LABOUR\
             &exploitation=OTHER&exploitation_other=debt&countries=DE&need=SHELTER&need=LEGAL_AID\
             &functioning_walking=SOME_DIFFICULTY&functioning_self_care=NO_DIFFICULTY\
             &intake_date=2026-11-30&phone=%2B00+1",
        ))
        .unwrap();
        assert_eq!(input["identity"]["genderSelfDescription"], "femme");
        assert_eq!(input["identity"]["languages"], json!(["ro", "en"]));
        assert_eq!(
            input["case"]["exploitationTypes"],
            json!(["FORCED_LABOUR", "OTHER"])
        );
        assert_eq!(input["case"]["exploitationOther"], "debt");
        assert_eq!(input["case"]["needs"], json!(["SHELTER", "LEGAL_AID"]));
        assert_eq!(input["health"]["functioning"]["selfCare"], "NO_DIFFICULTY");
        assert_eq!(input["contact"]["phone"], "+00 1");
        assert!(input.get("legal").is_none());
    }

    #[test]
    fn an_intake_form_the_page_could_not_have_sent_is_refused() {
        let base = "given_name=Lea&risk_level=LOW";
        assert!(intake_input(&form(base)).is_ok());
        for (bad, why) in [
            ("risk_level=LOW".to_owned(), "no given name"),
            ("given_name=Lea".to_owned(), "no risk level"),
            (format!("{base}&sex=ROBOT"), "unknown sex code"),
            (
                format!("{base}&exploitation=PIRACY"),
                "unknown exploitation type",
            ),
            (format!("{base}&need=TELEPORTATION"), "unknown need"),
            (format!("{base}&date_of_birth=yesterday"), "not a date"),
            (
                format!("{base}&functioning_seeing=BLURRY"),
                "unknown difficulty",
            ),
            (format!("{base}&summary={}", "x".repeat(4001)), "too long"),
        ] {
            assert!(
                matches!(intake_input(&form(&bad)), Err(ConsoleError::BadRequest(_))),
                "{why}"
            );
        }
    }
}

//! Synthetic survivor records for the suites: every category filled with
//! invented values, the query that selects every category, and the
//! mutations that register a survivor and record a consent.

use serde_json::{Value, json};

/// Reads a survivor with every category and what was withheld.
pub const SURVIVOR_QUERY: &str = "query($id: ID!) { survivor(id: $id) { id owner \
    identity { givenName familyName } contact { currentLocation phone } case { riskLevel } \
    health { medicalNotes } legal { immigrationStatus } withheld { category reason } breakGlass } }";

/// A survivor record with every category filled (synthetic).
pub fn survivor_input(given_name: &str) -> Value {
    json!({
        "identity": { "givenName": given_name, "familyName": "Example", "dateOfBirth": "1999-04-02",
                      "sex": "FEMALE", "genderIdentity": "WOMAN",
                      "nationality": "RO", "languages": ["en", "ro"] },
        "contact": { "safeChannel": "through caseworker", "phone": "+00 000 0000", "currentLocation": "Safe house 7" },
        "case": { "exploitationTypes": ["FORCED_LABOUR"], "countriesOfExploitation": ["DE"], "riskLevel": "HIGH", "intakeDate": "2026-10-01", "needs": ["SHELTER", "LEGAL_AID"] },
        "health": { "medicalNotes": "invented note", "psychosocialNotes": "invented note",
                    "functioning": { "walking": "SOME_DIFFICULTY", "seeing": "NO_DIFFICULTY" } },
        "legal": { "immigrationStatus": "pending", "proceedings": ["invented case"] },
    })
}

/// Registers a survivor (`$input: RegisterSurvivorInput!`); selects `id`.
pub const REGISTER_SURVIVOR: &str =
    "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }";

/// Records a consent (`$input: RecordConsentInput!`); selects `id`.
pub const RECORD_CONSENT: &str =
    "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }";

/// The input of a consent the owner's staff witnessed being given verbally.
pub fn witnessed_consent(
    survivor: &str,
    grantee: &str,
    categories: &[&str],
    purposes: &[&str],
) -> Value {
    json!({
        "survivorId": survivor,
        "grantee": grantee,
        "categories": categories,
        "purposes": purposes,
        "method": "WITNESSED_VERBAL",
        "witness": "Second caseworker",
    })
}

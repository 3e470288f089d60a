//! Synthetic survivor records for the suites: every category filled with
//! invented values, and the query that selects every category.

use serde_json::{Value, json};

/// Reads a survivor with every category and what was withheld.
pub const SURVIVOR_QUERY: &str = "query($id: ID!) { survivor(id: $id) { id owner \
    identity { givenName familyName } contact { currentLocation phone } case { riskLevel } \
    health { medicalNotes } legal { immigrationStatus } withheld { category reason } breakGlass } }";

/// A survivor record with every category filled (synthetic).
pub fn survivor_input(given_name: &str) -> Value {
    json!({
        "identity": { "givenName": given_name, "familyName": "Example", "dateOfBirth": "1999-04-02",
                      "nationality": "Invented", "languages": ["en", "ro"] },
        "contact": { "safeChannel": "through caseworker", "phone": "+00 000 0000", "currentLocation": "Safe house 7" },
        "case": { "exploitationTypes": ["labour"], "riskLevel": "HIGH", "intakeDate": "2026-10-01", "needs": ["SHELTER", "LEGAL_AID"] },
        "health": { "medicalNotes": "invented note", "psychosocialNotes": "invented note" },
        "legal": { "immigrationStatus": "pending", "proceedings": ["invented case"] },
    })
}

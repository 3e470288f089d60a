//! The owner's forms for keeping a survivor's case on their page: a new
//! version of the care plan proposed, the survivor's agreement to it
//! recorded as witnessed, and a legal hold placed or lifted (supervisors
//! and the data-protection officer). Each form becomes one mutation sent
//! through the gateway with the caseworker's token; the node decides.

use exchange_schema::Purpose;
use serde_json::{Value, json};

use super::survivors::{Change, SurvivorForm, due_at, field};
use crate::error::ConsoleError;

/// Action rows the proposal form offers (the current plan's actions and
/// blank rows up to this number).
pub const PLAN_FORM_ROWS: usize = 8;
/// Longest goal or action description the node accepts.
const PLAN_TEXT: usize = 1000;
/// Most goals in one version, as the node counts them.
const MOST_GOALS: usize = 20;
/// Longest reason for a legal hold or witness name the console sends.
const MAX_TEXT_CHARS: usize = 2000;

/// The proposal form read into `proposeCarePlan`'s input: one goal a line
/// (blank lines dropped), and each action row with a description (rows
/// left blank dropped); a row's agency and due time are checked here as
/// far as the form can tell, and by the node.
pub fn plan_change(survivor: &str, form: &[(String, String)]) -> Result<Change, ConsoleError> {
    let goals: Vec<&str> = field(form, "goals")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    if goals.is_empty() {
        return Err(ConsoleError::BadRequest(
            "a care plan needs at least one goal",
        ));
    }
    if goals.len() > MOST_GOALS {
        return Err(ConsoleError::BadRequest("a care plan has at most 20 goals"));
    }
    if goals.iter().any(|g| g.chars().count() > PLAN_TEXT) {
        return Err(ConsoleError::BadRequest("a goal is too long"));
    }
    let mut actions: Vec<Value> = Vec::new();
    for row in 0..PLAN_FORM_ROWS {
        let Some(description) = field(form, &format!("action_{row}")) else {
            continue;
        };
        if description.chars().count() > PLAN_TEXT {
            return Err(ConsoleError::BadRequest("an action is too long"));
        }
        let agency = field(form, &format!("agency_{row}")).ok_or(ConsoleError::BadRequest(
            "each action names the agency responsible",
        ))?;
        let due = match field(form, &format!("due_{row}")) {
            Some(v) => Some(due_at(v)?),
            None => None,
        };
        actions
            .push(json!({ "description": description, "responsibleAgency": agency, "dueAt": due }));
    }
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
        variables: json!({ "input": { "survivorId": survivor, "goals": goals, "actions": actions } }),
        notice: "notice-plan-proposed",
    })
}

/// The agreement form read into `recordCarePlanAgreement`: the version the
/// survivor agreed to, how (spoken or signed, with a witness), and who
/// witnessed it.
pub fn agreement_change(survivor: &str, form: &[(String, String)]) -> Result<Change, ConsoleError> {
    let version = field(form, "version")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (1..=100_000).contains(v))
        .ok_or(ConsoleError::BadRequest("not a care plan version"))?;
    let method = match field(form, "method") {
        Some(m @ ("WITNESSED_VERBAL" | "WITNESSED_WRITTEN")) => m,
        _ => return Err(ConsoleError::BadRequest("choose how the survivor agreed")),
    };
    let witness = field(form, "witness")
        .filter(|w| w.chars().count() <= MAX_TEXT_CHARS)
        .ok_or(ConsoleError::BadRequest(
            "a witnessed agreement names its witness",
        ))?;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!, $version: Int!, $method: ConsentMethod!, $witness: String) \
                   { recordCarePlanAgreement(survivorId: $id, version: $version, method: $method, witness: $witness) { version } }",
        variables: json!({ "id": survivor, "version": version, "method": method, "witness": witness }),
        notice: "notice-plan-agreed",
    })
}

/// The hold form read into `placeLegalHold`: the reason is required.
pub fn hold_change(survivor: &str, form: &[(String, String)]) -> Result<Change, ConsoleError> {
    let reason = field(form, "reason")
        .filter(|r| r.chars().count() <= MAX_TEXT_CHARS)
        .ok_or(ConsoleError::BadRequest("a legal hold gives its reason"))?;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!, $reason: String!) { placeLegalHold(survivorId: $id, reason: $reason) { id } }",
        variables: json!({ "id": survivor, "reason": reason }),
        notice: "notice-hold-placed",
    })
}

/// `POST /survivors/{id}/legal-hold/lift`: lifts the hold in force.
pub fn hold_lifting(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!) { liftLegalHold(survivorId: $id) { id } }",
        variables: json!({ "id": f.survivor }),
        notice: "notice-hold-lifted",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::survivors::pairs;

    #[test]
    fn a_plan_form_becomes_goals_and_the_filled_action_rows() {
        let change = plan_change(
            "s1",
            &pairs(
                "goals=Safe+housing%0D%0A%0D%0AWork+permit&action_0=Find+a+flat&agency_0=shelter-north&due_0=2027-02-01T10:00\
                 &action_1=&agency_1=clinic-east&action_2=See+a+lawyer&agency_2=legal-aid-city",
            ),
        )
        .unwrap();
        let input = &change.variables["input"];
        assert_eq!(input["goals"], json!(["Safe housing", "Work permit"]));
        assert_eq!(input["actions"].as_array().unwrap().len(), 2);
        assert_eq!(input["actions"][0]["dueAt"], "2027-02-01T10:00:00Z");
        assert_eq!(input["actions"][1]["responsibleAgency"], "legal-aid-city");
        assert_eq!(input["actions"][1]["dueAt"], Value::Null);
    }

    #[test]
    fn plan_agreement_and_hold_forms_the_page_could_not_have_sent_are_refused() {
        for (bad, why) in [
            ("goals=%0D%0A&action_0=x&agency_0=a", "no goal"),
            ("goals=g&action_0=x", "an action without its agency"),
            (
                "goals=g&action_0=x&agency_0=a&due_0=soon",
                "a due time that is not one",
            ),
        ] {
            assert!(
                matches!(
                    plan_change("s", &pairs(bad)),
                    Err(ConsoleError::BadRequest(_))
                ),
                "{why}"
            );
        }
        let long_goal = format!("goals={}", "g".repeat(PLAN_TEXT + 1));
        assert!(plan_change("s", &pairs(&long_goal)).is_err());
        assert!(
            agreement_change("s", &pairs("version=2&method=WITNESSED_VERBAL&witness=W")).is_ok()
        );
        for bad in [
            "version=2&method=PORTAL&witness=W",
            "version=0&method=WITNESSED_VERBAL&witness=W",
            "version=2&method=WITNESSED_WRITTEN",
        ] {
            assert!(agreement_change("s", &pairs(bad)).is_err(), "{bad}");
        }
        assert!(hold_change("s", &pairs("reason=Trial+2027%2F4")).is_ok());
        assert!(hold_change("s", &pairs("reason=++")).is_err());
    }
}

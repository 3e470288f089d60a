//! Case management through the gateway: case-management mutations are
//! routed to the survivor's owner, a partner agency's note lands at the
//! owner and travels back only under consent, and "my agency's follow-ups
//! due this week" gathers every node's, soonest first, across pages.

use exchange_test_kit::{CLINIC, LEGAL, SHELTER, TestFederation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const DUE: &str = "query($before: DateTime!, $first: Int, $after: String) {
  followUpsDue(before: $before, first: $first, after: $after) {
    edges { node { id survivorId kind dueAt assignedAgency } }
    pageInfo { hasNextPage endCursor }
  }
}";

const SCHEDULE: &str =
    "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }";

fn in_hours(hours: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&Rfc3339)
        .expect("RFC 3339")
}

async fn schedule(fed: &TestFederation, survivor: &str, assigned: &str, kind: &str, hours: i64) {
    let owner = survivor.split(':').next().expect("global ID");
    let answer = fed
        .gateway_gql(
            &fed.caseworker(owner),
            "CASE_MANAGEMENT",
            SCHEDULE,
            json!({ "input": { "survivorId": survivor, "kind": kind, "dueAt": in_hours(hours),
                               "assignedAgency": assigned } }),
        )
        .await;
    answer.id("scheduleFollowUp");
}

fn kinds(page: &Value) -> Vec<(String, String)> {
    page["followUpsDue"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["survivorId"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_owned(),
                e["node"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_due_are_gathered_from_every_node_and_partner_notes_land_at_the_owner() {
    let fed = TestFederation::start().await;
    let at_shelter = fed.register_survivor(SHELTER, "Sheltered").await;
    let at_legal = fed.register_survivor(LEGAL, "Advised").await;
    fed.refer_accepted(&at_shelter, CLINIC).await;
    fed.refer_accepted(&at_legal, CLINIC).await;

    schedule(&fed, &at_legal, CLINIC, "APPOINTMENT", 24).await;
    schedule(&fed, &at_shelter, CLINIC, "HOME_VISIT", 48).await;
    schedule(&fed, &at_legal, CLINIC, "PHONE_CALL", 96).await;
    schedule(&fed, &at_shelter, CLINIC, "CASE_REVIEW", 240).await;
    schedule(&fed, &at_shelter, SHELTER, "COURT_DATE", 12).await;

    // The clinic's week, two at a time, merged across the two owners.
    let clinic = fed.caseworker(CLINIC);
    let week = in_hours(24 * 7);
    let first = fed
        .gateway_gql(
            &clinic,
            "HEALTH_CARE",
            DUE,
            json!({ "before": week, "first": 2 }),
        )
        .await;
    assert_eq!(
        kinds(first.data()),
        vec![
            (LEGAL.to_owned(), "APPOINTMENT".to_owned()),
            (SHELTER.to_owned(), "HOME_VISIT".to_owned()),
        ],
        "{}",
        first.body
    );
    let info = &first.data()["followUpsDue"]["pageInfo"];
    assert_eq!(info["hasNextPage"], true);
    let second = fed
        .gateway_gql(
            &clinic,
            "HEALTH_CARE",
            DUE,
            json!({ "before": week, "first": 2, "after": info["endCursor"] }),
        )
        .await;
    assert_eq!(
        kinds(second.data()),
        vec![(LEGAL.to_owned(), "PHONE_CALL".to_owned())]
    );
    assert_eq!(
        second.data()["followUpsDue"]["pageInfo"]["hasNextPage"],
        false
    );

    // The shelter's own week holds only its own follow-up.
    let shelter_week = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            DUE,
            json!({ "before": week }),
        )
        .await;
    assert_eq!(
        kinds(shelter_week.data()),
        vec![(SHELTER.to_owned(), "COURT_DATE".to_owned())]
    );

    // The clinic's HEALTH note is routed to the shelter's node and kept
    // there; the clinic's consent covers IDENTITY and CASE only, so its
    // own note does not travel back to it, while the owner reads it.
    let note = fed
        .gateway_gql(
            &clinic,
            "HEALTH_CARE",
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id author { agency } } }",
            json!({ "input": { "survivorId": at_shelter, "category": "HEALTH", "body": "First consultation done" } }),
        )
        .await;
    let note_id = note.id("addCaseNote");
    assert!(note_id.starts_with(&format!("{SHELTER}:")), "{note_id}");
    let read = "query($id: ID!) { survivor(id: $id) { caseNotes { edges { node { body author { agency } } } } } }";
    let by_clinic = fed
        .gateway_gql(&clinic, "REFERRAL", read, json!({ "id": at_shelter }))
        .await;
    assert_eq!(
        by_clinic.data()["survivor"]["caseNotes"]["edges"],
        json!([]),
        "a HEALTH note travels only under HEALTH consent"
    );
    let by_owner = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            read,
            json!({ "id": at_shelter }),
        )
        .await;
    let edges = by_owner.data()["survivor"]["caseNotes"]["edges"].clone();
    assert_eq!(edges[0]["node"]["body"], "First consultation done");
    assert_eq!(edges[0]["node"]["author"]["agency"], CLINIC);
    let shelter_log = fed.node(SHELTER).audit_events().await;
    assert!(
        shelter_log
            .iter()
            .any(|e| e.kind == exchange_schema::AuditKind::CaseNoteAdded
                && e.actor_agency.as_ref().map(|a| a.as_str()) == Some(CLINIC)),
        "the owner's log records the partner's note"
    );
}

//! Case management at the owner node: case notes are append-only, authored
//! and travel only under their category's consent; a correction supersedes
//! and never edits; services move forward only; follow-ups are listed to
//! the agency they are assigned to; caseworkers are assigned by the owner's
//! supervisors. A partner agency (one that accepted a referral) works on
//! the case; any other agency is refused the same way whether the survivor
//! exists or not. Every change and every read of notes is audited.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;
use exchange_schema::Role;

const ADD_NOTE: &str = "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { \
    id category body author { agency user role } supersedes supersededBy } }";

const NOTES: &str = "query($id: ID!, $category: Category, $all: Boolean!, $first: Int, $after: String) { \
    survivor(id: $id) { id caseNotes(category: $category, includeSuperseded: $all, first: $first, after: $after) { \
    pageInfo { hasNextPage endCursor } edges { node { id category body author { agency role } \
    supersedes supersededBy } } } } }";

const RECORD_SERVICE: &str = "mutation($input: RecordServiceInput!) { recordService(input: $input) { \
    id kind providerAgency status startedAt deliveredAt outcome } }";

const UPDATE_SERVICE: &str = "mutation($id: ID!, $input: UpdateServiceInput!) { updateService(id: $id, input: $input) { \
    id status startedAt deliveredAt outcome } }";

const SCHEDULE: &str = "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { \
    id kind dueAt assignedAgency assignedUser status serviceId } }";

const DUE: &str = "query($before: DateTime!, $first: Int, $after: String) { followUpsDue(before: $before, first: $first, after: $after) { \
    pageInfo { hasNextPage endCursor } edges { node { id survivorId kind dueAt assignedAgency status } } } }";

const CASE_VIEW: &str = "query($id: ID!) { survivor(id: $id) { id services { id status } \
    followUps { id status } assignedCaseworkers { user } } }";

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

fn in_days(days: i64) -> String {
    rfc3339(OffsetDateTime::now_utc() + time::Duration::days(days))
}

/// Makes `agency` a partner on the survivor's case: the survivor consents
/// to IDENTITY, CASE and LEGAL for REFERRAL and LEGAL_ASSISTANCE, the owner
/// refers, and the agency accepts. Returns the referral's ID.
pub(crate) async fn make_partner(node: &TestNode, survivor: &str, agency: &str) -> String {
    partner_under(
        node,
        survivor,
        agency,
        &["IDENTITY", "CASE", "LEGAL"],
        &["REFERRAL", "LEGAL_ASSISTANCE"],
    )
    .await
}

/// Makes `agency` a partner under a consent to `categories` for `purposes`
/// (REFERRAL among them).
pub(crate) async fn partner_under(
    node: &TestNode,
    survivor: &str,
    agency: &str,
    categories: &[&str],
    purposes: &[&str],
) -> String {
    node.grant(survivor, agency, categories, purposes, json!({}))
        .await;
    let created = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("REFERRAL"),
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "toAgency": agency,
                               "service": "LEGAL_AID", "urgency": "ROUTINE" } }),
        )
        .await;
    let referral = created.id("createReferral");
    let accepted = node
        .gql(
            Some(&node.caseworker(agency)),
            Some("REFERRAL"),
            "mutation($id: ID!) { acceptReferral(id: $id) { status } }",
            json!({ "id": referral }),
        )
        .await;
    assert_eq!(accepted.data()["acceptReferral"]["status"], "ACCEPTED");
    referral
}

async fn add_note(
    node: &TestNode,
    token: &str,
    purpose: &str,
    survivor: &str,
    category: &str,
    body: &str,
    supersedes: Option<&str>,
) -> Gql {
    node.gql(
        Some(token),
        Some(purpose),
        ADD_NOTE,
        json!({ "input": { "survivorId": survivor, "category": category, "body": body,
                           "supersedes": supersedes } }),
    )
    .await
}

async fn notes(
    node: &TestNode,
    token: &str,
    purpose: &str,
    survivor: &str,
    variables: Value,
) -> Vec<Value> {
    let mut vars = json!({ "id": survivor, "all": false });
    vars.as_object_mut()
        .unwrap()
        .extend(variables.as_object().unwrap().clone());
    let answer = node.gql(Some(token), Some(purpose), NOTES, vars).await;
    answer.data()["survivor"]["caseNotes"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn bodies(notes: &[Value]) -> Vec<&str> {
    notes.iter().map(|n| n["body"].as_str().unwrap()).collect()
}

/// Notes are authored, travel by category, are corrected by superseding
/// (never edited), and paginate; refusals write nothing.
async fn case_notes_travel_by_category_and_are_corrected_by_superseding(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let legal = node.caseworker(LEGAL);
    let survivor = node.register_full_survivor("Noted").await;

    let case = add_note(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        "CASE",
        "Intake interview held",
        None,
    )
    .await;
    let case_note = case.id("addCaseNote");
    let n = &case.data()["addCaseNote"];
    assert_eq!(n["author"]["agency"], OWNER);
    assert_eq!(n["author"]["role"], "CASEWORKER");
    assert!(n["supersedes"].is_null() && n["supersededBy"].is_null());
    add_note(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        "HEALTH",
        "Referred for trauma counselling",
        None,
    )
    .await
    .id("addCaseNote");

    // Not a partner yet: refused, and the same refusal for a survivor
    // that does not exist, so the answer tells nothing.
    let before = node.count("case_notes").await;
    let stranger = add_note(
        &node,
        &legal,
        "LEGAL_ASSISTANCE",
        &survivor,
        "LEGAL",
        "x",
        None,
    )
    .await;
    assert_eq!(stranger.code(), "FORBIDDEN");
    let missing = format!("{OWNER}:0000000000000000000000000000dead");
    let ghost = add_note(
        &node,
        &legal,
        "LEGAL_ASSISTANCE",
        &missing,
        "LEGAL",
        "x",
        None,
    )
    .await;
    assert_eq!(ghost.code(), "FORBIDDEN");
    assert_eq!(
        ghost.errors()[0]["message"],
        stranger.errors()[0]["message"]
    );
    assert_eq!(node.count("case_notes").await, before);

    make_partner(&node, &survivor, LEGAL).await;
    let legal_note = add_note(
        &node,
        &legal,
        "LEGAL_ASSISTANCE",
        &survivor,
        "LEGAL",
        "Asylum claim lodged",
        None,
    )
    .await;
    assert_eq!(legal_note.data()["addCaseNote"]["author"]["agency"], LEGAL);

    // The partner sees CASE and LEGAL notes (consented), never HEALTH.
    let seen = notes(&node, &legal, "LEGAL_ASSISTANCE", &survivor, json!({})).await;
    assert_eq!(
        bodies(&seen),
        vec!["Asylum claim lodged", "Intake interview held"]
    );
    let last = node.audit_events().await.pop().unwrap();
    assert_eq!(last.reason, "CASE_NOTES");
    assert_eq!(last.actor_agency.unwrap().as_str(), LEGAL);
    let listed: Vec<&str> = last.disclosed.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, vec!["CASE", "LEGAL"]);
    // The owner sees all three, newest first, and can filter.
    let all = notes(&node, &owner, "CASE_MANAGEMENT", &survivor, json!({})).await;
    assert_eq!(all.len(), 3);
    let health = notes(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        json!({ "category": "HEALTH" }),
    )
    .await;
    assert_eq!(bodies(&health), vec!["Referred for trauma counselling"]);
    // An agency without consent for a category gets none of its notes.
    let partner_health = notes(
        &node,
        &legal,
        "LEGAL_ASSISTANCE",
        &survivor,
        json!({ "category": "HEALTH" }),
    )
    .await;
    assert!(partner_health.is_empty());

    // Corrections: the partner may not correct the owner's note; a
    // correction stays in its category; then the owner corrects it.
    let foreign = add_note(
        &node,
        &legal,
        "LEGAL_ASSISTANCE",
        &survivor,
        "CASE",
        "no",
        Some(&case_note),
    )
    .await;
    assert_eq!(foreign.code(), "FORBIDDEN");
    let moved = add_note(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        "HEALTH",
        "no",
        Some(&case_note),
    )
    .await;
    assert_eq!(moved.code(), "BAD_USER_INPUT");
    assert!(
        moved.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("category")
    );
    let fixed = add_note(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        "CASE",
        "Intake interview held on 2 May",
        Some(&case_note),
    )
    .await;
    let fixed_id = fixed.id("addCaseNote");
    assert_eq!(
        fixed.data()["addCaseNote"]["supersedes"],
        case_note.as_str()
    );
    let twice = add_note(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        "CASE",
        "again",
        Some(&case_note),
    )
    .await;
    assert_eq!(twice.code(), "CONFLICT");

    let current = notes(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        json!({ "category": "CASE" }),
    )
    .await;
    assert_eq!(bodies(&current), vec!["Intake interview held on 2 May"]);
    let history = notes(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &survivor,
        json!({ "category": "CASE", "all": true }),
    )
    .await;
    assert_eq!(
        bodies(&history),
        vec!["Intake interview held on 2 May", "Intake interview held"]
    );
    assert_eq!(history[1]["supersededBy"], fixed_id.as_str());
    assert_eq!(history[0]["supersedes"], case_note.as_str());

    // Pages of one, with the cursor.
    let first = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            NOTES,
            json!({ "id": survivor, "all": true, "first": 1 }),
        )
        .await;
    let page = &first.data()["survivor"]["caseNotes"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let mut seen_ids = vec![page["edges"][0]["node"]["id"].clone()];
    let mut after = page["pageInfo"]["endCursor"].clone();
    loop {
        let next = node
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                NOTES,
                json!({ "id": survivor, "all": true, "first": 1, "after": after }),
            )
            .await;
        let page = &next.data()["survivor"]["caseNotes"];
        seen_ids.push(page["edges"][0]["node"]["id"].clone());
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen_ids.len(), 4);

    // Bad input: empty body, control characters, a note of another node.
    for (body, supersedes) in [
        ("   ", None),
        ("bad\u{202E}text", None),
        ("ok", Some("police-central:abc")),
    ] {
        let refused = add_note(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &survivor,
            "CASE",
            body,
            supersedes,
        )
        .await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{body:?}");
    }

    // Every added note is audited by category, never with its text.
    let events = node.audit_events().await;
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == exchange_schema::AuditKind::CaseNoteAdded)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        added,
        vec!["NOTE:CASE", "NOTE:HEALTH", "NOTE:LEGAL", "CORRECTION:CASE"]
    );
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains("trauma counselling") && !log.contains("Asylum claim"));
}

/// Services move forward only, by the owner or the providing partner;
/// follow-ups go to the owner or a partner and are listed to the agency
/// they are assigned to, due soonest first; services and follow-ups travel
/// only where CASE is disclosed.
async fn services_and_follow_ups_reach_only_the_agencies_on_the_case(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let legal = node.caseworker(LEGAL);
    let clinic = node.caseworker(CLINIC);
    let survivor = node.register_full_survivor("Served").await;

    let service = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"), RECORD_SERVICE,
             json!({ "input": { "survivorId": survivor, "kind": "LEGAL_AID", "providerAgency": LEGAL } }))
        .await;
    let service_id = service.id("recordService");
    assert_eq!(service.data()["recordService"]["status"], "PLANNED");
    assert!(service.data()["recordService"]["startedAt"].is_null());

    // The provider is not a partner yet: it cannot move the service.
    let early = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            UPDATE_SERVICE,
            json!({ "id": service_id, "input": { "status": "IN_PROGRESS" } }),
        )
        .await;
    assert_eq!(early.code(), "FORBIDDEN");
    // An agency that is not the provider is told it does not exist.
    let other = node
        .gql(
            Some(&clinic),
            Some("HEALTH_CARE"),
            UPDATE_SERVICE,
            json!({ "id": service_id, "input": { "status": "IN_PROGRESS" } }),
        )
        .await;
    assert_eq!(other.code(), "NOT_FOUND");

    make_partner(&node, &survivor, LEGAL).await;
    let started = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            UPDATE_SERVICE,
            json!({ "id": service_id, "input": { "status": "IN_PROGRESS" } }),
        )
        .await;
    assert!(started.data()["updateService"]["startedAt"].is_string());
    let delivered = node
        .gql(Some(&legal), Some("LEGAL_ASSISTANCE"), UPDATE_SERVICE,
             json!({ "id": service_id, "input": { "status": "DELIVERED", "outcome": "Residence permit granted" } }))
        .await;
    let d = &delivered.data()["updateService"];
    assert_eq!(d["status"], "DELIVERED");
    assert!(d["deliveredAt"].is_string());
    let backwards = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            UPDATE_SERVICE,
            json!({ "id": service_id, "input": { "status": "CANCELLED" } }),
        )
        .await;
    assert_eq!(backwards.code(), "CONFLICT");
    // A partner records only services it provides itself.
    let for_another = node
        .gql(Some(&legal), Some("LEGAL_ASSISTANCE"), RECORD_SERVICE,
             json!({ "input": { "survivorId": survivor, "kind": "SHELTER", "providerAgency": SHELTER } }))
        .await;
    assert_eq!(for_another.code(), "BAD_USER_INPUT");

    // Follow-ups: to the partner (due in 3 and 30 days) and to the owner.
    let schedule = |token: String, input: Value| {
        let node = &node;
        async move {
            node.gql(
                Some(&token),
                Some("CASE_MANAGEMENT"),
                SCHEDULE,
                json!({ "input": input }),
            )
            .await
        }
    };
    let soon = schedule(owner.clone(), json!({ "survivorId": survivor, "kind": "COURT_DATE",
        "dueAt": in_days(3), "assignedAgency": LEGAL, "assignedUser": "lawyer-1", "serviceId": service_id }))
        .await
        .id("scheduleFollowUp");
    schedule(owner.clone(), json!({ "survivorId": survivor, "kind": "CASE_REVIEW", "dueAt": in_days(30), "assignedAgency": LEGAL }))
        .await
        .id("scheduleFollowUp");
    schedule(
        owner.clone(),
        json!({ "survivorId": survivor, "kind": "HOME_VISIT", "dueAt": in_days(2) }),
    )
    .await
    .id("scheduleFollowUp");
    let before = node.count("follow_ups").await;
    let to_stranger = schedule(
        owner.clone(),
        json!({ "survivorId": survivor, "kind": "PHONE_CALL",
        "dueAt": in_days(1), "assignedAgency": CLINIC }),
    )
    .await;
    assert_eq!(to_stranger.code(), "BAD_USER_INPUT");
    let in_the_past = schedule(
        owner.clone(),
        json!({ "survivorId": survivor, "kind": "PHONE_CALL", "dueAt": in_days(-3) }),
    )
    .await;
    assert_eq!(in_the_past.code(), "BAD_USER_INPUT");
    let bad_kind = schedule(
        owner.clone(),
        json!({ "survivorId": survivor, "kind": "LUNCH", "dueAt": in_days(1) }),
    )
    .await;
    assert_eq!(bad_kind.code(), "BAD_USER_INPUT");
    assert_eq!(node.count("follow_ups").await, before);

    // This week's follow-ups, per agency.
    let due = |token: String| {
        let node = &node;
        async move {
            let answer = node
                .gql(
                    Some(&token),
                    Some("CASE_MANAGEMENT"),
                    DUE,
                    json!({ "before": in_days(7) }),
                )
                .await;
            answer.data()["followUpsDue"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["node"]["kind"].as_str().unwrap().to_owned(),
                        e["node"]["assignedAgency"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        due(legal.clone()).await,
        vec![("COURT_DATE".to_owned(), LEGAL.to_owned())]
    );
    assert_eq!(
        due(owner.clone()).await,
        vec![("HOME_VISIT".to_owned(), OWNER.to_owned())]
    );
    assert!(due(clinic.clone()).await.is_empty());
    let listed = node.audit_events().await.pop().unwrap();
    assert_eq!(listed.reason, "FOLLOW_UPS_DUE");
    let auditor = node.token(OWNER, &[Role::Auditor]);
    let refused = node
        .gql(
            Some(&auditor),
            Some("CASE_MANAGEMENT"),
            DUE,
            json!({ "before": in_days(7) }),
        )
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");

    // The partner closes its follow-up; it leaves the listing.
    let close = "mutation($id: ID!, $s: FollowUpStatus!) { closeFollowUp(id: $id, status: $s) { status closedBy } }";
    let closed = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            close,
            json!({ "id": soon, "s": "DONE" }),
        )
        .await;
    assert_eq!(closed.data()["closeFollowUp"]["status"], "DONE");
    assert!(due(legal.clone()).await.is_empty());
    let again = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            close,
            json!({ "id": soon, "s": "MISSED" }),
        )
        .await;
    assert_eq!(again.code(), "CONFLICT");
    let by_clinic = node
        .gql(
            Some(&clinic),
            Some("HEALTH_CARE"),
            close,
            json!({ "id": soon, "s": "DONE" }),
        )
        .await;
    assert_eq!(by_clinic.code(), "NOT_FOUND");

    // Services and follow-ups travel as CASE: the partner (CASE consented)
    // sees them; a clinic without consent sees neither.
    let partner_view = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            CASE_VIEW,
            json!({ "id": survivor }),
        )
        .await;
    let s = &partner_view.data()["survivor"];
    assert_eq!(s["services"].as_array().unwrap().len(), 1);
    assert_eq!(s["followUps"].as_array().unwrap().len(), 3);
    assert!(
        s["assignedCaseworkers"].is_null(),
        "only the owner's staff see assignments"
    );
    let disclosed = node.audit_events().await.pop().unwrap();
    assert!(
        disclosed
            .disclosed
            .contains(&exchange_schema::Category::Case)
    );
    let clinic_view = node
        .gql(
            Some(&clinic),
            Some("HEALTH_CARE"),
            CASE_VIEW,
            json!({ "id": survivor }),
        )
        .await;
    let s = &clinic_view.data()["survivor"];
    assert!(s["services"].is_null() && s["followUps"].is_null());

    let events = node.audit_events().await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                exchange_schema::AuditKind::ServiceRecorded
                    | exchange_schema::AuditKind::FollowUpRecorded
            )
        })
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        steps,
        vec![
            "NEW->PLANNED",
            "PLANNED->IN_PROGRESS",
            "IN_PROGRESS->DELIVERED",
            "SCHEDULED:COURT_DATE",
            "SCHEDULED:CASE_REVIEW",
            "SCHEDULED:HOME_VISIT",
            "OPEN->DONE",
        ]
    );
}

/// Only the owner's supervisors assign caseworkers; a reassignment keeps
/// the original time of those who stay; only the owner's staff see it.
async fn caseworkers_are_assigned_by_the_owners_supervisors(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Assigned").await;
    let assign = "mutation($id: ID!, $users: [String!]!) { assignCaseworkers(survivorId: $id, users: $users) { user assignedAt assignedBy } }";
    let supervisor = node.token(OWNER, &[Role::Supervisor]);

    let by_caseworker = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            assign,
            json!({ "id": survivor, "users": ["cw-1"] }),
        )
        .await;
    assert_eq!(by_caseworker.code(), "FORBIDDEN");
    assert_eq!(node.count("case_assignments").await, 0);

    let first = node
        .gql(
            Some(&supervisor),
            Some("CASE_MANAGEMENT"),
            assign,
            json!({ "id": survivor, "users": ["cw-2", "cw-1", "cw-1"] }),
        )
        .await;
    let list = first.data()["assignCaseworkers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 2);
    let kept_at = list.iter().find(|a| a["user"] == "cw-2").unwrap()["assignedAt"].clone();
    let second = node
        .gql(
            Some(&supervisor),
            Some("CASE_MANAGEMENT"),
            assign,
            json!({ "id": survivor, "users": ["cw-2", "cw-3"] }),
        )
        .await;
    let list = second.data()["assignCaseworkers"]
        .as_array()
        .unwrap()
        .clone();
    let users: Vec<&str> = list.iter().map(|a| a["user"].as_str().unwrap()).collect();
    assert!(users.contains(&"cw-2") && users.contains(&"cw-3") && !users.contains(&"cw-1"));
    assert_eq!(
        list.iter().find(|a| a["user"] == "cw-2").unwrap()["assignedAt"],
        kept_at
    );

    let view = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            CASE_VIEW,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        view.data()["survivor"]["assignedCaseworkers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    make_partner(&node, &survivor, LEGAL).await;
    let partner = node
        .gql(
            Some(&node.token(LEGAL, &[Role::Supervisor])),
            Some("LEGAL_ASSISTANCE"),
            assign,
            json!({ "id": survivor, "users": ["x"] }),
        )
        .await;
    assert_eq!(partner.code(), "FORBIDDEN");
    let empty = node
        .gql(
            Some(&supervisor),
            Some("CASE_MANAGEMENT"),
            assign,
            json!({ "id": survivor, "users": [""] }),
        )
        .await;
    assert_eq!(empty.code(), "BAD_USER_INPUT");
    let assigned = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == exchange_schema::AuditKind::CaseworkersAssigned)
        .count();
    assert_eq!(assigned, 2);
}

on_both_backends!(
    case_notes_travel_by_category_and_are_corrected_by_superseding,
    services_and_follow_ups_reach_only_the_agencies_on_the_case,
    caseworkers_are_assigned_by_the_owners_supervisors,
);

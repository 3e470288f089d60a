//! Case transfer through the gateway and node to node: the whole case moves
//! to a node that accepted a referral, with the survivor's consent; the old
//! node keeps only tombstones that answer `MOVED` with the new ID; both
//! nodes audit it; a node refuses a hand-over its own checks refuse, even
//! when called directly; and a hand-over whose answer was lost leaves the
//! case read-only at the sender until it is asked again, never half-moved.

use exchange_schema::AuditKind;
use exchange_test_kit::{CLINIC, LEGAL, Options, SHELTER, TestFederation};
use serde_json::{Value, json};

const TRANSFER: &str = "mutation($input: TransferCaseInput!) { transferCase(input: $input) { \
    id survivorId newSurvivorId fromAgency toAgency status } }";

const CASE: &str = "query($id: ID!) { survivor(id: $id) { id identity { givenName } \
    caseNotes { edges { node { body } } } services { kind } followUps { kind assignedAgency } \
    carePlan { version goals } referrals { fromAgency toAgency status } } }";

/// A survivor at the shelter with a case: a note, a service, a follow-up,
/// a care plan, a grant to legal aid, and the clinic's accepted referral.
async fn case_at_shelter(fed: &TestFederation) -> String {
    let survivor = fed.register_survivor(SHELTER, "Moving").await;
    let shelter = fed.caseworker(SHELTER);
    let write = |query: &'static str, variables: Value| {
        let shelter = shelter.clone();
        async move {
            let answer = fed
                .gateway_gql(&shelter, "CASE_MANAGEMENT", query, variables)
                .await;
            answer.data();
        }
    };
    write(
        "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
        json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "Wants to move closer to work" } }),
    )
    .await;
    write(
        "mutation($input: RecordServiceInput!) { recordService(input: $input) { id } }",
        json!({ "input": { "survivorId": survivor, "kind": "SHELTER", "providerAgency": SHELTER, "status": "DELIVERED" } }),
    )
    .await;
    write(
        "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
        json!({ "input": { "survivorId": survivor, "goals": ["A room near her work"], "actions": [] } }),
    )
    .await;
    fed.grant(&survivor, LEGAL, &["IDENTITY"], &["LEGAL_ASSISTANCE"])
        .await;
    fed.refer_accepted(&survivor, CLINIC).await;
    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    write(
        "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }",
        json!({ "input": { "survivorId": survivor, "kind": "HOME_VISIT", "dueAt": due, "assignedAgency": CLINIC } }),
    )
    .await;
    survivor
}

async fn transfer(fed: &TestFederation, survivor: &str, to: &str) -> exchange_test_kit::Gql {
    fed.gateway_gql(
        &fed.caseworker(SHELTER),
        "CASE_MANAGEMENT",
        TRANSFER,
        json!({ "input": { "survivorId": survivor, "toAgency": to,
                           "consentMethod": "WITNESSED_WRITTEN", "witness": "Shelter supervisor" } }),
    )
    .await
}

/// Rows of the survivor left at a node, in every table that holds some.
async fn rows_left(fed: &TestFederation, agency: &str, survivor_local: &str) -> i64 {
    use sqlx::Row as _;
    let mut total = 0;
    for table in [
        "survivors WHERE id = $1",
        "consent_grants WHERE survivor_id = $1",
        "referrals WHERE survivor_id = $1",
        "case_notes WHERE survivor_id = $1",
        "services WHERE survivor_id = $1",
        "follow_ups WHERE survivor_id = $1",
        "care_plans WHERE survivor_id = $1",
        "portal_credentials WHERE survivor_id = $1",
    ] {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .bind(survivor_local)
            .fetch_one(fed.node(agency).state.db.pool())
            .await
            .unwrap()
            .get("n");
        total += n;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_moves_whole_to_a_node_that_accepted_it_and_the_old_id_answers_moved() {
    let fed = TestFederation::start().await;
    let survivor = case_at_shelter(&fed).await;
    let local = survivor.split(':').nth(1).unwrap().to_owned();

    // Legal aid never accepted a referral: refused, nothing moves.
    let refused = transfer(&fed, &survivor, LEGAL).await;
    assert_eq!(refused.code(), "CONFLICT", "{}", refused.body);
    // A partner cannot take the case over itself.
    let by_clinic = fed
        .gateway_gql(&fed.caseworker(CLINIC), "CASE_MANAGEMENT", TRANSFER,
            json!({ "input": { "survivorId": survivor, "toAgency": CLINIC, "consentMethod": "WITNESSED_VERBAL" } }))
        .await;
    assert_eq!(by_clinic.code(), "FORBIDDEN");

    let moved = transfer(&fed, &survivor, CLINIC).await;
    let t = &moved.data()["transferCase"];
    assert_eq!(t["status"], "COMPLETED");
    let new_id = format!("{CLINIC}:{local}");
    assert_eq!(t["newSurvivorId"], new_id.as_str());

    // The whole case is at the clinic, which now owns it.
    let read = fed
        .gateway_gql(
            &fed.caseworker(CLINIC),
            "CASE_MANAGEMENT",
            CASE,
            json!({ "id": new_id }),
        )
        .await;
    let s = &read.data()["survivor"];
    assert_eq!(s["identity"]["givenName"], "Moving");
    assert_eq!(
        s["caseNotes"]["edges"][0]["node"]["body"],
        "Wants to move closer to work"
    );
    assert_eq!(s["services"][0]["kind"], "SHELTER");
    assert_eq!(s["followUps"][0]["assignedAgency"], CLINIC);
    assert_eq!(s["carePlan"]["goals"][0], "A room near her work");
    assert_eq!(s["referrals"][0]["toAgency"], CLINIC);
    // The survivor's consent moved with it: legal aid still sees IDENTITY.
    let legal = fed
        .gateway_gql(
            &fed.caseworker(LEGAL),
            "LEGAL_ASSISTANCE",
            "query($id: ID!) { survivor(id: $id) { identity { givenName } case { riskLevel } } }",
            json!({ "id": new_id }),
        )
        .await;
    assert_eq!(legal.data()["survivor"]["identity"]["givenName"], "Moving");
    assert!(legal.data()["survivor"]["case"].is_null());

    // The shelter keeps nothing but tombstones; the old ID says where it went.
    assert_eq!(rows_left(&fed, SHELTER, &local).await, 0);
    let old = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            CASE,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(old.code(), "MOVED", "{}", old.body);
    assert_eq!(old.errors()[0]["extensions"]["movedTo"], new_id.as_str());
    let write_old = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "late" } }),
        )
        .await;
    assert_eq!(write_old.code(), "MOVED");

    // Both ends audited it, without contents.
    let steps = |events: Vec<exchange_schema::AuditEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter(|e| e.kind == AuditKind::CaseTransfer)
            .map(|e| e.reason)
            .collect()
    };
    assert_eq!(
        steps(fed.node(SHELTER).audit_events().await),
        vec!["STARTED", "COMPLETED"]
    );
    assert_eq!(
        steps(fed.node(CLINIC).audit_events().await),
        vec!["RECEIVED"]
    );
    let log = serde_json::to_string(&fed.node(CLINIC).audit_events().await).unwrap();
    assert!(!log.contains("closer to work"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_hand_over_its_own_checks_refuse_when_called_directly() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Forged").await;
    let local = survivor.split(':').nth(1).unwrap().to_owned();
    let receive = "mutation($input: ReceiveCaseTransferInput!) { receiveCaseTransfer(input: $input) { status } }";
    let package = |tables: Value| json!({ "survivor_id": local, "tables": tables }).to_string();
    let survivor_row = json!([{ "id": local, "created_at": 1, "updated_at": 1, "created_by": "x",
        "identity": "{\"givenName\":\"Forged\",\"languages\":[]}" }]);
    let send = |token: String, from: &'static str, package: String| {
        let fed = &fed;
        let local = local.clone();
        async move {
            fed.node_gql(
                CLINIC,
                &token,
                "CASE_MANAGEMENT",
                receive,
                json!({ "input": {
                "transferId": "0192abcd", "survivorId": format!("{CLINIC}:{local}"),
                "fromAgency": from, "consentMethod": "WITNESSED_VERBAL", "package": package } }),
            )
            .await
        }
    };
    // Legal aid cannot hand over the shelter's case.
    let forged = send(
        fed.caseworker(LEGAL),
        SHELTER,
        package(json!({ "survivors": survivor_row })),
    )
    .await;
    assert_eq!(forged.code(), "FORBIDDEN");
    // The shelter cannot push a case the clinic never accepted.
    let unasked = send(
        fed.caseworker(SHELTER),
        SHELTER,
        package(json!({ "survivors": survivor_row })),
    )
    .await;
    assert_eq!(unasked.code(), "CONFLICT");
    // Nor anything but the known tables of that one survivor.
    for bad in [
        package(json!({ "audit_log": [] })),
        package(json!({ "survivors": [{ "id": "someone-else", "created_at": 1 }] })),
        package(
            json!({ "survivors": survivor_row, "case_notes": [{ "survivor_id": local, "drop": "table" }] }),
        ),
        "not json".to_owned(),
    ] {
        let answer = send(fed.caseworker(SHELTER), SHELTER, bad).await;
        assert_eq!(answer.code(), "BAD_USER_INPUT", "{}", answer.body);
    }
    use sqlx::Row as _;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM survivors WHERE id = $1")
        .bind(&local)
        .fetch_one(fed.node(CLINIC).state.db.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 0, "nothing was imported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_without_an_answer_stays_read_only_until_asked_again() {
    let mut fed = TestFederation::start().await;
    let survivor = case_at_shelter(&fed).await;
    let local = survivor.split(':').nth(1).unwrap().to_owned();

    fed.node_mut(CLINIC).stop().await;
    let lost = transfer(&fed, &survivor, CLINIC).await;
    assert_eq!(lost.code(), "NODE_UNAVAILABLE", "{}", lost.body);
    // Still readable at the shelter, but read-only: every change refused.
    let read = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(read.data()["survivor"]["identity"]["givenName"], "Moving");
    let note = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "meanwhile" } }),
        )
        .await;
    assert_eq!(note.code(), "CONFLICT");
    // Another destination is refused while this one is pending.
    assert_eq!(transfer(&fed, &survivor, LEGAL).await.code(), "CONFLICT");

    // The clinic is back (on a new address); asking again finishes it.
    fed.restart_node(CLINIC).await;
    let finished = transfer(&fed, &survivor, CLINIC).await;
    assert_eq!(
        finished.data()["transferCase"]["status"],
        "COMPLETED",
        "{}",
        finished.body
    );
    assert_eq!(rows_left(&fed, SHELTER, &local).await, 0);
    let steps: Vec<String> = fed
        .node(SHELTER)
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::CaseTransfer)
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        steps,
        vec!["STARTED", "COMPLETED"],
        "one transfer, started once, finished once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_moves_between_nodes_that_require_mutual_tls() {
    let fed = TestFederation::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(fed.node(CLINIC).base.starts_with("https://"));
    let survivor = case_at_shelter(&fed).await;
    let moved = transfer(&fed, &survivor, CLINIC).await;
    assert_eq!(
        moved.data()["transferCase"]["status"],
        "COMPLETED",
        "{}",
        moved.body
    );
    let local = survivor.split(':').nth(1).unwrap();
    assert_eq!(rows_left(&fed, SHELTER, local).await, 0);
}

//! Idempotent mutations (`Idempotency-Key`): a retry changes nothing and
//! writes no second change entry; the same key with another request is
//! refused; keys are scoped per caller, kept for the configured window and
//! swept after it; a malformed key is bad input; a replay discloses only
//! what the caller may see now; concurrent retries make one change.

use exchange_schema::{AgencyId, AuditKind, Role};
use exchange_trust::MintRequest;
use serde_json::{Value, json};

use crate::common::*;

const REGISTER: &str = "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id identity { givenName } } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptReferral(id: $id) { status history { status } \
    survivor { identity { givenName } withheld { category reason } } } }";

/// Sends an operation with the raw `Idempotency-Key` header values given.
async fn keyed(
    node: &TestNode,
    token: &str,
    purpose: &str,
    keys: &[&str],
    query: &str,
    variables: Value,
) -> Gql {
    let mut request = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(token)
        .header("x-exchange-purpose", purpose)
        .json(&json!({ "query": query, "variables": variables }));
    for key in keys {
        request = request.header("Idempotency-Key", *key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    Gql { status, body }
}

/// Registers a survivor as the owner's caseworker under `key`.
async fn register(node: &TestNode, token: &str, key: &str, given_name: &str) -> Gql {
    keyed(
        node,
        token,
        "CASE_MANAGEMENT",
        &[key],
        REGISTER,
        json!({ "input": full_survivor_input(given_name) }),
    )
    .await
}

async fn count_kind(node: &TestNode, kind: AuditKind) -> usize {
    node.audit_events()
        .await
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

/// A token of `user` at `agency` (another subject than the harness's).
fn user_token(node: &TestNode, agency: &str, user: &str) -> String {
    let agency = AgencyId::parse(agency).unwrap();
    node.federation
        .provider(&agency)
        .unwrap()
        .mint(&MintRequest::new(
            agency.clone(),
            user.to_owned(),
            vec![Role::Caseworker],
            AUDIENCE,
        ))
        .unwrap()
}

/// A retry with the same key and body answers with the first result and
/// registers the survivor once, with one change entry in the audit log.
async fn a_retry_returns_the_first_result_and_registers_once(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let first = register(&node, &owner, "\"retry-1\"", "Once").await;
    let id = first.data()["registerSurvivor"]["id"].clone();
    assert!(id.is_string(), "{first:?}");
    for _ in 0..2 {
        let again = register(&node, &owner, "\"retry-1\"", "Once").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.data(), first.data(), "the first result again");
    }
    assert_eq!(node.count("survivors").await, 1);
    assert_eq!(count_kind(&node, AuditKind::SurvivorRegistered).await, 1);
    assert_eq!(node.count("idempotency_keys").await, 1);
}

/// The same key with another request is refused with a stable code, and
/// nothing is changed.
async fn the_same_key_with_another_body_is_refused(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    register(&node, &owner, "\"k-2\"", "First").await.data();
    let other = register(&node, &owner, "\"k-2\"", "Second").await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED");
    assert!(!other.body.to_string().contains("First"));
    // Another purpose is another request too.
    let purpose = keyed(
        &node,
        &owner,
        "SERVICE_COORDINATION",
        &["\"k-2\""],
        REGISTER,
        json!({ "input": full_survivor_input("First") }),
    )
    .await;
    assert_eq!(purpose.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(node.count("survivors").await, 1);
    assert_eq!(count_kind(&node, AuditKind::SurvivorRegistered).await, 1);
}

/// Another user of the same agency using the same key neither sees the
/// first user's result nor is refused: the key is theirs alone.
async fn keys_are_scoped_per_caller(backend: Backend) {
    let node = TestNode::start(backend).await;
    let alice = user_token(&node, OWNER, "alice");
    let bob = user_token(&node, OWNER, "bob");
    let by_alice = register(&node, &alice, "\"shared\"", "Alices").await;
    let by_bob = register(&node, &bob, "\"shared\"", "Bobs").await;
    assert_eq!(
        by_bob.data()["registerSurvivor"]["identity"]["givenName"],
        "Bobs"
    );
    let same_body = register(&node, &bob, "\"other\"", "Alices").await;
    let ids = [&by_alice, &by_bob, &same_body].map(|r| {
        r.data()["registerSurvivor"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(node.count("survivors").await, 3);
    // Alice's retry is still hers.
    let again = register(&node, &alice, "\"shared\"", "Alices").await;
    assert_eq!(again.data()["registerSurvivor"]["id"], ids[0].as_str());
}

/// Keys are kept for the configured window; the sweep deletes them after
/// it, and the key may then be used for a new change.
async fn keys_expire_after_the_window_and_are_swept(backend: Backend) {
    let node = TestNode::start_with(backend, |c| c.idempotency_window = 3600).await;
    let owner = node.caseworker(OWNER);
    let first = register(&node, &owner, "\"expiring\"", "Early").await;
    let now = time::OffsetDateTime::now_utc();
    let swept = agency_node::idempotency::sweep(&node.state.db, now + time::Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(swept, 0, "still inside the window");
    assert_eq!(node.count("idempotency_keys").await, 1);
    let swept = agency_node::idempotency::sweep(&node.state.db, now + time::Duration::minutes(61))
        .await
        .unwrap();
    assert_eq!(swept, 1, "the window ended");
    assert_eq!(node.count("idempotency_keys").await, 0);
    let later = register(&node, &owner, "\"expiring\"", "Early").await;
    assert_ne!(
        later.data()["registerSurvivor"]["id"],
        first.data()["registerSurvivor"]["id"]
    );
    assert_eq!(node.count("survivors").await, 2);
}

/// Malformed keys are refused as bad input before anything runs, on
/// mutations and queries alike.
async fn a_malformed_key_is_bad_user_input(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let too_long = format!("\"{}\"", "k".repeat(256));
    for keys in [
        vec!["bare-token"],
        vec!["\"\""],
        vec![too_long.as_str()],
        vec!["\"a\"", "\"b\""],
        vec!["\"unterminated"],
    ] {
        let refused = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &keys,
            REGISTER,
            json!({ "input": full_survivor_input("Never") }),
        )
        .await;
        assert_eq!(refused.status, 400, "{keys:?}: {refused:?}");
        assert_eq!(refused.code(), "BAD_USER_INPUT");
    }
    let query = keyed(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &["bare"],
        "{ __typename }",
        json!({}),
    )
    .await;
    assert_eq!(query.code(), "BAD_USER_INPUT");
    assert_eq!(node.count("survivors").await, 0);
}

/// A well-formed key on a query is ignored: nothing is stored, and the
/// query is answered afresh each time.
async fn a_query_ignores_the_key(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Read").await;
    for _ in 0..2 {
        let read = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &["\"q\""],
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
        assert_eq!(read.data()["survivor"]["identity"]["givenName"], "Read");
    }
    assert_eq!(node.count("idempotency_keys").await, 0);
}

/// A change that failed keeps no key: the retry runs again (here it fails
/// again the same way) instead of replaying a failure.
async fn a_failed_change_keeps_no_key(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let update = "mutation($id: ID!) { updateSurvivor(id: $id, input: { health: { medicalNotes: \"x\" } }) { id } }";
    let missing = format!("{OWNER}:0000000000000000000000000000dead");
    for _ in 0..2 {
        let failed = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &["\"failing\""],
            update,
            json!({ "id": missing }),
        )
        .await;
        assert_eq!(failed.code(), "NOT_FOUND");
        assert_eq!(node.count("idempotency_keys").await, 0);
    }
}

/// Two root fields under one key are remembered each on its own: a retry
/// of the operation makes neither change again.
async fn each_root_field_is_deduplicated(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let two = "mutation($a: RegisterSurvivorInput!, $b: RegisterSurvivorInput!) { \
        a: registerSurvivor(input: $a) { id } b: registerSurvivor(input: $b) { id } }";
    let variables = json!({ "a": full_survivor_input("A"), "b": full_survivor_input("B") });
    let first = keyed(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &["\"two\""],
        two,
        variables.clone(),
    )
    .await;
    let again = keyed(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &["\"two\""],
        two,
        variables,
    )
    .await;
    assert_ne!(first.data()["a"]["id"], first.data()["b"]["id"]);
    assert_eq!(again.data(), first.data());
    assert_eq!(node.count("survivors").await, 2);
    assert_eq!(node.count("idempotency_keys").await, 2);
}

/// Retries sent at the same moment make the change once: each answers
/// with the one survivor's ID (or is told the first is still in progress).
async fn concurrent_retries_make_one_change(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    for round in 0..4 {
        let key = format!("\"race-{round}\"");
        let (a, b, c) = tokio::join!(
            register(&node, &owner, &key, "Raced"),
            register(&node, &owner, &key, "Raced"),
            register(&node, &owner, &key, "Raced"),
        );
        let ids: Vec<&Value> = [&a, &b, &c]
            .into_iter()
            .filter(|r| r.body.get("errors").is_none())
            .map(|r| &r.body["data"]["registerSurvivor"]["id"])
            .collect();
        assert!(!ids.is_empty(), "{a:?} {b:?} {c:?}");
        assert!(ids.iter().all(|id| *id == ids[0]), "{a:?} {b:?} {c:?}");
        for r in [&a, &b, &c] {
            if r.body.get("errors").is_some() {
                assert_eq!(r.code(), "CONFLICT", "{r:?}");
            }
        }
    }
    assert_eq!(node.count("survivors").await, 4);
    assert_eq!(count_kind(&node, AuditKind::SurvivorRegistered).await, 4);
}

/// A retried answer to a referral after the survivor revoked the consent
/// changes nothing and shows none of the survivor's data: the replay is
/// resolved under the consents in force now, not served from a copy.
async fn a_replay_after_revocation_discloses_nothing_withheld(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Secretname").await;
    let grant = node
        .grant(&survivor, LEGAL, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    let created = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("REFERRAL"),
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "toAgency": LEGAL, "service": "LEGAL_AID", "urgency": "URGENT" } }),
        )
        .await;
    let referral = created.data()["createReferral"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let legal = node.caseworker(LEGAL);
    let first = keyed(
        &node,
        &legal,
        "REFERRAL",
        &["\"accept\""],
        ACCEPT,
        json!({ "id": referral }),
    )
    .await;
    assert_eq!(first.data()["acceptReferral"]["status"], "ACCEPTED");
    assert_eq!(
        first.data()["acceptReferral"]["survivor"]["identity"]["givenName"],
        "Secretname"
    );
    node.revoke(&grant).await;

    let replay = keyed(
        &node,
        &legal,
        "REFERRAL",
        &["\"accept\""],
        ACCEPT,
        json!({ "id": referral }),
    )
    .await;
    let answer = &replay.body["data"]["acceptReferral"];
    assert_eq!(answer["status"], "ACCEPTED", "{replay:?}");
    assert_eq!(
        answer["history"].as_array().unwrap().len(),
        2,
        "no second step"
    );
    assert!(
        !replay.body.to_string().contains("Secretname"),
        "{replay:?}"
    );
    let survivor_view = &answer["survivor"];
    if !survivor_view.is_null() {
        assert!(survivor_view["identity"].is_null(), "{replay:?}");
        assert!(
            survivor_view["withheld"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["category"] == "IDENTITY"),
            "{replay:?}"
        );
    }
    assert_eq!(count_kind(&node, AuditKind::ReferralStatusChanged).await, 1);
}

/// A consent code is shown once and never stored in clear, so a retried
/// `issueConsentCode` is refused and issues nothing new.
async fn a_retried_consent_code_is_not_shown_again(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Portal").await;
    let issue = "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code issuedAt } }";
    let first = keyed(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &["\"code\""],
        issue,
        json!({ "id": survivor }),
    )
    .await;
    let code = first.data()["issueConsentCode"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = keyed(
        &node,
        &owner,
        "CASE_MANAGEMENT",
        &["\"code\""],
        issue,
        json!({ "id": survivor }),
    )
    .await;
    assert_eq!(again.code(), "CONFLICT");
    assert!(!again.body.to_string().contains(&code));
    assert_eq!(count_kind(&node, AuditKind::ConsentCodeIssued).await, 1);
}

/// The case-management changes honour the key as the others do: a retried
/// note, service, follow-up or plan proposal is made once and answers the
/// same record; the key with another body is refused.
async fn case_changes_are_made_once_under_a_key(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let survivor = node.register_full_survivor("Keyed").await;
    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let changes = [
        (
            "addCaseNote",
            "case_notes",
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "once" } }),
        ),
        (
            "recordService",
            "services",
            "mutation($input: RecordServiceInput!) { recordService(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "kind": "SHELTER", "providerAgency": OWNER } }),
        ),
        (
            "scheduleFollowUp",
            "follow_ups",
            "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "kind": "HOME_VISIT", "dueAt": due } }),
        ),
        (
            "proposeCarePlan",
            "care_plans",
            "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
            json!({ "input": { "survivorId": survivor, "goals": ["g"], "actions": [] } }),
        ),
    ];
    for (i, (field, table, query, variables)) in changes.iter().enumerate() {
        let key = format!("\"case-{i}\"");
        let first = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &[&key],
            query,
            variables.clone(),
        )
        .await;
        let again = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &[&key],
            query,
            variables.clone(),
        )
        .await;
        assert_eq!(
            first.data()[*field],
            again.data()[*field],
            "{field} answers the same"
        );
        assert_eq!(node.count(table).await, 1, "{field} made once");
        let other = keyed(
            &node,
            &owner,
            "CASE_MANAGEMENT",
            &[&key],
            changes[0].2,
            json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "another" } }),
        )
        .await;
        assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED", "{field}");
    }
}

on_both_backends!(
    case_changes_are_made_once_under_a_key,
    a_retry_returns_the_first_result_and_registers_once,
    the_same_key_with_another_body_is_refused,
    keys_are_scoped_per_caller,
    keys_expire_after_the_window_and_are_swept,
    a_malformed_key_is_bad_user_input,
    a_query_ignores_the_key,
    a_failed_change_keeps_no_key,
    each_root_field_is_deduplicated,
    concurrent_retries_make_one_change,
    a_replay_after_revocation_discloses_nothing_withheld,
    a_retried_consent_code_is_not_shown_again,
);

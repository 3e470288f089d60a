//! Retention and erasure: the expiry job with an injected clock erases a
//! category when its period ends and the whole record later, a legal hold
//! stops it until lifted, an erased part reads as erased (when, which
//! rule) and never as not found, the audit log still verifies, and a
//! backup of the records taken before the erasure, restored beside the
//! live key store, cannot read what was erased (crypto-shredding reaches
//! backups) while it reads everything else. Bad requests are refused with
//! stable codes.

use std::path::Path;

use agency_node::retention::{self, RetentionRules};
use exchange_audit::verify::{VerifyOptions, verify_database};
use exchange_schema::{AuditKind, Role};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::common::{
    Backend, LEGAL, OWNER, SHELTER, SURVIVOR_QUERY, TestNode, fresh_postgres_database,
    on_both_backends,
};

on_both_backends!(
    periods_end_holds_stop_them_and_erasure_reaches_a_restored_backup,
    holds_and_erasure_are_for_the_owners_officers_with_reasons,
    a_key_destruction_that_failed_is_finished_by_the_next_run,
    notes_of_an_erased_category_are_left_out_and_the_rest_stay,
);

const READ: &str = "query($id: ID!) { survivor(id: $id) { id identity { givenName } \
    contact { phone } withheld { category reason erasedAt erasureRule } } }";

fn officer(node: &TestNode) -> String {
    node.token(OWNER, &[Role::DataProtectionOfficer])
}

async fn read(node: &TestNode, id: &str) -> exchange_test_kit::Gql {
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("CASE_MANAGEMENT"),
        READ,
        json!({ "id": id }),
    )
    .await
}

fn withheld(survivor: &Value, category: &str) -> Value {
    survivor["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["category"] == category)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A copy of the records database as a backup tool makes it, while the
/// node runs: SQLite's online backup (`VACUUM INTO`), or `pg_dump` into a
/// fresh database. Returns the copy's URL (and the scratch database that
/// holds it).
async fn backup(
    node: &TestNode,
    dir: &Path,
) -> (String, Option<exchange_test_kit::scratch::ScratchDatabase>) {
    match node.backend {
        Backend::Sqlite => {
            let file = dir.join("backup.db");
            sqlx::query(&format!("VACUUM INTO '{}'", file.display()))
                .execute(node.state.db.pool())
                .await
                .unwrap();
            (format!("sqlite://{}", file.display()), None)
        }
        Backend::Postgres => {
            let copy = fresh_postgres_database().await;
            let dump = std::process::Command::new("pg_dump")
                .args([
                    "--no-owner",
                    "--no-privileges",
                    "--dbname",
                    &node.database_url,
                ])
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            let mut restore = std::process::Command::new("psql")
                .args([
                    "--quiet",
                    "--set",
                    "ON_ERROR_STOP=1",
                    "--dbname",
                    copy.url(),
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("psql runs");
            use std::io::Write as _;
            restore
                .stdin
                .take()
                .unwrap()
                .write_all(&dump.stdout)
                .unwrap();
            assert!(restore.wait().unwrap().success());
            (copy.url().to_owned(), Some(copy))
        }
    }
}

async fn periods_end_holds_stop_them_and_erasure_reaches_a_restored_backup(backend: Backend) {
    let node = TestNode::start(backend).await;
    let kept = node.register_full_survivor("Kept Person").await;
    let shredded = node.register_full_survivor("Shredded Person").await;
    let held = node.register_full_survivor("Held Person").await;
    let rules = RetentionRules::parse(
        "test",
        r#"
        [[rule]]
        name = "contact-after-30-days"
        part = "CONTACT"
        after = "LAST_ACTIVITY"
        days = 30
        [[rule]]
        name = "record-after-90-days"
        part = "RECORD"
        after = "REGISTERED"
        days = 90
        "#,
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();

    // Nothing is due yet.
    let early = retention::run(&node.state, &rules, now + Duration::days(29))
        .await
        .unwrap();
    assert_eq!(early, retention::RetentionRun::default());

    // A hold, with its reason, on one record.
    let hold = node
        .gql(
            Some(&officer(&node)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { placeLegalHold(survivorId: $id, reason: \"Court order 2026/114\") { id reason liftedAt } }",
            json!({ "id": held }),
        )
        .await;
    assert_eq!(
        hold.data()["placeLegalHold"]["reason"],
        "Court order 2026/114"
    );

    // Thirty-one days on: contact details go, except under the hold.
    let month = retention::run(&node.state, &rules, now + Duration::days(31))
        .await
        .unwrap();
    let erased: Vec<&str> = month.erased.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(erased.len(), 2, "{month:?}");
    assert_eq!(month.held.len(), 1);
    assert!(held.ends_with(&month.held[0]));
    let answer = read(&node, &kept).await;
    let survivor = &answer.data()["survivor"];
    assert_eq!(survivor["identity"]["givenName"], "Kept Person");
    assert!(survivor["contact"].is_null());
    let contact = withheld(survivor, "CONTACT");
    assert_eq!(contact["reason"], "ERASED");
    assert_eq!(contact["erasureRule"], "contact-after-30-days");
    assert!(contact["erasedAt"].as_str().is_some());
    let held_answer = read(&node, &held).await;
    assert_eq!(
        held_answer.data()["survivor"]["contact"]["phone"],
        "+00 000 0000"
    );

    // A pending referral of the record that is about to be erased.
    node.grant(&shredded, LEGAL, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    let referral = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("REFERRAL"),
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": { "survivorId": shredded, "toAgency": LEGAL,
                               "service": "LEGAL_AID", "urgency": "ROUTINE" } }),
        )
        .await
        .id("createReferral");

    // Erasing the whole of one record now, on request; a backup of the
    // records taken just before it.
    let dir = tempfile::tempdir().unwrap();
    let (backup_url, _backup_db) = backup(&node, dir.path()).await;
    let erasure = node
        .gql(
            Some(&officer(&node)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [RECORD]) { erased rule } }",
            json!({ "id": shredded }),
        )
        .await;
    assert_eq!(erasure.data()["eraseSurvivorRecord"]["rule"], "REQUEST");
    // The pending referral is withdrawn, and legal aid is told the record
    // is gone (its global ID only).
    let referral_now = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("REFERRAL"),
            "query($id: ID!) { referral(id: $id) { status } }",
            json!({ "id": referral }),
        )
        .await;
    assert_eq!(referral_now.data()["referral"]["status"], "WITHDRAWN");
    let told = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("CASE_MANAGEMENT"),
            "{ notifications(first: 50) { edges { node { kind subjectId } } } }",
            json!({}),
        )
        .await;
    let told = told.data()["notifications"]["edges"].to_string();
    assert!(
        told.contains("RECORD_ERASED") && told.contains(&shredded),
        "{told}"
    );
    let gone = read(&node, &shredded).await;
    assert_eq!(gone.code(), "ERASED", "never NOT_FOUND: {:?}", gone.body);
    assert_eq!(gone.errors()[0]["extensions"]["erasureRule"], "REQUEST");
    assert!(gone.errors()[0]["extensions"]["erasedAt"].is_string());
    // The listing leaves an erased record out rather than failing.
    let list = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "{ survivors(first: 50) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids = list.data()["survivors"]["edges"].to_string();
    assert!(ids.contains(&kept) && !ids.contains(&shredded));

    // The backup, restored as a node beside the live key store and KEK:
    // what was erased after it was taken cannot be read from it.
    let kek = node.data_dir.join(agency_node::vault::kek::KEK_FILE);
    let keys = exchange_service::db::sqlite_url(&node.data_dir, agency_node::vault::KEY_STORE_FILE);
    let restored = TestNode::start_with(backend, |config| {
        config.database_url = Some(agency_node::config::DatabaseUrl(backup_url.clone()));
        config.vault.kek_file = Some(kek.clone());
        config.vault.key_store_url = Some(agency_node::config::DatabaseUrl(keys.clone()));
    })
    .await;
    let from_backup = read(&restored, &shredded).await;
    assert_eq!(from_backup.code(), "ERASED", "{:?}", from_backup.body);
    let kept_from_backup = read(&restored, &kept).await;
    assert_eq!(
        kept_from_backup.data()["survivor"]["identity"]["givenName"],
        "Kept Person"
    );

    // Ninety-one days on: the whole record goes, except under the hold;
    // lifting the hold lets the next run erase it.
    let quarter = retention::run(&node.state, &rules, now + Duration::days(91))
        .await
        .unwrap();
    assert_eq!(quarter.erased.len(), 1, "{quarter:?}");
    assert_eq!(quarter.held.len(), 1);
    assert_eq!(read(&node, &kept).await.code(), "ERASED");
    let lifted = node
        .gql(
            Some(&officer(&node)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { liftLegalHold(survivorId: $id) { liftedAt liftedBy } }",
            json!({ "id": held }),
        )
        .await;
    assert!(lifted.data()["liftLegalHold"]["liftedAt"].is_string());
    let after_hold = retention::run(&node.state, &rules, now + Duration::days(92))
        .await
        .unwrap();
    assert_eq!(
        after_hold.erased.len(),
        2,
        "contact by its rule, the rest by the record's: {after_hold:?}"
    );
    let held_gone = read(&node, &held).await;
    assert_eq!(held_gone.code(), "ERASED");
    assert_eq!(
        held_gone.errors()[0]["extensions"]["erasureRule"],
        "record-after-90-days"
    );
    // Running again changes nothing.
    assert_eq!(
        retention::run(&node.state, &rules, now + Duration::days(93))
            .await
            .unwrap(),
        retention::RetentionRun::default()
    );

    // Every step is in the log, which still verifies; no entry holds the
    // hold's reason.
    let events = node.audit_events().await;
    let erasures = events
        .iter()
        .filter(|e| e.kind == AuditKind::RecordErased)
        .count();
    assert_eq!(
        erasures, 6,
        "2 contacts, 1 request, 1 record, then 2 for the held"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == AuditKind::LegalHold)
            .count(),
        2
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("Court order"));
    verify_database(&node.state.db, &VerifyOptions::default())
        .await
        .expect("the log verifies after erasure");
}

async fn holds_and_erasure_are_for_the_owners_officers_with_reasons(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Asked For").await;
    let hold = "mutation($id: ID!, $reason: String!) { placeLegalHold(survivorId: $id, reason: $reason) { id } }";
    let erase =
        "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [HEALTH]) { erased } }";
    // A caseworker, and another agency's data-protection officer: refused.
    for token in [
        node.caseworker(OWNER),
        node.token(SHELTER, &[Role::DataProtectionOfficer]),
    ] {
        let refused = node
            .gql(
                Some(&token),
                Some("CASE_MANAGEMENT"),
                hold,
                json!({ "id": survivor, "reason": "x" }),
            )
            .await;
        assert_eq!(refused.code(), "FORBIDDEN");
        let refused = node
            .gql(
                Some(&token),
                Some("CASE_MANAGEMENT"),
                erase,
                json!({ "id": survivor }),
            )
            .await;
        assert_eq!(refused.code(), "FORBIDDEN");
    }
    // A hold without a reason; a hold on a record that does not exist.
    let officer = officer(&node);
    let blank = node
        .gql(
            Some(&officer),
            Some("CASE_MANAGEMENT"),
            hold,
            json!({ "id": survivor, "reason": "   " }),
        )
        .await;
    assert_eq!(blank.code(), "BAD_USER_INPUT");
    let ghost = node
        .gql(
            Some(&officer),
            Some("CASE_MANAGEMENT"),
            hold,
            json!({ "id": format!("{OWNER}:nobody"), "reason": "x" }),
        )
        .await;
    assert_eq!(ghost.code(), "NOT_FOUND");
    let no_hold = node
        .gql(
            Some(&officer),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { liftLegalHold(survivorId: $id) { id } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(no_hold.code(), "NOT_FOUND");
    // Under a hold, erasure waits and says why.
    node.gql(
        Some(&officer),
        Some("CASE_MANAGEMENT"),
        hold,
        json!({ "id": survivor, "reason": "Appeal pending" }),
    )
    .await
    .data();
    let waits = node
        .gql(
            Some(&officer),
            Some("CASE_MANAGEMENT"),
            erase,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(waits.code(), "CONFLICT");
    assert!(
        waits.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("Appeal pending")
    );
    // Nothing was erased by the refusals: the record reads whole.
    let answer = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(
        answer.data()["survivor"]["health"]["medicalNotes"],
        "invented note"
    );

    // The owner's staff see the schedule, with the hold; no one else does.
    let schedule = "query($id: ID!) { retentionSchedule(survivorId: $id) { parts { part dueAt rule why erasedAt } legalHold { reason } } }";
    let seen = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            schedule,
            json!({ "id": survivor }),
        )
        .await;
    let seen = &seen.data()["retentionSchedule"];
    assert_eq!(seen["legalHold"]["reason"], "Appeal pending");
    let parts = seen["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 6);
    let health = parts.iter().find(|p| p["part"] == "HEALTH").unwrap();
    assert_eq!(health["rule"], "health-2y-after-last-activity");
    assert!(health["dueAt"].is_string() && health["erasedAt"].is_null());
    let other = node
        .gql(
            Some(&node.caseworker(SHELTER)),
            Some("CASE_MANAGEMENT"),
            schedule,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(other.code(), "FORBIDDEN");
}

/// Makes the key store refuse to change any key (as a full disk or an I/O
/// error would), or lets it again. The harness keeps the key store in
/// SQLite beside the records on both backends (`keys.db`, the default).
async fn key_store_refuses_changes(node: &TestNode, refuse: bool) {
    let store = node.state.vault.key_store();
    assert_eq!(store.backend(), exchange_service::db::Backend::Sqlite);
    let statement = if refuse {
        "CREATE TRIGGER refuse_key_changes BEFORE UPDATE ON survivor_keys \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    } else {
        "DROP TRIGGER refuse_key_changes"
    };
    sqlx::query(statement).execute(store.pool()).await.unwrap();
}

/// The erasure is recorded and audited, then the key store fails to
/// destroy the key: the request fails, and the next run of the expiry job
/// (nothing else due) destroys it, after which the part reads as erased.
async fn a_key_destruction_that_failed_is_finished_by_the_next_run(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Half Erased").await;
    key_store_refuses_changes(&node, true).await;
    let failed = node
        .gql(
            Some(&officer(&node)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [CONTACT]) { erased } }",
            json!({ "id": survivor }),
        )
        .await;
    assert!(!failed.errors().is_empty(), "{:?}", failed.body);
    // A trigger's refusal is not one of the storage fault codes the node
    // retries on: the request fails as internal, its detail in the log.
    assert_eq!(failed.code(), "INTERNAL_SERVER_ERROR", "{:?}", failed.body);
    assert_eq!(node.count("erasures").await, 1, "the erasure is recorded");
    assert!(
        node.audit_events()
            .await
            .iter()
            .any(|e| e.kind == AuditKind::RecordErased),
        "and audited"
    );

    // Still failing: the run reports the failure and destroys nothing.
    let rules = node.state.retention.clone();
    assert!(
        retention::run(&node.state, &rules, OffsetDateTime::now_utc())
            .await
            .is_err()
    );
    key_store_refuses_changes(&node, false).await;
    let report = retention::run(&node.state, &rules, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(report.erased.is_empty(), "nothing else was due: {report:?}");
    let after = read(&node, &survivor).await;
    let after = &after.data()["survivor"];
    assert!(after["contact"].is_null(), "{after}");
    assert_eq!(withheld(after, "CONTACT")["reason"], "ERASED", "{after}");
    assert_eq!(after["identity"]["givenName"], "Half Erased");
}

/// Case notes of an erased category are left out of the note pages; notes
/// of the other categories still read.
async fn notes_of_an_erased_category_are_left_out_and_the_rest_stay(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Noted").await;
    let owner = node.caseworker(OWNER);
    for (category, body) in [
        ("HEALTH", "Sees the clinic on Tuesdays"),
        ("CASE", "Found a job"),
    ] {
        node.gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": category, "body": body } }),
        )
        .await
        .data();
    }
    const NOTES: &str = "query($id: ID!) { survivor(id: $id) { caseNotes(first: 50) { \
        nodes { category body } } } }";
    let notes = |answer: &exchange_test_kit::Gql| -> Vec<String> {
        answer.data()["survivor"]["caseNotes"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["body"].as_str().unwrap().to_owned())
            .collect()
    };
    let supervisor = node.token(OWNER, &[Role::Supervisor]);
    let read_notes = || {
        node.gql(
            Some(&supervisor),
            Some("CASE_MANAGEMENT"),
            NOTES,
            json!({ "id": survivor }),
        )
    };
    let before = notes(&read_notes().await);
    assert!(
        before.contains(&"Sees the clinic on Tuesdays".to_owned()),
        "{before:?}"
    );
    node.gql(
        Some(&officer(&node)),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [HEALTH]) { erased } }",
        json!({ "id": survivor }),
    )
    .await
    .data();
    let after = notes(&read_notes().await);
    assert_eq!(after, vec!["Found a job".to_owned()]);
}

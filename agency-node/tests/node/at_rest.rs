//! Encryption at rest: a copy of the records database, read raw (the SQLite
//! file and its write-ahead log byte by byte; every PostgreSQL table row as
//! text), holds none of the survivors' content, while the node reads all of
//! it back through its data keys.

use std::collections::BTreeSet;

use agency_node::seed::seed_demo;
use agency_node::state::Caller;
use agency_node::store::{care_plan, case, grants, referrals, survivors};
use exchange_schema::{AgencyId, Category, Purpose};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::common::{Backend, LEGAL, OWNER, SURVIVOR_QUERY, TestNode, on_both_backends};

on_both_backends!(
    a_raw_copy_of_the_records_holds_no_survivor_content,
    a_key_store_that_cannot_answer_discloses_and_writes_nothing
);

fn intake(node: &TestNode) -> Caller {
    Caller {
        principal: node
            .state
            .verifier
            .verify(&node.caseworker(OWNER))
            .expect("the test token verifies"),
        purpose: Some(Purpose::CaseManagement),
        justification: None,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
    }
}

/// The free-text leaves of a JSON value worth looking for in raw bytes:
/// at least six characters and not a code of a closed list (`FORCED_LABOUR`,
/// `pending`: such words are in the schema and in clear columns anyway).
fn texts(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let code = s
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
                || s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if s.chars().count() >= 6 && !code {
                out.insert(s.clone());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
        Value::Object(map) => map.values().for_each(|v| texts(v, out)),
        _ => {}
    }
}

/// Every survivor's content as the node reads it back, through its keys.
async fn content(node: &TestNode) -> BTreeSet<String> {
    let vault = &node.state.vault;
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let mut out = BTreeSet::new();
    let all = survivors::page(&mut conn, vault, None, 1000).await.unwrap();
    assert!(!all.is_empty());
    for s in &all {
        for category in [
            serde_json::to_value(&s.identity).unwrap(),
            serde_json::to_value(&s.contact).unwrap(),
            serde_json::to_value(&s.case).unwrap(),
            serde_json::to_value(&s.health).unwrap(),
            serde_json::to_value(&s.legal).unwrap(),
        ] {
            texts(&category, &mut out);
        }
        let categories = [
            Category::Identity,
            Category::Contact,
            Category::Case,
            Category::Health,
            Category::Legal,
        ];
        for note in case::notes_page(&mut conn, vault, &s.id, &categories, true, None, 1000)
            .await
            .unwrap()
        {
            texts(&json!(note.body), &mut out);
        }
        for service in case::services_for(&mut conn, vault, &s.id).await.unwrap() {
            texts(&json!(service.outcome), &mut out);
        }
        for plan in care_plan::versions(&mut conn, vault, &s.id).await.unwrap() {
            texts(&json!(plan.goals), &mut out);
            for action in &plan.actions {
                texts(&json!(action.description), &mut out);
            }
            if let Some(agreement) = &plan.agreement {
                texts(&json!(agreement.witness), &mut out);
            }
        }
        for referral in referrals::for_survivor(&mut conn, vault, &s.id)
            .await
            .unwrap()
        {
            texts(&json!(referral.notes), &mut out);
            for event in referrals::history(&mut conn, vault, &referral.id)
                .await
                .unwrap()
            {
                texts(&json!(event.note), &mut out);
            }
        }
        for grant in grants::for_survivor(&mut conn, vault, &s.id).await.unwrap() {
            texts(&json!(grant.witness), &mut out);
            texts(&json!(grant.revocation_reason), &mut out);
        }
        for request in agency_node::store::rights::for_survivor(&mut conn, vault, &s.id)
            .await
            .unwrap()
        {
            texts(&json!(request.details), &mut out);
            texts(&json!(request.answer), &mut out);
        }
    }
    out
}

/// Everything the records database holds, as raw as a thief would get it.
async fn raw_copy(node: &TestNode) -> String {
    match node.backend {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&node.data_dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with(agency_node::store::DATABASE_FILE) {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(bytes.len() > 4096, "the database file was read");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => {
            let pool = node.state.db.pool();
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("name"))
            .collect();
            assert!(tables.contains(&"survivors".to_owned()));
            let mut all = String::new();
            for table in tables {
                for row in sqlx::query(&format!("SELECT CAST(t AS TEXT) AS r FROM {table} t"))
                    .fetch_all(pool)
                    .await
                    .unwrap()
                {
                    all.push_str(&row.get::<String, _>("r"));
                    all.push('\n');
                }
            }
            all
        }
    }
}

async fn a_raw_copy_of_the_records_holds_no_survivor_content(backend: Backend) {
    let node = TestNode::start(backend).await;
    let caller = intake(&node);
    let partners = [AgencyId::parse(LEGAL).unwrap()];
    assert!(
        seed_demo(&node.state, &caller, &partners, 6)
            .await
            .unwrap()
            .seeded
    );
    // A revocation's reason and a full intake of our own, besides the seed.
    let survivor = node.register_full_survivor("Marisol Quintero").await;
    let grant = node
        .grant(&survivor, LEGAL, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    node.revoke(&grant).await;
    // A request to correct, with the survivor's words and the answer.
    let local = &survivor[OWNER.len() + 1..];
    let request = agency_node::rights::ask(
        &node.state,
        local,
        agency_node::rights::RequestKind::Correction,
        &[agency_node::vault::Part::Identity],
        Some("My second name is Amparo"),
    )
    .await
    .unwrap();
    let mut event = exchange_schema::AuditEvent::new(
        exchange_schema::AuditKind::RightsRequest,
        exchange_schema::Decision::Permit,
        "ANSWER",
    );
    event.actor_user = Some("test".into());
    agency_node::rights::answer(
        &node.state,
        event,
        request,
        agency_node::rights::Outcome::Done,
        Some("Corrected to Marisol Amparo Quintero"),
        "shelter-north/test",
    )
    .await
    .unwrap();

    let content = content(&node).await;
    assert!(
        content.len() > 30,
        "the seed writes free text in every part: {content:?}"
    );
    assert!(content.contains("Marisol Quintero"));
    assert!(content.contains("survivor asked"));
    assert!(content.contains("My second name is Amparo"));
    assert!(content.contains("Corrected to Marisol Amparo Quintero"));
    let raw = raw_copy(&node).await;
    assert!(
        raw.contains(&survivor[OWNER.len() + 1..]),
        "IDs stay in clear"
    );
    let found: Vec<&String> = content
        .iter()
        .filter(|t| raw.contains(t.as_str()))
        .collect();
    assert!(found.is_empty(), "in clear in the raw copy: {found:?}");
    assert!(raw.contains("sealed:v1:"));
}

/// The key store down (its database closed, as when it is unreachable or
/// restarting), with no key cached: a read answers `AUDIT_UNAVAILABLE` and
/// discloses nothing, a registration writes no record and no entry.
async fn a_key_store_that_cannot_answer_discloses_and_writes_nothing(backend: Backend) {
    let node = TestNode::start_with(backend, |config| config.vault.key_cache_seconds = 0).await;
    let survivor = node.register_full_survivor("Keyless").await;
    let owner = node.caseworker(OWNER);
    let before = node.audit_events().await.len();
    let records = node.count("survivors").await;
    node.state.vault.key_store().close().await;

    let read = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(read.code(), "AUDIT_UNAVAILABLE", "{}", read.body);
    assert!(read.body["data"]["survivor"].is_null());
    assert!(!read.body.to_string().contains("Keyless"));

    let register = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            exchange_test_kit::survivors::REGISTER_SURVIVOR,
            json!({ "input": crate::common::full_survivor_input("Never Stored") }),
        )
        .await;
    assert_eq!(register.code(), "AUDIT_UNAVAILABLE", "{}", register.body);
    assert_eq!(node.count("survivors").await, records);
    let added = &node.audit_events().await[before..];
    assert!(
        added.iter().all(|e| !matches!(
            e.kind,
            exchange_schema::AuditKind::Disclosure | exchange_schema::AuditKind::SurvivorRegistered
        )),
        "{added:?}"
    );
}

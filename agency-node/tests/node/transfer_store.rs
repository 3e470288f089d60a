//! The storage side of a case transfer on both backends: a case exported
//! from one node's database imports whole into another's (ids, notes with
//! their corrections, services, follow-ups, plan versions, referrals with
//! their histories), the sender keeps only tombstones, a second pending
//! transfer of the same survivor is refused by the database itself, and
//! importing twice fails on the keys rather than duplicating.

use agency_node::store::transfer::{self, TransferRecord};
use exchange_schema::AgencyId;
use serde_json::json;

use crate::case_management::make_partner;
use crate::common::*;

async fn rows(node: &TestNode, sql: &str, id: &str) -> i64 {
    use sqlx::Row as _;
    sqlx::query(sql)
        .bind(id)
        .fetch_one(node.state.db.pool())
        .await
        .unwrap()
        .get::<i64, _>("n")
}

async fn a_case_exports_imports_and_leaves_only_tombstones(backend: Backend) {
    let from = TestNode::start(backend).await;
    let to = TestNode::start(backend).await;
    let owner = from.caseworker(OWNER);
    let survivor = from.register_full_survivor("Packed").await;
    let local = survivor.split(':').nth(1).unwrap().to_owned();
    make_partner(&from, &survivor, LEGAL).await;
    let note = from
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "first" } }),
        )
        .await
        .id("addCaseNote");
    from.gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
             json!({ "input": { "survivorId": survivor, "category": "CASE", "body": "corrected", "supersedes": note } }))
        .await
        .id("addCaseNote");
    from.gql(Some(&owner), Some("CASE_MANAGEMENT"),
             "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
             json!({ "input": { "survivorId": survivor, "goals": ["g"], "actions": [{ "description": "a", "responsibleAgency": LEGAL }] } }))
        .await
        .data();
    // A closing and its reopening travel with the case.
    for step in [
        "mutation($id: ID!) { closeCase(survivorId: $id, reason: GOALS_MET) { open } }",
        "mutation($id: ID!) { reopenCase(survivorId: $id) { open } }",
    ] {
        from.gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            step,
            json!({ "id": survivor }),
        )
        .await
        .data();
    }

    let mut conn = from.state.db.pool().acquire().await.unwrap();
    let package = transfer::export(&mut conn, &from.state.vault, &local)
        .await
        .unwrap();
    drop(conn);
    transfer::check(&package).unwrap();
    assert_eq!(package.rows("case_notes").len(), 2);
    assert_eq!(package.rows("case_closures").len(), 1);
    assert!(package.rows("case_closures")[0]["reopened_at"].is_number());
    assert_eq!(
        package.rows("referral_events").len(),
        2,
        "created and accepted"
    );

    let mut tx = to.state.db.pool().begin().await.unwrap();
    transfer::import(&mut tx, &to.state.vault, &package)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut conn = to.state.db.pool().acquire().await.unwrap();
    let again = transfer::export(&mut conn, &to.state.vault, &local)
        .await
        .unwrap();
    assert_eq!(again, package, "the import is the export, row for row");
    let mut tx = to.state.db.pool().begin().await.unwrap();
    assert!(
        transfer::import(&mut tx, &to.state.vault, &package)
            .await
            .is_err(),
        "a second import fails on the keys"
    );
    tx.rollback().await.unwrap();
    drop(conn);

    // One pending transfer of a survivor at a time, held by the database.
    let now = exchange_schema::audit::now_millis();
    let pending = |id: &str| TransferRecord {
        id: id.into(),
        survivor_id: local.clone(),
        direction: "OUT".into(),
        peer: AgencyId::parse(LEGAL).unwrap(),
        status: "PENDING".into(),
        consent_method: "WITNESSED_VERBAL".into(),
        requested_by: "test".into(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = from.state.db.pool().acquire().await.unwrap();
    transfer::insert_transfer(&mut conn, &pending("t1"))
        .await
        .unwrap();
    assert!(
        transfer::insert_transfer(&mut conn, &pending("t2"))
            .await
            .is_err()
    );
    assert!(transfer::is_moving(&mut conn, &local).await.unwrap());

    let mut tx = from.state.db.pool().begin().await.unwrap();
    transfer::remove_and_tombstone(&mut tx, &package, &AgencyId::parse(LEGAL).unwrap(), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for table in [
        "survivors WHERE id",
        "case_notes WHERE survivor_id",
        "care_plans WHERE survivor_id",
        "referrals WHERE survivor_id",
        "consent_grants WHERE survivor_id",
    ] {
        assert_eq!(
            rows(
                &from,
                &format!("SELECT COUNT(*) AS n FROM {table} = $1"),
                &local
            )
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        transfer::moved_to(&mut conn, &local)
            .await
            .unwrap()
            .map(|a| a.to_string()),
        Some(LEGAL.to_owned())
    );
    // The old node answers the old ID with the new one.
    let read = from
        .read_survivor(&owner, "CASE_MANAGEMENT", &survivor)
        .await;
    assert_eq!(read.code(), "MOVED");
    assert_eq!(
        read.errors()[0]["extensions"]["movedTo"],
        format!("{LEGAL}:{local}")
    );
}

on_both_backends!(a_case_exports_imports_and_leaves_only_tombstones);

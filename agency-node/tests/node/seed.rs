//! The demo seed writes through the same audited paths as real changes:
//! every survivor, grant and referral it creates has its audit entry, every
//! grant its consent receipt, the log verifies, and a second seed of a node
//! that has data adds nothing.

use agency_node::seed::seed_demo;
use agency_node::state::Caller;
use exchange_audit::verify::{VerifyOptions, verify_database};
use exchange_schema::{AgencyId, AuditKind, Purpose};
use serde_json::json;

use crate::common::{Backend, LEGAL, OWNER, TestNode, on_both_backends};

on_both_backends!(seeding_writes_every_record_with_its_audit_entry_and_receipt);

fn intake(node: &TestNode) -> Caller {
    let principal = node
        .state
        .verifier
        .verify(&node.caseworker(OWNER))
        .expect("the test token verifies");
    Caller {
        principal,
        purpose: Some(Purpose::CaseManagement),
        justification: None,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
    }
}

fn count(events: &[exchange_schema::AuditEvent], kind: AuditKind) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

async fn seeding_writes_every_record_with_its_audit_entry_and_receipt(backend: Backend) {
    let node = TestNode::start(backend).await;
    let caller = intake(&node);
    let partners = [AgencyId::parse(LEGAL).unwrap()];
    let summary = seed_demo(&node.state, &caller, &partners, 6).await.unwrap();
    assert!(summary.seeded);
    assert_eq!(summary.survivors.len(), 6);
    assert!(!summary.grants.is_empty() && !summary.referrals.is_empty());

    let events = node.audit_events().await;
    assert_eq!(count(&events, AuditKind::SurvivorRegistered), 6);
    assert_eq!(
        count(&events, AuditKind::ConsentGranted),
        summary.grants.len()
    );
    assert_eq!(
        count(&events, AuditKind::ReferralCreated),
        summary.referrals.len()
    );

    // Each seeded consent has the signed receipt the survivor sees in the
    // portal, as a consent recorded by a caseworker does.
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let mut receipted = Vec::new();
    for survivor in &summary.survivors {
        for receipt in
            agency_node::store::portal::receipts_for(&mut conn, &node.state.vault, survivor.local())
                .await
                .unwrap()
        {
            assert_eq!(receipt.event, "GIVEN");
            receipted.push(receipt.grant_id);
        }
    }
    drop(conn);
    let mut seeded: Vec<String> = summary
        .grants
        .iter()
        .map(|(grant, _)| grant.local().to_owned())
        .collect();
    seeded.sort();
    receipted.sort();
    assert_eq!(receipted, seeded, "one receipt per seeded grant");

    // The partner sees a granted survivor under the seeded consent.
    let (granted, _) = &summary.grants[0];
    let survivor = summary
        .survivors
        .iter()
        .find(|s| {
            events.iter().any(|e| {
                e.kind == AuditKind::ConsentGranted
                    && e.survivor.as_ref() == Some(s)
                    && e.subject.as_deref() == Some(&format!("{OWNER}:{}", granted.local()))
            })
        })
        .expect("the grant's survivor");
    let legal = node.caseworker(LEGAL);
    let response = node
        .gql(
            Some(&legal),
            Some("LEGAL_ASSISTANCE"),
            "query($id: ID!) { survivor(id: $id) { legal { immigrationStatus } } }",
            json!({ "id": survivor.to_string() }),
        )
        .await;
    assert!(
        response.data()["survivor"]["legal"]["immigrationStatus"].is_string(),
        "{:?}",
        response.body
    );

    // The first survivor's case has history, each piece audited.
    let case = summary
        .case_with_history
        .as_ref()
        .expect("a case with history");
    assert_eq!(case, &summary.survivors[0]);
    assert_eq!(count(&events, AuditKind::CaseNoteAdded), 3);
    assert_eq!(count(&events, AuditKind::ServiceRecorded), 2);
    assert_eq!(count(&events, AuditKind::FollowUpRecorded), 2);
    assert_eq!(count(&events, AuditKind::CarePlanProposed), 2);
    assert_eq!(count(&events, AuditKind::CarePlanAgreed), 1);
    let history = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "query($id: ID!) { survivor(id: $id) { caseNotes { edges { node { body } } } \
             carePlan { version agreement { method } } carePlanVersions { agreement { method } } \
             referrals { status } followUps { kind } } }",
            json!({ "id": case.to_string() }),
        )
        .await;
    let s = &history.data()["survivor"];
    assert_eq!(
        s["caseNotes"]["edges"].as_array().unwrap().len(),
        2,
        "the corrected note is hidden"
    );
    assert_eq!(s["carePlan"]["version"], 2);
    assert!(
        s["carePlan"]["agreement"].is_null(),
        "version 2 waits for the survivor"
    );
    assert_eq!(
        s["carePlanVersions"][1]["agreement"]["method"],
        "WITNESSED_WRITTEN"
    );
    assert_eq!(s["referrals"][0]["status"], "ACCEPTED");
    assert_eq!(s["followUps"].as_array().unwrap().len(), 2);

    // A second seed finds data and adds nothing.
    let before = node.audit_events().await.len();
    let again = seed_demo(&node.state, &caller, &partners, 6).await.unwrap();
    assert!(!again.seeded && again.survivors.is_empty());
    assert_eq!(node.audit_events().await.len(), before);

    verify_database(&node.state.db, &VerifyOptions::default())
        .await
        .expect("the seeded log verifies");
}

//! The audit trail: every request leaves its entry; a failed change leaves
//! neither data nor entry; `agency-node audit verify` passes an untouched log
//! and names the first entry edited, deleted or reordered; auditors read the
//! log and their reads are audited; caseworkers cannot.

use exchange_schema::{AuditKind, Decision, GlobalId, Role};
use serde_json::json;

use crate::common::*;

/// Each kind of request leaves exactly the entry that describes it.
async fn each_request_leaves_its_entry(backend: Backend) {
    let node = TestNode::start(backend).await;
    let (survivor, grant) = node.survivor_sharing_identity_with_shelter("Trail").await;
    let requester = node.caseworker(SHELTER);
    node.read_survivor(&requester, "SERVICE_COORDINATION", &survivor)
        .await
        .data();
    node.revoke(&grant).await;

    let events = node.audit_events().await;
    let kinds: Vec<AuditKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            AuditKind::SurvivorRegistered,
            AuditKind::Disclosure, // the owner reads back what it registered
            AuditKind::ConsentGranted,
            AuditKind::Disclosure,
            AuditKind::ConsentRevoked,
        ]
    );
    let read = &events[3];
    assert_eq!(read.actor_agency.as_ref().unwrap().as_str(), SHELTER);
    assert_eq!(read.survivor.as_ref().unwrap().to_string(), survivor);
    assert_eq!(read.disclosed, vec![exchange_schema::Category::Identity]);
    assert_eq!(read.withheld.len(), 4);
    assert_eq!(
        read.purpose,
        Some(exchange_schema::Purpose::ServiceCoordination)
    );
    assert_eq!(
        read.policy_set.as_deref(),
        Some(node.state.policies.set_hash()),
        "the entry names the policy set the node loaded"
    );
    assert!(read.explanation.is_some() && read.trace_id.is_some());
    let stored = serde_json::to_string(&events).unwrap();
    for secret in ["Safe house 7", "invented note", "Trail", "+00 000 0000"] {
        assert!(
            !stored.contains(secret),
            "record contents in the audit log: {secret}"
        );
    }
}

/// The trace ID of a `traceparent` header is written in the entry.
async fn trace_context_reaches_the_entry(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Traced").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(node.caseworker(OWNER))
        .header("x-exchange-purpose", "CASE_MANAGEMENT")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": SURVIVOR_QUERY, "variables": { "id": survivor } }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let last = node.audit_events().await.pop().unwrap();
    assert_eq!(last.trace_id.as_deref(), Some(trace));
}

/// A change that fails inside its transaction writes neither the change nor
/// its entry; the refusal itself is audited as a denial.
/// With the audit log refusing entries (a full disk, a broken database), a
/// read that would disclose answers `AUDIT_UNAVAILABLE` and nothing of
/// the record, and a change is not written; once the log accepts entries
/// again, both work.
async fn nothing_is_disclosed_or_changed_without_its_audit_entry(backend: Backend) {
    use sqlx::Row as _;
    let node = TestNode::start(backend).await;
    let (survivor, _) = node
        .survivor_sharing_identity_with_shelter("Unlogged")
        .await;
    let pool = node.state.db.pool();
    node.refuse_audit_entries().await;
    let grants = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM consent_grants")
            .fetch_one(pool)
            .await
            .unwrap()
            .get::<i64, _>("n")
    };
    let grants_before = grants().await;
    let entries_before = node.audit_events().await.len();

    let requester = node.caseworker(SHELTER);
    let read = node
        .read_survivor(&requester, "SERVICE_COORDINATION", &survivor)
        .await;
    assert_eq!(read.code(), "AUDIT_UNAVAILABLE", "{}", read.body);
    assert!(!read.body.to_string().contains("Unlogged"), "{}", read.body);
    let change = node
        .record_consent(
            &survivor,
            LEGAL,
            &["LEGAL"],
            &["LEGAL_ASSISTANCE"],
            json!({}),
        )
        .await;
    assert_eq!(change.code(), "AUDIT_UNAVAILABLE", "{}", change.body);
    assert_eq!(grants().await, grants_before, "the consent was not written");
    assert_eq!(node.audit_events().await.len(), entries_before);

    node.accept_audit_entries().await;
    let read = node
        .read_survivor(&requester, "SERVICE_COORDINATION", &survivor)
        .await;
    assert!(read.body.to_string().contains("Unlogged"), "{}", read.body);
}

async fn failed_change_leaves_no_data_and_no_entry(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Atomic").await;
    let grant = node
        .grant(&survivor, SHELTER, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    node.revoke(&grant).await;
    let before = node.audit_events().await;

    // Revoking twice fails inside the transaction (already revoked).
    let owner = node.caseworker(OWNER);
    let again = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { revokeConsent(grantId: $id, reason: \"again\") { id } }",
            json!({ "id": grant }),
        )
        .await;
    assert_eq!(again.code(), "CONFLICT");
    // Consent for a survivor that does not exist fails inside the transaction too.
    let ghost = format!("{OWNER}:doesnotexist");
    let missing = node
        .record_consent(&ghost, SHELTER, &["CASE"], &["REFERRAL"], json!({}))
        .await;
    assert_eq!(missing.code(), "NOT_FOUND");

    let after = node.audit_events().await;
    let added: Vec<_> = after[before.len()..].iter().collect();
    assert_eq!(
        added.len(),
        2,
        "one denial per refused change, nothing else"
    );
    assert!(
        added
            .iter()
            .all(|e| e.kind == AuditKind::Denial && e.decision == Decision::Deny)
    );
    assert_eq!(node.count("consent_grants").await, 1);
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let local = GlobalId::parse(&grant).unwrap().local().to_owned();
    let revoked_reason = agency_node::store::grants::get(&mut conn, &node.state.vault, &local)
        .await
        .unwrap()
        .unwrap()
        .revocation_reason;
    assert_eq!(
        revoked_reason.as_deref(),
        Some("survivor asked"),
        "the first revocation stands unchanged"
    );
}

fn verify_args(node: &TestNode) -> Vec<String> {
    vec![
        "audit".into(),
        "verify".into(),
        "--database".into(),
        node.database_url.clone(),
    ]
}

async fn tamper(node: &TestNode, statements: &[&str]) {
    let drop_guards: &[&str] = match node.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Backend::Postgres => &["DROP TRIGGER audit_log_no_update ON audit_log"],
    };
    for sql in drop_guards.iter().chain(statements) {
        sqlx::query(sql)
            .execute(node.state.db.pool())
            .await
            .unwrap();
    }
}

/// The log refuses updates and deletes through the database itself.
async fn audit_rows_cannot_be_updated_or_deleted(backend: Backend) {
    let node = TestNode::start(backend).await;
    node.register_full_survivor("Guarded").await;
    let update = sqlx::query("UPDATE audit_log SET reason = 'x'")
        .execute(node.state.db.pool())
        .await;
    assert!(update.is_err(), "update must be refused");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(node.state.db.pool())
        .await;
    assert!(delete.is_err(), "delete must be refused");
}

async fn logged_node(backend: Backend) -> TestNode {
    let node = TestNode::start(backend).await;
    for i in 0..4 {
        let survivor = node.register_full_survivor(&format!("Chain {i}")).await;
        node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
            .await;
    }
    node.state.audit.checkpoint_now().await.unwrap();
    node
}

/// An untouched log verifies.
async fn verify_accepts_an_untouched_log(backend: Backend) {
    let node = logged_node(backend).await;
    let (ok, out) = node.cli(
        &verify_args(&node)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(ok, "{out}");
}

/// Editing an entry's content makes verify fail and name it.
async fn verify_names_an_edited_entry(backend: Backend) {
    let node = logged_node(backend).await;
    // Entry 3 is the other shelter's read, refused for lack of consent:
    // rewrite it as permitted.
    tamper(
        &node,
        &["UPDATE audit_log SET event = REPLACE(event, '\"decision\":\"DENY\"', '\"decision\":\"PERMIT\"') WHERE seq = 3"],
    )
    .await;
    let (ok, out) = node.cli(
        &verify_args(&node)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("entry 3") && out.contains("edited"), "{out}");
}

/// Deleting an entry makes verify fail and name it.
async fn verify_names_a_deleted_entry(backend: Backend) {
    let node = logged_node(backend).await;
    tamper(&node, &["DELETE FROM audit_log WHERE seq = 5"]).await;
    let (ok, out) = node.cli(
        &verify_args(&node)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("entry 5") && out.contains("deleted"), "{out}");
}

/// Swapping two entries makes verify fail and name the first.
async fn verify_names_reordered_entries(backend: Backend) {
    let node = logged_node(backend).await;
    tamper(
        &node,
        &[
            "UPDATE audit_log SET seq = -6 WHERE seq = 6",
            "UPDATE audit_log SET seq = 6 WHERE seq = 7",
            "UPDATE audit_log SET seq = 7 WHERE seq = -6",
        ],
    )
    .await;
    let (ok, out) = node.cli(
        &verify_args(&node)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("entry 6") && (out.contains("reordered") || out.contains("edited")),
        "{out}"
    );
}

/// Every acknowledged entry is covered by a signature before its answer
/// leaves: with no periodic checkpoint due (the history signs every 1000
/// entries), an untouched log still verifies as signed through its last
/// entry, and cutting its newest entries (as after a crash, with the
/// append-only triggers dropped) makes verify fail. Before the signed head,
/// the cut log verified with only a warning.
async fn the_newest_entries_cannot_be_cut(backend: Backend) {
    let node = TestNode::start(backend).await;
    for i in 0..3 {
        let survivor = node.register_full_survivor(&format!("Tail {i}")).await;
        node.read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
            .await
            .data();
    }
    let last = node.count("audit_log").await;
    assert!(last >= 6, "{last}");
    assert_eq!(
        node.count("audit_checkpoints").await,
        0,
        "no history checkpoint was due"
    );
    let args = verify_args(&node);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = node.cli(&args);
    assert!(ok, "{out}");
    assert!(
        !out.contains("not yet covered"),
        "every entry is covered by the signed head: {out}"
    );

    // An export carries the signed head too: it verifies offline as signed
    // through its newest entry.
    let file = node.data_dir.join("tail-export.jsonl");
    let (ok, out) = node.cli(&[
        "audit",
        "export",
        "--database",
        &node.database_url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = node.cli(&["audit", "verify", "--export", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("not yet covered") && out.contains(&format!("through seq {last}")),
        "the export is signed through its newest entry: {out}"
    );

    tamper(&node, &["DELETE FROM audit_log WHERE seq > 3"]).await;
    let (ok, out) = node.cli(&args);
    assert!(!ok, "a log cut after entry 3 verified: {out}");
    assert!(
        out.contains(&last.to_string()),
        "names the signed seq {last}: {out}"
    );
}

/// The signed head only moves forward and cannot be deleted, through the
/// database itself.
async fn the_signed_head_cannot_be_moved_back_or_deleted(backend: Backend) {
    let node = TestNode::start(backend).await;
    node.register_full_survivor("Forward").await;
    node.register_full_survivor("Only").await;
    let back = sqlx::query("UPDATE audit_head SET seq = 1")
        .execute(node.state.db.pool())
        .await;
    assert!(back.is_err(), "moving the head back must be refused");
    let delete = sqlx::query("DELETE FROM audit_head")
        .execute(node.state.db.pool())
        .await;
    assert!(delete.is_err(), "deleting the head must be refused");
}

/// Auditors read the log through GraphQL, filtered; each read is audited; a
/// caseworker of another agency cannot read it.
async fn auditors_read_the_log_and_are_audited(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Inspected").await;
    node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
        .await;
    let query = "query($f: AuditLogFilter) { auditLog(filter: $f, first: 10) { edges { node { seq kind \
        actorAgency survivorId disclosed purpose decision } } } }";
    let auditor = node.token(OVERSIGHT, &[Role::Auditor]);
    let page = node
        .gql(
            Some(&auditor),
            Some("AUDIT"),
            query,
            json!({ "f": { "agency": SHELTER } }),
        )
        .await;
    let edges = page.data()["auditLog"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 1, "{}", page.body);
    assert_eq!(edges[0]["node"]["survivorId"], survivor);
    assert_eq!(
        node.audit_events().await.last().unwrap().kind,
        AuditKind::AuditRead
    );

    let caseworker = node.caseworker(SHELTER);
    let denied = node
        .gql(Some(&caseworker), Some("AUDIT"), query, json!({}))
        .await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let own_caseworker = node.caseworker(OWNER);
    let denied = node
        .gql(Some(&own_caseworker), Some("AUDIT"), query, json!({}))
        .await;
    assert_eq!(
        denied.code(),
        "FORBIDDEN",
        "reading the log is for auditors and officers"
    );
    let supervisor = node.token(OWNER, &[Role::Supervisor]);
    let own = node
        .gql(Some(&supervisor), Some("AUDIT"), query, json!({}))
        .await;
    assert!(own.data()["auditLog"]["edges"].as_array().unwrap().len() > 1);
}

on_both_backends!(
    each_request_leaves_its_entry,
    trace_context_reaches_the_entry,
    failed_change_leaves_no_data_and_no_entry,
    nothing_is_disclosed_or_changed_without_its_audit_entry,
    audit_rows_cannot_be_updated_or_deleted,
    verify_accepts_an_untouched_log,
    verify_names_an_edited_entry,
    verify_names_a_deleted_entry,
    verify_names_reordered_entries,
    the_newest_entries_cannot_be_cut,
    the_signed_head_cannot_be_moved_back_or_deleted,
    auditors_read_the_log_and_are_audited,
);

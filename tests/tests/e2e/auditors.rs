//! Auditors across the federation: the access log of every node through the
//! gateway, filtered and paginated, every read itself audited; a federated
//! export that verifies offline; checkpoints collected from every node that
//! reveal a history rewritten and re-signed; an auditor sees no category of
//! any record; a caseworker reads no other agency's log.

use std::collections::BTreeMap;

use agency_node::store::Db;
use exchange_audit::verify::{
    VerifyFailure, VerifyOptions, load_checkpoints, verify_database, verify_file,
};
use exchange_schema::audit::{AuditEvent, Checkpoint, chain_hash_event};
use exchange_schema::{AuditKind, Decision, Purpose, Role};
use exchange_test_kit::{
    CLINIC, LEGAL, NODE_AGENCIES, OVERSIGHT, Options, SHELTER, TestFederation,
};
use serde_json::{Value, json};
use sqlx::Row as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const AUDIT_LOG: &str = "query($f: AuditLogFilter, $first: Int, $after: String) { \
    auditLog(filter: $f, first: $first, after: $after) { \
      pageInfo { hasNextPage endCursor } \
      edges { cursor node { seq at kind actorAgency actorUser survivorId purpose decision breakGlass reason } } } }";

fn auditor(fed: &TestFederation) -> String {
    fed.token(OVERSIGHT, &[Role::Auditor])
}

/// The auditor's view of the federated log with `filter`: every node
/// answered, no error.
async fn audit_log(fed: &TestFederation, token: &str, filter: Value) -> Vec<Value> {
    let answer = fed
        .gateway_gql(
            token,
            "AUDIT",
            AUDIT_LOG,
            json!({ "f": filter, "first": 100 }),
        )
        .await;
    answer.data()["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Some history on every node: registrations, a permitted and a refused
/// read, a refused audit read, a break-glass opening. Returns the shelter's
/// survivor and the legal-aid service's.
async fn history(fed: &TestFederation) -> (String, String) {
    let sheltered = fed.register_survivor(SHELTER, "Audited").await;
    let advised = fed.register_survivor(LEGAL, "Advised").await;
    fed.grant(&sheltered, CLINIC, &["IDENTITY"], &["HEALTH_CARE"])
        .await;
    let read =
        "query($id: ID!) { survivor(id: $id) { id identity { givenName } withheld { category } } }";
    fed.gateway_gql(
        &fed.caseworker(CLINIC),
        "HEALTH_CARE",
        read,
        json!({ "id": sheltered }),
    )
    .await
    .data();
    fed.gateway_gql(
        &fed.caseworker(CLINIC),
        "HEALTH_CARE",
        read,
        json!({ "id": advised }),
    )
    .await;
    // A caseworker may not read any log: refused at every node.
    let refused = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "AUDIT",
            AUDIT_LOG,
            json!({ "first": 5 }),
        )
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");
    let supervisor = fed.token(CLINIC, &[Role::Supervisor]);
    fed.gateway_gql(
        &supervisor,
        "EMERGENCY",
        "mutation($id: ID!, $why: String!) { openBreakGlass(survivorId: $id, justification: $why) { expiresAt } }",
        json!({ "id": sheltered, "why": "The survivor was admitted unconscious and cannot be asked." }),
    )
    .await
    .data();
    (sheltered, advised)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_filter_and_page_the_federated_access_log() {
    let fed = TestFederation::start().await;
    let (sheltered, advised) = history(&fed).await;
    let token = auditor(&fed);
    let all = audit_log(&fed, &token, json!({})).await;
    assert!(all.len() > 10 && all.len() < 100, "{all:?}");

    let check = |name: &str, found: &[Value], ok: &dyn Fn(&Value) -> bool| {
        assert!(!found.is_empty(), "{name}: nothing found");
        assert!(found.iter().all(ok), "{name}: {found:?}");
        assert!(
            all.iter().any(|e| !ok(e)),
            "{name}: the unfiltered log must hold other entries too"
        );
    };
    let by_agency = audit_log(&fed, &token, json!({ "agency": CLINIC })).await;
    check("agency", &by_agency, &|e| e["actorAgency"] == CLINIC);
    // Any agency's survivor: the nodes that do not hold it answer with
    // nothing rather than an error.
    let by_survivor = audit_log(&fed, &token, json!({ "survivorId": advised })).await;
    check("survivor", &by_survivor, &|e| {
        e["survivorId"] == advised.as_str()
    });
    let by_survivor = audit_log(&fed, &token, json!({ "survivorId": sheltered })).await;
    check("survivor", &by_survivor, &|e| {
        e["survivorId"] == sheltered.as_str()
    });
    let by_purpose = audit_log(&fed, &token, json!({ "purpose": "HEALTH_CARE" })).await;
    check("purpose", &by_purpose, &|e| e["purpose"] == "HEALTH_CARE");
    let denied = audit_log(&fed, &token, json!({ "decision": "DENY" })).await;
    check("decision", &denied, &|e| e["decision"] == "DENY");
    let refused_reads = denied
        .iter()
        .filter(|e| e["actorAgency"] == SHELTER && e["purpose"] == "AUDIT")
        .count();
    assert_eq!(
        refused_reads,
        NODE_AGENCIES.len(),
        "one refusal per node: {denied:?}"
    );
    let glass = audit_log(&fed, &token, json!({ "breakGlass": true })).await;
    check("break-glass", &glass, &|e| e["breakGlass"] == true);
    assert!(glass.iter().any(|e| e["reason"] == "BREAK_GLASS_OPENED"));
    let no_glass = audit_log(&fed, &token, json!({ "breakGlass": false })).await;
    check("not break-glass", &no_glass, &|e| e["breakGlass"] == false);

    // A time range.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    fed.register_survivor(CLINIC, "Later").await;
    let cut_text = cut.format(&Rfc3339).unwrap();
    let at = |e: &Value| OffsetDateTime::parse(e["at"].as_str().unwrap(), &Rfc3339).unwrap();
    let before = audit_log(&fed, &token, json!({ "until": cut_text })).await;
    assert!(!before.is_empty() && before.iter().all(|e| at(e) < cut));
    let after = audit_log(&fed, &token, json!({ "since": cut_text })).await;
    assert!(!after.is_empty() && after.iter().all(|e| at(e) >= cut));
    assert!(
        after
            .iter()
            .any(|e| e["actorAgency"] == CLINIC && e["kind"] == "SURVIVOR_REGISTERED")
    );
    assert!(
        before
            .iter()
            .all(|e| e["kind"] != "SURVIVOR_REGISTERED" || e["actorAgency"] != CLINIC)
    );

    // Pages of 3 across the nodes give the whole list, once, newest first.
    let filter = json!({ "agency": SHELTER, "until": cut_text });
    let whole = audit_log(&fed, &token, filter.clone()).await;
    let mut paged: Vec<Value> = Vec::new();
    let mut after_cursor = Value::Null;
    loop {
        let page = fed
            .gateway_gql(
                &token,
                "AUDIT",
                AUDIT_LOG,
                json!({ "f": filter, "first": 3, "after": after_cursor }),
            )
            .await;
        let connection = &page.data()["auditLog"];
        let edges = connection["edges"].as_array().unwrap();
        assert!(edges.len() <= 3);
        paged.extend(edges.iter().map(|e| e["node"].clone()));
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after_cursor = connection["pageInfo"]["endCursor"].clone();
        assert!(paged.len() <= whole.len(), "paging must end");
    }
    assert!(whole.len() > 3, "more than one page: {whole:?}");
    assert_eq!(paged, whole);
    assert!(
        whole.windows(2).all(|w| at(&w[0]) >= at(&w[1])),
        "newest first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_read_is_itself_audited() {
    let fed = TestFederation::start().await;
    history(&fed).await;
    let token = auditor(&fed);
    audit_log(&fed, &token, json!({ "purpose": "HEALTH_CARE" })).await;
    for node in &fed.nodes {
        let last = node.audit_events().await.pop().expect("entries");
        assert_eq!(
            (last.kind, last.decision, last.purpose),
            (AuditKind::AuditRead, Decision::Permit, Some(Purpose::Audit)),
            "{}",
            node.agency
        );
        assert_eq!(
            last.actor_agency.as_ref().map(|a| a.as_str()),
            Some(OVERSIGHT)
        );
        assert_eq!(last.actor_roles, vec![Role::Auditor]);
    }
    let gateway = fed.gateway_events().await;
    let read = gateway.last().expect("gateway entries");
    assert_eq!(read.kind, AuditKind::FederatedOperation);
    assert_eq!(
        read.actor_agency.as_ref().map(|a| a.as_str()),
        Some(OVERSIGHT)
    );
    let subject = read.subject.as_deref().unwrap_or_default();
    assert!(subject.starts_with("query auditLog"), "{subject}");

    // The gateway's auditor endpoints are audited in its own log.
    let response = fed
        .client
        .get(format!("{}/audit/checkpoints", fed.gateway_base))
        .bearer_auth(&token)
        .header("x-exchange-purpose", "AUDIT")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let last = fed.gateway_events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.decision),
        (AuditKind::AuditRead, Decision::Permit)
    );
    assert_eq!(last.subject.as_deref(), Some("collected checkpoints"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caseworker_cannot_read_the_audit_log_of_another_agency() {
    let fed = TestFederation::start().await;
    history(&fed).await;
    let caseworker = fed.caseworker(SHELTER);
    let through_gateway = fed
        .gateway_gql(&caseworker, "AUDIT", AUDIT_LOG, json!({ "first": 10 }))
        .await;
    let errors = through_gateway.errors();
    for agency in NODE_AGENCIES {
        assert!(
            errors
                .iter()
                .any(|e| e["extensions"]["agency"] == agency
                    && e["extensions"]["code"] == "FORBIDDEN"),
            "{agency}: {errors:?}"
        );
    }
    assert_eq!(
        through_gateway.body["data"]["auditLog"]["edges"],
        json!([]),
        "{}",
        through_gateway.body
    );
    // Straight at the other agency's node, GraphQL and export alike.
    let direct = fed
        .node_gql(
            LEGAL,
            &caseworker,
            "AUDIT",
            AUDIT_LOG,
            json!({ "first": 10 }),
        )
        .await;
    assert_eq!(direct.code(), "FORBIDDEN");
    let export = fed
        .client
        .get(format!("{}/audit/export", fed.node(LEGAL).base))
        .bearer_auth(&caseworker)
        .header("x-exchange-purpose", "AUDIT")
        .send()
        .await
        .unwrap();
    assert_eq!(export.status().as_u16(), 403);
    // Even a supervisor reads only their own agency's node log.
    let supervisor = fed.token(SHELTER, &[Role::Supervisor]);
    let own = fed
        .gateway_gql(&supervisor, "AUDIT", AUDIT_LOG, json!({ "first": 50 }))
        .await;
    let errors = own.errors();
    let refused: Vec<&str> = errors
        .iter()
        .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
        .filter_map(|e| e["extensions"]["agency"].as_str())
        .collect();
    assert_eq!(refused, vec![LEGAL, CLINIC], "{errors:?}");
    assert!(
        !own.body["data"]["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The gateway's federated export is for auditors only.
    let export = fed
        .client
        .get(format!("{}/audit/export", fed.gateway_base))
        .bearer_auth(&supervisor)
        .header("x-exchange-purpose", "AUDIT")
        .send()
        .await
        .unwrap();
    assert_eq!(export.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_no_category_of_any_record() {
    let fed = TestFederation::start().await;
    let mut survivors = Vec::new();
    for agency in NODE_AGENCIES {
        let survivor = fed.register_survivor(agency, "Private").await;
        // Even consent to the auditors' agency for every purpose opens nothing.
        fed.grant(
            &survivor,
            OVERSIGHT,
            &["IDENTITY", "CONTACT", "CASE", "HEALTH", "LEGAL"],
            &["INVESTIGATION", "LEGAL_ASSISTANCE", "REFERRAL"],
        )
        .await;
        survivors.push(survivor);
    }
    let query = "query($id: ID!) { survivor(id: $id) { id identity { givenName } contact { currentLocation } \
        case { riskLevel } health { medicalNotes } legal { immigrationStatus } withheld { category reason } } }";
    let tokens = [
        (OVERSIGHT, fed.token(OVERSIGHT, &[Role::Auditor])),
        (SHELTER, fed.token(SHELTER, &[Role::Auditor])),
        (
            SHELTER,
            fed.token(SHELTER, &[Role::Auditor, Role::Caseworker]),
        ),
    ];
    for survivor in &survivors {
        for (agency, token) in &tokens {
            for purpose in ["AUDIT", "INVESTIGATION", "LEGAL_ASSISTANCE"] {
                let answer = fed
                    .gateway_gql(token, purpose, query, json!({ "id": survivor }))
                    .await;
                let record = &answer.body["data"]["survivor"];
                let context = format!("{agency} auditor, {purpose}, {survivor}: {}", answer.body);
                if record.is_null() {
                    // Refused outright is as good as withheld.
                    assert!(!answer.errors().is_empty(), "{context}");
                    continue;
                }
                for category in ["identity", "contact", "case", "health", "legal"] {
                    assert!(record[category].is_null(), "{category} shown: {context}");
                }
                assert_eq!(record["withheld"].as_array().unwrap().len(), 5, "{context}");
                let text = answer.body.to_string();
                assert!(
                    !text.contains("Private") && !text.contains("Safe house"),
                    "{context}"
                );
            }
        }
    }
}

/// GET on the gateway as `token` with the AUDIT purpose.
async fn gateway_get(fed: &TestFederation, token: &str, path: &str) -> (u16, String) {
    let response = fed
        .client
        .get(format!("{}{path}", fed.gateway_base))
        .bearer_auth(token)
        .header("x-exchange-purpose", "AUDIT")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn error_code(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    value["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The keys of every log, as an auditor pins them.
fn keys(fed: &TestFederation) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = fed
        .nodes
        .iter()
        .map(|n| (n.agency.to_string(), n.state.audit.public_key_hex()))
        .collect();
    keys.insert("gateway".into(), fed.gateway.audit.public_key_hex());
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_export_gathers_every_log_and_verifies_offline() {
    let mut fed = TestFederation::start().await;
    let (sheltered, _) = history(&fed).await;
    for node in &fed.nodes {
        node.state.audit.checkpoint_now().await.unwrap();
    }
    fed.gateway.audit.checkpoint_now().await.unwrap();
    let token = auditor(&fed);
    let opts = VerifyOptions {
        keys: keys(&fed),
        ..VerifyOptions::default()
    };

    let (status, body) = gateway_get(&fed, &token, "/audit/export").await;
    assert_eq!(status, 200, "{body}");
    let reports = verify_file(body.as_bytes(), &opts).expect("the federated export verifies");
    let logs: Vec<&str> = reports.iter().filter_map(|r| r.log_id.as_deref()).collect();
    assert_eq!(logs, [SHELTER, LEGAL, CLINIC, "gateway"]);
    assert!(
        reports
            .iter()
            .all(|r| r.key_pinned && r.checkpoints_verified > 0)
    );

    // Filtered: only the survivor's entries in full, the rest as digests.
    let (status, body) = gateway_get(
        &fed,
        &token,
        &format!("/audit/export?survivor={}", sheltered.replace(':', "%3A")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let full: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "entry")
        .collect();
    assert!(
        !full.is_empty()
            && full
                .iter()
                .all(|e| e["event"]["survivor"] == sheltered.as_str())
    );
    verify_file(body.as_bytes(), &opts).expect("the filtered export verifies");

    // Tampered in transit: the failure names the log and the entry.
    let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(r#"{"type":"entry""#))
        .unwrap();
    lines[at] = lines[at].replace("\"decision\":\"PERMIT\"", "\"decision\":\"DENY\"");
    let tampered: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let failure = verify_file(tampered.as_bytes(), &opts).unwrap_err();
    assert_eq!(failure.log_id.as_deref(), Some(SHELTER));
    assert!(failure.to_string().contains("was edited"), "{failure}");

    // CSV: one header row, a log column.
    let (status, csv) = gateway_get(&fed, &token, "/audit/export?format=csv&decision=DENY").await;
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(rows[0].starts_with("log_id,seq,"));
    assert_eq!(rows.iter().filter(|r| r.starts_with("log_id,")).count(), 1);
    for agency in NODE_AGENCIES {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{agency},"))),
            "{agency}: {csv}"
        );
    }
    assert!(rows[1..].iter().all(|r| r.contains(",DENY,")));

    // Stable codes for bad requests; the export itself is audited.
    for path in [
        "/audit/export?format=pdf",
        "/audit/export?agency=",
        "/audit/export?colour=red",
    ] {
        let (status, body) = gateway_get(&fed, &token, path).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (400, "BAD_USER_INPUT"),
            "{path}"
        );
    }
    let (status, body) = gateway_get(&fed, &fed.caseworker(SHELTER), "/audit/export").await;
    assert_eq!((status, error_code(&body).as_str()), (403, "FORBIDDEN"));
    let events = fed.gateway_events().await;
    let exports: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.subject.as_deref() == Some("federated audit export"))
        .collect();
    assert!(exports.iter().any(|e| e.decision == Decision::Permit));
    assert!(
        exports
            .iter()
            .any(|e| e.reason == "REJECTED_BAD_USER_INPUT")
    );
    assert!(exports.iter().any(|e| e.reason == "REJECTED_FORBIDDEN"));
    let shelter_last = fed.node(SHELTER).audit_events().await;
    assert!(shelter_last.iter().any(|e| e.reason == "AUDIT_EXPORT"));

    // A node that is down costs the export, named.
    fed.node_mut(CLINIC).stop().await;
    let (status, body) = gateway_get(&fed, &token, "/audit/export").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "NODE_UNAVAILABLE"),
        "{body}"
    );
    assert!(body.contains(CLINIC), "{body}");
}

/// Rewrites a node's history from entry `from` with recomputed hashes and
/// checkpoints re-signed with the node's own key, behind the running node's
/// back.
async fn rewrite_and_re_sign(fed: &TestFederation, agency: &str, from: i64) {
    let node = fed.node(agency);
    let db = Db::connect(&agency_node::store::sqlite_url(&node.data_dir))
        .await
        .unwrap();
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "DROP TRIGGER audit_log_no_delete",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    let rows = sqlx::query("SELECT seq, event FROM audit_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let mut heads = BTreeMap::new();
    let mut prev = [0u8; 32];
    for row in &rows {
        let seq: i64 = row.get("seq");
        let mut event: AuditEvent = serde_json::from_str(&row.get::<String, _>("event")).unwrap();
        if seq == from {
            event.reason = "OWNER".into();
        }
        let hash = chain_hash_event(&prev, seq as u64, &event);
        if seq >= from {
            sqlx::query(
                "UPDATE audit_log SET event = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            )
            .bind(String::from_utf8(event.canonical_bytes()).unwrap())
            .bind(hex::encode(prev))
            .bind(hex::encode(hash))
            .bind(seq)
            .execute(db.pool())
            .await
            .unwrap();
        }
        heads.insert(seq, hash);
        prev = hash;
    }
    let key = exchange_audit::keys::load_or_generate_signing_key(&node.data_dir).unwrap();
    let seqs: Vec<i64> = sqlx::query("SELECT seq FROM audit_checkpoints ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("seq"))
        .collect();
    for seq in seqs {
        let cp = Checkpoint::sign(&key, agency, seq as u64, &heads[&seq]);
        sqlx::query("UPDATE audit_checkpoints SET checkpoint = $1 WHERE seq = $2")
            .bind(serde_json::to_string(&cp).unwrap())
            .bind(seq)
            .execute(db.pool())
            .await
            .unwrap();
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collected_checkpoints_reveal_a_rewritten_and_re_signed_history() {
    let fed = TestFederation::start().await;
    history(&fed).await;
    for node in &fed.nodes {
        node.state.audit.checkpoint_now().await.unwrap();
    }
    let token = auditor(&fed);
    let collect = |token: String| {
        let request = fed
            .client
            .post(format!("{}/audit/checkpoints/collect", fed.gateway_base))
            .bearer_auth(token)
            .header("x-exchange-purpose", "AUDIT");
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, report) = collect(token.clone()).await;
    assert_eq!(status, 200, "{report}");
    for node in report["nodes"].as_array().unwrap() {
        assert!(
            node["outcome"] == "COLLECTED" || node["outcome"] == "UNCHANGED",
            "{report}"
        );
        assert!(node["lastSeq"].as_u64().unwrap() > 0, "{report}");
    }
    let (status, again) = collect(token.clone()).await;
    assert_eq!(status, 200);
    assert!(
        again["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["outcome"] == "UNCHANGED"),
        "{again}"
    );
    let (status, _) = collect(fed.caseworker(SHELTER)).await;
    assert_eq!(status, 403);

    let (status, file) = gateway_get(&fed, &token, "/audit/checkpoints").await;
    assert_eq!(status, 200, "{file}");
    let collected = load_checkpoints(file.as_bytes()).expect("JSON Lines of checkpoints");
    for agency in NODE_AGENCIES {
        assert!(collected.iter().any(|cp| cp.log_id == agency), "{agency}");
    }
    // Each node's live log agrees with what was collected.
    for node in &fed.nodes {
        let opts = VerifyOptions {
            expected_key: Some(node.state.audit.public_key_hex()),
            collected_checkpoints: collected.clone(),
            ..VerifyOptions::default()
        };
        let report = verify_database(&node.state.db, &opts)
            .await
            .expect("untouched log verifies");
        assert!(report.collected_matched > 0, "{report}");
    }

    // The clinic's operator rewrites entry 1 and re-signs with the node key.
    rewrite_and_re_sign(&fed, CLINIC, 1).await;
    let clinic = fed.node(CLINIC);
    let pinned = VerifyOptions {
        expected_key: Some(clinic.state.audit.public_key_hex()),
        ..VerifyOptions::default()
    };
    verify_database(&clinic.state.db, &pinned)
        .await
        .expect("on its own the re-signed rewrite verifies");
    let failure = verify_database(
        &clinic.state.db,
        &VerifyOptions {
            collected_checkpoints: collected,
            ..pinned
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(failure, VerifyFailure::Fork { .. }), "{failure}");
    assert!(failure.to_string().starts_with("fork: "), "{failure}");

    // The collector notices too, keeps the evidence and stops collecting
    // from that node; the others are unaffected.
    let (_, report) = collect(token.clone()).await;
    let outcome = |agency: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["agency"] == agency)
            .map(|n| {
                (
                    n["outcome"].as_str().unwrap().to_owned(),
                    n["detail"].clone(),
                )
            })
            .unwrap()
    };
    let (clinic_outcome, detail) = outcome(CLINIC);
    assert_eq!(clinic_outcome, "FORK", "{report}");
    assert!(detail.as_str().unwrap().starts_with("fork: "), "{detail}");
    assert_eq!(outcome(SHELTER).0, "UNCHANGED");
    let evidence = std::fs::read_to_string(
        fed.gateway_data_dir
            .join(exchange_gateway::audit::FORKS_FILE),
    )
    .unwrap();
    assert_eq!(load_checkpoints(evidence.as_bytes()).unwrap().len(), 1);

    // A later round asks that node nothing and adds no evidence.
    let (_, later) = collect(token.clone()).await;
    let clinic_later = later["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["agency"] == CLINIC)
        .cloned()
        .unwrap();
    assert_eq!(clinic_later["outcome"], "FORK", "{later}");
    assert!(
        clinic_later["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing more is collected"),
        "{later}"
    );
    let evidence = std::fs::read_to_string(
        fed.gateway_data_dir
            .join(exchange_gateway::audit::FORKS_FILE),
    )
    .unwrap();
    assert_eq!(load_checkpoints(evidence.as_bytes()).unwrap().len(), 1);
}

/// Without anyone asking, the gateway collects every node's checkpoints
/// each `collect_interval_secs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_collected_on_the_interval() {
    let fed = TestFederation::start_with(Options {
        collect_interval_secs: 1,
        ..Options::default()
    })
    .await;
    for agency in [SHELTER, LEGAL, CLINIC] {
        fed.register_survivor(agency, "Collected").await;
    }
    for node in &fed.nodes {
        node.state.audit.checkpoint_now().await.unwrap();
    }
    let file = fed
        .gateway_data_dir
        .join(exchange_gateway::audit::COLLECTED_FILE);
    let mut logs = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        logs = load_checkpoints(text.as_bytes())
            .unwrap_or_default()
            .into_iter()
            .map(|cp| cp.log_id)
            .collect();
        if [SHELTER, LEGAL, CLINIC]
            .iter()
            .all(|a| logs.iter().any(|l| l == a))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("not every node's checkpoints were collected within 10 s: {logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_exports_travel_over_mutual_tls() {
    let fed = TestFederation::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    fed.register_survivor(SHELTER, "Over TLS").await;
    for node in &fed.nodes {
        node.state.audit.checkpoint_now().await.unwrap();
    }
    let token = auditor(&fed);
    let response = fed
        .client
        .post(format!("{}/audit/checkpoints/collect", fed.gateway_base))
        .bearer_auth(&token)
        .header("x-exchange-purpose", "AUDIT")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().await.unwrap();
    let nodes = report["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["outcome"] != "FAILED"), "{report}");
    assert!(
        nodes
            .iter()
            .any(|n| n["agency"] == SHELTER && n["lastSeq"].as_u64() > Some(0)),
        "{report}"
    );
    let (status, body) = gateway_get(&fed, &token, "/audit/export").await;
    assert_eq!(status, 200, "{body}");
    let opts = VerifyOptions {
        keys: keys(&fed),
        ..VerifyOptions::default()
    };
    assert_eq!(verify_file(body.as_bytes(), &opts).unwrap().len(), 4);
}

//! The node's audit endpoints and the real `agency-node audit verify`
//! binary: `GET /audit/export` serves a filtered, verifiable log to
//! auditors only and is itself audited; `GET /audit/checkpoints` serves the
//! signed checkpoints collectors keep; and an export tampered with in each
//! way (edit, delete, reorder, truncate, entries spliced from another
//! node's log, a history rewritten and re-signed with the node's own key)
//! makes `audit verify` exit non-zero and say why.

use std::path::{Path, PathBuf};

use agency_node::store::Db;
use exchange_schema::audit::{Checkpoint, chain_hash_event};
use exchange_schema::{AuditEvent, AuditKind, Decision, Role};
use serde_json::Value;
use sqlx::Row as _;

use crate::common::*;

/// A node with some history, every entry covered by a checkpoint.
async fn busy_node(backend: Backend) -> (TestNode, String) {
    let node = TestNode::start(backend).await;
    let mut first = String::new();
    for i in 0..3 {
        let survivor = node.register_full_survivor(&format!("Exported {i}")).await;
        node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
            .await;
        if i == 0 {
            first = survivor;
        }
    }
    node.state.audit.checkpoint_now().await.unwrap();
    (node, first)
}

/// `GET` on the node with a token and the AUDIT purpose: (status, body).
async fn get(node: &TestNode, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = node.client.get(format!("{}{path}", node.base));
    if let Some(token) = token {
        request = request
            .bearer_auth(token)
            .header("x-exchange-purpose", "AUDIT");
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn code(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    value["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `agency-node audit verify` on an export file (with `extra`
/// arguments).
fn verify(node: &TestNode, file: &Path, extra: &[&str]) -> (bool, String) {
    let file = file.display().to_string();
    let mut args = vec!["audit", "verify", "--export", file.as_str()];
    args.extend_from_slice(extra);
    node.cli(&args)
}

/// The head is signed just before an export: with entries written since
/// the last checkpoint, the export still carries a checkpoint at its last
/// entry, so every exported entry is covered by a signature.
async fn an_export_is_signed_through_its_last_entry(backend: Backend) {
    let (node, _) = busy_node(backend).await;
    // New entries after busy_node's checkpoint, and no checkpoint for them.
    let survivor = node.register_full_survivor("Unsigned yet").await;
    node.read_survivor(&node.caseworker(SHELTER), "SERVICE_COORDINATION", &survivor)
        .await;
    let auditor = node.token(OVERSIGHT, &[Role::Auditor]);
    let (status, body) = get(&node, "/audit/export?format=jsonl", Some(&auditor)).await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let last_seq = lines[0]["last_seq"]
        .as_u64()
        .expect("the header's last_seq");
    let signed_through = lines
        .iter()
        .filter(|l| l["type"] == "checkpoint")
        .filter_map(|l| l["seq"].as_u64())
        .max()
        .expect("checkpoints in the export");
    assert_eq!(
        signed_through, last_seq,
        "the last exported entry is signed"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "export.jsonl", &body);
    let key = node.state.audit.public_key_hex();
    let (ok, out) = verify(&node, &file, &["--public-key", &key]);
    assert!(ok, "{out}");
}

/// Auditors export a filtered log that verifies offline; the export is
/// audited; bad filters and unauthorised callers get stable codes.
async fn auditors_export_a_verifiable_log(backend: Backend) {
    let (node, survivor) = busy_node(backend).await;
    let auditor = node.token(OVERSIGHT, &[Role::Auditor]);
    let key = node.state.audit.public_key_hex();
    let dir = tempfile::tempdir().unwrap();

    let survivor_param = survivor.replace(':', "%3A");
    let (status, body) = get(
        &node,
        &format!("/audit/export?format=jsonl&survivor={survivor_param}"),
        Some(&auditor),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "entry")
        .collect();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e["event"]["survivor"] == survivor.as_str()),
        "only the survivor's entries in full"
    );
    let file = write(dir.path(), "export.jsonl", &body);
    let (ok, out) = verify(&node, &file, &["--public-key", &key]);
    assert!(ok, "{out}");
    assert!(
        out.contains("log shelter-north:") && out.contains("elided"),
        "{out}"
    );

    let last = node.audit_events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.decision, last.reason.as_str()),
        (AuditKind::AuditRead, Decision::Permit, "AUDIT_EXPORT")
    );
    assert_eq!(
        last.actor_agency.as_ref().map(|a| a.as_str()),
        Some(OVERSIGHT)
    );
    assert_eq!(
        last.survivor.as_ref().map(ToString::to_string),
        Some(survivor.clone())
    );

    let (status, csv) = get(
        &node,
        "/audit/export?format=csv&decision=DENY",
        Some(&auditor),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(rows[0].starts_with("log_id,seq,at,kind,"), "{}", rows[0]);
    assert!(rows.len() > 1, "the other shelter's refused reads: {csv}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.starts_with("shelter-north,") && r.contains(",DENY,"))
    );

    for (query, expected) in [
        ("format=xml", "BAD_USER_INPUT"),
        ("survivr=x", "BAD_USER_INPUT"),
        ("decision=maybe", "BAD_USER_INPUT"),
        ("since=yesterday", "BAD_USER_INPUT"),
        ("break_glass=true&break_glass=false", "BAD_USER_INPUT"),
    ] {
        let (status, body) = get(&node, &format!("/audit/export?{query}"), Some(&auditor)).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (400, expected),
            "{query}: {body}"
        );
    }

    let before = node.audit_events().await.len();
    let (status, body) = get(&node, "/audit/export", Some(&node.caseworker(OWNER))).await;
    assert_eq!((status, code(&body).as_str()), (403, "FORBIDDEN"), "{body}");
    let (status, body) = get(&node, "/audit/export", Some(&node.caseworker(LEGAL))).await;
    assert_eq!((status, code(&body).as_str()), (403, "FORBIDDEN"), "{body}");
    let added = &node.audit_events().await[before..];
    assert_eq!(added.len(), 2, "each refusal is audited");
    assert!(added.iter().all(|e| e.kind == AuditKind::Denial));
    let (status, body) = get(&node, "/audit/export", None).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (401, "UNAUTHENTICATED"),
        "{body}"
    );
    let supervisor = node.token(OWNER, &[Role::Supervisor]);
    let (status, _) = get(&node, "/audit/export", Some(&supervisor)).await;
    assert_eq!(status, 200, "a supervisor exports their own agency's log");
}

/// The checkpoints endpoint serves every signed checkpoint after a `seq`.
async fn checkpoints_are_served_to_collectors(backend: Backend) {
    let (node, _) = busy_node(backend).await;
    let (status, body) = get(&node, "/audit/checkpoints", None).await;
    assert_eq!(status, 200, "{body}");
    let all: Vec<Checkpoint> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!all.is_empty());
    let key = node.state.audit.public_key_hex();
    for cp in &all {
        cp.verify(Some(&key)).unwrap();
        assert_eq!(cp.log_id, OWNER);
    }
    let last = all.last().unwrap().seq;
    let (status, body) = get(
        &node,
        &format!("/audit/checkpoints?after={}", last - 1),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 1, "{body}");
    let (status, body) = get(&node, "/audit/checkpoints?after=x", None).await;
    assert_eq!((status, code(&body).as_str()), (400, "BAD_USER_INPUT"));
}

/// An export line of `kind` at `seq`.
fn line_of(lines: &[String], kind: &str, seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["type"] == kind && v["seq"] == seq
        })
        .unwrap_or_else(|| panic!("no {kind} line at {seq}"))
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Each way of tampering with an export makes the real binary fail, exit
/// non-zero and say what was done to which entry.
async fn verify_names_every_kind_of_tampering(backend: Backend) {
    let (node, _) = busy_node(backend).await;
    let (other, _) = busy_node(backend).await;
    let auditor = node.token(OVERSIGHT, &[Role::Auditor]);
    let key = node.state.audit.public_key_hex();
    let dir = tempfile::tempdir().unwrap();
    let (_, body) = get(&node, "/audit/export", Some(&auditor)).await;
    let clean: Vec<String> = body.lines().map(str::to_owned).collect();
    let auditor_there = other.token(OVERSIGHT, &[Role::Auditor]);
    let (_, theirs) = get(&other, "/audit/export", Some(&auditor_there)).await;
    let theirs: Vec<String> = theirs.lines().map(str::to_owned).collect();
    let pin = ["--public-key", key.as_str()];

    let file = write(dir.path(), "clean.jsonl", &joined(&clean));
    let (ok, out) = verify(&node, &file, &pin);
    assert!(ok, "{out}");

    let mut cases: Vec<(&str, Vec<String>, &str)> = Vec::new();
    let mut edited = clean.clone();
    let at = line_of(&edited, "entry", 3);
    edited[at] = edited[at].replace("\"decision\":\"DENY\"", "\"decision\":\"PERMIT\"");
    assert_ne!(edited[at], clean[at]);
    cases.push(("edit", edited, "entry 3 was edited"));

    let mut deleted = clean.clone();
    deleted.remove(line_of(&deleted, "entry", 4));
    cases.push(("delete", deleted, "entry 4 was deleted"));

    let mut reordered = clean.clone();
    let (a, b) = (
        line_of(&reordered, "entry", 5),
        line_of(&reordered, "entry", 6),
    );
    reordered.swap(a, b);
    cases.push(("reorder", reordered, "entry 5 was reordered"));

    let last_entry = clean
        .iter()
        .rposition(|l| l.starts_with(r#"{"type":"entry""#))
        .unwrap();
    cases.push((
        "truncate",
        clean[..last_entry].to_vec(),
        "the export was truncated",
    ));

    let mut spliced = clean.clone();
    for seq in 2..=3 {
        let at = line_of(&spliced, "entry", seq);
        spliced[at] = theirs[line_of(&theirs, "entry", seq)].clone();
    }
    cases.push((
        "splice",
        spliced,
        "entry 2 does not follow entry 1: it was chained after a different entry 1",
    ));

    for (name, lines, expected) in cases {
        let file = write(dir.path(), &format!("{name}.jsonl"), &joined(&lines));
        let (ok, out) = verify(&node, &file, &pin);
        assert!(!ok, "{name}: must fail: {out}");
        assert!(out.contains("FAILED: "), "{name}: {out}");
        assert!(
            out.contains(expected),
            "{name}: expected {expected:?} in {out}"
        );
    }
    // Their log whole, passed off as ours: their key is not ours.
    let file = write(dir.path(), "theirs.jsonl", &joined(&theirs));
    let (ok, out) = verify(&node, &file, &pin);
    assert!(!ok && out.contains("not by the expected key"), "{out}");
}

/// Rewrites history from entry `from`: edits that event, recomputes every
/// later hash and re-signs every checkpoint with the node's own key, as a
/// node operator with the key and the database would. The node is stopped.
async fn rewrite_and_re_sign(node: &TestNode, from: i64) {
    let db = Db::connect(&node.database_url).await.unwrap();
    let guards: &[&str] = match node.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Backend::Postgres => &["DROP TRIGGER audit_log_no_update ON audit_log"],
    };
    for sql in guards {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    let rows = sqlx::query("SELECT seq, event, prev_hash FROM audit_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let mut heads = std::collections::BTreeMap::new();
    let mut prev = [0u8; 32];
    for row in &rows {
        let seq: i64 = row.get("seq");
        let mut event: AuditEvent = serde_json::from_str(&row.get::<String, _>("event")).unwrap();
        if seq < from {
            let hash = chain_hash_event(&prev, seq as u64, &event);
            heads.insert(seq, hash);
            prev = hash;
            continue;
        }
        if seq == from {
            event.actor_user = Some("someone-else".into());
        }
        let hash = chain_hash_event(&prev, seq as u64, &event);
        sqlx::query("UPDATE audit_log SET event = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(String::from_utf8(event.canonical_bytes()).unwrap())
            .bind(hex::encode(prev))
            .bind(hex::encode(hash))
            .bind(seq)
            .execute(db.pool())
            .await
            .unwrap();
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
        let cp = Checkpoint::sign(&key, OWNER, seq as u64, &heads[&seq]);
        sqlx::query("UPDATE audit_checkpoints SET checkpoint = $1 WHERE seq = $2")
            .bind(serde_json::to_string(&cp).unwrap())
            .bind(seq)
            .execute(db.pool())
            .await
            .unwrap();
    }
    db.close().await;
}

/// A node that rewrites its history and signs it again with its own key
/// passes `audit verify`'s chain checks alone (only the append-only
/// triggers it dropped are reported); against checkpoints collected before,
/// the real binary reports the fork, for the database and for an export.
async fn a_re_signed_fork_is_caught_by_collected_checkpoints(backend: Backend) {
    let (mut node, _) = busy_node(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, collected) = get(&node, "/audit/checkpoints", None).await;
    let collected = write(dir.path(), "collected.jsonl", &collected);
    let collected = collected.display().to_string();
    let key = node.state.audit.public_key_hex();
    node.stop().await;

    rewrite_and_re_sign(&node, 2).await;
    let database = node.database_url.clone();
    let (ok, out) = node.cli(&[
        "audit",
        "verify",
        "--database",
        &database,
        "--public-key",
        &key,
    ]);
    // Alone, the re-signed chain verifies; only the dropped triggers show.
    assert!(!ok, "{out}");
    assert!(
        out.contains("entries verified through seq")
            && out.contains("UNGUARDED: the chain verifies")
            && !out.contains("FAILED"),
        "alone, the re-signed rewrite passes its chain checks: {out}"
    );
    let (ok, out) = node.cli(&[
        "audit",
        "verify",
        "--database",
        &database,
        "--public-key",
        &key,
        "--checkpoints",
        &collected,
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAILED: fork: checkpoint collected at seq"),
        "{out}"
    );

    // The same through an export of the rewritten log, made offline.
    let export = dir.path().join("forked.jsonl").display().to_string();
    let (ok, out) = node.cli(&["audit", "export", "--database", &database, "--out", &export]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&node, Path::new(&export), &["--checkpoints", &collected]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("log shelter-north: fork: checkpoint collected at seq"),
        "{out}"
    );
}

on_both_backends!(
    auditors_export_a_verifiable_log,
    an_export_is_signed_through_its_last_entry,
    checkpoints_are_served_to_collectors,
    verify_names_every_kind_of_tampering,
    a_re_signed_fork_is_caught_by_collected_checkpoints,
);

//! A node refuses to start with an invalid policy set: each kind of mistake
//! makes `load_dir` fail with a message naming the file and the policy.

use std::path::Path;

use exchange_policies::{EngineOptions, PolicyEngine, PolicyError};

const GOOD: &str = r#"
@id("owner-sees")
permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequester };
"#;

fn load(files: &[(&str, &str)]) -> Result<PolicyEngine, PolicyError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    PolicyEngine::load_dir(dir.path(), EngineOptions::default())
}

fn message(files: &[(&str, &str)]) -> String {
    match load(files) {
        Ok(_) => panic!("the set {files:?} must be refused"),
        Err(err) => err.to_string(),
    }
}

fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
}

#[test]
fn a_good_set_loads_and_has_a_hash() {
    let engine = load(&[("a.cedar", GOOD)]).unwrap();
    assert_eq!(engine.set_hash().len(), 64);
    assert_eq!(engine.policies()[0].id, "owner-sees");
}

#[test]
fn syntax_error_names_file_line_and_policy() {
    let bad = r#"
@id("broken-rule")
permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequester &&  };
"#;
    let msg = message(&[("a.cedar", GOOD), ("b-broken.cedar", bad)]);
    assert_names(&msg, &["b-broken.cedar:4", "broken-rule", "syntax error"]);
}

#[test]
fn schema_violation_names_file_and_policy() {
    let bad = r#"
@id("wrong-type")
permit (principal, action == Action::"disclose", resource)
when { resource.category == "HEALTH" };
"#;
    let msg = message(&[("a.cedar", GOOD), ("types.cedar", bad)]);
    assert_names(
        &msg,
        &["types.cedar:4", "wrong-type", "does not match the schema"],
    );
}

#[test]
fn unknown_attribute_names_file_and_policy() {
    let bad = r#"
@id("typo-attribute")
permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequestor };
"#;
    let msg = message(&[("typo.cedar", bad)]);
    assert_names(&msg, &["typo.cedar", "typo-attribute", "ownedByRequestor"]);
}

#[test]
fn misspelt_vocabulary_value_is_refused() {
    let bad = r#"
@id("typo-category")
forbid (principal, action == Action::"disclose", resource)
when { resource.category == Category::"HELTH" };
"#;
    let msg = message(&[("typo.cedar", bad)]);
    assert_names(&msg, &["typo.cedar", "typo-category", "HELTH"]);
}

#[test]
fn unknown_action_is_refused() {
    let bad = r#"
@id("unknown-action")
permit (principal, action == Action::"deleteEverything", resource);
"#;
    let msg = message(&[("actions.cedar", bad)]);
    assert_names(&msg, &["actions.cedar", "unknown-action"]);
}

#[test]
fn missing_id_names_file_and_position() {
    let bad = r#"
// a comment

permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequester };
"#;
    let msg = message(&[("a.cedar", GOOD), ("anon.cedar", bad)]);
    assert_names(
        &msg,
        &["anon.cedar:4", "unnamed policy at line 4", "missing @id"],
    );
}

#[test]
fn duplicate_id_names_both_files() {
    let msg = message(&[("a.cedar", GOOD), ("b.cedar", GOOD)]);
    assert_names(&msg, &["b.cedar", "owner-sees", "duplicate @id", "a.cedar"]);
}

#[test]
fn malformed_id_is_refused() {
    let bad = GOOD.replace("owner-sees", "Owner Sees");
    let msg = message(&[("a.cedar", &bad)]);
    assert_names(&msg, &["a.cedar", "Owner Sees", "@id must be"]);
}

#[test]
fn templates_are_refused() {
    let bad = r#"
@id("linked")
permit (principal == ?principal, action == Action::"disclose", resource);
"#;
    let msg = message(&[("t.cedar", bad)]);
    assert_names(&msg, &["t.cedar", "linked", "templates"]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let typo = r#"
@id("typo-attribute")
permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequestor };
"#;
    let err = load(&[
        ("a.cedar", "permit(principal, action, resource);"),
        ("b.cedar", typo),
    ])
    .unwrap_err();
    let files: Vec<&str> = err.problems().iter().map(|p| p.file.as_str()).collect();
    assert!(
        files.contains(&"a.cedar") && files.contains(&"b.cedar"),
        "{err}"
    );
}

#[test]
fn empty_or_missing_directory_is_refused() {
    let msg = message(&[("README.md", "no policies here")]);
    assert_names(&msg, &["holds no .cedar policy file"]);
    let err = PolicyEngine::load_dir(Path::new("/nonexistent/policies"), EngineOptions::default())
        .unwrap_err();
    assert_names(&err.to_string(), &["/nonexistent/policies"]);
}

#[test]
fn the_checked_in_baseline_directory_matches_the_embedded_baseline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline");
    let from_dir = PolicyEngine::load_dir(&dir, EngineOptions::default()).unwrap();
    let embedded = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    assert_eq!(from_dir.set_hash(), embedded.set_hash());
}

//! `exchange-policy`, the data-protection officer's command, as a process:
//! `validate` prints OK and the set's hash or every problem with its file
//! and exits 1; `explain` prints the decision, its reason code and the
//! rules and grant that decided; bad arguments are refused with a message;
//! output piped into a reader that stops early is not a crash.

use std::io::Read as _;
use std::process::{Command, Output, Stdio};

use exchange_policies::{EngineOptions, PolicyEngine};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange-policy"))
        .args(args)
        .output()
        .expect("exchange-policy runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn validate_prints_the_hash_a_node_records() {
    let out = run(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hash = PolicyEngine::baseline(EngineOptions::default())
        .expect("the baseline loads")
        .set_hash()
        .to_owned();
    let text = stdout(&out);
    assert!(text.starts_with("OK: "), "{text}");
    assert!(text.trim_end().ends_with(&hash), "{text}");
}

#[test]
fn validate_names_the_file_of_a_broken_set_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.cedar"),
        "permit(principal, action, resource",
    )
    .unwrap();
    let out = run(&["validate", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with("INVALID: ") && text.contains("broken.cedar"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn explain_answers_the_question_of_the_policies_readme() {
    let out = run(&[
        "explain",
        "--agency-kind",
        "LEGAL_AID",
        "--role",
        "CASEWORKER",
        "--purpose",
        "LEGAL_ASSISTANCE",
        "--category",
        "HEALTH",
        "--grant",
        "categories=HEALTH,LEGAL;purposes=LEGAL_ASSISTANCE;state=active",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Decision: DISCLOSED"), "{text}");
    assert!(text.contains("Reason code: GRANT"), "{text}");
    assert!(text.contains("consent-grant-discloses-category"), "{text}");

    // Health notes never go to law enforcement, whatever the consent.
    let out = run(&[
        "explain",
        "--agency-kind",
        "LAW_ENFORCEMENT",
        "--role",
        "CASEWORKER",
        "--purpose",
        "INVESTIGATION",
        "--category",
        "HEALTH",
        "--grant",
        "categories=HEALTH;purposes=INVESTIGATION;state=active",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Decision: WITHHELD"), "{text}");
    assert!(text.contains("Reason code: FORBIDDEN_BY_POLICY"), "{text}");
}

#[test]
fn an_unknown_word_is_refused_with_the_words_allowed() {
    let out = run(&[
        "explain",
        "--agency-kind",
        "PIRATES",
        "--role",
        "CASEWORKER",
        "--purpose",
        "REFERRAL",
        "--category",
        "HEALTH",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("PIRATES") && text.contains("LEGAL_AID"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

/// `exchange-policy explain ... | head -1`: the reader stops after one line;
/// the command must end normally, not panic on the closed pipe.
#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange-policy"))
        .args([
            "explain",
            "--agency-kind",
            "SHELTER",
            "--role",
            "CASEWORKER",
            "--purpose",
            "REFERRAL",
            "--category",
            "CONTACT",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of the pipe without reading: every write fails.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

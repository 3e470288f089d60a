//! A node refuses to start with an invalid policy set, and says why: for a
//! Cedar syntax error, a schema violation and an unknown attribute, both
//! `Application::build` and the real binary (`agency-node serve`) fail with
//! a message naming the file, the policy and the reason, and nothing starts
//! listening.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agency_node::{Application, NodeConfig};
use exchange_schema::{AgencyId, AgencyKind, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation};

use crate::common::{AUDIENCE, OWNER};

/// A policy file of the baseline broken in one way, and what the refusal
/// must name.
struct Breakage {
    file: &'static str,
    find: &'static str,
    replace: &'static str,
    policy: &'static str,
    reason: &'static [&'static str],
}

const SYNTAX_ERROR: Breakage = Breakage {
    file: "20-consent.cedar",
    find: "context.hasActiveGrant &&",
    replace: "context.hasActiveGrant && &&",
    policy: "consent-grant-discloses-category",
    reason: &["syntax error"],
};

const SCHEMA_VIOLATION: Breakage = Breakage {
    file: "50-actions.cedar",
    find: "action == Action::\"withdrawReferral\"",
    replace: "action == Action::\"deleteReferral\"",
    policy: "referral-withdrawn-by-referrer",
    reason: &["does not match the schema", "deleteReferral"],
};

const UNKNOWN_ATTRIBUTE: Breakage = Breakage {
    file: "40-break-glass.cedar",
    find: "context.breakGlassActive",
    replace: "context.breakGlassOpen",
    policy: "break-glass-emergency-disclosure",
    reason: &["does not match the schema", "breakGlassOpen"],
};

/// A node's files in a temp dir: a one-agency development federation, the
/// baseline copied with one breakage, and a configuration file naming them.
struct Setup {
    dir: tempfile::TempDir,
    config_file: PathBuf,
    config_text: String,
    data_dir: PathBuf,
}

fn setup(breakage: Option<&Breakage>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let federation = DevFederation::create(
        dir.path(),
        &[AgencySpec {
            id: AgencyId::parse(OWNER).unwrap(),
            name: "North Star Shelter".into(),
            kind: AgencyKind::Shelter,
            services: vec![ServiceKind::Shelter],
            languages: vec!["en".into()],
            region: "Test".into(),
            node_url: None,
            tls_identity: None,
            webhook: None,
        }],
        AUDIENCE,
    )
    .unwrap();
    let policies = dir.path().join("policies");
    copy_baseline(&policies);
    if let Some(b) = breakage {
        let path = policies.join(b.file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches(b.find).count(),
            1,
            "{} must hold {:?} exactly once",
            b.file,
            b.find
        );
        std::fs::write(&path, text.replace(b.find, b.replace)).unwrap();
    }
    let data_dir = dir.path().join("node");
    let config_text = format!(
        "agency = \"{OWNER}\"\nlisten = \"127.0.0.1:0\"\nfederation = {:?}\ndata_dir = {:?}\n\
         policies = {:?}\nlog_format = \"json\"\n",
        federation.path.display().to_string(),
        data_dir.display().to_string(),
        policies.display().to_string(),
    );
    let config_file = dir.path().join("agency-node.toml");
    std::fs::write(&config_file, &config_text).unwrap();
    Setup {
        dir,
        config_file,
        config_text,
        data_dir,
    }
}

fn copy_baseline(to: &Path) {
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/baseline");
    std::fs::create_dir_all(to).unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(&baseline).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        copied += 1;
    }
    assert!(copied >= 5, "the baseline has its five files");
}

/// What the refusal must say.
fn assert_names(message: &str, breakage: &Breakage) {
    let mut parts = vec![breakage.file, breakage.policy];
    parts.extend_from_slice(breakage.reason);
    for part in parts {
        assert!(
            message.contains(part),
            "{part:?} missing from the refusal:\n{message}"
        );
    }
}

async fn build_refuses(breakage: &Breakage) {
    let setup = setup(Some(breakage));
    let config: NodeConfig = toml::from_str(&setup.config_text).unwrap();
    let err = match Application::build(config).await {
        Ok(_) => panic!("a node started with {} broken", breakage.file),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("policy set"), "{err}");
    assert_names(&err, breakage);
    assert!(
        !setup.data_dir.exists(),
        "nothing was set up before the policy set was checked"
    );
    drop(setup.dir);
}

/// Runs `agency-node --config <file> serve`; its exit status and output.
/// The node must exit by itself: if it is still running after a generous
/// deadline it started serving, which fails the test.
fn serve(setup: &Setup) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agency-node"))
        .arg("--config")
        .arg(&setup.config_file)
        .arg("serve")
        .env_remove("AGENCY_NODE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the node kept running with an invalid policy set:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

fn binary_refuses(breakage: &Breakage) {
    let setup = setup(Some(breakage));
    let (status, out) = serve(&setup);
    assert!(!status.success(), "exit {status:?}: {out}");
    assert!(out.contains("error:"), "{out}");
    assert_names(&out, breakage);
    assert!(!out.contains("listening"), "it must not listen: {out}");
    assert!(!setup.data_dir.exists(), "{out}");
}

#[tokio::test]
async fn a_policy_syntax_error_stops_application_build() {
    build_refuses(&SYNTAX_ERROR).await;
}

#[tokio::test]
async fn a_policy_schema_violation_stops_application_build() {
    build_refuses(&SCHEMA_VIOLATION).await;
}

#[tokio::test]
async fn an_unknown_policy_attribute_stops_application_build() {
    build_refuses(&UNKNOWN_ATTRIBUTE).await;
}

#[test]
fn a_policy_syntax_error_stops_the_binary() {
    binary_refuses(&SYNTAX_ERROR);
}

#[test]
fn a_policy_schema_violation_stops_the_binary() {
    binary_refuses(&SCHEMA_VIOLATION);
}

#[test]
fn an_unknown_policy_attribute_stops_the_binary() {
    binary_refuses(&UNKNOWN_ATTRIBUTE);
}

/// The control: the same setup with the baseline unbroken starts, so the
/// refusals above are about the policies and nothing else.
#[tokio::test]
async fn the_unbroken_copy_starts() {
    let setup = setup(None);
    let config: NodeConfig = toml::from_str(&setup.config_text).unwrap();
    let app = Application::build(config)
        .await
        .expect("the copied baseline is valid");
    let baseline = exchange_policies::PolicyEngine::baseline(Default::default()).unwrap();
    assert_eq!(app.state().policies.set_hash(), baseline.set_hash());
}

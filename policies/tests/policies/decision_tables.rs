//! Runs the human-readable decision tables in `tests/decisions/*.csv`
//! against the baseline (or against the directory named by the
//! `EXCHANGE_POLICY_DIR` environment variable), reporting every mismatching
//! row with its file and line; and checks that every baseline rule is
//! guarded: removing any one policy makes at least one row fail.

use std::fmt;
use std::path::{Path, PathBuf};

use exchange_policies::scenario::{
    BreakGlassSpec, GrantSpec, GrantTiming, OWNING_AGENCY, REQUESTING_AGENCY, SCENARIO_NOW,
    Scenario,
};
use exchange_policies::{
    Action, ActionTarget, EngineOptions, PolicyEngine, PolicyFile, RequestFacts,
};
use exchange_schema::{AgencyId, AgencyKind, Category, Purpose, Role};

const WRITTEN: &str = "Survivor found unconscious; allergies unknown to paramedics";
const SHORT: &str = "urgent";
const RECEIVING_AGENCY: &str = "receiving-agency";

#[derive(Debug)]
enum RowKind {
    Disclosure {
        scenario: Scenario,
        category: Category,
    },
    Action {
        request: RequestFacts,
        action: Action,
        target: ActionTarget,
    },
}

#[derive(Debug)]
struct Row {
    file: String,
    line: usize,
    kind: RowKind,
    expected_permit: bool,
    expected_reason: String,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

fn decisions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decisions")
}

fn parse<T: std::str::FromStr>(value: &str, what: &str, at: &str) -> T
where
    T::Err: fmt::Display,
{
    value
        .parse()
        .unwrap_or_else(|e| panic!("{at}: bad {what} {value:?}: {e}"))
}

fn yes_no(value: &str, at: &str) -> bool {
    match value {
        "yes" => true,
        "no" => false,
        other => panic!("{at}: expected yes or no, got {other:?}"),
    }
}

fn justification(value: &str, at: &str) -> Option<String> {
    match value {
        "none" | "" => None,
        "short" => Some(SHORT.to_owned()),
        "written" => Some(WRITTEN.to_owned()),
        other => panic!("{at}: justification must be none, short or written, got {other:?}"),
    }
}

fn roles(value: &str, at: &str) -> Vec<Role> {
    value.split('+').map(|r| parse(r, "role", at)).collect()
}

fn other_purpose(purpose: Purpose) -> Purpose {
    if purpose == Purpose::CaseManagement {
        Purpose::Referral
    } else {
        Purpose::CaseManagement
    }
}

fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap()
}

fn disclosure_row(cols: &[&str], at: &str) -> RowKind {
    let purpose: Purpose = parse(cols[2], "purpose", at);
    let category: Category = parse(cols[3], "category", at);
    let grant = |timing, to_requester, purpose| GrantSpec {
        categories: vec![category],
        purposes: vec![purpose],
        timing,
        to_requester,
    };
    let grants = match cols[5] {
        "none" => vec![],
        "active" => vec![grant(GrantTiming::Active, true, purpose)],
        "expired" => vec![grant(GrantTiming::Expired, true, purpose)],
        "not_yet_valid" => vec![grant(GrantTiming::NotYetValid, true, purpose)],
        "revoked" => vec![grant(GrantTiming::Revoked, true, purpose)],
        "other_agency" => vec![grant(GrantTiming::Active, false, purpose)],
        "other_purpose" => vec![grant(GrantTiming::Active, true, other_purpose(purpose))],
        other => panic!("{at}: unknown grant state {other:?}"),
    };
    RowKind::Disclosure {
        scenario: Scenario {
            agency_kind: parse::<AgencyKind>(cols[0], "agency kind", at),
            roles: roles(cols[1], at),
            purpose,
            owner_is_self: yes_no(cols[4], at),
            grants,
            break_glass: parse::<BreakGlassSpec>(cols[6], "break-glass", at),
            justification: justification(cols[7], at),
        },
        category,
    }
}

fn action_row(cols: &[&str], at: &str) -> RowKind {
    let action = Action::from_cedar_name(cols[3])
        .unwrap_or_else(|| panic!("{at}: unknown action {:?}", cols[3]));
    let requester = agency(REQUESTING_AGENCY);
    let owner = if yes_no(cols[4], at) {
        requester.clone()
    } else {
        agency(OWNING_AGENCY)
    };
    let receiver = if yes_no(cols[5], at) {
        requester.clone()
    } else {
        agency(RECEIVING_AGENCY)
    };
    let referral = |timing, purpose| {
        let mut facts = GrantSpec {
            categories: vec![Category::Identity, Category::Case],
            purposes: vec![purpose],
            timing,
            to_requester: true,
        }
        .to_facts("referral-grant".to_owned());
        facts.grantee = receiver.clone();
        vec![facts]
    };
    let grants = match cols[6] {
        "none" => vec![],
        "active" => referral(GrantTiming::Active, Purpose::Referral),
        "expired" => referral(GrantTiming::Expired, Purpose::Referral),
        "revoked" => referral(GrantTiming::Revoked, Purpose::Referral),
        "other_purpose" => referral(GrantTiming::Active, Purpose::CaseManagement),
        other => panic!("{at}: unknown referral consent {other:?}"),
    };
    RowKind::Action {
        request: RequestFacts {
            agency: requester,
            agency_kind: parse(cols[0], "agency kind", at),
            roles: roles(cols[1], at),
            user: "table-user".to_owned(),
            purpose: parse(cols[2], "purpose", at),
            justification: justification(cols[7], at),
            now: SCENARIO_NOW,
        },
        action,
        target: ActionTarget::referral(owner, receiver, grants),
    }
}

fn load_rows() -> Vec<Row> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(decisions_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut header: Option<Vec<&str>> = None;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let at = format!("{file}:{line_no}");
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.splitn(11, ',').map(str::trim).collect();
            let Some(head) = &header else {
                header = Some(cols);
                continue;
            };
            assert!(
                cols.len() >= 10,
                "{at}: expected at least 10 columns, got {}",
                cols.len()
            );
            let kind = match head[3] {
                "category" => disclosure_row(&cols, &at),
                "action" => action_row(&cols, &at),
                other => panic!("{file}: unknown table kind (4th column {other:?})"),
            };
            let expected_permit = match cols[8] {
                "PERMIT" => true,
                "DENY" => false,
                other => panic!("{at}: expected PERMIT or DENY, got {other:?}"),
            };
            rows.push(Row {
                file: file.clone(),
                line: line_no,
                kind,
                expected_permit,
                expected_reason: cols[9].to_owned(),
            });
        }
    }
    rows
}

/// Runs every row; returns the mismatches, one message each.
fn mismatches(engine: &PolicyEngine, rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        let (permit, reason, explanation) = match &row.kind {
            RowKind::Disclosure { scenario, category } => {
                let record = scenario.disclose(engine);
                let decision = record.decision(*category);
                (
                    decision.is_allowed(),
                    decision.reason_code().to_owned(),
                    decision.explanation(),
                )
            }
            RowKind::Action {
                request,
                action,
                target,
            } => {
                let decision = engine
                    .scope(request.clone())
                    .authorize(*action, target.clone());
                (
                    decision.permitted,
                    decision.reason.to_owned(),
                    decision.explanation,
                )
            }
        };
        if permit != row.expected_permit || reason != row.expected_reason {
            out.push(format!(
                "{row}: expected {} {}, got {} {reason} ({explanation})",
                if row.expected_permit {
                    "PERMIT"
                } else {
                    "DENY"
                },
                row.expected_reason,
                if permit { "PERMIT" } else { "DENY" },
            ));
        }
    }
    out
}

fn engine_under_test() -> PolicyEngine {
    match std::env::var_os("EXCHANGE_POLICY_DIR") {
        Some(dir) => PolicyEngine::load_dir(Path::new(&dir), EngineOptions::default()),
        None => PolicyEngine::baseline(EngineOptions::default()),
    }
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn decision_tables_hold() {
    let rows = load_rows();
    assert!(rows.len() > 50, "the tables hold {} rows", rows.len());
    let failures = mismatches(&engine_under_test(), &rows);
    assert!(
        failures.is_empty(),
        "{} of {} rows mismatch:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn every_baseline_rule_is_guarded_by_a_row() {
    let rows = load_rows();
    let baseline = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let files = exchange_policies::source::baseline_files();
    let mut unguarded = Vec::new();
    let mut report = Vec::new();
    for policy in baseline.policies() {
        let mutated: Vec<PolicyFile> = files
            .iter()
            .map(|f| {
                if f.name != policy.file {
                    return f.clone();
                }
                assert!(
                    f.text.contains(&policy.text),
                    "{}: source text not found",
                    policy.id
                );
                PolicyFile {
                    name: f.name.clone(),
                    text: f.text.replacen(&policy.text, "", 1),
                }
            })
            .collect();
        let engine = PolicyEngine::from_files(&mutated, EngineOptions::default())
            .unwrap_or_else(|e| panic!("without {}: {e}", policy.id));
        assert_eq!(engine.policies().len() + 1, baseline.policies().len());
        let failing = mismatches(&engine, &rows);
        if failing.is_empty() {
            unguarded.push(policy.id.clone());
        }
        let lines: Vec<&str> = failing
            .iter()
            .map(|f| f.split_once(": expected").map_or(f.as_str(), |(at, _)| at))
            .collect();
        report.push(format!("{}: {}", policy.id, lines.join(" ")));
    }
    println!("rows guarding each rule:\n{}", report.join("\n"));
    assert!(unguarded.is_empty(), "no row fails without: {unguarded:?}");
}

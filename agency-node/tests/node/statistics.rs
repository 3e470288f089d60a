//! The node's counts for the federation's statistics: a statistician, for
//! the STATISTICS purpose, gets counts of the quarter's records by the
//! catalogue's dimensions, equal to a count by hand of what was registered;
//! a survivor who opted out in the portal or at intake is not counted, nor is a record
//! erased as a whole; anyone else, another purpose, a malformed quarter or
//! a table outside the catalogue is refused with a stable code; every
//! count is audited; and the STATISTICS purpose never discloses a record.

use exchange_schema::statistics::Period;
use exchange_schema::{AuditKind, Role};
use serde_json::{Value, json};

use crate::common::{
    Backend, LEGAL, OWNER, SURVIVOR_QUERY, TestNode, full_survivor_input, on_both_backends,
};
use crate::portal::{Browser, issue_code, start};

on_both_backends!(
    a_statistician_gets_the_quarters_counts_without_opted_out_or_erased_survivors,
    counts_are_for_statisticians_for_the_statistics_purpose_and_the_catalogue_only,
);

const COUNTS: &str = "query($period: String!, $tables: [String!]) { \
    statisticsCounts(period: $period, tables: $tables) { table cells { key count } } }";

async fn register(node: &TestNode, name: &str, sex: &str, nationality: &str) -> String {
    register_in(node, name, sex, nationality, None, false).await
}

/// Registers a survivor identified in `region`, opted out of statistics at
/// intake when `opt_out`.
async fn register_in(
    node: &TestNode,
    name: &str,
    sex: &str,
    nationality: &str,
    region: Option<&str>,
    opt_out: bool,
) -> String {
    let mut input = full_survivor_input(name);
    input["identity"]["sex"] = json!(sex);
    input["identity"]["nationality"] = json!(nationality);
    input["case"]["regionOfIdentification"] = json!(region);
    input["statisticsOptOut"] = json!(opt_out);
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("CASE_MANAGEMENT"),
        exchange_test_kit::survivors::REGISTER_SURVIVOR,
        json!({ "input": input }),
    )
    .await
    .id("registerSurvivor")
}

/// The last quarter that has ended.
fn last_quarter() -> Period {
    let now = time::OffsetDateTime::now_utc();
    Period::of(Period::of(now).start() - time::Duration::days(1))
}

/// Moves every record's registration into `period` (the records were
/// registered now; the quarter counted must have ended).
async fn backdate(node: &TestNode, period: Period) {
    let at = (period.start() + time::Duration::days(3)).unix_timestamp() * 1000;
    for sql in [
        "UPDATE survivors SET created_at = $1",
        "UPDATE referrals SET created_at = $1",
        "UPDATE services SET delivered_at = $1 WHERE delivered_at IS NOT NULL",
    ] {
        sqlx::query(sql)
            .bind(at)
            .execute(node.state.db.pool())
            .await
            .unwrap();
    }
}

/// A referral of the survivor to legal aid (under its consent) and a
/// medical service delivered.
async fn refer_and_serve(node: &TestNode, survivor: &str) {
    node.grant(survivor, LEGAL, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("REFERRAL"),
        "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
        json!({ "input": { "survivorId": survivor, "toAgency": LEGAL,
                           "service": "LEGAL_AID", "urgency": "ROUTINE" } }),
    )
    .await
    .data();
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("CASE_MANAGEMENT"),
        "mutation($input: RecordServiceInput!) { recordService(input: $input) { deliveredAt } }",
        json!({ "input": { "survivorId": survivor, "kind": "MEDICAL",
                           "providerAgency": OWNER, "status": "DELIVERED" } }),
    )
    .await
    .data();
}

fn cells(answer: &Value, table: &str) -> Vec<(Vec<String>, i64)> {
    let mut out: Vec<(Vec<String>, i64)> = answer["statisticsCounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no {table} in {answer}"))["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                serde_json::from_value(c["key"].clone()).unwrap(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn key(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

async fn a_statistician_gets_the_quarters_counts_without_opted_out_or_erased_survivors(
    backend: Backend,
) {
    let node = start(backend).await;
    let mut ids = Vec::new();
    for (name, sex, nationality, region) in [
        ("A", "FEMALE", "RO", Some("XZ-N")),
        ("B", "FEMALE", "RO", Some("XZ-N")),
        ("C", "MALE", "UA", Some("XZ-S")),
        ("D", "MALE", "RO", None),
    ] {
        ids.push(register_in(&node, name, sex, nationality, region, false).await);
    }
    // G asks at intake not to be counted: neither G nor G's referral is.
    let opted_at_intake = register_in(&node, "G", "FEMALE", "RO", Some("XZ-N"), true).await;
    refer_and_serve(&node, &opted_at_intake).await;
    // A bad region code is refused, naming the field.
    let mut bad = full_survivor_input("H");
    bad["case"]["regionOfIdentification"] = json!("North");
    let refused = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            exchange_test_kit::survivors::REGISTER_SURVIVOR,
            json!({ "input": bad }),
        )
        .await;
    assert_eq!(refused.code(), "BAD_USER_INPUT", "{}", refused.body);
    assert!(
        refused
            .body
            .to_string()
            .contains("case.regionOfIdentification"),
        "{}",
        refused.body
    );
    let officer = node.token(OWNER, &[Role::DataProtectionOfficer]);
    // D's identity is erased: D counts, as UNKNOWN where identity decides.
    node.gql(
        Some(&officer),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [IDENTITY]) { erased } }",
        json!({ "id": ids[3] }),
    )
    .await
    .data();
    // E opts out in the portal; F is erased as a whole.
    let opted = register(&node, "E", "FEMALE", "UA").await;
    let code = issue_code(&node, &opted).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "112358").await;
    let home = browser.get("/home").await;
    assert!(home.body.contains("data-opted-out=\"false\""));
    let done = browser
        .post(
            "/statistics-choice",
            &[("csrf", &home.csrf()), ("choice", "out")],
        )
        .await;
    assert_eq!(done.status, reqwest::StatusCode::OK, "{}", done.body);
    assert!(
        browser
            .get("/home")
            .await
            .body
            .contains("data-opted-out=\"true\"")
    );
    // A's and E's referral and delivered service: only A's count.
    for survivor in [&ids[0], &opted] {
        refer_and_serve(&node, survivor).await;
    }
    let erased = register(&node, "F", "MALE", "UA").await;
    node.gql(
        Some(&officer),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [RECORD]) { erased } }",
        json!({ "id": erased }),
    )
    .await
    .data();

    // C's referral is accepted two days after it was made (after the
    // backdating below): WITHIN_7_DAYS; A's waits: NOT_ANSWERED.
    refer_and_serve(&node, &ids[2]).await;
    let c_referral: String = sqlx::query_scalar("SELECT id FROM referrals WHERE survivor_id = $1")
        .bind(ids[2].split_once(':').unwrap().1)
        .fetch_one(node.state.db.pool())
        .await
        .unwrap();
    let accepted = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("REFERRAL"),
            "mutation($id: ID!) { acceptReferral(id: $id) { status } }",
            json!({ "id": format!("{OWNER}:{c_referral}") }),
        )
        .await;
    assert_eq!(accepted.data()["acceptReferral"]["status"], "ACCEPTED");

    let quarter = last_quarter();
    backdate(&node, quarter).await;
    let made = (quarter.start() + time::Duration::days(3)).unix_timestamp() * 1000;
    sqlx::query(
        "UPDATE referral_events SET at = $1 WHERE referral_id = $2 AND status = 'ACCEPTED'",
    )
    .bind(made + 2 * 24 * 3600 * 1000)
    .bind(&c_referral)
    .execute(node.state.db.pool())
    .await
    .unwrap();
    let statistician = node.token("oversight-board", &[Role::Statistician]);
    let answer = node
        .gql(
            Some(&statistician),
            Some("STATISTICS"),
            COUNTS,
            json!({ "period": quarter.to_string(), "tables": null }),
        )
        .await;
    let answer = answer.data();
    assert_eq!(
        cells(answer, "survivors-by-nationality"),
        vec![(key(&["RO"]), 2), (key(&["UA"]), 1), (key(&["UNKNOWN"]), 1)],
        "{answer}"
    );
    assert_eq!(
        cells(answer, "survivors-by-sex-and-age"),
        vec![
            (key(&["AGE_25_34", "FEMALE"]), 2),
            (key(&["AGE_25_34", "MALE"]), 1),
            (key(&["UNKNOWN", "UNKNOWN"]), 1)
        ]
    );
    assert_eq!(
        cells(answer, "survivors-by-exploitation-and-sex"),
        vec![
            (key(&["FORCED_LABOUR", "FEMALE"]), 2),
            (key(&["FORCED_LABOUR", "MALE"]), 1),
            (key(&["FORCED_LABOUR", "UNKNOWN"]), 1)
        ]
    );
    assert_eq!(
        cells(answer, "survivors-by-disability-and-sex"),
        vec![
            (key(&["UNKNOWN", "FEMALE"]), 2),
            (key(&["UNKNOWN", "MALE"]), 1),
            (key(&["UNKNOWN", "UNKNOWN"]), 1)
        ]
    );
    assert_eq!(
        cells(answer, "referrals-by-service-and-status"),
        vec![
            (key(&["LEGAL_AID", "ACCEPTED"]), 1),
            (key(&["LEGAL_AID", "PENDING"]), 1)
        ]
    );
    assert_eq!(
        cells(answer, "referrals-by-service-and-time-to-answer"),
        vec![
            (key(&["LEGAL_AID", "NOT_ANSWERED"]), 1),
            (key(&["LEGAL_AID", "WITHIN_7_DAYS"]), 1)
        ]
    );
    assert_eq!(
        cells(answer, "services-delivered-by-service"),
        vec![(key(&["MEDICAL"]), 2)]
    );
    assert_eq!(
        cells(answer, "survivors-by-region"),
        vec![
            (key(&["UNKNOWN"]), 1),
            (key(&["XZ-N"]), 2),
            (key(&["XZ-S"]), 1)
        ]
    );

    // The quarter before holds no one.
    let earlier = Period::of(quarter.start() - time::Duration::days(1));
    let empty = node
        .gql(
            Some(&statistician),
            Some("STATISTICS"),
            COUNTS,
            json!({ "period": earlier.to_string(), "tables": ["survivors-by-nationality"] }),
        )
        .await;
    assert!(cells(empty.data(), "survivors-by-nationality").is_empty());

    let counted: Vec<_> = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::StatisticsCounted)
        .collect();
    assert_eq!(counted.len(), 2);
    assert_eq!(counted[0].reason, quarter.to_string());
    assert!(counted.iter().all(|e| e.survivor.is_none()));
}

async fn counts_are_for_statisticians_for_the_statistics_purpose_and_the_catalogue_only(
    backend: Backend,
) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Counted").await;
    let quarter = last_quarter().to_string();
    let statistician = node.token("oversight-board", &[Role::Statistician]);
    let ask = |token: String, purpose: &'static str, period: String, tables: Value| {
        let node = &node;
        async move {
            node.gql(
                Some(&token),
                Some(purpose),
                COUNTS,
                json!({ "period": period, "tables": tables }),
            )
            .await
        }
    };
    let caseworker = ask(
        node.caseworker(OWNER),
        "STATISTICS",
        quarter.clone(),
        Value::Null,
    )
    .await;
    assert_eq!(caseworker.code(), "FORBIDDEN");
    let supervisor = ask(
        node.token(OWNER, &[Role::Supervisor]),
        "STATISTICS",
        quarter.clone(),
        Value::Null,
    )
    .await;
    assert_eq!(supervisor.code(), "FORBIDDEN");
    let audit_purpose = ask(statistician.clone(), "AUDIT", quarter.clone(), Value::Null).await;
    assert_eq!(audit_purpose.code(), "FORBIDDEN");
    let current = Period::of(time::OffsetDateTime::now_utc()).to_string();
    for period in ["2026", "2026-Q5", "next quarter", "", current.as_str()] {
        let bad = ask(
            statistician.clone(),
            "STATISTICS",
            period.into(),
            Value::Null,
        )
        .await;
        assert_eq!(bad.code(), "BAD_USER_INPUT", "{period}");
    }
    let unknown = ask(
        statistician.clone(),
        "STATISTICS",
        quarter.clone(),
        json!(["survivors-by-name"]),
    )
    .await;
    assert_eq!(unknown.code(), "BAD_USER_INPUT");
    let denials = node
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == AuditKind::Denial)
        .count();
    assert!(denials >= 3, "refusals are audited: {denials}");

    // The STATISTICS purpose reads no record, not even for the owner.
    let read = node
        .gql(
            Some(&node.token(OWNER, &[Role::Caseworker, Role::Statistician])),
            Some("STATISTICS"),
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
    let (shown, withheld) = read.survivor_view("survivor");
    assert!(shown.is_empty(), "{shown:?}");
    assert_eq!(withheld.len(), 5);
}

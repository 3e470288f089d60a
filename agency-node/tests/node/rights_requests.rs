//! The survivor's rights to correct and erase, end to end at one node: a
//! request asked in the portal (review, then sent) with the agency's
//! deadline, the queue staff read, the answer the survivor sees, a legal
//! hold that makes an erasure wait and says why, who may answer what, bad
//! input, every step audited and the log verifying after; and the page
//! that shows everything held.

use agency_node::NodeConfig;
use exchange_audit::verify::{VerifyOptions, verify_database};
use exchange_schema::{AuditKind, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, LEGAL, OWNER, TestNode, on_both_backends};
use crate::portal::{Browser, issue_code, start_with_node_config};

on_both_backends!(
    an_erasure_asked_in_the_portal_waits_for_a_hold_and_is_done_by_an_officer,
    a_correction_says_what_and_a_refusal_says_why,
    requests_are_for_the_owners_staff_and_their_survivor_only,
    the_survivor_reads_everything_held_as_a_page,
);

/// The deadline these tests configure (not the default 30 days).
const DEADLINE_DAYS: u32 = 12;

async fn start(backend: Backend) -> TestNode {
    start_with_node_config(backend, |config: &mut NodeConfig| {
        config.retention.answer_requests_within_days = DEADLINE_DAYS;
    })
    .await
}

fn in_days(days: u32) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(i64::from(days))).to_string()
}

/// Signs a new survivor in to the portal.
async fn signed_in(node: &TestNode, name: &str) -> (String, Browser) {
    let survivor = node.register_full_survivor(name).await;
    let code = issue_code(node, &survivor).await;
    let mut browser = Browser::new(node);
    browser.first_sign_in(&code, "135790").await;
    (survivor, browser)
}

/// Asks through the form: the review page, then the confirmation; the
/// confirmation's page.
async fn ask(browser: &mut Browser, fields: &[(&str, &str)]) -> crate::portal::Page {
    let csrf = browser.get("/home").await.csrf();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let review = browser.post("/requests", &form).await;
    if review.status != StatusCode::OK {
        return review;
    }
    assert!(
        review.body.contains("action=\"/requests/confirm\""),
        "{}",
        review.body
    );
    let mut confirm = vec![("csrf", csrf.as_str())];
    confirm.extend_from_slice(fields);
    browser.post("/requests/confirm", &confirm).await
}

const QUEUE: &str = "query($status: RightsRequestStatus, $survivor: ID) { \
    rightsRequests(status: $status, survivorId: $survivor) { id survivorId kind parts details \
    askedAt answerDueAt overdue status answer answeredBy } }";
const ANSWER: &str = "mutation($id: ID!, $outcome: RightsRequestOutcome!, $answer: String) { \
    answerRightsRequest(id: $id, outcome: $outcome, answer: $answer) { id status answer answeredBy } }";

async fn queue(
    node: &TestNode,
    token: &str,
    status: Option<&str>,
    survivor: Option<&str>,
) -> Value {
    node.gql(
        Some(token),
        Some("CASE_MANAGEMENT"),
        QUEUE,
        json!({ "status": status, "survivor": survivor }),
    )
    .await
    .data()["rightsRequests"]
        .clone()
}

async fn answer(
    node: &TestNode,
    token: &str,
    id: &str,
    outcome: &str,
    text: Option<&str>,
) -> crate::common::Gql {
    node.gql(
        Some(token),
        Some("CASE_MANAGEMENT"),
        ANSWER,
        json!({ "id": id, "outcome": outcome, "answer": text }),
    )
    .await
}

/// The survivor asks to erase their contact details; the answer is due in
/// the agency's configured days, shown at every step. A legal hold makes
/// the officer's "done" a conflict, and the survivor's page says why with
/// the hold's reason; once lifted, the officer's answer erases the part,
/// the survivor sees it done with the answer, and it cannot be answered
/// twice. Each step is audited, without the words, and the log verifies.
async fn an_erasure_asked_in_the_portal_waits_for_a_hold_and_is_done_by_an_officer(
    backend: Backend,
) {
    let node = start(backend).await;
    let (survivor, mut browser) = signed_in(&node, "Mirela").await;
    let home = browser.get("/home").await;
    assert!(home.body.contains("id=\"no-requests\""), "{}", home.body);
    assert!(home.body.contains(&format!("within {DEADLINE_DAYS} days")));

    let due = in_days(DEADLINE_DAYS);
    let done = ask(
        &mut browser,
        &[
            ("kind", "ERASURE"),
            ("part", "CONTACT"),
            ("details", "I moved; nobody should have my old address"),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains(&format!("answer by {due}")),
        "{}",
        done.body
    );
    let home = browser.get("/home").await;
    assert!(home.body.contains("data-status=\"OPEN\""), "{}", home.body);
    assert!(home.body.contains(&format!("answer by {due}")));

    let officer = node.token(OWNER, &[Role::DataProtectionOfficer]);
    let open = queue(&node, &officer, Some("OPEN"), None).await;
    let request = &open[0];
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(request["survivorId"], survivor.as_str());
    assert_eq!(request["kind"], "ERASURE");
    assert_eq!(request["parts"], json!(["CONTACT"]));
    assert_eq!(
        request["details"],
        "I moved; nobody should have my old address"
    );
    assert_eq!(request["overdue"], false);
    assert!(request["answerDueAt"].as_str().unwrap().starts_with(&due));
    let id = request["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{OWNER}:")), "{id}");

    // A legal hold: erasure must wait, and the survivor is told why.
    node.gql(
        Some(&officer),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { placeLegalHold(survivorId: $id, reason: \"Witness in trial 2026/88\") { id } }",
        json!({ "id": survivor }),
    )
    .await
    .data();
    let held = answer(&node, &officer, &id, "DONE", Some("Erased")).await;
    assert_eq!(held.code(), "CONFLICT", "{:?}", held.body);
    let home = browser.get("/home").await;
    assert!(
        home.body
            .contains("Erasure must wait because of a legal hold: Witness in trial 2026/88"),
        "{}",
        home.body
    );
    assert!(home.body.contains("data-status=\"OPEN\""));
    node.gql(
        Some(&officer),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { liftLegalHold(survivorId: $id) { id } }",
        json!({ "id": survivor }),
    )
    .await
    .data();

    let answered = answer(
        &node,
        &officer,
        &id,
        "DONE",
        Some("Your old address is erased from every copy."),
    )
    .await;
    let answered = &answered.data()["answerRightsRequest"];
    assert_eq!(answered["status"], "DONE");
    assert_eq!(
        answered["answeredBy"],
        format!("{OWNER}/{OWNER}-user").as_str(),
        "{answered}"
    );
    let read = node
        .read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
        .await;
    let (_, withheld) = read.survivor_view("survivor");
    assert!(
        withheld.contains(&("CONTACT".into(), "ERASED".into())),
        "{withheld:?}"
    );
    let home = browser.get("/home").await;
    assert!(home.body.contains("data-status=\"DONE\""), "{}", home.body);
    assert!(
        home.body
            .contains("Your old address is erased from every copy.")
    );
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert!(home.body.contains(&format!("Answered on {today}")));

    let again = answer(&node, &officer, &id, "REFUSED", Some("No")).await;
    assert_eq!(again.code(), "CONFLICT");

    let events = node.audit_events().await;
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == AuditKind::RightsRequest)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons, vec!["ASKED:ERASURE", "DONE:ERASURE"]);
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::RecordErased && e.reason == "REQUEST")
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("old address"), "no words in the log");
    assert!(!text.contains("Witness in trial"));
    verify_database(&node.state.db, &VerifyOptions::default())
        .await
        .expect("the log verifies after the erasure");
}

/// A correction without words is refused at the form (a stable code, nothing
/// stored), as is an unknown part, a missing kind, or a form without its
/// CSRF token; a caseworker of the agency reads one survivor's requests and
/// answers a correction, and a refusal without a reason is refused. The
/// survivor sees the refusal and its reason.
async fn a_correction_says_what_and_a_refusal_says_why(backend: Backend) {
    let node = start(backend).await;
    let (survivor, mut browser) = signed_in(&node, "Tomas").await;

    let empty = ask(
        &mut browser,
        &[("kind", "CORRECTION"), ("part", "IDENTITY")],
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.error_code(), "BAD_USER_INPUT");
    let unknown = ask(
        &mut browser,
        &[
            ("kind", "CORRECTION"),
            ("part", "PASSWORD"),
            ("details", "x"),
        ],
    )
    .await;
    assert_eq!(unknown.error_code(), "BAD_USER_INPUT");
    let no_kind = ask(&mut browser, &[("part", "IDENTITY"), ("details", "x")]).await;
    assert_eq!(no_kind.error_code(), "BAD_USER_INPUT");
    let no_part = ask(&mut browser, &[("kind", "ERASURE")]).await;
    assert_eq!(no_part.error_code(), "BAD_USER_INPUT");
    let forged = browser
        .post(
            "/requests/confirm",
            &[("kind", "ERASURE"), ("part", "RECORD")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.error_code(), "CSRF_TOKEN_INVALID");
    assert_eq!(node.count("rights_requests").await, 0);

    let sent = ask(
        &mut browser,
        &[
            ("kind", "CORRECTION"),
            ("part", "IDENTITY"),
            ("details", "My family name is Novak, not Nowak"),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);

    let caseworker = node.caseworker(OWNER);
    let mine = queue(&node, &caseworker, None, Some(&survivor)).await;
    assert_eq!(mine[0]["kind"], "CORRECTION");
    assert_eq!(mine[0]["details"], "My family name is Novak, not Nowak");
    let id = mine[0]["id"].as_str().unwrap().to_owned();

    let bare = answer(&node, &caseworker, &id, "REFUSED", Some("   ")).await;
    assert_eq!(bare.code(), "BAD_USER_INPUT");
    let refused = answer(
        &node,
        &caseworker,
        &id,
        "REFUSED",
        Some("Your passport says Nowak; bring the new one and we correct it."),
    )
    .await;
    assert_eq!(refused.data()["answerRightsRequest"]["status"], "REFUSED");
    let home = browser.get("/home").await;
    assert!(
        home.body.contains("data-status=\"REFUSED\""),
        "{}",
        home.body
    );
    assert!(
        home.body
            .contains("Your passport says Nowak; bring the new one and we correct it.")
    );
    let events = node.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::RightsRequest && e.reason == "REFUSED:CORRECTION")
    );
    // Reading the requests is audited for the survivor whose words were shown.
    assert!(events.iter().any(|e| e.reason == "RIGHTS_REQUESTS"
        && e.survivor.as_ref().map(ToString::to_string) == Some(survivor.clone())));
}

/// Another agency's staff neither read nor answer the owner's requests; a
/// caseworker reads one survivor's, not the whole queue, and cannot grant
/// an erasure; a survivor sees only their own requests. Each refusal is
/// audited as a denial.
async fn requests_are_for_the_owners_staff_and_their_survivor_only(backend: Backend) {
    let node = start(backend).await;
    let (survivor, mut browser) = signed_in(&node, "Ana").await;
    let (_, mut other) = signed_in(&node, "Beatriz").await;
    let sent = ask(
        &mut browser,
        &[
            ("kind", "ERASURE"),
            ("part", "RECORD"),
            ("details", "Ana's reason"),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let others_home = other.get("/home").await;
    assert!(others_home.body.contains("id=\"no-requests\""));
    assert!(!others_home.body.contains("Ana's reason"));

    let officer = node.token(OWNER, &[Role::Supervisor]);
    let id = queue(&node, &officer, None, None).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let denials_before = node
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == AuditKind::Denial)
        .count();

    let outsider = node.token(LEGAL, &[Role::Supervisor]);
    let listed = node
        .gql(
            Some(&outsider),
            Some("CASE_MANAGEMENT"),
            QUEUE,
            json!({ "status": null, "survivor": null }),
        )
        .await;
    assert_eq!(listed.code(), "FORBIDDEN");
    let answered = answer(&node, &outsider, &id, "DONE", None).await;
    assert_eq!(answered.code(), "FORBIDDEN");
    let caseworker = node.caseworker(OWNER);
    let whole_queue = node
        .gql(
            Some(&caseworker),
            Some("CASE_MANAGEMENT"),
            QUEUE,
            json!({ "status": null, "survivor": null }),
        )
        .await;
    assert_eq!(whole_queue.code(), "FORBIDDEN");
    let erased_by_caseworker = answer(&node, &caseworker, &id, "DONE", None).await;
    assert_eq!(erased_by_caseworker.code(), "FORBIDDEN");
    let missing = answer(
        &node,
        &officer,
        &format!("{OWNER}:no-such-request"),
        "DONE",
        None,
    )
    .await;
    assert_eq!(missing.code(), "NOT_FOUND");
    let elsewhere = answer(&node, &officer, "legal-aid-city:abc", "DONE", None).await;
    assert_eq!(elsewhere.code(), "BAD_USER_INPUT");
    let denials = node
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == AuditKind::Denial)
        .count();
    assert!(
        denials >= denials_before + 5,
        "{denials_before} -> {denials}"
    );

    // Nothing was erased by the refused attempts.
    let read = node
        .read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
        .await;
    let (shown, _) = read.survivor_view("survivor");
    assert!(shown.contains(&"IDENTITY".to_owned()), "{shown:?}");
}

/// Everything held, as a page: the record's content, the sections named in
/// the survivor's language, the survivor's own words escaped; audited like
/// the download; no page for anyone signed out.
async fn the_survivor_reads_everything_held_as_a_page(backend: Backend) {
    let node = start(backend).await;
    let (_survivor, mut browser) = signed_in(&node, "Dora <b>").await;
    let mut stranger = Browser::new(&node);
    let refused = stranger.get("/my-record").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);

    let page = browser.get("/my-record").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"my-record\""));
    assert!(page.body.contains("Dora &lt;b&gt;"), "{}", page.body);
    assert!(!page.body.contains("Dora <b>"));
    assert!(page.body.contains("Who saw your record"));
    assert!(page.body.contains("How long each part is kept"));
    let spanish = browser.get("/my-record?lang=es").await;
    assert!(spanish.body.contains("Quién vio su expediente"));
    let exported = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.reason == "SURVIVOR_EXPORT")
        .count();
    assert_eq!(exported, 2, "each reading is audited");
}

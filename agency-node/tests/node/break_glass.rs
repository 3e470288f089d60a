//! Break-glass over real HTTP: who may open a window, what it discloses and
//! for how long, that a deployment can switch it off, and the trace every use
//! leaves (audit log, auditors' filter, the survivor's own access history).
//!
//! The baseline (`policies/baseline/40-break-glass.cedar`) lets a SUPERVISOR
//! of a SHELTER, HEALTH_CLINIC or CHILD_PROTECTION agency open break-glass
//! for the EMERGENCY purpose with a justification of at least 20 characters,
//! and then see IDENTITY, CONTACT and HEALTH (CONTACT only if the agency is a
//! protection agency: `contact-only-to-protection-agencies` still applies).

use std::collections::BTreeSet;

use agency_node::NodeConfig;
use agency_node::store::break_glass::{self, BreakGlassOpening};
use exchange_schema::{AgencyId, GlobalId, JUSTIFICATION_HEADER, Role};
use exchange_trust::MintRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::{
    AUDIENCE, Backend, CLINIC, Gql, LEGAL, OVERSIGHT, OWNER, POLICE, SHELTER, SURVIVOR_QUERY,
    TestNode, on_both_backends,
};

on_both_backends!(
    a_supervisor_breaks_glass_and_sees_exactly_the_named_categories,
    break_glass_needs_a_written_justification,
    only_supervisors_of_protection_and_care_agencies_may_break_glass,
    without_an_open_window_emergency_discloses_nothing,
    an_expired_window_discloses_nothing,
    a_deployment_that_switches_break_glass_off_refuses_it,
    every_break_glass_access_is_audited_and_listed_for_auditors,
    the_survivor_sees_emergency_access_in_their_history,
    break_glass_for_an_unknown_survivor_is_refused_and_audited,
);

/// A break-glass request for a survivor the node does not hold is refused
/// with `NOT_FOUND`, opens no window, and leaves a denial in the log like
/// every other refused attempt.
async fn break_glass_for_an_unknown_survivor_is_refused_and_audited(backend: Backend) {
    let node = TestNode::start(backend).await;
    let shelter = supervisor(&node, SHELTER);
    let ghost = format!("{OWNER}:doesnotexist");
    let before = node.audit_events().await.len();
    let response = open(&node, &shelter, &ghost, JUSTIFICATION).await;
    assert_eq!(response.code(), "NOT_FOUND", "{:?}", response.body);
    assert_eq!(node.count("break_glass_openings").await, 0);
    let added = node.audit_events().await.split_off(before);
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(
        (added[0].kind, added[0].reason.as_str()),
        (exchange_schema::AuditKind::Denial, "NOT_FOUND")
    );
    assert_eq!(
        added[0].survivor.as_ref().map(ToString::to_string),
        Some(ghost)
    );
}

const JUSTIFICATION: &str = "Survivor missing after a threat; we must locate her today.";
const OPEN: &str = "mutation($id: ID!, $why: String!) { openBreakGlass(survivorId: $id, justification: $why) \
    { id survivorId openedAt expiresAt } }";

/// Sends `query` with the EMERGENCY purpose and, if given, the
/// justification header.
async fn emergency(
    node: &TestNode,
    token: &str,
    justification: Option<&str>,
    query: &str,
    variables: Value,
) -> Gql {
    let mut request = node
        .client
        .post(format!("{}/graphql", node.base))
        .bearer_auth(token)
        .header("x-exchange-purpose", "EMERGENCY")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(justification) = justification {
        request = request.header(JUSTIFICATION_HEADER, justification);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    Gql { status, body }
}

pub(crate) async fn open(node: &TestNode, token: &str, survivor: &str, why: &str) -> Gql {
    emergency(
        node,
        token,
        None,
        OPEN,
        json!({ "id": survivor, "why": why }),
    )
    .await
}

/// A break-glass read: EMERGENCY purpose and the justification header.
async fn read(node: &TestNode, token: &str, survivor: &str) -> Gql {
    emergency(
        node,
        token,
        Some(JUSTIFICATION),
        SURVIVOR_QUERY,
        json!({ "id": survivor }),
    )
    .await
}

fn supervisor(node: &TestNode, agency: &str) -> String {
    node.token(agency, &[Role::Supervisor])
}

fn shown(response: &Gql) -> Vec<String> {
    response.survivor_view("survivor").0
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a timestamp"), &Rfc3339).unwrap()
}

async fn a_supervisor_breaks_glass_and_sees_exactly_the_named_categories(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Bea").await;

    // A shelter supervisor: IDENTITY, CONTACT and HEALTH, never CASE or LEGAL.
    let shelter = supervisor(&node, SHELTER);
    let window = open(&node, &shelter, &survivor, JUSTIFICATION).await;
    let window = &window.data()["openBreakGlass"];
    assert_eq!(window["survivorId"], survivor.as_str());
    let (opened, expires) = (time_of(&window["openedAt"]), time_of(&window["expiresAt"]));
    assert_eq!(
        expires - opened,
        time::Duration::minutes(240),
        "the default window is 4 hours: {window}"
    );
    let seen = read(&node, &shelter, &survivor).await;
    assert_eq!(
        shown(&seen),
        names(&["IDENTITY", "CONTACT", "HEALTH"]),
        "{:?}",
        seen.body
    );
    let s = &seen.data()["survivor"];
    assert_eq!(s["breakGlass"], true, "{s}");
    assert_eq!(s["identity"]["givenName"], "Bea");
    assert_eq!(s["contact"]["currentLocation"], "Safe house 7");
    assert_eq!(s["health"]["medicalNotes"], "invented note");
    let withheld: BTreeSet<String> = seen
        .survivor_view("survivor")
        .1
        .into_iter()
        .map(|(category, _)| category)
        .collect();
    assert_eq!(
        withheld,
        BTreeSet::from(["CASE".to_owned(), "LEGAL".to_owned()])
    );

    // A clinic supervisor: IDENTITY and HEALTH; CONTACT stays with
    // protection agencies even in an emergency.
    let clinic = supervisor(&node, CLINIC);
    open(&node, &clinic, &survivor, JUSTIFICATION).await.data();
    let seen = read(&node, &clinic, &survivor).await;
    assert_eq!(
        shown(&seen),
        names(&["IDENTITY", "HEALTH"]),
        "{:?}",
        seen.body
    );
    assert!(
        seen.survivor_view("survivor")
            .1
            .contains(&("CONTACT".to_owned(), "FORBIDDEN_BY_POLICY".to_owned())),
        "{:?}",
        seen.body
    );
    assert_eq!(seen.data()["survivor"]["breakGlass"], true);

    // The window is the supervisor's own: a colleague at the same shelter
    // who opened none sees nothing.
    let colleague = node
        .federation
        .provider(&AgencyId::parse(SHELTER).unwrap())
        .unwrap()
        .mint(&MintRequest::new(
            AgencyId::parse(SHELTER).unwrap(),
            "shelter-south-night-supervisor",
            vec![Role::Supervisor],
            AUDIENCE,
        ))
        .unwrap();
    let nothing = read(&node, &colleague, &survivor).await;
    assert!(shown(&nothing).is_empty(), "{:?}", nothing.body);
    assert_eq!(nothing.data()["survivor"]["breakGlass"], false);
}

/// Opening a window needs a justification of at least 20 characters, and
/// with a window open an EMERGENCY read still needs the justification
/// header: each refusal is answered `JUSTIFICATION_REQUIRED`, discloses
/// nothing and leaves exactly one denial naming the survivor in the log.
async fn break_glass_needs_a_written_justification(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Cleo").await;
    let shelter = supervisor(&node, SHELTER);
    let openings = node.count("break_glass_openings").await;

    // No justification, a blank one and a too-short one are all refused.
    for why in ["", "   ", "urgent", "need to see it now"] {
        let refused = open(&node, &shelter, &survivor, why).await;
        assert_eq!(refused.code(), "JUSTIFICATION_REQUIRED", "{why:?}");
    }
    // Omitting the argument is not even a valid operation.
    let missing = emergency(
        &node,
        &shelter,
        None,
        "mutation($id: ID!) { openBreakGlass(survivorId: $id) { id } }",
        json!({ "id": survivor }),
    )
    .await;
    assert!(missing.body["errors"].is_array(), "{:?}", missing.body);
    assert!(missing.body["data"].is_null(), "{:?}", missing.body);
    // Break-glass needs the EMERGENCY purpose.
    let wrong_purpose = node
        .gql(
            Some(&shelter),
            Some("SHELTER_PLACEMENT"),
            OPEN,
            json!({ "id": survivor, "why": JUSTIFICATION }),
        )
        .await;
    assert_eq!(wrong_purpose.code(), "BAD_USER_INPUT");
    assert_eq!(
        node.count("break_glass_openings").await,
        openings,
        "no refused attempt opened a window"
    );

    // With a window open, an EMERGENCY read without the justification
    // header, or with a too-short one, is refused (and audited), not answered.
    open(&node, &shelter, &survivor, JUSTIFICATION).await.data();
    let before = node.audit_events().await.len();
    for header in [None, Some("urgent"), Some("   ")] {
        let response = emergency(
            &node,
            &shelter,
            header,
            SURVIVOR_QUERY,
            json!({ "id": survivor }),
        )
        .await;
        assert_eq!(
            response.code(),
            "JUSTIFICATION_REQUIRED",
            "{header:?}: {:?}",
            response.body
        );
        assert!(
            response.body["data"]["survivor"].is_null(),
            "{header:?}: {:?}",
            response.body
        );
    }
    // Each refusal is audited: exactly three denials for this survivor,
    // counted before anything is said about them (an empty match would
    // otherwise pass every check below).
    let added = node.audit_events().await.split_off(before);
    let refusals: Vec<_> = added
        .iter()
        .filter(|e| {
            e.kind == exchange_schema::AuditKind::Denial && e.reason == "JUSTIFICATION_REQUIRED"
        })
        .collect();
    assert_eq!(refusals.len(), 3, "each refusal is audited: {added:?}");
    for refusal in &refusals {
        assert_eq!(
            refusal.survivor.as_ref().map(ToString::to_string),
            Some(survivor.clone()),
            "{refusal:?}"
        );
        assert!(refusal.disclosed.is_empty(), "{refusal:?}");
    }
    // With it, the window works.
    assert_eq!(
        shown(&read(&node, &shelter, &survivor).await),
        names(&["IDENTITY", "CONTACT", "HEALTH"])
    );
}

async fn only_supervisors_of_protection_and_care_agencies_may_break_glass(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Dina").await;
    let refused = [
        ("a shelter caseworker", node.caseworker(SHELTER)),
        ("a clinic caseworker", node.caseworker(CLINIC)),
        ("a legal-aid supervisor", supervisor(&node, LEGAL)),
        ("a police supervisor", supervisor(&node, POLICE)),
        ("an oversight supervisor", supervisor(&node, OVERSIGHT)),
    ];
    for (who, token) in &refused {
        let response = open(&node, token, &survivor, JUSTIFICATION).await;
        assert_eq!(response.code(), "FORBIDDEN", "{who}: {:?}", response.body);
        // And an emergency read by them discloses nothing.
        let response = read(&node, token, &survivor).await;
        assert!(shown(&response).is_empty(), "{who}: {:?}", response.body);
        assert_eq!(response.data()["survivor"]["breakGlass"], false, "{who}");
    }
    assert_eq!(node.count("break_glass_openings").await, 0);

    // Each refusal is audited as a policy denial of the opening.
    let denials: Vec<_> = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| {
            e.kind == exchange_schema::AuditKind::Denial
                && e.subject.as_deref() == Some("OpenBreakGlass")
        })
        .collect();
    assert_eq!(denials.len(), refused.len(), "{denials:?}");
    assert!(denials.iter().all(|e| !e.break_glass));
}

async fn without_an_open_window_emergency_discloses_nothing(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Ema").await;
    let other = node.register_full_survivor("Flor").await;
    let shelter = supervisor(&node, SHELTER);

    // Permitted role and kind, EMERGENCY purpose, a justification: still
    // nothing without an opening.
    let response = read(&node, &shelter, &survivor).await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    assert_eq!(response.data()["survivor"]["breakGlass"], false);

    // A window on one survivor opens no other record.
    open(&node, &shelter, &survivor, JUSTIFICATION).await.data();
    let response = read(&node, &shelter, &other).await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    // And it does not outlast its purpose: the same supervisor asking for
    // SHELTER_PLACEMENT gets nothing either.
    let response = node
        .read_survivor(&shelter, "SHELTER_PLACEMENT", &survivor)
        .await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    assert_eq!(response.data()["survivor"]["breakGlass"], false);
}

/// Stores an opening by the harness's shelter supervisor
/// (`shelter-south-user`) directly, as the node would have.
async fn store_opening(
    node: &TestNode,
    survivor: &str,
    opened_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) {
    let gid = GlobalId::parse(survivor).unwrap();
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    break_glass::insert(
        &mut conn,
        &node.state.vault,
        &BreakGlassOpening {
            id: agency_node::store::new_local_id(),
            survivor_id: gid.local().to_owned(),
            agency: AgencyId::parse(SHELTER).unwrap(),
            user: format!("{SHELTER}-user"),
            justification: JUSTIFICATION.into(),
            opened_at,
            expires_at,
        },
    )
    .await
    .unwrap();
}

async fn an_expired_window_discloses_nothing(backend: Backend) {
    // A 30-minute window configured.
    let node = TestNode::start_with(backend, |config: &mut NodeConfig| {
        config.break_glass.window_minutes = 30;
    })
    .await;
    let shelter = supervisor(&node, SHELTER);
    let now = OffsetDateTime::now_utc();

    // Control: an opening stored a minute ago is open.
    let control = node.register_full_survivor("Gala").await;
    store_opening(
        &node,
        &control,
        now - time::Duration::minutes(1),
        now + time::Duration::minutes(29),
    )
    .await;
    assert_eq!(
        shown(&read(&node, &shelter, &control).await),
        names(&["IDENTITY", "CONTACT", "HEALTH"])
    );

    // Closed at its stored expiry.
    let expired = node.register_full_survivor("Hana").await;
    store_opening(
        &node,
        &expired,
        now - time::Duration::minutes(20),
        now - time::Duration::minutes(1),
    )
    .await;
    let response = read(&node, &shelter, &expired).await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    assert_eq!(response.data()["survivor"]["breakGlass"], false);

    // Closed by the configured window although the stored expiry is later
    // (a record written under a longer window, or tampered with).
    let outlived = node.register_full_survivor("Iris").await;
    store_opening(
        &node,
        &outlived,
        now - time::Duration::minutes(45),
        now + time::Duration::hours(3),
    )
    .await;
    let response = read(&node, &shelter, &outlived).await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    assert_eq!(response.data()["survivor"]["breakGlass"], false);

    // A window opened through the API uses the configured length.
    let fresh = node.register_full_survivor("Jade").await;
    let window = open(&node, &shelter, &fresh, JUSTIFICATION).await;
    let window = &window.data()["openBreakGlass"];
    assert_eq!(
        time_of(&window["expiresAt"]) - time_of(&window["openedAt"]),
        time::Duration::minutes(30)
    );
}

async fn a_deployment_that_switches_break_glass_off_refuses_it(backend: Backend) {
    let node = TestNode::start_with(backend, |config: &mut NodeConfig| {
        config.break_glass.enabled = false;
    })
    .await;
    let survivor = node.register_full_survivor("Kira").await;
    let shelter = supervisor(&node, SHELTER);

    let refused = open(&node, &shelter, &survivor, JUSTIFICATION).await;
    assert_eq!(refused.code(), "FORBIDDEN", "{:?}", refused.body);
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("BREAK_GLASS_DISABLED"),
        "{:?}",
        refused.body
    );
    assert_eq!(node.count("break_glass_openings").await, 0);

    // Even an opening already stored (say, before the switch) opens nothing.
    let now = OffsetDateTime::now_utc();
    store_opening(
        &node,
        &survivor,
        now - time::Duration::minutes(1),
        now + time::Duration::minutes(60),
    )
    .await;
    let response = read(&node, &shelter, &survivor).await;
    assert!(shown(&response).is_empty(), "{:?}", response.body);
    assert_eq!(response.data()["survivor"]["breakGlass"], false);
    let (_, withheld) = response.survivor_view("survivor");
    assert!(
        withheld.iter().all(|(_, r)| r == "FORBIDDEN_BY_POLICY"),
        "{withheld:?}"
    );

    let denial = node
        .audit_events()
        .await
        .into_iter()
        .find(|e| e.subject.as_deref() == Some("OpenBreakGlass"))
        .expect("the refused opening is audited");
    assert_eq!(denial.reason, "BREAK_GLASS_DISABLED");
}

const AUDIT_LOG: &str = "query($f: AuditLogFilter) { auditLog(filter: $f, first: 100) { pageInfo { hasNextPage } \
    edges { node { seq kind actorAgency actorUser survivorId purpose justification disclosed breakGlass reason } } } }";

async fn audit_log(node: &TestNode, token: &str, filter: Value) -> Vec<Value> {
    let response = node
        .gql(
            Some(token),
            Some("AUDIT"),
            AUDIT_LOG,
            json!({ "f": filter }),
        )
        .await;
    let page = &response.data()["auditLog"];
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn every_break_glass_access_is_audited_and_listed_for_auditors(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Lena").await;
    let other = node.register_full_survivor("Mira").await;
    let shelter = supervisor(&node, SHELTER);
    let clinic = supervisor(&node, CLINIC);

    // Ordinary traffic that must not be listed as break-glass.
    node.read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
        .await
        .data();
    read(&node, &shelter, &survivor).await.data(); // no window yet
    // Break-glass traffic.
    open(&node, &shelter, &survivor, JUSTIFICATION).await.data();
    read(&node, &shelter, &survivor).await.data();
    read(&node, &shelter, &survivor).await.data();
    open(&node, &clinic, &other, JUSTIFICATION).await.data();
    read(&node, &clinic, &other).await.data();

    // In the log: each opening and each read through a window is marked
    // break_glass with its justification; nothing else is.
    let events = node.audit_events().await;
    let glass: Vec<_> = events.iter().filter(|e| e.break_glass).collect();
    let openings: Vec<_> = glass
        .iter()
        .filter(|e| e.reason == "BREAK_GLASS_OPENED")
        .collect();
    let reads: Vec<_> = glass
        .iter()
        .filter(|e| e.kind == exchange_schema::AuditKind::Disclosure && !e.disclosed.is_empty())
        .collect();
    assert_eq!(openings.len(), 2, "{glass:?}");
    assert_eq!(reads.len(), 3, "{glass:?}");
    assert_eq!(glass.len(), 5, "only openings and window reads: {glass:?}");
    for e in &glass {
        assert_eq!(e.justification.as_deref(), Some(JUSTIFICATION), "{e:?}");
        assert_eq!(
            e.purpose,
            Some(exchange_schema::Purpose::Emergency),
            "{e:?}"
        );
        assert_eq!(
            e.policy_set.as_deref(),
            Some(node.state.policies.set_hash()),
            "{e:?}"
        );
    }
    for e in &reads {
        let explanation = e.explanation.as_deref().unwrap_or_default();
        assert!(
            explanation.contains("break-glass-emergency-disclosure"),
            "the rule that decided is named: {explanation}"
        );
    }
    // The emergency read made before any window was opened is an ordinary
    // (refused) disclosure, not a break-glass one.
    let before_window: Vec<_> = events
        .iter()
        .filter(|e| {
            e.kind == exchange_schema::AuditKind::Disclosure
                && e.purpose == Some(exchange_schema::Purpose::Emergency)
                && !e.break_glass
        })
        .collect();
    assert_eq!(before_window.len(), 1, "{before_window:?}");
    assert!(before_window[0].disclosed.is_empty());

    // An auditor lists exactly those entries, and none of them as ordinary.
    let auditor = node.token(OVERSIGHT, &[Role::Auditor]);
    let listed = audit_log(&node, &auditor, json!({ "breakGlass": true })).await;
    let listed_seqs: BTreeSet<u64> = listed.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(listed.iter().all(|e| e["breakGlass"] == true), "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|e| e["justification"] == JUSTIFICATION && e["purpose"] == "EMERGENCY"),
        "{listed:?}"
    );
    assert_eq!(
        listed
            .iter()
            .filter(|e| e["reason"] == "BREAK_GLASS_OPENED")
            .count(),
        2
    );
    let not_glass = audit_log(&node, &auditor, json!({ "breakGlass": false })).await;
    assert!(!not_glass.is_empty());
    assert!(not_glass.iter().all(|e| e["breakGlass"] == false));
    let not_glass_seqs: BTreeSet<u64> = not_glass
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(listed_seqs.is_disjoint(&not_glass_seqs));
    let everything = audit_log(&node, &auditor, json!({})).await;
    let all_glass: BTreeSet<u64> = everything
        .iter()
        .filter(|e| e["breakGlass"] == true)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(all_glass, listed_seqs, "the filter misses none");
}

async fn the_survivor_sees_emergency_access_in_their_history(backend: Backend) {
    let node = TestNode::start_with(backend, |config: &mut NodeConfig| {
        let mut portal = agency_node::config::PortalConfig::new(([127, 0, 0, 1], 0).into());
        portal.quick_exit_url = "https://neutral.example/".into();
        config.portal = Some(portal);
    })
    .await;
    let survivor = node.register_full_survivor("Nora").await;
    // An ordinary read by the owner, then an emergency one by a clinic.
    node.read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
        .await
        .data();
    let clinic = supervisor(&node, CLINIC);
    open(&node, &clinic, &survivor, JUSTIFICATION).await.data();
    read(&node, &clinic, &survivor).await.data();

    let code = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": survivor }),
        )
        .await
        .data()["issueConsentCode"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut portal = Portal::new(&node);
    let home = portal.sign_in(&code, "135790").await;

    let rows = history_rows(&home);
    let clinic_row = format!("data-agency=\"{CLINIC}\"");
    let marked = |row: &&String| row.starts_with("class=\"access break-glass\"");
    // The clinic's opening and its read are marked as emergency access; the
    // read shows what was seen.
    let emergency: Vec<&String> = rows.iter().filter(marked).collect();
    assert!(
        emergency
            .iter()
            .any(|row| row.contains(&clinic_row) && row.contains("<li>")),
        "the clinic's emergency read is marked: {rows:#?}"
    );
    assert!(
        emergency.iter().all(|row| row.contains(&clinic_row)),
        "only the clinic's accesses are marked: {rows:#?}"
    );
    assert!(
        rows.iter()
            .filter(|row| row.contains(&clinic_row))
            .all(|row| marked(&row)),
        "no clinic access is shown as ordinary: {rows:#?}"
    );
    assert!(
        rows.iter().any(|row| row.starts_with("class=\"access\"")
            && row.contains(&format!("data-agency=\"{OWNER}\""))
            && row.contains("<li>")),
        "the owner's ordinary read is listed unmarked: {rows:#?}"
    );
    assert!(
        home.contains("id=\"break-glass-explained\""),
        "the page explains emergency access"
    );
}

/// The rows of the access-history table, from their attributes to `</tr>`.
fn history_rows(html: &str) -> Vec<String> {
    html.split("<tr ")
        .skip(1)
        .map(|rest| rest.split("</tr>").next().unwrap_or_default().to_owned())
        .filter(|row| row.starts_with("class=\"access"))
        .collect()
}

/// Just enough of a browser to sign in to the survivor portal.
struct Portal {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Portal {
    fn new(node: &TestNode) -> Self {
        Self {
            base: node.portal.clone().expect("the portal is on"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", format!("portal_session={cookie}")),
            None => request,
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some(token) = pair.strip_prefix("portal_session=") {
                self.cookie = (!token.is_empty()).then(|| token.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> String {
        let request = self.client.get(format!("{}{path}", self.base));
        let (status, _, body) = self.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> String {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        let (status, location, body) = self.send(request).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
        location
    }

    /// First sign-in with a fresh code, choosing `pin`; the home page.
    async fn sign_in(&mut self, code: &str, pin: &str) -> String {
        let csrf = csrf_token(&self.get("/").await);
        let next = self
            .post("/sign-in", &[("csrf", &csrf), ("code", code), ("pin", "")])
            .await;
        assert_eq!(next, "/pin");
        let csrf = csrf_token(&self.get("/pin").await);
        let next = self
            .post("/pin", &[("csrf", &csrf), ("pin", pin), ("pin_again", pin)])
            .await;
        assert_eq!(next, "/home");
        self.get("/home").await
    }
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

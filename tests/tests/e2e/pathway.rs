//! A survivor's whole pathway through the federation, as the case
//! management issue tells it: intake at a shelter, a referral to legal aid,
//! accepted; an onward referral by legal aid to a clinic, accepted; a care
//! plan agreed by the survivor in the portal; a court date for legal aid
//! that shows in its week across the federation and is notified to it; the
//! case transferred to
//! the clinic (the test federation has one shelter, so the clinic takes the
//! case over); and the survivor's timeline at the new owner showing it all.

use exchange_test_kit::{CLINIC, LEGAL, SHELTER, TestFederation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A browser stand-in for the survivor portal: keeps the session cookie.
struct Portal {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Portal {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, String, String) {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> String {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await.2
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    fn csrf(page: &str) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a CSRF token") + marker.len();
        page[start..].split('"').next().unwrap().to_owned()
    }

    /// First sign-in with a fresh code, choosing a PIN; ends signed in.
    async fn sign_in(&mut self, code: &str) {
        let csrf = Self::csrf(&self.get("/").await);
        let (_, to, _) = self
            .post("/sign-in", &[("csrf", &csrf), ("code", code), ("pin", "")])
            .await;
        assert_eq!(to, "/pin");
        let csrf = Self::csrf(&self.get("/pin").await);
        let (_, to, body) = self
            .post(
                "/pin",
                &[("csrf", &csrf), ("pin", "258036"), ("pin_again", "258036")],
            )
            .await;
        assert_eq!(to, "/home", "{body}");
    }
}

async fn as_agency(
    fed: &TestFederation,
    agency: &str,
    purpose: &str,
    query: &str,
    variables: Value,
) -> Value {
    let answer = fed
        .gateway_gql(&fed.caseworker(agency), purpose, query, variables)
        .await;
    answer.data().clone()
}

async fn consent_code(fed: &TestFederation, owner: &str, survivor: &str) -> String {
    let data = as_agency(
        fed,
        owner,
        "CASE_MANAGEMENT",
        "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
        json!({ "id": survivor }),
    )
    .await;
    data["issueConsentCode"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

const ACCEPT: &str = "mutation($id: ID!) { acceptReferral(id: $id) { status } }";
const REFER: &str = "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id parentId fromAgency } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_goes_from_intake_to_a_transferred_case_and_sees_it_all_in_the_portal() {
    let fed = TestFederation::start().await;

    // Intake at the shelter, with consent for legal aid; referred, accepted.
    let survivor = fed.register_survivor(SHELTER, "Pathway").await;
    let local = survivor.split(':').nth(1).unwrap().to_owned();
    fed.grant(
        &survivor,
        LEGAL,
        &["IDENTITY", "CASE", "LEGAL"],
        &["REFERRAL", "LEGAL_ASSISTANCE"],
    )
    .await;
    let to_legal = as_agency(&fed, SHELTER, "REFERRAL", REFER,
        json!({ "input": { "survivorId": survivor, "toAgency": LEGAL, "service": "LEGAL_AID", "urgency": "URGENT" } }))
        .await["createReferral"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    as_agency(&fed, LEGAL, "REFERRAL", ACCEPT, json!({ "id": to_legal })).await;

    // Legal aid refers her on to the clinic, under the consent the shelter
    // recorded; the clinic finds it in its inbox and accepts.
    fed.grant(
        &survivor,
        CLINIC,
        &["IDENTITY", "HEALTH"],
        &["REFERRAL", "HEALTH_CARE"],
    )
    .await;
    let onward = as_agency(&fed, LEGAL, "REFERRAL", REFER,
        json!({ "input": { "survivorId": survivor, "toAgency": CLINIC, "service": "MEDICAL", "urgency": "ROUTINE" } }))
        .await;
    assert_eq!(onward["createReferral"]["parentId"], to_legal.as_str());
    let inbox = as_agency(
        &fed,
        CLINIC,
        "REFERRAL",
        "{ referrals(direction: INCOMING) { edges { node { id fromAgency } } } }",
        json!({}),
    )
    .await;
    let onward_id = inbox["referrals"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(inbox["referrals"]["edges"][0]["node"]["fromAgency"], LEGAL);
    as_agency(&fed, CLINIC, "REFERRAL", ACCEPT, json!({ "id": onward_id })).await;

    // A care plan, agreed by the survivor in the shelter's portal.
    as_agency(&fed, SHELTER, "CASE_MANAGEMENT",
        "mutation($input: ProposeCarePlanInput!) { proposeCarePlan(input: $input) { version } }",
        json!({ "input": { "survivorId": survivor, "goals": ["Safety", "Her residence permit"], "actions": [
            { "description": "Lodge the residence application", "responsibleAgency": LEGAL },
            { "description": "Health check", "responsibleAgency": CLINIC } ] } }))
        .await;
    let code = consent_code(&fed, SHELTER, &survivor).await;
    let mut portal = Portal::new(&fed.node(SHELTER).portal);
    portal.sign_in(&code).await;
    let home = portal.get("/home").await;
    assert!(home.contains("Lodge the residence application"), "{home}");
    let csrf = Portal::csrf(&home);
    let (status, _, review) = portal
        .post("/plan/agree", &[("csrf", &csrf), ("version", "1")])
        .await;
    assert_eq!(status, 200, "{review}");
    let (status, _, done) = portal
        .post("/plan/agree/confirm", &[("csrf", &csrf), ("version", "1")])
        .await;
    assert_eq!(status, 200, "{done}");

    // A court date for legal aid: in its week, gathered across nodes.
    let soon = (OffsetDateTime::now_utc() + time::Duration::hours(12))
        .format(&Rfc3339)
        .unwrap();
    as_agency(&fed, SHELTER, "CASE_MANAGEMENT",
        "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }",
        json!({ "input": { "survivorId": survivor, "kind": "COURT_DATE", "dueAt": soon, "assignedAgency": LEGAL } }))
        .await;
    let week = (OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(&Rfc3339)
        .unwrap();
    let due =
        "query($b: DateTime!) { followUpsDue(before: $b) { edges { node { survivorId kind } } } }";
    let legal_week = as_agency(&fed, LEGAL, "LEGAL_ASSISTANCE", due, json!({ "b": week })).await;
    assert_eq!(
        legal_week["followUpsDue"]["edges"][0]["node"]["kind"],
        "COURT_DATE"
    );
    // Due within a day: legal aid is notified (kinds and IDs only), as its
    // subscribers and its webhook are told.
    let told = as_agency(
        &fed,
        LEGAL,
        "LEGAL_ASSISTANCE",
        "{ notifications { edges { node { kind survivorId } } } }",
        json!({}),
    )
    .await;
    let kinds: Vec<&str> = told["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    // (the clinic's answer to its onward referral came first)
    assert_eq!(
        kinds,
        vec!["REFERRAL_RECEIVED", "REFERRAL_ANSWERED", "FOLLOW_UP_DUE"]
    );

    // She moves: the clinic takes the case over.
    let moved = as_agency(&fed, SHELTER, "CASE_MANAGEMENT",
        "mutation($input: TransferCaseInput!) { transferCase(input: $input) { status newSurvivorId } }",
        json!({ "input": { "survivorId": survivor, "toAgency": CLINIC, "consentMethod": "WITNESSED_VERBAL" } }))
        .await;
    let new_id = format!("{CLINIC}:{local}");
    assert_eq!(moved["transferCase"]["status"], "COMPLETED");
    assert_eq!(moved["transferCase"]["newSurvivorId"], new_id.as_str());

    // Legal aid's week now comes from the clinic's node, and its consent
    // still holds there.
    let legal_week = as_agency(&fed, LEGAL, "LEGAL_ASSISTANCE", due, json!({ "b": week })).await;
    assert_eq!(
        legal_week["followUpsDue"]["edges"][0]["node"]["survivorId"],
        new_id.as_str()
    );
    let legal_view = as_agency(&fed, LEGAL, "LEGAL_ASSISTANCE",
        "query($id: ID!) { survivor(id: $id) { identity { givenName } carePlan { complete agreement { method } } } }",
        json!({ "id": new_id }))
        .await;
    assert_eq!(legal_view["survivor"]["identity"]["givenName"], "Pathway");
    assert_eq!(
        legal_view["survivor"]["carePlan"]["agreement"]["method"],
        "PORTAL"
    );

    // The survivor, with a code from her new agency, sees it all.
    let code = consent_code(&fed, CLINIC, &new_id).await;
    let mut portal = Portal::new(&fed.node(CLINIC).portal);
    portal.sign_in(&code).await;
    let home = portal.get("/home").await;
    for expected in [
        "agreed to help you with: Legal aid",
        "agreed to help you with: Medical care",
        "You agreed to version 1 of your care plan",
        "Court hearing",
        "Your case moved from",
        "id=\"plan-agreed\"",
    ] {
        assert!(
            home.contains(expected),
            "the timeline lacks {expected:?}: {home}"
        );
    }
    for kind in ["referral", "plan", "follow-up", "transfer"] {
        assert!(
            home.contains(&format!("data-kind=\"{kind}\"")),
            "no {kind} milestone"
        );
    }
}

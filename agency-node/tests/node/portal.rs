//! The survivor consent portal over real HTTP: sign-in with a consent code
//! and a chosen PIN, lockout, CSRF, security headers, languages, giving and
//! withdrawing consent with signed receipts, and the access history.

use agency_node::NodeConfig;
use agency_node::config::PortalConfig;
use agency_node::receipt::SignedReceipt;
use exchange_schema::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, LEGAL, OWNER, TestNode, on_both_backends};

on_both_backends!(
    a_survivor_grants_and_withdraws_consent_and_sees_who_looked,
    a_wrong_pin_is_refused_and_repeated_failures_lock_the_code,
    a_form_without_its_csrf_token_is_refused,
    codes_and_pins_are_stored_only_as_argon2_hashes,
    a_new_code_ends_the_sessions_of_the_old_one,
    only_the_owning_agency_issues_consent_codes,
    a_survivor_cannot_withdraw_another_survivors_grant,
    signing_in_issues_a_fresh_session,
    a_cross_site_form_post_is_refused_by_sec_fetch_site,
    only_failures_in_a_row_lock_the_code,
    the_lock_ends_after_lockout_minutes,
    a_survivor_sees_retention_dates_and_downloads_everything_held,
    the_portal_listener_answers_the_probes_and_is_not_ready_without_its_audit_log,
    a_client_over_its_limit_of_sign_in_attempts_is_refused_before_any_code_is_checked,
    a_refusal_whose_entry_cannot_be_written_leaves_the_next_refusal_to_be_audited,
);

/// Sign-in attempts a client may make in these tests' window.
const ATTEMPTS_PER_CLIENT: u32 = 4;

/// One client (here the loopback address, the portal's trusted proxy in
/// this test) tries unknown codes up to its limit; past it, the portal
/// answers 429 `TOO_MANY_ATTEMPTS` even to the right code, without
/// checking it, and audits the first refusal of the window only. Another
/// client, forwarded by the trusted proxy, is not held back; the limit ends
/// with its window; the table names no address.
async fn a_client_over_its_limit_of_sign_in_attempts_is_refused_before_any_code_is_checked(
    backend: Backend,
) {
    let node = start_with_portal(backend, |portal| {
        portal.sign_ins_per_client = ATTEMPTS_PER_CLIENT;
        portal.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let survivor = node.register_full_survivor("Throttled").await;
    let code = issue_code(&node, &survivor).await;

    let mut guesser = Browser::new(&node);
    for attempt in 1..=ATTEMPTS_PER_CLIENT {
        let page = guesser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
        assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "attempt {attempt}");
    }
    let mut survivor_here = Browser::new(&node);
    for _ in 0..2 {
        let page = survivor_here.sign_in(&code, "").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
        assert_eq!(page.error_code(), "TOO_MANY_ATTEMPTS");
        assert!(
            page.body
                .contains("Too many sign-in attempts from this connection")
        );
        assert_ne!(page.location(), "/pin");
    }
    let denials = |reason: &'static str| {
        let node = &node;
        async move {
            node.audit_events()
                .await
                .into_iter()
                .filter(|e| e.kind.as_str() == "PORTAL_SIGN_IN" && e.reason == reason)
                .count()
        }
    };
    assert_eq!(denials("UNKNOWN_CODE").await, ATTEMPTS_PER_CLIENT as usize);
    assert_eq!(denials("TOO_MANY_ATTEMPTS").await, 1, "once a window");
    assert_eq!(denials("SIGNED_IN").await, 0, "the code was never checked");

    // Another client behind the trusted proxy is counted apart.
    let mut elsewhere = Browser::new(&node);
    elsewhere.forwarded_for = Some("198.51.100.7");
    elsewhere.first_sign_in(&code, "246802").await;

    // Nothing in the table names an address.
    let rows = node
        .count("portal_sign_in_attempts WHERE client_digest LIKE '%127.0.0.1%' OR client_digest LIKE '%198.51%'")
        .await;
    assert_eq!(rows, 0);

    // The window ends (moved into the past here): the first client may try
    // again.
    sqlx::query("UPDATE portal_sign_in_attempts SET window_start = window_start - 86400000")
        .execute(node.state.db.pool())
        .await
        .unwrap();
    let page = guesser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
    assert_eq!(page.error_code(), "SIGN_IN_REFUSED");
}

/// Past the limit, the first refusal of a window is audited. While the log
/// refuses entries, a refused client gets `AUDIT_UNAVAILABLE`, not a 429
/// without its entry, and every refusal tries again; once the log accepts
/// entries, the next refusal is the window's one entry and the ones after
/// it add none.
async fn a_refusal_whose_entry_cannot_be_written_leaves_the_next_refusal_to_be_audited(
    backend: Backend,
) {
    let node = start_with_portal(backend, |portal| {
        portal.sign_ins_per_client = ATTEMPTS_PER_CLIENT;
    })
    .await;
    let mut guesser = Browser::new(&node);
    for attempt in 1..=ATTEMPTS_PER_CLIENT {
        let page = guesser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
        assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "attempt {attempt}");
    }
    let refusals_in_the_log = || async {
        node.audit_events()
            .await
            .into_iter()
            .filter(|e| e.kind.as_str() == "PORTAL_SIGN_IN" && e.reason == "TOO_MANY_ATTEMPTS")
            .count()
    };

    node.refuse_audit_entries().await;
    for refusal in 1..=2 {
        let page = guesser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
        assert_eq!(
            page.error_code(),
            "AUDIT_UNAVAILABLE",
            "refusal {refusal} under the fault: {}",
            page.body
        );
        assert_ne!(page.status, StatusCode::TOO_MANY_REQUESTS);
    }
    node.accept_audit_entries().await;
    assert_eq!(refusals_in_the_log().await, 0);

    for refusal in 1..=2 {
        let page = guesser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
        assert_eq!(
            page.status,
            StatusCode::TOO_MANY_REQUESTS,
            "refusal {refusal}"
        );
        assert_eq!(page.error_code(), "TOO_MANY_ATTEMPTS");
    }
    assert_eq!(
        refusals_in_the_log().await,
        1,
        "the window's refusal is audited once the log takes it, and once"
    );
}

/// An orchestrator probes the node on the portal's listener (the API's
/// asks for a client certificate): `/healthz` while the process runs,
/// `/readyz` only while the audit log can be written.
async fn the_portal_listener_answers_the_probes_and_is_not_ready_without_its_audit_log(
    backend: Backend,
) {
    let node = start(backend).await;
    let portal = node.portal.clone().expect("portal on");
    let status = |path: &'static str| {
        let client = node.client.clone();
        let url = format!("{portal}{path}");
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 200);
    node.state.db.pool().close().await;
    assert_eq!(status("/readyz").await, 503, "not ready without the log");
    assert_eq!(status("/healthz").await, 200, "alive all the same");
}

/// How many failures lock a code in these tests.
const MAX_FAILURES: u32 = 3;

pub(crate) async fn start(backend: Backend) -> TestNode {
    start_with_portal(backend, |_| {}).await
}

/// A node with its portal on, adjusted by `adjust` on top of the usual.
async fn start_with_portal(backend: Backend, adjust: impl FnOnce(&mut PortalConfig)) -> TestNode {
    start_with_node_config(backend, |config| {
        if let Some(portal) = config.portal.as_mut() {
            adjust(portal);
        }
    })
    .await
}

/// A node with its portal on, its configuration adjusted by `adjust`.
pub(crate) async fn start_with_node_config(
    backend: Backend,
    adjust: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    TestNode::start_with(backend, |config: &mut NodeConfig| {
        let mut portal = PortalConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        portal.max_failed_sign_ins = MAX_FAILURES;
        portal.quick_exit_url = "https://neutral.example/".into();
        config.portal = Some(portal);
        adjust(config);
    })
    .await
}

/// A browser stand-in: keeps the session cookie, follows no redirects.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
    language: Option<&'static str>,
    /// The `X-Forwarded-For` it sends, as if through a proxy.
    forwarded_for: Option<&'static str>,
}

/// A portal response.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub(crate) fn error_code(&self) -> &str {
        self.headers
            .get("x-exchange-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub(crate) fn csrf(&self) -> String {
        attribute_after(&self.body, "name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF token in the page: {}", self.body))
    }

    /// Receipt IDs linked from the page.
    fn receipt_ids(&self) -> Vec<String> {
        self.body
            .split("href=\"/receipts/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_owned))
            .collect()
    }
}

fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}

impl Browser {
    pub(crate) fn new(node: &TestNode) -> Self {
        Self {
            base: node.portal.clone().expect("the portal is on"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            language: None,
            forwarded_for: None,
        }
    }

    /// A browser reaching the portal at `base` through `client` (a portal
    /// served over TLS, its CA trusted by the client).
    fn over(base: String, client: reqwest::Client) -> Self {
        Self {
            base,
            client,
            cookie: None,
            language: None,
            forwarded_for: None,
        }
    }

    /// The same browser (its cookie) pointed at another replica's portal.
    pub(crate) fn at(&self, other: &TestNode) -> Self {
        Self {
            base: other.portal.clone().expect("the portal is on"),
            client: self.client.clone(),
            cookie: self.cookie.clone(),
            language: self.language,
            forwarded_for: self.forwarded_for,
        }
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            if let Some(token) = pair.strip_prefix("portal_session=") {
                self.cookie = (!token.is_empty()).then(|| token.to_owned());
            }
        }
    }

    async fn finish(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("portal_session={cookie}"));
        }
        if let Some(language) = self.language {
            request = request.header("accept-language", language);
        }
        if let Some(client) = self.forwarded_for {
            request = request.header("x-forwarded-for", client);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.finish(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with_headers(path, fields, &[]).await
    }

    /// A form post with extra request headers (Fetch Metadata, Origin).
    async fn post_with_headers(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.finish(request).await
    }

    /// Signs in through the form; the page the sign-in answered with.
    pub(crate) async fn sign_in(&mut self, code: &str, pin: &str) -> Page {
        let csrf = self.get("/").await.csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("code", code), ("pin", pin)])
            .await
    }

    /// First sign-in with a new code, choosing `pin`; ends on /home.
    pub(crate) async fn first_sign_in(&mut self, code: &str, pin: &str) {
        let page = self.sign_in(code, "").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/pin");
        let csrf = self.get("/pin").await.csrf();
        let page = self
            .post("/pin", &[("csrf", &csrf), ("pin", pin), ("pin_again", pin)])
            .await;
        assert_eq!(page.location(), "/home", "{}", page.body);
    }
}

pub(crate) async fn issue_code(node: &TestNode, survivor: &str) -> String {
    let owner = node.caseworker(OWNER);
    let response = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code survivorId } }",
            json!({ "id": survivor }),
        )
        .await;
    response.data()["issueConsentCode"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn legal_reads_legal_status(node: &TestNode, survivor: &str) -> serde_json::Value {
    let legal = node.caseworker(LEGAL);
    let response = node
        .read_survivor(&legal, "LEGAL_ASSISTANCE", survivor)
        .await;
    response.data()["survivor"].clone()
}

async fn a_survivor_grants_and_withdraws_consent_and_sees_who_looked(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Ana").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "246810").await;

    // Nothing granted yet: the legal-aid agency sees no legal status.
    let before = legal_reads_legal_status(&node, &survivor).await;
    assert!(before["legal"].is_null(), "{before}");

    // Grant, with the confirmation step in between.
    let form = browser.get("/grant").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains(&format!("value=\"{LEGAL}\"")),
        "the directory lists {LEGAL}"
    );
    assert!(
        !form.body.contains(&format!("value=\"{OWNER}\"")),
        "not the owner itself"
    );
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let fields = [
        ("csrf", form.csrf()),
        ("agency", LEGAL.to_owned()),
        ("category", "LEGAL".to_owned()),
        ("purpose", "LEGAL_ASSISTANCE".to_owned()),
        ("until", until.clone()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let review = browser.post("/grant", &fields).await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.body);
    assert!(review.body.contains("action=\"/grant/confirm\""));
    assert!(
        review.body.contains("Please check before you agree"),
        "the confirmation speaks the survivor's language: {}",
        review.body
    );
    assert!(
        legal_reads_legal_status(&node, &survivor).await["legal"].is_null(),
        "nothing is granted before the survivor confirms"
    );
    let done = browser.post("/grant/confirm", &fields).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let given_receipt = done.receipt_ids().pop().expect("a receipt link");

    // The grant works at once, and the read shows in the access history.
    let after = legal_reads_legal_status(&node, &survivor).await;
    assert_eq!(after["legal"]["immigrationStatus"], "pending", "{after}");
    let home = browser.get("/home").await;
    assert!(
        home.body.contains("data-status=\"ACTIVE\""),
        "{}",
        home.body
    );
    assert!(
        home.body.contains(&format!("data-agency=\"{LEGAL}\"")),
        "the legal-aid read is in the history: {}",
        home.body
    );

    // Withdraw, again with a confirmation step.
    let grant_id = attribute_after(&home.body, "name=\"grant\" value=\"").expect("a withdraw form");
    let csrf = home.csrf();
    let review = browser
        .post("/revoke", &[("csrf", &csrf), ("grant", &grant_id)])
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.body);
    assert!(review.body.contains("action=\"/revoke/confirm\""));
    assert!(
        review.body.contains("Withdraw permission?"),
        "{}",
        review.body
    );
    assert_eq!(
        legal_reads_legal_status(&node, &survivor).await["legal"]["immigrationStatus"],
        "pending",
        "nothing is withdrawn before the survivor confirms"
    );
    let done = browser
        .post("/revoke/confirm", &[("csrf", &csrf), ("grant", &grant_id)])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let withdrawn_receipt = done.receipt_ids().pop().expect("a receipt link");
    let revoked = legal_reads_legal_status(&node, &survivor).await;
    assert!(
        revoked["legal"].is_null(),
        "withdrawal takes effect at once: {revoked}"
    );
    assert!(
        revoked["withheld"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["category"] == "LEGAL" && w["reason"] == "GRANT_REVOKED"),
        "{revoked}"
    );

    // Both receipts download, verify against the node's key, and say what
    // happened; an altered receipt fails `receipt verify`.
    let key = exchange_audit::keys::public_key_hex(&node.data_dir).unwrap();
    for (id, event) in [(&given_receipt, "GIVEN"), (&withdrawn_receipt, "WITHDRAWN")] {
        let page = browser.get(&format!("/receipts/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
        );
        let receipt = SignedReceipt::parse(&page.body).expect("a receipt");
        receipt.verify(Some(&key)).expect("signed by the node");
        assert_eq!(receipt.receipt.event.as_str(), event);
        assert_eq!(receipt.receipt.recipient.id, LEGAL);
        assert_eq!(receipt.receipt.pii_principal_id, survivor);

        let file = node.data_dir.join(format!("receipt-{event}.json"));
        std::fs::write(&file, &page.body).unwrap();
        let data_dir = node.data_dir.display().to_string();
        let (ok, out) = node.cli(&[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--data-dir",
            &data_dir,
        ]);
        assert!(ok, "{out}");
        assert!(out.contains("verifies"), "{out}");
        std::fs::write(
            &file,
            page.body.replace("LEGAL_ASSISTANCE", "INVESTIGATION"),
        )
        .unwrap();
        let (ok, out) = node.cli(&[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--data-dir",
            &data_dir,
        ]);
        assert!(!ok, "an altered receipt must fail: {out}");
        assert!(out.contains("RECEIPT_BAD_SIGNATURE"), "{out}");
    }

    // Every step is in the audit log, with the survivor as the actor.
    let events = node.audit_events().await;
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.actor_user.as_deref() == Some("survivor"))
        .map(|e| e.kind.as_str())
        .collect();
    for kind in ["PORTAL_SIGN_IN", "CONSENT_GRANTED", "CONSENT_REVOKED"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e.kind.as_str() == "CONSENT_CODE_ISSUED")
    );
}

async fn a_wrong_pin_is_refused_and_repeated_failures_lock_the_code(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Bea").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "135790").await;

    let mut stranger = Browser::new(&node);
    for attempt in 1..MAX_FAILURES {
        let page = stranger.sign_in(&code, "000000").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(page.error_code(), "SIGN_IN_REFUSED");
        assert!(page.body.contains("role=\"alert\""));
    }
    let page = stranger.sign_in(&code, "000000").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.error_code(), "CODE_LOCKED");

    // Locked: even the right PIN is refused now.
    let page = stranger.sign_in(&code, "135790").await;
    assert_eq!(page.error_code(), "CODE_LOCKED");
    assert_ne!(page.location(), "/home");

    // An unknown code is refused the same way as a wrong PIN.
    let page = stranger.sign_in("ABCD-EFGH-JKMN-PQRS", "135790").await;
    assert_eq!(page.error_code(), "SIGN_IN_REFUSED");

    let reasons: Vec<String> = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| {
            e.kind.as_str() == "PORTAL_SIGN_IN" && e.decision == exchange_schema::Decision::Deny
        })
        .map(|e| e.reason)
        .collect();
    for reason in ["BAD_CREDENTIALS", "LOCKED_OUT", "LOCKED", "UNKNOWN_CODE"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} not audited: {reasons:?}"
        );
    }

    // A new code from the caseworker unlocks the survivor.
    let code = issue_code(&node, &survivor).await;
    let mut again = Browser::new(&node);
    again.first_sign_in(&code, "112233").await;
}

async fn a_form_without_its_csrf_token_is_refused(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Cai").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    let csrf = browser.get("/").await.csrf();
    let before = node.audit_events().await.len();

    let page = browser
        .post("/sign-in", &[("code", code.as_str()), ("pin", "")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), "CSRF_TOKEN_INVALID");

    let page = browser
        .post(
            "/sign-in",
            &[("csrf", "forged"), ("code", code.as_str()), ("pin", "")],
        )
        .await;
    assert_eq!(page.error_code(), "CSRF_TOKEN_INVALID");

    // The right token from a cross-site page is refused too.
    let request = browser
        .client
        .post(format!("{}/sign-in", browser.base))
        .header("origin", "https://evil.example")
        .header(
            "cookie",
            format!("portal_session={}", browser.cookie.clone().unwrap()),
        )
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code.as_str()),
            ("pin", ""),
        ]);
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A token without its session cookie is refused.
    let mut other = Browser::new(&node);
    let page = other
        .post(
            "/sign-in",
            &[
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
                ("pin", ""),
            ],
        )
        .await;
    assert_eq!(page.error_code(), "CSRF_TOKEN_INVALID");

    assert_eq!(
        node.audit_events().await.len(),
        before,
        "a refused form never reaches the sign-in"
    );
    let page = browser
        .post(
            "/sign-in",
            &[
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
                ("pin", ""),
            ],
        )
        .await;
    assert_eq!(
        page.location(),
        "/pin",
        "with its token the same form works"
    );
}

async fn codes_and_pins_are_stored_only_as_argon2_hashes(backend: Backend) {
    use sqlx::Row as _;
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Dara").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "975310").await;
    let row = sqlx::query("SELECT locator, code_hash, pin_hash FROM portal_credentials")
        .fetch_one(node.state.db.pool())
        .await
        .unwrap();
    let code_hash: String = row.get("code_hash");
    let pin_hash: String = row.get("pin_hash");
    assert!(code_hash.starts_with("$argon2id$"), "{code_hash}");
    assert!(pin_hash.starts_with("$argon2id$"), "{pin_hash}");
    let secret_part = &code[5..];
    for stored in [&code_hash, &pin_hash, &row.get::<String, _>("locator")] {
        assert!(!stored.contains(secret_part) && !stored.contains("975310"));
    }
    // Nor does the audit log hold the code or the PIN.
    let log: Vec<String> = node
        .audit_events()
        .await
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(
        log.iter()
            .all(|e| !e.contains(secret_part) && !e.contains("975310"))
    );
}

async fn a_new_code_ends_the_sessions_of_the_old_one(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Eli").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "864200").await;
    assert_eq!(browser.get("/home").await.status, StatusCode::OK);
    let _new_code = issue_code(&node, &survivor).await;
    let page = browser.get("/home").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/");
    let page = Browser::new(&node).sign_in(&code, "864200").await;
    assert_eq!(
        page.error_code(),
        "SIGN_IN_REFUSED",
        "the old code no longer works"
    );
}

async fn only_the_owning_agency_issues_consent_codes(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Fen").await;
    let legal = node.caseworker(LEGAL);
    let response = node
        .gql(
            Some(&legal),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
    let auditor = node.token(OWNER, &[Role::Auditor]);
    let response = node
        .gql(
            Some(&auditor),
            Some("AUDIT"),
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
    assert_eq!(node.count("portal_credentials").await, 0);
}

async fn a_survivor_cannot_withdraw_another_survivors_grant(backend: Backend) {
    let node = start(backend).await;
    let mine = node.register_full_survivor("Gil").await;
    let theirs = node.register_full_survivor("Hana").await;
    let their_grant = node
        .grant(&theirs, LEGAL, &["LEGAL"], &["LEGAL_ASSISTANCE"], json!({}))
        .await;
    let code = issue_code(&node, &mine).await;
    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "101010").await;
    let csrf = browser.get("/home").await.csrf();
    let local = their_grant.split_once(':').unwrap().1;
    for path in ["/revoke", "/revoke/confirm"] {
        let page = browser
            .post(path, &[("csrf", &csrf), ("grant", local)])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page.error_code(), "NOT_FOUND");
    }
    let still = legal_reads_legal_status(&node, &theirs).await;
    assert_eq!(still["legal"]["immigrationStatus"], "pending");
}

/// Now, as the portal stores times: Unix milliseconds.
fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The stored `locked_until` (Unix ms) of the credential with this locator.
async fn stored_lock(node: &TestNode, locator: &str) -> Option<i64> {
    use sqlx::Row as _;
    sqlx::query("SELECT locked_until FROM portal_credentials WHERE locator = $1")
        .bind(locator)
        .fetch_one(node.state.db.pool())
        .await
        .unwrap()
        .get::<Option<i64>, _>("locked_until")
}

/// Sets the stored `locked_until` directly, as time passing would.
async fn set_stored_lock(node: &TestNode, locator: &str, until_ms: i64) {
    let done = sqlx::query("UPDATE portal_credentials SET locked_until = $1 WHERE locator = $2")
        .bind(until_ms)
        .bind(locator)
        .execute(node.state.db.pool())
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

/// Guards "signing in replaces the session with a fresh one (no fixation)"
/// (`portal/session.rs`, `sign_in::sign_in`): the cookie changes at every
/// sign-in, and the token held before it, planted or seen, is ended: it
/// neither reaches /home nor keeps its CSRF token.
async fn signing_in_issues_a_fresh_session(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Ivo").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    let anonymous_csrf = browser.get("/").await.csrf();
    let anonymous = browser
        .cookie
        .clone()
        .expect("every visitor gets a session");

    let page = browser
        .post(
            "/sign-in",
            &[("csrf", &anonymous_csrf), ("code", &code), ("pin", "")],
        )
        .await;
    assert_eq!(page.location(), "/pin", "{}", page.body);
    let signed_in = browser.cookie.clone().expect("a session cookie");
    assert_ne!(
        signed_in, anonymous,
        "signing in issues a new session token"
    );

    // Choosing the PIN keeps the signed-in session, never the old one.
    let csrf = browser.get("/pin").await.csrf();
    let page = browser
        .post(
            "/pin",
            &[("csrf", &csrf), ("pin", "314159"), ("pin_again", "314159")],
        )
        .await;
    assert_eq!(page.location(), "/home", "{}", page.body);
    assert_ne!(browser.cookie.as_deref(), Some(anonymous.as_str()));
    assert_eq!(browser.get("/home").await.status, StatusCode::OK);

    // Whoever holds the pre-sign-in token is signed out, and that session is
    // gone: its CSRF token is refused with it.
    let mut fixer = Browser::new(&node);
    fixer.cookie = Some(anonymous.clone());
    let page = fixer.get("/home").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/");
    fixer.cookie = Some(anonymous.clone());
    let page = fixer
        .post(
            "/sign-in",
            &[
                ("csrf", &anonymous_csrf),
                ("code", &code),
                ("pin", "314159"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), "CSRF_TOKEN_INVALID");

    // Signing in with a chosen PIN issues a fresh session too.
    let mut again = Browser::new(&node);
    let csrf = again.get("/").await.csrf();
    let before = again.cookie.clone().expect("a session cookie");
    let page = again
        .post(
            "/sign-in",
            &[("csrf", &csrf), ("code", &code), ("pin", "314159")],
        )
        .await;
    assert_eq!(page.location(), "/home", "{}", page.body);
    assert_ne!(again.cookie.as_deref(), Some(before.as_str()));
    let mut fixer = Browser::new(&node);
    fixer.cookie = Some(before);
    assert_eq!(fixer.get("/home").await.location(), "/");
}

/// Guards the Fetch Metadata check on form posts (docs/portal.md, "Safety";
/// `checked_form` in `portal/mod.rs`): `Sec-Fetch-Site: cross-site` is
/// refused even with the right cookie and CSRF token and no `Origin`, and
/// never reaches the sign-in; `same-origin` and `none` pass.
async fn a_cross_site_form_post_is_refused_by_sec_fetch_site(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Jun").await;
    let code = issue_code(&node, &survivor).await;
    let mut browser = Browser::new(&node);
    let csrf = browser.get("/").await.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("code", code.as_str()),
        ("pin", ""),
    ];
    let before = node.audit_events().await.len();

    let page = browser
        .post_with_headers("/sign-in", &fields, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.error_code(), "CSRF_TOKEN_INVALID");
    assert_eq!(
        node.audit_events().await.len(),
        before,
        "a cross-site post never reaches the sign-in"
    );

    // The same cookie and token from the portal's own page work.
    let page = browser
        .post_with_headers("/sign-in", &fields, &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(page.location(), "/pin", "{}", page.body);

    // `none` (the user's own action) passes too.
    let mut typed = Browser::new(&node);
    let csrf = typed.get("/").await.csrf();
    let page = typed
        .post_with_headers(
            "/sign-in",
            &[
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
                ("pin", ""),
            ],
            &[("sec-fetch-site", "none")],
        )
        .await;
    assert_eq!(page.location(), "/pin", "{}", page.body);
}

/// Guards "after `max_failed_sign_ins` failures in a row" (docs/portal.md, "Signing
/// in"; `credentials::sign_in` clears the count on success): failures on
/// both sides of a successful sign-in do not add up to a lock.
async fn only_failures_in_a_row_lock_the_code(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Kim").await;
    let code = issue_code(&node, &survivor).await;
    Browser::new(&node).first_sign_in(&code, "271828").await;

    let mut stranger = Browser::new(&node);
    for round in ["before", "after"] {
        for attempt in 1..MAX_FAILURES {
            let page = stranger.sign_in(&code, "000000").await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{round} {attempt}");
            assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "{round} {attempt}");
        }
        // The right PIN still works, and the count starts afresh.
        let page = Browser::new(&node).sign_in(&code, "271828").await;
        assert_eq!(page.location(), "/home", "{round}: {}", page.body);
    }
    assert_eq!(stored_lock(&node, &code[..4]).await, None);
    assert!(
        !node
            .audit_events()
            .await
            .iter()
            .any(|e| e.reason == "LOCKED_OUT"),
        "no lock from failures that were not in a row"
    );
}

/// Guards "locked for `lockout_minutes`" (docs/portal.md, "Signing in";
/// `credentials::sign_in`): the stored lock ends that long after the last
/// failure, and once it has passed the right code and PIN sign in again.
async fn the_lock_ends_after_lockout_minutes(backend: Backend) {
    const LOCKOUT_MINUTES: i64 = 7;
    let node = start_with_portal(backend, |portal| {
        portal.lockout_minutes = LOCKOUT_MINUTES as u64
    })
    .await;
    let survivor = node.register_full_survivor("Lea").await;
    let code = issue_code(&node, &survivor).await;
    let locator = &code[..4];
    Browser::new(&node).first_sign_in(&code, "161803").await;

    let mut stranger = Browser::new(&node);
    for _ in 1..MAX_FAILURES {
        let page = stranger.sign_in(&code, "000000").await;
        assert_eq!(page.error_code(), "SIGN_IN_REFUSED");
    }
    let started = now_ms();
    let page = stranger.sign_in(&code, "000000").await;
    let finished = now_ms();
    assert_eq!(page.error_code(), "CODE_LOCKED");
    let until = stored_lock(&node, locator)
        .await
        .expect("the code is locked");
    let lockout = LOCKOUT_MINUTES * 60_000;
    assert!(
        (started + lockout..=finished + lockout).contains(&until),
        "locked until {until}, expected {LOCKOUT_MINUTES} minutes after {started}..={finished}"
    );
    let page = Browser::new(&node).sign_in(&code, "161803").await;
    assert_eq!(page.error_code(), "CODE_LOCKED", "the right PIN waits too");

    // Time passes: the lock is now a second in the past.
    set_stored_lock(&node, locator, now_ms() - 1_000).await;
    let page = Browser::new(&node).sign_in(&code, "161803").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/home");
    assert_eq!(
        stored_lock(&node, locator).await,
        None,
        "signing in clears the ended lock"
    );
}

#[tokio::test]
async fn the_portal_serves_its_security_headers_and_no_outside_resources() {
    let node = start(Backend::Sqlite).await;
    let mut browser = Browser::new(&node);
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        header("content-security-policy"),
        agency_node::portal::CONTENT_SECURITY_POLICY
    );
    assert!(header("content-security-policy").contains("default-src 'none'"));
    assert!(!header("content-security-policy").contains("unsafe"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("cache-control"), "no-store");
    let cookie = header("set-cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    // No third-party resources, no script, nothing secret in a URL.
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));
    assert!(!page.body.contains("<script"));
    assert!(page.body.contains("method=\"post\" action=\"/sign-in\""));
    // Accessible structure: landmarks, labels, a skip link.
    for needle in [
        "<main",
        "<header",
        "<footer",
        "<label for=\"code\"",
        "<label for=\"pin\"",
        "skip-link",
    ] {
        assert!(page.body.contains(needle), "{needle} missing");
    }
    // The stylesheet is the portal's own.
    let css = browser.get("/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");

    // The quick exit ends the session and leaves for the neutral site.
    let exit = browser.get("/exit").await;
    assert_eq!(exit.status, StatusCode::SEE_OTHER);
    assert_eq!(exit.location(), "https://neutral.example/");
    assert!(
        exit.headers["clear-site-data"]
            .to_str()
            .unwrap()
            .contains("cookies")
    );
    assert!(browser.cookie.is_none(), "the session cookie is cleared");

    // Errors have their code and the same headers.
    let missing = browser.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "NOT_FOUND");
    assert!(missing.headers.contains_key("content-security-policy"));
    let huge = "x".repeat(64 * 1024);
    let page = browser.post("/sign-in", &[("code", huge.as_str())]).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(page.error_code(), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn the_portal_speaks_the_browsers_language_and_the_picked_one() {
    let node = start(Backend::Sqlite).await;
    let mut browser = Browser::new(&node);
    browser.language = Some("ar;q=0.9, en;q=0.5");
    let page = browser.get("/").await;
    assert!(
        page.body.contains("<html lang=\"ar\" dir=\"rtl\">"),
        "{}",
        &page.body[..200]
    );
    assert!(page.body.contains("تسجيل الدخول"));
    let page = browser.get("/?lang=es").await;
    assert!(page.body.contains("<html lang=\"es\" dir=\"ltr\">"));
    // The choice sticks for the session, whatever the browser says.
    let page = browser.get("/").await;
    assert!(page.body.contains("<html lang=\"es\""));
    let mut french = Browser::new(&node);
    french.language = Some("fr-CA,fr;q=0.9");
    assert!(french.get("/").await.body.contains("<html lang=\"fr\""));
    let mut unknown = Browser::new(&node);
    unknown.language = Some("de");
    assert!(unknown.get("/").await.body.contains("<html lang=\"en\""));
}

/// The survivor sees how long each part of the record is kept (and when a
/// part was erased), and downloads everything the node holds, with the
/// disclosures of the record; the download is audited, and no one signed
/// out gets it.
async fn a_survivor_sees_retention_dates_and_downloads_everything_held(backend: Backend) {
    let node = start(backend).await;
    let survivor = node.register_full_survivor("Dara").await;
    let code = issue_code(&node, &survivor).await;
    let mut stranger = Browser::new(&node);
    let refused = stranger.get("/my-record.json").await;
    assert_ne!(refused.status, StatusCode::OK);
    assert!(!refused.body.contains("Dara"));

    let mut browser = Browser::new(&node);
    browser.first_sign_in(&code, "246810").await;
    // A read by the owner, which the export lists as a disclosure.
    node.read_survivor(&node.caseworker(OWNER), "CASE_MANAGEMENT", &survivor)
        .await
        .data();
    // The contact details erased on request: the page says when.
    node.gql(
        Some(&node.token(OWNER, &[Role::DataProtectionOfficer])),
        Some("CASE_MANAGEMENT"),
        "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [CONTACT]) { erased } }",
        serde_json::json!({ "id": survivor }),
    )
    .await
    .data();

    let home = browser.get("/home").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("id=\"retention\""), "{}", home.body);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert!(
        home.body.contains(&format!("erased on {today}")),
        "{}",
        home.body
    );
    let health_until =
        (time::OffsetDateTime::now_utc().date() + time::Duration::days(730)).to_string();
    assert!(
        home.body.contains(&format!("until {health_until}")),
        "{}",
        home.body
    );

    let download = browser.get("/my-record.json").await;
    assert_eq!(download.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&download.body).unwrap();
    assert_eq!(json["record"]["identity"]["given_name"], "Dara");
    assert!(json["record"]["contact"].is_null());
    assert_eq!(json["record"]["erased"][0]["category"], "CONTACT");
    assert_eq!(json["record"]["erased"][0]["rule"], "REQUEST");
    let retention = json["retention"].as_array().unwrap();
    assert_eq!(retention.len(), 6);
    assert!(
        retention
            .iter()
            .any(|r| r["part"] == "HEALTH" && r["rule"] == "health-2y-after-last-activity")
    );
    let disclosures = json["disclosures"].as_array().unwrap();
    assert!(
        disclosures.iter().any(|d| d["agency"] == OWNER),
        "{disclosures:?}"
    );
    let exported = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.reason == "SURVIVOR_EXPORT")
        .count();
    assert_eq!(exported, 1, "the download is audited");
}

/// Over TLS too (the portal's `[portal.tls]`, its own accept loop), the
/// limit counts each client apart: two clients forwarded by the trusted
/// proxy are each allowed their one attempt, and the first is refused its
/// second. Were the connection's peer not handed to the handler on this
/// path, every client would share one count and the second would be
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_limit_of_sign_in_attempts_counts_each_client_apart() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = exchange_service::tls::DevPki::load_or_create(pki_dir.path()).unwrap();
    let identity = pki
        .identity("portal", &["localhost".into()], true, false)
        .unwrap();
    let node = start_with_portal(Backend::Sqlite, |portal| {
        portal.sign_ins_per_client = 1;
        portal.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        portal.tls = Some(agency_node::tls::PortalTlsConfig {
            cert_file: identity.cert_file.clone(),
            key_file: identity.key_file.clone(),
        });
    })
    .await;
    // The harness names the portal as plain HTTP; it serves TLS here.
    let port = node
        .portal
        .as_deref()
        .and_then(|url| url.rsplit(':').next())
        .expect("the portal's port")
        .to_owned();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.ca_file()).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let mut first = Browser::over(base.clone(), client.clone());
    first.forwarded_for = Some("198.51.100.1");
    let mut second = Browser::over(base, client);
    second.forwarded_for = Some("198.51.100.2");
    let page = first.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
    assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "{}", page.body);
    let page = second.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
    assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "{}", page.body);
    let page = first.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
    assert_eq!(page.error_code(), "TOO_MANY_ATTEMPTS", "{}", page.body);
}

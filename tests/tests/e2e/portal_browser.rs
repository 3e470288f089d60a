//! The survivor portal in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`, installed by `.ci/run`) driven over
//! WebDriver. A survivor signs in, grants consent, a caseworker's federated
//! query shows the category, the survivor withdraws it, the same query
//! withholds it, and the access history lists those reads; the survivor
//! asks for an erasure, sees the deadline and then the officer's answer,
//! and reads everything held as a page. Screenshots of
//! the portal in every language are written to `target/portal-screenshots`
//! (or `$PORTAL_SCREENSHOT_DIR`).
//!
//! Without Chromium and ChromeDriver this test fails, saying how to install
//! them: it never skips.

use std::path::PathBuf;
use std::time::Duration;

use exchange_schema::Role;
use exchange_test_kit::browser::{start_browser, start_driver, wait_for};
use exchange_test_kit::{LEGAL, SHELTER, TestFederation};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

fn screenshot_dir() -> PathBuf {
    std::env::var_os("PORTAL_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/portal-screenshots")
        })
}

async fn fill(browser: &Client, css: &str, text: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .expect("typing");
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("clicking");
}

/// Waits (at most 10 s) until the browser shows `expected`.
async fn arrive(browser: &Client, expected: &str) {
    for _ in 0..100 {
        if browser.current_url().await.expect("url").path() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the browser did not reach {expected}: {}",
        browser.source().await.unwrap_or_default()
    );
}

const LEGAL_QUERY: &str = "query($id: ID!) { survivor(id: $id) { id legal { immigrationStatus } \
    withheld { category reason } } }";

async fn caseworker_reads(federation: &TestFederation, survivor: &str) -> Value {
    federation
        .gateway_gql(
            &federation.caseworker(LEGAL),
            "LEGAL_ASSISTANCE",
            LEGAL_QUERY,
            json!({ "id": survivor }),
        )
        .await
        .data()["survivor"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_grants_and_withdraws_consent_in_a_real_browser() {
    let federation = TestFederation::start().await;
    let survivor = federation.register_survivor(SHELTER, "Ioana").await;
    let issued = federation
        .gateway_gql(
            &federation.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": survivor }),
        )
        .await;
    let code = issued.data()["issueConsentCode"]["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    let portal = federation.node(SHELTER).portal.clone();

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = start_browser(&driver, profile.path()).await;

    // Sign in with the code; choose a PIN.
    browser
        .goto(&format!("{portal}/?lang=en"))
        .await
        .expect("portal");

    // Keyboard first: Tab reaches the skip link, then the quick exit.
    let tab = fantoccini::key::Key::Tab.to_string();
    let body = browser.find(Locator::Css("body")).await.expect("body");
    body.send_keys(&tab).await.expect("tab");
    let focused = browser.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("class").await.expect("class").as_deref(),
        Some("skip-link")
    );
    focused.send_keys(&tab).await.expect("tab");
    let focused = browser.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("class").await.expect("class").as_deref(),
        Some("quick-exit")
    );
    fill(&browser, "#code", &code).await;
    click(
        &browser,
        "form[method=post][action='/sign-in'] button[type=submit]",
    )
    .await;
    arrive(&browser, "/pin").await;
    wait_for(&browser, "form[method=post][action='/pin'] #pin_again").await;
    fill(&browser, "form[method=post][action='/pin'] #pin", "482916").await;
    fill(&browser, "#pin_again", "482916").await;
    click(
        &browser,
        "form[method=post][action='/pin'] button[type=submit]",
    )
    .await;
    arrive(&browser, "/home").await;
    wait_for(&browser, "#no-grants").await;

    // Before any grant the legal-aid caseworker sees no legal status.
    assert!(caseworker_reads(&federation, &survivor).await["legal"].is_null());

    // Grant: agency, category, purpose; the date is pre-filled.
    click(&browser, "#give-permission").await;
    wait_for(&browser, "#agency").await;
    arrive(&browser, "/grant").await;
    browser
        .find(Locator::Id("agency"))
        .await
        .expect("agency select")
        .select_by_value(LEGAL)
        .await
        .expect("choosing the agency");
    click(&browser, "#category-LEGAL").await;
    click(&browser, "#purpose-LEGAL_ASSISTANCE").await;
    click(
        &browser,
        "form[method=post][action='/grant'] button[type=submit]",
    )
    .await;
    // A confirmation step before anything is written.
    wait_for(&browser, "form[method=post][action='/grant/confirm']").await;
    click(&browser, "#confirm").await;
    let done = wait_for(&browser, "#done").await;
    assert!(!done.text().await.expect("text").is_empty());

    // The caseworker's federated query now shows the category.
    let shown = caseworker_reads(&federation, &survivor).await;
    assert_eq!(shown["legal"]["immigrationStatus"], "pending", "{shown}");

    // Withdraw it.
    click(&browser, "#home").await;
    let withdraw = "#grants form[method=post][action='/revoke'] button[type=submit]";
    wait_for(&browser, withdraw).await;
    click(&browser, withdraw).await;
    wait_for(&browser, "form[method=post][action='/revoke/confirm']").await;
    click(&browser, "#confirm").await;
    wait_for(&browser, "#done").await;

    // The same query now withholds it.
    let withheld = caseworker_reads(&federation, &survivor).await;
    assert!(withheld["legal"].is_null(), "{withheld}");
    assert!(
        withheld["withheld"]
            .as_array()
            .expect("withheld list")
            .iter()
            .any(|w| w["category"] == "LEGAL" && w["reason"] == "GRANT_REVOKED"),
        "{withheld}"
    );

    // The access history lists those reads by the legal-aid agency.
    click(&browser, "#home").await;
    wait_for(&browser, "#history").await;
    let rows = browser
        .find_all(Locator::Css(&format!(
            "#history tr.access[data-agency='{LEGAL}']"
        )))
        .await
        .expect("history rows");
    assert!(
        rows.len() >= 3,
        "three reads by {LEGAL} (before, during and after the grant), found {}",
        rows.len()
    );
    let grant_rows = browser
        .find_all(Locator::Css("#grants tr[data-status='REVOKED']"))
        .await
        .expect("grant rows");
    assert_eq!(
        grant_rows.len(),
        1,
        "the withdrawn grant is listed as withdrawn"
    );

    // The survivor's rights: ask to erase the contact details, see the
    // date the agency answers by, and the officer's answer (through the
    // gateway) on the page; read everything held as a page.
    wait_for(&browser, "#ask-erasure").await;
    assert_eq!(
        browser
            .find_all(Locator::Css("#retention tbody tr"))
            .await
            .expect("retention rows")
            .len(),
        6,
        "a retention row for every part of the record"
    );
    click(&browser, "#erase-CONTACT").await;
    fill(
        &browser,
        "#erasure-details",
        "Please erase my old phone number",
    )
    .await;
    click(&browser, "#ask-erasure-button").await;
    wait_for(&browser, "form[method=post][action='/requests/confirm']").await;
    click(&browser, "#confirm").await;
    let sent = wait_for(&browser, "#done").await;
    assert!(
        sent.text()
            .await
            .expect("text")
            .contains("We will answer by"),
        "the survivor is told the deadline"
    );
    click(&browser, "#home").await;
    wait_for(&browser, "#requests tr[data-status='OPEN']").await;
    let officer = federation.token(SHELTER, &[Role::DataProtectionOfficer]);
    let queue = federation
        .gateway_gql(
            &officer,
            "CASE_MANAGEMENT",
            "{ rightsRequests(status: OPEN) { id kind parts details } }",
            json!({}),
        )
        .await;
    let request = queue.data()["rightsRequests"][0].clone();
    assert_eq!(
        request["details"], "Please erase my old phone number",
        "{request}"
    );
    let answered = federation
        .gateway_gql(
            &officer,
            "CASE_MANAGEMENT",
            "mutation($id: ID!) { answerRightsRequest(id: $id, outcome: DONE, \
             answer: \"Your old number is erased.\") { status } }",
            json!({ "id": request["id"] }),
        )
        .await;
    assert_eq!(answered.data()["answerRightsRequest"]["status"], "DONE");
    browser
        .goto(&format!("{portal}/home"))
        .await
        .expect("overview");
    let done_row = wait_for(&browser, "#requests tr[data-status='DONE']").await;
    assert!(
        done_row
            .text()
            .await
            .expect("text")
            .contains("Your old number is erased."),
        "the survivor sees the answer"
    );
    click(&browser, "#read-everything").await;
    arrive(&browser, "/my-record").await;
    let held = wait_for(&browser, "#my-record").await;
    assert!(held.text().await.expect("text").contains("Ioana"));

    // Screenshots of the signed-in overview in every language.
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for (lang, dir_attr) in [("en", "ltr"), ("es", "ltr"), ("fr", "ltr"), ("ar", "rtl")] {
        browser
            .goto(&format!("{portal}/home?lang={lang}"))
            .await
            .expect("overview");
        let html = browser.find(Locator::Css("html")).await.expect("html");
        assert_eq!(
            html.attr("lang").await.expect("lang").as_deref(),
            Some(lang)
        );
        assert_eq!(
            html.attr("dir").await.expect("dir").as_deref(),
            Some(dir_attr)
        );
        let png = browser.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG for {lang}");
        std::fs::write(dir.join(format!("portal-home-{lang}.png")), png).expect("writing");
        browser
            .goto(&format!("{portal}/my-record?lang={lang}"))
            .await
            .expect("everything held");
        wait_for(&browser, "#my-record").await;
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("portal-my-record-{lang}.png")), png).expect("writing");
    }

    // The quick exit ends the session: back in the portal, sign-in again.
    click(&browser, ".quick-exit").await;
    browser
        .goto(&format!("{portal}/home"))
        .await
        .expect("portal");
    arrive(&browser, "/").await;
    for lang in ["en", "es", "fr", "ar"] {
        browser
            .goto(&format!("{portal}/?lang={lang}"))
            .await
            .expect("sign-in page");
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("portal-sign-in-{lang}.png")), png).expect("writing");
    }
    browser.close().await.expect("closing the browser");
}

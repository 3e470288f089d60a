//! The console in a real browser: headless Chromium (Debian's, over
//! WebDriver) signing in through oidc-provider's own login page, then the
//! day's work by clicking: an incoming referral accepted, a survivor read
//! with a withheld category and its reason in words, a consent recorded by
//! the owner in a second window making the category appear, an onward
//! referral, and sign-out at the provider. Keyboard alone answers a
//! referral. axe-core (from npm) checks every page the test visits, in
//! English and on the main pages in every language, for serious or
//! critical violations; screenshots of every language are written to
//! `target/console-screenshots` (or `$CONSOLE_SCREENSHOT_DIR`), with
//! `axe-summary.json`, the accessibility figures.

use std::path::PathBuf;

use exchange_console::config::SessionConfig;
use exchange_test_kit::browser::{start_browser, start_driver, wait_for};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::oidc_provider::installed;
use crate::{Harness, IdentityProvider};

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
        })
}

/// The accessibility check of every page: axe-core's violations, by page.
struct AxeRun {
    source: String,
    pages: Vec<(String, Vec<Value>)>,
}

impl AxeRun {
    async fn new() -> Self {
        let dir = installed().await;
        let source = std::fs::read_to_string(dir.join("node_modules/axe-core/axe.min.js"))
            .expect("axe-core from npm");
        Self {
            source,
            pages: Vec::new(),
        }
    }

    /// Runs axe-core on the page `browser` shows, recorded as `name`.
    async fn check(&mut self, browser: &Client, name: &str) {
        let violations = self.violations(browser, name).await;
        self.pages.push((name.to_owned(), violations));
    }

    /// axe-core's violations on the page `browser` shows.
    async fn violations(&self, browser: &Client, name: &str) -> Vec<Value> {
        let script = format!(
            "{}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{ resultTypes: ['violations'] }})\
             .then(r => done(r.violations.map(v => ({{ id: v.id, impact: v.impact, help: v.help, \
             nodes: v.nodes.map(n => n.target.join(' ')) }}))))\
             .catch(e => done([{{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }}]));",
            self.source
        );
        let result = browser
            .execute_async(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("axe-core on {name}: {e}"));
        result.as_array().cloned().unwrap_or_default()
    }

    /// Writes the figures and fails on any serious or critical violation.
    fn finish(&self) {
        let mut by_impact = std::collections::BTreeMap::<String, usize>::new();
        let mut blocking = Vec::new();
        for (page, violations) in &self.pages {
            for v in violations {
                let impact = v["impact"].as_str().unwrap_or("unknown").to_owned();
                *by_impact.entry(impact.clone()).or_default() += 1;
                if impact == "serious" || impact == "critical" {
                    blocking.push(format!(
                        "{page}: {} ({impact}): {} at {}",
                        v["id"], v["help"], v["nodes"]
                    ));
                }
            }
        }
        let summary = json!({
            "pages_checked": self.pages.len(),
            "violations_by_impact": by_impact,
            "pages": self.pages.iter().map(|(p, v)| json!({ "page": p, "violations": v })).collect::<Vec<_>>(),
        });
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(
            dir.join("axe-summary.json"),
            serde_json::to_string_pretty(&summary).expect("json"),
        )
        .expect("axe summary");
        println!(
            "axe-core: {} pages checked, violations by impact: {:?}",
            self.pages.len(),
            by_impact
        );
        assert!(
            blocking.is_empty(),
            "serious or critical accessibility violations:\n{}",
            blocking.join("\n")
        );
    }
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
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

async fn text_of(browser: &Client) -> String {
    wait_for(browser, "main").await.text().await.expect("text")
}

/// Waits up to 10 s for the page's main text to contain `expected`: after
/// a click the old page may still be there, or going, so a single read can
/// see the old text or a node that no longer belongs to the document.
async fn wait_for_text(browser: &Client, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(main) = browser.find(Locator::Css("main")).await
            && let Ok(text) = main.text().await
        {
            if text.contains(expected) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never showed {expected:?}; it showed: {last}");
}

/// Signs in from the console's start page through oidc-provider's login
/// page, typing `user`; returns on the console's inbox.
async fn sign_in(browser: &Client, console: &str, agency_name: &str, user: &str) {
    browser.goto(&format!("{console}/")).await.expect("console");
    let button = browser
        .find(Locator::XPath(&format!(
            "//button[contains(., '{agency_name}')]"
        )))
        .await
        .unwrap_or_else(|e| panic!("sign-in button for {agency_name}: {e}"));
    button.click().await.expect("sign in");
    wait_for(browser, "input[name=login]").await;
    fill(browser, "input[name=login]", user).await;
    fill(browser, "input[name=password]", "any password").await;
    click(browser, "button[type=submit]").await;
    // Back through the provider's redirects to the console's inbox.
    let inbox = format!("{console}/referrals");
    let mut url = String::new();
    for _ in 0..100 {
        url = browser.current_url().await.expect("url").to_string();
        if url.starts_with(&inbox) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(url.starts_with(&inbox), "landed on {url}");
    wait_for(browser, "main").await;
}

async fn sign_out(browser: &Client, console: &str) {
    click(browser, "form.sign-out button").await;
    wait_for(browser, "button[name=logout][value=yes]").await;
    click(browser, "button[name=logout][value=yes]").await;
    wait_for(browser, "form[action='/sign-in']").await;
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.as_str(), format!("{console}/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caseworker_handles_a_referral_in_chromium_by_mouse_and_keyboard_on_pages_axe_finds_accessible()
 {
    let session = SessionConfig {
        notice_seconds: 1,
        ..SessionConfig::default()
    };
    let h = Harness::start_with(IdentityProvider::OidcProvider, session).await;
    let fed = &h.federation;
    let survivor = fed.register_survivor("shelter-north", "Grace").await;
    let referral = fed.refer(&survivor, "clinic-east").await;
    let second = fed.register_survivor("shelter-north", "Hana").await;
    let keyboard_referral = fed.refer(&second, "clinic-east").await;
    // The next agency may be referred to (the owner's consent, recorded
    // directly: the console's own consent form is exercised below).
    fed.grant(&survivor, "legal-aid-city", &["IDENTITY"], &["REFERRAL"])
        .await;
    // A request the survivor made in the portal, for the supervisor's queue.
    agency_node::rights::ask(
        &fed.node("shelter-north").state,
        second.split_once(':').expect("global ID").1,
        agency_node::rights::RequestKind::Correction,
        &[agency_node::vault::Part::Identity],
        Some("My name is spelled Hanna"),
    )
    .await
    .expect("asked");

    let mut axe = AxeRun::new().await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile");
    let browser = start_browser(&driver, profile.path()).await;
    let console = h.console.clone();

    // The check is live: axe-core finds the missing alternative text of a
    // page made to lack it.
    browser
        .goto("data:text/html,<!doctype html><html lang=en><title>t</title><main><img src=x.png></main></html>")
        .await
        .expect("canary page");
    let canary = axe.violations(&browser, "canary").await;
    assert!(
        canary.iter().any(|v| v["id"] == "image-alt"),
        "axe-core must report the image without alt text: {canary:?}"
    );

    browser
        .goto(&format!("{console}/language?lang=en&back=/"))
        .await
        .expect("start");
    wait_for(&browser, "form[action='/sign-in']").await;
    axe.check(&browser, "sign-in").await;
    sign_in(&browser, &console, "East Clinic", "caseworker@clinic-east").await;
    wait_for_text(&browser, "You are signed in.").await;
    axe.check(&browser, "referrals").await;

    // A referral sent while the inbox is open is announced on the page.
    let survivor_live = fed.register_survivor("shelter-north", "Live").await;
    let live = fed.refer(&survivor_live, "clinic-east").await;
    let announced = wait_for(
        &browser,
        &format!("#live-notices a[href='/referrals/{live}']"),
    )
    .await;
    assert_eq!(
        announced.text().await.expect("text"),
        "A new referral has arrived. Open it."
    );

    // The incoming referral, accepted by mouse.
    click(&browser, &format!("a[href='/referrals/{referral}']")).await;
    wait_for(&browser, "form.answer").await;
    axe.check(&browser, "referral").await;
    click(&browser, "form.answer input[value=accept] ~ button").await;
    wait_for_text(&browser, "Your answer was recorded.").await;

    // The survivor, with health withheld and why.
    click(
        &browser,
        &format!("a[href='/survivors/{survivor}?referral={referral}']"),
    )
    .await;
    wait_for(&browser, "ul.withheld").await;
    let page = text_of(&browser).await;
    assert!(page.contains("Grace"), "{page}");
    assert!(
        page.contains("Health: The survivor has not consented to share this with your agency."),
        "{page}"
    );
    axe.check(&browser, "survivor, as a partner").await;
    // The break-glass form (the link is for supervisors; the page is the
    // same for anyone who opens it).
    browser
        .goto(&format!("{console}/survivors/{survivor}/break-glass"))
        .await
        .expect("break-glass form");
    wait_for(&browser, "#justification").await;
    axe.check(&browser, "break-glass form").await;
    browser.back().await.expect("back");
    wait_for(&browser, "ul.withheld").await;

    // The owner's supervisor records the consent in a second window.
    let owner_profile = tempfile::tempdir().expect("profile");
    let owner = start_browser(&driver, owner_profile.path()).await;
    sign_in(
        &owner,
        &console,
        "North Star Shelter",
        "supervisor@shelter-north",
    )
    .await;
    click(&owner, "a[href='/review']").await;
    wait_for_text(&owner, "Emergency access to our records").await;
    axe.check(&owner, "emergency access review").await;
    click(&owner, "a[href='/requests']").await;
    wait_for_text(&owner, "My name is spelled Hanna").await;
    axe.check(&owner, "survivors' requests").await;
    click(&owner, "a[href='/survivors']").await;
    wait_for(&owner, &format!("a[href='/survivors/{survivor}']")).await;
    axe.check(&owner, "our survivors").await;
    owner
        .goto(&format!("{console}/survivors/new"))
        .await
        .expect("intake");
    wait_for(&owner, "form.intake").await;
    axe.check(&owner, "intake form").await;
    owner
        .goto(&format!("{console}/survivors"))
        .await
        .expect("list");
    wait_for(&owner, &format!("a[href='/survivors/{survivor}']")).await;
    click(&owner, &format!("a[href='/survivors/{survivor}']")).await;
    wait_for(&owner, "#grantee").await;
    axe.check(&owner, "survivor, as the owner").await;
    owner
        .find(Locator::Css("#grantee option[value=clinic-east]"))
        .await
        .expect("clinic option")
        .click()
        .await
        .expect("choose clinic");
    click(&owner, "#category-HEALTH").await;
    click(&owner, "#purpose-REFERRAL").await;
    fill(&owner, "#witness", "Second caseworker").await;
    click(&owner, "form[action$='/consents'] button[type=submit]").await;
    wait_for_text(&owner, "The consent was recorded.").await;
    // A consent code slip, in French, with its QR code.
    owner
        .find(Locator::Css("#slip-lang option[value=fr]"))
        .await
        .expect("French")
        .click()
        .await
        .expect("choose French");
    click(&owner, "form[action$='/consent-code'] button[type=submit]").await;
    wait_for(&owner, ".slip svg").await;
    axe.check(&owner, "consent code slip").await;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(
        dir.join("console-consent-slip-fr.png"),
        owner.screenshot().await.expect("screenshot"),
    )
    .expect("write");
    owner.close().await.expect("close owner window");

    // The category appears for the clinic.
    browser.refresh().await.expect("reload");
    let page = wait_for_text(&browser, "invented note").await;
    assert!(
        !page.contains("Health: The survivor has not consented"),
        "{page}"
    );

    // Refer onward to legal aid.
    browser
        .find(Locator::Css("#to-agency option[value=legal-aid-city]"))
        .await
        .expect("legal aid option")
        .click()
        .await
        .expect("choose");
    browser
        .find(Locator::Css("#service option[value=LEGAL_AID]"))
        .await
        .expect("service")
        .click()
        .await
        .expect("choose");
    fill(&browser, "#notes", "Needs advice on status").await;
    click(&browser, "form[action$='/referrals'] button[type=submit]").await;
    wait_for_text(&browser, "The referral was sent.").await;

    // Keyboard only: from the inbox, Tab to the other referral, Enter, Tab
    // to Accept, Enter.
    browser
        .goto(&format!("{console}/referrals"))
        .await
        .expect("inbox");
    let tab = fantoccini::key::Key::Tab.to_string();
    let enter = fantoccini::key::Key::Enter.to_string();
    let target = format!("/referrals/{keyboard_referral}");
    let body = browser.find(Locator::Css("body")).await.expect("body");
    body.send_keys(&tab).await.expect("tab");
    let mut reached = false;
    for _ in 0..40 {
        let focused = browser.active_element().await.expect("focus");
        if focused.attr("href").await.expect("href").as_deref() == Some(target.as_str()) {
            focused.send_keys(&enter).await.expect("enter");
            reached = true;
            break;
        }
        focused.send_keys(&tab).await.expect("tab");
    }
    assert!(reached, "Tab never reached the referral's link");
    wait_for(&browser, "form.answer").await;
    let body = browser.find(Locator::Css("body")).await.expect("body");
    body.send_keys(&tab).await.expect("tab");
    let mut accepted = false;
    for _ in 0..40 {
        let focused = browser.active_element().await.expect("focus");
        if focused.text().await.expect("text") == "Accept" {
            focused.send_keys(&enter).await.expect("enter");
            accepted = true;
            break;
        }
        focused.send_keys(&tab).await.expect("tab");
    }
    assert!(accepted, "Tab never reached the Accept button");
    wait_for_text(&browser, "Mark completed").await;

    // The agency's follow-ups and the directory.
    click(&browser, "a[href='/follow-ups']").await;
    wait_for_text(&browser, "Open follow-ups assigned to your agency").await;
    axe.check(&browser, "follow-ups due").await;
    click(&browser, "a[href='/agencies']").await;
    wait_for_text(&browser, "Agencies of the federation").await;
    axe.check(&browser, "agencies").await;

    // An error page, and every language with its screenshot.
    browser
        .goto(&format!("{console}/referrals?direction=SIDEWAYS"))
        .await
        .expect("bad filter");
    wait_for(&browser, ".problem").await;
    axe.check(&browser, "error page").await;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for lang in ["en", "es", "fr", "ar"] {
        for (name, path) in [
            ("referrals", "/referrals?direction=ALL".to_owned()),
            (
                "survivor",
                format!("/survivors/{survivor}?referral={referral}"),
            ),
        ] {
            let back: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("lang", lang)
                .append_pair("back", &path)
                .finish();
            browser
                .goto(&format!("{console}/language?{back}"))
                .await
                .expect("language");
            let html = wait_for(&browser, "html").await;
            assert_eq!(
                html.attr("lang").await.expect("lang").as_deref(),
                Some(lang)
            );
            if lang == "ar" {
                assert_eq!(html.attr("dir").await.expect("dir").as_deref(), Some("rtl"));
            }
            axe.check(&browser, &format!("{name} ({lang})")).await;
            let png = browser.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("console-{name}-{lang}.png")), png).expect("write");
        }
    }
    browser
        .goto(&format!("{console}/language?lang=en&back=/referrals"))
        .await
        .expect("english");
    wait_for(&browser, "main").await;

    sign_out(&browser, &console).await;
    axe.check(&browser, "sign-in, after sign-out").await;
    browser.close().await.expect("close");
    axe.finish();
}

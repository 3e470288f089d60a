//! GraphiQL in a real browser with no network beyond loopback: headless
//! Chromium (as in [`super::portal_browser`]) whose every request to a host
//! other than loopback goes to a dead proxy and whose host names do not
//! resolve. The gateway's GraphiQL must render from the binary alone, load
//! nothing from another origin, show the schema in its docs (through
//! introspection) and run a query with the token and purpose typed into
//! its Headers pane, all under its Content-Security-Policy.
//!
//! Without Chromium and ChromeDriver this test fails, saying how to install
//! them: it never skips.

use std::time::Duration;

use exchange_test_kit::{Options, SHELTER, TestFederation};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use exchange_test_kit::browser::{start_browser_with, start_driver, wait_for};

/// Chromium switches that leave it loopback only. Loopback bypasses a
/// proxy by default, so the gateway is reached; anything else goes to a
/// proxy on the discard port, where nothing listens, and no name resolves.
const LOOPBACK_ONLY: [&str; 7] = [
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--no-pings",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
];

async fn run_script(browser: &Client, script: &str) -> Value {
    browser
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("running {script}: {e}"))
}

/// Waits (at most 15 s) until the text of `css` contains `expected`.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(expected) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {expected:?}; it showed {last:?}");
}

/// Clicks `css` and types `text` where the focus lands, as a user does.
async fn type_into(browser: &Client, css: &str, text: &str) {
    wait_for(browser, css)
        .await
        .click()
        .await
        .expect("clicking");
    browser
        .active_element()
        .await
        .expect("a focused element")
        .send_keys(text)
        .await
        .expect("typing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_from_the_gateway_binary_works_with_no_network() {
    // GraphiQL's introspection query nests 15 deep, deeper than the
    // gateway's default limit (12) until the limits accept the standard
    // introspection query: raised here for that reason only.
    let federation = TestFederation::start_with(Options {
        gateway_max_depth: Some(16),
        ..Options::default()
    })
    .await;
    let survivor = federation.register_survivor(SHELTER, "Ioana").await;
    let token = federation.caseworker(SHELTER);
    let origin = federation.gateway_base.clone();

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = start_browser_with(&driver, profile.path(), &LOOPBACK_ONLY).await;

    // The network really is cut: another host cannot be reached.
    // `no-cors`: a reachable host answers (opaquely); only a failed
    // connection rejects.
    let outside = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('http://example.org/', { mode: 'no-cors' })
               .then(() => done('reached'), () => done('unreachable'));",
            vec![],
        )
        .await
        .expect("a fetch from the blank page");
    assert_eq!(outside, json!("unreachable"));

    browser
        .goto(&format!("{origin}/graphql"))
        .await
        .expect("GraphiQL");
    // It renders: the query editor is there.
    wait_for(&browser, ".graphiql-query-editor .CodeMirror").await;
    // From here on, any style or script the policy blocks is recorded.
    run_script(
        &browser,
        "window.blockedByPolicy = [];
         document.addEventListener('securitypolicyviolation',
           (e) => window.blockedByPolicy.push(e.violatedDirective + ' ' + e.blockedURI));
         return null;",
    )
    .await;

    // The Headers pane (open by default) takes the token and the purpose.
    wait_for(&browser, "button[data-name='headers']")
        .await
        .click()
        .await
        .expect("the Headers tab");
    let headers = format!(
        "{{\"Authorization\": \"Bearer {token}\", \"x-exchange-purpose\": \"CASE_MANAGEMENT\"}}"
    );
    type_into(
        &browser,
        ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror",
        &headers,
    )
    .await;

    // Then the schema, fetched again with those headers (the gateway answers
    // introspection to authenticated callers only), shows in the docs.
    wait_for(&browser, "button[aria-label='Re-fetch GraphQL schema']")
        .await
        .click()
        .await
        .expect("fetching the schema again");
    wait_for(&browser, "button[aria-label='Show Documentation Explorer']")
        .await
        .click()
        .await
        .expect("opening the docs");
    wait_for_text(&browser, ".graphiql-doc-explorer", "Root Types").await;
    let root_type = wait_for(
        &browser,
        ".graphiql-doc-explorer-content a.graphiql-doc-explorer-type-name",
    )
    .await;
    assert_eq!(root_type.text().await.expect("text"), "Query");
    root_type.click().await.expect("opening Query");
    wait_for_text(&browser, ".graphiql-doc-explorer-content", "survivor").await;

    // Replace the note in the query editor with a query, and run it.
    let select_all = format!("{}a", fantoccini::key::Key::Control);
    type_into(&browser, ".graphiql-query-editor .CodeMirror", &select_all).await;
    let query = format!("{{ survivor(id: \"{survivor}\") {{ identity {{ givenName }} }} }}");
    browser
        .active_element()
        .await
        .expect("the query editor")
        .send_keys(&format!("{}{query}", fantoccini::key::Key::Delete))
        .await
        .expect("typing the query");
    wait_for(&browser, ".graphiql-execute-button")
        .await
        .click()
        .await
        .expect("running the query");
    let shown = wait_for_text(&browser, ".graphiql-response", "Ioana").await;
    assert!(shown.contains("givenName"), "{shown}");

    // Everything the page loaded came from the gateway itself.
    let loaded = run_script(
        &browser,
        "return performance.getEntriesByType('resource').map((e) => e.name)
           .concat([location.href]);",
    )
    .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).expect("a list of URLs");
    assert!(
        loaded.iter().any(|u| u.ends_with("graphiql.min.js")),
        "{loaded:?}"
    );
    let elsewhere: Vec<&String> = loaded
        .iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")))
        .collect();
    assert!(elsewhere.is_empty(), "loaded from elsewhere: {elsewhere:?}");

    // A dialog adds its own styles: the nonce lets them through.
    wait_for(&browser, "button[aria-label='Open settings dialog']")
        .await
        .click()
        .await
        .expect("opening the settings");
    wait_for(&browser, ".graphiql-dialog").await;
    let blocked = run_script(&browser, "return window.blockedByPolicy;").await;
    assert_eq!(blocked, json!([]), "the policy blocked part of GraphiQL");
    browser.close().await.expect("closing the browser");
}

//! The console against a real, certified OpenID provider: panva's
//! `oidc-provider` from npm (pinned by `console/tests/js/package-lock.json`,
//! installed once into `${XDG_CACHE_HOME:-~/.cache}/exchange/` by the first
//! test that needs it), one provider per agency. A caseworker signs in
//! through its login form, works, and signs out through its end-session
//! confirmation; a grant revoked at the provider ends the console session at
//! the next request. Without `node` and `npm` these tests fail, saying so:
//! they never skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use exchange_console::config::SessionConfig;
use exchange_test_kit::federation::{AUDIENCE, TestFederation};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::OnceCell;

use crate::{Browser, CLIENT_ID, Harness, IdentityProvider, Page, users};

static INSTALLED: OnceCell<PathBuf> = OnceCell::const_new();

/// The directory holding the tests' npm packages (oidc-provider, axe-core)
/// in `node_modules`, installed once (`npm ci` of the pinned lock file) per
/// version of the lock file.
pub async fn installed() -> PathBuf {
    INSTALLED
        .get_or_init(|| async {
            let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
            let lock = std::fs::read(source.join("package-lock.json")).expect("lock file");
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &lock);
            let tag: String = digest.as_ref()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME");
            let dir = cache.join("exchange").join(format!("console-js-{tag}"));
            if !dir.join(".installed").exists() {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("cache dir");
                for file in ["package.json", "package-lock.json"] {
                    std::fs::copy(source.join(file), dir.join(file)).expect("copy");
                }
                let status = tokio::process::Command::new("npm")
                    .args([
                        "ci",
                        "--ignore-scripts",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                    ])
                    .current_dir(&dir)
                    .status()
                    .await
                    .expect(
                        "the oidc-provider tests need node and npm \
                         (`apt-get install nodejs npm`); they install oidc-provider from npm",
                    );
                assert!(status.success(), "npm ci of oidc-provider failed");
                std::fs::write(dir.join(".installed"), b"").expect("marker");
            }
            // ES modules resolve packages from the script's own directory.
            std::fs::copy(source.join("provider.mjs"), dir.join("provider.mjs"))
                .expect("provider script");
            dir
        })
        .await
        .clone()
}

/// Starts oidc-provider on `port` for every agency of `federation`, with
/// the console at `console` as its client; returns once it listens.
pub async fn spawn(federation: &TestFederation, port: u16, console: &str) -> tokio::process::Child {
    let dir = installed().await;
    let config = json!({
        "port": port,
        "audience": AUDIENCE,
        "client_id": CLIENT_ID,
        "console": console,
        "access_token_ttl": 600,
        "agencies": federation.dev.providers.iter().map(|p| json!({
            "id": p.agency().as_str(),
            "key_file": p.private_key_path(),
            "kid": p.kid(),
        })).collect::<Vec<_>>(),
        "users": users().iter().map(|u| json!({
            "agency": u.agency.as_str(),
            "sub": u.user,
            "name": u.name,
            "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let config_path = federation.dir.path().join("oidc-provider.json");
    std::fs::write(&config_path, config.to_string()).expect("provider config");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("provider.mjs"))
        .arg(&config_path)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the oidc-provider tests need node (`apt-get install nodejs`)");
    // Its start-up warnings about development features are expected; any
    // other line on stderr is passed on to the test's output.
    let stderr = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.starts_with("oidc-provider WARNING") {
                eprintln!("oidc-provider: {line}");
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("oidc-provider ready") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "oidc-provider did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The action and fields of the first form on a page.
fn form_of(page: &Page) -> (String, Vec<(String, String)>) {
    let body = &page.body;
    let form = body.find("<form").expect("a form on the provider's page");
    let action = attribute(&body[form..], "action").expect("form action");
    let mut fields = Vec::new();
    let mut rest = &body[form..];
    while let Some(i) = rest.find("<input") {
        rest = &rest[i + 6..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            fields.push((name, value));
        }
    }
    (action, fields)
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&"))
}

impl Browser {
    /// Follows the provider's redirects and pages from `url`, signing in as
    /// `user` on its login form and confirming any other form, until it
    /// sends the browser back to the console: that address.
    pub async fn through_provider(&mut self, provider: &str, url: &str, user: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..12 {
            if next.starts_with('/') {
                next = format!("{provider}{next}");
            }
            if !next.starts_with(provider) {
                return next;
            }
            let page = self.get(&next).await;
            if let Some(location) = page.location.clone() {
                next = location;
                continue;
            }
            assert_eq!(page.status, 200, "provider page {next}: {}", page.body);
            let (action, mut fields) = form_of(&page);
            if page.body.contains("name=\"login\"") {
                fields.retain(|(k, _)| k != "login" && k != "password");
                fields.push(("login".into(), user.into()));
                fields.push(("password".into(), "any password".into()));
            }
            if page.body.contains("name=\"logout\"") {
                fields.push(("logout".into(), "yes".into()));
            }
            let action = if action.starts_with('/') {
                format!("{provider}{action}")
            } else {
                action
            };
            let answer = self.post_pairs(&action, &fields).await;
            next = answer
                .location
                .unwrap_or_else(|| panic!("provider form {action} answered {}", answer.body));
        }
        panic!("the provider did not send the browser back");
    }

    /// Signs in at `agency` through oidc-provider: the console's answer to
    /// the callback.
    pub async fn sign_in_at_provider(&mut self, provider: &str, agency: &str, user: &str) -> Page {
        let start = self.get("/").await;
        let to_provider = self
            .post("/sign-in", &[("csrf", &start.csrf()), ("agency", agency)])
            .await;
        assert_eq!(to_provider.status, 303, "{to_provider:?}");
        let authorize = to_provider.location.expect("authorization URL");
        let callback = self.through_provider(provider, &authorize, user).await;
        assert!(callback.contains("/auth/callback?"), "{callback}");
        self.get(&callback).await
    }
}

#[tokio::test]
async fn a_caseworker_signs_in_at_oidc_provider_answers_a_referral_and_signs_out_there_too() {
    let h = Harness::start_with(IdentityProvider::OidcProvider, SessionConfig::default()).await;
    let survivor = h
        .federation
        .register_survivor("shelter-north", "Farah")
        .await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;

    let mut browser = h.browser();
    let landed = browser
        .sign_in_at_provider(&h.provider, "clinic-east", "caseworker@clinic-east")
        .await;
    assert_eq!(landed.location.as_deref(), Some("/referrals"), "{landed:?}");
    let inbox = browser.get("/referrals").await;
    // oidc-provider puts profile claims in userinfo, not the ID token: the
    // console names the caseworker by `sub`.
    assert!(
        inbox.body.contains("caseworker@clinic-east (clinic-east)"),
        "{}",
        inbox.body
    );
    assert!(inbox.body.contains(&format!("/referrals/{referral}")));
    let page = browser.get(&format!("/referrals/{referral}")).await;
    let accepted = browser
        .post(
            &format!("/referrals/{referral}/answer"),
            &[("csrf", &page.csrf()), ("action", "accept")],
        )
        .await;
    assert_eq!(accepted.status, 303, "{accepted:?}");
    let page = browser.get(&format!("/referrals/{referral}")).await;
    assert!(page.body.contains("Mark completed"), "{}", page.body);

    let out = browser.post("/sign-out", &[("csrf", &page.csrf())]).await;
    let end_session = out.location.expect("end-session redirect");
    assert!(
        end_session.starts_with(&format!("{}/clinic-east/", h.provider)),
        "{end_session}"
    );
    let back = browser
        .through_provider(&h.provider, &end_session, "")
        .await;
    assert_eq!(back, format!("{}/", h.console));
    // The provider's session ended too: signing in again asks for the login.
    let start = browser.get("/").await;
    let again = browser
        .post(
            "/sign-in",
            &[("csrf", &start.csrf()), ("agency", "clinic-east")],
        )
        .await;
    let mut next = again.location.expect("authorization URL");
    let mut saw_login = false;
    for _ in 0..5 {
        let url = if next.starts_with('/') {
            format!("{}{next}", h.provider)
        } else {
            next.clone()
        };
        let step = browser.get(&url).await;
        if step.body.contains("name=\"login\"") {
            saw_login = true;
            break;
        }
        match step.location {
            Some(location) if !location.starts_with(&h.console) => next = location,
            _ => break,
        }
    }
    assert!(
        saw_login,
        "after sign-out the provider must ask for the login again"
    );
}

#[tokio::test]
async fn a_grant_revoked_at_the_provider_ends_the_console_session_at_the_next_request() {
    let session = SessionConfig {
        revalidate_seconds: 0,
        ..SessionConfig::default()
    };
    let h = Harness::start_with(IdentityProvider::OidcProvider, session).await;
    let mut browser = h.browser();
    browser
        .sign_in_at_provider(&h.provider, "clinic-east", "caseworker@clinic-east")
        .await;
    // Every request renews the access token while the grant stands.
    for _ in 0..2 {
        let inbox = browser.get("/referrals").await;
        assert_eq!(inbox.status, 200, "{inbox:?}");
    }
    let revoked: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/__admin/revoke?agency=clinic-east&sub=caseworker@clinic-east",
            h.provider
        ))
        .send()
        .await
        .expect("admin revoke")
        .json()
        .await
        .expect("json");
    assert!(revoked["destroyed"].as_u64() >= Some(1), "{revoked}");

    let after = browser.get("/referrals").await;
    assert_eq!(after.status, 303, "{after:?}");
    assert_eq!(after.location.as_deref(), Some("/"));
    assert_eq!(after.code.as_deref(), Some("SIGN_IN_REVOKED"));
    let start = browser.get("/").await;
    assert!(
        start.body.contains("Your agency has ended your access."),
        "{}",
        start.body
    );
    let again = browser.get("/referrals").await;
    assert_eq!(
        again.location.as_deref(),
        Some("/"),
        "the session stays ended"
    );
}

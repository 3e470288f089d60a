//! Notifications to an agency's own system by webhook: signed (Standard
//! Webhooks, HMAC-SHA256), retried while the endpoint fails, set aside as a
//! dead letter when the attempts run out, listed to the agency's
//! supervisors through the gateway and sent again on request; each attempt
//! audited at the node; the body holds kinds and global IDs only.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agency_node::config::WebhooksConfig;
use axum::http::{HeaderMap, StatusCode};
use exchange_schema::{AuditKind, Role};
use exchange_test_kit::{CLINIC, LEGAL, Options, SHELTER, TestFederation};
use exchange_trust::WebhookEntry;
use serde_json::{Value, json};

const SECRET: &str = "a-webhook-secret-for-the-tests-0123456789";

/// One request the endpoint received: its signature headers and body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
    answered: u16,
}

/// The clinic's own system: records what it is sent, answers `status`.
struct Endpoint {
    url: String,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Endpoint {
    async fn start(status: u16) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (status.clone(), received.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (s, r) = (s.clone(), r.clone());
                async move {
                    let answered = s.load(Ordering::SeqCst);
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    r.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                        signature: header("webhook-signature"),
                        body,
                        answered,
                    });
                    StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            status,
            received,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds of what was received.
    async fn until(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the endpoint never got what was expected: {:?}",
            self.received()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_dead_lettered_and_sent_again() {
    let endpoint = Endpoint::start(500).await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("clinic-webhook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let fed = TestFederation::start_with(Options {
        webhooks: vec![(
            CLINIC.to_owned(),
            WebhookEntry {
                url: endpoint.url.clone(),
                secret_file: secret_file.display().to_string(),
            },
        )],
        webhook_delivery: Some(WebhooksConfig {
            max_attempts: 3,
            first_retry_ms: 20,
            timeout_ms: 2_000,
            poll_ms: 20,
        }),
        ..Options::default()
    })
    .await;

    // The endpoint fails: three attempts, then a dead letter.
    let survivor = fed.register_survivor(SHELTER, "Hooked").await;
    let referral = fed.refer(&survivor, CLINIC).await;
    endpoint.until(|got| got.len() >= 3).await;
    let supervisor = fed.token(CLINIC, &[Role::Supervisor]);
    let dead = "{ webhookDeadLetters { edges { node { id kind subjectId attempts lastError } } } }";
    let mut letters = Value::Null;
    for _ in 0..200 {
        let answer = fed
            .gateway_gql(&supervisor, "REFERRAL", dead, json!({}))
            .await;
        letters = answer.data()["webhookDeadLetters"]["edges"].clone();
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let letter = &letters[0]["node"];
    assert_eq!(letter["kind"], "REFERRAL_RECEIVED");
    assert_eq!(letter["subjectId"], referral.as_str());
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["lastError"], "HTTP 500");
    assert_eq!(
        endpoint.received().len(),
        3,
        "no attempt after the dead letter"
    );
    // A caseworker does not see dead letters.
    let caseworker = fed
        .gateway_gql(&fed.caseworker(CLINIC), "REFERRAL", dead, json!({}))
        .await;
    assert_eq!(caseworker.code(), "FORBIDDEN");

    // The endpoint is fixed; the supervisor sends it again.
    endpoint.status.store(200, Ordering::SeqCst);
    let retried = fed
        .gateway_gql(
            &supervisor,
            "REFERRAL",
            "mutation($id: ID!) { retryWebhookDelivery(id: $id) { id attempts } }",
            json!({ "id": letter["id"] }),
        )
        .await;
    assert_eq!(retried.data()["retryWebhookDelivery"]["attempts"], 0);
    let got = endpoint
        .until(|got| got.iter().any(|r| r.answered == 200))
        .await;
    let delivered = got.iter().find(|r| r.answered == 200).unwrap();
    assert_eq!(
        delivered.id,
        letter["id"].as_str().unwrap(),
        "the same webhook-id on every attempt"
    );
    assert_eq!(
        delivered.signature,
        agency_node::webhooks::signature(
            SECRET.as_bytes(),
            &delivered.id,
            delivered.timestamp,
            &delivered.body
        ),
        "signed with the agency's secret"
    );
    assert_ne!(
        delivered.signature,
        agency_node::webhooks::signature(
            b"another-secret-entirely-0123456789abcdef",
            &delivered.id,
            delivered.timestamp,
            &delivered.body
        ),
    );
    let body: Value = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(body["type"], "REFERRAL_RECEIVED");
    assert_eq!(body["subjectId"], referral.as_str());
    assert_eq!(body["survivorId"], survivor.as_str());
    assert!(!delivered.body.contains("Hooked"), "no record contents");

    // A referral from another node reaches the endpoint straight away.
    let other = fed.register_survivor(LEGAL, "Second").await;
    fed.refer(&other, CLINIC).await;
    let got = endpoint
        .until(|got| got.iter().filter(|r| r.answered == 200).count() >= 2)
        .await;
    assert!(got.iter().any(|r| r.id.starts_with(&format!("{LEGAL}:"))));

    // Every attempt is in the sending node's log.
    let steps: Vec<String> = fed
        .node(SHELTER)
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::WebhookDelivery)
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        steps,
        vec!["RETRY", "RETRY", "DEAD_LETTER", "REQUEUED", "DELIVERED"]
    );
}

/// The federation file is read again when it changes: a webhook an
/// operator adds for the legal-aid office while every node runs receives
/// the next referral sent to it, signed with the secret the file names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_added_to_the_federation_file_is_used_without_a_restart() {
    let endpoint = Endpoint::start(200).await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("legal-webhook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let mut fed = TestFederation::start_with(Options {
        webhook_delivery: Some(WebhooksConfig {
            max_attempts: 3,
            first_retry_ms: 20,
            timeout_ms: 2_000,
            poll_ms: 20,
        }),
        ..Options::default()
    })
    .await;

    fed.set_webhooks(vec![(
        LEGAL.to_owned(),
        WebhookEntry {
            url: endpoint.url.clone(),
            secret_file: secret_file.display().to_string(),
        },
    )]);
    let survivor = fed.register_survivor(SHELTER, "Edited").await;
    let referral = fed.refer(&survivor, LEGAL).await;
    let got = endpoint.until(|got| !got.is_empty()).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "REFERRAL_RECEIVED");
    assert_eq!(body["subjectId"], referral.as_str());
    assert_eq!(
        got[0].signature,
        agency_node::webhooks::signature(
            SECRET.as_bytes(),
            &got[0].id,
            got[0].timestamp,
            &got[0].body
        )
    );
}

//! Notifications through the gateway's subscription (graphql-transport-ws
//! at `/graphql/ws`): a caseworker's agency learns of referrals sent to it
//! from every node, as they happen, without polling; each delivery is in
//! the gateway's audit log; a connection without a valid token gets
//! nothing; and the same notifications can be read back, merged across
//! nodes, with the `notifications` query.

use std::time::Duration;

use exchange_schema::AuditKind;
use exchange_test_kit::{CLINIC, LEGAL, SHELTER, TestFederation};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(fed: &TestFederation, payload: Value) -> Socket {
    let url = format!(
        "{}/graphql/ws",
        fed.gateway_base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .unwrap();
    socket
}

/// The next protocol message (pings answered), or `None` when the server
/// closed the connection. Bounded so that a missing message fails the test
/// instead of hanging it.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s")?;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    socket
                        .send(Message::text(r#"{"type":"pong"}"#))
                        .await
                        .unwrap();
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_learns_of_referrals_from_every_node_as_they_come() {
    let fed = TestFederation::start().await;
    let mut socket = connect(
        &fed,
        json!({ "Authorization": format!("Bearer {}", fed.caseworker(CLINIC)),
                "x-exchange-purpose": "REFERRAL" }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    socket
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": {
                "query": "subscription { notifications { id kind subjectId survivorId } }" } })
            .to_string(),
        ))
        .await
        .unwrap();

    // Referrals to the clinic from two nodes, after the subscription began.
    let from_shelter = fed.register_survivor(SHELTER, "Notified").await;
    let first = fed.refer(&from_shelter, CLINIC).await;
    let from_legal = fed.register_survivor(LEGAL, "Also").await;
    let second = fed.refer(&from_legal, CLINIC).await;

    let mut told = Vec::new();
    while told.len() < 2 {
        let message = next(&mut socket).await.expect("the subscription goes on");
        assert_eq!(message["type"], "next", "{message}");
        let n = &message["payload"]["data"]["notifications"];
        assert_eq!(n["kind"], "REFERRAL_RECEIVED");
        told.push(n["subjectId"].as_str().unwrap().to_owned());
    }
    told.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(told, expected);

    // Each delivery is in the gateway's log, before it was sent.
    let delivered: Vec<_> = fed
        .gateway_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::NotificationDelivered)
        .collect();
    assert_eq!(delivered.len(), 2);
    assert!(
        delivered
            .iter()
            .all(|e| e.actor_agency.as_ref().map(|a| a.as_str()) == Some(CLINIC))
    );

    // The same, read back across nodes in order.
    let feed = fed
        .gateway_gql(
            &fed.caseworker(CLINIC),
            "REFERRAL",
            "{ notifications(first: 10) { edges { node { kind subjectId } } } }",
            json!({}),
        )
        .await;
    let listed: Vec<&str> = feed.data()["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["subjectId"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{}", feed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_valid_token_gets_nothing() {
    let fed = TestFederation::start().await;
    for payload in [
        json!({}),
        json!({ "Authorization": "Bearer not-a-token", "x-exchange-purpose": "REFERRAL" }),
        json!({ "Authorization": format!("Bearer {}", fed.caseworker(CLINIC)) }),
    ] {
        let mut socket = connect(&fed, payload.clone()).await;
        let answer = next(&mut socket).await;
        assert!(
            answer
                .as_ref()
                .is_none_or(|m| m["type"] != "connection_ack"),
            "{payload}: {answer:?}"
        );
    }
}

/// Subscribes `socket` (already acknowledged) with `query`.
async fn subscribe(socket: &mut Socket, query: &str) {
    socket
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }).to_string(),
        ))
        .await
        .unwrap();
}

/// A subscriber that reconnects with `since` receives what was created
/// while it was away, and `kinds` keeps out every other kind: the shelter,
/// asking only for answers to its referrals, gets the clinic's answer given
/// before it subscribed and the one given after, and never the referral
/// the legal-aid office sent it in between; only the two deliveries are in
/// the gateway's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_subscriber_catches_up_from_since_with_only_the_kinds_it_asked_for() {
    use time::format_description::well_known::Rfc3339;
    let fed = TestFederation::start().await;
    let since = (time::OffsetDateTime::now_utc() - time::Duration::seconds(1))
        .format(&Rfc3339)
        .unwrap();
    let first = fed
        .refer(&fed.register_survivor(SHELTER, "Away").await, CLINIC)
        .await;
    let second = fed
        .refer(&fed.register_survivor(SHELTER, "Later").await, CLINIC)
        .await;
    fed.answer_referral(CLINIC, "acceptReferral", &first).await;
    // A kind the subscriber did not ask for, in the window it catches up on.
    fed.refer(&fed.register_survivor(LEGAL, "Other").await, SHELTER)
        .await;

    let mut socket = connect(
        &fed,
        json!({ "Authorization": format!("Bearer {}", fed.caseworker(SHELTER)),
                "x-exchange-purpose": "REFERRAL" }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    subscribe(
        &mut socket,
        &format!(
            "subscription {{ notifications(since: \"{since}\", kinds: [REFERRAL_ANSWERED]) \
             {{ id kind subjectId }} }}"
        ),
    )
    .await;
    let caught_up = next(&mut socket).await.expect("the catch-up");
    assert_eq!(caught_up["type"], "next", "{caught_up}");
    let n = &caught_up["payload"]["data"]["notifications"];
    assert_eq!(n["kind"], "REFERRAL_ANSWERED", "{caught_up}");
    assert_eq!(n["subjectId"], first.as_str());

    fed.answer_referral(CLINIC, "declineReferral", &second)
        .await;
    let live = next(&mut socket).await.expect("the live answer");
    let n = &live["payload"]["data"]["notifications"];
    assert_eq!(n["kind"], "REFERRAL_ANSWERED", "{live}");
    assert_eq!(n["subjectId"], second.as_str());

    let delivered: Vec<_> = fed
        .gateway_events()
        .await
        .into_iter()
        .filter(|e| e.kind == AuditKind::NotificationDelivered)
        .collect();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(
        delivered.iter().all(|e| e
            .explanation
            .as_deref()
            .is_some_and(|x| x.starts_with("REFERRAL_ANSWERED"))),
        "{delivered:?}"
    );
}

/// A notification is never sent without its entry in the gateway's log:
/// once the log cannot be written, the next notification ends the
/// subscription with `AUDIT_UNAVAILABLE` and carries no notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_with_audit_unavailable_when_the_gateway_log_fails() {
    let fed = TestFederation::start().await;
    let mut socket = connect(
        &fed,
        json!({ "Authorization": format!("Bearer {}", fed.caseworker(CLINIC)),
                "x-exchange-purpose": "REFERRAL" }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    subscribe(
        &mut socket,
        "subscription { notifications { id kind subjectId } }",
    )
    .await;

    let survivor = fed.register_survivor(SHELTER, "Unlogged").await;
    // The grant goes first: with the log closed the gateway refuses to
    // route it.
    fed.grant(&survivor, CLINIC, &["IDENTITY", "CASE"], &["REFERRAL"])
        .await;
    fed.gateway.audit.db().close().await;
    // The referral reaches the shelter's node directly (its own log works).
    let referral = fed
        .node_gql(
            SHELTER,
            &fed.caseworker(SHELTER),
            "REFERRAL",
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": { "survivorId": survivor, "toAgency": CLINIC,
                               "service": "MEDICAL", "urgency": "URGENT" } }),
        )
        .await;
    let referral = referral.id("createReferral");

    let ended = next(&mut socket).await.expect("the subscription's end");
    assert_eq!(ended["type"], "next", "{ended}");
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "AUDIT_UNAVAILABLE",
        "{ended}"
    );
    assert!(ended["payload"]["data"].is_null(), "{ended}");
    assert!(!ended.to_string().contains(&referral), "{ended}");
    let complete = next(&mut socket).await;
    assert!(
        complete.as_ref().is_none_or(|m| m["type"] == "complete"),
        "{complete:?}"
    );
}

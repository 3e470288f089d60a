//! The live notices' event stream: a referral created while a page is open
//! is announced with a link to it; the stream ends with the session and is
//! refused without one; a session holds a bounded number of streams.

use std::time::Duration;

use exchange_console::config::SessionConfig;

use crate::{Harness, IdentityProvider};

/// Reads the event stream until `needle` appears; the text read so far.
async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    // A bound so that a missing event fails the test instead of hanging it.
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(chunk) = response.chunk().await.expect("stream") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(needle) {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{needle} never came; read: {text}");
    text
}

#[tokio::test]
async fn a_referral_sent_while_a_page_is_open_is_announced_and_the_stream_ends_with_the_session() {
    let session = SessionConfig {
        notice_seconds: 1,
        ..SessionConfig::default()
    };
    let h = Harness::start_with(IdentityProvider::Development, session).await;
    let mut clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let cookie = clinic.cookie.clone().expect("session");
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("{}/notices", h.console))
        .header("cookie", format!("console_session={cookie}"))
        .send()
        .await
        .expect("event stream");
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );

    let survivor = h.federation.register_survivor("shelter-north", "Nia").await;
    let referral = h.federation.refer(&survivor, "clinic-east").await;
    let text = read_until(&mut stream, &format!("/referrals/{referral}")).await;
    assert!(text.contains("event: notice"), "{text}");
    assert!(text.contains("A new referral has arrived."), "{text}");

    // Signing out ends the stream.
    let inbox = clinic.get("/referrals").await;
    clinic.post("/sign-out", &[("csrf", &inbox.csrf())]).await;
    let text = read_until(&mut stream, "event: ended").await;
    assert!(text.contains("event: ended"));

    let refused = client
        .get(format!("{}/notices", h.console))
        .header("cookie", format!("console_session={cookie}"))
        .send()
        .await
        .expect("refused");
    assert_eq!(refused.status().as_u16(), 401);
    let anonymous = client
        .get(format!("{}/notices", h.console))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[tokio::test]
async fn a_session_holds_a_bounded_number_of_notice_streams() {
    let h = Harness::start_with(IdentityProvider::Development, SessionConfig::default()).await;
    let client = reqwest::Client::new();
    let open = |cookie: String| {
        let client = client.clone();
        let url = format!("{}/notices", h.console);
        async move {
            client
                .get(url)
                .header("cookie", format!("console_session={cookie}"))
                .send()
                .await
                .expect("event stream")
        }
    };
    let clinic = h.signed_in("clinic-east", "caseworker@clinic-east").await;
    let cookie = clinic.cookie.clone().expect("session");
    let mut held = Vec::new();
    for _ in 0..exchange_console::routes::notices::MOST_STREAMS_PER_SESSION {
        let stream = open(cookie.clone()).await;
        assert_eq!(stream.status().as_u16(), 200);
        held.push(stream);
    }
    let one_more = open(cookie.clone()).await;
    assert_eq!(one_more.status().as_u16(), 429);
    // Another caseworker's session is not held to the first one's streams.
    let other = h.signed_in("clinic-east", "supervisor@clinic-east").await;
    let theirs = open(other.cookie.clone().expect("session")).await;
    assert_eq!(theirs.status().as_u16(), 200);
}

//! Two replicas of a node on one PostgreSQL database share the portal's
//! sessions: a survivor who signed in through one replica is signed in on
//! the other (a load balancer may send each request anywhere), a sign-out
//! on either ends the session on both, and a new consent code ends the
//! sessions of the old one on both; and they hold a client to one limit of
//! sign-in attempts.

use serde_json::json;

use crate::common::*;
use crate::portal::{Browser, issue_code, start_with_node_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_session_made_on_one_replica_is_honoured_and_ended_on_the_other() {
    let first = start_with_node_config(Backend::Postgres, |_| {}).await;
    // The second replica: the same records database, data directory (keys)
    // and federation.
    let (database_url, data_dir) = (first.database_url.clone(), first.data_dir.clone());
    let second = start_with_node_config(Backend::Postgres, |config| {
        config.database_url = Some(agency_node::config::DatabaseUrl(database_url.clone()));
        config.data_dir = data_dir.clone();
        config.federation = first.federation_path().to_owned();
    })
    .await;

    let survivor = first.register_full_survivor("Replicated").await;
    let code = issue_code(&first, &survivor).await;
    let mut on_first = Browser::new(&first);
    on_first.first_sign_in(&code, "246810").await;
    let home = on_first.get("/home").await;
    assert_eq!(home.status, reqwest::StatusCode::OK, "{}", home.body);

    // The same cookie on the other replica: signed in there too.
    let mut on_second = on_first.at(&second);
    let there = on_second.get("/home").await;
    assert_eq!(there.status, reqwest::StatusCode::OK, "{}", there.body);
    assert!(
        there.body.contains("data-opted-out"),
        "the signed-in home: {}",
        there.body
    );

    // Signed out on the second: the first no longer knows the session.
    let out = on_second
        .post("/sign-out", &[("csrf", &there.csrf())])
        .await;
    assert_eq!(out.status, reqwest::StatusCode::SEE_OTHER, "{}", out.body);
    let mut stale = on_first.at(&first);
    let after = stale.get("/home").await;
    assert_eq!(
        after.status,
        reqwest::StatusCode::SEE_OTHER,
        "back to sign-in"
    );

    // A new code issued through one replica ends the old code's sessions on
    // both.
    let mut again = Browser::new(&second);
    let signed_in = again.sign_in(&code, "246810").await;
    assert_eq!(signed_in.location(), "/home", "{}", signed_in.body);
    assert_eq!(again.get("/home").await.status, reqwest::StatusCode::OK);
    let newer = first
        .gql(
            Some(&first.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": survivor }),
        )
        .await;
    assert!(newer.errors().is_empty(), "{}", newer.body);
    let mut through_first = again.at(&first);
    assert_eq!(
        through_first.get("/home").await.status,
        reqwest::StatusCode::SEE_OTHER
    );
    let _ = second;
}

/// A client's sign-in attempts are counted by both replicas together: half
/// its limit at each, and the next attempt is refused at either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_hold_a_client_to_one_limit_of_sign_in_attempts() {
    const LIMIT: u32 = 4;
    let first = start_with_node_config(Backend::Postgres, |config| {
        config.portal.as_mut().unwrap().sign_ins_per_client = LIMIT;
    })
    .await;
    let (database_url, data_dir) = (first.database_url.clone(), first.data_dir.clone());
    let second = start_with_node_config(Backend::Postgres, |config| {
        config.database_url = Some(agency_node::config::DatabaseUrl(database_url.clone()));
        config.data_dir = data_dir.clone();
        config.federation = first.federation_path().to_owned();
        config.portal.as_mut().unwrap().sign_ins_per_client = LIMIT;
    })
    .await;
    let mut at_first = Browser::new(&first);
    let mut at_second = Browser::new(&second);
    for _ in 0..LIMIT / 2 {
        for browser in [&mut at_first, &mut at_second] {
            let page = browser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
            assert_eq!(page.error_code(), "SIGN_IN_REFUSED", "{}", page.body);
        }
    }
    for browser in [&mut at_first, &mut at_second] {
        let page = browser.sign_in("ABCD-EFGH-JKMN-PQRS", "").await;
        assert_eq!(page.error_code(), "TOO_MANY_ATTEMPTS", "{}", page.body);
    }
}

//! Survivors' requests to correct or erase, answered in the console: the
//! owner's supervisor sees the queue with the survivor's words and the
//! date due, answers an erasure (the part is erased through the gateway)
//! and refuses a correction with its reason; a refusal without a reason and
//! an outcome the form does not offer are refused; a caseworker is offered
//! no queue and is refused one asked for by hand.

use agency_node::rights::{RequestKind, ask};
use agency_node::vault::Part;
use exchange_test_kit::SHELTER as SHELTER_NORTH;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn a_supervisor_answers_survivors_requests_and_a_caseworker_sees_no_queue() {
    let h = Harness::start().await;
    let survivor = h.federation.register_survivor(SHELTER_NORTH, "Selam").await;
    let node = h.federation.node(SHELTER_NORTH);
    let local = survivor.split_once(':').expect("global ID").1;
    let erasure = ask(
        &node.state,
        local,
        RequestKind::Erasure,
        &[Part::Contact],
        Some("Please erase my phone number"),
    )
    .await
    .expect("asked");
    let correction = ask(
        &node.state,
        local,
        RequestKind::Correction,
        &[Part::Identity],
        Some("My name is Selam Tesfaye"),
    )
    .await
    .expect("asked");

    let mut caseworker = h
        .signed_in(SHELTER_NORTH, &format!("caseworker@{SHELTER_NORTH}"))
        .await;
    let inbox = caseworker.get("/referrals").await;
    assert!(!inbox.body.contains("href=\"/requests\""), "no queue link");
    assert_eq!(
        caseworker.get("/requests").await.code.as_deref(),
        Some("FORBIDDEN")
    );

    let mut supervisor = h
        .signed_in(SHELTER_NORTH, &format!("supervisor@{SHELTER_NORTH}"))
        .await;
    let queue = supervisor.get("/requests").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(queue.body.contains("href=\"/requests\""));
    assert!(queue.body.contains("Please erase my phone number"));
    assert!(queue.body.contains("My name is Selam Tesfaye"));
    let csrf = queue.csrf();
    let erasure_path = format!("/requests/{SHELTER_NORTH}:{}/answer", erasure.id);
    let correction_path = format!("/requests/{SHELTER_NORTH}:{}/answer", correction.id);
    assert!(queue.body.contains(&erasure_path), "{}", queue.body);

    let bare = supervisor
        .post(&correction_path, &[("csrf", &csrf), ("outcome", "REFUSED")])
        .await;
    assert_eq!(bare.code.as_deref(), Some("BAD_REQUEST"), "{bare:?}");
    let invented = supervisor
        .post(&correction_path, &[("csrf", &csrf), ("outcome", "IGNORED")])
        .await;
    assert_eq!(invented.code.as_deref(), Some("BAD_REQUEST"));

    let erased = supervisor
        .post(
            &erasure_path,
            &[
                ("csrf", &csrf),
                ("outcome", "DONE"),
                ("answer", "Your phone number is erased."),
            ],
        )
        .await;
    assert_eq!(erased.status, 303, "{erased:?}");
    let refused = supervisor
        .post(
            &correction_path,
            &[
                ("csrf", &csrf),
                ("outcome", "REFUSED"),
                ("answer", "Please bring a document with the new name."),
            ],
        )
        .await;
    assert_eq!(refused.status, 303, "{refused:?}");
    let after = supervisor.get("/requests").await;
    assert!(after.body.contains("id=\"no-requests\""), "{}", after.body);
    assert!(after.body.contains("The answer was sent"));

    let read = h
        .federation
        .gateway_gql(
            &h.federation.caseworker(SHELTER_NORTH),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { contact { phone } withheld { category reason } } }",
            json!({ "id": survivor }),
        )
        .await;
    let seen = &read.data()["survivor"];
    assert!(seen["contact"].is_null(), "{seen}");
    assert!(
        seen["withheld"]
            .as_array()
            .expect("withheld")
            .iter()
            .any(|w| w["category"] == "CONTACT" && w["reason"] == "ERASED"),
        "{seen}"
    );
}

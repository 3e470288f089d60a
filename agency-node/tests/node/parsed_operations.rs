//! The node keeps the operations it has parsed, by their text
//! (`agency_node::graphql::documents`). Only the parse is shared between
//! requests: the answer to a kept operation still depends on who asks, for
//! what purpose and with which variables, and every limit is checked on
//! every request.

use serde_json::json;

use crate::common::*;

const READ: &str = "query($id: ID!, $full: Boolean!) { survivor(id: $id) { id \
    identity @include(if: $full) { givenName } contact { phone } withheld { category } } }";

async fn a_kept_operation_is_answered_for_each_caller_and_its_own_variables(backend: Backend) {
    let node = TestNode::start(backend).await;
    let (survivor, _) = node.survivor_sharing_identity_with_shelter("Mirela").await;
    let owner = node.caseworker(OWNER);
    let shelter = node.caseworker(SHELTER);
    let legal = node.caseworker(LEGAL);
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    let read = |token: &str, purpose: &str, full: bool| {
        let (token, purpose) = (token.to_owned(), purpose.to_owned());
        let variables = json!({ "id": survivor, "full": full });
        let node = &node;
        async move {
            node.gql(Some(&token), Some(&purpose), READ, variables)
                .await
        }
    };

    // Each operation twice over, in turns, so that every request after the
    // first of its text is answered from a kept parse.
    for round in 0..2 {
        let mine = read(&owner, "CASE_MANAGEMENT", true).await;
        assert_eq!(
            mine.data()["survivor"]["identity"]["givenName"],
            "Mirela",
            "round {round}: {}",
            mine.body
        );
        assert!(
            mine.data()["survivor"]["contact"]["phone"].is_string(),
            "round {round}: the owner sees the contact: {}",
            mine.body
        );

        let granted = read(&shelter, "SERVICE_COORDINATION", true).await;
        let record = &granted.data()["survivor"];
        assert_eq!(record["identity"]["givenName"], "Mirela", "round {round}");
        assert!(
            record["contact"].is_null(),
            "round {round}: no grant of CONTACT, nothing of it: {}",
            granted.body
        );
        assert!(
            record["withheld"]
                .as_array()
                .is_some_and(|w| w.iter().any(|c| c["category"] == "CONTACT")),
            "round {round}: {}",
            granted.body
        );

        let skipped = read(&shelter, "SERVICE_COORDINATION", false).await;
        assert!(
            skipped.data()["survivor"].get("identity").is_none(),
            "round {round}: `@include(if: false)` leaves identity out: {}",
            skipped.body
        );

        let stranger = read(&legal, "SERVICE_COORDINATION", true).await;
        assert!(
            !stranger.body.to_string().contains("Mirela"),
            "round {round}: an agency without a grant learns nothing: {}",
            stranger.body
        );

        let refused = node
            .gql(Some(&owner), Some("CASE_MANAGEMENT"), &too_deep, json!({}))
            .await;
        assert_eq!(
            refused.code(),
            "OPERATION_TOO_COMPLEX",
            "round {round}: {}",
            refused.body
        );
    }
}

on_both_backends!(a_kept_operation_is_answered_for_each_caller_and_its_own_variables);

//! Referrals: making one needs the survivor's consent for REFERRAL to the
//! receiving agency; only the receiving agency answers, only the referring
//! agency withdraws; the status history is kept; a third agency never sees
//! one; listings are cursor-paginated by direction and status.

use serde_json::{Value, json};

use crate::common::*;

const CREATE: &str = "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id status fromAgency toAgency } }";
const VIEW: &str = "query($id: ID!) { referral(id: $id) { id status history { status byAgency note } \
    survivor { id identity { givenName } contact { currentLocation } withheld { category reason } } } }";

async fn refer(node: &TestNode, survivor: &str, to: &str) -> crate::common::Gql {
    node.gql(
        Some(&node.caseworker(OWNER)),
        Some("REFERRAL"),
        CREATE,
        json!({ "input": { "survivorId": survivor, "toAgency": to, "service": "LEGAL_AID",
                           "urgency": "URGENT", "notes": "Needs advice on residence permit" } }),
    )
    .await
}

async fn answer(node: &TestNode, agency: &str, verb: &str, id: &str) -> crate::common::Gql {
    let query =
        format!("mutation($id: ID!) {{ {verb}(id: $id) {{ status history {{ status }} }} }}");
    node.gql(
        Some(&node.caseworker(agency)),
        Some("REFERRAL"),
        &query,
        json!({ "id": id }),
    )
    .await
}

/// The whole life of a referral, with who may do what.
async fn referral_lifecycle(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Referred").await;

    let without_consent = refer(&node, &survivor, LEGAL).await;
    assert_eq!(without_consent.code(), "CONSENT_REQUIRED");
    assert_eq!(node.count("referrals").await, 0);

    node.grant(
        &survivor,
        LEGAL,
        &["IDENTITY", "LEGAL"],
        &["REFERRAL"],
        json!({}),
    )
    .await;
    let created = refer(&node, &survivor, LEGAL).await;
    let referral = created.data()["createReferral"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created.data()["createReferral"]["status"], "PENDING");

    // The receiving agency sees it, and the survivor as far as consented.
    let seen = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("REFERRAL"),
            VIEW,
            json!({ "id": referral }),
        )
        .await;
    let r = &seen.data()["referral"];
    assert_eq!(r["survivor"]["identity"]["givenName"], "Referred");
    assert!(r["survivor"]["contact"].is_null());

    // A third agency cannot tell it exists.
    let third = node
        .gql(
            Some(&node.caseworker(CLINIC)),
            Some("REFERRAL"),
            VIEW,
            json!({ "id": referral }),
        )
        .await;
    assert_eq!(third.code(), "NOT_FOUND");

    // Only the receiving agency answers; only the referring agency withdraws.
    assert_eq!(
        answer(&node, OWNER, "acceptReferral", &referral)
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        answer(&node, CLINIC, "acceptReferral", &referral)
            .await
            .code(),
        "NOT_FOUND"
    );
    assert_eq!(
        answer(&node, LEGAL, "withdrawReferral", &referral)
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        answer(&node, LEGAL, "completeReferral", &referral)
            .await
            .code(),
        "CONFLICT"
    );
    let accepted = answer(&node, LEGAL, "acceptReferral", &referral).await;
    assert_eq!(accepted.data()["acceptReferral"]["status"], "ACCEPTED");
    assert_eq!(
        answer(&node, LEGAL, "declineReferral", &referral)
            .await
            .code(),
        "CONFLICT"
    );
    let completed = answer(&node, LEGAL, "completeReferral", &referral).await;
    let history: Vec<Value> = completed.data()["completeReferral"]["history"]
        .as_array()
        .unwrap()
        .clone();
    let statuses: Vec<&str> = history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["PENDING", "ACCEPTED", "COMPLETED"]);
    assert_eq!(
        answer(&node, OWNER, "withdrawReferral", &referral)
            .await
            .code(),
        "CONFLICT"
    );
}

/// Incoming and outgoing listings, by status, paginated without gaps or
/// repeats.
async fn referral_listing_by_direction_and_status(backend: Backend) {
    let node = TestNode::start(backend).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let survivor = node.register_full_survivor(&format!("Listed {i}")).await;
        node.grant(&survivor, LEGAL, &["IDENTITY"], &["REFERRAL"], json!({}))
            .await;
        let created = refer(&node, &survivor, LEGAL).await;
        made.push(
            created.data()["createReferral"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    answer(&node, LEGAL, "declineReferral", &made[1])
        .await
        .data();
    answer(&node, LEGAL, "acceptReferral", &made[3])
        .await
        .data();
    answer(&node, LEGAL, "completeReferral", &made[3])
        .await
        .data();

    let list = "query($after: String, $status: [ReferralStatus!]) { referrals(direction: INCOMING, status: $status, first: 2, after: $after) { \
        edges { node { id status } } pageInfo { hasNextPage endCursor } } }";
    let legal = node.caseworker(LEGAL);
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = node
            .gql(
                Some(&legal),
                Some("REFERRAL"),
                list,
                json!({ "after": after }),
            )
            .await;
        let conn = &page.data()["referrals"];
        seen.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "newest first, no gaps, no repeats");

    let pending = node
        .gql(
            Some(&legal),
            Some("REFERRAL"),
            list,
            json!({ "status": ["PENDING"] }),
        )
        .await;
    assert_eq!(
        pending.data()["referrals"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A page carries each referral's own history (read for the whole page
    // at once), oldest step first.
    let with_history = node
        .gql(
            Some(&legal),
            Some("REFERRAL"),
            "{ referrals(direction: INCOMING, first: 100) { edges { node { id history { status byAgency } } } } }",
            json!({}),
        )
        .await;
    for edge in with_history.data()["referrals"]["edges"]
        .as_array()
        .unwrap()
    {
        let id = edge["node"]["id"].as_str().unwrap();
        let steps: Vec<&str> = edge["node"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step["status"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if id == made[1] {
            &["PENDING", "DECLINED"]
        } else if id == made[3] {
            &["PENDING", "ACCEPTED", "COMPLETED"]
        } else {
            &["PENDING"]
        };
        assert_eq!(steps, expected, "history of {id}");
        assert_eq!(edge["node"]["history"][0]["byAgency"], OWNER, "{id}");
    }
    // Histories are read only when selected: however the selection reaches
    // them (`nodes`, a fragment, an alias), each still carries its own.
    for query in [
        "{ referrals(direction: INCOMING, first: 100) { nodes { id history { status } } } }",
        "{ referrals(direction: INCOMING, first: 100) { edges { node { ...Steps } } } } \
         fragment Steps on Referral { id history { status } }",
        "{ referrals(direction: INCOMING, first: 100) { edges { node { id steps: history { status } } } } }",
    ] {
        let selection = query;
        let page = node
            .gql(Some(&legal), Some("REFERRAL"), query, json!({}))
            .await;
        let listing = &page.data()["referrals"];
        let items: Vec<&Value> = match listing.get("nodes") {
            Some(nodes) => nodes.as_array().unwrap().iter().collect(),
            None => listing["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["node"])
                .collect(),
        };
        assert_eq!(items.len(), 5, "{selection}: {}", page.body);
        for item in items {
            let steps = item.get("history").or(item.get("steps")).unwrap();
            let expected = if item["id"] == made[3] {
                3
            } else if item["id"] == made[1] {
                2
            } else {
                1
            };
            assert_eq!(
                steps.as_array().unwrap().len(),
                expected,
                "{selection}: {}",
                page.body
            );
        }
    }

    // The referring agency sees them as outgoing, a third agency sees none.
    let outgoing = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("REFERRAL"),
            "{ referrals(direction: OUTGOING, first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        outgoing.data()["referrals"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let third = node
        .gql(
            Some(&node.caseworker(CLINIC)),
            Some("REFERRAL"),
            "{ referrals(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(
        third.data()["referrals"]["edges"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(referral_lifecycle, referral_listing_by_direction_and_status);

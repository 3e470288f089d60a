//! Onward referral: an agency that accepted a referral refers the survivor
//! on without registering them again, under the owner's consent records,
//! decided and kept at the owner node, which sees the whole chain. Nobody
//! else refers, and a partner whose referral has ended refers no more.

use serde_json::json;

use crate::case_management::make_partner;
use crate::common::*;

const CREATE: &str = "mutation($input: CreateReferralInput!) { createReferral(input: $input) { \
    id fromAgency toAgency status parentId } }";

async fn refer_as(node: &TestNode, agency: &str, survivor: &str, to: &str) -> Gql {
    node.gql(
        Some(&node.caseworker(agency)),
        Some("REFERRAL"),
        CREATE,
        json!({ "input": { "survivorId": survivor, "toAgency": to, "service": "MEDICAL",
                           "urgency": "URGENT" } }),
    )
    .await
}

async fn a_partner_refers_onward_under_the_owners_consent_and_the_owner_sees_the_chain(
    backend: Backend,
) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Onward").await;
    let first = make_partner(&node, &survivor, LEGAL).await;

    // No consent naming the clinic yet.
    let before = node.count("referrals").await;
    assert_eq!(
        refer_as(&node, LEGAL, &survivor, CLINIC).await.code(),
        "CONSENT_REQUIRED"
    );
    // The clinic has no part in the case: refused, and the same way for a
    // survivor that does not exist.
    let stranger = refer_as(&node, CLINIC, &survivor, SHELTER).await;
    assert_eq!(stranger.code(), "FORBIDDEN");
    let ghost = refer_as(
        &node,
        CLINIC,
        &format!("{OWNER}:00000000000000000000000000000bad"),
        SHELTER,
    )
    .await;
    assert_eq!(
        ghost.errors()[0]["message"],
        stranger.errors()[0]["message"]
    );
    // Not back to the owner, not to itself.
    assert_eq!(
        refer_as(&node, LEGAL, &survivor, OWNER).await.code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        refer_as(&node, LEGAL, &survivor, LEGAL).await.code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(node.count("referrals").await, before);

    node.grant(
        &survivor,
        CLINIC,
        &["IDENTITY", "HEALTH"],
        &["REFERRAL", "HEALTH_CARE"],
        json!({}),
    )
    .await;
    let onward = refer_as(&node, LEGAL, &survivor, CLINIC).await;
    let r = &onward.data()["createReferral"];
    assert_eq!(r["fromAgency"], LEGAL);
    assert_eq!(r["toAgency"], CLINIC);
    assert_eq!(r["parentId"], first.as_str());
    let onward_id = r["id"].as_str().unwrap().to_owned();
    assert!(
        onward_id.starts_with(&format!("{OWNER}:")),
        "kept at the owner: {onward_id}"
    );

    // The clinic answers it like any referral, and reads what it may.
    let accepted = node
        .gql(
            Some(&node.caseworker(CLINIC)),
            Some("REFERRAL"),
            "mutation($id: ID!) { acceptReferral(id: $id) { status } }",
            json!({ "id": onward_id }),
        )
        .await;
    assert_eq!(accepted.data()["acceptReferral"]["status"], "ACCEPTED");
    let read = node
        .read_survivor(&node.caseworker(CLINIC), "HEALTH_CARE", &survivor)
        .await;
    let (shown, _) = read.survivor_view("survivor");
    assert_eq!(shown, vec!["IDENTITY".to_owned(), "HEALTH".to_owned()]);

    // The owner sees the chain; the referrer sees its own outgoing one.
    let chain = node
        .gql(Some(&node.caseworker(OWNER)), Some("CASE_MANAGEMENT"),
             "query($id: ID!) { survivor(id: $id) { referrals { id fromAgency toAgency status parentId } } }",
             json!({ "id": survivor }))
        .await;
    let list = chain.data()["survivor"]["referrals"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], onward_id.as_str());
    assert_eq!(list[0]["parentId"], first.as_str());
    assert!(list[1]["parentId"].is_null());
    let by_id = node
        .gql(
            Some(&node.caseworker(OWNER)),
            Some("CASE_MANAGEMENT"),
            "query($id: ID!) { referral(id: $id) { fromAgency } }",
            json!({ "id": onward_id }),
        )
        .await;
    assert_eq!(by_id.data()["referral"]["fromAgency"], LEGAL);
    let hidden = node
        .gql(
            Some(&node.caseworker(LEGAL)),
            Some("REFERRAL"),
            "query($id: ID!) { survivor(id: $id) { referrals { id } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert!(
        hidden.data()["survivor"]["referrals"].is_null(),
        "only the owner's staff see the chain"
    );
    let created = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == exchange_schema::AuditKind::ReferralCreated)
        .map(|e| e.reason)
        .collect::<Vec<_>>();
    assert_eq!(created.last().map(String::as_str), Some("ONWARD"));

    // Once legal aid's own referral is completed, it refers no more.
    node.gql(
        Some(&node.caseworker(LEGAL)),
        Some("REFERRAL"),
        "mutation($id: ID!) { completeReferral(id: $id) { status } }",
        json!({ "id": first }),
    )
    .await
    .data();
    node.grant(&survivor, SHELTER, &["IDENTITY"], &["REFERRAL"], json!({}))
        .await;
    assert_eq!(
        refer_as(&node, LEGAL, &survivor, SHELTER).await.code(),
        "FORBIDDEN"
    );
}

on_both_backends!(a_partner_refers_onward_under_the_owners_consent_and_the_owner_sees_the_chain);

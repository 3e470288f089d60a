//! Incoming referrals for one agency, gathered from every node in order and
//! paginated across nodes without gaps or repeats.

use std::collections::HashSet;

use exchange_test_kit::{CLINIC, LEGAL, NODE_AGENCIES, SHELTER, TestFederation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PAGE: &str = "query($after: String, $first: Int) {
  incoming: referrals(direction: INCOMING, first: $first, after: $after) {
    edges { cursor node { id fromAgency toAgency createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}";

fn created_at(edge: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        edge["node"]["createdAt"].as_str().expect("createdAt"),
        &Rfc3339,
    )
    .expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_referrals_are_gathered_from_every_node_in_order_and_paged_without_gaps_or_repeats()
 {
    let fed = TestFederation::start().await;
    // Referrals to the clinic from the shelter (3) and legal aid (2),
    // interleaved in time; plus some that are not incoming for the clinic.
    let mut expected = Vec::new();
    for i in 0..5 {
        let owner = if i % 2 == 0 { SHELTER } else { LEGAL };
        let survivor = fed.register_survivor(owner, &format!("Person{i}")).await;
        expected.push(fed.refer(&survivor, CLINIC).await);
    }
    let clinic_own = fed.register_survivor(CLINIC, "Outgoing").await;
    fed.refer(&clinic_own, SHELTER).await;
    let other = fed.register_survivor(SHELTER, "Elsewhere").await;
    fed.refer(&other, LEGAL).await;

    let clinic = fed.caseworker(CLINIC);
    // Through the gateway, which renames `edges` and `node` with its own
    // `_gw` aliases when it scatters, each node still reads the histories
    // it is asked for (it reads them only when the selection names them).
    let with_history = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            "{ referrals(direction: INCOMING, first: 50) { edges { node { id history { status byAgency } } } } }",
            json!({}),
        )
        .await;
    let listed = with_history.data()["referrals"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(listed.len(), expected.len(), "{}", with_history.body);
    for edge in &listed {
        assert_eq!(
            edge["node"]["history"][0]["status"], "PENDING",
            "each referral carries its history: {}",
            with_history.body
        );
    }
    // All at once: every incoming referral, newest first.
    let all = fed
        .gateway_gql(&clinic, "REFERRAL", PAGE, json!({ "first": 50 }))
        .await;
    let edges = all.data()["incoming"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    let ids: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), expected.len(), "{}", all.body);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>(),
        expected
            .iter()
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .iter()
            .collect()
    );
    assert!(
        edges
            .windows(2)
            .all(|w| created_at(&w[0]) >= created_at(&w[1])),
        "newest first: {}",
        all.body
    );
    assert!(edges.iter().all(|e| e["node"]["toAgency"] == CLINIC));
    assert_eq!(all.data()["incoming"]["pageInfo"]["hasNextPage"], false);

    // The same, straight from each node with the clinic's token, merged by
    // hand: the gateway adds nothing and drops nothing.
    let mut direct = Vec::new();
    for agency in NODE_AGENCIES {
        let answer = fed
            .node_gql(agency, &clinic, "REFERRAL", PAGE, json!({ "first": 50 }))
            .await;
        for edge in answer.data()["incoming"]["edges"]
            .as_array()
            .expect("edges")
        {
            direct.push((created_at(edge), edge["node"].clone()));
        }
    }
    let merged_nodes: Vec<Value> = edges.iter().map(|e| e["node"].clone()).collect();
    let mut direct_ids: Vec<&str> = direct
        .iter()
        .map(|(_, n)| n["id"].as_str().expect("id"))
        .collect();
    let mut merged_ids: Vec<&str> = merged_nodes
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    direct_ids.sort_unstable();
    merged_ids.sort_unstable();
    assert_eq!(direct_ids, merged_ids);

    // Two at a time: the pages join up exactly, across nodes.
    for first in [1, 2, 3] {
        let mut after: Option<String> = None;
        let mut paged: Vec<Value> = Vec::new();
        let mut pages = 0;
        loop {
            let page = fed
                .gateway_gql(
                    &clinic,
                    "REFERRAL",
                    PAGE,
                    json!({ "first": first, "after": after }),
                )
                .await;
            let conn = &page.data()["incoming"];
            let page_edges = conn["edges"].as_array().expect("edges");
            assert!(page_edges.len() <= first as usize);
            paged.extend(page_edges.iter().cloned());
            pages += 1;
            assert!(pages <= 10, "pagination must end");
            if conn["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = Some(
                conn["pageInfo"]["endCursor"]
                    .as_str()
                    .expect("endCursor")
                    .to_owned(),
            );
            // An edge's own cursor continues from that edge too.
            assert_eq!(
                page_edges.last().expect("an edge")["cursor"].as_str(),
                after.as_deref()
            );
        }
        let paged_ids: Vec<&str> = paged
            .iter()
            .map(|e| e["node"]["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            paged_ids, ids,
            "page size {first}: same items, same order, no gap, no repeat"
        );
    }

    // A cursor is opaque to clients and checked.
    let bad = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            PAGE,
            json!({ "first": 2, "after": "not-a-cursor" }),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
}

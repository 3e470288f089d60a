//! A node that is down or hung costs only its part of the answer; a
//! circuit breaker stops calling a dead node; a mutation whose owner is down
//! fails clearly and writes nothing anywhere.

use exchange_test_kit::{CLINIC, LEGAL, Options, SHELTER, SILENT, TestFederation};
use serde_json::{Value, json};

const INCOMING: &str =
    "{ referrals(direction: INCOMING, first: 20) { edges { node { id fromAgency } } } }";

fn node_errors<'a>(errors: &'a [Value], agency: &str) -> Vec<&'a Value> {
    errors
        .iter()
        .filter(|e| {
            e["extensions"]["code"] == "NODE_UNAVAILABLE" && e["extensions"]["agency"] == agency
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_costs_only_its_part_of_the_answer() {
    let mut fed = TestFederation::start().await;
    let from_shelter = fed.register_survivor(SHELTER, "Bilal").await;
    let shelter_referral = fed.refer(&from_shelter, CLINIC).await;
    let from_legal = fed.register_survivor(LEGAL, "Chen").await;
    fed.refer(&from_legal, CLINIC).await;
    let clinic = fed.caseworker(CLINIC);

    let both = fed
        .gateway_gql(&clinic, "REFERRAL", INCOMING, json!({}))
        .await;
    assert_eq!(
        both.data()["referrals"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        2
    );

    fed.node_mut(LEGAL).stop().await;

    let partial = fed
        .gateway_gql(&clinic, "REFERRAL", INCOMING, json!({}))
        .await;
    assert_eq!(partial.status, 200);
    let edges = partial.body["data"]["referrals"]["edges"]
        .as_array()
        .expect("the other nodes' data");
    assert_eq!(edges.len(), 1, "{}", partial.body);
    assert_eq!(edges[0]["node"]["id"], shelter_referral.as_str());
    let errors = partial.errors();
    let named = node_errors(&errors, LEGAL);
    assert_eq!(named.len(), 1, "{}", partial.body);
    assert_eq!(named[0]["extensions"]["reason"], "UNREACHABLE");
    assert_eq!(named[0]["path"], json!(["referrals"]));
    // The gateway's log names the operation when it is sent and, in a
    // second entry of the same trace, the node that failed.
    let events = fed.gateway_events().await;
    let partial_entry = events
        .iter()
        .rev()
        .find(|e| e.reason == "PARTIAL")
        .expect("a PARTIAL entry for the operation a node failed");
    let explanation = partial_entry.explanation.as_deref().unwrap_or_default();
    assert!(
        explanation.contains(&format!("{LEGAL}: NODE_UNAVAILABLE (UNREACHABLE)")),
        "{explanation}"
    );
    assert!(
        explanation.contains(&format!("{SHELTER}: answered")),
        "{explanation}"
    );
    let forwarded_entry = events
        .iter()
        .rev()
        .find(|e| e.reason == "FORWARDED" && e.trace_id == partial_entry.trace_id)
        .expect("the FORWARDED entry of the same operation");
    assert_eq!(forwarded_entry.subject, partial_entry.subject);
    assert_eq!(
        events.iter().filter(|e| e.reason == "PARTIAL").count(),
        1,
        "only the operation a node failed has a PARTIAL entry"
    );

    // A routed read of the stopped node's record: null and named, while
    // another field of the same operation is answered.
    let mixed = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            "query($id: ID!) { survivor(id: $id) { id } agencies(kind: LEGAL_AID) { id name } }",
            json!({ "id": from_legal }),
        )
        .await;
    assert!(mixed.body["data"]["survivor"].is_null());
    assert_eq!(mixed.body["data"]["agencies"][0]["id"], LEGAL);
    assert_eq!(
        node_errors(&mixed.errors(), LEGAL).len(),
        1,
        "{}",
        mixed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_times_out_and_then_its_circuit_opens() {
    let fed = TestFederation::start_with(Options::hung_node()).await;
    let survivor = fed.register_survivor(SHELTER, "Dara").await;
    let referral = fed.refer(&survivor, CLINIC).await;
    let clinic = fed.caseworker(CLINIC);

    let first = fed
        .gateway_gql(&clinic, "REFERRAL", INCOMING, json!({}))
        .await;
    let edges = first.body["data"]["referrals"]["edges"]
        .as_array()
        .expect("data of the answering nodes");
    assert_eq!(edges[0]["node"]["id"], referral.as_str());
    let errors = first.errors();
    let named = node_errors(&errors, SILENT);
    assert_eq!(named.len(), 1, "{}", first.body);
    assert_eq!(
        named[0]["extensions"]["reason"], "TIMEOUT",
        "cut off at the per-node timeout"
    );

    // The circuit is open now: the hung node is not even called.
    let second = fed
        .gateway_gql(&clinic, "REFERRAL", INCOMING, json!({}))
        .await;
    let errors = second.errors();
    assert_eq!(
        node_errors(&errors, SILENT)[0]["extensions"]["reason"],
        "CIRCUIT_OPEN"
    );
    assert_eq!(
        second.body["data"]["referrals"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        1
    );

    let health = fed
        .gateway_gql(
            &clinic,
            "REFERRAL",
            "{ nodeHealth { agency status circuit latencyMs } }",
            json!({}),
        )
        .await;
    let list = health.data()["nodeHealth"]
        .as_array()
        .expect("list")
        .clone();
    let silent = list
        .iter()
        .find(|h| h["agency"] == SILENT)
        .expect("silent node listed");
    assert_eq!(silent["status"], "UNREACHABLE");
    assert_eq!(silent["circuit"], "OPEN");
    let shelter = list
        .iter()
        .find(|h| h["agency"] == SHELTER)
        .expect("shelter listed");
    assert_eq!(shelter["status"], "READY");
    assert_eq!(shelter["circuit"], "CLOSED");
    assert!(shelter["latencyMs"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_whose_owner_is_down_fails_clearly_and_writes_nothing() {
    let mut fed = TestFederation::start().await;
    let survivor = fed.register_survivor(LEGAL, "Esi").await;
    let referral = fed.refer(&survivor, SHELTER).await;
    fed.node_mut(LEGAL).stop().await;
    let before_shelter = fed.node(SHELTER).audit_events().await.len();
    let before_clinic = fed.node(CLINIC).audit_events().await.len();

    let shelter = fed.caseworker(SHELTER);
    let answer = fed
        .gateway_gql(
            &shelter,
            "REFERRAL",
            "mutation($id: ID!) { acceptReferral(id: $id) { id status } }",
            json!({ "id": referral }),
        )
        .await;
    assert!(answer.body["data"].is_null(), "{}", answer.body);
    let errors = answer.errors();
    let named = node_errors(&errors, LEGAL);
    assert_eq!(named.len(), 1, "{}", answer.body);
    assert_eq!(named[0]["extensions"]["outcome"], "NOT_SENT");

    // A mutation over two owners is refused before anything is sent.
    let split = fed
        .gateway_gql(
            &shelter,
            "REFERRAL",
            "mutation { a: acceptReferral(id: \"legal-aid-city:x1\") { id } b: acceptReferral(id: \"clinic-east:x2\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(split.code(), "BAD_USER_INPUT");

    assert_eq!(
        fed.node(SHELTER).audit_events().await.len(),
        before_shelter,
        "nothing written at the shelter"
    );
    assert_eq!(
        fed.node(CLINIC).audit_events().await.len(),
        before_clinic,
        "nothing written at the clinic"
    );
}

/// The gateway's probes: `/healthz` answers while the process runs;
/// `/readyz` is ready while its audit database answers, naming the head of
/// its log, and answers 503 once the database no longer does (the gateway
/// could not record an operation, so it must leave the load balancer), and
/// from then on no operation is answered with data: the closed log is not
/// written behind the database's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_probes_report_liveness_and_readiness() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Oksana").await;
    let get = |path: &str| fed.client.get(format!("{}{path}", fed.gateway_base)).send();
    let live = get("/healthz").await.expect("healthz");
    assert_eq!(live.status(), 200);
    let ready = get("/readyz").await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.expect("body");
    assert!(text.starts_with("ready (audit head "), "{text}");

    fed.gateway.audit.db().close().await;
    let unready = get("/readyz").await.expect("readyz");
    assert_eq!(unready.status(), 503);
    assert_eq!(
        unready.text().await.expect("body"),
        "the audit log cannot be written"
    );
    let live = get("/healthz").await.expect("healthz");
    assert_eq!(live.status(), 200, "the process itself still lives");

    let refused = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "query($id: ID!) { survivor(id: $id) { identity { givenName } } }",
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.code(), "AUDIT_UNAVAILABLE");
    assert!(
        !refused.body.to_string().contains("Oksana"),
        "{}",
        refused.body
    );
}

/// With `max_in_flight_per_node = 1`, three operations at once send one
/// request to a hung node while the first is in flight: the others wait for
/// its slot and, when their time is up, fail as unavailable while the other
/// nodes still answer.
///
/// Observed without the clock: each operation either reaches the hung node
/// (its count of requests received) or waits at the gateway for the slot
/// (the gateway's count of requests waiting); once all three are one or
/// the other, exactly one was sent and two wait. Without the bound all
/// three are sent and none waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_to_one_node_are_bounded() {
    let fed = TestFederation::start_with(Options {
        // Far longer than the three operations take to reach the gateway:
        // the first is still in flight when the others ask for its slot.
        node_timeout_ms: 2_000,
        failure_threshold: 1_000,
        silent_node: true,
        max_in_flight_per_node: 1,
        ..Options::default()
    })
    .await;
    let survivor = fed.register_survivor(SHELTER, "Goran").await;
    fed.refer(&survivor, CLINIC).await;
    let clinic = fed.caseworker(CLINIC);
    let silent = fed.silent.as_ref().expect("the hung node");
    let silent_agency = exchange_schema::AgencyId::parse(SILENT).unwrap();
    let mut sent = silent.watch_posts();
    let mut waiting = fed
        .gateway_nodes
        .waiting_for_slot(&silent_agency)
        .expect("the hung node is a node of the gateway");

    let ask = || fed.gateway_gql(&clinic, "REFERRAL", INCOMING, json!({}));
    let answers = async { tokio::join!(ask(), ask(), ask()) };
    tokio::pin!(answers);
    // Until each of the three has been sent or is waiting for the slot.
    let placed = async {
        loop {
            let counts = (*sent.borrow_and_update(), *waiting.borrow_and_update());
            if counts.0 + counts.1 >= 3 {
                return counts;
            }
            tokio::select! {
                changed = sent.changed() => changed.expect("the hung node runs"),
                changed = waiting.changed() => changed.expect("the gateway runs"),
            }
        }
    };
    let (sent_while_first_in_flight, waiting_for_it) = tokio::select! {
        counts = placed => counts,
        _ = &mut answers => panic!(
            "the operations were answered before all three reached the hung node or its queue"
        ),
    };
    assert_eq!(
        (sent_while_first_in_flight, waiting_for_it),
        (1, 2),
        "one request at a time to the hung node; the others wait for its slot"
    );
    let (a, b, c) = answers.await;
    for answer in [&a, &b, &c] {
        assert_eq!(
            answer.body["data"]["referrals"]["edges"]
                .as_array()
                .expect("the answering nodes' data")
                .len(),
            1,
            "{}",
            answer.body
        );
        let errors = answer.errors();
        let named = node_errors(&errors, SILENT);
        assert_eq!(named.len(), 1, "{}", answer.body);
        let reason = named[0]["extensions"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason == "TIMEOUT" || reason == "SATURATED",
            "{}",
            answer.body
        );
    }
}

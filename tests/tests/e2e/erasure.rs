//! Retention and erasure through the gateway: the owner's data-protection
//! officer places a legal hold (erasure then waits, saying why), lifts it
//! and erases a record, routed to the owner's node (a held record is not
//! transferred either); the record then reads
//! as `ERASED` through the gateway, to its owner and to a partner, never as
//! not found; another agency's officer cannot erase it.

use exchange_schema::Role;
use exchange_test_kit::{LEGAL, SHELTER, TestFederation};
use serde_json::json;

const READ: &str = "query($id: ID!) { survivor(id: $id) { id identity { givenName } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_holds_then_erases_a_record_through_the_gateway_and_it_reads_as_erased() {
    let fed = TestFederation::start().await;
    let survivor = fed
        .register_survivor(SHELTER, "Erased Through Gateway")
        .await;
    let officer = fed.token(SHELTER, &[Role::DataProtectionOfficer]);
    let erase = "mutation($id: ID!) { eraseSurvivorRecord(survivorId: $id, parts: [RECORD]) { erased rule } }";

    let other = fed
        .gateway_gql(
            &fed.token(LEGAL, &[Role::DataProtectionOfficer]),
            "CASE_MANAGEMENT",
            erase,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(other.code(), "FORBIDDEN", "{}", other.body);

    fed.gateway_gql(
        &officer,
        "CASE_MANAGEMENT",
        "mutation($id: ID!) { placeLegalHold(survivorId: $id, reason: \"Trial in March\") { id } }",
        json!({ "id": survivor }),
    )
    .await
    .data();
    let waits = fed
        .gateway_gql(
            &officer,
            "CASE_MANAGEMENT",
            erase,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(waits.code(), "CONFLICT", "{}", waits.body);
    assert!(waits.body.to_string().contains("Trial in March"));
    // Nor does a held record leave by a case transfer (the hold would not
    // travel with it).
    let moving = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "mutation($input: TransferCaseInput!) { transferCase(input: $input) { status } }",
            json!({ "input": { "survivorId": survivor, "toAgency": LEGAL,
                               "consentMethod": "WITNESSED_VERBAL" } }),
        )
        .await;
    assert_eq!(moving.code(), "CONFLICT", "{}", moving.body);
    assert!(moving.body.to_string().contains("legal hold"));
    fed.gateway_gql(
        &officer,
        "CASE_MANAGEMENT",
        "mutation($id: ID!) { liftLegalHold(survivorId: $id) { liftedAt } }",
        json!({ "id": survivor }),
    )
    .await
    .data();

    let erased = fed
        .gateway_gql(
            &officer,
            "CASE_MANAGEMENT",
            erase,
            json!({ "id": survivor }),
        )
        .await;
    assert_eq!(erased.data()["eraseSurvivorRecord"]["rule"], "REQUEST");
    assert_eq!(
        erased.data()["eraseSurvivorRecord"]["erased"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    for token in [fed.caseworker(SHELTER), fed.caseworker(LEGAL)] {
        let read = fed
            .gateway_gql(&token, "CASE_MANAGEMENT", READ, json!({ "id": survivor }))
            .await;
        assert_eq!(read.code(), "ERASED", "{}", read.body);
        assert_eq!(
            read.body["errors"][0]["extensions"]["erasureRule"],
            "REQUEST"
        );
    }
}

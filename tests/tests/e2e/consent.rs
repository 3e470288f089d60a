//! Consent revoked at the owner is effective on the very next federated
//! query.

use exchange_test_kit::{LEGAL, SHELTER, TestFederation};
use serde_json::json;

const READ: &str = "query($id: ID!) { survivor(id: $id) {
  id identity { givenName } legal { immigrationStatus } contact { currentLocation }
  withheld { category reason } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_revoked_at_the_owner_is_withheld_on_the_next_federated_query() {
    let fed = TestFederation::start().await;
    let survivor = fed.register_survivor(SHELTER, "Ana").await;
    let grant = fed
        .grant(
            &survivor,
            LEGAL,
            &["IDENTITY", "LEGAL"],
            &["LEGAL_ASSISTANCE"],
        )
        .await;
    let legal = fed.caseworker(LEGAL);

    let before = fed
        .gateway_gql(&legal, "LEGAL_ASSISTANCE", READ, json!({ "id": survivor }))
        .await;
    let s = &before.data()["survivor"];
    assert_eq!(s["identity"]["givenName"], "Ana");
    assert_eq!(s["legal"]["immigrationStatus"], "pending");
    assert!(s["contact"].is_null(), "never granted: {s}");

    let revoked = fed
        .gateway_gql(
            &fed.caseworker(SHELTER),
            "CASE_MANAGEMENT",
            "mutation($id: ID!) { revokeConsent(grantId: $id, reason: \"survivor asked\") { revokedAt active } }",
            json!({ "id": grant }),
        )
        .await;
    assert_eq!(revoked.data()["revokeConsent"]["active"], false);

    let after = fed
        .gateway_gql(&legal, "LEGAL_ASSISTANCE", READ, json!({ "id": survivor }))
        .await;
    let s = &after.data()["survivor"];
    assert!(s["legal"].is_null(), "revoked category withheld: {s}");
    assert!(s["identity"].is_null(), "revoked category withheld: {s}");
    let withheld = s["withheld"].as_array().expect("withheld");
    assert!(
        withheld
            .iter()
            .any(|w| w["category"] == "LEGAL" && w["reason"] == "GRANT_REVOKED"),
        "{s}"
    );
}

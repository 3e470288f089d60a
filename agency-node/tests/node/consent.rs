//! Disclosure follows consent: the consent matrix over every category and
//! grant state, revocation on the very next request, the owner's view, a
//! third agency's view, and `_entities` never disclosing more than
//! `survivor(id)`.

use exchange_schema::Role;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

const CATEGORIES: [&str; 5] = ["IDENTITY", "CONTACT", "CASE", "HEALTH", "LEGAL"];
const PURPOSE: &str = "SERVICE_COORDINATION";

fn at(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .unwrap()
}

#[derive(Debug, Clone, Copy)]
enum GrantState {
    None,
    Active,
    Expired,
    NotYetValid,
    Revoked,
    OtherAgency,
    OtherPurpose,
}

impl GrantState {
    const ALL: [GrantState; 7] = [
        Self::None,
        Self::Active,
        Self::Expired,
        Self::NotYetValid,
        Self::Revoked,
        Self::OtherAgency,
        Self::OtherPurpose,
    ];

    /// The reason the requester is told when the category is withheld.
    fn reason(self) -> Option<&'static str> {
        match self {
            Self::Active => None,
            Self::None | Self::OtherAgency => Some("NO_GRANT"),
            Self::Expired => Some("GRANT_EXPIRED"),
            Self::NotYetValid => Some("GRANT_NOT_YET_VALID"),
            Self::Revoked => Some("GRANT_REVOKED"),
            Self::OtherPurpose => Some("PURPOSE_NOT_GRANTED"),
        }
    }
}

async fn apply(node: &TestNode, survivor: &str, category: &str, state: GrantState) {
    let hour = time::Duration::hours(1);
    match state {
        GrantState::None => {}
        GrantState::Active => {
            node.grant(survivor, SHELTER, &[category], &[PURPOSE], json!({}))
                .await;
        }
        GrantState::Expired => {
            let extra = json!({ "validFrom": at(-hour * 48), "validUntil": at(-hour) });
            node.grant(survivor, SHELTER, &[category], &[PURPOSE], extra)
                .await;
        }
        GrantState::NotYetValid => {
            let extra = json!({ "validFrom": at(hour * 24) });
            node.grant(survivor, SHELTER, &[category], &[PURPOSE], extra)
                .await;
        }
        GrantState::Revoked => {
            let grant = node
                .grant(survivor, SHELTER, &[category], &[PURPOSE], json!({}))
                .await;
            node.revoke(&grant).await;
        }
        GrantState::OtherAgency => {
            node.grant(survivor, LEGAL, &[category], &[PURPOSE], json!({}))
                .await;
        }
        GrantState::OtherPurpose => {
            node.grant(survivor, SHELTER, &[category], &["HEALTH_CARE"], json!({}))
                .await;
        }
    }
}

/// For every category and grant state, the other shelter sees exactly the
/// categories an active grant covers; everything else is withheld with the
/// state's reason.
async fn consent_matrix(backend: Backend) {
    let node = TestNode::start(backend).await;
    let requester = node.caseworker(SHELTER);
    for category in CATEGORIES {
        for state in GrantState::ALL {
            let survivor = node.register_full_survivor("Matrix").await;
            apply(&node, &survivor, category, state).await;
            let response = node.read_survivor(&requester, PURPOSE, &survivor).await;
            let (shown, withheld) = response.survivor_view("survivor");
            let expected_shown: Vec<String> = match state {
                GrantState::Active => vec![category.to_owned()],
                _ => vec![],
            };
            assert_eq!(
                shown, expected_shown,
                "{category} under {state:?}: {}",
                response.body
            );
            for other in CATEGORIES {
                let entry = withheld.iter().find(|(c, _)| c == other);
                if other == category {
                    match state.reason() {
                        Some(reason) => assert_eq!(
                            entry.map(|(_, r)| r.as_str()),
                            Some(reason),
                            "{category} under {state:?}"
                        ),
                        None => assert!(entry.is_none(), "{category} active but withheld"),
                    }
                } else {
                    assert!(
                        entry.is_some(),
                        "{other} must be withheld under a grant for {category}"
                    );
                }
            }
        }
    }
}

/// The owner's staff see their own records whole; a third agency with no
/// grant sees no category at all.
async fn owner_sees_all_third_agency_sees_nothing(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Owner").await;
    node.grant(&survivor, SHELTER, &CATEGORIES, &[PURPOSE], json!({}))
        .await;

    let owner = node.caseworker(OWNER);
    let (shown, withheld) = node
        .read_survivor(&owner, "CASE_MANAGEMENT", &survivor)
        .await
        .survivor_view("survivor");
    assert_eq!(shown.len(), 5, "owner sees every category");
    assert!(withheld.is_empty());

    for third in [LEGAL, CLINIC, POLICE] {
        let token = node.caseworker(third);
        let response = node.read_survivor(&token, PURPOSE, &survivor).await;
        let (shown, withheld) = response.survivor_view("survivor");
        assert!(
            shown.is_empty(),
            "{third} must see nothing: {}",
            response.body
        );
        assert_eq!(withheld.len(), 5);
    }
}

/// Grant, read, revoke, read again: the second read withholds.
async fn revocation_takes_effect_on_next_request(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Revoke").await;
    let grant = node
        .grant(
            &survivor,
            SHELTER,
            &["IDENTITY", "CASE"],
            &[PURPOSE],
            json!({}),
        )
        .await;
    let requester = node.caseworker(SHELTER);

    let (shown, _) = node
        .read_survivor(&requester, PURPOSE, &survivor)
        .await
        .survivor_view("survivor");
    assert_eq!(shown, vec!["IDENTITY", "CASE"]);

    node.revoke(&grant).await;
    let response = node.read_survivor(&requester, PURPOSE, &survivor).await;
    let (shown, withheld) = response.survivor_view("survivor");
    assert!(
        shown.is_empty(),
        "revoked grant still disclosed: {}",
        response.body
    );
    assert!(withheld.contains(&("IDENTITY".into(), "GRANT_REVOKED".into())));
    assert!(withheld.contains(&("CASE".into(), "GRANT_REVOKED".into())));
}

/// Auditors never see a category, even of their own agency's records.
async fn auditor_sees_no_category(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Audited").await;
    for (agency, purpose) in [
        (OWNER, "AUDIT"),
        (OVERSIGHT, "AUDIT"),
        (OWNER, "CASE_MANAGEMENT"),
    ] {
        let token = node.token(agency, &[Role::Auditor]);
        let response = node.read_survivor(&token, purpose, &survivor).await;
        let (shown, _) = response.survivor_view("survivor");
        assert!(shown.is_empty(), "auditor of {agency} saw {shown:?}");
    }
}

/// `_entities` goes through the same decision as `survivor(id)`: for every
/// requester, the same categories come back.
async fn entities_disclose_no_more_than_survivor(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Entity").await;
    node.grant(
        &survivor,
        SHELTER,
        &["IDENTITY", "HEALTH"],
        &[PURPOSE],
        json!({}),
    )
    .await;
    let entities = "query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Survivor { \
        id owner identity { givenName familyName } contact { currentLocation phone } case { riskLevel } \
        health { medicalNotes } legal { immigrationStatus } withheld { category reason } breakGlass } } }";
    for agency in [OWNER, SHELTER, LEGAL, POLICE] {
        let token = node.caseworker(agency);
        let purpose = if agency == OWNER {
            "CASE_MANAGEMENT"
        } else {
            PURPOSE
        };
        let direct = node.read_survivor(&token, purpose, &survivor).await;
        let via_entities = node
            .gql(
                Some(&token),
                Some(purpose),
                entities,
                json!({ "reps": [{ "__typename": "Survivor", "id": survivor }] }),
            )
            .await;
        assert_eq!(
            direct.data()["survivor"],
            via_entities.data()["_entities"][0],
            "{agency}: _entities differs from survivor(id)"
        );
    }
}

/// A policy rule no consent can override: CONTACT (where the survivor is)
/// never goes to an agency that does not provide shelter or protection, even
/// under an active grant.
async fn policy_overrides_consent_for_location(backend: Backend) {
    let node = TestNode::start(backend).await;
    let survivor = node.register_full_survivor("Located").await;
    node.grant(
        &survivor,
        LEGAL,
        &["CONTACT", "LEGAL"],
        &["LEGAL_ASSISTANCE"],
        json!({}),
    )
    .await;
    let response = node
        .read_survivor(&node.caseworker(LEGAL), "LEGAL_ASSISTANCE", &survivor)
        .await;
    let (shown, withheld) = response.survivor_view("survivor");
    assert_eq!(shown, vec!["LEGAL"]);
    assert!(withheld.contains(&("CONTACT".into(), "FORBIDDEN_BY_POLICY".into())));
}

/// Listing survivors is for the owning agency only; the page is disclosed
/// record by record through the same path.
async fn survivors_list_is_owner_only_and_paginated(backend: Backend) {
    let node = TestNode::start(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(node.register_full_survivor(&format!("Listed {i}")).await);
    }
    let owner = node.caseworker(OWNER);
    let query = "query($after: String) { survivors(first: 2, after: $after) { \
        edges { cursor node { id identity { givenName } } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let page = node
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                query,
                json!({ "after": after }),
            )
            .await;
        let conn = &page.data()["survivors"];
        for edge in conn["edges"].as_array().unwrap() {
            assert!(edge["node"]["identity"]["givenName"].is_string());
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids, "every survivor once, in registration order");

    let other = node
        .gql(
            Some(&node.caseworker(SHELTER)),
            Some(PURPOSE),
            query,
            json!({}),
        )
        .await;
    assert_eq!(other.code(), "FORBIDDEN");
}

on_both_backends!(
    consent_matrix,
    owner_sees_all_third_agency_sees_nothing,
    revocation_takes_effect_on_next_request,
    auditor_sees_no_category,
    entities_disclose_no_more_than_survivor,
    policy_overrides_consent_for_location,
    survivors_list_is_owner_only_and_paginated,
);

//! The coded intake: every coded field takes only its vocabulary's values
//! (an invalid one is `BAD_USER_INPUT` naming the field, and nothing is
//! written), valid values come back in canonical form, and records stored
//! before the vocabularies are upgraded, with what does not map kept as
//! text, each upgrade audited, and the log still verifying.

use serde_json::{Value, json};

use crate::common::*;

const REGISTER: &str = "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { \
    id identity { dateOfBirth ageBand sex genderIdentity genderSelfDescription nationality languages \
    unmapped { field text } } case { exploitationTypes exploitationOther countriesOfExploitation } \
    health { functioning { seeing walking selfCare } } } }";

const READ: &str = "query($id: ID!) { survivor(id: $id) { identity { givenName genderIdentity \
    nationality languages ageBand unmapped { field text } } case { exploitationTypes \
    unmapped { field text } } } }";

fn input(identity: Value, case: Value) -> Value {
    let mut identity_input = json!({ "givenName": "Coded" });
    identity_input
        .as_object_mut()
        .unwrap()
        .extend(identity.as_object().unwrap().clone());
    let mut input = json!({ "input": { "identity": identity_input } });
    if !case.is_null() {
        let mut case_input = json!({ "riskLevel": "LOW" });
        case_input
            .as_object_mut()
            .unwrap()
            .extend(case.as_object().unwrap().clone());
        input["input"]["case"] = case_input;
    }
    input
}

/// Each invalid coded value is refused with `BAD_USER_INPUT`, and the
/// message names the field it was given for; no survivor is written.
async fn an_invalid_code_is_refused_naming_its_field(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let before = node.count("survivors").await;
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "nationality as a name",
            json!({ "nationality": "Nigeria" }),
            Value::Null,
            "identity.nationality",
        ),
        (
            "unassigned country",
            json!({ "nationality": "XX" }),
            Value::Null,
            "identity.nationality",
        ),
        (
            "lower-case country",
            json!({ "nationality": "ng" }),
            Value::Null,
            "identity.nationality",
        ),
        (
            "language as a name",
            json!({ "languages": ["en", "Romanian"] }),
            Value::Null,
            "identity.languages",
        ),
        (
            "malformed language",
            json!({ "languages": ["en_GB"] }),
            Value::Null,
            "identity.languages",
        ),
        ("unknown sex", json!({ "sex": "F" }), Value::Null, "sex"),
        (
            "unknown gender identity",
            json!({ "genderIdentity": "female" }),
            Value::Null,
            "genderIdentity",
        ),
        (
            "self-description without SELF_DESCRIBED",
            json!({ "genderIdentity": "WOMAN", "genderSelfDescription": "woman" }),
            Value::Null,
            "identity.genderSelfDescription",
        ),
        (
            "SELF_DESCRIBED without a description",
            json!({ "genderIdentity": "SELF_DESCRIBED" }),
            Value::Null,
            "identity.genderSelfDescription",
        ),
        (
            "age band contradicting the date of birth",
            json!({ "dateOfBirth": "2000-01-01", "ageBand": "AGE_0_11" }),
            Value::Null,
            "identity.ageBand",
        ),
        (
            "date of birth in the future",
            json!({ "dateOfBirth": "2999-01-01" }),
            Value::Null,
            "identity.dateOfBirth",
        ),
        (
            "unknown age band",
            json!({ "ageBand": "ADULT" }),
            Value::Null,
            "ageBand",
        ),
        (
            "free-text exploitation type",
            json!({}),
            json!({ "exploitationTypes": ["labour"] }),
            "exploitationTypes",
        ),
        (
            "other text without OTHER",
            json!({}),
            json!({ "exploitationTypes": ["FORCED_LABOUR"], "exploitationOther": "scam compound" }),
            "case.exploitationOther",
        ),
        (
            "country of exploitation not a code",
            json!({}),
            json!({ "countriesOfExploitation": ["DE", "Germany"] }),
            "case.countriesOfExploitation",
        ),
        (
            "stateless is no country",
            json!({}),
            json!({ "countriesOfExploitation": ["STATELESS"] }),
            "case.countriesOfExploitation",
        ),
    ];
    for (name, identity, case, field) in cases {
        let response = node
            .gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                REGISTER,
                input(identity, case),
            )
            .await;
        assert_eq!(
            response.code(),
            "BAD_USER_INPUT",
            "{name}: {}",
            response.body
        );
        let message = response.errors()[0]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(field),
            "{name}: {message} does not name {field}"
        );
    }
    let bad_level = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            REGISTER,
            json!({ "input": { "identity": { "givenName": "Coded" },
                               "health": { "functioning": { "walking": "A_LITTLE" } } } }),
        )
        .await;
    assert_eq!(bad_level.code(), "BAD_USER_INPUT", "{}", bad_level.body);
    assert!(
        bad_level.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("walking")
    );
    assert_eq!(
        node.count("survivors").await,
        before,
        "nothing half-written"
    );
}

/// Valid codes are stored and come back in canonical form: language tags in
/// their canonical case, the age band a date of birth gives, the
/// Washington Group answers as given.
async fn valid_codes_come_back_in_canonical_form(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let mut registered = input(
        json!({ "dateOfBirth": "2010-06-15", "sex": "INTERSEX", "genderIdentity": "SELF_DESCRIBED",
                "genderSelfDescription": "two-spirit", "nationality": "STATELESS",
                "languages": ["PT-br", "sr-latn", "ro"] }),
        json!({ "exploitationTypes": ["FORCED_BEGGING", "OTHER"], "exploitationOther": "scam compound",
                "countriesOfExploitation": ["MM", "UNKNOWN"] }),
    );
    registered["input"]["health"] =
        json!({ "functioning": { "walking": "CANNOT_DO_AT_ALL", "seeing": "NO_DIFFICULTY" } });
    let response = node
        .gql(Some(&owner), Some("CASE_MANAGEMENT"), REGISTER, registered)
        .await;
    let survivor = &response.data()["registerSurvivor"];
    let identity = &survivor["identity"];
    assert_eq!(identity["languages"], json!(["pt-BR", "sr-Latn", "ro"]));
    assert_eq!(
        identity["ageBand"], "AGE_12_17",
        "a child, from the date of birth"
    );
    assert_eq!(identity["sex"], "INTERSEX");
    assert_eq!(identity["genderSelfDescription"], "two-spirit");
    assert_eq!(identity["nationality"], "STATELESS");
    assert_eq!(identity["unmapped"], json!([]));
    assert_eq!(
        survivor["case"]["exploitationTypes"],
        json!(["FORCED_BEGGING", "OTHER"])
    );
    assert_eq!(
        survivor["case"]["countriesOfExploitation"],
        json!(["MM", "UNKNOWN"])
    );
    assert_eq!(
        survivor["health"]["functioning"],
        json!({ "seeing": "NO_DIFFICULTY", "walking": "CANNOT_DO_AT_ALL", "selfCare": null })
    );
    // Without a date of birth, the age band is as given.
    let response = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            REGISTER,
            input(json!({ "ageBand": "AGE_25_34" }), Value::Null),
        )
        .await;
    assert_eq!(
        response.data()["registerSurvivor"]["identity"]["ageBand"],
        "AGE_25_34"
    );
}

/// A record stored before the coded vocabularies (free-text gender,
/// nationality, languages and exploitation types) is upgraded: what maps,
/// maps; the rest is kept as unmapped text and the coded field reads
/// unknown. Each upgraded record has a `RECORD_UPGRADED` entry; running the
/// upgrade again changes nothing; the log verifies.
async fn records_stored_before_the_vocabularies_are_upgraded(backend: Backend) {
    let node = TestNode::start(backend).await;
    let owner = node.caseworker(OWNER);
    let coded = node.register_full_survivor("Already coded").await;
    let legacy = [
        (
            "legacy-1",
            json!({ "given_name": "Old One", "date_of_birth": "1990-05-01", "nationality": "Nigeria",
                    "gender": "female", "languages": ["EN", "Yoruba"] }),
            json!({ "exploitation_types": ["labour", "online scam compound"], "risk_level": "HIGH",
                    "intake_date": null, "needs": [], "summary": null }),
        ),
        (
            "legacy-2",
            json!({ "given_name": "Old Two", "nationality": "Invented", "gender": "two-spirit",
                    "languages": [] }),
            json!({ "exploitation_types": ["domestic servitude"], "risk_level": "LOW",
                    "intake_date": null, "needs": [], "summary": null }),
        ),
    ];
    for (id, identity, case) in &legacy {
        sqlx::query(
            "INSERT INTO survivors (id, created_at, updated_at, created_by, identity, case_details) \
             VALUES ($1, 0, 0, 'older-version', $2, $3)",
        )
        .bind(*id)
        .bind(identity.to_string())
        .bind(case.to_string())
        .execute(node.state.db.pool())
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM data_upgrades")
        .execute(node.state.db.pool())
        .await
        .unwrap();
    let upgrade = || {
        agency_node::store::coded_intake::upgrade_once(
            &node.state.db,
            &node.state.audit,
            &node.state.agency,
        )
    };
    assert_eq!(
        upgrade().await.unwrap(),
        2,
        "the two legacy records, not the coded one"
    );
    assert_eq!(
        node.count("data_upgrades").await,
        1,
        "the upgrade is marked done"
    );
    sqlx::query("DELETE FROM data_upgrades")
        .execute(node.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        upgrade().await.unwrap(),
        0,
        "an upgraded record stays as it is"
    );
    assert_eq!(upgrade().await.unwrap(), 0);

    // Records from before encryption at rest are sealed at the next start,
    // each survivor once; the coded one already was.
    let seal = || {
        agency_node::store::sealing::upgrade_once(
            &node.state.db,
            &node.state.vault,
            &node.state.audit,
            &node.state.agency,
        )
    };
    assert_eq!(seal().await.unwrap(), 2, "the two legacy records");
    sqlx::query("DELETE FROM data_upgrades WHERE name = 'SEALED_AT_REST'")
        .execute(node.state.db.pool())
        .await
        .unwrap();
    assert_eq!(seal().await.unwrap(), 0, "a sealed record stays as it is");
    let raw: Vec<String> = {
        use sqlx::Row as _;
        sqlx::query("SELECT identity FROM survivors WHERE id LIKE 'legacy-%'")
            .fetch_all(node.state.db.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("identity"))
            .collect()
    };
    assert_eq!(raw.len(), 2);
    assert!(
        raw.iter()
            .all(|r| r.starts_with("sealed:v1:") && !r.contains("Old")),
        "{raw:?}"
    );

    let read = |id: String| {
        let owner = owner.clone();
        let node = &node;
        async move {
            node.gql(
                Some(&owner),
                Some("CASE_MANAGEMENT"),
                READ,
                json!({ "id": id }),
            )
            .await
        }
    };
    let one = read(format!("{OWNER}:legacy-1")).await;
    let one = &one.data()["survivor"];
    assert_eq!(one["identity"]["genderIdentity"], "WOMAN");
    assert_eq!(one["identity"]["nationality"], "NG");
    assert_eq!(one["identity"]["languages"], json!(["en"]));
    assert_eq!(one["identity"]["ageBand"], "AGE_35_44");
    assert_eq!(
        one["identity"]["unmapped"],
        json!([{ "field": "identity.languages", "text": "Yoruba" }])
    );
    assert_eq!(one["case"]["exploitationTypes"], json!(["FORCED_LABOUR"]));
    assert_eq!(
        one["case"]["unmapped"],
        json!([{ "field": "case.exploitationTypes", "text": "online scam compound" }])
    );
    let two = read(format!("{OWNER}:legacy-2")).await;
    let two = &two.data()["survivor"];
    assert_eq!(two["identity"]["genderIdentity"], "UNKNOWN");
    assert_eq!(two["identity"]["nationality"], "UNKNOWN");
    assert_eq!(
        two["identity"]["unmapped"],
        json!([
            { "field": "identity.gender", "text": "two-spirit" },
            { "field": "identity.nationality", "text": "Invented" },
        ])
    );
    assert_eq!(
        two["case"]["exploitationTypes"],
        json!(["DOMESTIC_SERVITUDE"])
    );
    assert!(read(coded).await.data()["survivor"]["identity"]["unmapped"] == json!([]));

    // Coding the category afterwards keeps the text the upgrade kept.
    let update = node
        .gql(
            Some(&owner),
            Some("CASE_MANAGEMENT"),
            "mutation($id: ID!, $input: UpdateSurvivorInput!) { updateSurvivor(id: $id, input: $input) { \
             identity { nationality unmapped { field text } } } }",
            json!({ "id": format!("{OWNER}:legacy-2"),
                    "input": { "identity": { "givenName": "Old Two", "nationality": "MD" } } }),
        )
        .await;
    let identity = &update.data()["updateSurvivor"]["identity"];
    assert_eq!(identity["nationality"], "MD");
    assert_eq!(identity["unmapped"], two["identity"]["unmapped"]);

    let upgraded: Vec<_> = node
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == exchange_schema::AuditKind::RecordUpgraded)
        .collect();
    assert_eq!(upgraded.len(), 4);
    for event in &upgraded {
        assert!(["CODED_INTAKE", "SEALED_AT_REST"].contains(&event.reason.as_str()));
        let text = serde_json::to_string(event).unwrap();
        for content in ["Nigeria", "Yoruba", "two-spirit", "Invented", "Old One"] {
            assert!(
                !text.contains(content),
                "an entry holds no contents: {text}"
            );
        }
    }
    // A stored category that is not a JSON object stops the upgrade with an
    // error naming the survivor, and nothing is rewritten.
    sqlx::query(
        "INSERT INTO survivors (id, created_at, updated_at, created_by, identity) \
         VALUES ('broken-1', 0, 0, 'older-version', '[1]')",
    )
    .execute(node.state.db.pool())
    .await
    .unwrap();
    let entries = node.count("audit_log").await;
    let err = agency_node::store::coded_intake::upgrade(
        &node.state.db,
        &node.state.audit,
        &node.state.agency,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("survivor broken-1"), "{err}");
    assert_eq!(node.count("audit_log").await, entries);
    sqlx::query("DELETE FROM survivors WHERE id = 'broken-1'")
        .execute(node.state.db.pool())
        .await
        .unwrap();

    let key = node.state.audit.public_key_hex();
    let (ok, out) = node.cli(&[
        "audit",
        "verify",
        "--database",
        &node.database_url,
        "--public-key",
        &key,
    ]);
    assert!(ok, "{out}");
}

on_both_backends!(
    an_invalid_code_is_refused_naming_its_field,
    valid_codes_come_back_in_canonical_form,
    records_stored_before_the_vocabularies_are_upgraded,
);

//! The federation file and the development identity provider: what loads,
//! what is refused, and that every refusal names the agency and the field.

use crate::common::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use exchange_schema::{AgencyKind, Role, ServiceKind};
use exchange_trust::{
    DevFederation, DevIdentityProvider, Federation, MintRequest, SigningKey, TokenAlgorithm,
    TokenVerifier, TrustError,
};

fn agency_toml(id: &str, issuer: &str, key: &str) -> String {
    format!(
        r#"
[[agency]]
id = "{id}"
name = "Agency {id}"
kind = "SHELTER"
services = ["SHELTER"]
languages = ["en"]
region = "North"
issuer = "{issuer}"
[[agency.keys]]
{key}
"#
    )
}

fn inline_pem(key: &SigningKey) -> String {
    format!("pem = \"\"\"\n{}\"\"\"", key.public_key_pem())
}

fn load(text: &str) -> Result<Federation, TrustError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "federation.toml", text);
    Federation::load(dir.path().join("federation.toml"))
}

fn load_err(text: &str) -> String {
    load(text).expect_err("should be refused").to_string()
}

fn ed() -> SigningKey {
    SigningKey::generate(TokenAlgorithm::EdDsa).unwrap()
}

#[test]
fn dev_federation_round_trips() {
    let fx = fixture();
    let f = &fx.dev.federation;
    assert_eq!(f.audience(), AUDIENCE);
    assert_eq!(f.agencies().len(), 4);
    let shelter = f.agency(&id("shelter-north")).unwrap();
    assert_eq!(shelter.kind, AgencyKind::Shelter);
    assert_eq!(
        shelter.services,
        vec![ServiceKind::Shelter, ServiceKind::Psychosocial]
    );
    assert_eq!(shelter.languages, vec!["en", "es"]);
    assert_eq!(shelter.node_url.as_deref(), Some("https://127.0.0.1:7101"));
    assert_eq!(shelter.tls_identity.as_deref(), Some("node.shelter-north"));
    assert_eq!(shelter.keys.len(), 1);
    assert_eq!(shelter.keys[0].algorithm(), TokenAlgorithm::EdDsa);
    assert_eq!(shelter.keys[0].kid(), Some(fx.idp("shelter-north").kid()));
    let by_issuer = f
        .agency_by_issuer(fx.idp("shelter-north").issuer())
        .unwrap();
    assert_eq!(by_issuer.id, shelter.id);
    assert!(f.agency_by_issuer("https://idp.nobody.example").is_none());
    assert!(f.agency(&id("nobody")).is_none());
    assert_eq!(fx.dev.path, fx.dir.path().join("federation.toml"));

    // Loading the written file again gives the same directory.
    let again = Federation::load(&fx.dev.path).unwrap();
    assert_eq!(again.agencies().len(), 4);

    // Re-creating reuses the keys: old tokens still verify.
    let token = fx
        .idp("clinic-east")
        .mint(&MintRequest::new(
            id("clinic-east"),
            "dr-b",
            vec![Role::Caseworker],
            AUDIENCE,
        ))
        .unwrap();
    let recreated = DevFederation::create(fx.dir.path(), &specs(), AUDIENCE).unwrap();
    let p = TokenVerifier::new(recreated.federation)
        .verify(&token)
        .unwrap();
    assert_eq!(p.agency_kind, AgencyKind::HealthClinic);
}

#[cfg(unix)]
#[test]
fn dev_private_keys_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let idp = DevIdentityProvider::load_or_generate(dir.path(), &id("shelter-north")).unwrap();
    let mode = std::fs::metadata(idp.private_key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(idp.public_key_path()).unwrap();
    assert_eq!(public, idp.public_key_pem());
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let private = std::fs::read_to_string(idp.private_key_path()).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(!format!("{idp:?}").contains(private.lines().nth(1).unwrap()));

    // Loaded again: same key.
    let again = DevIdentityProvider::load_or_generate(dir.path(), &id("shelter-north")).unwrap();
    assert_eq!(again.public_key_pem(), idp.public_key_pem());
    assert_eq!(again.kid(), idp.kid());
    assert_eq!(again.issuer(), "https://dev-idp.shelter-north.example");

    // A key others can read is refused.
    std::fs::set_permissions(
        idp.private_key_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = DevIdentityProvider::load_or_generate(dir.path(), &id("shelter-north")).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn example_from_the_design_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let key = ed();
    write(
        &dir.path().join("keys"),
        "shelter-north-idp.pub.pem",
        &key.public_key_pem(),
    );
    let text = r#"
audience = "survivor-exchange"          # expected `aud` of every token in this federation
[[agency]]
id = "shelter-north"
name = "North Star Shelter"
kind = "SHELTER"
services = ["SHELTER", "PSYCHOSOCIAL"]
languages = ["en", "es"]
region = "North"
node_url = "https://127.0.0.1:7101"
tls_identity = "node.shelter-north"
issuer = "https://idp.shelter-north.example"
[[agency.keys]]
kid = "2026-01"
pem_file = "keys/shelter-north-idp.pub.pem"
"#;
    write(dir.path(), "federation.toml", text);
    let f = Federation::load(dir.path().join("federation.toml")).unwrap();
    assert_eq!(f.agencies()[0].keys[0].kid(), Some("2026-01"));
}

#[test]
fn duplicates_are_refused() {
    let a = agency_toml("shelter-north", "https://idp.a.example", &inline_pem(&ed()));
    let b = agency_toml("shelter-north", "https://idp.b.example", &inline_pem(&ed()));
    let err = load_err(&format!("audience = \"x\"\n{a}{b}"));
    assert!(
        err.contains("shelter-north") && err.contains("more than once"),
        "{err}"
    );

    let b = agency_toml("clinic-east", "https://idp.a.example", &inline_pem(&ed()));
    let err = load_err(&format!("audience = \"x\"\n{a}{b}"));
    assert!(
        err.contains("https://idp.a.example") && err.contains("clinic-east"),
        "{err}"
    );

    let key = ed();
    let two_keys = format!(
        "kid = \"k1\"\n{}\n[[agency.keys]]\nkid = \"k1\"\n{}",
        inline_pem(&key),
        inline_pem(&ed())
    );
    let err = load_err(&format!(
        "audience = \"x\"\n{}",
        agency_toml("clinic-east", "https://i", &two_keys)
    ));
    assert!(
        err.contains("clinic-east") && err.contains("keys[1].kid"),
        "{err}"
    );
}

#[test]
fn bad_fields_name_the_agency_and_the_field() {
    let good = agency_toml("shelter-north", "https://idp.a.example", &inline_pem(&ed()));
    let cases: &[(&str, &str, &str)] = &[
        ("kind = \"SHELTER\"", "kind = \"SPA\"", "field `kind`"),
        (
            "services = [\"SHELTER\"]",
            "services = [\"SHELTER\", \"MASSAGE\"]",
            "field `services[1]`",
        ),
        (
            "languages = [\"en\"]",
            "languages = [\"e n\"]",
            "field `languages[0]`",
        ),
        ("region = \"North\"", "region = \"\"", "field `region`"),
        (
            "name = \"Agency shelter-north\"",
            "name = \" \"",
            "field `name`",
        ),
        (
            "issuer = \"https://idp.a.example\"",
            "issuer = \"\"",
            "field `issuer`",
        ),
        (
            "region = \"North\"",
            "region = \"North\"\nnode_url = \"ftp://x\"",
            "field `node_url`",
        ),
        (
            "region = \"North\"",
            "region = \"North\"\nnode_url = \"https://user:pw@host\"",
            "field `node_url`",
        ),
        (
            "region = \"North\"",
            "region = \"North\"\ntls_identity = \"not a name\"",
            "field `tls_identity`",
        ),
    ];
    for (from, to, expect) in cases {
        let text = format!("audience = \"x\"\n{}", good.replace(from, to));
        let err = load_err(&text);
        assert!(err.contains("agency `shelter-north`"), "{to}: {err}");
        assert!(err.contains(expect), "{to}: {err}");
    }
    let err = load_err(&format!(
        "audience = \"x\"\n{}",
        good.replace("shelter-north\"", "Shelter North\"")
    ));
    assert!(
        err.contains("agency[0]") && err.contains("field `id`"),
        "{err}"
    );
}

#[test]
fn file_level_errors() {
    let good = agency_toml("shelter-north", "https://idp.a.example", &inline_pem(&ed()));
    // Unknown fields, at every level.
    for (from, to) in [
        ("region = \"North\"", "region = \"North\"\ncolour = \"red\""),
        ("[[agency.keys]]\n", "[[agency.keys]]\nalg = \"HS256\"\n"),
    ] {
        let err = load_err(&format!("audience = \"x\"\n{}", good.replace(from, to)));
        assert!(err.contains("unknown field"), "{err}");
    }
    let err = load_err(&format!("audience = \"x\"\nissuers = []\n{good}"));
    assert!(err.contains("unknown field"), "{err}");
    // Missing or bad audience, no agency.
    let err = load_err(&good);
    assert!(err.contains("audience"), "{err}");
    let err = load_err(&format!("audience = \"a b\"\n{good}"));
    assert!(err.contains("audience"), "{err}");
    let err = load_err("audience = \"x\"\n");
    assert!(err.contains("no agency"), "{err}");
    // Missing file.
    let err = Federation::load("/nonexistent/federation.toml").unwrap_err();
    assert!(matches!(err, TrustError::Io { .. }), "{err}");
}

/// A `jwks_ca_file` is read when the federation loads: a file with no
/// certificate, one whose certificate block is not base64, and one whose
/// block is not an X.509 certificate are each refused then, naming the field
/// and which certificate; a file of real CA certificates loads and is kept.
#[test]
fn a_jwks_ca_file_is_refused_at_load_unless_every_certificate_in_it_is_usable() {
    let good = agency_toml("shelter-north", "https://idp.a.example", &inline_pem(&ed()));
    let ca = |name: &str| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    };
    let with_ca = |pem: &str| {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.pem", pem);
        write(
            dir.path(),
            "federation.toml",
            &format!("audience = \"x\"\njwks_ca_file = \"ca.pem\"\n{good}"),
        );
        Federation::load(dir.path().join("federation.toml"))
    };
    let first = ca("Federation CA");
    let both = format!("{first}{}", ca("Federation CA, next"));
    let loaded = with_ca(&both).expect("two CA certificates load");
    assert_eq!(loaded.jwks_ca_pem(), Some(both.as_str()));

    let body =
        |text: &str| format!("-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n");
    for (pem, why) in [
        ("just text\n".to_owned(), "holds no PEM certificate"),
        (
            format!("{first}{}", body("not base64 !!")),
            "certificate 2 is not readable PEM",
        ),
        (
            body("bm90IGEgY2VydGlmaWNhdGU="),
            "certificate 1 is not a usable CA certificate",
        ),
    ] {
        let err = with_ca(&pem)
            .expect_err("a bad jwks_ca_file loads")
            .to_string();
        assert!(err.contains("jwks_ca_file"), "{err}");
        assert!(err.contains("ca.pem"), "{err}");
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[test]
fn bad_keys_are_refused() {
    let private_pem = ed().private_key_pem();
    let p384 = {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, doc.as_ref()).unwrap();
        let der = pair.public_key().as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    };
    let two = format!("{}{}", ed().public_key_pem(), ed().public_key_pem());
    let cert_label = ed().public_key_pem().replace("PUBLIC KEY", "CERTIFICATE");
    let cases: Vec<(String, &str)> = vec![
        (format!("pem = \"\"\"\n{private_pem}\"\"\""), "private key"),
        (format!("pem = \"\"\"\n{p384}\"\"\""), "P-256"),
        (format!("pem = \"\"\"\n{two}\"\"\""), "PEM"),
        (format!("pem = \"\"\"\n{cert_label}\"\"\""), "CERTIFICATE"),
        ("pem = \"hello\"".into(), "PEM"),
        ("pem_file = \"missing.pem\"".into(), "keys[0].pem_file"),
        ("jwks_file = \"missing.json\"".into(), "keys[0].jwks_file"),
        ("kid = \"a\"".into(), "exactly one of"),
        (
            format!("pem_file = \"x.pem\"\n{}", inline_pem(&ed())),
            "exactly one of",
        ),
        (format!("kid = \"a b\"\n{}", inline_pem(&ed())), "kid"),
    ];
    for (key, expect) in cases {
        let text = format!(
            "audience = \"x\"\n{}",
            agency_toml("clinic-east", "https://i", &key)
        );
        let err = load_err(&text);
        assert!(err.contains("clinic-east"), "{key}: {err}");
        assert!(err.contains(expect), "{key}: {err}");
    }
    let err = load_err(&format!(
        "audience = \"x\"\n{}",
        agency_toml("clinic-east", "https://i", "").replace("[[agency.keys]]\n", "keys = []\n")
    ));
    assert!(err.contains("at least one key"), "{err}");
}

#[test]
fn bad_jwks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ed_jwk = ed().with_kid("e1").public_jwk();
    let mut wrong_alg = ed_jwk.clone();
    wrong_alg["alg"] = "RS256".into();
    let mut p384 = SigningKey::generate(TokenAlgorithm::Es256)
        .unwrap()
        .public_jwk();
    p384["crv"] = "P-384".into();
    let mut off_curve = SigningKey::generate(TokenAlgorithm::Es256)
        .unwrap()
        .public_jwk();
    off_curve["y"] = off_curve["x"].clone();
    let cases = [
        (
            serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "unsupported key type",
        ),
        (serde_json::json!({"keys": []}), "no signing key"),
        (serde_json::json!({"nokeys": []}), "keys"),
        (serde_json::json!({"keys": [wrong_alg]}), "alg"),
        (serde_json::json!({"keys": [p384]}), "P-256"),
        (serde_json::json!({"keys": [off_curve]}), "ES256"),
        (
            serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            "2048",
        ),
        (
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "X25519", "x": "AAAA"}]}),
            "unsupported",
        ),
    ];
    for (i, (jwks, expect)) in cases.iter().enumerate() {
        write(dir.path(), &format!("{i}.json"), &jwks.to_string());
        let text = format!(
            "audience = \"x\"\n{}",
            agency_toml(
                "clinic-east",
                "https://i",
                &format!("jwks_file = \"{i}.json\"")
            )
        );
        write(dir.path(), "federation.toml", &text);
        let err = Federation::load(dir.path().join("federation.toml"))
            .expect_err("should be refused")
            .to_string();
        assert!(
            err.contains("clinic-east") && err.contains("jwks_file"),
            "{jwks}: {err}"
        );
        assert!(err.contains(expect), "{jwks}: {err}");
    }
    // kid next to jwks_file is refused.
    write(
        dir.path(),
        "ok.json",
        &serde_json::json!({"keys": [ed_jwk]}).to_string(),
    );
    let text = format!(
        "audience = \"x\"\n{}",
        agency_toml(
            "clinic-east",
            "https://i",
            "kid = \"k\"\njwks_file = \"ok.json\""
        )
    );
    write(dir.path(), "federation.toml", &text);
    let err = Federation::load(dir.path().join("federation.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("keys[0].kid"), "{err}");
}

#[test]
fn rsa_pkcs1_public_key_pem_is_accepted() {
    // `RSA PUBLIC KEY` (PKCS#1), as `openssl rsa -RSAPublicKey_out` writes.
    let key = SigningKey::generate(TokenAlgorithm::Rs256).unwrap();
    let spki_pem = key.public_key_pem();
    let body: String = spki_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let spki = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pkcs1 = aws_lc_rs::rsa::PublicKey::from_der(&spki).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs1.as_ref());
    let pem = format!("-----BEGIN RSA PUBLIC KEY-----\n{b64}\n-----END RSA PUBLIC KEY-----\n");
    let f = load(&format!(
        "audience = \"x\"\n{}",
        agency_toml(
            "clinic-east",
            "https://i",
            &format!("pem = \"\"\"\n{pem}\"\"\"")
        )
    ))
    .unwrap();
    assert_eq!(f.agencies()[0].keys[0].algorithm(), TokenAlgorithm::Rs256);
}

/// A webhook loads with its secret (never printed); a plain-HTTP endpoint
/// off loopback, a short secret and a missing secret file are refused,
/// naming the agency and the field.
#[test]
fn a_webhook_needs_https_and_a_long_secret_that_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let key = ed();
    let long = "s".repeat(40);
    write(dir.path(), "long.secret", &long);
    write(dir.path(), "short.secret", "too-short");
    let with_hook = |url: &str, file: &str| {
        format!(
            "audience = \"x\"\n{}[agency.webhook]\nurl = \"{url}\"\nsecret_file = \"{file}\"\n",
            agency_toml("clinic", "https://idp.clinic", &inline_pem(&key))
        )
    };
    let load_in = |text: String| {
        write(dir.path(), "federation.toml", &text);
        Federation::load(dir.path().join("federation.toml"))
    };
    let ok = load_in(with_hook("https://clinic.example/hooks", "long.secret")).unwrap();
    let hook = ok.agencies()[0].webhook.as_ref().expect("a webhook");
    assert_eq!(hook.secret(), long.as_bytes());
    assert!(
        !format!("{hook:?}").contains(&long),
        "the secret is never printed"
    );
    assert!(load_in(with_hook("http://127.0.0.1:9/hook", "long.secret")).is_ok());
    for (url, file, field) in [
        ("http://clinic.example/hooks", "long.secret", "webhook.url"),
        (
            "https://clinic.example/hooks",
            "short.secret",
            "webhook.secret_file",
        ),
        (
            "https://clinic.example/hooks",
            "missing.secret",
            "webhook.secret_file",
        ),
    ] {
        let err = load_in(with_hook(url, file)).expect_err(url).to_string();
        assert!(err.contains("clinic") && err.contains(field), "{err}");
    }
}

//! Shared fixtures: a development federation of four agencies in a temporary
//! directory, plus helpers to build claims and hand-made tokens.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::{AgencyId, AgencyKind, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation, DevIdentityProvider, TokenVerifier};
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;

pub const AUDIENCE: &str = "survivor-exchange";

pub struct Fixture {
    pub dir: TempDir,
    pub dev: DevFederation,
    pub verifier: TokenVerifier,
}

impl Fixture {
    pub fn idp(&self, agency: &str) -> &DevIdentityProvider {
        self.dev.provider(&id(agency)).expect("agency in fixture")
    }
}

pub fn id(raw: &str) -> AgencyId {
    AgencyId::parse(raw).expect("valid agency id")
}

pub fn spec(raw: &str, kind: AgencyKind, services: &[ServiceKind], port: u16) -> AgencySpec {
    AgencySpec {
        id: id(raw),
        name: format!("{raw} (test)"),
        kind,
        services: services.to_vec(),
        languages: vec!["en".into(), "es".into()],
        region: "North".into(),
        node_url: Some(format!("https://127.0.0.1:{port}")),
        tls_identity: Some(format!("node.{raw}")),
        webhook: None,
    }
}

pub fn specs() -> Vec<AgencySpec> {
    vec![
        spec(
            "shelter-north",
            AgencyKind::Shelter,
            &[ServiceKind::Shelter, ServiceKind::Psychosocial],
            7101,
        ),
        spec(
            "legal-aid-south",
            AgencyKind::LegalAid,
            &[ServiceKind::LegalAid],
            7102,
        ),
        spec(
            "clinic-east",
            AgencyKind::HealthClinic,
            &[ServiceKind::Medical],
            7103,
        ),
        spec("police-central", AgencyKind::LawEnforcement, &[], 7104),
    ]
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = DevFederation::create(dir.path(), &specs(), AUDIENCE).expect("dev federation");
    let verifier = TokenVerifier::new(dev.federation.clone());
    Fixture { dir, dev, verifier }
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Valid claims for `idp`'s agency, issued now, valid one hour.
pub fn claims(idp: &DevIdentityProvider) -> Value {
    let now = now();
    json!({
        "iss": idp.issuer(),
        "sub": "caseworker-7",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "agency": idp.agency().as_str(),
        "roles": ["CASEWORKER"],
    })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token from raw header and claims JSON and a raw signature.
pub fn hand_built(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

pub fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).expect("write test file");
}

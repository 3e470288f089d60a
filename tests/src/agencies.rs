//! The agencies of a test federation and their users' tokens, minted by
//! each agency's development identity provider.

use exchange_schema::{AgencyId, AgencyKind, Role, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation, MintRequest};

/// An agency of a test federation: English and Brazilian Portuguese, region
/// `Test`, no node URL yet.
pub fn agency_spec(
    id: &str,
    name: &str,
    kind: AgencyKind,
    services: Vec<ServiceKind>,
) -> AgencySpec {
    AgencySpec {
        id: AgencyId::parse(id).expect("valid agency ID"),
        name: name.into(),
        kind,
        services,
        languages: vec!["en".into(), "pt-BR".into()],
        region: "Test".into(),
        node_url: None,
        tls_identity: None,
        webhook: None,
    }
}

/// A valid token of the user `<agency>-user` with `roles`, for `audience`.
pub fn mint(dev: &DevFederation, agency: &str, roles: &[Role], audience: &str) -> String {
    let agency = AgencyId::parse(agency).expect("agency ID");
    let idp = dev
        .provider(&agency)
        .expect("agency in the test federation");
    idp.mint(&MintRequest::new(
        agency.clone(),
        format!("{agency}-user"),
        roles.to_vec(),
        audience,
    ))
    .expect("token")
}

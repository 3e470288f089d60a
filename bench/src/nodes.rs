//! Agency nodes started in the bench's own process (SQLite, plain HTTP on
//! loopback, to measure what is in front of them rather than TLS), the
//! development federation they trust, tokens minted by its identity
//! providers, and the data the benches seed with the nodes' own mutations.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use exchange_schema::{AgencyId, AgencyKind, Role, ServiceKind};
use exchange_trust::{AgencySpec, DevFederation, MintRequest};
use serde_json::json;

/// The audience of every token the benches mint and every router checks.
pub const AUDIENCE: &str = "survivor-exchange-bench";

/// A routed read the node answers from memory, without an audit entry.
pub const ROUTED_DIRECTORY_READ: &str = "{ agency { id name kind } }";

/// A routed read of one survivor record, which the node discloses and
/// audits durably before answering. Its variable is `$id`.
pub const ROUTED_RECORD_READ: &str = "query($id: ID!) { survivor(id: $id) { id owner identity { givenName } case { riskLevel needs } } }";

/// Referrals each node holds for a scattered query ([`seed_referrals`]).
pub const REFERRALS_PER_NODE: usize = 4;

/// The ID of agency `i` of a bench federation (`agency-00`, ...).
pub fn agency_name(i: usize) -> String {
    format!("agency-{i:02}")
}

/// The agencies of a bench federation, one per entry of `urls`, with the
/// node URL given (`None` for a federation file that names no node, as a
/// node's own).
pub fn specs(urls: &[Option<String>]) -> Vec<AgencySpec> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| AgencySpec {
            id: AgencyId::parse(&agency_name(i)).expect("valid"),
            name: format!("Bench agency {i}"),
            kind: if i % 2 == 0 {
                AgencyKind::Shelter
            } else {
                AgencyKind::LegalAid
            },
            services: vec![ServiceKind::Shelter],
            languages: vec!["en".into()],
            region: "Bench".into(),
            node_url: url.clone(),
            tls_identity: None,
            webhook: None,
        })
        .collect()
}

/// Nodes running in this process, one per agency of [`Nodes::dev`].
pub struct Nodes {
    /// The development federation the nodes trust; its keys are under
    /// `<root>/keys`.
    pub dev: DevFederation,
    /// Each node's base URL (`http://127.0.0.1:<port>`), in agency order.
    pub urls: Vec<String>,
    shutdowns: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Nodes {
    /// Writes a development federation of `count` agencies under `root`
    /// and starts one node per agency on a loopback port, each with its own
    /// SQLite data directory under `root`.
    pub async fn start(root: &Path, count: usize) -> anyhow::Result<Self> {
        let none: Vec<Option<String>> = vec![None; count];
        let dev = DevFederation::create(root, &specs(&none), AUDIENCE)?;
        let mut urls = Vec::new();
        let mut shutdowns = Vec::new();
        for i in 0..count {
            let agency = agency_name(i);
            let config = agency_node::NodeConfig::new(
                AgencyId::parse(&agency)?,
                &dev.path,
                &root.join(&agency),
            );
            let app = agency_node::Application::build(config).await?;
            urls.push(format!("http://{}", app.address()));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            shutdowns.push(tx);
            tokio::spawn(app.run(async {
                let _ = rx.await;
            }));
        }
        Ok(Self {
            dev,
            urls,
            shutdowns,
        })
    }

    /// A one-hour token for `bench-user` of agency `i` with `role`, minted
    /// by that agency's development identity provider.
    pub fn token(&self, i: usize, role: Role) -> anyhow::Result<String> {
        let agency = AgencyId::parse(&agency_name(i))?;
        let mut request = MintRequest::new(agency.clone(), "bench-user", vec![role], AUDIENCE);
        request.ttl = Duration::from_secs(3600);
        let provider = self
            .dev
            .provider(&agency)
            .with_context(|| format!("no identity provider for {agency}"))?;
        Ok(provider.mint(&request)?)
    }

    /// Stops every node and gives them a moment to close.
    pub async fn stop(self) {
        for tx in self.shutdowns {
            let _ = tx.send(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends one mutation straight to the node at `base` as `caseworker`, for
/// `purpose`, and returns its `data`, or an error carrying the answer.
pub async fn node_mutation(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
    purpose: &str,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let answer: serde_json::Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(caseworker)
        .header("x-exchange-purpose", purpose)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    match (answer.get("errors"), answer.get("data")) {
        (None, Some(data)) => Ok(data.clone()),
        _ => anyhow::bail!("seeding the bench's data: {answer}"),
    }
}

/// Registers an invented survivor at the node at `base` (the caseworker's
/// own agency); its global ID.
pub async fn register_survivor(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
) -> anyhow::Result<String> {
    let data = node_mutation(
        client,
        base,
        caseworker,
        "CASE_MANAGEMENT",
        "mutation($input: RegisterSurvivorInput!) { registerSurvivor(input: $input) { id } }",
        json!({ "input": {
            "identity": { "givenName": "Bench", "familyName": "Invented", "languages": ["en"] },
            "case": { "exploitationTypes": ["FORCED_LABOUR"], "riskLevel": "HIGH", "needs": ["SHELTER"] },
        } }),
    )
    .await?;
    data["registerSurvivor"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("registering the bench survivor: {data}"))
}

/// Registers an invented survivor at the node at `base`, records their
/// consent to be referred to `to`, and refers them there
/// [`REFERRALS_PER_NODE`] times, with the node's own mutations.
pub async fn seed_referrals(
    client: &reqwest::Client,
    base: &str,
    caseworker: &str,
    to: &str,
) -> anyhow::Result<()> {
    let survivor = register_survivor(client, base, caseworker).await?;
    node_mutation(
        client,
        base,
        caseworker,
        "CASE_MANAGEMENT",
        "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
        json!({ "input": {
            "survivorId": survivor, "grantee": to, "categories": ["IDENTITY", "CASE"],
            "purposes": ["REFERRAL"], "method": "WITNESSED_VERBAL", "witness": "Bench witness",
        } }),
    )
    .await?;
    for _ in 0..REFERRALS_PER_NODE {
        node_mutation(
            client,
            base,
            caseworker,
            "REFERRAL",
            "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
            json!({ "input": {
                "survivorId": survivor, "toAgency": to, "service": "SHELTER", "urgency": "ROUTINE",
            } }),
        )
        .await?;
    }
    Ok(())
}

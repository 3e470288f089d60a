//! Calls from this node to another member agency's node: the hand-over of
//! a case transfer ([`crate::graphql::transfer`]).
//!
//! The node calls the other node's GraphQL endpoint as the caseworker who
//! asked for the transfer: it forwards their bearer token ([`BearerToken`])
//! and declared purpose, so the receiving node authenticates and decides
//! about the caseworker exactly as for a request the caseworker sent
//! themselves; the calling node adds no authority of its own. With `[tls]`
//! configured, the node presents its own certificate as the client
//! certificate (it must allow client authentication) and trusts only the
//! federation's CA (`client_ca_file`), checking each node's `tls_identity`.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use exchange_schema::AgencyId;
use exchange_trust::Federation;
use reqwest::Url;
use serde_json::{Value, json};

use crate::tls::TlsConfig;

/// The request's bearer token, kept in the GraphQL request's data so that
/// a call on the caller's behalf can forward it. Never logged.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// How long a call to another node may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// What a call to another node came to.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The agency has no node in the federation file.
    #[error("{0} has no node in the federation file")]
    NoNode(AgencyId),
    /// The node answered with a refusal: nothing was done there.
    #[error("{agency} refused: {code}: {message}")]
    Refused {
        agency: AgencyId,
        code: String,
        message: String,
    },
    /// No answer, or not one that can be read: whether anything was done
    /// there is not known.
    #[error("{agency} did not answer: {why}")]
    Unanswered { agency: AgencyId, why: String },
}

/// The other nodes of the federation, and a client for each.
///
/// A node's address is read from the federation file when it is first
/// needed (and again while it is not listed), so a node that joins the
/// federation later is reachable without a restart; the trust itself (the
/// identity providers' keys) is still the one loaded at start.
pub struct Peers {
    federation_file: PathBuf,
    own: AgencyId,
    tls: Option<TlsConfig>,
    endpoints: Mutex<HashMap<AgencyId, Endpoint>>,
}

#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    graphql: Url,
}

impl Peers {
    /// The nodes of the federation file at `federation_file`, other than
    /// `own`'s.
    pub fn new(federation_file: &Path, own: &AgencyId, tls: Option<&TlsConfig>) -> Self {
        Self {
            federation_file: federation_file.to_owned(),
            own: own.clone(),
            tls: tls.cloned(),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    fn endpoint(&self, agency: &AgencyId) -> Result<Endpoint, PeerError> {
        if let Some(found) = self
            .endpoints
            .lock()
            .ok()
            .and_then(|e| e.get(agency).cloned())
        {
            return Ok(found);
        }
        let no_node = || PeerError::NoNode(agency.clone());
        if agency == &self.own {
            return Err(no_node());
        }
        let federation = Federation::load(&self.federation_file).map_err(|e| {
            tracing::warn!(error = %e, "reading the federation file for node addresses");
            no_node()
        })?;
        let entry = federation.agency(agency).ok_or_else(no_node)?;
        let raw = entry.node_url.as_deref().ok_or_else(no_node)?;
        let built = build(raw, entry.tls_identity.as_deref(), self.tls.as_ref()).map_err(|e| {
            tracing::warn!(error = %e, agency = %agency, "the node address cannot be used");
            no_node()
        })?;
        if let Ok(mut endpoints) = self.endpoints.lock() {
            endpoints.insert(agency.clone(), built.clone());
        }
        Ok(built)
    }

    /// Whether `agency` has a node this node can call.
    pub fn has_node(&self, agency: &AgencyId) -> bool {
        self.endpoint(agency).is_ok()
    }

    /// Sends one GraphQL operation to `agency`'s node on the caller's
    /// behalf; the `data` of a successful answer.
    pub async fn graphql(
        &self,
        agency: &AgencyId,
        token: &BearerToken,
        purpose: exchange_schema::Purpose,
        trace_id: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value, PeerError> {
        let endpoint = self.endpoint(agency)?;
        let unanswered = |why: String| PeerError::Unanswered {
            agency: agency.clone(),
            why,
        };
        // An address that gave no answer is read again from the federation
        // file next time (the node may have moved).
        let forget = || {
            if let Ok(mut endpoints) = self.endpoints.lock() {
                endpoints.remove(agency);
            }
        };
        let response = endpoint
            .client
            .post(endpoint.graphql.clone())
            .bearer_auth(&token.0)
            .header(exchange_schema::PURPOSE_HEADER, purpose.as_str())
            .header(
                exchange_schema::TRACEPARENT_HEADER,
                format!("00-{trace_id}-{:016x}-01", rand_span()),
            )
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| {
                forget();
                unanswered(e.to_string())
            })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| unanswered(format!("HTTP {status}: {e}")))?;
        if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or("INTERNAL_SERVER_ERROR")
                .to_owned();
            // The receiving node writes in one transaction, so a refusal
            // means nothing was written there, except after a storage fault
            // or an internal error, when the commit may have happened
            // without its answer: then what it did is not known.
            if matches!(
                code.as_str(),
                "AUDIT_UNAVAILABLE" | "INTERNAL_SERVER_ERROR" | "NODE_UNAVAILABLE"
            ) {
                return Err(unanswered(format!("{code} there")));
            }
            return Err(PeerError::Refused {
                agency: agency.clone(),
                code,
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if !status.is_success() {
            return Err(unanswered(format!("HTTP {status}")));
        }
        Ok(body["data"].clone())
    }
}

/// A client and the GraphQL URL for a node at `raw`.
fn build(
    raw: &str,
    tls_identity: Option<&str>,
    tls: Option<&TlsConfig>,
) -> anyhow::Result<Endpoint> {
    let mut builder = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    let mut base = Url::parse(raw)?;
    if base.scheme() == "https" {
        let tls = tls.ok_or_else(|| {
            anyhow::anyhow!("an https node needs this node's [tls] to present a client certificate")
        })?;
        let config = exchange_service::tls::client_config(
            &tls.cert_file,
            &tls.key_file,
            &tls.client_ca_file,
        )?;
        builder = builder.use_preconfigured_tls(config);
        if let Some(identity) = tls_identity
            && base.host_str() != Some(identity)
        {
            let host = base.host_str().unwrap_or_default().to_owned();
            let port = base.port_or_known_default().unwrap_or(443);
            let addr: SocketAddr = (host.as_str(), port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| anyhow::anyhow!("{host} does not resolve"))?;
            builder = builder.resolve(identity, addr);
            base.set_host(Some(identity))?;
        }
    }
    let graphql = if base.path() == "/" || base.path().is_empty() {
        base.join("/graphql")?
    } else {
        base
    };
    Ok(Endpoint {
        client: builder.build()?,
        graphql,
    })
}

/// A span ID for the outgoing `traceparent` (non-zero, as W3C requires).
fn rand_span() -> u64 {
    let id = uuid::Uuid::new_v4().as_u64_pair().0;
    id.max(1)
}

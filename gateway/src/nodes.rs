//! Calling the agency nodes: one keep-alive HTTP client (mutual TLS when
//! configured), a whole-call timeout per request, a bound on the requests
//! in flight to each node, and a circuit breaker per node.
//!
//! A request beyond `max_in_flight_per_node` waits for a slot (first come,
//! first served) within its timeout; if none frees in time it fails as
//! `SATURATED` without being sent.
//!
//! The breaker opens after `failure_threshold` consecutive failures
//! (timeouts, refused connections, 5xx answers); while open the node is not
//! called at all and its part of an answer fails at once with
//! `NODE_UNAVAILABLE`. After `cool_down` one request is let through as a
//! probe (half-open): success closes the circuit, failure opens it again.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apollo_compiler::response::JsonValue;
use exchange_schema::{AgencyId, IDEMPOTENCY_KEY_HEADER, JUSTIFICATION_HEADER, PURPOSE_HEADER};
use exchange_trust::Federation;
use reqwest::Url;

use crate::config::NodesConfig;
use crate::error::NodeFailure;

/// Where a node is reached.
#[derive(Debug, Clone)]
pub struct NodeEndpoint {
    pub agency: AgencyId,
    /// The GraphQL endpoint.
    pub graphql: Url,
    /// The readiness probe.
    pub readyz: Url,
    /// The node's root, for its other endpoints (`/audit/...`).
    pub base: Url,
}

/// A circuit's state, as shown by `nodeHealth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// One node's circuit breaker.
#[derive(Debug)]
pub struct Circuit {
    state: Mutex<Breaker>,
    threshold: u32,
    cool_down: Duration,
}

/// Permission to call a node, from [`Circuit::admit`].
#[derive(Debug)]
pub struct Admission<'a> {
    circuit: &'a Circuit,
    probe: bool,
    settled: bool,
}

impl Admission<'_> {
    /// Records the outcome of the call.
    pub fn settle(mut self, ok: bool) {
        self.settled = true;
        self.circuit.record(ok, self.probe);
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        // A call abandoned before its outcome (the client went away) must not
        // leave a half-open circuit waiting forever for its probe.
        if !self.settled && self.probe {
            let mut state = self.circuit.lock();
            *state = Breaker::Open {
                until: Instant::now(),
            };
        }
    }
}

impl Circuit {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            state: Mutex::new(Breaker::Closed { failures: 0 }),
            threshold,
            cool_down,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go out now.
    pub fn admit(&self) -> Option<Admission<'_>> {
        let mut state = self.lock();
        let probe = match &*state {
            Breaker::Closed { .. } => false,
            Breaker::Open { until } if Instant::now() >= *until => {
                *state = Breaker::HalfOpen;
                true
            }
            Breaker::Open { .. } | Breaker::HalfOpen => return None,
        };
        Some(Admission {
            circuit: self,
            probe,
            settled: false,
        })
    }

    fn record(&self, ok: bool, probe: bool) {
        let mut state = self.lock();
        *state = match (&*state, ok) {
            (_, true) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, false) if !probe && failures + 1 < self.threshold => {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => Breaker::Open {
                until: Instant::now() + self.cool_down,
            },
        };
    }

    pub fn state(&self) -> CircuitState {
        match &*self.lock() {
            Breaker::Closed { .. } => CircuitState::Closed,
            Breaker::Open { until } if Instant::now() >= *until => CircuitState::HalfOpen,
            Breaker::Open { .. } => CircuitState::Open,
            Breaker::HalfOpen => CircuitState::HalfOpen,
        }
    }
}

/// The headers passed on to a node with the client's operation.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// The client's `Authorization` header value, unchanged.
    pub authorization: String,
    pub purpose: Option<String>,
    pub justification: Option<String>,
    /// The client's `Idempotency-Key`, sent on with mutations only.
    pub idempotency_key: Option<exchange_schema::IdempotencyKey>,
}

/// A node's answer, parsed, and how long it took.
#[derive(Debug)]
pub struct NodeAnswer {
    pub body: JsonValue,
    pub status: u16,
    pub elapsed: Duration,
}

/// A node's readiness, as probed for `nodeHealth`.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub agency: AgencyId,
    /// `Some(true)`: ready; `Some(false)`: answered but not ready; `None`:
    /// unreachable.
    pub ready: Option<bool>,
    pub latency: Option<Duration>,
    pub circuit: CircuitState,
    pub detail: Option<String>,
}

/// Every node of the federation and the client that calls them.
pub struct Nodes {
    client: reqwest::Client,
    endpoints: Vec<NodeEndpoint>,
    /// The agencies of `endpoints`, in federation order.
    agency_ids: Vec<AgencyId>,
    circuits: HashMap<AgencyId, Circuit>,
    /// The free slots for requests in flight, per node.
    slots: HashMap<AgencyId, tokio::sync::Semaphore>,
    /// How many requests are waiting for a slot, per node (observable, so
    /// a test can see the bound hold without waiting on the clock).
    waiting: HashMap<AgencyId, tokio::sync::watch::Sender<usize>>,
    config: NodesConfig,
}

/// Why the node clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("agency {agency}: node_url {url:?} is not usable: {message}")]
    BadUrl {
        agency: AgencyId,
        url: String,
        message: String,
    },
    #[error("agency {agency}: node_url uses https but the gateway has no [tls] section")]
    TlsRequired { agency: AgencyId },
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// A request counted among those waiting for a slot while it lives (also
/// when the caller gives up and drops it).
struct Queued<'a>(&'a tokio::sync::watch::Sender<usize>);

impl<'a> Queued<'a> {
    fn join(waiting: &'a tokio::sync::watch::Sender<usize>) -> Self {
        waiting.send_modify(|n| *n += 1);
        Self(waiting)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Nodes {
    /// Sets up a client for every agency with a node. With `tls`, nodes are
    /// called over mutual TLS; a node whose `tls_identity` differs from its
    /// URL's host is reached at the URL's address but its certificate must
    /// name the `tls_identity`.
    pub fn new(
        federation: &Federation,
        config: &NodesConfig,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self, NodesError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .pool_max_idle_per_host(config.pool_max_idle_per_node)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        let mut endpoints = Vec::new();
        let mut circuits = HashMap::new();
        let mut slots = HashMap::new();
        let mut waiting = HashMap::new();
        for agency in federation.agencies() {
            let Some(raw) = &agency.node_url else {
                continue;
            };
            let bad = |message: String| NodesError::BadUrl {
                agency: agency.id.clone(),
                url: raw.clone(),
                message,
            };
            let mut base = Url::parse(raw).map_err(|e| bad(e.to_string()))?;
            if base.scheme() == "https" {
                if tls.is_none() {
                    return Err(NodesError::TlsRequired {
                        agency: agency.id.clone(),
                    });
                }
                if let Some(identity) = &agency.tls_identity
                    && base.host_str() != Some(identity.as_str())
                {
                    let host = base
                        .host_str()
                        .ok_or_else(|| bad("no host".into()))?
                        .to_owned();
                    let port = base.port_or_known_default().unwrap_or(443);
                    let addr: SocketAddr = (host.as_str(), port)
                        .to_socket_addrs()
                        .map_err(|e| bad(e.to_string()))?
                        .next()
                        .ok_or_else(|| bad("the host does not resolve".into()))?;
                    builder = builder.resolve(identity, addr);
                    base.set_host(Some(identity))
                        .map_err(|e| bad(e.to_string()))?;
                }
            }
            let graphql = if base.path() == "/" || base.path().is_empty() {
                base.join("/graphql").map_err(|e| bad(e.to_string()))?
            } else {
                base.clone()
            };
            let readyz = base.join("/readyz").map_err(|e| bad(e.to_string()))?;
            circuits.insert(
                agency.id.clone(),
                Circuit::new(config.failure_threshold, config.cool_down()),
            );
            slots.insert(
                agency.id.clone(),
                tokio::sync::Semaphore::new(config.max_in_flight_per_node),
            );
            waiting.insert(agency.id.clone(), tokio::sync::watch::Sender::new(0));
            let root = base.join("/").map_err(|e| bad(e.to_string()))?;
            endpoints.push(NodeEndpoint {
                agency: agency.id.clone(),
                graphql,
                readyz,
                base: root,
            });
        }
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls(tls);
        }
        let client = builder
            .build()
            .map_err(|e| NodesError::Client(e.to_string()))?;
        Ok(Self {
            client,
            agency_ids: endpoints.iter().map(|e| e.agency.clone()).collect(),
            endpoints,
            circuits,
            slots,
            waiting,
            config: config.clone(),
        })
    }

    /// The agencies with a node, in federation order.
    pub fn agencies(&self) -> impl Iterator<Item = &AgencyId> {
        self.endpoints.iter().map(|e| &e.agency)
    }

    /// The agencies with a node, in federation order.
    pub fn agency_ids(&self) -> &[AgencyId] {
        &self.agency_ids
    }

    pub fn has_node(&self, agency: &AgencyId) -> bool {
        self.circuits.contains_key(agency)
    }

    fn endpoint(&self, agency: &AgencyId) -> Option<&NodeEndpoint> {
        self.endpoints.iter().find(|e| &e.agency == agency)
    }

    /// The circuit state of a node.
    pub fn circuit(&self, agency: &AgencyId) -> CircuitState {
        self.circuits
            .get(agency)
            .map(Circuit::state)
            .unwrap_or(CircuitState::Closed)
    }

    /// The number of requests to `agency`'s node waiting for a slot, kept up
    /// to date: a request that finds every slot taken counts here until it
    /// gets one or gives up. `None` for an agency without a node.
    pub fn waiting_for_slot(
        &self,
        agency: &AgencyId,
    ) -> Option<tokio::sync::watch::Receiver<usize>> {
        self.waiting
            .get(agency)
            .map(tokio::sync::watch::Sender::subscribe)
    }

    /// Sends a GraphQL request body to a node. Never retries: a mutation must
    /// not be sent twice.
    pub async fn call(
        &self,
        agency: &AgencyId,
        body: Vec<u8>,
        forwarded: &Forwarded,
        traceparent: &str,
    ) -> Result<NodeAnswer, NodeFailure> {
        let endpoint = self.endpoint(agency).ok_or(NodeFailure::NoNode)?;
        let circuit = self.circuits.get(agency).ok_or(NodeFailure::NoNode)?;
        let slots = self.slots.get(agency).ok_or(NodeFailure::NoNode)?;
        let waiting = self.waiting.get(agency).ok_or(NodeFailure::NoNode)?;
        let admission = circuit.admit().ok_or(NodeFailure::CircuitOpen)?;
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.config.timeout());
        // Not sent, so neither a success nor a failure of the node: a probe
        // admission dropped unsettled lets the next request probe instead.
        let _slot = match slots.try_acquire() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let _queued = Queued::join(waiting);
                match tokio::time::timeout_at(deadline, slots.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) | Err(_) => {
                        return Err(NodeFailure::Saturated(self.config.max_in_flight_per_node));
                    }
                }
            }
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(NodeFailure::Saturated(self.config.max_in_flight_per_node));
            }
        };
        let result =
            tokio::time::timeout_at(deadline, self.send(endpoint, body, forwarded, traceparent))
                .await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(NodeFailure::Timeout(self.config.timeout_ms)),
        };
        let ok = matches!(&result, Ok((status, _)) if *status < 500);
        admission.settle(ok);
        let (status, body) = result?;
        Ok(NodeAnswer {
            body,
            status,
            elapsed: started.elapsed(),
        })
    }

    async fn send(
        &self,
        endpoint: &NodeEndpoint,
        body: Vec<u8>,
        forwarded: &Forwarded,
        traceparent: &str,
    ) -> Result<(u16, JsonValue), NodeFailure> {
        let mut request = self
            .client
            .post(endpoint.graphql.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, &forwarded.authorization)
            .header("traceparent", traceparent)
            .body(body);
        if let Some(purpose) = &forwarded.purpose {
            request = request.header(PURPOSE_HEADER, purpose);
        }
        if let Some(justification) = &forwarded.justification {
            request = request.header(JUSTIFICATION_HEADER, justification);
        }
        if let Some(key) = &forwarded.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key.header_value());
        }
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                NodeFailure::Timeout(self.config.timeout_ms)
            } else if e.is_connect() {
                NodeFailure::Unreachable
            } else {
                NodeFailure::BadAnswer
            }
        })?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| NodeFailure::BadAnswer)? {
            if bytes.len() + chunk.len() > self.config.max_response_bytes {
                return Err(NodeFailure::BadAnswer);
            }
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<JsonValue>(&bytes) {
            Ok(body) if body.get("data").is_some() || body.get("errors").is_some() => {
                Ok((status, body))
            }
            _ if status >= 500 => Err(NodeFailure::BadStatus(status)),
            _ => Err(NodeFailure::BadAnswer),
        }
    }

    /// `GET`s `path_and_query` (starting with `/`) from a node, with the
    /// client's headers when given, within `timeout`, reading at most
    /// `max_bytes`: the audit endpoints, whose answers are files rather than
    /// GraphQL. Circuit breakers are left alone: these calls are rare and
    /// may legitimately be slow. Returns the status and the body.
    pub async fn get_raw(
        &self,
        agency: &AgencyId,
        path_and_query: &str,
        forwarded: Option<(&Forwarded, &str)>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<(u16, Vec<u8>), NodeFailure> {
        let endpoint = self.endpoint(agency).ok_or(NodeFailure::NoNode)?;
        let url = endpoint
            .base
            .join(path_and_query)
            .map_err(|_| NodeFailure::NoNode)?;
        let mut request = self.client.get(url);
        if let Some((forwarded, traceparent)) = forwarded {
            request = request
                .header(http::header::AUTHORIZATION, &forwarded.authorization)
                .header("traceparent", traceparent);
            if let Some(purpose) = &forwarded.purpose {
                request = request.header(PURPOSE_HEADER, purpose);
            }
            if let Some(justification) = &forwarded.justification {
                request = request.header(JUSTIFICATION_HEADER, justification);
            }
        }
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let call = async {
            let mut response = request.send().await.map_err(|e| {
                if e.is_connect() {
                    NodeFailure::Unreachable
                } else {
                    NodeFailure::BadAnswer
                }
            })?;
            let status = response.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|_| NodeFailure::BadAnswer)? {
                if bytes.len() + chunk.len() > max_bytes {
                    return Err(NodeFailure::TooLarge(max_bytes));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(NodeFailure::Timeout(timeout_ms)))
    }

    /// Probes every node's `/readyz` concurrently, each within the timeout.
    pub async fn readiness(&self) -> Vec<Readiness> {
        let probes = self.endpoints.iter().map(|endpoint| async move {
            let started = Instant::now();
            let answer = tokio::time::timeout(
                self.config.timeout(),
                self.client.get(endpoint.readyz.clone()).send(),
            )
            .await;
            let (ready, latency, detail) = match answer {
                Ok(Ok(response)) => {
                    let ok = response.status().is_success();
                    let detail = (!ok).then(|| format!("HTTP {}", response.status().as_u16()));
                    (Some(ok), Some(started.elapsed()), detail)
                }
                Ok(Err(e)) if e.is_connect() => {
                    (None, None, Some("connection refused or TLS failed".into()))
                }
                Ok(Err(_)) => (None, None, Some("request failed".into())),
                Err(_) => (
                    None,
                    None,
                    Some(format!("no answer within {} ms", self.config.timeout_ms)),
                ),
            };
            Readiness {
                agency: endpoint.agency.clone(),
                ready,
                latency,
                circuit: self.circuit(&endpoint.agency),
                detail,
            }
        });
        futures::future::join_all(probes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_opens_after_repeated_failures_and_probes_after_the_cool_down() {
        let circuit = Circuit::new(2, Duration::from_millis(0));
        circuit.admit().unwrap().settle(false);
        assert_eq!(circuit.state(), CircuitState::Closed);
        circuit.admit().unwrap().settle(false);
        // Open with a zero cool-down: the next caller is the probe.
        let probe = circuit.admit().expect("probe admitted");
        assert!(circuit.admit().is_none(), "only one probe at a time");
        probe.settle(true);
        assert_eq!(circuit.state(), CircuitState::Closed);
    }

    #[test]
    fn an_open_circuit_refuses_calls_until_the_cool_down() {
        let circuit = Circuit::new(1, Duration::from_secs(3600));
        circuit.admit().unwrap().settle(false);
        assert_eq!(circuit.state(), CircuitState::Open);
        assert!(circuit.admit().is_none());
    }

    #[test]
    fn an_abandoned_probe_does_not_wedge_the_circuit() {
        let circuit = Circuit::new(1, Duration::from_millis(0));
        circuit.admit().unwrap().settle(false);
        drop(circuit.admit().expect("probe"));
        assert!(circuit.admit().is_some(), "a new probe may go out");
    }
}

//! The fields the gateway answers itself (`@gateway` in the federation
//! schema): the directory of member agencies, so a caseworker can choose
//! where to refer, and the health of every node.
//!
//! They are a small async-graphql schema of their own; the planner sends it
//! exactly the client's selection of these fields, like it does to a node.
//! Its SDL must match the gateway's part of `schema/federation.graphql`
//! (checked by `gateway/tests/gateway/schema_contract.rs`).

use std::sync::Arc;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, Object, Schema, SimpleObject,
};
use exchange_schema::{AgencyKind, ServiceKind};
use exchange_trust::Federation;

use crate::nodes::{CircuitState, Nodes};

/// The gateway's own schema.
pub type DirectorySchema = Schema<DirectoryQuery, EmptyMutation, EmptySubscription>;

/// Builds the gateway's own schema over the federation and its nodes.
pub fn schema(federation: Arc<Federation>, nodes: Arc<Nodes>) -> DirectorySchema {
    Schema::build(DirectoryQuery, EmptyMutation, EmptySubscription)
        .data(federation)
        .data(nodes)
        .finish()
}

/// The SDL of the gateway's own fields and types (compared with
/// `schema/federation.graphql` by a test).
pub fn sdl() -> String {
    Schema::build(DirectoryQuery, EmptyMutation, EmptySubscription)
        .finish()
        .sdl()
}

/// A member agency of the federation, as listed in the federation file.
#[derive(SimpleObject)]
pub struct MemberAgency {
    /// The agency ID (the `<agency>` part of its records' global IDs).
    pub id: String,
    pub name: String,
    pub kind: AgencyKind,
    /// Services it offers, to choose where to refer.
    pub services: Vec<ServiceKind>,
    /// Languages its staff speak (BCP 47).
    pub languages: Vec<String>,
    pub region: String,
    /// Whether it runs a node (an oversight body may not).
    pub has_node: bool,
}

/// Whether a node answered its readiness probe.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum NodeStatus {
    /// `/readyz` answered 200.
    Ready,
    /// `/readyz` answered, but not ready (its database is unreachable).
    NotReady,
    /// No answer in time, or the connection failed.
    Unreachable,
}

/// The gateway's circuit breaker for a node.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CircuitState", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Circuit {
    /// Calls go through.
    Closed,
    /// The node failed repeatedly; calls fail at once until the cool-down ends.
    Open,
    /// The cool-down ended; the next call is a probe.
    HalfOpen,
}

impl From<CircuitState> for Circuit {
    fn from(state: CircuitState) -> Self {
        match state {
            CircuitState::Closed => Self::Closed,
            CircuitState::Open => Self::Open,
            CircuitState::HalfOpen => Self::HalfOpen,
        }
    }
}

/// One node's health as seen from the gateway.
#[derive(SimpleObject)]
pub struct NodeHealth {
    pub agency: String,
    pub status: NodeStatus,
    /// Round trip of the readiness probe, in milliseconds.
    pub latency_ms: Option<f64>,
    pub circuit: Circuit,
    /// Why the node is not ready, when it is not.
    pub detail: Option<String>,
}

pub struct DirectoryQuery;

#[Object(name = "Query")]
impl DirectoryQuery {
    /// The federation's member agencies, filtered: by kind, by a service
    /// offered, by a language spoken (`pt` matches `pt-BR`) and by region
    /// (case-insensitive). Answered by the gateway from the federation file.
    async fn agencies(
        &self,
        ctx: &Context<'_>,
        kind: Option<AgencyKind>,
        service: Option<ServiceKind>,
        language: Option<String>,
        region: Option<String>,
    ) -> Vec<MemberAgency> {
        let federation = ctx.data_unchecked::<Arc<Federation>>();
        let language = language.map(|l| l.to_ascii_lowercase());
        federation
            .agencies()
            .iter()
            .filter(|a| kind.is_none_or(|k| a.kind == k))
            .filter(|a| service.is_none_or(|s| a.services.contains(&s)))
            .filter(|a| {
                language.as_deref().is_none_or(|wanted| {
                    a.languages.iter().any(|l| {
                        let l = l.to_ascii_lowercase();
                        l == wanted || l.split('-').next() == Some(wanted)
                    })
                })
            })
            .filter(|a| {
                region
                    .as_deref()
                    .is_none_or(|r| a.region.eq_ignore_ascii_case(r.trim()))
            })
            .map(|a| MemberAgency {
                id: a.id.to_string(),
                name: a.name.clone(),
                kind: a.kind,
                services: a.services.clone(),
                languages: a.languages.clone(),
                region: a.region.clone(),
                has_node: a.node_url.is_some(),
            })
            .collect()
    }

    /// Every node's readiness, probe latency and circuit state, probed now.
    async fn node_health(&self, ctx: &Context<'_>) -> Vec<NodeHealth> {
        let nodes = ctx.data_unchecked::<Arc<Nodes>>();
        nodes
            .readiness()
            .await
            .into_iter()
            .map(|r| NodeHealth {
                agency: r.agency.to_string(),
                status: match r.ready {
                    Some(true) => NodeStatus::Ready,
                    Some(false) => NodeStatus::NotReady,
                    None => NodeStatus::Unreachable,
                },
                latency_ms: r.latency.map(|d| d.as_secs_f64() * 1000.0),
                circuit: r.circuit.into(),
                detail: r.detail,
            })
            .collect()
    }
}

//! Stage 4, fan out: build each node's request (the client's text
//! unchanged where the plan allows, otherwise the node's part of the
//! operation with its scatter positions) and send them all at once through
//! a [`NodeTransport`]. The client's `Idempotency-Key` goes on with a
//! mutation only: the owner keeps it per caller and per root field, and a
//! mutation goes to exactly one node in one call, so a key is never split.

use apollo_compiler::response::{JsonMap, JsonValue};
use exchange_schema::AgencyId;
use futures::future::BoxFuture;
use tracing::Instrument as _;

use crate::error::NodeFailure;
use crate::nodes::{Forwarded, NodeAnswer, Nodes};
use crate::routing::FederationSchema;
use crate::telemetry::outgoing;

use super::RequestContext;
use super::check::CheckedOperation;
use super::plan::{ExecutionPlan, NodeJob};

/// How node calls are sent. [`Nodes`] sends them over HTTP with timeouts,
/// bounds and circuit breakers; a test can answer them from canned bodies.
pub trait NodeTransport: Send + Sync {
    /// The agencies with a node, in federation order.
    fn agencies(&self) -> &[AgencyId];

    /// Sends one GraphQL request body to `agency`'s node. Never retries: a
    /// mutation must not be sent twice.
    fn call<'a>(
        &'a self,
        agency: &'a AgencyId,
        body: Vec<u8>,
        forwarded: &'a Forwarded,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<NodeAnswer, NodeFailure>>;
}

impl NodeTransport for Nodes {
    fn agencies(&self) -> &[AgencyId] {
        Nodes::agency_ids(self)
    }

    fn call<'a>(
        &'a self,
        agency: &'a AgencyId,
        body: Vec<u8>,
        forwarded: &'a Forwarded,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<NodeAnswer, NodeFailure>> {
        Box::pin(Nodes::call(self, agency, body, forwarded, traceparent))
    }
}

/// Every node's answer (or failure), in the plan's job order.
pub type NodeAnswers = Vec<Result<NodeAnswer, NodeFailure>>;

/// Sends every job of the plan concurrently.
pub async fn run(
    transport: &dyn NodeTransport,
    schema: &FederationSchema,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
    context: &RequestContext<'_>,
) -> NodeAnswers {
    // A query's key is not sent on: queries change nothing and are always
    // answered afresh.
    let without_key;
    let forwarded = if operation.is_mutation() || context.caller.forwarded.idempotency_key.is_none()
    {
        &context.caller.forwarded
    } else {
        without_key = Forwarded {
            idempotency_key: None,
            ..context.caller.forwarded.clone()
        };
        &without_key
    };
    let calls = plan.jobs.iter().map(|job| async move {
        let body = request_body(schema, operation, plan, job)?;
        call(
            transport,
            job,
            body,
            forwarded,
            context,
            operation.is_mutation(),
        )
        .await
    });
    futures::future::join_all(calls).await
}

/// The JSON body `job`'s node is sent.
pub fn request_body(
    schema: &FederationSchema,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
    job: &NodeJob,
) -> Result<Vec<u8>, NodeFailure> {
    let mut body = JsonMap::new();
    if plan.verbatim {
        body.insert("query", JsonValue::String(operation.query.as_str().into()));
        if let Some(name) = &operation.operation_name {
            body.insert("operationName", JsonValue::String(name.as_str().into()));
        }
        body.insert(
            "variables",
            JsonValue::Object(operation.raw_variables.clone()),
        );
    } else {
        let mut q = crate::plan::node_query(
            schema,
            &operation.checked,
            &operation.roots,
            &plan.targets,
            &job.indices,
            &operation.raw_variables,
        )
        .map_err(|_| NodeFailure::BadAnswer)?;
        for (i, var) in &q.scatter_positions {
            let position = plan.starts[*i]
                .as_ref()
                .and_then(|s| s.position(&job.agency))
                .map(|p| JsonValue::String(p.into()))
                .unwrap_or(JsonValue::Null);
            q.variables.insert(var.as_str(), position);
        }
        body.insert("query", JsonValue::String(q.query.into()));
        if let Some(name) = q.operation_name {
            body.insert("operationName", JsonValue::String(name.into()));
        }
        body.insert("variables", JsonValue::Object(q.variables));
    }
    serde_json::to_vec(&body).map_err(|_| NodeFailure::BadAnswer)
}

/// One node call, in a `node.call` span whose context travels on as the
/// node's `traceparent`.
async fn call(
    transport: &dyn NodeTransport,
    job: &NodeJob,
    body: Vec<u8>,
    forwarded: &Forwarded,
    context: &RequestContext<'_>,
    is_mutation: bool,
) -> Result<NodeAnswer, NodeFailure> {
    let span = tracing::info_span!(
        "node.call",
        otel.kind = "client",
        agency = %job.agency,
        mutation = is_mutation,
        outcome = tracing::field::Empty,
    );
    let traceparent = outgoing(&span, context.trace).header();
    let result = transport
        .call(&job.agency, body, forwarded, &traceparent)
        .instrument(span.clone())
        .await;
    match &result {
        Ok(answer) => span.record("outcome", answer.status),
        Err(failure) => {
            tracing::warn!(parent: &span, agency = %job.agency, reason = failure.reason(), "node call failed");
            span.record("outcome", failure.reason())
        }
    };
    result
}

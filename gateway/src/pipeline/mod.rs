//! The path of one client operation through the gateway, one stage a file,
//! with a [`RequestContext`] passed from stage to stage:
//!
//! 1. [`authenticate`]: the bearer token and the headers (purpose,
//!    justification, idempotency key), read by the nodes' own rules;
//! 2. [`check`]: parse, validate and hold the operation to the limits;
//! 3. [`plan`]: route each root field and group them by node;
//! 4. [`fan_out`]: send each node its part concurrently, through a
//!    [`NodeTransport`] (so a plan can be run against canned answers);
//!    [`local`] answers the gateway's own fields meanwhile;
//! 5. [`audit`]: the gateway's entry, written while the nodes work: nothing
//!    is answered until it is durable;
//! 6. [`merge`]: assemble the answer in the client's field order;
//! 7. [`respond`]: the HTTP response.
//!
//! A node that fails costs only the root fields it was asked for: they are
//! `null` (or, for a scattered field, lack that node's items) and the answer
//! carries a `NODE_UNAVAILABLE` error naming the agency. A mutation goes to
//! exactly one node and is never retried, so a failed owner means nothing
//! was written anywhere else.

pub mod audit;
pub mod authenticate;
pub mod check;
pub mod fan_out;
pub mod local;
pub mod merge;
pub mod plan;
pub mod respond;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use apollo_compiler::response::{JsonMap, JsonValue};
use exchange_audit::AuditLog;
use exchange_schema::{AgencyId, Purpose};
use exchange_trust::{Principal, TokenVerifier};

use crate::config::LimitsConfig;
use crate::directory::DirectorySchema;
use crate::error::{NodeFailure, RequestError};
use crate::nodes::Forwarded;
use crate::routing::FederationSchema;
use crate::telemetry::TraceParent;

pub use fan_out::NodeTransport;

/// Everything an operation is executed with. One per gateway.
pub struct Gateway {
    pub schema: FederationSchema,
    pub limits: LimitsConfig,
    pub verifier: Arc<TokenVerifier>,
    /// The identity providers' keys at JWKS URLs, fetched into `verifier`;
    /// tokens are verified through it.
    pub jwks: Arc<exchange_service::jwks::JwksRefresher>,
    /// How node calls are sent: the HTTP clients in production, canned
    /// answers in unit tests.
    pub transport: Arc<dyn NodeTransport>,
    pub directory: DirectorySchema,
    pub audit: AuditLog,
    /// Parsed and validated operations, by text.
    pub documents: crate::plan::DocumentCache,
    /// The gateway's Prometheus metrics.
    pub metrics: Arc<exchange_service::metrics::Metrics>,
}

/// Who is asking, as verified at the gateway, and what travels on.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub purpose: Option<Purpose>,
    pub justification: Option<String>,
    pub forwarded: Forwarded,
}

/// A client's GraphQL request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRequest {
    pub query: String,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<JsonMap>,
    /// Accepted for compatibility with GraphQL clients; not used.
    #[serde(default)]
    pub extensions: Option<JsonValue>,
}

/// What every stage after authentication reads: who asks, in which trace.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'r> {
    pub caller: &'r Caller,
    pub trace: &'r TraceParent,
}

/// What happened at one node, for the audit entry and the span.
#[derive(Debug, Clone)]
pub struct NodeOutcome {
    pub agency: AgencyId,
    /// How long the node took to answer, or why it did not.
    pub answer: Result<Duration, NodeFailure>,
}

impl NodeOutcome {
    pub fn failed(&self) -> bool {
        self.answer.is_err()
    }
}

/// The answer to a client and what each node asked did.
#[derive(Debug)]
pub struct Executed {
    pub response: JsonValue,
    pub outcomes: Vec<NodeOutcome>,
}

impl Gateway {
    /// Runs an authenticated operation through the stages. A
    /// [`RequestError`] means nothing was sent to any node, or that the
    /// gateway's audit entry could not be written (then nothing is
    /// answered).
    pub async fn execute(
        &self,
        caller: &Caller,
        request: ClientRequest,
        trace: &TraceParent,
    ) -> Result<Executed, RequestError> {
        let started = std::time::Instant::now();
        let context = RequestContext { caller, trace };
        let operation = check::run(&self.schema, &self.limits, &self.documents, request)?;
        let root_fields = exchange_schema::limits::operation_root_fields(
            &operation.checked.document,
            &operation.checked.operation,
        );
        let plan = plan::run(
            &self.schema,
            &operation,
            &caller.principal.agency,
            self.transport.agencies(),
        )?;
        // The entry names the operation, its fields and the nodes asked, all
        // known now: it is written while the nodes work (each node also
        // records its own disclosure before it answers).
        let (written, (answers, local)) = futures::future::join(
            audit::forwarded(&self.audit, &context, &operation, &plan),
            futures::future::join(
                fan_out::run(
                    self.transport.as_ref(),
                    &self.schema,
                    &operation,
                    &plan,
                    &context,
                ),
                local::run(&self.schema, &self.directory, &operation, &plan),
            ),
        )
        .await;
        written?;
        let executed = merge::run(&operation, &plan, &answers, local?);
        if executed.outcomes.iter().any(NodeOutcome::failed) {
            audit::partial(&self.audit, &context, &operation, &plan, &executed.outcomes).await?;
        }
        self.metrics.operation(&root_fields, started);
        Ok(executed)
    }

    /// Writes the gateway's audit entry for an operation it refused (nothing
    /// was sent to any node) and waits until it is durable.
    pub async fn audit_refusal(
        &self,
        principal: Option<&Principal>,
        caller: Option<&Caller>,
        trace: &TraceParent,
        refusal: &RequestError,
    ) -> Result<(), RequestError> {
        audit::refusal(&self.audit, principal, caller, trace, refusal).await
    }
}

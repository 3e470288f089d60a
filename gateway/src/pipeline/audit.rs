//! Stage 5, audit: the gateway's own entries, each answered only once it is
//! durable. `FORWARDED` names the operation, its root fields and the nodes
//! asked, and is written while the nodes work; `PARTIAL` adds which nodes
//! failed, and is written only on that path; a refused operation (nothing
//! sent) gets a denial or a `REJECTED_<code>` entry.

use apollo_compiler::ast::OperationType;
use exchange_audit::AuditLog;
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Decision, ErrorCode};
use exchange_trust::Principal;

use crate::error::RequestError;
use crate::plan::RootField;
use crate::telemetry::TraceParent;

use super::check::CheckedOperation;
use super::plan::ExecutionPlan;
use super::{Caller, NodeOutcome, RequestContext};

/// Writes the `FORWARDED` entry of an operation about to be answered.
pub async fn forwarded(
    log: &AuditLog,
    context: &RequestContext<'_>,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
) -> Result<(), RequestError> {
    append(log, permitted(context, operation, plan, "FORWARDED")).await
}

/// Writes the `PARTIAL` entry: which nodes failed and why.
pub async fn partial(
    log: &AuditLog,
    context: &RequestContext<'_>,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
    outcomes: &[NodeOutcome],
) -> Result<(), RequestError> {
    let mut event = permitted(context, operation, plan, "PARTIAL");
    event.explanation = Some(outcome_explanation(outcomes));
    append(log, event).await
}

/// An entry of an operation the gateway sent on, naming it and its nodes.
fn permitted(
    context: &RequestContext<'_>,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
    reason: &str,
) -> AuditEvent {
    let mut event = operation_event(
        Some(&context.caller.principal),
        Some(context.caller),
        context.trace,
        AuditKind::FederatedOperation,
        Decision::Permit,
        reason,
    );
    event.subject = Some(subject(operation, plan));
    event
}

/// Writes the entry of an operation refused at the gateway.
pub async fn refusal(
    log: &AuditLog,
    principal: Option<&Principal>,
    caller: Option<&Caller>,
    trace: &TraceParent,
    refusal: &RequestError,
) -> Result<(), RequestError> {
    let mut event = match refusal {
        RequestError::Unauthenticated(code) => operation_event(
            principal,
            caller,
            trace,
            AuditKind::Denial,
            Decision::Deny,
            code,
        ),
        other => operation_event(
            principal,
            caller,
            trace,
            AuditKind::FederatedOperation,
            Decision::Deny,
            &other.audit_reason(),
        ),
    };
    event.subject = Some("operation refused at the gateway".into());
    event.explanation = Some(format!(
        "{}: {}",
        refusal.code(),
        truncate(&refusal.to_string(), 300)
    ));
    append(log, event).await
}

/// Appends one entry to the gateway's log and waits until it is durable.
async fn append(log: &AuditLog, event: AuditEvent) -> Result<(), RequestError> {
    log.append(event).await.map(|_| ()).map_err(|err| {
        tracing::error!(error = ?err, "writing the gateway audit entry failed");
        RequestError::AuditUnavailable
    })
}

/// An entry of the gateway's log: who asked (as far as known), for which
/// purpose, in which trace.
fn operation_event(
    principal: Option<&Principal>,
    caller: Option<&Caller>,
    trace: &TraceParent,
    kind: AuditKind,
    decision: Decision,
    reason: &str,
) -> AuditEvent {
    let mut event = AuditEvent::new(kind, decision, reason.to_owned());
    if let Some(p) = principal {
        event.actor_agency = Some(p.agency.clone());
        event.actor_user = Some(p.user.clone());
        event.actor_roles = p.roles.clone();
    }
    if let Some(c) = caller {
        event.purpose = c.purpose;
        event.justification = c.justification.clone();
    }
    event.trace_id = Some(trace.trace_id_hex());
    event
}

fn subject(operation: &CheckedOperation, plan: &ExecutionPlan) -> String {
    operation_subject(
        operation.operation_type(),
        &operation.roots,
        plan.jobs.iter().map(|j| &j.agency),
    )
}

/// `query survivor,agencies -> [shelter-north]`: the operation type, its
/// root fields and the nodes asked.
pub fn operation_subject<'a>(
    operation_type: OperationType,
    roots: &[RootField],
    nodes: impl Iterator<Item = &'a AgencyId>,
) -> String {
    let fields: Vec<&str> = roots.iter().map(|r| r.field.name.as_str()).collect();
    let nodes: Vec<&str> = nodes.map(AgencyId::as_str).collect();
    format!(
        "{} {} -> [{}]",
        operation_type.name(),
        fields.join(","),
        nodes.join(",")
    )
}

/// What each node asked did: `legal-aid-city: NODE_UNAVAILABLE (UNREACHABLE);
/// shelter-north: answered in 812 us`.
pub fn outcome_explanation(outcomes: &[NodeOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| match &o.answer {
            Err(f) => format!(
                "{}: {} ({})",
                o.agency,
                ErrorCode::NodeUnavailable,
                f.reason()
            ),
            Ok(d) => format!("{}: answered in {} us", o.agency, d.as_micros()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

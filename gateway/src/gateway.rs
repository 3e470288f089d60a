//! Executing one client operation across the federation: check it, plan it,
//! send each node its part concurrently, answer the gateway's own fields,
//! merge, and answer only once the gateway's audit entry is durable.
//!
//! A node that fails costs only the root fields it was asked for: they are
//! `null` (or, for a scattered field, lack that node's items) and the answer
//! carries a `NODE_UNAVAILABLE` error naming the agency. A mutation goes to
//! exactly one node and is never retried, so a failed owner means nothing
//! was written anywhere else.
//!
//! A mutation's `Idempotency-Key` goes on, unchanged, to the owner node,
//! which keeps it per caller and per root field (alias or name), so each
//! root field of the operation is deduplicated on its own there. Since a
//! mutation operation goes to exactly one node in one call (one that would
//! change the records of several agencies is refused above), no key ever
//! has to be split between node calls. A query's key is not sent on:
//! queries change nothing and are always answered afresh.

use std::sync::Arc;
use std::time::Duration;

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::{JsonMap, JsonValue};
use exchange_schema::{AgencyId, AuditEvent, AuditKind, Decision, ErrorCode, Purpose};
use exchange_trust::{Federation, Principal, TokenVerifier};
use tracing::Instrument as _;

use exchange_audit::AuditLog;

use crate::config::LimitsConfig;
use crate::directory::DirectorySchema;
use crate::error::{NodeFailure, RequestError, graphql_error, node_unavailable, tag_with_agency};
use crate::merge::{CompositeCursor, NodePart, merge_connection};
use crate::nodes::{Forwarded, NodeAnswer, Nodes};
use crate::plan::{self, Checked, FieldRefusal, RootField, Target, page_size_of, resolve};
use crate::routing::FederationSchema;
use crate::telemetry::{TraceParent, outgoing};

/// Everything an operation is executed with. One per gateway.
pub struct Gateway {
    pub schema: FederationSchema,
    pub limits: LimitsConfig,
    pub federation: Arc<Federation>,
    pub verifier: Arc<TokenVerifier>,
    pub nodes: Arc<Nodes>,
    pub directory: DirectorySchema,
    pub audit: AuditLog,
    /// Parsed and validated operations, by text.
    pub documents: plan::DocumentCache,
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

/// The work for one node.
struct NodeJob {
    agency: AgencyId,
    indices: Vec<usize>,
}

impl Gateway {
    /// Runs an operation. A [`RequestError`] means nothing was sent to any
    /// node.
    pub async fn execute(
        &self,
        caller: &Caller,
        request: ClientRequest,
        trace: &TraceParent,
    ) -> Result<Executed, RequestError> {
        let raw_variables = request.variables.unwrap_or_default();
        let checked = plan::check(
            &self.schema,
            &self.limits,
            &self.documents,
            &request.query,
            request.operation_name.as_deref(),
            &raw_variables,
        )?;
        let roots = plan::root_fields(&checked)?;
        let targets = plan::route(
            &self.schema,
            &checked,
            &roots,
            &caller.principal.agency,
            |a| self.nodes.has_node(a),
        )?;
        let is_mutation = checked.operation_type() == OperationType::Mutation;

        // Where each scattered field starts, from the client's `after`.
        let mut starts: Vec<Option<CompositeCursor>> = vec![None; roots.len()];
        for (i, target) in targets.iter().enumerate() {
            if let Target::Scatter(rule) = target {
                let after = if rule.cursor {
                    roots[i]
                        .field
                        .specified_argument_by_name("after")
                        .map(|v| resolve(v, &checked.variables))
                        .unwrap_or(JsonValue::Null)
                } else {
                    JsonValue::Null
                };
                starts[i] = Some(match after.as_str() {
                    Some(raw) => CompositeCursor::decode(raw)?,
                    None => CompositeCursor::default(),
                });
            }
        }

        // Group the root fields by node, in federation order.
        let mut jobs: Vec<NodeJob> = Vec::new();
        for agency in self.nodes.agencies() {
            let indices: Vec<usize> = targets
                .iter()
                .enumerate()
                .filter(|(i, t)| match t {
                    Target::Node(a) => a == agency,
                    Target::Scatter(_) => !starts[*i].as_ref().is_some_and(|s| s.is_done(agency)),
                    _ => false,
                })
                .map(|(i, _)| i)
                .collect();
            if !indices.is_empty() {
                jobs.push(NodeJob {
                    agency: agency.clone(),
                    indices,
                });
            }
        }
        if is_mutation
            && (jobs.len() > 1 || targets.iter().any(|t| matches!(t, Target::Scatter(_))))
        {
            return Err(RequestError::BadUserInput(
                "a mutation operation may change the records of one agency only: send one operation per owning agency"
                    .into(),
            ));
        }

        let fast_path = checked.single_operation
            && jobs.len() == 1
            && targets.iter().all(|t| matches!(t, Target::Node(_)))
            && checked.operation.selection_set.selections.len() == roots.len()
            && checked
                .operation
                .selection_set
                .selections
                .iter()
                .all(|s| s.as_field().is_some_and(|f| f.directives.is_empty()));

        let calls = jobs.iter().map(|job| {
            self.call_node(
                job,
                &checked,
                &roots,
                &targets,
                &starts,
                &raw_variables,
                fast_path.then_some(&request.query),
                request.operation_name.as_deref(),
                caller,
                trace,
                is_mutation,
            )
        });
        let local = self.local_fields(&checked, &roots, &targets, &raw_variables);
        // The gateway's audit entry names the operation, its fields and the
        // nodes asked, all known now: it is written while the nodes work, and
        // nothing is answered until it is durable (each node also records
        // its own disclosure before it answers).
        let subject = operation_subject(
            checked.operation_type(),
            &roots,
            jobs.iter().map(|j| &j.agency),
        );
        let mut forwarded = operation_event(
            Some(&caller.principal),
            Some(caller),
            trace,
            AuditKind::FederatedOperation,
            Decision::Permit,
            "FORWARDED",
        );
        forwarded.subject = Some(subject.clone());
        let (written, (answers, local)) = futures::future::join(
            self.append_audit(forwarded),
            futures::future::join(futures::future::join_all(calls), local),
        )
        .await;
        written?;

        // Assemble the answer in the client's field order.
        let mut errors: Vec<JsonValue> = Vec::new();
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut data = JsonMap::new();
        let (mut local_data, local_errors) = local?;
        errors.extend(local_errors);
        for (job, answer) in jobs.iter().zip(&answers) {
            outcomes.push(NodeOutcome {
                agency: job.agency.clone(),
                answer: answer.as_ref().map(|a| a.elapsed).map_err(Clone::clone),
            });
            match answer {
                Ok(a) => {
                    if let Some(list) = a.body.get("errors").and_then(JsonValue::as_array) {
                        errors.extend(
                            list.iter()
                                .cloned()
                                .map(|e| tag_with_agency(e, &job.agency)),
                        );
                    }
                }
                Err(failure) => {
                    for &i in &job.indices {
                        errors.push(node_unavailable(
                            &job.agency,
                            failure,
                            roots[i].key.as_str(),
                            is_mutation,
                        ));
                    }
                }
            }
        }
        let mut null_at_root = false;
        for (i, root) in roots.iter().enumerate() {
            let key = root.key.as_str();
            let value = match &targets[i] {
                Target::Typename => {
                    JsonValue::String(checked.operation.object_type().as_str().into())
                }
                Target::Introspection | Target::Gateway => {
                    local_data.remove(key).unwrap_or(JsonValue::Null)
                }
                Target::Refused(refusal) => {
                    errors.push(refusal_error(refusal, key));
                    JsonValue::Null
                }
                Target::Node(agency) => jobs
                    .iter()
                    .zip(&answers)
                    .find(|(job, _)| &job.agency == agency)
                    .and_then(|(_, answer)| answer.as_ref().ok())
                    .and_then(|a| a.body.get("data"))
                    .and_then(|d| d.get(key))
                    .cloned()
                    .unwrap_or(JsonValue::Null),
                Target::Scatter(rule) => {
                    let parts: Vec<NodePart> = jobs
                        .iter()
                        .zip(&answers)
                        .filter(|(job, _)| job.indices.contains(&i))
                        .filter_map(|(job, answer)| {
                            let value = answer.as_ref().ok()?.body.get("data")?.get(key)?.clone();
                            (!value.is_null()).then(|| NodePart {
                                agency: job.agency.clone(),
                                value,
                            })
                        })
                        .collect();
                    let first = page_size_of(&root.field, &checked.variables).unwrap_or(usize::MAX);
                    let start = starts[i].clone().unwrap_or_default();
                    merge_connection(
                        &checked.document,
                        &root.field,
                        &checked.variables,
                        rule,
                        &parts,
                        &start,
                        first,
                    )
                }
            };
            if value.is_null() && root.field.ty().is_non_null() {
                null_at_root = true;
            }
            data.insert(key, value);
        }
        let mut response = JsonMap::new();
        if !errors.is_empty() {
            response.insert("errors", JsonValue::Array(errors));
        }
        response.insert(
            "data",
            if null_at_root {
                JsonValue::Null
            } else {
                JsonValue::Object(data)
            },
        );
        if outcomes.iter().any(NodeOutcome::failed) {
            // Which nodes failed is part of what auditors need to know about
            // the operation: a second entry, written only on this path.
            let mut partial = operation_event(
                Some(&caller.principal),
                Some(caller),
                trace,
                AuditKind::FederatedOperation,
                Decision::Permit,
                "PARTIAL",
            );
            partial.subject = Some(subject);
            partial.explanation = Some(outcome_explanation(&outcomes));
            self.append_audit(partial).await?;
        }
        Ok(Executed {
            response: JsonValue::Object(response),
            outcomes,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_node(
        &self,
        job: &NodeJob,
        checked: &Checked,
        roots: &[RootField],
        targets: &[Target],
        starts: &[Option<CompositeCursor>],
        raw_variables: &JsonMap,
        verbatim: Option<&String>,
        operation_name: Option<&str>,
        caller: &Caller,
        trace: &TraceParent,
        is_mutation: bool,
    ) -> Result<NodeAnswer, NodeFailure> {
        let body = match verbatim {
            Some(query) => {
                let mut body = JsonMap::new();
                body.insert("query", JsonValue::String(query.as_str().into()));
                if let Some(name) = operation_name {
                    body.insert("operationName", JsonValue::String(name.into()));
                }
                body.insert("variables", JsonValue::Object(raw_variables.clone()));
                body
            }
            None => {
                let mut q = plan::node_query(
                    &self.schema,
                    checked,
                    roots,
                    targets,
                    &job.indices,
                    raw_variables,
                )
                .map_err(|_| NodeFailure::BadAnswer)?;
                for (i, var) in &q.scatter_positions {
                    let position = starts[*i]
                        .as_ref()
                        .and_then(|s| s.position(&job.agency))
                        .map(|p| JsonValue::String(p.into()))
                        .unwrap_or(JsonValue::Null);
                    q.variables.insert(var.as_str(), position);
                }
                let mut body = JsonMap::new();
                body.insert("query", JsonValue::String(q.query.into()));
                if let Some(name) = q.operation_name {
                    body.insert("operationName", JsonValue::String(name.into()));
                }
                body.insert("variables", JsonValue::Object(q.variables));
                body
            }
        };
        let bytes = serde_json::to_vec(&body).map_err(|_| NodeFailure::BadAnswer)?;
        let without_key;
        let forwarded = if is_mutation || caller.forwarded.idempotency_key.is_none() {
            &caller.forwarded
        } else {
            without_key = Forwarded {
                idempotency_key: None,
                ..caller.forwarded.clone()
            };
            &without_key
        };
        let span = tracing::info_span!(
            "node.call",
            otel.kind = "client",
            agency = %job.agency,
            mutation = is_mutation,
            outcome = tracing::field::Empty,
        );
        let traceparent = outgoing(&span, trace).header();
        let result = self
            .nodes
            .call(&job.agency, bytes, forwarded, &traceparent)
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

    /// Answers the gateway's own fields and introspection.
    async fn local_fields(
        &self,
        checked: &Checked,
        roots: &[RootField],
        targets: &[Target],
        raw_variables: &JsonMap,
    ) -> Result<(JsonMap, Vec<JsonValue>), RequestError> {
        let mut data = JsonMap::new();
        let mut errors = Vec::new();
        let gateway: Vec<usize> = (0..roots.len())
            .filter(|&i| matches!(targets[i], Target::Gateway))
            .collect();
        if !gateway.is_empty() {
            let q = plan::node_query(
                &self.schema,
                checked,
                roots,
                targets,
                &gateway,
                raw_variables,
            )?;
            let variables =
                serde_json::to_value(&q.variables).map_err(|_| RequestError::Internal)?;
            let mut request = async_graphql::Request::new(q.query)
                .variables(async_graphql::Variables::from_json(variables));
            if let Some(name) = q.operation_name {
                request = request.operation_name(name);
            }
            let response = self.directory.execute(request).await;
            let value: JsonValue =
                serde_json_bytes::to_value(&response).map_err(|_| RequestError::Internal)?;
            if let Some(obj) = value.get("data").and_then(JsonValue::as_object) {
                data.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let Some(list) = value.get("errors").and_then(JsonValue::as_array) {
                errors.extend(list.iter().cloned());
            }
        }
        if targets.iter().any(|t| matches!(t, Target::Introspection)) {
            let variables =
                apollo_compiler::validation::Valid::assume_valid(checked.variables.clone());
            let response = apollo_compiler::introspection::partial_execute(
                self.schema.schema(),
                self.schema.implementers(),
                &checked.document,
                &checked.operation,
                &variables,
            )
            .map_err(|e| RequestError::BadUserInput(e.message().to_string()))?;
            if let Some(obj) = response.data {
                for (i, root) in roots.iter().enumerate() {
                    if matches!(targets[i], Target::Introspection)
                        && let Some(v) = obj.get(root.key.as_str())
                    {
                        data.insert(root.key.as_str(), v.clone());
                    }
                }
            }
            for error in response.errors {
                let value =
                    serde_json_bytes::to_value(&error).map_err(|_| RequestError::Internal)?;
                errors.push(value);
            }
        }
        Ok((data, errors))
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
        self.append_audit(event).await
    }

    /// Appends one entry to the gateway's log and waits until it is durable.
    async fn append_audit(&self, event: AuditEvent) -> Result<(), RequestError> {
        self.audit.append(event).await.map(|_| ()).map_err(|err| {
            tracing::error!(error = ?err, "writing the gateway audit entry failed");
            RequestError::AuditUnavailable
        })
    }
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

/// `query survivor,agencies -> [shelter-north]`: the operation type, its
/// root fields and the nodes asked.
fn operation_subject<'a>(
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
fn outcome_explanation(outcomes: &[NodeOutcome]) -> String {
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

fn refusal_error(refusal: &FieldRefusal, key: &str) -> JsonValue {
    match refusal {
        FieldRefusal::BadId(message) => graphql_error(message, ErrorCode::BadUserInput, Some(key)),
        FieldRefusal::NoNode(agency) => graphql_error(
            &format!("no agency node holds records of {agency}"),
            ErrorCode::NotFound,
            Some(key),
        ),
    }
}

//! Stage 6, merge: assemble the client's answer in its field order from the
//! nodes' answers and the gateway's own. A failed node's fields are `null`
//! with a `NODE_UNAVAILABLE` error naming the agency; a node's own errors
//! are passed on tagged with its agency; scattered connections are merged
//! by their declared order ([`crate::merge`]).

use apollo_compiler::response::{JsonMap, JsonValue};
use exchange_schema::ErrorCode;

use crate::error::{graphql_error, node_unavailable, tag_with_agency};
use crate::merge::{NodePart, merge_connection};
use crate::plan::{FieldRefusal, Target, page_size_of};

use super::check::CheckedOperation;
use super::fan_out::NodeAnswers;
use super::local::LocalAnswer;
use super::plan::ExecutionPlan;
use super::{Executed, NodeOutcome};

/// Assembles the answer. `answers` are in the plan's job order.
pub fn run(
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
    answers: &NodeAnswers,
    local: LocalAnswer,
) -> Executed {
    let checked = &operation.checked;
    let roots = &operation.roots;
    let is_mutation = operation.is_mutation();
    let LocalAnswer {
        data: mut local_data,
        mut errors,
    } = local;
    let mut outcomes = Vec::with_capacity(plan.jobs.len());
    for (job, answer) in plan.jobs.iter().zip(answers) {
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
    let mut data = JsonMap::new();
    let mut null_at_root = false;
    for (i, root) in roots.iter().enumerate() {
        let key = root.key.as_str();
        let value = match &plan.targets[i] {
            Target::Typename => JsonValue::String(checked.operation.object_type().as_str().into()),
            Target::Introspection | Target::Gateway => {
                local_data.remove(key).unwrap_or(JsonValue::Null)
            }
            Target::Refused(refusal) => {
                errors.push(refusal_error(refusal, key));
                JsonValue::Null
            }
            Target::Node(agency) => plan
                .jobs
                .iter()
                .zip(answers)
                .find(|(job, _)| &job.agency == agency)
                .and_then(|(_, answer)| answer.as_ref().ok())
                .and_then(|a| a.body.get("data"))
                .and_then(|d| d.get(key))
                .cloned()
                .unwrap_or(JsonValue::Null),
            Target::Scatter(rule) => {
                let parts: Vec<NodePart> = plan
                    .jobs
                    .iter()
                    .zip(answers)
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
                let start = plan.starts[i].clone().unwrap_or_default();
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
    Executed {
        response: JsonValue::Object(response),
        outcomes,
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

//! Stage 3, plan: where each root field goes (a node, every node, the
//! gateway itself, or refused), where each scattered field resumes from the
//! client's composite cursor, and which node gets which fields. A mutation
//! that would change the records of more than one agency is refused here,
//! before anything is sent.

use apollo_compiler::response::JsonValue;
use exchange_schema::AgencyId;

use crate::error::RequestError;
use crate::merge::CompositeCursor;
use crate::plan::{Target, resolve};
use crate::routing::FederationSchema;

use super::check::CheckedOperation;

/// The work for one node: the indices of the root fields it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJob {
    pub agency: AgencyId,
    pub indices: Vec<usize>,
}

/// How an operation is executed.
#[derive(Debug)]
pub struct ExecutionPlan {
    /// Where each root field goes, by index.
    pub targets: Vec<Target>,
    /// Where each scattered field starts, from the client's `after`.
    pub starts: Vec<Option<CompositeCursor>>,
    /// One job per node asked, in federation order.
    pub jobs: Vec<NodeJob>,
    /// Whether the one node asked can be sent the client's text unchanged
    /// (one operation, every root field for that node, no root
    /// directives): the node then parses what the client wrote.
    pub verbatim: bool,
}

/// Plans a checked operation for `caller` over the agencies with a node
/// (in federation order).
pub fn run(
    schema: &FederationSchema,
    operation: &CheckedOperation,
    caller: &AgencyId,
    agencies: &[AgencyId],
) -> Result<ExecutionPlan, RequestError> {
    let checked = &operation.checked;
    let roots = &operation.roots;
    let targets = crate::plan::route(schema, checked, roots, caller, |a| agencies.contains(a))?;

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

    let mut jobs: Vec<NodeJob> = Vec::new();
    for agency in agencies {
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
    if operation.is_mutation()
        && (jobs.len() > 1 || targets.iter().any(|t| matches!(t, Target::Scatter(_))))
    {
        return Err(RequestError::BadUserInput(
            "a mutation operation may change the records of one agency only: send one operation per owning agency"
                .into(),
        ));
    }

    let selections = &checked.operation.selection_set.selections;
    let verbatim = checked.single_operation
        && jobs.len() == 1
        && targets.iter().all(|t| matches!(t, Target::Node(_)))
        && selections.len() == roots.len()
        && selections
            .iter()
            .all(|s| s.as_field().is_some_and(|f| f.directives.is_empty()));

    Ok(ExecutionPlan {
        targets,
        starts,
        jobs,
        verbatim,
    })
}

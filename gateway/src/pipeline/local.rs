//! Stage 4, beside the fan-out: the fields the gateway answers itself (the
//! agency directory and node health, through its own schema) and schema
//! introspection, answered from the federation schema.

use apollo_compiler::response::{JsonMap, JsonValue};

use crate::directory::DirectorySchema;
use crate::error::RequestError;
use crate::plan::Target;
use crate::routing::FederationSchema;

use super::check::CheckedOperation;
use super::plan::ExecutionPlan;

/// The gateway's own part of the answer: data by response key, and errors.
#[derive(Debug, Default)]
pub struct LocalAnswer {
    pub data: JsonMap,
    pub errors: Vec<JsonValue>,
}

/// Answers the gateway's own fields and introspection.
pub async fn run(
    schema: &FederationSchema,
    directory: &DirectorySchema,
    operation: &CheckedOperation,
    plan: &ExecutionPlan,
) -> Result<LocalAnswer, RequestError> {
    let mut answer = LocalAnswer::default();
    let targets = &plan.targets;
    let roots = &operation.roots;
    let checked = &operation.checked;
    let gateway: Vec<usize> = (0..roots.len())
        .filter(|&i| matches!(targets[i], Target::Gateway))
        .collect();
    if !gateway.is_empty() {
        let q = crate::plan::node_query(
            schema,
            checked,
            roots,
            targets,
            &gateway,
            &operation.raw_variables,
        )?;
        let variables = serde_json::to_value(&q.variables).map_err(|_| RequestError::Internal)?;
        let mut request = async_graphql::Request::new(q.query)
            .variables(async_graphql::Variables::from_json(variables));
        if let Some(name) = q.operation_name {
            request = request.operation_name(name);
        }
        let response = directory.execute(request).await;
        let value: JsonValue =
            serde_json_bytes::to_value(&response).map_err(|_| RequestError::Internal)?;
        if let Some(obj) = value.get("data").and_then(JsonValue::as_object) {
            answer
                .data
                .extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(list) = value.get("errors").and_then(JsonValue::as_array) {
            answer.errors.extend(list.iter().cloned());
        }
    }
    if targets.iter().any(|t| matches!(t, Target::Introspection)) {
        let variables = apollo_compiler::validation::Valid::assume_valid(checked.variables.clone());
        let response = apollo_compiler::introspection::partial_execute(
            schema.schema(),
            schema.implementers(),
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
                    answer.data.insert(root.key.as_str(), v.clone());
                }
            }
        }
        for error in response.errors {
            let value = serde_json_bytes::to_value(&error).map_err(|_| RequestError::Internal)?;
            answer.errors.push(value);
        }
    }
    Ok(answer)
}

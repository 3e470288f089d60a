//! Stage 2, check: parse and validate the client's operation against the
//! federation schema (through the document cache), hold it to the limits,
//! coerce its variables and collect its root fields. Nothing is sent
//! anywhere before this passes.

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::JsonMap;

use crate::config::LimitsConfig;
use crate::error::RequestError;
use crate::plan::{self, Checked, DocumentCache, RootField};
use crate::routing::FederationSchema;

use super::ClientRequest;

/// An operation that passed every check, with what later stages need of
/// the client's request.
#[derive(Debug)]
pub struct CheckedOperation {
    pub checked: Checked,
    /// The root fields, in response order.
    pub roots: Vec<RootField>,
    /// The variables as the client sent them (nodes coerce them again).
    pub raw_variables: JsonMap,
    /// The client's text, sent on unchanged when one node gets all of it.
    pub query: String,
    pub operation_name: Option<String>,
}

impl CheckedOperation {
    pub fn operation_type(&self) -> OperationType {
        self.checked.operation_type()
    }

    pub fn is_mutation(&self) -> bool {
        self.operation_type() == OperationType::Mutation
    }
}

/// Checks a client's request.
pub fn run(
    schema: &FederationSchema,
    limits: &LimitsConfig,
    documents: &DocumentCache,
    request: ClientRequest,
) -> Result<CheckedOperation, RequestError> {
    let raw_variables = request.variables.unwrap_or_default();
    let checked = plan::check(
        schema,
        limits,
        documents,
        &request.query,
        request.operation_name.as_deref(),
        &raw_variables,
    )?;
    let roots = plan::root_fields(&checked)?;
    Ok(CheckedOperation {
        checked,
        roots,
        raw_variables,
        query: request.query,
        operation_name: request.operation_name,
    })
}

//! The federation schema (`schema/federation.graphql`) and the routing rule
//! declared next to each root field.
//!
//! Every `Query` and `Mutation` field carries exactly one of:
//!
//! * `@route(by: "id")` / `@route(by: "input.survivorId")`: the argument at
//!   that path holds a global ID `<agency>:<local>`; the field goes to that
//!   agency's node.
//! * `@route(to: CALLER)`: the field goes to the node of the caller's own
//!   agency (from the verified token).
//! * `@scatter(merge: ORDERED, orderBy: "createdAt", direction: DESC,
//!   cursor: true)`: the field goes to every node and the connections are
//!   merged in that order, with a composite cursor (see [`crate::merge`]).
//! * `@gateway`: the gateway answers it itself (the agency directory, node
//!   health).
//!
//! [`FederationSchema::load`] checks the rules when the gateway starts, so a
//! mistake in the schema file stops the gateway instead of misrouting.

use std::collections::HashMap;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::schema::{ExtendedType, FieldDefinition, Implementers};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};

/// The client-facing schema, as checked in.
pub const FEDERATION_SDL: &str = include_str!("../../schema/federation.graphql");

/// Path of the federation schema relative to the workspace root.
pub const FEDERATION_SDL_PATH: &str = "schema/federation.graphql";

/// The directives and enums that carry routing rules; not part of any node's
/// subgraph.
pub const ROUTING_DEFINITIONS: &[&str] = &[
    "route",
    "scatter",
    "gateway",
    "RouteTarget",
    "MergeRule",
    "SortDirection",
];

/// Page size a node uses when `first` is not given (its `page_size`).
pub use exchange_schema::limits::DEFAULT_PAGE_SIZE;

/// Where a root field goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootRule {
    /// To the node of the agency named by the global ID at this argument path.
    ByArgument(Vec<String>),
    /// To the node of the caller's own agency.
    ToCaller,
    /// To every node; answers merged by [`ScatterRule`].
    Scatter(ScatterRule),
    /// Answered by the gateway itself.
    Gateway,
}

/// The merge of a scattered connection field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScatterRule {
    /// Field of the edge's node whose value orders the merge.
    pub order_by: String,
    /// Newest (greatest) first when true.
    pub descending: bool,
    /// Whether the field takes `first`/`after` and returns cursors.
    pub cursor: bool,
}

/// Why the federation schema or its rules cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{FEDERATION_SDL_PATH} is not a valid schema: {0}")]
    Invalid(String),
    #[error(
        "{FEDERATION_SDL_PATH}: field {0} has no routing directive (@route, @scatter or @gateway)"
    )]
    MissingRule(String),
    #[error("{FEDERATION_SDL_PATH}: field {0} has more than one routing directive")]
    AmbiguousRule(String),
    #[error("{FEDERATION_SDL_PATH}: field {field}: {message}")]
    BadRule { field: String, message: String },
}

/// The parsed and validated federation schema with its routing rules.
#[derive(Debug)]
pub struct FederationSchema {
    schema: Valid<Schema>,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    query_rules: HashMap<String, RootRule>,
    mutation_rules: HashMap<String, RootRule>,
}

impl FederationSchema {
    /// Parses the checked-in schema and reads every root field's rule.
    pub fn load() -> Result<Self, SchemaError> {
        Self::from_sdl(FEDERATION_SDL)
    }

    /// Parses `sdl` and reads every root field's rule.
    pub fn from_sdl(sdl: &str) -> Result<Self, SchemaError> {
        let schema = Schema::parse_and_validate(sdl, FEDERATION_SDL_PATH)
            .map_err(|e| SchemaError::Invalid(e.errors.to_string()))?;
        let mut query_rules = HashMap::new();
        let mut mutation_rules = HashMap::new();
        for op in [OperationType::Query, OperationType::Mutation] {
            let Some(root) = schema.root_operation(op) else {
                continue;
            };
            let Some(ExtendedType::Object(object)) = schema.types.get(root) else {
                continue;
            };
            for (name, field) in &object.fields {
                let coordinate = format!("{root}.{name}");
                let rule = read_rule(&schema, &coordinate, field)?;
                let rules = if op == OperationType::Query {
                    &mut query_rules
                } else {
                    &mut mutation_rules
                };
                rules.insert(name.to_string(), rule);
            }
        }
        let implementers = schema.implementers_map();
        Ok(Self {
            schema,
            implementers,
            query_rules,
            mutation_rules,
        })
    }

    pub fn schema(&self) -> &Valid<Schema> {
        &self.schema
    }

    pub fn implementers(&self) -> &apollo_compiler::collections::HashMap<Name, Implementers> {
        &self.implementers
    }

    /// The rule of a root field.
    pub fn rule(&self, operation: OperationType, field: &str) -> Option<&RootRule> {
        match operation {
            OperationType::Query => self.query_rules.get(field),
            OperationType::Mutation => self.mutation_rules.get(field),
            OperationType::Subscription => None,
        }
    }
}

fn string_arg(directive: &apollo_compiler::ast::Directive, name: &str) -> Option<String> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn read_rule(
    schema: &Valid<Schema>,
    coordinate: &str,
    field: &Node<FieldDefinition>,
) -> Result<RootRule, SchemaError> {
    let bad = |message: String| SchemaError::BadRule {
        field: coordinate.to_owned(),
        message,
    };
    let found: Vec<_> = field
        .directives
        .iter()
        .filter(|d| matches!(d.name.as_str(), "route" | "scatter" | "gateway"))
        .collect();
    let directive = match found.as_slice() {
        [] => return Err(SchemaError::MissingRule(coordinate.to_owned())),
        [one] => *one,
        _ => return Err(SchemaError::AmbiguousRule(coordinate.to_owned())),
    };
    match directive.name.as_str() {
        "gateway" => Ok(RootRule::Gateway),
        "route" => {
            let by = string_arg(directive, "by");
            let to = match directive.specified_argument_by_name("to").map(|v| &**v) {
                Some(Value::Enum(e)) => Some(e.to_string()),
                _ => None,
            };
            match (by, to.as_deref()) {
                (Some(path), None) => {
                    let path: Vec<String> = path.split('.').map(str::to_owned).collect();
                    check_id_path(schema, field, &path).map_err(bad)?;
                    Ok(RootRule::ByArgument(path))
                }
                (None, Some("CALLER")) => Ok(RootRule::ToCaller),
                _ => Err(bad(
                    "@route takes exactly one of by: \"<argument path>\" or to: CALLER".into(),
                )),
            }
        }
        _ => {
            let order_by = string_arg(directive, "orderBy")
                .ok_or_else(|| bad("@scatter needs orderBy".into()))?;
            let descending = matches!(
                directive.specified_argument_by_name("direction").map(|v| &**v),
                Some(Value::Enum(e)) if e == "DESC"
            );
            let cursor = matches!(
                directive.specified_argument_by_name("cursor").map(|v| &**v),
                Some(Value::Boolean(true))
            );
            check_connection(schema, field, &order_by, cursor).map_err(bad)?;
            Ok(RootRule::Scatter(ScatterRule {
                order_by,
                descending,
                cursor,
            }))
        }
    }
}

/// The argument path must exist and end at an `ID`.
fn check_id_path(schema: &Schema, field: &FieldDefinition, path: &[String]) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty argument path")?;
    let arg = field
        .arguments
        .iter()
        .find(|a| a.name == first.as_str())
        .ok_or_else(|| format!("no argument `{first}`"))?;
    let mut ty = arg.ty.inner_named_type().clone();
    for step in rest {
        let Some(ExtendedType::InputObject(input)) = schema.types.get(&ty) else {
            return Err(format!(
                "`{ty}` is not an input object, cannot follow `{step}`"
            ));
        };
        let next = input
            .fields
            .get(step.as_str())
            .ok_or_else(|| format!("input `{ty}` has no field `{step}`"))?;
        ty = next.ty.inner_named_type().clone();
    }
    if ty != "ID" {
        return Err(format!("the routing argument must be an ID, not {ty}"));
    }
    Ok(())
}

/// A scattered field must return a connection whose node has `order_by`.
fn check_connection(
    schema: &Schema,
    field: &FieldDefinition,
    order_by: &str,
    cursor: bool,
) -> Result<(), String> {
    let object = |name: &Name| match schema.types.get(name) {
        Some(ExtendedType::Object(o)) => Some(o.clone()),
        _ => None,
    };
    let connection = object(field.ty.inner_named_type())
        .ok_or("a scattered field must return a connection object")?;
    let edges = connection
        .fields
        .get("edges")
        .ok_or("the connection has no `edges`")?;
    connection
        .fields
        .get("pageInfo")
        .ok_or("the connection has no `pageInfo`")?;
    let edge = object(edges.ty.inner_named_type()).ok_or("`edges` is not a list of objects")?;
    edge.fields
        .get("cursor")
        .ok_or("the edge has no `cursor`")?;
    let node = edge.fields.get("node").ok_or("the edge has no `node`")?;
    let node = object(node.ty.inner_named_type()).ok_or("the edge's `node` is not an object")?;
    node.fields
        .get(order_by)
        .ok_or_else(|| format!("the node type has no field `{order_by}` to order by"))?;
    if cursor {
        for arg in ["first", "after"] {
            if !field.arguments.iter().any(|a| a.name == arg) {
                return Err(format!("cursor: true needs a `{arg}` argument"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_root_field_of_the_checked_in_schema_has_a_valid_rule() {
        let schema = FederationSchema::load().expect("schema/federation.graphql loads");
        assert_eq!(
            schema.rule(OperationType::Query, "survivor"),
            Some(&RootRule::ByArgument(vec!["id".into()]))
        );
        assert_eq!(
            schema.rule(OperationType::Mutation, "createReferral"),
            Some(&RootRule::ByArgument(vec![
                "input".into(),
                "survivorId".into()
            ]))
        );
        assert_eq!(
            schema.rule(OperationType::Query, "survivors"),
            Some(&RootRule::ToCaller)
        );
        assert_eq!(
            schema.rule(OperationType::Query, "agencies"),
            Some(&RootRule::Gateway)
        );
        match schema.rule(OperationType::Query, "referrals") {
            Some(RootRule::Scatter(rule)) => {
                assert_eq!(rule.order_by, "createdAt");
                assert!(rule.descending && rule.cursor);
            }
            other => panic!("referrals must scatter, found {other:?}"),
        }
    }

    #[test]
    fn a_field_without_a_rule_stops_the_gateway() {
        let sdl = format!(
            "{}\ntype Query {{ a: Int }}",
            "directive @gateway on FIELD_DEFINITION"
        );
        assert!(
            matches!(FederationSchema::from_sdl(&sdl), Err(SchemaError::MissingRule(f)) if f == "Query.a")
        );
    }

    #[test]
    fn a_route_by_a_non_id_argument_is_refused() {
        let sdl = "directive @route(by: String) on FIELD_DEFINITION\ntype Query { a(x: Int): Int @route(by: \"x\") }";
        assert!(matches!(
            FederationSchema::from_sdl(sdl),
            Err(SchemaError::BadRule { .. })
        ));
    }
}

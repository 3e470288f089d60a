//! Planning a client operation over the nodes.
//!
//! [`check`] parses the operation against the federation schema (with token
//! and recursion limits), validates it, coerces its variables and holds it to
//! the depth, cost, alias and root-field limits. [`plan`] then splits it by
//! root field following each field's rule ([`crate::routing`]) and builds,
//! for every node concerned, one GraphQL document holding exactly the
//! client's selections for the root fields that node answers, with the
//! fragments and variable definitions they use, and the client's variables.
//!
//! # Reserved names
//!
//! To merge a scattered connection the gateway needs each edge's cursor and
//! ordering value and each node's `hasNextPage`, which the client may not
//! have selected. It adds them under aliases starting with `_gw`
//! (`_gwEdges`, `_gwCursor`, `_gwNode`, `_gwKey`, `_gwPage`, `_gwHasNext`)
//! and passes each node its own position as the variable `$_gwAfter<n>`;
//! these are stripped before the answer is returned. Client operations may
//! therefore not use aliases or variables starting with `_gw`.

use std::collections::HashSet;
use std::sync::Arc;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::executable::{
    Field, Fragment, Operation, Selection, SelectionSet, VariableDefinition,
};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Name, Node, name};
use exchange_schema::limits;
use exchange_schema::{AgencyId, GlobalId};

use crate::config::LimitsConfig;
use crate::error::RequestError;
use crate::routing::{FederationSchema, RootRule, ScatterRule};

/// Prefix of the aliases and variables the gateway adds.
pub use exchange_schema::limits::RESERVED_PREFIX;
/// The page size and argument values, as the limits read them.
pub use exchange_schema::limits::{page_size_of, resolve};

/// Operations already parsed and validated against the federation schema,
/// by their text: parsing and validating one costs more than the rest of
/// the gateway's planning. Only valid documents are kept; variables, limits
/// and routing are still checked per request. Bounded as described in
/// [`exchange_service::documents`].
pub type DocumentCache = exchange_service::documents::DocumentCache<Valid<ExecutableDocument>>;

/// A checked operation, ready to plan.
#[derive(Debug)]
pub struct Checked {
    pub document: Arc<Valid<ExecutableDocument>>,
    pub operation: Node<Operation>,
    /// The variables as coerced against the schema (defaults applied).
    pub variables: JsonMap,
    /// Whether the request text holds exactly one operation.
    pub single_operation: bool,
}

impl Checked {
    pub fn operation_type(&self) -> OperationType {
        self.operation.operation_type
    }
}

/// Parses, validates and limits a client operation.
pub fn check(
    schema: &FederationSchema,
    limits: &LimitsConfig,
    cache: &DocumentCache,
    query: &str,
    operation_name: Option<&str>,
    variables: &JsonMap,
) -> Result<Checked, RequestError> {
    let document = match cache.get(query) {
        Some(document) => document,
        None => {
            let document = Arc::new(parse_and_validate(schema, limits, query)?);
            cache.insert(query, document.clone());
            document
        }
    };
    check_document(schema, limits, document, operation_name, variables)
}

/// Parses and validates an operation's text against the federation schema,
/// within the token and recursion limits ([`exchange_schema::limits`]).
fn parse_and_validate(
    schema: &FederationSchema,
    limits: &LimitsConfig,
    query: &str,
) -> Result<Valid<ExecutableDocument>, RequestError> {
    Ok(limits::parse_and_validate(schema.schema(), limits, query)?)
}

/// The per-request checks of a valid document: the operation, the gateway's
/// reserved names, its variables, and the depth, cost, alias and root-field
/// limits ([`exchange_schema::limits`], as every node holds them too).
fn check_document(
    schema: &FederationSchema,
    limits: &LimitsConfig,
    document: Arc<Valid<ExecutableDocument>>,
    operation_name: Option<&str>,
    variables: &JsonMap,
) -> Result<Checked, RequestError> {
    let operation = document
        .operations
        .get(operation_name)
        .map_err(|e| RequestError::BadUserInput(e.message().to_string()))?;
    if operation.operation_type == OperationType::Subscription {
        return Err(RequestError::BadUserInput(
            "subscriptions are not offered".into(),
        ));
    }
    if operation
        .variables
        .iter()
        .any(|var| var.name.starts_with(RESERVED_PREFIX))
        || uses_reserved_alias(&document)
    {
        return Err(reserved());
    }
    let checked = limits::check_operation(
        schema.schema(),
        limits,
        &document,
        operation_name,
        variables,
    )?;
    let single_operation = document.operations.len() == 1;
    Ok(Checked {
        document,
        operation: checked.operation,
        variables: checked.variables,
        single_operation,
    })
}

fn reserved() -> RequestError {
    RequestError::BadUserInput(format!(
        "aliases and variables starting with `{RESERVED_PREFIX}` are reserved for the gateway"
    ))
}

/// Whether any field of the document (its operations and fragments) has an
/// alias starting with [`RESERVED_PREFIX`].
fn uses_reserved_alias(document: &ExecutableDocument) -> bool {
    fn in_set(set: &SelectionSet) -> bool {
        set.selections.iter().any(|selection| match selection {
            Selection::Field(field) => {
                field
                    .alias
                    .as_ref()
                    .is_some_and(|a| a.starts_with(RESERVED_PREFIX))
                    || in_set(&field.selection_set)
            }
            Selection::InlineFragment(inline) => in_set(&inline.selection_set),
            Selection::FragmentSpread(_) => false,
        })
    }
    document
        .operations
        .iter()
        .any(|operation| in_set(&operation.selection_set))
        || document
            .fragments
            .values()
            .any(|fragment| in_set(&fragment.selection_set))
}

/// Whether `@skip`/`@include` keep a selection.
pub fn included(
    directives: &apollo_compiler::executable::DirectiveList,
    variables: &JsonMap,
) -> bool {
    let flag = |name: &str| {
        directives
            .get(name)
            .and_then(|d| d.specified_argument_by_name("if"))
            .map(|v| resolve(v, variables).as_bool().unwrap_or(false))
    };
    flag("skip") != Some(true) && flag("include") != Some(false)
}

/// The fields of a selection set by response key, in response order:
/// fragments flattened, `@skip`/`@include` applied, same-key fields kept
/// together (they are merged, as GraphQL execution does).
pub fn collect_fields<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    variables: &JsonMap,
) -> Vec<(Name, Vec<&'d Node<Field>>)> {
    let mut out: Vec<(Name, Vec<&'d Node<Field>>)> = Vec::new();
    let mut seen_fragments = HashSet::new();
    collect_into(document, set, variables, &mut out, &mut seen_fragments);
    out
}

fn collect_into<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    variables: &JsonMap,
    out: &mut Vec<(Name, Vec<&'d Node<Field>>)>,
    seen_fragments: &mut HashSet<Name>,
) {
    for selection in &set.selections {
        if !included(selection.directives(), variables) {
            continue;
        }
        match selection {
            Selection::Field(field) => {
                let key = field.response_key();
                match out.iter_mut().find(|(k, _)| k == key) {
                    Some((_, fields)) => fields.push(field),
                    None => out.push((key.clone(), vec![field])),
                }
            }
            Selection::InlineFragment(inline) => collect_into(
                document,
                &inline.selection_set,
                variables,
                out,
                seen_fragments,
            ),
            Selection::FragmentSpread(spread) => {
                if !seen_fragments.insert(spread.fragment_name.clone()) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                    collect_into(
                        document,
                        &fragment.selection_set,
                        variables,
                        out,
                        seen_fragments,
                    )
                }
            }
        }
    }
}

/// One root field of the operation, same-key selections merged.
#[derive(Debug, Clone)]
pub struct RootField {
    /// The response key (alias or name).
    pub key: Name,
    /// The field with every selection made under that key, root directives
    /// removed (they were applied here).
    pub field: Node<Field>,
}

/// The root fields of the checked operation, in response order.
pub fn root_fields(checked: &Checked) -> Result<Vec<RootField>, RequestError> {
    let grouped = collect_fields(
        &checked.document,
        &checked.operation.selection_set,
        &checked.variables,
    );
    let mut out = Vec::with_capacity(grouped.len());
    for (key, fields) in grouped {
        let mut merged: Field = (**fields[0]).clone();
        merged.directives = Default::default();
        for other in &fields[1..] {
            merged
                .selection_set
                .selections
                .extend(other.selection_set.selections.iter().cloned());
        }
        out.push(RootField {
            key,
            field: Node::new(merged),
        });
    }
    Ok(out)
}

/// Where one root field goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `__typename` of the root: answered with the root type's name.
    Typename,
    /// `__schema` / `__type`: answered from the federation schema.
    Introspection,
    /// A gateway field.
    Gateway,
    /// One node.
    Node(AgencyId),
    /// Every node, merged.
    Scatter(ScatterRule),
    /// The field cannot be routed (bad global ID, unknown agency); answered
    /// with this error and `null`.
    Refused(FieldRefusal),
}

/// Why a root field was not routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRefusal {
    /// The routing argument is not a well-formed global ID.
    BadId(String),
    /// The global ID names an agency with no node in the federation.
    NoNode(AgencyId),
}

/// Decides where each root field goes.
pub fn route(
    schema: &FederationSchema,
    checked: &Checked,
    roots: &[RootField],
    caller: &AgencyId,
    has_node: impl Fn(&AgencyId) -> bool,
) -> Result<Vec<Target>, RequestError> {
    let mut targets = Vec::with_capacity(roots.len());
    for root in roots {
        let name = root.field.name.as_str();
        let target = match name {
            "__typename" => Target::Typename,
            "__schema" | "__type" => Target::Introspection,
            _ => match schema.rule(checked.operation_type(), name) {
                Some(RootRule::Gateway) => Target::Gateway,
                Some(RootRule::Scatter(rule)) => Target::Scatter(rule.clone()),
                Some(RootRule::ToCaller) => {
                    if has_node(caller) {
                        Target::Node(caller.clone())
                    } else {
                        Target::Refused(FieldRefusal::NoNode(caller.clone()))
                    }
                }
                Some(RootRule::ByArgument(path)) => {
                    route_by_argument(&root.field, path, &checked.variables, &has_node)
                }
                None => return Err(RequestError::Internal),
            },
        };
        targets.push(target);
    }
    Ok(targets)
}

fn route_by_argument(
    field: &Field,
    path: &[String],
    variables: &JsonMap,
    has_node: &impl Fn(&AgencyId) -> bool,
) -> Target {
    let mut value = field
        .specified_argument_by_name(&path[0])
        .map(|v| resolve(v, variables))
        .unwrap_or(JsonValue::Null);
    for step in &path[1..] {
        value = value.get(step.as_str()).cloned().unwrap_or(JsonValue::Null);
    }
    let Some(raw) = value.as_str() else {
        return Target::Refused(FieldRefusal::BadId(format!(
            "`{}` must be a global ID",
            path.join(".")
        )));
    };
    match GlobalId::parse(raw) {
        Ok(id) if has_node(id.agency()) => Target::Node(id.agency().clone()),
        Ok(id) => Target::Refused(FieldRefusal::NoNode(id.agency().clone())),
        Err(e) => Target::Refused(FieldRefusal::BadId(format!("`{}`: {e}", path.join(".")))),
    }
}

/// What one node is asked.
#[derive(Debug, Clone)]
pub struct NodeQuery {
    /// The GraphQL document text.
    pub query: String,
    /// The operation name, when the document has one.
    pub operation_name: Option<String>,
    /// The variables the document uses, plus `_gwAfter<n>` per scattered
    /// field (filled in per node by the caller).
    pub variables: JsonMap,
    /// For each scattered field in this document: its index among the root
    /// fields and the variable carrying the node's position.
    pub scatter_positions: Vec<(usize, String)>,
}

/// The hidden selection added to a scattered connection: each edge's cursor
/// and ordering value and the node's `hasNextPage`.
fn hidden_selections(
    schema: &FederationSchema,
    field: &Field,
    rule: &ScatterRule,
) -> Result<Vec<Selection>, RequestError> {
    let s = schema.schema();
    let lookup = |set: &SelectionSet, name: &str| -> Result<Field, RequestError> {
        let name = Name::new(name).map_err(|_| RequestError::Internal)?;
        set.new_field(s, name).map_err(|_| RequestError::Internal)
    };
    let connection = SelectionSet::new(field.ty().inner_named_type().clone());
    let edges = lookup(&connection, "edges")?;
    let edge_set = SelectionSet::new(edges.ty().inner_named_type().clone());
    let cursor = lookup(&edge_set, "cursor")?.with_alias(name!("_gwCursor"));
    let node = lookup(&edge_set, "node")?;
    let node_set = SelectionSet::new(node.ty().inner_named_type().clone());
    let key = lookup(&node_set, &rule.order_by)?.with_alias(name!("_gwKey"));
    let node = node.with_alias(name!("_gwNode")).with_selection(key);
    let edges = edges
        .with_alias(name!("_gwEdges"))
        .with_selection(cursor)
        .with_selection(node);
    let page = lookup(&connection, "pageInfo")?;
    let page_set = SelectionSet::new(page.ty().inner_named_type().clone());
    let has_next = lookup(&page_set, "hasNextPage")?.with_alias(name!("_gwHasNext"));
    let page = page.with_alias(name!("_gwPage")).with_selection(has_next);
    Ok(vec![
        Selection::Field(Node::new(edges)),
        Selection::Field(Node::new(page)),
    ])
}

/// Builds the document one node is asked: the root fields at `indices`
/// (scattered ones rewritten to take the node's position and return the
/// merge keys), the fragments they use and the variables they reference.
pub fn node_query(
    schema: &FederationSchema,
    checked: &Checked,
    roots: &[RootField],
    targets: &[Target],
    indices: &[usize],
    raw_variables: &JsonMap,
) -> Result<NodeQuery, RequestError> {
    let operation = &checked.operation;
    let mut selection_set = SelectionSet::new(operation.selection_set.ty.clone());
    let mut scatter_positions = Vec::new();
    let mut extra_variables: Vec<Node<VariableDefinition>> = Vec::new();
    for &i in indices {
        let root = &roots[i];
        let field = match &targets[i] {
            Target::Scatter(rule) => {
                let var = format!("{RESERVED_PREFIX}After{i}");
                let var_name = Name::new(&var).map_err(|_| RequestError::Internal)?;
                let mut field: Field = (*root.field).clone();
                field.arguments.retain(|a| a.name != "after");
                if rule.cursor {
                    field
                        .arguments
                        .push(Node::new(apollo_compiler::ast::Argument {
                            name: name!("after"),
                            value: Node::new(Value::Variable(var_name.clone())),
                        }));
                    extra_variables.push(Node::new(VariableDefinition {
                        name: var_name,
                        ty: Node::new(apollo_compiler::ast::Type::Named(name!("String"))),
                        default_value: None,
                        directives: Default::default(),
                    }));
                    scatter_positions.push((i, var));
                }
                field
                    .selection_set
                    .selections
                    .extend(hidden_selections(schema, &field, rule)?);
                Node::new(field)
            }
            _ => root.field.clone(),
        };
        selection_set.push(field);
    }
    let mut used_fragments = Vec::new();
    let mut used_variables = HashSet::new();
    uses(
        &checked.document,
        &selection_set,
        &mut used_fragments,
        &mut used_variables,
    );
    let mut document = ExecutableDocument::new();
    for name in &used_fragments {
        if let Some(fragment) = checked.document.fragments.get(name) {
            document.fragments.insert(name.clone(), fragment.clone());
        }
    }
    let mut variables_defs: Vec<Node<VariableDefinition>> = operation
        .variables
        .iter()
        .filter(|v| used_variables.contains(&v.name))
        .cloned()
        .collect();
    variables_defs.extend(extra_variables);
    let mut variables = JsonMap::new();
    for def in &variables_defs {
        if let Some(value) = raw_variables.get(def.name.as_str()) {
            variables.insert(def.name.as_str(), value.clone());
        }
    }
    document.operations.insert(Operation {
        operation_type: operation.operation_type,
        name: operation.name.clone(),
        variables: variables_defs,
        directives: Default::default(),
        selection_set,
    });
    Ok(NodeQuery {
        query: document.serialize().no_indent().to_string(),
        operation_name: operation.name.as_ref().map(|n| n.to_string()),
        variables,
        scatter_positions,
    })
}

/// The fragments (in first-use order) and variables a selection set uses.
fn uses(
    document: &ExecutableDocument,
    set: &SelectionSet,
    fragments: &mut Vec<Name>,
    variables: &mut HashSet<Name>,
) {
    for selection in &set.selections {
        for directive in selection.directives().iter() {
            for arg in &directive.arguments {
                value_variables(&arg.value, variables);
            }
        }
        match selection {
            Selection::Field(field) => {
                for arg in &field.arguments {
                    value_variables(&arg.value, variables);
                }
                uses(document, &field.selection_set, fragments, variables);
            }
            Selection::InlineFragment(inline) => {
                uses(document, &inline.selection_set, fragments, variables)
            }
            Selection::FragmentSpread(spread) => {
                if fragments.contains(&spread.fragment_name) {
                    continue;
                }
                fragments.push(spread.fragment_name.clone());
                if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                    fragment_uses(document, fragment, fragments, variables);
                }
            }
        }
    }
}

fn fragment_uses(
    document: &ExecutableDocument,
    fragment: &Fragment,
    fragments: &mut Vec<Name>,
    variables: &mut HashSet<Name>,
) {
    for directive in fragment.directives.iter() {
        for arg in &directive.arguments {
            value_variables(&arg.value, variables);
        }
    }
    uses(document, &fragment.selection_set, fragments, variables);
}

fn value_variables(value: &Value, out: &mut HashSet<Name>) {
    match value {
        Value::Variable(v) => {
            out.insert(v.clone());
        }
        Value::List(items) => items.iter().for_each(|i| value_variables(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| value_variables(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_ok(query: &str, variables: JsonMap) -> Checked {
        let schema = FederationSchema::load().unwrap();
        check(
            &schema,
            &LimitsConfig::default(),
            &DocumentCache::new(0, 0),
            query,
            None,
            &variables,
        )
        .unwrap()
    }

    fn check_err(query: &str, limits: &LimitsConfig) -> RequestError {
        let schema = FederationSchema::load().unwrap();
        check(
            &schema,
            limits,
            &DocumentCache::new(0, 0),
            query,
            None,
            &JsonMap::new(),
        )
        .unwrap_err()
    }

    #[test]
    fn invalid_operations_are_refused_before_anything_is_sent() {
        let err = check_err(
            "{ survivor(id: \"a:b\") { nope } }",
            &LimitsConfig::default(),
        );
        assert!(matches!(err, RequestError::InvalidOperation(_)), "{err:?}");
        let err = check_err("{ _service { sdl } }", &LimitsConfig::default());
        assert!(matches!(err, RequestError::InvalidOperation(_)), "{err:?}");
        let err = check_err("{ _gwEdges: agencies { id } }", &LimitsConfig::default());
        assert!(matches!(err, RequestError::BadUserInput(_)), "{err:?}");
    }

    #[test]
    fn limits_hold() {
        let tight = LimitsConfig {
            max_depth: 3,
            max_aliases: 1,
            max_cost: 50,
            ..LimitsConfig::default()
        };
        let deep = "{ referrals { edges { node { history { status } } } } }";
        assert!(
            matches!(check_err(deep, &tight), RequestError::TooComplex(m) if m.contains("nested"))
        );
        let aliases = "{ a: agencies { id } b: agencies { id } }";
        assert!(
            matches!(check_err(aliases, &tight), RequestError::TooComplex(m) if m.contains("aliases"))
        );
        let costly = "{ referrals(first: 100) { edges { cursor } } }";
        assert!(
            matches!(check_err(costly, &tight), RequestError::TooComplex(m) if m.contains("costs"))
        );
        let off = LimitsConfig {
            introspection: false,
            ..LimitsConfig::default()
        };
        assert!(matches!(
            check_err("{ __schema { queryType { name } } }", &off),
            RequestError::IntrospectionDisabled
        ));
    }

    /// Thirty fragments, each spreading the next twice, are costed from
    /// each fragment's cost once (never expanded, which would take 2^30
    /// steps): `F_i` costs `2^(31 - i) - 1`, and `agencies` one more, so the
    /// operation costs exactly 2^31 and is refused as too complex.
    #[test]
    fn fragments_reused_many_times_are_costed_without_blowing_up() {
        let mut query = String::from("query { agencies { ...F0 } }\n");
        for i in 0..30 {
            query.push_str(&format!(
                "fragment F{i} on MemberAgency {{ id ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        query.push_str("fragment F30 on MemberAgency { id }\n");
        let err = check_err(&query, &LimitsConfig::default());
        assert!(
            matches!(&err, RequestError::TooComplex(m)
                if m.starts_with("the operation costs 2147483648; at most 10000 is allowed")),
            "{err:?}"
        );
        assert_eq!(err.code(), exchange_schema::ErrorCode::OperationTooComplex);
    }

    /// The exact introspection query of GraphQL tools (graphql-js
    /// `getIntrospectionQuery()`, default options; 15 deep) passes the
    /// gateway's check with the default limits, and is refused when
    /// introspection is switched off.
    #[test]
    fn the_standard_introspection_query_passes_where_introspection_is_on() {
        let query = include_str!("../../schema/fixtures/graphql-js-introspection-query.graphql");
        let checked = check_ok(query, JsonMap::new());
        assert_eq!(
            checked.operation.name.as_deref(),
            Some("IntrospectionQuery")
        );
        let off = LimitsConfig {
            introspection: false,
            ..LimitsConfig::default()
        };
        assert!(matches!(
            check_err(query, &off),
            RequestError::IntrospectionDisabled
        ));
    }

    #[test]
    fn a_node_is_asked_exactly_the_clients_selection() {
        let mut vars = JsonMap::new();
        vars.insert("id", JsonValue::String("shelter-north:abc".into()));
        vars.insert("unused", JsonValue::Bool(true));
        let checked = check_ok(
            "query Q($id: ID!, $flag: Boolean = true) { s: survivor(id: $id) { ...S } agencies @include(if: $flag) { id } }
             fragment S on Survivor { id identity { givenName } }",
            vars.clone(),
        );
        let schema = FederationSchema::load().unwrap();
        let roots = root_fields(&checked).unwrap();
        assert_eq!(roots.len(), 2);
        let caller = AgencyId::parse("legal-aid-city").unwrap();
        let targets = route(&schema, &checked, &roots, &caller, |_| true).unwrap();
        assert!(matches!(&targets[0], Target::Node(a) if a.as_str() == "shelter-north"));
        assert!(matches!(&targets[1], Target::Gateway));
        let q = node_query(&schema, &checked, &roots, &targets, &[0], &vars).unwrap();
        assert!(q.query.contains("s: survivor(id: $id)"), "{}", q.query);
        assert!(q.query.contains("fragment S on Survivor"), "{}", q.query);
        assert!(!q.query.contains("agencies"), "{}", q.query);
        assert!(!q.query.contains("$flag"), "{}", q.query);
        assert_eq!(q.variables.len(), 1);
    }

    #[test]
    fn a_scattered_field_carries_the_merge_keys_and_its_position() {
        let checked = check_ok(
            "{ referrals(direction: INCOMING, first: 5) { edges { node { id } } } }",
            JsonMap::new(),
        );
        let schema = FederationSchema::load().unwrap();
        let roots = root_fields(&checked).unwrap();
        let caller = AgencyId::parse("legal-aid-city").unwrap();
        let targets = route(&schema, &checked, &roots, &caller, |_| true).unwrap();
        let q = node_query(&schema, &checked, &roots, &targets, &[0], &JsonMap::new()).unwrap();
        assert!(q.query.contains("after: $_gwAfter0"), "{}", q.query);
        assert!(q.query.contains("_gwKey: createdAt"), "{}", q.query);
        assert!(q.query.contains("_gwHasNext: hasNextPage"), "{}", q.query);
        assert_eq!(q.scatter_positions, vec![(0, "_gwAfter0".to_owned())]);
    }

    #[test]
    fn malformed_and_nodeless_ids_are_refused_per_field() {
        let checked = check_ok(
            "{ a: survivor(id: \"not an id\") { id } b: survivor(id: \"oversight-board:x\") { id } }",
            JsonMap::new(),
        );
        let schema = FederationSchema::load().unwrap();
        let roots = root_fields(&checked).unwrap();
        let caller = AgencyId::parse("legal-aid-city").unwrap();
        let targets = route(&schema, &checked, &roots, &caller, |a| {
            a.as_str() != "oversight-board"
        })
        .unwrap();
        assert!(matches!(
            &targets[0],
            Target::Refused(FieldRefusal::BadId(_))
        ));
        assert!(matches!(
            &targets[1],
            Target::Refused(FieldRefusal::NoNode(_))
        ));
    }

    #[test]
    fn a_valid_operation_is_parsed_once_and_an_invalid_one_never_kept() {
        let schema = FederationSchema::load().unwrap();
        let limits = LimitsConfig::default();
        let cache = DocumentCache::new(2, 1 << 16);
        let query = "query($id: ID!) { survivor(id: $id) { id } }";
        let variables: JsonMap = serde_json_bytes::json!({ "id": "shelter-north:1" })
            .as_object()
            .unwrap()
            .clone();
        let first = check(&schema, &limits, &cache, query, None, &variables).unwrap();
        let second = check(&schema, &limits, &cache, query, None, &variables).unwrap();
        assert!(Arc::ptr_eq(&first.document, &second.document));
        assert_eq!(cache.len(), 1);
        // Per-request checks still run on a cached document.
        assert!(check(&schema, &limits, &cache, query, None, &JsonMap::new()).is_err());
        assert!(check(&schema, &limits, &cache, "{ nope }", None, &JsonMap::new()).is_err());
        assert_eq!(cache.len(), 1, "invalid operations are not kept");
        for other in ["{ agency { id } }", "{ nodeHealth { agency } }"] {
            check(&schema, &limits, &cache, other, None, &JsonMap::new()).unwrap();
        }
        assert!(cache.len() <= 2, "the cache stays within its capacity");
    }
}

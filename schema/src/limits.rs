//! The limits every operation is held to, in one implementation for the
//! gateway and every node (a member agency can reach a node directly, so
//! the node checks whatever the gateway checks).
//!
//! [`parse_and_validate`] reads an operation's text within a token and a
//! recursion limit and validates it against a schema with apollo-compiler,
//! which is strict: an enum written as a string, a variable used where its
//! type does not fit, an unknown field are refused. [`check_operation`] then
//! picks the operation, coerces its variables, [`measure`]s it and holds the
//! measure to the [`OperationLimits`].
//!
//! # The measure
//!
//! Each fragment is measured once per request and its measure reused at
//! every spread, so a fragment spread twice by a fragment spread twice (and
//! so on) is costed in time linear in the text, never expanded.
//!
//! * **depth**: the longest chain of nested fields, through fragments, over
//!   the operation's own fields. The fields under the introspection root
//!   fields (`__schema`, `__type`) are measured apart (**introspection
//!   depth**, and how many list fields they nest), so that the standard
//!   introspection query GraphQL tools send (15 deep because of its `ofType`
//!   chain) is answered while `fields { type { fields ... } } }` chains stay
//!   bounded.
//! * **cost**: each field costs 1; a field taking `first` multiplies its
//!   children's cost by its page size (`first`, or [`DEFAULT_PAGE_SIZE`]).
//!   Saturating: an exponential fan-out costs `usize::MAX` at most.
//! * **aliases**: every alias counts, except the merge keys the gateway adds
//!   to a scattered connection ([`MERGE_ALIASES`], each on its own field),
//!   so that what the gateway accepts and forwards the node accepts too.
//! * **root fields**: distinct response keys at the root, fragments
//!   flattened (`@skip`/`@include` are not applied: the bound holds for any
//!   variables).

use std::collections::{HashMap, HashSet};

use apollo_compiler::ast::Value;
use apollo_compiler::executable::{Field, Operation, Selection, SelectionSet};
use apollo_compiler::parser::Parser;
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{ExecutableDocument, Name, Node, Schema};
use serde::Deserialize;

use crate::ErrorCode;

/// Page size a node uses when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// Prefix of the aliases and variables the gateway adds to what it forwards.
pub const RESERVED_PREFIX: &str = "_gw";

/// The aliases the gateway adds to a scattered connection to merge it, each
/// with the field it names (`None`: the edge node's ordering field, a leaf).
pub const MERGE_ALIASES: [(&str, Option<&str>); 6] = [
    ("_gwEdges", Some("edges")),
    ("_gwCursor", Some("cursor")),
    ("_gwNode", Some("node")),
    ("_gwKey", None),
    ("_gwPage", Some("pageInfo")),
    ("_gwHasNext", Some("hasNextPage")),
];

/// Limits every operation is held to, the same at the gateway and at every
/// node (`[limits]` in both configuration files).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationLimits {
    /// Deepest nesting of the operation's own fields (fragments included;
    /// introspection is bounded by `max_introspection_depth` instead).
    pub max_depth: usize,
    /// Highest estimated cost: each field costs 1, and a paginated field
    /// multiplies its children's cost by its page size (`first`, default 20).
    pub max_cost: usize,
    /// Most aliases in one operation.
    pub max_aliases: usize,
    /// Most root fields in one operation.
    pub max_root_fields: usize,
    /// Most lexical tokens the parser reads before refusing the operation.
    pub max_tokens: usize,
    /// Deepest nesting under `__schema` / `__type` (the standard query of
    /// GraphQL tools is 15 deep).
    pub max_introspection_depth: usize,
    /// Most list fields nested under `__schema` / `__type` (the standard
    /// query nests 3: types, fields, args).
    pub max_introspection_lists: usize,
    /// Whether schema introspection (`__schema`, `__type`) is answered.
    pub introspection: bool,
}

impl Default for OperationLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_cost: 10_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_tokens: 15_000,
            max_introspection_depth: 16,
            max_introspection_lists: 3,
            introspection: true,
        }
    }
}

impl OperationLimits {
    /// Why these limits cannot be used, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        (self.max_depth == 0
            || self.max_cost == 0
            || self.max_root_fields == 0
            || self.max_introspection_depth == 0
            || self.max_tokens < 100)
            .then_some(
                "limits: max_depth, max_cost, max_root_fields and max_introspection_depth \
                 must be positive, max_tokens at least 100",
            )
    }

    /// Holds a measured operation to these limits.
    pub fn hold(&self, measure: &Measure) -> Result<(), OperationError> {
        if measure.introspection && !self.introspection {
            return Err(OperationError::IntrospectionDisabled);
        }
        let over = |what: Limited, found: usize, limit: usize| {
            if found > limit {
                Err(OperationError::OverLimit { what, found, limit })
            } else {
                Ok(())
            }
        };
        over(Limited::Depth, measure.depth, self.max_depth)?;
        over(
            Limited::IntrospectionDepth,
            measure.introspection_depth,
            self.max_introspection_depth,
        )?;
        over(
            Limited::IntrospectionLists,
            measure.introspection_lists,
            self.max_introspection_lists,
        )?;
        over(Limited::Cost, measure.cost, self.max_cost)?;
        over(Limited::Aliases, measure.aliases, self.max_aliases)?;
        over(
            Limited::RootFields,
            measure.root_fields,
            self.max_root_fields,
        )
    }
}

/// What a limit bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Depth,
    IntrospectionDepth,
    IntrospectionLists,
    Cost,
    Aliases,
    RootFields,
}

/// Why an operation is refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("the operation is longer than {0} tokens")]
    TooManyTokens(usize),
    #[error("invalid operation: {0}")]
    Invalid(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("invalid variables: {0}")]
    InvalidVariables(String),
    #[error("{}", over_limit_message(*.what, *.found, *.limit))]
    OverLimit {
        what: Limited,
        found: usize,
        limit: usize,
    },
    #[error("schema introspection is switched off here")]
    IntrospectionDisabled,
}

fn over_limit_message(what: Limited, found: usize, limit: usize) -> String {
    match what {
        Limited::Depth => {
            format!("the operation is nested {found} deep; at most {limit} is allowed")
        }
        Limited::IntrospectionDepth => {
            format!("the introspection is nested {found} deep; at most {limit} is allowed")
        }
        Limited::IntrospectionLists => {
            format!("the introspection nests {found} lists; at most {limit} are allowed")
        }
        Limited::Cost => format!(
            "the operation costs {found}; at most {limit} is allowed (lower `first`, or select less)"
        ),
        Limited::Aliases => {
            format!("the operation uses {found} aliases; at most {limit} are allowed")
        }
        Limited::RootFields => {
            format!("the operation selects {found} root fields; at most {limit} are allowed")
        }
    }
}

impl OperationError {
    /// The stable `extensions.code` of the refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooManyTokens(_) | Self::OverLimit { .. } => ErrorCode::OperationTooComplex,
            Self::Invalid(_) | Self::UnknownOperation(_) | Self::InvalidVariables(_) => {
                ErrorCode::BadUserInput
            }
            Self::IntrospectionDisabled => ErrorCode::Forbidden,
        }
    }
}

/// Parses `text` against `schema` within the token limit (and a recursion
/// limit that follows the depth limit), and validates it.
pub fn parse_and_validate(
    schema: &Valid<Schema>,
    limits: &OperationLimits,
    text: &str,
) -> Result<Valid<ExecutableDocument>, OperationError> {
    let mut parser = Parser::new()
        .token_limit(limits.max_tokens)
        .recursion_limit(
            limits
                .max_depth
                .max(limits.max_introspection_depth)
                .saturating_mul(4)
                .max(32),
        );
    let parsed = parser.parse_executable(schema, text, "operation.graphql");
    let tokens_exceeded = parser.tokens_reached() >= limits.max_tokens;
    let refuse = |errors: &DiagnosticList| {
        if tokens_exceeded {
            return OperationError::TooManyTokens(limits.max_tokens);
        }
        let messages: Vec<String> = errors.iter().take(5).map(|d| d.error.to_string()).collect();
        OperationError::Invalid(messages.join("; "))
    };
    let document = parsed.map_err(|with_errors| refuse(&with_errors.errors))?;
    document
        .validate(schema)
        .map_err(|with_errors| refuse(&with_errors.errors))
}

/// An operation of a valid document that passed every limit.
#[derive(Debug, Clone)]
pub struct CheckedOperation {
    pub operation: Node<Operation>,
    /// The variables as coerced against the schema (defaults applied).
    pub variables: JsonMap,
    pub measure: Measure,
}

/// The root fields `operation_name` selects in `document`, each as
/// `<type>:<field>` (`query:survivor`, `mutation:registerSurvivor`), in
/// order, each once, fragments spread at the root included. The document
/// was validated against the schema, so every name is one the schema
/// declares (or `__typename`, `__schema`, `__type`): a bounded set, fit to
/// label metrics with. None when no operation is selected.
pub fn root_fields(
    document: &Valid<ExecutableDocument>,
    operation_name: Option<&str>,
) -> Vec<String> {
    let Ok(operation) = document.operations.get(operation_name) else {
        return Vec::new();
    };
    operation_root_fields(document, operation)
}

/// [`root_fields`] of an operation already picked from `document`.
pub fn operation_root_fields(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
) -> Vec<String> {
    let kind = match operation.operation_type {
        apollo_compiler::ast::OperationType::Query => "query",
        apollo_compiler::ast::OperationType::Mutation => "mutation",
        apollo_compiler::ast::OperationType::Subscription => "subscription",
    };
    let mut out: Vec<String> = Vec::new();
    for field in operation.root_fields(document) {
        let label = format!("{kind}:{}", field.name);
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// Picks the named operation of `document`, coerces `variables` against
/// `schema`, measures the operation and holds it to `limits`.
pub fn check_operation(
    schema: &Valid<Schema>,
    limits: &OperationLimits,
    document: &Valid<ExecutableDocument>,
    operation_name: Option<&str>,
    variables: &JsonMap,
) -> Result<CheckedOperation, OperationError> {
    let operation = document
        .operations
        .get(operation_name)
        .map_err(|e| OperationError::UnknownOperation(e.message().to_string()))?
        .clone();
    let variables = apollo_compiler::request::coerce_variable_values(schema, &operation, variables)
        .map_err(|e| OperationError::InvalidVariables(e.message().to_string()))?
        .into_inner();
    let measure = measure(document, &operation, &variables);
    limits.hold(&measure)?;
    Ok(CheckedOperation {
        operation,
        variables,
        measure,
    })
}

/// How large an operation is, as its limits see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    /// Deepest nesting of the operation's own fields.
    pub depth: usize,
    /// Deepest nesting under `__schema` / `__type`.
    pub introspection_depth: usize,
    /// Most list fields nested under `__schema` / `__type`.
    pub introspection_lists: usize,
    pub cost: usize,
    pub aliases: usize,
    pub root_fields: usize,
    /// Whether the operation selects `__schema` or `__type`.
    pub introspection: bool,
}

/// Measures `operation` of a valid `document` (valid: its fragments exist
/// and do not cycle) with its coerced `variables`.
pub fn measure(
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    variables: &JsonMap,
) -> Measure {
    let mut measurer = Measurer {
        document,
        variables,
        fragments: HashMap::new(),
    };
    let mut out = Measure::default();
    let mut keys = HashSet::new();
    let mut spread = HashSet::new();
    measurer.root(&operation.selection_set, &mut out, &mut keys, &mut spread);
    out.root_fields = keys.len();
    out
}

/// Depth, cost, aliases and nested lists of a selection set.
#[derive(Debug, Clone, Copy, Default)]
struct Subtree {
    depth: usize,
    lists: usize,
    cost: usize,
    aliases: usize,
}

impl Subtree {
    fn add(&mut self, other: Subtree) {
        self.depth = self.depth.max(other.depth);
        self.lists = self.lists.max(other.lists);
        self.cost = self.cost.saturating_add(other.cost);
        self.aliases = self.aliases.saturating_add(other.aliases);
    }
}

struct Measurer<'a> {
    document: &'a ExecutableDocument,
    variables: &'a JsonMap,
    /// Each fragment's measure, computed at its first spread.
    fragments: HashMap<Name, Subtree>,
}

impl Measurer<'_> {
    /// The root selection set: each root field measured on its own,
    /// introspection apart, fragments flattened (each once).
    fn root(
        &mut self,
        set: &SelectionSet,
        out: &mut Measure,
        keys: &mut HashSet<Name>,
        spread: &mut HashSet<Name>,
    ) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    keys.insert(field.response_key().clone());
                    let subtree = self.field(field);
                    if matches!(field.name.as_str(), "__schema" | "__type") {
                        out.introspection = true;
                        out.introspection_depth = out.introspection_depth.max(subtree.depth);
                        out.introspection_lists = out.introspection_lists.max(subtree.lists);
                    } else {
                        out.depth = out.depth.max(subtree.depth);
                    }
                    out.cost = out.cost.saturating_add(subtree.cost);
                    out.aliases = out.aliases.saturating_add(subtree.aliases);
                }
                Selection::InlineFragment(inline) => {
                    self.root(&inline.selection_set, out, keys, spread)
                }
                Selection::FragmentSpread(s) => {
                    if spread.insert(s.fragment_name.clone())
                        && let Some(fragment) = self.document.fragments.get(&s.fragment_name)
                    {
                        self.root(&fragment.selection_set, out, keys, spread)
                    }
                }
            }
        }
    }

    fn selection_set(&mut self, set: &SelectionSet) -> Subtree {
        let mut total = Subtree::default();
        for selection in &set.selections {
            let subtree = match selection {
                Selection::Field(field) => self.field(field),
                Selection::InlineFragment(inline) => self.selection_set(&inline.selection_set),
                Selection::FragmentSpread(s) => match self.fragments.get(&s.fragment_name) {
                    Some(known) => *known,
                    None => {
                        // Inserted before measuring: a cycle (which
                        // validation refuses) would then end here.
                        self.fragments
                            .insert(s.fragment_name.clone(), Subtree::default());
                        let measured = match self.document.fragments.get(&s.fragment_name) {
                            Some(fragment) => self.selection_set(&fragment.selection_set),
                            None => Subtree::default(),
                        };
                        self.fragments.insert(s.fragment_name.clone(), measured);
                        measured
                    }
                },
            };
            total.add(subtree);
        }
        total
    }

    fn field(&mut self, field: &Field) -> Subtree {
        let children = self.selection_set(&field.selection_set);
        let merge_key = is_merge_key(field);
        let multiplier = page_size_of(field, self.variables).unwrap_or(1);
        Subtree {
            depth: 1 + children.depth,
            lists: usize::from(field.ty().is_list()) + children.lists,
            cost: usize::from(!merge_key).saturating_add(multiplier.saturating_mul(children.cost)),
            aliases: usize::from(field.alias.is_some() && !merge_key)
                .saturating_add(children.aliases),
        }
    }
}

/// Whether `field` is one of the merge keys the gateway adds
/// ([`MERGE_ALIASES`]) on the field that key names.
fn is_merge_key(field: &Field) -> bool {
    let Some(alias) = &field.alias else {
        return false;
    };
    MERGE_ALIASES.iter().any(|(key, name)| {
        alias == key
            && match name {
                Some(name) => field.name == *name,
                None => field.selection_set.selections.is_empty() && field.arguments.is_empty(),
            }
    })
}

/// The page size a paginated field asks for: its `first` argument, or
/// [`DEFAULT_PAGE_SIZE`] when it takes `first` and none was given.
pub fn page_size_of(field: &Field, variables: &JsonMap) -> Option<usize> {
    if !field.definition.arguments.iter().any(|a| a.name == "first") {
        return None;
    }
    let value = field
        .specified_argument_by_name("first")
        .map(|v| resolve(v, variables))
        .unwrap_or(JsonValue::Null);
    Some(match value.as_i64() {
        Some(n) => usize::try_from(n.max(0)).unwrap_or(usize::MAX),
        None => DEFAULT_PAGE_SIZE as usize,
    })
}

/// The JSON value of an argument, variables substituted.
pub fn resolve(value: &Value, variables: &JsonMap) -> JsonValue {
    match value {
        Value::Null => JsonValue::Null,
        Value::Enum(e) => JsonValue::String(e.as_str().into()),
        Value::Variable(v) => variables
            .get(v.as_str())
            .cloned()
            .unwrap_or(JsonValue::Null),
        Value::String(s) => JsonValue::String(s.as_str().into()),
        Value::Float(f) => f
            .try_to_f64()
            .map(JsonValue::from)
            .unwrap_or(JsonValue::Null),
        Value::Int(i) => i
            .try_to_i32()
            .map(JsonValue::from)
            .unwrap_or(JsonValue::Null),
        Value::Boolean(b) => JsonValue::Bool(*b),
        Value::List(items) => {
            JsonValue::Array(items.iter().map(|i| resolve(i, variables)).collect())
        }
        Value::Object(fields) => JsonValue::Object(
            fields
                .iter()
                .map(|(k, v)| (k.as_str().into(), resolve(v, variables)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client-facing schema: every canned operation below is valid in it.
    fn federation() -> Valid<Schema> {
        Schema::parse_and_validate(include_str!("../federation.graphql"), "federation.graphql")
            .unwrap()
    }

    fn check(
        limits: &OperationLimits,
        text: &str,
        variables: serde_json_bytes::Value,
    ) -> Result<CheckedOperation, OperationError> {
        let schema = federation();
        let document = parse_and_validate(&schema, limits, text)?;
        let variables = variables.as_object().cloned().unwrap_or_default();
        check_operation(&schema, limits, &document, None, &variables)
    }

    fn refusal(text: &str) -> OperationError {
        check(
            &OperationLimits::default(),
            text,
            serde_json_bytes::json!({}),
        )
        .unwrap_err()
    }

    fn over(what: Limited, found: usize) -> OperationError {
        let d = OperationLimits::default();
        let limit = match what {
            Limited::Depth => d.max_depth,
            Limited::IntrospectionDepth => d.max_introspection_depth,
            Limited::IntrospectionLists => d.max_introspection_lists,
            Limited::Cost => d.max_cost,
            Limited::Aliases => d.max_aliases,
            Limited::RootFields => d.max_root_fields,
        };
        OperationError::OverLimit { what, found, limit }
    }

    /// The root fields are the schema's names, aliases never (a client
    /// chooses those), each once, fragments at the root spread.
    #[test]
    fn root_fields_are_the_schemas_names_once_each() {
        let schema = federation();
        let limits = OperationLimits::default();
        let text = "query Q { who: agencies { id } agencies { id } ...R }\n\
                    fragment R on Query { nodeHealth { agency } }\n\
                    mutation M { withdrawReferral(id: \"a:b\") { id } }";
        let document = parse_and_validate(&schema, &limits, text).unwrap();
        assert_eq!(
            root_fields(&document, Some("Q")),
            vec!["query:agencies".to_owned(), "query:nodeHealth".to_owned()]
        );
        assert_eq!(
            root_fields(&document, Some("M")),
            vec!["mutation:withdrawReferral".to_owned()]
        );
        assert!(root_fields(&document, Some("Nope")).is_empty());
    }

    /// `levels` fragments, each spreading the next twice: the operation of
    /// issue 16, which took a node 11-14 s to expand.
    fn fan_out(levels: usize) -> String {
        let mut text = String::from("query { agencies { ...F0 } }\n");
        for i in 0..levels {
            text.push_str(&format!(
                "fragment F{i} on MemberAgency {{ id ...F{next} ...F{next} }}\n",
                next = i + 1
            ));
        }
        text.push_str(&format!("fragment F{levels} on MemberAgency {{ id }}\n"));
        text
    }

    /// A fragment fan-out is costed exactly, from each fragment's measure
    /// once, and refused as too costly: `F_i` costs `2^(levels + 1 - i) - 1`
    /// and `agencies` one more, so `2^(levels + 1)` in all.
    #[test]
    fn a_fragment_fan_out_is_costed_without_expanding_it_and_refused() {
        assert_eq!(refusal(&fan_out(24)), over(Limited::Cost, 1 << 25));
        assert_eq!(refusal(&fan_out(24)).code(), ErrorCode::OperationTooComplex);
        // 70 levels: the exact cost passes `usize::MAX`, so it saturates.
        assert_eq!(refusal(&fan_out(70)), over(Limited::Cost, usize::MAX));
        // Far deeper chains of fragments are refused by validation.
        let err = refusal(&fan_out(200));
        assert!(
            matches!(&err, OperationError::Invalid(m) if m.contains("nesting")),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::BadUserInput);
        // Its depth is that of the fields, not of the spreads.
        let schema = federation();
        let limits = OperationLimits::default();
        let document = parse_and_validate(&schema, &limits, &fan_out(24)).unwrap();
        let operation = document.operations.get(None).unwrap();
        let m = measure(&document, operation, &JsonMap::new());
        assert_eq!((m.depth, m.aliases, m.root_fields), (2, 0, 1));
    }

    /// A thousand aliases of `survivor(id:)` (a thousand disclosures and
    /// audit entries at a node that answered them) are refused: by the
    /// token limit first, and by the alias limit when tokens are plenty.
    #[test]
    fn a_thousand_aliases_are_refused() {
        let text = format!(
            "{{ {} }}",
            (0..1000)
                .map(|i| format!("a{i}: survivor(id: \"shelter-north:x\") {{ id }}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let err = refusal(&text);
        assert_eq!(err, OperationError::TooManyTokens(15_000));
        assert_eq!(err.code(), ErrorCode::OperationTooComplex);
        let many_tokens = OperationLimits {
            max_tokens: 1_000_000,
            ..OperationLimits::default()
        };
        let err = check(&many_tokens, &text, serde_json_bytes::json!({})).unwrap_err();
        assert_eq!(err, over(Limited::Aliases, 1000));
        assert_eq!(err.code(), ErrorCode::OperationTooComplex);
    }

    /// The depth counts nested fields through fragments and inline
    /// fragments; at the limit passes, one level over it is refused.
    #[test]
    fn depth_counts_through_fragments() {
        let limits = OperationLimits {
            max_depth: 4,
            ..OperationLimits::default()
        };
        let four = "{ referrals { edges { node { ...H } } } } fragment H on Referral { id }";
        let m = check(&limits, four, serde_json_bytes::json!({})).unwrap();
        assert_eq!(m.measure.depth, 4);
        let five = "{ referrals { edges { node { ...H } } } } \
                    fragment H on Referral { ... on Referral { history { status } } }";
        let err = check(&limits, five, serde_json_bytes::json!({})).unwrap_err();
        assert_eq!(
            err,
            OperationError::OverLimit {
                what: Limited::Depth,
                found: 5,
                limit: 4
            }
        );
        assert_eq!(err.code(), ErrorCode::OperationTooComplex);
    }

    /// The cost multiplies by `first`, from a literal or a variable, and by
    /// the default page size when `first` is not given.
    #[test]
    fn cost_follows_the_page_size() {
        let limits = OperationLimits::default();
        let by_variable = check(
            &limits,
            "query($n: Int) { referrals(first: $n) { edges { cursor } } }",
            serde_json_bytes::json!({ "n": 7 }),
        )
        .unwrap();
        assert_eq!(by_variable.measure.cost, 1 + 7 * 2);
        let by_default = check(
            &limits,
            "{ referrals { edges { cursor } } }",
            serde_json_bytes::json!({}),
        )
        .unwrap();
        assert_eq!(by_default.measure.cost, 1 + 20 * 2);
        let err = check(
            &limits,
            "query($n: Int) { referrals(first: $n) { edges { node { id } } } }",
            serde_json_bytes::json!({ "n": 100_000 }),
        )
        .unwrap_err();
        assert_eq!(err, over(Limited::Cost, 1 + 100_000 * 3));
    }

    /// The token limit stops the parser: a long operation is refused as too
    /// complex, not as invalid.
    #[test]
    fn an_operation_over_the_token_limit_is_refused() {
        let text = format!("{{ agencies {{ {} }} }}", "id ".repeat(20_000));
        let err = refusal(&text);
        assert_eq!(err, OperationError::TooManyTokens(15_000));
        assert_eq!(err.code(), ErrorCode::OperationTooComplex);
    }

    /// Root fields are counted by response key, fragments flattened.
    #[test]
    fn root_fields_are_counted_through_fragments() {
        let limits = OperationLimits {
            max_root_fields: 3,
            ..OperationLimits::default()
        };
        let three = "{ agency { id } ...R ...R } fragment R on Query { a: agencies { id } nodeHealth { agency } }";
        let m = check(&limits, three, serde_json_bytes::json!({})).unwrap();
        assert_eq!(m.measure.root_fields, 3);
        let four = "{ agency { id } ...R } fragment R on Query { a: agencies { id } b: agencies { id } nodeHealth { agency } }";
        let err = check(&limits, four, serde_json_bytes::json!({})).unwrap_err();
        assert_eq!(
            err,
            OperationError::OverLimit {
                what: Limited::RootFields,
                found: 4,
                limit: 3
            }
        );
    }

    /// The standard introspection query of GraphQL tools (graphql-js
    /// `getIntrospectionQuery()`, default options) passes the default
    /// limits: its 15 levels are introspection depth, not operation depth.
    /// It is refused when introspection is switched off.
    #[test]
    fn the_standard_introspection_query_passes_and_is_refused_when_switched_off() {
        let text = include_str!("../fixtures/graphql-js-introspection-query.graphql");
        let checked = check(
            &OperationLimits::default(),
            text,
            serde_json_bytes::json!({}),
        )
        .unwrap();
        let m = checked.measure;
        assert!(m.introspection);
        assert_eq!(
            (m.depth, m.introspection_depth, m.introspection_lists),
            (0, 15, 3)
        );
        let off = OperationLimits {
            introspection: false,
            ..OperationLimits::default()
        };
        let err = check(&off, text, serde_json_bytes::json!({})).unwrap_err();
        assert_eq!(err, OperationError::IntrospectionDisabled);
        assert_eq!(err.code(), ErrorCode::Forbidden);
    }

    /// Introspection stays bounded: a chain of nested lists (each level a
    /// multiple of the last) and a deep `ofType` chain are refused.
    #[test]
    fn introspection_chains_are_bounded() {
        let lists =
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert_eq!(refusal(lists), over(Limited::IntrospectionLists, 3 + 1));
        let deep = format!(
            "{{ __type(name: \"Query\") {{ {} name {} }} }}",
            "ofType { ".repeat(16),
            "} ".repeat(16)
        );
        assert_eq!(refusal(&deep), over(Limited::IntrospectionDepth, 18));
    }

    /// Input is coerced strictly: an enum written as a string, a variable
    /// declared with another type and a variable value of the wrong type are
    /// each refused as bad input.
    #[test]
    fn input_is_coerced_strictly() {
        for text in [
            "{ referrals(direction: \"INCOMING\") { edges { cursor } } }",
            "query($d: String!) { referrals(direction: $d) { edges { cursor } } }",
            "{ referrals(first: \"5\") { edges { cursor } } }",
        ] {
            let err = refusal(text);
            assert!(matches!(err, OperationError::Invalid(_)), "{text}: {err:?}");
            assert_eq!(err.code(), ErrorCode::BadUserInput);
        }
        let err = check(
            &OperationLimits::default(),
            "query($d: ReferralDirection!) { referrals(direction: $d) { edges { cursor } } }",
            serde_json_bytes::json!({ "d": 5 }),
        )
        .unwrap_err();
        assert!(
            matches!(err, OperationError::InvalidVariables(_)),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::BadUserInput);
    }

    /// The merge keys the gateway adds are not counted as aliases (nor
    /// costed themselves), so that a client operation the gateway accepts
    /// passes the node once they are added; an alias merely starting with
    /// the reserved prefix counts like any other.
    #[test]
    fn the_gateways_merge_keys_are_not_counted_as_aliases() {
        let limits = OperationLimits::default();
        let forwarded = "query($_gwAfter0: String) { referrals(first: 5, after: $_gwAfter0) { \
            edges { node { id } } \
            _gwEdges: edges { _gwCursor: cursor _gwNode: node { _gwKey: createdAt } } \
            _gwPage: pageInfo { _gwHasNext: hasNextPage } } }";
        let m = check(&limits, forwarded, serde_json_bytes::json!({}))
            .unwrap()
            .measure;
        assert_eq!(m.aliases, 0);
        assert_eq!(m.cost, 1 + 5 * 3);
        let posing = "{ _gwEdges: agencies { id } _gwNode: nodeHealth { _gwCursor: agency } }";
        let m = check(&limits, posing, serde_json_bytes::json!({}))
            .unwrap()
            .measure;
        assert_eq!(m.aliases, 3);
    }
}

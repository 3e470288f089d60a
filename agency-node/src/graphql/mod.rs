//! The node's GraphQL subgraph: schema assembly, limits, and the small
//! helpers resolvers share (who is asking, page sizes, opaque cursors, which
//! categories an operation selected).

pub mod care_plan;
pub mod case;
pub mod case_status;
pub mod documents;
pub mod mutation;
pub mod query;
pub mod retention;
pub mod rights;
pub mod statistics;
pub mod transfer;
pub mod types;

use async_graphql::{Context, EmptySubscription, Schema, SchemaBuilder};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::Category;

use crate::error::NodeError;
use crate::state::{Caller, NodeState};

pub type NodeSchema = Schema<query::Query, Mutation, EmptySubscription>;

/// The node's mutations: records, consent and referrals, then case
/// management.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    mutation::RecordMutation,
    case::CaseMutation,
    case_status::CaseStatusMutation,
    care_plan::CarePlanMutation,
    transfer::TransferMutation,
    crate::webhooks::WebhookMutation,
    retention::RetentionMutation,
    rights::RightsMutation,
);

/// Limits every operation is held to, checked on its text before
/// async-graphql parses it ([`documents::prepare`]); the same limits, in the
/// same implementation, as the gateway's.
pub use exchange_schema::limits::OperationLimits;

/// The schema builder with the federation directives; used for serving and
/// for printing the SDL. Depth, cost, aliases and root fields are not left to
/// async-graphql (its limits expand fragments, after parsing): they are held
/// by [`documents::prepare`] before it sees the operation.
pub fn schema_builder(
    limits: &OperationLimits,
) -> SchemaBuilder<query::Query, Mutation, EmptySubscription> {
    let mut builder = Schema::build(query::Query, Mutation::default(), EmptySubscription)
        .enable_federation()
        .limit_recursive_depth(32)
        .limit_directives(16);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder
}

/// The node's schema as apollo-compiler reads it, to validate and measure
/// each operation strictly before async-graphql runs it (async-graphql
/// accepts an enum written as a string; apollo-compiler does not).
pub fn operation_schema(
    schema: &NodeSchema,
) -> Result<apollo_compiler::validation::Valid<apollo_compiler::Schema>, String> {
    apollo_compiler::Schema::parse_and_validate(schema.sdl(), "node-schema.graphql")
        .map_err(|e| e.errors.to_string())
}

/// The SDL this node serves, as compared with `schema/subgraph.graphql`.
pub fn subgraph_sdl() -> String {
    schema_builder(&OperationLimits::default())
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a NodeState {
    ctx.data_unchecked::<std::sync::Arc<NodeState>>()
}

pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller, NodeError> {
    ctx.data_opt::<Caller>()
        .ok_or_else(|| NodeError::Unauthenticated("no verified token".into()))
}

/// The most items one page may hold.
pub const MAX_PAGE: i32 = 100;

pub(crate) fn page_size(first: Option<i32>) -> Result<i64, NodeError> {
    match first.unwrap_or(20) {
        n @ 1..=MAX_PAGE => Ok(i64::from(n)),
        _ => Err(NodeError::bad_input(format!(
            "first must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// An opaque cursor over a `(sort key, id)` position.
pub fn encode_cursor(key: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{key}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String), NodeError> {
    let invalid = || NodeError::bad_input("invalid cursor");
    if cursor.len() > 200 {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (key, id) = text.split_once(':').ok_or_else(invalid)?;
    let key = key.parse::<i64>().map_err(|_| invalid())?;
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid());
    }
    Ok((key, id.to_owned()))
}

/// The categories the current field's selection asks for, looking through
/// connection edges, so the audit entry lists what was actually disclosed.
pub(crate) fn selected_categories(ctx: &Context<'_>) -> Vec<Category> {
    let look = ctx.look_ahead();
    let node = look.field("edges").field("node");
    [
        (Category::Identity, "identity"),
        (Category::Contact, "contact"),
        (Category::Case, "case"),
        (Category::Health, "health"),
        (Category::Legal, "legal"),
    ]
    .into_iter()
    .filter(|(_, name)| look.field(name).exists() || node.field(name).exists())
    .map(|(category, _)| category)
    .chain(
        // Services, follow-ups and the care plan travel as CASE.
        ["services", "followUps", "carePlan", "carePlanVersions"]
            .iter()
            .any(|name| look.field(name).exists() || node.field(name).exists())
            .then_some(Category::Case),
    )
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(1_700_000_000_000, "abc_1");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_000, "abc_1".into())
        );
        for bad in [
            "",
            "!!!",
            "bm9jb2xvbg",
            &URL_SAFE_NO_PAD.encode("x:y"),
            &URL_SAFE_NO_PAD.encode("1:a'--"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}

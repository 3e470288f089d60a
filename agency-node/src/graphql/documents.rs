//! Operations already parsed, by their text, for the node and the gateway.
//!
//! A client sends the same few operations again and again (the gateway
//! forwards each of them to the nodes in the same words), and parsing one
//! costs more than much of the rest of a request: in a profile of eight
//! nodes answering a scattered `referrals` query, async-graphql's parser
//! took about a fifth of their CPU. Only the parse is skipped on a hit:
//! every check that depends on the schema, the variables or the caller
//! (validation, depth, complexity, directives, authorisation) still runs on
//! every request, on a copy of the cached document.
//!
//! The cache is bounded twice: by a number of documents and by the total
//! length of their texts, so that a caller sending many large distinct
//! operations cannot make it hold more than that. It is a
//! [`quick_cache`] cache weighted by text length, with every document
//! weighing at least `max_text_bytes / capacity`: a total weight of
//! `max_text_bytes` then holds both bounds at once. Which documents stay
//! when it is full is quick_cache's choice (S3-FIFO: the operations asked
//! for again and again stay, one-off texts go first).

use std::sync::Arc;

use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use exchange_schema::limits::{self, OperationError, OperationLimits};

pub use exchange_service::documents::DocumentCache;

/// How many parsed operations a node keeps.
pub const NODE_DOCUMENTS: usize = 512;
/// The most operation text a node's cache holds, in bytes.
pub const NODE_DOCUMENT_TEXT_BYTES: usize = 1 << 20;

/// An operation text as the node keeps it: validated by apollo-compiler
/// against the node's schema (to measure it against the limits, strictly
/// typed) and parsed by async-graphql (to execute it).
#[derive(Debug)]
pub struct NodeDocument {
    pub validated: Valid<apollo_compiler::ExecutableDocument>,
    pub parsed: async_graphql::parser::types::ExecutableDocument,
}

/// The node's cache of checked documents.
pub type NodeDocuments = DocumentCache<NodeDocument>;

/// Holds `request` to the node's operation limits before anything of it
/// runs ([`exchange_schema::limits`]: tokens, strict validation, depth,
/// cost, aliases, root fields, introspection), then hands it its parsed
/// document. A text is parsed and validated once and kept in `cache`; the
/// checks that depend on the operation name and the variables run on every
/// request. A text that fails is not kept. Answers the operation's root
/// fields ([`limits::root_fields`]), to count it by.
pub fn prepare(
    cache: &NodeDocuments,
    schema: &Valid<apollo_compiler::Schema>,
    limits: &OperationLimits,
    request: &mut async_graphql::Request,
) -> Result<Vec<String>, OperationError> {
    let document = match cache.get(&request.query) {
        Some(document) => document,
        None => {
            let validated = limits::parse_and_validate(schema, limits, &request.query)?;
            let parsed = async_graphql::parser::parse_query(&request.query)
                .map_err(|e| OperationError::Invalid(e.to_string()))?;
            let document = Arc::new(NodeDocument { validated, parsed });
            cache.insert(&request.query, document.clone());
            document
        }
    };
    let variables: JsonMap = serde_json::to_value(&request.variables)
        .and_then(serde_json::from_value)
        .map_err(|e| OperationError::InvalidVariables(e.to_string()))?;
    limits::check_operation(
        schema,
        limits,
        &document.validated,
        request.operation_name.as_deref(),
        &variables,
    )?;
    // A copy: execution removes `@skip`ped selections from the document it
    // is given, which depends on each request's variables.
    request.set_parsed_query(document.parsed.clone());
    Ok(limits::root_fields(
        &document.validated,
        request.operation_name.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_kept_once_and_found_by_its_text() {
        let cache = DocumentCache::new(4, 1024);
        cache.insert("{ a }", Arc::new(1));
        cache.insert("{ a }", Arc::new(2));
        assert_eq!(cache.get("{ a }").as_deref(), Some(&1));
        assert_eq!(cache.get("{ b }"), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_never_passes_either_bound() {
        // By count: texts far below the byte budget, ten times more of
        // them than the capacity.
        let by_count = DocumentCache::new(64, 1 << 20);
        for i in 0..640 {
            by_count.insert(&format!("{{ a{i} }}"), Arc::new(()));
            assert!(by_count.len() <= 64, "{} documents held", by_count.len());
        }
        assert!(!by_count.is_empty());

        // By bytes: texts of 1 KiB against a 16 KiB budget, with room for
        // 1,000 documents by count.
        let by_bytes = DocumentCache::new(1000, 16 * 1024);
        for i in 0..200 {
            let text = format!("{{ a{i:04} {} }}", "b".repeat(1000));
            by_bytes.insert(&text, Arc::new(()));
            assert!(
                by_bytes.weight() <= 16 * 1024,
                "{} bytes held",
                by_bytes.weight()
            );
        }
        assert!(by_bytes.len() <= 16, "{} documents held", by_bytes.len());
        assert!(!by_bytes.is_empty());

        let whole = format!("{{ {} }}", "c".repeat(20 * 1024));
        by_bytes.insert(&whole, Arc::new(()));
        assert!(
            by_bytes.get(&whole).is_none(),
            "a text over the whole budget is not kept"
        );
    }

    #[test]
    fn an_operation_asked_for_again_and_again_stays_while_one_off_texts_pass() {
        let cache = DocumentCache::new(64, 1 << 20);
        cache.insert("{ hot }", Arc::new(()));
        for i in 0..2000 {
            assert!(
                cache.get("{ hot }").is_some(),
                "evicted after {i} one-off texts"
            );
            cache.insert(&format!("{{ once{i} }}"), Arc::new(()));
        }
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let cache = DocumentCache::new(0, 1024);
        cache.insert("{ a }", Arc::new(()));
        assert!(cache.is_empty());
    }

    fn node_schema() -> Valid<apollo_compiler::Schema> {
        let schema = crate::graphql::schema_builder(&OperationLimits::default()).finish();
        crate::graphql::operation_schema(&schema).unwrap()
    }

    /// A request is handed the parse of its own text, from the cache after
    /// the first time; a text that does not parse is not kept.
    #[test]
    fn a_request_gets_the_parse_of_its_own_text_and_a_bad_text_is_not_kept() {
        let schema = node_schema();
        let limits = OperationLimits::default();
        let cache = NodeDocuments::new(8, 4096);
        let mut request = async_graphql::Request::new("query Q { agency { id } }");
        prepare(&cache, &schema, &limits, &mut request).unwrap();
        assert_eq!(cache.len(), 1);
        let as_json = |request: &mut async_graphql::Request| {
            serde_json::to_value(request.parsed_query().unwrap()).unwrap()
        };
        let parsed = as_json(&mut request);
        let fresh = async_graphql::parser::parse_query("query Q { agency { id } }").unwrap();
        assert_eq!(parsed, serde_json::to_value(&fresh).unwrap());
        let mut again = async_graphql::Request::new("query Q { agency { id } }");
        prepare(&cache, &schema, &limits, &mut again).unwrap();
        assert_eq!(as_json(&mut again), parsed);

        let mut broken = async_graphql::Request::new("query { agency { id }");
        let err = prepare(&cache, &schema, &limits, &mut broken).unwrap_err();
        assert_eq!(err.code(), exchange_schema::ErrorCode::BadUserInput);
        assert_eq!(cache.len(), 1, "a text that does not parse is not kept");
    }

    /// The limits hold on a kept text too, per request: the same text is
    /// refused for a page size over the cost limit and accepted for a
    /// small one, and an enum written as a string is refused.
    #[test]
    fn the_limits_hold_on_every_request_of_a_kept_text() {
        let schema = node_schema();
        let limits = OperationLimits::default();
        let cache = NodeDocuments::new(8, 4096);
        let text = "query($n: Int) { referrals(first: $n) { edges { node { id } } } }";
        let with = |n: i64| {
            let mut request = async_graphql::Request::new(text).variables(
                async_graphql::Variables::from_json(serde_json::json!({ "n": n })),
            );
            prepare(&cache, &schema, &limits, &mut request)
        };
        with(5).unwrap();
        assert_eq!(cache.len(), 1);
        let err = with(100_000).unwrap_err();
        assert_eq!(err.code(), exchange_schema::ErrorCode::OperationTooComplex);
        with(5).unwrap();

        let mut string_enum = async_graphql::Request::new(
            "{ referrals(direction: \"INCOMING\") { edges { cursor } } }",
        );
        let err = prepare(&cache, &schema, &limits, &mut string_enum).unwrap_err();
        assert_eq!(err.code(), exchange_schema::ErrorCode::BadUserInput);
    }
}

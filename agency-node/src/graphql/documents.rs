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
//! operations cannot make it hold more than that. When either bound would
//! be passed it starts again, empty, rather than track recency: the hot
//! operations come back at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed documents by operation text.
#[derive(Debug)]
pub struct DocumentCache<D> {
    held: Mutex<Held<D>>,
    capacity: usize,
    max_text_bytes: usize,
}

#[derive(Debug)]
struct Held<D> {
    documents: HashMap<String, Arc<D>>,
    text_bytes: usize,
}

impl<D> DocumentCache<D> {
    /// A cache of at most `capacity` documents whose texts add up to at
    /// most `max_text_bytes` (a capacity of 0 turns it off).
    pub fn new(capacity: usize, max_text_bytes: usize) -> Self {
        Self {
            held: Mutex::new(Held {
                documents: HashMap::new(),
                text_bytes: 0,
            }),
            capacity,
            max_text_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held<D>> {
        // The map holds only finished documents; a panic elsewhere while
        // the lock was held cannot have left one half-written.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The document parsed from `text`, if held.
    pub fn get(&self, text: &str) -> Option<Arc<D>> {
        self.lock().documents.get(text).cloned()
    }

    /// Keeps `document` as the parse of `text`. A text longer than the
    /// whole byte budget is not kept.
    pub fn insert(&self, text: &str, document: Arc<D>) {
        if self.capacity == 0 || text.len() > self.max_text_bytes {
            return;
        }
        let mut held = self.lock();
        if held.documents.contains_key(text) {
            return;
        }
        if held.documents.len() >= self.capacity
            || held.text_bytes + text.len() > self.max_text_bytes
        {
            held.documents.clear();
            held.text_bytes = 0;
        }
        held.text_bytes += text.len();
        held.documents.insert(text.to_owned(), document);
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.lock().documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many parsed operations a node keeps.
pub const NODE_DOCUMENTS: usize = 512;
/// The most operation text a node's cache holds, in bytes.
pub const NODE_DOCUMENT_TEXT_BYTES: usize = 1 << 20;

/// The node's cache of async-graphql documents.
pub type NodeDocuments = DocumentCache<async_graphql::parser::types::ExecutableDocument>;

/// Hands `request` its parsed document from `cache`, parsing and keeping
/// it on a miss. A text that does not parse is left to async-graphql,
/// which reports the error in its usual words and keeps nothing.
pub fn attach_parsed(cache: &NodeDocuments, request: &mut async_graphql::Request) {
    let document = match cache.get(&request.query) {
        Some(document) => document,
        None => match async_graphql::parser::parse_query(&request.query) {
            Ok(document) => {
                let document = Arc::new(document);
                cache.insert(&request.query, document.clone());
                document
            }
            Err(_) => return,
        },
    };
    // A copy: execution removes `@skip`ped selections from the document it
    // is given, which depends on each request's variables.
    request.set_parsed_query(document.as_ref().clone());
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
    fn the_cache_starts_again_rather_than_pass_either_bound() {
        let by_count = DocumentCache::new(2, 1024);
        for text in ["{ a }", "{ b }", "{ c }"] {
            by_count.insert(text, Arc::new(()));
        }
        assert_eq!(by_count.len(), 1);
        assert!(by_count.get("{ c }").is_some());

        let by_bytes = DocumentCache::new(100, 12);
        by_bytes.insert("{ aaaa }", Arc::new(()));
        by_bytes.insert("{ bbbb }", Arc::new(()));
        assert_eq!(
            by_bytes.len(),
            1,
            "8 + 8 bytes would pass the 12-byte budget"
        );
        assert!(by_bytes.get("{ bbbb }").is_some());
        by_bytes.insert(&format!("{{ {} }}", "c".repeat(20)), Arc::new(()));
        assert_eq!(
            by_bytes.len(),
            1,
            "a text over the whole budget is not kept"
        );
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let cache = DocumentCache::new(0, 1024);
        cache.insert("{ a }", Arc::new(()));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_request_gets_the_parse_of_its_own_text_and_a_bad_text_is_not_kept() {
        let cache = NodeDocuments::new(8, 4096);
        let mut request = async_graphql::Request::new("query Q { agency { id } }");
        attach_parsed(&cache, &mut request);
        assert_eq!(cache.len(), 1);
        let as_json = |request: &mut async_graphql::Request| {
            serde_json::to_value(request.parsed_query().unwrap()).unwrap()
        };
        let parsed = as_json(&mut request);
        let fresh = async_graphql::parser::parse_query("query Q { agency { id } }").unwrap();
        assert_eq!(parsed, serde_json::to_value(&fresh).unwrap());
        let mut again = async_graphql::Request::new("query Q { agency { id } }");
        attach_parsed(&cache, &mut again);
        assert_eq!(as_json(&mut again), parsed);

        let mut broken = async_graphql::Request::new("query { agency { id }");
        attach_parsed(&cache, &mut broken);
        assert_eq!(cache.len(), 1, "a text that does not parse is not kept");
        assert!(broken.parsed_query().is_err());
    }
}

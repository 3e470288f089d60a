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

/// Parsed documents by operation text.
#[derive(Debug)]
pub struct DocumentCache<D> {
    /// `None` when the cache is turned off (a capacity of 0).
    held: Option<quick_cache::sync::Cache<String, Arc<D>, TextWeight>>,
}

/// A document's weight: its text's length, but no less than its share of
/// the byte budget, so that the budget also bounds the number held.
#[derive(Debug, Clone)]
struct TextWeight {
    floor: u64,
}

impl<D> quick_cache::Weighter<String, Arc<D>> for TextWeight {
    fn weight(&self, text: &String, _: &Arc<D>) -> u64 {
        (text.len() as u64).max(self.floor)
    }
}

impl<D> DocumentCache<D> {
    /// A cache of at most `capacity` documents whose texts add up to at
    /// most `max_text_bytes` (a capacity of 0 turns it off).
    pub fn new(capacity: usize, max_text_bytes: usize) -> Self {
        if capacity == 0 || max_text_bytes == 0 {
            return Self { held: None };
        }
        let floor = (max_text_bytes / capacity).max(1) as u64;
        Self {
            held: Some(quick_cache::sync::Cache::with_weighter(
                capacity,
                max_text_bytes as u64,
                TextWeight { floor },
            )),
        }
    }

    /// The document parsed from `text`, if held.
    pub fn get(&self, text: &str) -> Option<Arc<D>> {
        self.held.as_ref()?.get(text)
    }

    /// Keeps `document` as the parse of `text`. A text heavier than the
    /// cache can hold is not kept.
    pub fn insert(&self, text: &str, document: Arc<D>) {
        if let Some(held) = &self.held
            && held.get(text).is_none()
        {
            held.insert(text.to_owned(), document);
        }
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.held.as_ref().map_or(0, |held| held.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total weight held, which never passes `max_text_bytes`.
    pub fn weight(&self) -> u64 {
        self.held.as_ref().map_or(0, |held| held.weight())
    }
}

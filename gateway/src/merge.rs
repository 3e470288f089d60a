//! Merging scattered connections, and the composite cursor.
//!
//! Each node answers a scattered field with its own connection, already in
//! the declared order, plus the hidden merge keys (see [`crate::plan`]). The
//! gateway merges the lists k-way (greatest first for `DESC`; ties go to the
//! agency listed first in the federation file), so every node's own order is
//! kept, takes the first `first` edges, and rebuilds exactly the selection
//! the client made: `edges` and `nodes` hold the picked items as the nodes
//! returned them, each edge's `cursor` and `pageInfo` are the gateway's.
//!
//! # The composite cursor
//!
//! A cursor is `base64url(JSON)` of every node's own position after that
//! edge: `{"p": {"<agency>": "<node cursor>"}, "d": ["<agency>"]}` where `p`
//! holds positions and `d` the nodes that have nothing left. A node missing
//! from both starts from its beginning. Asking for the page `after` a cursor
//! asks each node for the page after its own position, so pages never skip
//! or repeat an item. A node that was unavailable keeps its old position and
//! is asked again on the next page. Clients must treat the cursor as opaque;
//! a forged one can only make a node start elsewhere in what it would show
//! the caller anyway.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::executable::Field;
use apollo_compiler::response::{JsonMap, JsonValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exchange_schema::AgencyId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::RequestError;
use crate::plan::collect_fields;
use crate::routing::ScatterRule;

/// Longest composite cursor accepted.
pub const MAX_CURSOR_BYTES: usize = 8 * 1024;
/// Longest node cursor kept inside a composite cursor.
const MAX_NODE_CURSOR: usize = 256;

/// Every node's position in a scattered listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeCursor {
    /// The node's own cursor of the last item already returned.
    #[serde(rename = "p", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: BTreeMap<String, String>,
    /// Nodes with nothing left to return.
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
}

impl CompositeCursor {
    /// Decodes a cursor a client sent back.
    pub fn decode(raw: &str) -> Result<Self, RequestError> {
        let invalid = || RequestError::BadUserInput("invalid cursor".into());
        if raw.len() > MAX_CURSOR_BYTES {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let agency_ok = |a: &String| AgencyId::parse(a).is_ok();
        let cursor_ok = |c: &String| {
            !c.is_empty() && c.len() <= MAX_NODE_CURSOR && c.bytes().all(|b| b.is_ascii_graphic())
        };
        if !cursor
            .positions
            .iter()
            .all(|(a, c)| agency_ok(a) && cursor_ok(c))
            || !cursor.done.iter().all(agency_ok)
        {
            return Err(invalid());
        }
        Ok(cursor)
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Whether `agency` has nothing left.
    pub fn is_done(&self, agency: &AgencyId) -> bool {
        self.done.iter().any(|d| d == agency.as_str())
    }

    /// The node cursor to pass to `agency` (`None`: from its beginning).
    pub fn position(&self, agency: &AgencyId) -> Option<&str> {
        self.positions.get(agency.as_str()).map(String::as_str)
    }

    fn advance(&mut self, agency: &AgencyId, cursor: &str, exhausted: bool) {
        if exhausted {
            self.positions.remove(agency.as_str());
            if !self.is_done(agency) {
                self.done.push(agency.to_string());
            }
        } else {
            self.positions.insert(agency.to_string(), cursor.to_owned());
        }
    }
}

/// An ordering value read from a node's answer.
#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    Null,
    Number(f64),
    Time(i128),
    Text(String),
}

impl SortKey {
    fn of(value: &JsonValue) -> Self {
        match value {
            JsonValue::Number(n) => n.as_f64().map(Self::Number).unwrap_or(Self::Null),
            JsonValue::String(s) => match OffsetDateTime::parse(s.as_str(), &Rfc3339) {
                Ok(t) => Self::Time(t.unix_timestamp_nanos()),
                Err(_) => Self::Text(s.as_str().to_owned()),
            },
            _ => Self::Null,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Null => 0,
            Self::Number(_) => 1,
            Self::Time(_) => 2,
            Self::Text(_) => 3,
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.total_cmp(b),
            (Self::Time(a), Self::Time(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// One node's answer to a scattered field.
pub struct NodePart {
    pub agency: AgencyId,
    /// `data.<response key>` of the node's answer (`null` when it failed).
    pub value: JsonValue,
}

struct Hidden {
    items: Vec<(String, SortKey)>,
    has_next: bool,
}

fn hidden(value: &JsonValue) -> Hidden {
    let items = value
        .get("_gwEdges")
        .and_then(JsonValue::as_array)
        .map(|edges| {
            edges
                .iter()
                .map(|edge| {
                    let cursor = edge
                        .get("_gwCursor")
                        .and_then(JsonValue::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let key = edge
                        .get("_gwNode")
                        .and_then(|n| n.get("_gwKey"))
                        .map(SortKey::of)
                        .unwrap_or(SortKey::Null);
                    (cursor, key)
                })
                .collect()
        })
        .unwrap_or_default();
    let has_next = value
        .get("_gwPage")
        .and_then(|p| p.get("_gwHasNext"))
        .and_then(JsonValue::as_bool)
        .unwrap_or(false);
    Hidden { items, has_next }
}

/// Merges the nodes' connections for one scattered root field into the
/// connection the client asked for.
///
/// `parts` are the nodes that answered, in federation order; `start` is the
/// position the client asked to continue from.
pub fn merge_connection(
    document: &ExecutableDocument,
    field: &Field,
    variables: &JsonMap,
    rule: &ScatterRule,
    parts: &[NodePart],
    start: &CompositeCursor,
    first: usize,
) -> JsonValue {
    let hidden: Vec<Hidden> = parts.iter().map(|p| hidden(&p.value)).collect();
    let mut heads = vec![0usize; parts.len()];
    let mut picked: Vec<(usize, usize, String)> = Vec::with_capacity(first.min(1024));
    let mut position = start.clone();
    while picked.len() < first {
        let mut best: Option<usize> = None;
        for (i, h) in hidden.iter().enumerate() {
            if heads[i] >= h.items.len() {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let ord = h.items[heads[i]].1.compare(&hidden[b].items[heads[b]].1);
                    let better = if rule.descending {
                        ord == Ordering::Greater
                    } else {
                        ord == Ordering::Less
                    };
                    if better { Some(i) } else { Some(b) }
                }
            };
        }
        let Some(i) = best else { break };
        let index = heads[i];
        heads[i] += 1;
        let exhausted = heads[i] == hidden[i].items.len() && !hidden[i].has_next;
        position.advance(&parts[i].agency, &hidden[i].items[index].0, exhausted);
        picked.push((i, index, position.encode()));
    }
    // A node that answered with nothing left is done, even if none of its
    // items were picked.
    for (i, h) in hidden.iter().enumerate() {
        if h.items.is_empty() && !h.has_next && !position.is_done(&parts[i].agency) {
            position.advance(&parts[i].agency, "", true);
        }
    }
    let has_next = hidden
        .iter()
        .enumerate()
        .any(|(i, h)| heads[i] < h.items.len() || h.has_next);

    let type_name = field.ty().inner_named_type().as_str();
    let mut out = JsonMap::new();
    for (key, fields) in collect_fields(document, &field.selection_set, variables) {
        let value = match fields[0].name.as_str() {
            "__typename" => JsonValue::String(type_name.into()),
            "edges" => {
                let cursor_keys: Vec<String> = fields
                    .iter()
                    .flat_map(|f| collect_fields(document, &f.selection_set, variables))
                    .filter(|(_, fs)| fs[0].name == "cursor")
                    .map(|(k, _)| k.to_string())
                    .collect();
                JsonValue::Array(
                    picked
                        .iter()
                        .map(|(i, index, cursor)| {
                            let mut item = item_at(&parts[*i].value, key.as_str(), *index);
                            if let Some(obj) = item.as_object_mut() {
                                for k in &cursor_keys {
                                    obj.insert(
                                        k.as_str(),
                                        JsonValue::String(cursor.as_str().into()),
                                    );
                                }
                            }
                            item
                        })
                        .collect(),
                )
            }
            "nodes" => JsonValue::Array(
                picked
                    .iter()
                    .map(|(i, index, _)| item_at(&parts[*i].value, key.as_str(), *index))
                    .collect(),
            ),
            "pageInfo" => {
                let page_type = fields[0].ty().inner_named_type().as_str();
                let mut page = JsonMap::new();
                let sub: Vec<_> = fields
                    .iter()
                    .flat_map(|f| collect_fields(document, &f.selection_set, variables))
                    .collect();
                for (k, fs) in sub {
                    let v = match fs[0].name.as_str() {
                        "hasNextPage" => JsonValue::Bool(has_next),
                        "hasPreviousPage" => JsonValue::Bool(false),
                        "startCursor" => picked
                            .first()
                            .map(|(_, _, c)| JsonValue::String(c.as_str().into()))
                            .unwrap_or(JsonValue::Null),
                        "endCursor" => picked
                            .last()
                            .map(|(_, _, c)| JsonValue::String(c.as_str().into()))
                            .unwrap_or(JsonValue::Null),
                        "__typename" => JsonValue::String(page_type.into()),
                        _ => JsonValue::Null,
                    };
                    if !page.contains_key(k.as_str()) {
                        page.insert(k.as_str(), v);
                    }
                }
                JsonValue::Object(page)
            }
            // Any other connection field: the first answering node's value.
            _ => parts
                .iter()
                .find_map(|p| p.value.get(key.as_str()).cloned())
                .unwrap_or(JsonValue::Null),
        };
        out.insert(key.as_str(), value);
    }
    JsonValue::Object(out)
}

fn item_at(value: &JsonValue, key: &str, index: usize) -> JsonValue {
    value
        .get(key)
        .and_then(JsonValue::as_array)
        .and_then(|list| list.get(index))
        .cloned()
        .unwrap_or(JsonValue::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let mut c = CompositeCursor::default();
        c.advance(
            &AgencyId::parse("shelter-north").unwrap(),
            "MTcwMDA6YWJj",
            false,
        );
        c.advance(&AgencyId::parse("clinic-east").unwrap(), "", true);
        let decoded = CompositeCursor::decode(&c.encode()).unwrap();
        assert_eq!(decoded, c);
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("{\"x\":1}"),
            &URL_SAFE_NO_PAD.encode("{\"p\":{\"BAD ID\":\"c\"}}"),
        ] {
            assert!(CompositeCursor::decode(bad).is_err(), "{bad}");
        }
        assert!(CompositeCursor::decode(&"a".repeat(MAX_CURSOR_BYTES + 1)).is_err());
    }

    #[test]
    fn times_order_by_instant_not_by_text() {
        let a = SortKey::of(&JsonValue::String("2026-01-01T00:00:00.5Z".into()));
        let b = SortKey::of(&JsonValue::String("2026-01-01T00:00:00Z".into()));
        assert_eq!(a.compare(&b), Ordering::Greater);
    }
}

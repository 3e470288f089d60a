//! The `Idempotency-Key` request header (IETF httpapi
//! `draft-ietf-httpapi-idempotency-key-header`), read the same way by every
//! node and by the gateway.
//!
//! The draft defines the field as a Structured Field (RFC 9651) Item whose
//! value is a String: `Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`.
//! Only that quoted form is accepted. A bare token (`Idempotency-Key: abc`)
//! is refused: the draft says the value MUST be a String, a bare UUID is not
//! even a valid sf-token (it may start with a digit), and accepting a second
//! spelling would let two spellings of "the same" key be compared as
//! different keys. Parameters on the item are ignored, as RFC 9651 asks of
//! unknown parameters. The key is 1 to [`MAX_KEY_CHARS`] characters; an
//! sf-string holds printable ASCII only. More than one `Idempotency-Key`
//! field line is refused as ambiguous.

use std::fmt;

/// The header's name (HTTP header names are case-insensitive).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The longest accepted key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// A well-formed idempotency key: 1 to [`MAX_KEY_CHARS`] printable ASCII
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why an `Idempotency-Key` header was refused. Every variant is the
/// client's bad input (`BAD_USER_INPUT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("send one Idempotency-Key header, not several")]
    Repeated,
    #[error(
        "the Idempotency-Key must be a quoted structured-field string, e.g. Idempotency-Key: \"4f1c...\""
    )]
    NotAString,
    #[error("the Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable characters")]
    BadLength,
}

impl IdempotencyKey {
    /// Reads the key from the raw values of every `Idempotency-Key` field
    /// line of a request: `Ok(None)` when there is none.
    pub fn from_header_values<'a>(
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<Self>, IdempotencyKeyError> {
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(IdempotencyKeyError::Repeated);
        }
        Self::parse(first).map(Some)
    }

    /// Parses one field value.
    pub fn parse(value: &[u8]) -> Result<Self, IdempotencyKeyError> {
        let item = sfv::Parser::new(value)
            .parse::<sfv::Item>()
            .map_err(|_| IdempotencyKeyError::NotAString)?;
        let key = item
            .bare_item
            .as_string()
            .ok_or(IdempotencyKeyError::NotAString)?
            .as_str();
        Self::new(key)
    }

    /// A key from its text (checked as a parsed header is).
    pub fn new(key: &str) -> Result<Self, IdempotencyKeyError> {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(IdempotencyKeyError::BadLength);
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The header value that carries this key on (an sf-string).
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('"');
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Result<Option<IdempotencyKey>, IdempotencyKeyError> {
        IdempotencyKey::from_header_values(std::iter::once(value.as_bytes()))
    }

    /// The draft's quoted form is read, with escapes undone.
    #[test]
    fn a_quoted_structured_string_is_a_key() {
        assert_eq!(
            one("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"")
                .unwrap()
                .unwrap()
                .as_str(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324"
        );
        assert_eq!(one(r#""a\"b\\c""#).unwrap().unwrap().as_str(), r#"a"b\c"#);
        // Parameters are ignored.
        assert_eq!(one("\"k1\";v=2").unwrap().unwrap().as_str(), "k1");
    }

    /// Bare tokens, numbers, lists and broken quoting are not keys.
    #[test]
    fn anything_but_one_quoted_string_is_refused() {
        for bad in [
            "abc",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "42",
            "\"a\", \"b\"",
            "\"unterminated",
            "\"bad \\x escape\"",
            "",
            "?1",
        ] {
            assert_eq!(one(bad), Err(IdempotencyKeyError::NotAString), "{bad:?}");
        }
    }

    /// Length is bounded at both ends.
    #[test]
    fn a_key_is_one_to_255_characters() {
        assert_eq!(one("\"\""), Err(IdempotencyKeyError::BadLength));
        let longest = "k".repeat(MAX_KEY_CHARS);
        assert!(one(&format!("\"{longest}\"")).is_ok());
        assert_eq!(
            one(&format!("\"{longest}k\"")),
            Err(IdempotencyKeyError::BadLength)
        );
        assert_eq!(
            IdempotencyKey::new("tab\there"),
            Err(IdempotencyKeyError::BadLength)
        );
    }

    /// Two field lines are ambiguous; none is no key.
    #[test]
    fn repeated_headers_are_refused_and_none_is_no_key() {
        let two = [b"\"a\"".as_slice(), b"\"a\"".as_slice()];
        assert_eq!(
            IdempotencyKey::from_header_values(two.into_iter()),
            Err(IdempotencyKeyError::Repeated)
        );
        assert_eq!(
            IdempotencyKey::from_header_values(std::iter::empty()),
            Ok(None)
        );
    }

    /// What the gateway sends on parses back to the same key.
    #[test]
    fn the_forwarded_header_value_round_trips() {
        let key = IdempotencyKey::new(r#"quote " and \ backslash"#).unwrap();
        assert_eq!(
            IdempotencyKey::parse(key.header_value().as_bytes()).unwrap(),
            key
        );
    }
}

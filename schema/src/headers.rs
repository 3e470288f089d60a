//! The request headers every node and the gateway read, with one rule each:
//! the declared purpose, the break-glass justification and the W3C trace
//! context. The gateway checks a request exactly as the node it forwards to
//! will, so a header the gateway accepts is never refused by a node (and a
//! node reached directly refuses what the gateway would).
//!
//! The functions take the raw header bytes (`None` when the header is
//! absent), so they need no HTTP crate and can be tested alone.

use crate::Purpose;

/// HTTP header carrying the declared purpose of a request.
pub const PURPOSE_HEADER: &str = "x-exchange-purpose";

/// HTTP header carrying the written justification of a break-glass request.
pub const JUSTIFICATION_HEADER: &str = "x-exchange-justification";

/// HTTP header carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Longest accepted justification, in characters (the header is ASCII, so
/// also in bytes).
pub const MAX_JUSTIFICATION_CHARS: usize = 2000;

/// A justification shorter than this (in characters, trimmed) is no
/// justification: break-glass needs a sentence, not "urgent". The policies
/// decide with it; the console asks for it up front.
pub const MIN_JUSTIFICATION_CHARS: usize = 20;

/// Why a header was refused. Every variant is a `BAD_USER_INPUT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the purpose header is not text")]
    PurposeNotText,
    #[error("{0}")]
    UnknownPurpose(String),
    #[error("the justification header must be ASCII; percent-encode other text")]
    JustificationNotAscii,
    #[error(
        "the justification must be at most {MAX_JUSTIFICATION_CHARS} printable characters, without control or bidirectional-override characters"
    )]
    BadJustification,
}

/// The declared purpose (`x-exchange-purpose`), surrounding blanks ignored.
pub fn purpose(value: Option<&[u8]>) -> Result<Option<Purpose>, HeaderError> {
    let Some(raw) = value else {
        return Ok(None);
    };
    let text = std::str::from_utf8(raw)
        .ok()
        .filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
        .ok_or(HeaderError::PurposeNotText)?;
    text.trim()
        .parse::<Purpose>()
        .map(Some)
        .map_err(|e| HeaderError::UnknownPurpose(e.to_string()))
}

/// The written justification (`x-exchange-justification`), trimmed: at most
/// [`MAX_JUSTIFICATION_CHARS`] visible ASCII characters and spaces. A blank
/// header is no justification (`None`), so a break-glass read with one is
/// `JUSTIFICATION_REQUIRED`, as without the header. Whether a justification
/// is long enough is the policies' decision.
pub fn justification(value: Option<&[u8]>) -> Result<Option<String>, HeaderError> {
    let Some(raw) = value else {
        return Ok(None);
    };
    if !raw.iter().all(|b| b.is_ascii()) {
        return Err(HeaderError::JustificationNotAscii);
    }
    // ASCII, so one byte is one character.
    let text = std::str::from_utf8(raw).map_err(|_| HeaderError::JustificationNotAscii)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.len() > MAX_JUSTIFICATION_CHARS || trimmed.chars().any(|c| c.is_ascii_control()) {
        return Err(HeaderError::BadJustification);
    }
    Ok(Some(trimmed.to_owned()))
}

/// A parsed `traceparent` header: version 00 layout. A later version is
/// read the same way (its extra fields ignored), as the W3C specification
/// asks; version `ff` is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceContext {
    /// Parses the header, or `None` when it is not valid: a receiver then
    /// starts a new trace, as the specification asks.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = parts.next()?;
        let (trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let extra = parts.next().is_some();
        if !lower_hex(version, 2) || version == "ff" || (version == "00" && extra) {
            return None;
        }
        if !lower_hex(trace_id, 32) || !lower_hex(parent_id, 16) || !lower_hex(flags, 2) {
            return None;
        }
        let mut context = Self {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: 0,
        };
        hex::decode_to_slice(trace_id, &mut context.trace_id).ok()?;
        hex::decode_to_slice(parent_id, &mut context.parent_id).ok()?;
        let mut flag = [0u8; 1];
        hex::decode_to_slice(flags, &mut flag).ok()?;
        context.flags = flag[0];
        if context.trace_id == [0; 16] || context.parent_id == [0; 8] {
            return None;
        }
        Some(context)
    }

    /// The trace ID as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// Whether the caller sampled the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purpose_is_read_with_blanks_ignored_and_unknown_ones_refused() {
        assert_eq!(purpose(None), Ok(None));
        assert_eq!(purpose(Some(b" REFERRAL ")), Ok(Some(Purpose::Referral)));
        assert!(matches!(
            purpose(Some(b"GOSSIP")),
            Err(HeaderError::UnknownPurpose(_))
        ));
        assert_eq!(
            purpose(Some("REFERRAL\u{e9}".as_bytes())),
            Err(HeaderError::PurposeNotText)
        );
        assert_eq!(
            purpose(Some(b"REF\x01ERRAL")),
            Err(HeaderError::PurposeNotText)
        );
    }

    /// The node and the gateway used to disagree on a blank header: the
    /// node read it as no justification (a break-glass read with it is
    /// `JUSTIFICATION_REQUIRED`), the gateway refused it as bad input. The
    /// node's rule is kept, at both.
    #[test]
    fn a_justification_is_trimmed_and_bounded_and_a_blank_one_is_none() {
        assert_eq!(justification(None), Ok(None));
        assert_eq!(
            justification(Some(b"  client in immediate danger  ")),
            Ok(Some("client in immediate danger".into()))
        );
        assert_eq!(justification(Some(b"   ")), Ok(None));
        let longest = "a".repeat(MAX_JUSTIFICATION_CHARS);
        assert!(justification(Some(longest.as_bytes())).is_ok());
        let too_long = "a".repeat(MAX_JUSTIFICATION_CHARS + 1);
        assert_eq!(
            justification(Some(too_long.as_bytes())),
            Err(HeaderError::BadJustification)
        );
        assert_eq!(
            justification(Some(b"line\x7fbreak")),
            Err(HeaderError::BadJustification)
        );
        assert_eq!(
            justification(Some("danger \u{202e}".as_bytes())),
            Err(HeaderError::JustificationNotAscii)
        );
    }

    /// The node accepted any four dash-separated fields with a valid trace
    /// ID; the gateway also checked the version, parent ID and flags. The
    /// gateway's rules are kept, and version 00 must have exactly four.
    #[test]
    fn a_traceparent_is_read_by_the_w3c_rules() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(ok).unwrap();
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(context.sampled());
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some(),
            "a later version may carry more fields"
        );
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
    }
}

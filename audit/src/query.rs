//! The query string of an audit export request, `GET /audit/export?...`,
//! parsed the same way by a node and by the gateway (which checks it before
//! asking any node, then passes it on unchanged).
//!
//! Parameters, each at most once, all optional:
//!
//! | parameter | value |
//! |---|---|
//! | `format` | `jsonl` (default; verifiable) or `csv` |
//! | `agency` | the requester's agency ID |
//! | `survivor` | a survivor's global ID (`<agency>:<local id>`) |
//! | `purpose` | a purpose (`REFERRAL`, `AUDIT`, ...) |
//! | `decision` | `PERMIT` or `DENY` |
//! | `break_glass` | `true` or `false` |
//! | `since` | RFC 3339 time, inclusive |
//! | `until` | RFC 3339 time, exclusive |
//!
//! Anything else is refused with [`QueryError`], whose code is always
//! `BAD_USER_INPUT`: a misspelt filter must never widen an export silently.

use exchange_schema::{AgencyId, Decision, ErrorCode, GlobalId, Purpose};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::read::AuditFilter;

/// The two export forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines with checkpoints: verifiable with `audit verify --export`.
    #[default]
    Jsonl,
    /// CSV for spreadsheets (not verifiable on its own).
    Csv,
}

impl ExportFormat {
    /// The `Content-Type` of an export in this form.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/jsonl",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file extension of an export in this form.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// A parsed export request.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    pub format: ExportFormat,
    pub filter: AuditFilter,
}

/// Why an export request's query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "unknown parameter {0:?}: use format, agency, survivor, purpose, decision, break_glass, since or until"
    )]
    Unknown(String),
    #[error("parameter {0:?} is given more than once")]
    Repeated(String),
    #[error("parameter {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("since must be earlier than until")]
    EmptyRange,
}

impl QueryError {
    /// The stable code of every refusal: the input is malformed.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadUserInput
    }
}

const NAMES: [&str; 8] = [
    "format",
    "agency",
    "survivor",
    "purpose",
    "decision",
    "break_glass",
    "since",
    "until",
];

impl ExportQuery {
    /// Parses decoded `name=value` pairs.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QueryError> {
        let mut seen = [false; NAMES.len()];
        let mut query = Self::default();
        for (name, value) in pairs {
            let Some(index) = NAMES.iter().position(|n| *n == name) else {
                return Err(QueryError::Unknown(truncate(name)));
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(QueryError::Repeated(name.to_owned()));
            }
            let value = value.trim();
            let invalid = |reason: String| QueryError::Invalid {
                name: NAMES[index],
                reason,
            };
            let filter = &mut query.filter;
            match NAMES[index] {
                "format" => {
                    query.format = match value {
                        "jsonl" => ExportFormat::Jsonl,
                        "csv" => ExportFormat::Csv,
                        other => {
                            return Err(invalid(format!(
                                "must be jsonl or csv, not {:?}",
                                truncate(other)
                            )));
                        }
                    }
                }
                "agency" => {
                    filter.actor_agency =
                        Some(AgencyId::parse(value).map_err(|e| invalid(e.to_string()))?)
                }
                "survivor" => {
                    let id = GlobalId::parse(value).map_err(|e| invalid(e.to_string()))?;
                    filter.survivor = Some(id.to_string());
                }
                "purpose" => {
                    filter.purpose = Some(
                        value
                            .parse::<Purpose>()
                            .map_err(|e| invalid(e.to_string()))?,
                    )
                }
                "decision" => {
                    filter.decision = Some(match value {
                        "PERMIT" => Decision::Permit,
                        "DENY" => Decision::Deny,
                        other => {
                            return Err(invalid(format!(
                                "must be PERMIT or DENY, not {:?}",
                                truncate(other)
                            )));
                        }
                    })
                }
                "break_glass" => {
                    filter.break_glass = Some(match value {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(invalid(format!(
                                "must be true or false, not {:?}",
                                truncate(other)
                            )));
                        }
                    })
                }
                "since" => filter.since = Some(parse_time(value).map_err(invalid)?),
                _ => filter.until = Some(parse_time(value).map_err(invalid)?),
            }
        }
        if let (Some(since), Some(until)) = (query.filter.since, query.filter.until)
            && since >= until
        {
            return Err(QueryError::EmptyRange);
        }
        Ok(query)
    }

    /// Parses a raw (percent-encoded) query string; `None` is no filter.
    pub fn parse_raw(raw: Option<&str>) -> Result<Self, QueryError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|_| QueryError::Invalid {
                name: "query",
                reason: "the query string is not form-encoded".to_owned(),
            })?;
        Self::parse(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}

fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| format!("{:?} is not an RFC 3339 time", truncate(value)))
}

/// At most 64 characters of client input, for an error message.
fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ExportQuery, QueryError> {
        ExportQuery::parse_raw(Some(raw))
    }

    #[test]
    fn every_filter_parses() {
        let q = parse(
            "format=csv&agency=legal-aid-east&survivor=shelter-north%3As1&purpose=REFERRAL\
             &decision=DENY&break_glass=true&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(q.format, ExportFormat::Csv);
        let f = &q.filter;
        assert_eq!(f.actor_agency.as_ref().unwrap().as_str(), "legal-aid-east");
        assert_eq!(f.survivor.as_deref(), Some("shelter-north:s1"));
        assert_eq!(f.purpose, Some(Purpose::Referral));
        assert_eq!(f.decision, Some(Decision::Deny));
        assert_eq!(f.break_glass, Some(true));
        assert!(f.since.unwrap() < f.until.unwrap());
        let empty = ExportQuery::parse_raw(None).unwrap();
        assert_eq!(empty.format, ExportFormat::Jsonl);
        assert!(empty.filter.survivor.is_none());
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        assert_eq!(
            parse("survivr=x").unwrap_err(),
            QueryError::Unknown("survivr".into())
        );
        assert_eq!(
            parse("format=csv&format=jsonl").unwrap_err(),
            QueryError::Repeated("format".into())
        );
        for raw in [
            "format=xml",
            "agency=Not An Agency",
            "survivor=nocolon",
            "purpose=FUN",
            "decision=maybe",
            "break_glass=yes",
            "since=yesterday",
            "until=2026-13-01T00:00:00Z",
        ] {
            let err = parse(raw).unwrap_err();
            assert!(matches!(err, QueryError::Invalid { .. }), "{raw}: {err}");
            assert_eq!(err.code(), ErrorCode::BadUserInput);
        }
        assert_eq!(
            parse("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z").unwrap_err(),
            QueryError::EmptyRange
        );
    }
}

//! The survivor's rights to have their record corrected or erased: a
//! request asked in the portal ([`ask`]), with the date by which the agency
//! answers (`[retention] answer_requests_within_days`), and the answer of
//! the agency's staff ([`answer`]). Granting an erasure erases the parts
//! asked for by destroying their keys ([`crate::retention::erase`]); a
//! legal hold in force refuses it, and the survivor sees the hold's reason.
//! Every step is audited (`RIGHTS_REQUEST`, never the words).

use exchange_schema::audit::now_millis;
use exchange_schema::{AuditEvent, AuditKind, Decision};

use crate::error::NodeError;
use crate::portal::credentials::survivor_event;
use crate::records::check_text;
use crate::state::NodeState;
use crate::store::rights::{self, RightsRequest};
use crate::vault::Part;

/// What the survivor asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
#[graphql(name = "RightsRequestKind", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum RequestKind {
    /// That something in the record be corrected (the survivor says what).
    Correction,
    /// That parts of the record be erased.
    Erasure,
}

impl RequestKind {
    pub const ALL: [RequestKind; 2] = [RequestKind::Correction, RequestKind::Erasure];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Correction => "CORRECTION",
            RequestKind::Erasure => "ERASURE",
        }
    }

    pub fn parse(text: &str) -> Option<RequestKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
#[graphql(name = "RightsRequestStatus", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Waiting for the agency's answer.
    Open,
    /// Done as asked (corrected, or erased).
    Done,
    /// Refused, with the agency's reason.
    Refused,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 3] = [
        RequestStatus::Open,
        RequestStatus::Done,
        RequestStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "OPEN",
            RequestStatus::Done => "DONE",
            RequestStatus::Refused => "REFUSED",
        }
    }

    pub fn parse(text: &str) -> Option<RequestStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How staff answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "RightsRequestOutcome", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Done as asked: for an erasure, the parts are erased now.
    Done,
    /// Refused: the answer must say why.
    Refused,
}

/// The longest text a survivor or an answer may give.
pub const MOST_TEXT_CHARS: usize = 2000;
/// How many requests a survivor may have open at once.
pub const MOST_OPEN_REQUESTS: i64 = 10;

/// The parts asked for, in order, without repeats; for an erasure, the
/// record as a whole (`RECORD`) is every part.
fn parts_asked(kind: RequestKind, parts: &[Part]) -> Result<Vec<Part>, NodeError> {
    if parts.is_empty() {
        return Err(NodeError::bad_input(
            "name at least one part of the record the request is about",
        ));
    }
    let mut parts = if kind == RequestKind::Erasure && parts.contains(&Part::Record) {
        Part::ALL.to_vec()
    } else {
        parts.to_vec()
    };
    parts.sort();
    parts.dedup();
    Ok(parts)
}

/// A text given with a request or an answer: trimmed, `None` when blank,
/// refused when too long or with control characters.
fn text(field: &str, value: Option<&str>) -> Result<Option<String>, NodeError> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    if let Some(value) = value {
        check_text(field, value, MOST_TEXT_CHARS, true)?;
    }
    Ok(value.map(str::to_owned))
}

/// A request's parts and words as they will be kept: at least one part (for
/// an erasure, `RECORD` is every part), words trimmed and checked, and
/// required for a correction (it must say what is wrong).
pub fn checked_request(
    kind: RequestKind,
    parts: &[Part],
    details: Option<&str>,
) -> Result<(Vec<Part>, Option<String>), NodeError> {
    let parts = parts_asked(kind, parts)?;
    let details = text("details", details)?;
    if kind == RequestKind::Correction && details.is_none() {
        return Err(NodeError::bad_input(
            "a correction must say what is wrong and what it should be",
        ));
    }
    Ok((parts, details))
}

/// Records a survivor's request, with its audit entry, and returns it (its
/// answer due `state.answer_requests_within` from now). See
/// [`checked_request`]; an erasure of parts already erased is a conflict.
pub async fn ask(
    state: &NodeState,
    survivor_id: &str,
    kind: RequestKind,
    parts: &[Part],
    details: Option<&str>,
) -> Result<RightsRequest, NodeError> {
    let (parts, details) = checked_request(kind, parts, details)?;
    let mut conn = crate::store::acquire(&state.db).await?;
    if rights::open_count(&mut conn, survivor_id)
        .await
        .map_err(NodeError::internal)?
        >= MOST_OPEN_REQUESTS
    {
        return Err(NodeError::Conflict(format!(
            "at most {MOST_OPEN_REQUESTS} requests can wait for an answer at once"
        )));
    }
    if kind == RequestKind::Erasure {
        let erased = crate::retention::erasures_of(&mut conn, survivor_id)
            .await
            .map_err(NodeError::internal)?;
        if parts.iter().all(|p| erased.contains_key(p)) {
            return Err(NodeError::Conflict(
                "every part asked for is erased already".into(),
            ));
        }
    }
    drop(conn);
    let now = now_millis();
    let request = RightsRequest {
        id: crate::store::new_local_id(),
        survivor_id: survivor_id.to_owned(),
        kind,
        parts,
        details,
        asked_at: now,
        answer_due_at: now + state.answer_requests_within,
        status: RequestStatus::Open,
        answer: None,
        answered_at: None,
        answered_by: None,
    };
    let mut event = survivor_event(
        state,
        AuditKind::RightsRequest,
        Decision::Permit,
        &format!("ASKED:{}", kind.as_str()),
        Some(survivor_id),
    );
    event.subject = Some(format!("rights-request:{}", request.id));
    event.explanation = Some(parts_list(&request.parts));
    let stored = request.clone();
    let vault = state.vault.clone();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &stored.survivor_id).await?;
                let key = vault.key(&stored.survivor_id).await?;
                // A record erased as a whole has no key left to seal with:
                // this answers ERASED.
                let sealed = key.seal_opt(
                    crate::vault::Field::RightsRequestDetails,
                    stored.details.as_deref(),
                )?;
                rights::insert(conn, &stored, sealed.as_deref())
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(request)
}

fn parts_list(parts: &[Part]) -> String {
    format!(
        "parts: {}",
        parts
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The answer to an open request, by `by` (`agency/user`), audited with
/// `event` (the staff member's, kind `RIGHTS_REQUEST`). A refusal must say
/// why. Granting an erasure erases the parts first (refused with
/// `CONFLICT`, naming the hold, under a legal hold), then records the
/// answer: should recording fail, answering again finds the parts erased
/// and only records it. When the whole record was erased, the answer's
/// text cannot be kept (its key is gone): the status and time say it.
pub async fn answer(
    state: &NodeState,
    event: AuditEvent,
    request: RightsRequest,
    outcome: Outcome,
    answer: Option<&str>,
    by: &str,
) -> Result<RightsRequest, NodeError> {
    if request.status != RequestStatus::Open {
        return Err(NodeError::Conflict(format!(
            "the request was answered already ({})",
            request.status.as_str()
        )));
    }
    let answer = text("answer", answer)?;
    if outcome == Outcome::Refused && answer.is_none() {
        return Err(NodeError::bad_input(
            "a refusal must give the survivor its reason",
        ));
    }
    let now = now_millis();
    let status = match outcome {
        Outcome::Done => RequestStatus::Done,
        Outcome::Refused => RequestStatus::Refused,
    };
    if request.kind == RequestKind::Erasure && outcome == Outcome::Done {
        let mut erasing = event.clone();
        erasing.kind = AuditKind::RecordErased;
        crate::retention::erase(
            state,
            erasing,
            &request.survivor_id,
            &request.parts,
            crate::retention::REQUEST_RULE,
            now,
        )
        .await?;
    }
    let mut event = event;
    event.reason = format!("{}:{}", status.as_str(), request.kind.as_str());
    event.subject = Some(format!("rights-request:{}", request.id));
    event.explanation = Some(parts_list(&request.parts));
    let (id, survivor_id, by_text) = (
        request.id.clone(),
        request.survivor_id.clone(),
        by.to_owned(),
    );
    let (kept_answer, vault) = (answer.clone(), state.vault.clone());
    let stored = state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                let key = vault.key(&survivor_id).await?;
                let sealed = match (&kept_answer, key.erased(Part::Record)) {
                    (Some(text), None) => {
                        Some(key.seal(crate::vault::Field::RightsRequestAnswer, text)?)
                    }
                    _ => None,
                };
                if !rights::answer(conn, &id, status, sealed.as_deref(), now, &by_text)
                    .await
                    .map_err(NodeError::internal)?
                {
                    return Err(NodeError::Conflict(
                        "the request was answered meanwhile".into(),
                    ));
                }
                Ok((sealed.is_some(), event))
            })
        })
        .await?;
    Ok(RightsRequest {
        status,
        answer: if stored { answer } else { None },
        answered_at: Some(now),
        answered_by: Some(by.to_owned()),
        ..request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_of_the_record_is_an_erasure_of_every_part() {
        assert_eq!(
            parts_asked(RequestKind::Erasure, &[Part::Contact, Part::Record]).unwrap(),
            Part::ALL.to_vec()
        );
        assert_eq!(
            parts_asked(RequestKind::Correction, &[Part::Record, Part::Contact]).unwrap(),
            vec![Part::Contact, Part::Record]
        );
        assert!(parts_asked(RequestKind::Erasure, &[]).is_err());
    }

    #[test]
    fn a_text_is_trimmed_and_checked() {
        assert_eq!(text("details", Some("  ")).unwrap(), None);
        assert_eq!(
            text("details", Some(" my name ")).unwrap().as_deref(),
            Some("my name")
        );
        assert!(text("details", Some("a\u{202E}b")).is_err());
        assert!(text("details", Some(&"x".repeat(MOST_TEXT_CHARS + 1))).is_err());
    }

    #[test]
    fn wire_names_round_trip() {
        for kind in RequestKind::ALL {
            assert_eq!(RequestKind::parse(kind.as_str()), Some(kind));
        }
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
        }
    }
}

//! What supervisors do in the console: review emergency (break-glass)
//! access to their agency's records, assign caseworkers to a case their
//! agency owns, and (with the data-protection officer) answer survivors'
//! requests to correct or erase their records. The nodes decide who may;
//! the console only hides what would be refused.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use exchange_schema::{Purpose, Role};
use serde::Deserialize;
use serde_json::json;

use super::survivors::{Change, SurvivorForm, field};
use super::survivors::{done, pairs};
use super::{form_visit, signed_in_visit};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::pages::{AuditEntry, RequestsPage, ReviewPage, RightsRequest};

/// Entries the review page shows.
const PAGE_SIZE: i64 = 50;
/// Most caseworkers on one case (the node's limit).
const MAX_ASSIGNED: usize = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditAnswer {
    audit_log: AuditConnection,
}

#[derive(Deserialize)]
struct AuditConnection {
    nodes: Vec<AuditEntry>,
}

/// `/review`: break-glass entries of the agency's own node log (every
/// emergency read of its records, by whichever agency), newest first, for
/// the AUDIT purpose. Supervisors only; other nodes refuse a supervisor
/// their logs, which the page expects.
pub async fn review(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let (visit, signed_in) = match signed_in_visit(&state, &headers, "/review").await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if !signed_in.principal.has_role(Role::Supervisor) {
        return visit.refuse(
            &state,
            ConsoleError::Gateway {
                code: exchange_schema::ErrorCode::Forbidden,
                message: "supervisors only".into(),
            },
        );
    }
    let own = signed_in.principal.agency.to_string();
    let answer: Result<(AuditAnswer, Vec<String>), _> = state
        .gateway
        .execute_scattered(
            &signed_in.access_token,
            Purpose::Audit,
            "query($filter: AuditLogFilter, $first: Int) { auditLog(filter: $filter, first: $first) \
             { nodes { at kind actorAgency actorUser survivorId purpose justification decision disclosed } } }",
            // `agency` would filter by the acting agency; the log read is
            // the own node's anyway, since the others refuse a supervisor.
            json!({ "filter": { "breakGlass": true }, "first": PAGE_SIZE }),
        )
        .await;
    let (answer, refused_by) = match answer {
        Ok(a) => a,
        Err(e) => return visit.refuse(&state, e),
    };
    if refused_by.contains(&own) {
        return visit.refuse(
            &state,
            ConsoleError::Gateway {
                code: exchange_schema::ErrorCode::Forbidden,
                message: "the agency's own node refused its log".into(),
            },
        );
    }
    visit.page(
        &state,
        ReviewPage {
            chrome: visit.chrome(),
            entries: answer.audit_log.nodes,
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestsAnswer {
    rights_requests: Vec<RightsRequest>,
}

/// The longest answer the form takes (the node's limit).
const MAX_ANSWER_CHARS: usize = 2000;
/// Requests the page lists (the first due first).
const REQUESTS_LISTED: i64 = 100;

fn forbidden(message: &str) -> ConsoleError {
    ConsoleError::Gateway {
        code: exchange_schema::ErrorCode::Forbidden,
        message: message.into(),
    }
}

/// `/requests`: the survivors' requests to correct or erase that wait for
/// the agency's answer, the first due first, overdue ones marked, each with
/// the form to answer it. Supervisors and the data-protection officer.
pub async fn requests(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let (visit, signed_in) = match signed_in_visit(&state, &headers, "/requests").await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if !visit.chrome().records_officer {
        return visit.refuse(
            &state,
            forbidden("supervisors and the data-protection officer only"),
        );
    }
    let answer: Result<RequestsAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "query($first: Int) { rightsRequests(status: OPEN, first: $first) { id survivorId \
             kind parts details askedAt answerDueAt overdue } }",
            json!({ "first": REQUESTS_LISTED }),
        )
        .await;
    match answer {
        Ok(answer) => visit.page(
            &state,
            RequestsPage {
                chrome: visit.chrome(),
                requests: answer.rights_requests,
            },
        ),
        Err(e) => visit.refuse(&state, e),
    }
}

/// The answer form read into `answerRightsRequest`'s variables; refuses
/// what the form could not have sent.
pub fn request_answer(
    id: &str,
    form: &[(String, String)],
) -> Result<serde_json::Value, ConsoleError> {
    let outcome = field(form, "outcome")
        .filter(|o| ["DONE", "REFUSED"].contains(o))
        .ok_or(ConsoleError::BadRequest("choose done or refused"))?;
    let answer = field(form, "answer");
    if answer.is_some_and(|a| a.chars().count() > MAX_ANSWER_CHARS) {
        return Err(ConsoleError::BadRequest("the answer is too long"));
    }
    if outcome == "REFUSED" && answer.is_none() {
        return Err(ConsoleError::BadRequest(
            "a refusal must give the survivor its reason",
        ));
    }
    Ok(json!({ "id": id, "outcome": outcome, "answer": answer }))
}

/// `POST /requests/{id}/answer`: answers a survivor's request (for an
/// erasure, done means erased now); back to the list with a notice.
pub async fn answer_request(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let form = pairs(&body);
    let (visit, signed_in) =
        match form_visit(&state, &headers, "/requests", field(&form, "csrf")).await {
            Ok(v) => v,
            Err(refused) => return refused,
        };
    let variables = match request_answer(&id, &form) {
        Ok(v) => v,
        Err(e) => return visit.refuse(&state, e),
    };
    let result: Result<serde_json::Value, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "mutation($id: ID!, $outcome: RightsRequestOutcome!, $answer: String) { \
             answerRightsRequest(id: $id, outcome: $outcome, answer: $answer) { id status } }",
            variables,
        )
        .await;
    done(
        &state,
        &visit,
        result,
        "notice-request-answered",
        "/requests",
    )
}

/// The users of the assignment form: comma- or line-separated, trimmed,
/// without repeats; at most [`MAX_ASSIGNED`].
pub fn assigned_users(text: &str) -> Result<Vec<String>, ConsoleError> {
    let mut users: Vec<String> = Vec::new();
    for user in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        if user.chars().count() > 256 || user.chars().any(char::is_control) {
            return Err(ConsoleError::BadRequest("a user name is not valid"));
        }
        if !users.iter().any(|u| u == user) {
            users.push(user.to_owned());
        }
    }
    if users.len() > MAX_ASSIGNED {
        return Err(ConsoleError::BadRequest("at most 20 caseworkers on a case"));
    }
    Ok(users)
}

/// `POST /survivors/{id}/caseworkers`: replaces the caseworkers assigned
/// to a case the agency owns (its supervisors; the node decides).
pub fn assignment(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    let form = f.fields;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!, $users: [String!]!) { assignCaseworkers(survivorId: $id, users: $users) { user } }",
        variables: json!({ "id": f.survivor, "users": assigned_users(field(form, "users").unwrap_or_default())? }),
        notice: "notice-assigned",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_answer_needs_an_outcome_and_a_refusal_its_reason() {
        let form = |text: &str| pairs(text);
        assert_eq!(
            request_answer("a:1", &form("outcome=DONE")).unwrap(),
            json!({ "id": "a:1", "outcome": "DONE", "answer": null })
        );
        assert!(request_answer("a:1", &form("outcome=REFUSED&answer=+")).is_err());
        assert!(request_answer("a:1", &form("outcome=ERASED")).is_err());
        assert!(request_answer("a:1", &form("")).is_err());
        let long = format!("outcome=REFUSED&answer={}", "x".repeat(2001));
        assert!(request_answer("a:1", &form(&long)).is_err());
        assert_eq!(
            request_answer("a:1", &form("outcome=REFUSED&answer=Court+order")).unwrap()["answer"],
            "Court order"
        );
    }

    #[test]
    fn assigned_users_are_split_trimmed_and_deduplicated_within_the_limit() {
        assert_eq!(
            assigned_users(" ana@x , ben@x\nana@x,, ").unwrap(),
            vec!["ana@x".to_owned(), "ben@x".to_owned()]
        );
        assert!(assigned_users("").unwrap().is_empty());
        let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
        assert!(assigned_users(&many.join(",")).is_err());
        assert!(assigned_users("bad\u{7}name").is_err());
    }
}

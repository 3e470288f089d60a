//! What supervisors do in the console: review emergency (break-glass)
//! access to their agency's records, and assign caseworkers to a case
//! their agency owns. The nodes decide who may; the console only hides
//! what would be refused.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use exchange_schema::{Purpose, Role};
use serde::Deserialize;
use serde_json::json;

use super::signed_in_visit;
use super::survivors::{Change, field, survivor_form};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::pages::{AuditEntry, ReviewPage};

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
pub async fn assign(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    survivor_form(&state, &headers, &id, &body, |form, _, _| {
        Ok(Change {
            purpose: Purpose::CaseManagement,
            mutation: "mutation($id: ID!, $users: [String!]!) { assignCaseworkers(survivorId: $id, users: $users) { user } }",
            variables: json!({ "id": id, "users": assigned_users(field(form, "users").unwrap_or_default())? }),
            notice: "notice-assigned",
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

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

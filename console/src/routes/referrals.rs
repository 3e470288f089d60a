//! The referral inbox across the federation, one referral with its
//! history, and the answers (accept, decline, complete, withdraw).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use exchange_schema::Purpose;
use serde::Deserialize;
use serde_json::json;

use super::{form_visit, redirect_to, signed_in_visit};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::pages::{Referral, ReferralPage, ReferralsPage, referral_actions};
use crate::session::SignedIn;

/// Referrals a page of the inbox shows.
const PAGE_SIZE: i64 = 25;

#[derive(Deserialize)]
pub struct InboxQuery {
    direction: Option<String>,
    status: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct ReferralsAnswer {
    referrals: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<Referral>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

const REFERRAL_FIELDS: &str = "id survivorId fromAgency toAgency service urgency status notes createdAt history { status at byAgency note }";

/// `/referrals`: incoming and outgoing referrals from every node, newest
/// first, filtered and paginated.
pub async fn referrals(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Response {
    let direction = match query.direction.as_deref() {
        None | Some("") => "INCOMING",
        Some(d @ ("INCOMING" | "OUTGOING" | "ALL")) => d,
        Some(_) => "",
    };
    let status = query.status.clone().unwrap_or_default();
    let here = format!(
        "/referrals?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("direction", direction)
            .append_pair("status", &status)
            .finish()
    );
    let (visit, signed_in) = match signed_in_visit(&state, &headers, &here).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if direction.is_empty()
        || !(status.is_empty()
            || ["PENDING", "ACCEPTED", "DECLINED", "COMPLETED", "WITHDRAWN"]
                .contains(&status.as_str()))
    {
        return visit.refuse(&state, ConsoleError::BadRequest("unknown filter"));
    }
    let statuses: Option<Vec<&str>> = (!status.is_empty()).then(|| vec![status.as_str()]);
    let answer: Result<ReferralsAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!(
                "query($direction: ReferralDirection!, $status: [ReferralStatus!], $first: Int, $after: String) \
                 {{ referrals(direction: $direction, status: $status, first: $first, after: $after) \
                 {{ nodes {{ {REFERRAL_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
            ),
            json!({ "direction": direction, "status": statuses, "first": PAGE_SIZE, "after": query.after }),
        )
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return visit.refuse(&state, e),
    };
    let next = match (
        answer.referrals.page_info.has_next_page,
        answer.referrals.page_info.end_cursor,
    ) {
        (true, Some(cursor)) => Some(format!(
            "{here}&{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("after", &cursor)
                .finish()
        )),
        _ => None,
    };
    let own_agency = signed_in.principal.agency.to_string();
    visit.page(
        &state,
        ReferralsPage {
            chrome: visit.chrome(),
            direction: direction.to_owned(),
            status,
            referrals: answer.referrals.nodes,
            next,
            own_agency,
        },
    )
}

#[derive(Deserialize)]
struct ReferralAnswer {
    referral: Option<Referral>,
}

pub(crate) async fn load_referral(
    state: &ConsoleState,
    signed_in: &SignedIn,
    id: &str,
) -> Result<Referral, ConsoleError> {
    let answer: ReferralAnswer = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!("query($id: ID!) {{ referral(id: $id) {{ {REFERRAL_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await?;
    answer.referral.ok_or(ConsoleError::Gateway {
        code: exchange_schema::ErrorCode::NotFound,
        message: "no such referral".into(),
    })
}

/// `/referrals/{id}`: a referral, its history and the answers offered.
pub async fn referral(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (visit, signed_in) =
        match signed_in_visit(&state, &headers, &format!("/referrals/{id}")).await {
            Ok(v) => v,
            Err(refused) => return refused,
        };
    let referral = match load_referral(&state, &signed_in, &id).await {
        Ok(r) => r,
        Err(e) => return visit.refuse(&state, e),
    };
    let incoming = referral.to_agency == signed_in.principal.agency.as_str();
    let actions = referral_actions(incoming, &referral.status);
    visit.page(
        &state,
        ReferralPage {
            chrome: visit.chrome(),
            referral,
            incoming,
            actions,
        },
    )
}

#[derive(Deserialize)]
pub struct AnswerForm {
    csrf: Option<String>,
    action: String,
    reason: Option<String>,
}

/// `POST /referrals/{id}/answer`: accept, decline (with a reason),
/// complete or withdraw (with a reason).
pub async fn answer(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    let (visit, signed_in) = match form_visit(
        &state,
        &headers,
        &format!("/referrals/{id}"),
        form.csrf.as_deref(),
    )
    .await
    {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let (mutation, argument) = match form.action.as_str() {
        "accept" => ("acceptReferral", "note"),
        "complete" => ("completeReferral", "note"),
        "decline" => ("declineReferral", "reason"),
        "withdraw" => ("withdrawReferral", "reason"),
        _ => return visit.refuse(&state, ConsoleError::BadRequest("unknown answer")),
    };
    if argument == "reason" && reason.is_none() {
        return visit.refuse(&state, ConsoleError::BadRequest("a reason is needed"));
    }
    let result: Result<serde_json::Value, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            &format!(
                "mutation($id: ID!, $text: String) {{ {mutation}(id: $id, {argument}: $text) {{ status }} }}"
            ),
            json!({ "id": id, "text": reason }),
        )
        .await;
    match result {
        Ok(_) => {
            state
                .sessions
                .update(&visit.token, |s| s.notice = Some("notice-answered".into()));
            visit.finish(&state, redirect_to(&format!("/referrals/{id}")))
        }
        Err(e) => visit.refuse(&state, e),
    }
}

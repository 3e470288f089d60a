//! The caseworker's agency across the federation: its follow-ups due soon
//! at every node, and the directory of member agencies to refer to.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use exchange_schema::Purpose;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::signed_in_visit;
use super::survivors::SERVICES;
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::pages::{AgenciesPage, FollowUp, FollowUpsPage, MemberAgency};

/// Follow-ups a page shows.
const PAGE_SIZE: i64 = 25;

#[derive(Deserialize)]
pub struct FollowUpsQuery {
    days: Option<i64>,
    after: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FollowUpsAnswer {
    follow_ups_due: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<FollowUp>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// `/follow-ups`: the agency's open follow-ups due within `days` (7 by
/// default, 1 to 90), from every node, soonest first.
pub async fn follow_ups(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(query): Query<FollowUpsQuery>,
) -> Response {
    let days = query.days.unwrap_or(7);
    let here = format!("/follow-ups?days={days}");
    let (visit, signed_in) = match signed_in_visit(&state, &headers, &here).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if !(1..=90).contains(&days) {
        return visit.refuse(&state, ConsoleError::BadRequest("days must be 1 to 90"));
    }
    let before = (OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let answer: Result<FollowUpsAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "query($before: DateTime!, $first: Int, $after: String) { followUpsDue(before: $before, first: $first, after: $after) \
             { nodes { id survivorId kind dueAt assignedAgency assignedUser status } pageInfo { hasNextPage endCursor } } }",
            json!({ "before": before, "first": PAGE_SIZE, "after": query.after }),
        )
        .await;
    let answer = match answer {
        Ok(a) => a.follow_ups_due,
        Err(e) => return visit.refuse(&state, e),
    };
    let next = match (answer.page_info.has_next_page, answer.page_info.end_cursor) {
        (true, Some(cursor)) => Some(format!(
            "{here}&{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("after", &cursor)
                .finish()
        )),
        _ => None,
    };
    visit.page(
        &state,
        FollowUpsPage {
            chrome: visit.chrome(),
            follow_ups: answer.nodes,
            days,
            next,
        },
    )
}

#[derive(Deserialize)]
pub struct DirectoryQuery {
    service: Option<String>,
    language: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
struct AgenciesAnswer {
    agencies: Vec<MemberAgency>,
}

/// `/agencies`: the federation's member agencies by service, language and
/// region (the gateway's directory; `pt` matches `pt-BR`).
pub async fn agencies(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(query): Query<DirectoryQuery>,
) -> Response {
    let service = query.service.unwrap_or_default();
    let language = query.language.unwrap_or_default().trim().to_owned();
    let region = query.region.unwrap_or_default().trim().to_owned();
    let here = format!(
        "/agencies?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("service", &service)
            .append_pair("language", &language)
            .append_pair("region", &region)
            .finish()
    );
    let (visit, signed_in) = match signed_in_visit(&state, &headers, &here).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    if !(service.is_empty() || SERVICES.contains(&service.as_str()))
        || language.chars().count() > 35
        || region.chars().count() > 100
    {
        return visit.refuse(&state, ConsoleError::BadRequest("unknown filter"));
    }
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let answer: Result<AgenciesAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            "query($service: ServiceKind, $language: String, $region: String) \
             { agencies(service: $service, language: $language, region: $region) \
             { id name kind services languages region hasNode } }",
            json!({ "service": some(&service), "language": some(&language), "region": some(&region) }),
        )
        .await;
    match answer {
        Ok(a) => visit.page(
            &state,
            AgenciesPage {
                chrome: visit.chrome(),
                agencies: a.agencies,
                service,
                language,
                region,
                services: &SERVICES,
            },
        ),
        Err(e) => visit.refuse(&state, e),
    }
}

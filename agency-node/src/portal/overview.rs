//! The signed-in survivor's overview: grants, who looked at the record,
//! referrals and receipts, and downloading a receipt.

use super::*;

/// The grant's state at `now`: code and message ID.
pub(super) fn grant_status(
    grant: &ConsentGrantRecord,
    now: OffsetDateTime,
) -> (&'static str, &'static str) {
    if grant.revoked_at.is_some() {
        ("REVOKED", "status-revoked")
    } else if grant.valid_until.is_some_and(|u| u <= now) {
        ("EXPIRED", "status-expired")
    } else if grant.valid_from > now {
        ("PENDING", "status-pending")
    } else {
        ("ACTIVE", "status-active")
    }
}

pub(super) async fn home(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, q.lang.as_deref());
    let who = match portal.signed_in(&visit).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    match overview(&portal, &visit, &who).await {
        Ok(page) => html(&visit, StatusCode::OK, page),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

pub(super) async fn overview(
    portal: &Portal,
    visit: &Visit,
    who: &SignedIn,
) -> Result<HomePage, NodeError> {
    let node = &portal.node;
    let chrome = portal.chrome(visit, "/home");
    let now = now_millis();
    let gid = GlobalId::new(node.agency.clone(), who.survivor_id.clone())?;
    let mut conn = node.db.pool().acquire().await?;
    let grant_records = grants::for_survivor(&mut conn, &node.vault, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let referral_records = store::referrals::for_survivor(&mut conn, &node.vault, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let receipt_records =
        store::portal::receipts_for(&mut conn, &portal.node.vault, &who.survivor_id)
            .await
            .map_err(NodeError::internal)?;
    drop(conn);
    let entries = exchange_audit::read::entries(
        &node.db,
        &exchange_audit::read::AuditFilter {
            survivor: Some(gid.to_string()),
            ..Default::default()
        },
        200,
    )
    .await
    .map_err(NodeError::internal)?;

    let mut grants: Vec<GrantRow> = grant_records
        .iter()
        .map(|g| {
            let (status_code, status_id) = grant_status(g, now);
            GrantRow {
                id: g.id.clone(),
                agency: agency_label(portal, &chrome, &g.grantee),
                parts: g
                    .categories
                    .iter()
                    .map(|c| category_text(&chrome, *c))
                    .collect(),
                purposes: g
                    .purposes
                    .iter()
                    .map(|p| purpose_text(&chrome, *p))
                    .collect(),
                until: until_text(&chrome, g.valid_until),
                status: chrome.t(status_id),
                status_code,
                revocable: matches!(status_code, "ACTIVE" | "PENDING"),
            }
        })
        .collect();
    // Current grants first, newest first within each group.
    grants.reverse();
    grants.sort_by_key(|g| !g.revocable);

    let history: Vec<AccessRow> = entries
        .iter()
        .filter(|e| e.event.kind == AuditKind::Disclosure)
        .map(|e| {
            let agency = e.event.actor_agency.clone();
            AccessRow {
                when: time_text(e.event.at),
                who: agency
                    .as_ref()
                    .map_or_else(String::new, |a| agency_label(portal, &chrome, a)),
                agency_id: agency.map(|a| a.to_string()).unwrap_or_default(),
                purpose: e
                    .event
                    .purpose
                    .map(|p| purpose_text(&chrome, p))
                    .unwrap_or_default(),
                seen: e
                    .event
                    .disclosed
                    .iter()
                    .map(|c| category_text(&chrome, *c))
                    .collect(),
                break_glass: e.event.break_glass,
            }
        })
        .collect();

    let referrals = referral_records
        .iter()
        .map(|r| ReferralRow {
            to: agency_label(portal, &chrome, &r.to_agency),
            service: chrome.t(&message_id("service", r.service.as_str())),
            status: chrome.t(&message_id("referral-status", r.status.as_str())),
            updated: date_text(r.updated_at),
        })
        .collect();

    let grantee_of = |grant_id: &str| {
        grant_records
            .iter()
            .find(|g| g.id == grant_id)
            .map(|g| agency_label(portal, &chrome, &g.grantee))
            .unwrap_or_default()
    };
    let receipts = receipt_records
        .iter()
        .map(|r| ReceiptRow {
            id: r.id.clone(),
            when: time_text(r.created_at),
            what: chrome.t(if r.event == ConsentEvent::Given.as_str() {
                "receipt-given"
            } else {
                "receipt-withdrawn"
            }),
            agency: grantee_of(&r.grant_id),
        })
        .collect();

    let (plan, timeline) = case_view(portal, &chrome, &who.survivor_id, &referral_records).await?;
    let agency_name = portal.agency_name(&node.agency);
    Ok(HomePage {
        heading: chrome.t1("home-heading", "agency", &agency_name),
        receipts_intro: chrome.t1("receipts-intro", "agency", &agency_name),
        chrome,
        grants,
        has_break_glass: history.iter().any(|a| a.break_glass),
        history,
        referrals,
        receipts,
        plan,
        timeline,
    })
}

pub(super) async fn download_receipt(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visit = portal.visit(&headers, None);
    let who = match portal.signed_in(&visit).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let receipts = match portal.node.db.pool().acquire().await {
        Ok(mut conn) => {
            store::portal::receipts_for(&mut conn, &portal.node.vault, &who.survivor_id).await
        }
        Err(err) => Err(err.into()),
    };
    match receipts {
        Ok(receipts) => match receipts.into_iter().find(|r| r.id == id) {
            Some(r) => (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"consent-receipt-{}.json\"", r.id),
                    ),
                ],
                r.receipt,
            )
                .into_response(),
            None => error_page(&portal, &visit, PortalError::NotFound),
        },
        Err(err) => error_page(&portal, &visit, NodeError::internal(err).into()),
    }
}

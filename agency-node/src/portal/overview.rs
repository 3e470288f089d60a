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
    let visit = match portal.visit(&headers, q.lang.as_deref()).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
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
        .filter(|e| e.event.kind == AuditKind::Disclosure && e.event.reason != "SURVIVOR_EXPORT")
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
    let mut conn = node.db.pool().acquire().await?;
    let requests = store::rights::for_survivor(&mut conn, &node.vault, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let hold = crate::retention::hold_in_force(&mut conn, &node.vault, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?
        .map(|h| h.reason);
    let statistics_opt_out = crate::statistics::opted_out(&mut conn, &who.survivor_id)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    let retention = crate::retention::schedule(node, &who.survivor_id)
        .await?
        .into_iter()
        .map(|r| RetentionRow {
            part: match crate::vault::Part::parse(r.part).and_then(|p| p.category()) {
                Some(category) => category_text(&chrome, category),
                None => chrome.t("retention-part-record"),
            },
            kept: match (r.erased_at, r.due_at) {
                (Some(at), _) => chrome.t1("retention-erased", "date", &date_text(at)),
                (None, _) if r.held => chrome.t("retention-held"),
                (None, Some(at)) => chrome.t1("retention-until", "date", &date_text(at)),
                (None, None) => chrome.t("retention-no-end"),
            },
            why: match (&r.erased_at, &hold) {
                (Some(_), _) => None,
                (None, Some(reason)) => Some(chrome.t1("hold-reason", "reason", reason)),
                (None, None) => r.why,
            },
        })
        .collect();
    let requests = super::rights::request_rows(&chrome, &requests, hold.as_deref());
    let request_parts = super::rights::part_choices(&chrome);
    let request_deadline = chrome.t1(
        "request-deadline",
        "days",
        &node.answer_requests_within.whole_days().to_string(),
    );
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
        retention,
        requests,
        request_parts,
        request_deadline,
        statistics_opt_out,
    })
}

/// Everything the node holds about the signed-in survivor, as one JSON
/// file: the record's categories, consent grants and receipts, referrals
/// with their histories, case notes, services, follow-ups and care plan,
/// how long each part is kept, and every disclosure of the record. The
/// download is audited (`DISCLOSURE`, reason `SURVIVOR_EXPORT`).
pub(super) async fn download_everything(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let who = match portal.signed_in(&visit).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    match everything(&portal.node, &who.survivor_id).await {
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"my-record.json\"".to_owned(),
                ),
            ],
            json,
        )
            .into_response(),
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

/// The export's JSON (see [`download_everything`]).
pub async fn everything(node: &NodeState, survivor_id: &str) -> Result<String, NodeError> {
    serde_json::to_string_pretty(&everything_held(node, survivor_id).await?)
        .map_err(NodeError::internal)
}

/// Everything held about the survivor, as one JSON value, its reading
/// audited first (`DISCLOSURE`, reason `SURVIVOR_EXPORT`).
pub async fn everything_held(
    node: &NodeState,
    survivor_id: &str,
) -> Result<serde_json::Value, NodeError> {
    let gid = GlobalId::new(node.agency.clone(), survivor_id.to_owned())?;
    // Audited first: nothing leaves without its entry.
    let mut event = exchange_schema::AuditEvent::new(
        AuditKind::Disclosure,
        Decision::Permit,
        "SURVIVOR_EXPORT",
    );
    event.survivor = Some(gid.clone());
    event.actor_user = Some("survivor".into());
    event.disclosed = Category::ALL.to_vec();
    node.audit.append(event).await?;
    let vault = &node.vault;
    let mut conn = node.db.pool().acquire().await?;
    let internal = NodeError::internal;
    let record = store::survivors::get(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?
        .ok_or(NodeError::NotFound("survivor"))?;
    let categories = Category::ALL.to_vec();
    let notes = store::case::notes_page(
        &mut conn,
        vault,
        survivor_id,
        &categories,
        true,
        None,
        10_000,
    )
    .await
    .map_err(internal)?;
    let services = store::case::services_for(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    let follow_ups = store::case::follow_ups_for(&mut conn, survivor_id)
        .await
        .map_err(internal)?;
    let plans = store::care_plan::versions(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    let grant_records = grants::for_survivor(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    let referral_records = store::referrals::for_survivor(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    let ids: Vec<&str> = referral_records.iter().map(|r| r.id.as_str()).collect();
    let histories = store::referrals::histories(&mut conn, vault, &ids)
        .await
        .map_err(internal)?;
    let receipts = store::portal::receipts_for(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    let requests = store::rights::for_survivor(&mut conn, vault, survivor_id)
        .await
        .map_err(internal)?;
    drop(conn);
    let retention = crate::retention::schedule(node, survivor_id).await?;
    let entries = exchange_audit::read::entries(
        &node.db,
        &exchange_audit::read::AuditFilter {
            survivor: Some(gid.to_string()),
            ..Default::default()
        },
        10_000,
    )
    .await
    .map_err(internal)?;
    let time = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let json = serde_json::json!({
        "exportedAt": time(now_millis()),
        "holder": node.agency.as_str(),
        "survivorId": gid.to_string(),
        "registeredAt": time(record.created_at),
        "record": {
            "identity": record.identity,
            "contact": record.contact,
            "case": record.case,
            "health": record.health,
            "legal": record.legal,
            "erased": record.erased.iter().map(|e| serde_json::json!({
                "category": e.category.as_str(), "erasedAt": time(e.at), "rule": e.rule,
            })).collect::<Vec<_>>(),
        },
        "retention": retention.iter().map(|r| serde_json::json!({
            "part": r.part,
            "keptUntil": r.due_at.map(time),
            "rule": r.rule,
            "why": r.why,
            "erasedAt": r.erased_at.map(time),
            "erasureRule": r.erasure_rule,
            "legalHold": r.held,
        })).collect::<Vec<_>>(),
        "consentGrants": grant_records.iter().map(|g| serde_json::json!({
            "id": g.id, "grantee": g.grantee.as_str(),
            "categories": g.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "purposes": g.purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "validFrom": time(g.valid_from), "validUntil": g.valid_until.map(time),
            "method": g.method.as_str(), "witness": g.witness,
            "revokedAt": g.revoked_at.map(time), "revocationReason": g.revocation_reason,
        })).collect::<Vec<_>>(),
        "consentReceipts": receipts.iter().map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.receipt).unwrap_or(serde_json::Value::Null)
        }).collect::<Vec<_>>(),
        "referrals": referral_records.iter().zip(&histories).map(|(r, history)| serde_json::json!({
            "id": r.id, "from": r.from_agency.as_str(), "to": r.to_agency.as_str(),
            "service": r.service.as_str(), "urgency": r.urgency.as_str(),
            "status": r.status.as_str(), "notes": r.notes, "createdAt": time(r.created_at),
            "history": history.iter().map(|e| serde_json::json!({
                "status": e.status.as_str(), "at": time(e.at), "by": e.by_agency.as_str(), "note": e.note,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "caseNotes": notes.iter().map(|n| serde_json::json!({
            "id": n.id, "category": n.category.as_str(), "body": n.body,
            "author": n.author_agency.as_str(), "at": time(n.created_at),
            "supersedes": n.supersedes,
        })).collect::<Vec<_>>(),
        "services": services.iter().map(|s| serde_json::json!({
            "id": s.id, "kind": s.kind.as_str(), "provider": s.provider.as_str(),
            "status": s.status.as_str(), "plannedFor": s.planned_for.map(time),
            "deliveredAt": s.delivered_at.map(time), "outcome": s.outcome,
        })).collect::<Vec<_>>(),
        "followUps": follow_ups.iter().map(|f| serde_json::json!({
            "id": f.id, "kind": f.kind.as_str(), "dueAt": time(f.due_at),
            "agency": f.assigned_agency.as_str(), "status": f.status.as_str(),
        })).collect::<Vec<_>>(),
        "carePlan": plans.iter().map(|p| serde_json::json!({
            "version": p.version, "goals": p.goals,
            "actions": p.actions.iter().map(|a| serde_json::json!({
                "description": a.description, "responsible": a.responsible.as_str(),
                "status": a.status.as_str(), "dueAt": a.due_at.map(time),
            })).collect::<Vec<_>>(),
            "agreedAt": p.agreement.as_ref().map(|a| time(a.at)),
        })).collect::<Vec<_>>(),
        "rightsRequests": requests.iter().map(|r| serde_json::json!({
            "id": r.id, "kind": r.kind.as_str(),
            "parts": r.parts.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "details": r.details, "askedAt": time(r.asked_at),
            "answerDueAt": time(r.answer_due_at), "status": r.status.as_str(),
            "answer": r.answer, "answeredAt": r.answered_at.map(time),
        })).collect::<Vec<_>>(),
        "disclosures": entries.iter()
            .filter(|e| e.event.kind == AuditKind::Disclosure && e.event.reason != "SURVIVOR_EXPORT")
            .map(|e| serde_json::json!({
                "at": time(e.event.at),
                "agency": e.event.actor_agency.as_ref().map(|a| a.as_str()),
                "purpose": e.event.purpose.map(|p| p.as_str()),
                "disclosed": e.event.disclosed.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "withheld": e.event.withheld.iter().map(|w| w.category.as_str()).collect::<Vec<_>>(),
                "breakGlass": e.event.break_glass,
            })).collect::<Vec<_>>(),
    });
    Ok(json)
}

pub(super) async fn download_receipt(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
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

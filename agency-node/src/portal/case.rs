//! The survivor's case in the portal: the newest care plan version, which
//! the survivor agrees to (after a confirmation step) or asks to change,
//! and a timeline of milestones in the survivor's language: referrals and
//! their answers, services delivered, plan versions, and the appointments,
//! home visits, calls and court dates to come or past, and the transfer
//! that brought the case to this agency. Internal case
//! reviews and case notes are not milestones and are not shown here.

use super::*;
use crate::graphql::care_plan::agree_in;
use crate::records::check_text;
use crate::store::care_plan::{self as plans, Agreement, CarePlanRecord, ChangeRequest};
use crate::store::case as cases;
use crate::store::referrals::ReferralRecord;
use exchange_schema::{FollowUpKind, FollowUpStatus, ServiceStatus};

/// Longest change request, in characters.
const CHANGE_REQUEST_CHARS: usize = 2000;

/// The plan and the timeline for the overview.
pub(super) async fn case_view(
    portal: &Portal,
    chrome: &Chrome,
    survivor_id: &str,
    referrals: &[ReferralRecord],
) -> Result<(Option<PlanView>, Vec<MilestoneRow>), NodeError> {
    let node = &portal.node;
    let mut conn = node.db.pool().acquire().await?;
    let versions = plans::versions(&mut conn, &node.vault, survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let services = cases::services_for(&mut conn, &node.vault, survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let follow_ups = cases::follow_ups_for(&mut conn, survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let transfers = crate::store::transfer::received(&mut conn, survivor_id)
        .await
        .map_err(NodeError::internal)?;
    let ids: Vec<&str> = referrals.iter().map(|r| r.id.as_str()).collect();
    let histories = store::referrals::histories(&mut conn, &node.vault, &ids)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);

    let now = now_millis();
    let mut timeline: Vec<(OffsetDateTime, MilestoneRow)> = Vec::new();
    let mut push = |at: OffsetDateTime, kind: &'static str, text: String| {
        timeline.push((
            at,
            MilestoneRow {
                when: date_text(at),
                text,
                upcoming: at > now,
                kind,
            },
        ));
    };
    for (referral, history) in referrals.iter().zip(&histories) {
        let agency = agency_label(portal, chrome, &referral.to_agency);
        let service = chrome.t(&message_id("service", referral.service.as_str()));
        for step in history {
            let id = message_id("milestone-referral", step.status.as_str());
            push(
                step.at,
                "referral",
                chrome.t_args(&id, &[("agency", &agency), ("service", &service)]),
            );
        }
    }
    for service in services
        .iter()
        .filter(|s| s.status == ServiceStatus::Delivered)
    {
        let at = service.delivered_at.unwrap_or(service.updated_at);
        let agency = agency_label(portal, chrome, &service.provider);
        let kind = chrome.t(&message_id("service", service.kind.as_str()));
        push(
            at,
            "service",
            chrome.t_args(
                "milestone-service-delivered",
                &[("agency", &agency), ("service", &kind)],
            ),
        );
    }
    for plan in &versions {
        let version = plan.version.to_string();
        push(
            plan.created_at,
            "plan",
            chrome.t1("milestone-plan-proposed", "version", &version),
        );
        if let Some(agreement) = &plan.agreement {
            push(
                agreement.at,
                "plan",
                chrome.t1("milestone-plan-agreed", "version", &version),
            );
        }
    }
    for follow_up in follow_ups.iter().filter(|f| {
        f.kind != FollowUpKind::CaseReview
            && matches!(f.status, FollowUpStatus::Open | FollowUpStatus::Done)
    }) {
        let agency = agency_label(portal, chrome, &follow_up.assigned_agency);
        let id = message_id("milestone-follow-up", follow_up.kind.as_str());
        push(
            follow_up.due_at,
            "follow-up",
            chrome.t1(&id, "agency", &agency),
        );
    }
    let here = agency_label(portal, chrome, &node.agency);
    for transfer in &transfers {
        let from = agency_label(portal, chrome, &transfer.peer);
        push(
            transfer.created_at,
            "transfer",
            chrome.t_args(
                "milestone-transfer-in",
                &[("from", &from), ("agency", &here)],
            ),
        );
    }
    // Newest first; what is still to come on top.
    timeline.sort_by_key(|(at, _)| std::cmp::Reverse(*at));

    let plan = versions
        .into_iter()
        .next()
        .map(|p| plan_view(portal, chrome, p));
    Ok((plan, timeline.into_iter().map(|(_, row)| row).collect()))
}

fn plan_view(portal: &Portal, chrome: &Chrome, plan: CarePlanRecord) -> PlanView {
    PlanView {
        version: plan.version,
        written: chrome.t_args(
            "plan-version",
            &[
                ("version", &plan.version.to_string()),
                ("date", &date_text(plan.created_at)),
            ],
        ),
        goals: plan.goals,
        actions: plan
            .actions
            .into_iter()
            .map(|a| PlanActionRow {
                description: a.description,
                by: agency_label(portal, chrome, &a.responsible),
                due: a.due_at.map(date_text).unwrap_or_default(),
                status: chrome.t(&message_id("plan-action-status", a.status.as_str())),
                status_code: a.status.as_str(),
            })
            .collect(),
        agreed: plan
            .agreement
            .as_ref()
            .map(|a| chrome.t1("plan-agreed", "date", &date_text(a.at))),
        change_sent: plan
            .change_request
            .filter(|_| plan.agreement.is_none())
            .map(|c| chrome.t1("plan-change-sent", "date", &date_text(c.at))),
    }
}

/// The survivor's newest plan version, when it is the one the form names
/// and is still waiting for their agreement.
async fn plan_waiting(
    portal: &Portal,
    survivor_id: &str,
    form: &FormFields,
) -> Result<CarePlanRecord, NodeError> {
    let version: i64 = form
        .get("version")
        .and_then(|v| v.parse().ok())
        .ok_or(NodeError::NotFound("care plan"))?;
    let mut conn = portal.node.db.pool().acquire().await?;
    let plan = plans::latest(&mut conn, &portal.node.vault, survivor_id)
        .await
        .map_err(NodeError::internal)?
        .ok_or(NodeError::NotFound("care plan"))?;
    if plan.version != version || plan.agreement.is_some() {
        return Err(NodeError::Conflict("the plan changed".into()));
    }
    Ok(plan)
}

/// The confirmation step before the survivor agrees to a plan version.
pub(super) async fn plan_agree_review(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let plan = match plan_waiting(&portal, &who.survivor_id, &form).await {
        Ok(plan) => plan,
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let chrome = portal.chrome(&visit, "/home");
    let version = plan.version.to_string();
    let page = ConfirmPage {
        heading: chrome.t("plan-agree-heading"),
        summary: chrome.t1("plan-agree-summary", "version", &version),
        parts: plan.goals,
        purposes: Vec::new(),
        until: String::new(),
        action: "/plan/agree/confirm",
        hidden: vec![("version", version)],
        button: chrome.t("plan-agree-button"),
        chrome,
    };
    html(&visit, StatusCode::OK, page)
}

/// The survivor agrees to the plan version: the agreement and its audit
/// entry in one transaction.
pub(super) async fn plan_agree_confirm(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let outcome = match plan_waiting(&portal, &who.survivor_id, &form).await {
        Ok(plan) => agree_in_portal(&portal.node, &who.survivor_id, plan.version).await,
        Err(err) => Err(err),
    };
    let chrome = portal.chrome(&visit, "/home");
    consent::finished(
        &portal,
        &visit,
        chrome,
        "plan-agree-done",
        outcome.map(|()| None),
    )
}

/// Records the survivor's own agreement to a version.
pub(super) async fn agree_in_portal(
    node: &Arc<NodeState>,
    survivor_id: &str,
    version: i64,
) -> Result<(), NodeError> {
    let agreement = Agreement {
        at: now_millis(),
        method: ConsentMethod::Portal,
        by: "survivor".into(),
        witness: None,
    };
    let mut event = survivor_event(
        node,
        AuditKind::CarePlanAgreed,
        Decision::Permit,
        ConsentMethod::Portal.as_str(),
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{survivor_id}/care-plan/{version}", node.agency));
    let owner = node.agency.clone();
    let local = survivor_id.to_owned();
    let vault = node.vault.clone();
    node.audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &local).await?;
                agree_in(conn, &vault, &owner, &local, version, &agreement).await?;
                Ok(((), event))
            })
        })
        .await
}

/// The survivor asks for a change to the plan version, in their words.
pub(super) async fn plan_change(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let text = form.get("change").unwrap_or_default().trim().to_owned();
    let outcome = if text.is_empty() {
        Err(NodeError::bad_input("empty change request"))
    } else if let Err(err) = check_text("change", &text, CHANGE_REQUEST_CHARS, true) {
        Err(err)
    } else {
        match plan_waiting(&portal, &who.survivor_id, &form).await {
            Ok(plan) => request_change(&portal.node, &who.survivor_id, plan.version, text).await,
            Err(err) => Err(err),
        }
    };
    let chrome = portal.chrome(&visit, "/home");
    consent::finished(
        &portal,
        &visit,
        chrome,
        "plan-change-done",
        outcome.map(|()| None),
    )
}

/// Keeps the survivor's change request on the version, audited (the text
/// stays with the plan, not in the log).
async fn request_change(
    node: &Arc<NodeState>,
    survivor_id: &str,
    version: i64,
    text: String,
) -> Result<(), NodeError> {
    let mut event = survivor_event(
        node,
        AuditKind::CarePlanChangeRequested,
        Decision::Permit,
        "CHANGE_REQUESTED",
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{survivor_id}/care-plan/{version}", node.agency));
    let local = survivor_id.to_owned();
    let request = ChangeRequest {
        at: now_millis(),
        text,
    };
    let vault = node.vault.clone();
    node.audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &local).await?;
                if !plans::request_change(conn, &vault, &local, version, &request)
                    .await
                    .map_err(NodeError::internal)?
                {
                    return Err(NodeError::Conflict("the plan was agreed meanwhile".into()));
                }
                Ok(((), event))
            })
        })
        .await
}

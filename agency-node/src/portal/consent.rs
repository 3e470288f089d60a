//! Giving and withdrawing consent: the forms, the confirmation step, and
//! the writes (grant or revocation, receipt and audit entry in one
//! transaction).

use super::*;

/// A grant the survivor asked for, checked.
pub(super) struct GrantRequest {
    grantee: AgencyId,
    categories: Vec<Category>,
    purposes: Vec<Purpose>,
    /// The last day covered.
    last_day: Date,
}

impl GrantRequest {
    pub(super) fn valid_until(&self) -> OffsetDateTime {
        self.last_day
            .next_day()
            .unwrap_or(self.last_day)
            .with_time(Time::MIDNIGHT)
            .assume_utc()
    }
}

pub(super) fn grantable_agencies(portal: &Portal) -> Vec<AgencyId> {
    portal
        .node
        .federation
        .agencies()
        .iter()
        .filter(|a| a.id != portal.node.agency)
        .map(|a| a.id.clone())
        .collect()
}

pub(super) fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).ok()
}

/// Reads a grant form: the request, or the problems in the survivor's
/// language.
pub(super) fn read_grant(
    portal: &Portal,
    chrome: &Chrome,
    form: &FormFields,
) -> Result<GrantRequest, Vec<String>> {
    let today = now_millis().date();
    let mut problems = Vec::new();
    let grantee = form
        .get("agency")
        .and_then(|a| AgencyId::parse(a).ok())
        .filter(|a| grantable_agencies(portal).contains(a));
    if grantee.is_none() {
        problems.push(chrome.t("error-no-agency"));
    }
    let mut categories: Vec<Category> = form
        .all("category")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    categories.sort();
    categories.dedup();
    if categories.is_empty() {
        problems.push(chrome.t("error-no-category"));
    }
    let mut purposes: Vec<Purpose> = form
        .all("purpose")
        .iter()
        .filter_map(|p| p.parse().ok())
        .filter(|p| GRANTABLE_PURPOSES.contains(p))
        .collect();
    purposes.sort();
    purposes.dedup();
    if purposes.is_empty() {
        problems.push(chrome.t("error-no-purpose"));
    }
    let latest = today + time::Duration::days(i64::from(portal.config.max_grant_days));
    let last_day = form
        .get("until")
        .and_then(parse_date)
        .filter(|d| *d >= today && *d <= latest);
    if last_day.is_none() {
        problems.push(chrome.t("error-bad-date"));
    }
    match (grantee, last_day) {
        (Some(grantee), Some(last_day)) if problems.is_empty() => Ok(GrantRequest {
            grantee,
            categories,
            purposes,
            last_day,
        }),
        _ => Err(problems),
    }
}

pub(super) fn grant_page(
    portal: &Portal,
    chrome: Chrome,
    form: Option<&FormFields>,
    problems: Vec<String>,
) -> GrantPage {
    let today = now_millis().date();
    let chosen = |name: &str, value: &str| form.is_some_and(|f| f.all(name).contains(&value));
    let agencies = grantable_agencies(portal)
        .into_iter()
        .map(|id| Choice {
            selected: form.and_then(|f| f.get("agency")) == Some(id.as_str()),
            label: agency_label(portal, &chrome, &id),
            value: id.to_string(),
        })
        .collect();
    let categories = Category::ALL
        .iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: category_text(&chrome, *c),
            selected: chosen("category", c.as_str()),
        })
        .collect();
    let purposes = GRANTABLE_PURPOSES
        .iter()
        .map(|p| Choice {
            value: p.as_str().to_owned(),
            label: purpose_text(&chrome, *p),
            selected: chosen("purpose", p.as_str()),
        })
        .collect();
    let default_until = date_text(
        (today + time::Duration::days(i64::from(portal.config.default_grant_days)))
            .midnight()
            .assume_utc(),
    );
    let max_date = date_text(
        (today + time::Duration::days(i64::from(portal.config.max_grant_days)))
            .midnight()
            .assume_utc(),
    );
    GrantPage {
        until: form
            .and_then(|f| f.get("until"))
            .map_or(default_until, str::to_owned),
        min_date: date_text(today.midnight().assume_utc()),
        max_date,
        until_hint: chrome.t1(
            "grant-until-hint",
            "days",
            &portal.config.max_grant_days.to_string(),
        ),
        chrome,
        problems,
        agencies,
        categories,
        purposes,
    }
}

pub(super) async fn grant_form(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, q.lang.as_deref()).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    if let Err(response) = portal.signed_in(&visit).await {
        return response;
    }
    let chrome = portal.chrome(&visit, "/grant");
    html(
        &visit,
        StatusCode::OK,
        grant_page(&portal, chrome, None, Vec::new()),
    )
}

/// A signed-in survivor's checked form post, or the response for a post
/// that is not one.
pub(super) async fn signed_in_form(
    portal: &Portal,
    visit: &Visit,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(SignedIn, FormFields), Response> {
    let form = checked_form(visit, headers, body).map_err(|e| error_page(portal, visit, e))?;
    Ok((portal.signed_in(visit).await?, form))
}

/// The grant form again, with what was wrong in the survivor's answers.
fn grant_problems(
    portal: &Portal,
    visit: &Visit,
    chrome: Chrome,
    form: &FormFields,
    problems: Vec<String>,
) -> Response {
    with_code(
        html(
            visit,
            StatusCode::UNPROCESSABLE_ENTITY,
            grant_page(portal, chrome, Some(form), problems),
        ),
        "BAD_USER_INPUT",
    )
}

/// What the survivor is asked to confirm.
#[derive(Clone, Copy)]
enum Confirming {
    Grant,
    Revoke,
}

/// The page that shows a consent to be given or withdrawn, in the
/// survivor's words, before anything is written.
fn confirm_page(
    chrome: Chrome,
    confirming: Confirming,
    agency_name: &str,
    (categories, purposes): (&[Category], &[Purpose]),
    until: Option<OffsetDateTime>,
    hidden: Vec<(&'static str, String)>,
) -> ConfirmPage {
    let (heading, summary, button, action) = match confirming {
        Confirming::Grant => (
            "grant-confirm-heading",
            "grant-confirm-summary",
            "grant-confirm-button",
            "/grant/confirm",
        ),
        Confirming::Revoke => (
            "revoke-confirm-heading",
            "revoke-confirm-summary",
            "revoke-confirm-button",
            "/revoke/confirm",
        ),
    };
    ConfirmPage {
        heading: chrome.t(heading),
        summary: chrome.t1(summary, "agency", agency_name),
        parts: categories
            .iter()
            .map(|c| category_text(&chrome, *c))
            .collect(),
        purposes: purposes.iter().map(|p| purpose_text(&chrome, *p)).collect(),
        until: until_text(&chrome, until),
        action,
        hidden,
        button: chrome.t(button),
        chrome,
    }
}

pub(super) async fn grant_review(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (_, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let chrome = portal.chrome(&visit, "/grant");
    match read_grant(&portal, &chrome, &form) {
        Ok(request) => {
            let name = agency_label(&portal, &chrome, &request.grantee);
            let mut hidden = vec![("agency", request.grantee.to_string())];
            hidden.extend(
                request
                    .categories
                    .iter()
                    .map(|c| ("category", c.as_str().to_owned())),
            );
            hidden.extend(
                request
                    .purposes
                    .iter()
                    .map(|p| ("purpose", p.as_str().to_owned())),
            );
            hidden.push(("until", date_text(request.last_day.midnight().assume_utc())));
            let page = confirm_page(
                chrome,
                Confirming::Grant,
                &name,
                (&request.categories, &request.purposes),
                Some(request.valid_until()),
                hidden,
            );
            html(&visit, StatusCode::OK, page)
        }
        Err(problems) => grant_problems(&portal, &visit, chrome, &form, problems),
    }
}

pub(super) async fn grant_confirm(
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
    let chrome = portal.chrome(&visit, "/home");
    let request = match read_grant(&portal, &chrome, &form) {
        Ok(request) => request,
        Err(problems) => return grant_problems(&portal, &visit, chrome, &form, problems),
    };
    finished(
        &portal,
        &visit,
        chrome,
        "grant-done",
        give_consent(&portal.node, &who.survivor_id, request)
            .await
            .map(Some),
    )
}

/// The page after a change the survivor made: done (with the receipt's
/// link when the change left a receipt), or the error page.
pub(super) fn finished(
    portal: &Portal,
    visit: &Visit,
    chrome: Chrome,
    message_id: &str,
    outcome: Result<Option<String>, NodeError>,
) -> Response {
    match outcome {
        Ok(receipt_id) => html(
            visit,
            StatusCode::OK,
            DonePage {
                message: chrome.t(message_id),
                chrome,
                receipt_id,
            },
        ),
        Err(err) => error_page(portal, visit, err.into()),
    }
}

/// Writes a grant the survivor gave in the portal, its receipt and its
/// audit entry, in one transaction; the receipt's ID.
pub(super) async fn give_consent(
    node: &Arc<NodeState>,
    survivor_id: &str,
    request: GrantRequest,
) -> Result<String, NodeError> {
    let now = now_millis();
    let grant = ConsentGrantRecord {
        id: new_local_id(),
        survivor_id: survivor_id.to_owned(),
        valid_until: Some(request.valid_until()),
        grantee: request.grantee,
        categories: request.categories,
        purposes: request.purposes,
        valid_from: now,
        method: ConsentMethod::Portal,
        recorded_by: "survivor".into(),
        witness: None,
        created_at: now,
        revoked_at: None,
        revoked_by: None,
        revocation_reason: None,
    };
    let receipt = receipt::for_grant(node, &grant, ConsentEvent::Given, now);
    let receipt_id = receipt.id.clone();
    let mut event = survivor_event(
        node,
        AuditKind::ConsentGranted,
        Decision::Permit,
        "CONSENT_GRANTED",
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{}", node.agency, grant.id));
    event.disclosed = grant.categories.clone();
    let vault = node.vault.clone();
    node.audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &grant.survivor_id).await?;
                grants::insert(conn, &vault, &grant)
                    .await
                    .map_err(NodeError::internal)?;
                store::portal::insert_receipt(conn, &vault, &receipt)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(receipt_id)
}

/// One of the survivor's own grants that can still be withdrawn.
pub(super) async fn own_revocable_grant(
    node: &NodeState,
    survivor_id: &str,
    grant_id: Option<&str>,
) -> Result<ConsentGrantRecord, NodeError> {
    let grant_id = grant_id.ok_or(NodeError::NotFound("consent grant"))?;
    let mut conn = node.db.pool().acquire().await?;
    let grant = grants::get(&mut conn, &node.vault, grant_id)
        .await
        .map_err(NodeError::internal)?
        .filter(|g| g.survivor_id == survivor_id)
        .ok_or(NodeError::NotFound("consent grant"))?;
    let (status, _) = grant_status(&grant, now_millis());
    if matches!(status, "ACTIVE" | "PENDING") {
        Ok(grant)
    } else {
        Err(NodeError::NotFound("consent grant"))
    }
}

pub(super) async fn revoke_review(
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
    let grant = match own_revocable_grant(&portal.node, &who.survivor_id, form.get("grant")).await {
        Ok(grant) => grant,
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let chrome = portal.chrome(&visit, "/home");
    let name = agency_label(&portal, &chrome, &grant.grantee);
    let page = confirm_page(
        chrome,
        Confirming::Revoke,
        &name,
        (&grant.categories, &grant.purposes),
        grant.valid_until,
        vec![("grant", grant.id.clone())],
    );
    html(&visit, StatusCode::OK, page)
}

pub(super) async fn revoke_confirm(
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
    let chrome = portal.chrome(&visit, "/home");
    finished(
        &portal,
        &visit,
        chrome,
        "revoke-done",
        withdraw_consent(&portal.node, &who.survivor_id, form.get("grant"))
            .await
            .map(Some),
    )
}

/// Revokes one of the survivor's grants, with its receipt and audit entry
/// in one transaction; the receipt's ID. Takes effect on the next request.
pub(super) async fn withdraw_consent(
    node: &Arc<NodeState>,
    survivor_id: &str,
    grant_id: Option<&str>,
) -> Result<String, NodeError> {
    let grant = own_revocable_grant(node, survivor_id, grant_id).await?;
    let now = now_millis();
    let mut revoked = grant.clone();
    revoked.revoked_at = Some(now);
    revoked.revoked_by = Some("survivor".into());
    let receipt = receipt::for_grant(node, &revoked, ConsentEvent::Withdrawn, now);
    let receipt_id = receipt.id.clone();
    let mut event = survivor_event(
        node,
        AuditKind::ConsentRevoked,
        Decision::Permit,
        "CONSENT_REVOKED",
        Some(survivor_id),
    );
    event.subject = Some(format!("{}:{}", node.agency, grant.id));
    event.withheld = crate::disclosure::revoked_categories(&grant.categories);
    let vault = node.vault.clone();
    node.audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &grant.survivor_id).await?;
                if !grants::revoke(
                    conn,
                    &vault,
                    &grant.id,
                    now,
                    "survivor",
                    Some("withdrawn in the portal"),
                )
                .await
                .map_err(NodeError::internal)?
                {
                    return Err(NodeError::NotFound("consent grant"));
                }
                store::portal::insert_receipt(conn, &vault, &receipt)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(receipt_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_covers_its_last_day_entirely() {
        let request = GrantRequest {
            grantee: AgencyId::parse("legal-aid").expect("id"),
            categories: vec![Category::Legal],
            purposes: vec![Purpose::LegalAssistance],
            last_day: parse_date("2027-03-31").expect("date"),
        };
        assert_eq!(date_text(request.valid_until()), "2027-04-01");
        assert_eq!(request.valid_until().hour(), 0);
    }
}

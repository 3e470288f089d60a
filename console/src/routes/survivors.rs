//! A survivor's page as far as the caseworker may see it, read for the
//! purpose the way there implies; the own agency's survivors; and the
//! forms on a survivor's page: a witnessed consent recorded or revoked (the
//! owning agency's staff) and a referral (the owner, or a partner onward).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use exchange_schema::headers::{MAX_JUSTIFICATION_CHARS, MIN_JUSTIFICATION_CHARS};
use exchange_schema::{AgencyKind, Purpose, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::keeping::PLAN_FORM_ROWS;
use super::referrals::load_referral;
use super::{Visit, form_visit, redirect_to, signed_in_visit};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::i18n::Lang;
use crate::pages::{
    BreakGlassPage, CLOSURE_REASONS, CarePlan, CaseStatus, ConsentGrant, FOLLOW_UP_KINDS,
    GRANTABLE_PURPOSES, MemberAgency, PlanRow, RetentionSchedule, SlipPage, Survivor,
    SurvivorListPage, SurvivorListRow, SurvivorPage, work_purpose,
};
use crate::session::{BreakGlass, SignedIn};

/// Survivors a page of the list shows.
const PAGE_SIZE: i64 = 25;
/// The categories a consent can name, in the order shown.
pub const CATEGORIES: [&str; 5] = ["IDENTITY", "CONTACT", "CASE", "HEALTH", "LEGAL"];
/// The services a referral can ask for.
pub const SERVICES: [&str; 8] = [
    "SHELTER",
    "LEGAL_AID",
    "MEDICAL",
    "PSYCHOSOCIAL",
    "INTERPRETATION",
    "EMPLOYMENT",
    "EDUCATION",
    "REPATRIATION",
];
/// Urgencies of a referral.
pub const URGENCIES: [&str; 3] = ["ROUTINE", "URGENT", "EMERGENCY"];
/// Longest free text the console sends (a note, a reason, a witness).
const MAX_TEXT_CHARS: usize = 2000;

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
}

#[derive(Deserialize)]
struct ListAnswer {
    survivors: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<Value>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// `/survivors`: the caseworker's own agency's survivors.
pub async fn survivor_list(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let (visit, signed_in) = match signed_in_visit(&state, &headers, "/survivors").await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let answer: Result<ListAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "query($first: Int, $after: String) { survivors(first: $first, after: $after) \
             { nodes { id registeredAt identity { givenName preferredName } } \
             pageInfo { hasNextPage endCursor } } }",
            json!({ "first": PAGE_SIZE, "after": query.after }),
        )
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return visit.refuse(&state, e),
    };
    let rows = answer
        .survivors
        .nodes
        .iter()
        .filter_map(|s| {
            Some(SurvivorListRow {
                id: s["id"].as_str()?.to_owned(),
                registered_at: s["registeredAt"].as_str().unwrap_or_default().to_owned(),
                name: s["identity"]["preferredName"]
                    .as_str()
                    .or_else(|| s["identity"]["givenName"].as_str())
                    .map(str::to_owned),
            })
        })
        .collect();
    let next = match (
        answer.survivors.page_info.has_next_page,
        answer.survivors.page_info.end_cursor,
    ) {
        (true, Some(cursor)) => Some(format!(
            "/survivors?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("after", &cursor)
                .finish()
        )),
        _ => None,
    };
    visit.page(
        &state,
        SurvivorListPage {
            chrome: visit.chrome(),
            rows,
            next,
        },
    )
}

#[derive(Deserialize)]
pub struct SurvivorQuery {
    referral: Option<String>,
}

#[derive(Deserialize)]
struct SurvivorAnswer {
    survivor: Option<Survivor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrantsAnswer {
    consent_grants: Vec<ConsentGrant>,
}

#[derive(Deserialize)]
struct AgenciesAnswer {
    agencies: Vec<MemberAgency>,
}

/// What the way to a survivor's page implies: the purpose of reading the
/// record and the purpose of case work there.
struct Way {
    read: Purpose,
    work: Purpose,
}

/// Through a referral that joins the caseworker's agency to survivor
/// `id`: read for `REFERRAL`, work for the care the referral is for
/// ([`work_purpose`]). Otherwise the own agency's case: `CASE_MANAGEMENT`
/// for both.
async fn way_to(
    state: &ConsoleState,
    signed_in: &SignedIn,
    id: &str,
    referral: Option<&str>,
) -> Result<Way, ConsoleError> {
    match referral {
        Some(referral) => {
            let r = load_referral(state, signed_in, referral).await?;
            if r.survivor_id != id {
                return Err(ConsoleError::BadRequest(
                    "the referral is about another survivor",
                ));
            }
            let work = work_purpose(&r.service)
                .parse::<Purpose>()
                .map_err(|_| ConsoleError::Internal("unknown work purpose".into()))?;
            Ok(Way {
                read: Purpose::Referral,
                work,
            })
        }
        None => Ok(Way {
            read: Purpose::CaseManagement,
            work: Purpose::CaseManagement,
        }),
    }
}

/// `/survivors/{id}`: the record as far as the caseworker may see it, with
/// the consent grants and the consent form for the owning agency, and the
/// referral form.
pub async fn survivor(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<SurvivorQuery>,
) -> Response {
    let here = match &query.referral {
        Some(r) => format!(
            "/survivors/{id}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("referral", r)
                .finish()
        ),
        None => format!("/survivors/{id}"),
    };
    let (visit, signed_in) = match signed_in_visit(&state, &headers, &here).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let way = match way_to(&state, &signed_in, &id, query.referral.as_deref()).await {
        Ok(w) => w,
        Err(e) => return visit.refuse(&state, e),
    };
    // While a break-glass window this caseworker opened is open, the
    // record is read through it: EMERGENCY, with the justification.
    let window = visit.session.break_glass_on(&id).cloned();
    let purpose = if window.is_some() {
        Purpose::Emergency
    } else {
        way.read
    };
    let answer: Result<SurvivorAnswer, _> = state
        .gateway
        .execute_justified(
            &signed_in.access_token,
            purpose,
            window.as_ref().map(|w| w.justification.as_str()),
            "query($id: ID!) { survivor(id: $id) { id owner breakGlass \
             identity { givenName familyName preferredName nationality languages } \
             contact { safeChannel phone safetyNotes } \
             case { riskLevel needs summary } \
             health { medicalNotes psychosocialNotes allergies } \
             legal { immigrationStatus proceedings protectionOrders notes } \
             caseNotes(first: 20) { nodes { category body author { agency user } createdAt } } \
             services { id kind providerAgency status plannedFor deliveredAt outcome } \
             followUps { id survivorId kind dueAt assignedAgency assignedUser status } \
             assignedCaseworkers { user assignedAt } \
             carePlan { version goals actions { position description responsibleAgency dueAt status } agreement { at method } } \
             withheld { category reason } } }",
            json!({ "id": id }),
        )
        .await;
    let survivor = match answer.map(|a| a.survivor) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return visit.refuse(
                &state,
                ConsoleError::Gateway {
                    code: exchange_schema::ErrorCode::NotFound,
                    message: "no such survivor".into(),
                },
            );
        }
        Err(e) => return visit.refuse(&state, e),
    };
    let own = survivor.owner == signed_in.principal.agency.as_str();
    let grants = if own {
        let answer: Result<GrantsAnswer, _> = state
            .gateway
            .execute(
                &signed_in.access_token,
                Purpose::CaseManagement,
                "query($id: ID!) { consentGrants(survivorId: $id) { id grantee categories \
                 purposes validUntil method witness active revokedAt createdAt } }",
                json!({ "id": id }),
            )
            .await;
        match answer {
            Ok(a) => a.consent_grants,
            Err(e) => return visit.refuse(&state, e),
        }
    } else {
        Vec::new()
    };
    let retention = if own {
        let answer: Result<RetentionAnswer, _> = state
            .gateway
            .execute(
                &signed_in.access_token,
                Purpose::CaseManagement,
                "query($id: ID!) { retentionSchedule(survivorId: $id) { parts { part dueAt rule why erasedAt } \
                 legalHold { reason placedAt placedBy } } \
                 caseStatus(survivorId: $id) { open closures { reason closedAt closedBy } } }",
                json!({ "id": id }),
            )
            .await;
        match answer {
            Ok(a) => Some((a.retention_schedule, a.case_status)),
            Err(e) => return visit.refuse(&state, e),
        }
    } else {
        None
    };
    let (retention, case_status) = match retention {
        Some((retention, status)) => (Some(retention), Some(status)),
        None => (None, None),
    };
    let agencies: Result<AgenciesAnswer, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::Referral,
            "{ agencies { id name kind services languages region hasNode } }",
            json!({}),
        )
        .await;
    let (agencies, own_name): (Vec<MemberAgency>, String) = match agencies {
        Ok(a) => {
            let own_agency = signed_in.principal.agency.as_str();
            let own_name = a
                .agencies
                .iter()
                .find(|a| a.id == own_agency)
                .map_or_else(|| own_agency.to_owned(), |a| a.name.clone());
            (
                a.agencies
                    .into_iter()
                    .filter(|a| a.has_node && a.id != own_agency)
                    .collect(),
                own_name,
            )
        }
        Err(e) => return visit.refuse(&state, e),
    };
    let (plan_goals, plan_rows) = plan_form(
        survivor.care_plan.as_ref(),
        signed_in.principal.agency.as_str(),
    );
    let mut plan_agencies = vec![(signed_in.principal.agency.to_string(), own_name)];
    plan_agencies.extend(agencies.iter().map(|a| (a.id.clone(), a.name.clone())));
    visit.page(
        &state,
        SurvivorPage {
            chrome: visit.chrome(),
            survivor,
            purpose: purpose.as_str().to_owned(),
            referral: query.referral,
            own,
            grants,
            agencies,
            categories: &CATEGORIES,
            purposes: &GRANTABLE_PURPOSES,
            services: &SERVICES,
            urgencies: &URGENCIES,
            follow_up_kinds: &FOLLOW_UP_KINDS,
            work_purpose: way.work.as_str().to_owned(),
            may_break_glass: !own && may_break_glass(&signed_in),
            may_assign: own && signed_in.principal.has_role(Role::Supervisor),
            own_agency: signed_in.principal.agency.to_string(),
            slip_languages: Lang::ALL
                .into_iter()
                .map(|l| (l.tag(), l.native_name()))
                .collect(),
            break_glass_open: window.is_some(),
            retention,
            case_status,
            closure_reasons: &CLOSURE_REASONS,
            may_hold: own
                && (signed_in.principal.has_role(Role::Supervisor)
                    || signed_in.principal.has_role(Role::DataProtectionOfficer)),
            plan_goals,
            plan_rows,
            plan_agencies,
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetentionAnswer {
    retention_schedule: RetentionSchedule,
    case_status: CaseStatus,
}

/// The proposal form started from the newest plan: its goals one a line,
/// its actions (due times as `datetime-local` values), then blank rows
/// for the caseworker's agency up to [`PLAN_FORM_ROWS`].
fn plan_form(plan: Option<&CarePlan>, own_agency: &str) -> (String, Vec<PlanRow>) {
    let goals = plan
        .and_then(|p| p.goals.as_ref())
        .map(|g| g.join("\n"))
        .unwrap_or_default();
    let mut rows: Vec<PlanRow> = plan
        .map(|p| {
            p.actions
                .iter()
                .filter(|a| a.status != "CANCELLED")
                .take(PLAN_FORM_ROWS)
                .map(|a| PlanRow {
                    description: a.description.clone(),
                    agency: a.responsible_agency.clone(),
                    // `2027-02-01T10:00:00Z` as `2027-02-01T10:00`.
                    due: a
                        .due_at
                        .as_deref()
                        .and_then(|d| d.get(..16))
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    while rows.len() < PLAN_FORM_ROWS {
        rows.push(PlanRow {
            description: String::new(),
            agency: own_agency.to_owned(),
            due: String::new(),
        });
    }
    (goals, rows)
}

/// A form body with repeated fields (checkboxes), as pairs.
pub(crate) fn pairs(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn text(value: Option<&str>) -> Result<Option<&str>, ConsoleError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_CHARS => {
            Err(ConsoleError::BadRequest("a text field is too long"))
        }
        other => Ok(other),
    }
}

/// The consent form read into `recordConsent`'s input; refuses what the
/// form could not have sent.
pub fn consent_input(survivor: &str, pairs: &[(String, String)]) -> Result<Value, ConsoleError> {
    let grantee = field(pairs, "grantee").ok_or(ConsoleError::BadRequest("choose an agency"))?;
    let categories = all(pairs, "category");
    let purposes = all(pairs, "purpose");
    if categories.is_empty() || !categories.iter().all(|c| CATEGORIES.contains(c)) {
        return Err(ConsoleError::BadRequest("choose at least one category"));
    }
    if purposes.is_empty() || !purposes.iter().all(|p| GRANTABLE_PURPOSES.contains(p)) {
        return Err(ConsoleError::BadRequest("choose at least one purpose"));
    }
    let method = match field(pairs, "method") {
        Some(m @ ("WITNESSED_VERBAL" | "WITNESSED_WRITTEN")) => m,
        _ => return Err(ConsoleError::BadRequest("choose how consent was given")),
    };
    let witness = text(field(pairs, "witness"))?.ok_or(ConsoleError::BadRequest(
        "a witnessed consent names its witness",
    ))?;
    let valid_until = match field(pairs, "valid_until") {
        None => None,
        Some(date) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(date, &format)
                .map_err(|_| ConsoleError::BadRequest("the end date is not a date"))?;
            Some(format!("{date}T23:59:59Z"))
        }
    };
    Ok(json!({
        "survivorId": survivor,
        "grantee": grantee,
        "categories": categories,
        "purposes": purposes,
        "method": method,
        "witness": witness,
        "validUntil": valid_until,
    }))
}

/// Whether the baseline policies let this caseworker open break-glass: a
/// supervisor (not also an auditor) of a shelter, a health clinic or a
/// child-protection agency. The node decides; this only hides a form that
/// would be refused.
fn may_break_glass(signed_in: &SignedIn) -> bool {
    let p = &signed_in.principal;
    p.has_role(Role::Supervisor)
        && !p.has_role(Role::Auditor)
        && matches!(
            p.agency_kind,
            AgencyKind::Shelter | AgencyKind::HealthClinic | AgencyKind::ChildProtection
        )
}

/// `/survivors/{id}/break-glass`: the justification form.
pub async fn break_glass_form(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (visit, _) =
        match signed_in_visit(&state, &headers, &format!("/survivors/{id}/break-glass")).await {
            Ok(v) => v,
            Err(refused) => return refused,
        };
    visit.page(
        &state,
        BreakGlassPage {
            chrome: visit.chrome(),
            survivor_id: id,
            min_chars: MIN_JUSTIFICATION_CHARS,
        },
    )
}

#[derive(Deserialize)]
struct OpenedWindow {
    #[serde(rename = "openBreakGlass")]
    window: Window,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
}

/// `POST /survivors/{id}/break-glass`: opens a window (the node decides who
/// may) and reads the record through it until it closes.
pub async fn open_break_glass(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let form = pairs(&body);
    let (visit, signed_in) = match form_visit(
        &state,
        &headers,
        &format!("/survivors/{id}/break-glass"),
        field(&form, "csrf"),
    )
    .await
    {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let justification = match field(&form, "justification") {
        Some(j)
            if (MIN_JUSTIFICATION_CHARS..=MAX_JUSTIFICATION_CHARS).contains(&j.chars().count()) =>
        {
            j.to_owned()
        }
        _ => {
            return visit.refuse(
                &state,
                ConsoleError::BadRequest("a justification of 20 to 2000 characters is needed"),
            );
        }
    };
    let opened: Result<OpenedWindow, _> = state
        .gateway
        .execute_justified(
            &signed_in.access_token,
            Purpose::Emergency,
            Some(&justification),
            "mutation($id: ID!, $why: String!) { openBreakGlass(survivorId: $id, justification: $why) { expiresAt } }",
            json!({ "id": id, "why": justification }),
        )
        .await;
    match opened {
        Ok(opened) => {
            tracing::info!(
                agency = %signed_in.principal.agency,
                user = %signed_in.principal.user,
                "break-glass opened from the console"
            );
            let window = BreakGlass {
                survivor_id: id.clone(),
                justification,
                expires_at: opened.window.expires_at,
            };
            state.sessions.update(&visit.token, |s| {
                s.break_glass
                    .retain(|w| w.survivor_id != window.survivor_id);
                s.break_glass.push(window);
                s.notice = Some("notice-break-glass-opened".into());
            });
            visit.finish(&state, redirect_to(&format!("/survivors/{id}")))
        }
        Err(e) => visit.refuse(&state, e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssuedCode {
    issue_consent_code: Code,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

/// The portal's sign-in page in `lang` as a QR code, inline SVG.
pub fn portal_qr(portal_url: &str, lang: Lang) -> Option<String> {
    let separator = if portal_url.contains('?') { '&' } else { '?' };
    let target = format!("{portal_url}{separator}lang={}", lang.tag());
    let code = qrcode::QrCode::new(target.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Inline in the page: without the XML declaration.
    Some(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// `POST /survivors/{id}/consent-code`: issues a new portal consent code
/// (the node ends sessions opened with an older one) and shows the slip to
/// print, in the survivor's language. The code is shown once: it is in
/// this answer only (`Cache-Control: no-store`), never in a URL or the
/// console's memory.
pub async fn issue_consent_code(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let form = pairs(&body);
    let (visit, signed_in) = match form_visit(
        &state,
        &headers,
        &format!("/survivors/{id}"),
        field(&form, "csrf"),
    )
    .await
    {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let Some(slip_lang) = field(&form, "slip_lang").and_then(Lang::parse) else {
        return visit.refuse(
            &state,
            ConsoleError::BadRequest("choose the slip's language"),
        );
    };
    let issued: Result<IssuedCode, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            Purpose::CaseManagement,
            "mutation($id: ID!) { issueConsentCode(survivorId: $id) { code } }",
            json!({ "id": id }),
        )
        .await;
    let code = match issued {
        Ok(i) => i.issue_consent_code.code,
        Err(e) => return visit.refuse(&state, e),
    };
    let agency = signed_in.principal.agency.as_str();
    let portal_url = state.sign_in.portal_url(agency).map(str::to_owned);
    let qr_svg = portal_url
        .as_deref()
        .and_then(|url| portal_qr(url, slip_lang));
    let agency_name = state
        .sign_in
        .agencies()
        .iter()
        .find(|a| a.agency == agency)
        .map_or_else(|| agency.to_owned(), |a| a.name.clone());
    visit.page(
        &state,
        SlipPage {
            chrome: visit.chrome(),
            slip_lang,
            code,
            agency_name,
            portal_url,
            qr_svg,
            survivor_id: id,
        },
    )
}

/// The page to return to after a form on survivor `id`'s page, and the
/// purpose of the work: through the referral the form names, or the own
/// agency's case.
async fn work_context(
    state: &ConsoleState,
    signed_in: &SignedIn,
    id: &str,
    form: &[(String, String)],
) -> Result<(String, Purpose), ConsoleError> {
    let referral = field(form, "referral");
    let way = way_to(state, signed_in, id, referral).await?;
    let back = match referral {
        Some(r) => format!(
            "/survivors/{id}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("referral", r)
                .finish()
        ),
        None => format!("/survivors/{id}"),
    };
    Ok((back, way.work))
}

/// What a form on a survivor's page asks of the gateway.
pub struct Change {
    pub purpose: Purpose,
    pub mutation: &'static str,
    pub variables: Value,
    /// The notice on the page the caseworker returns to.
    pub notice: &'static str,
}

/// A form posted on a survivor's page, as the function that reads it into
/// a [`Change`] sees it: the caseworker, the session and the form already
/// checked by [`survivor_action`].
pub struct SurvivorForm<'a> {
    /// The survivor's id, from the route.
    pub survivor: &'a str,
    /// The form's fields.
    pub fields: &'a [(String, String)],
    /// Who is signed in.
    pub signed_in: &'a SignedIn,
    /// The purpose of this caseworker's work with this survivor: case
    /// management for the owner, the referral's service for a partner.
    pub work: Purpose,
}

/// Reads a survivor page's form into the change it asks for.
pub type ReadChange = fn(&SurvivorForm) -> Result<Change, ConsoleError>;

/// Reads a form about one item of a survivor's record (a consent grant, a
/// service, a follow-up: the route's second segment) into its change.
pub type ReadItemChange = fn(&SurvivorForm, &str) -> Result<Change, ConsoleError>;

/// `POST /survivors/{id}/…`: a form on survivor `id`'s page, read by `read`.
pub fn survivor_action(read: ReadChange) -> MethodRouter<Arc<ConsoleState>> {
    post(
        move |State(state): State<Arc<ConsoleState>>,
              headers: HeaderMap,
              Path(id): Path<String>,
              body: String| async move {
            survivor_form(&state, &headers, &id, &body, read).await
        },
    )
}

/// `POST /survivors/{id}/…/{item}/…`: a form about one item of survivor
/// `id`'s record, read by `read`.
pub fn survivor_item_action(read: ReadItemChange) -> MethodRouter<Arc<ConsoleState>> {
    post(
        move |State(state): State<Arc<ConsoleState>>,
              headers: HeaderMap,
              Path((id, item)): Path<(String, String)>,
              body: String| async move {
            survivor_form(&state, &headers, &id, &body, |form| read(form, &item)).await
        },
    )
}

/// A form on survivor `id`'s page: the session, the caseworker and the form
/// checked; the referral it names, if any, checked to be about this
/// survivor (its service gives the purpose of a partner's work); then the
/// change `read` reads from the form, sent through the gateway; back to
/// the page with a notice, or the refusal.
async fn survivor_form(
    state: &ConsoleState,
    headers: &HeaderMap,
    id: &str,
    body: &str,
    read: impl FnOnce(&SurvivorForm) -> Result<Change, ConsoleError>,
) -> Response {
    let fields = pairs(body);
    let (visit, signed_in) = match form_visit(
        state,
        headers,
        &format!("/survivors/{id}"),
        field(&fields, "csrf"),
    )
    .await
    {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let (back, work) = match work_context(state, &signed_in, id, &fields).await {
        Ok(c) => c,
        Err(e) => return visit.refuse(state, e),
    };
    let form = SurvivorForm {
        survivor: id,
        fields: &fields,
        signed_in: &signed_in,
        work,
    };
    let change = match read(&form) {
        Ok(change) => change,
        Err(e) => return visit.refuse(state, e),
    };
    let result: Result<Value, _> = state
        .gateway
        .execute(
            &signed_in.access_token,
            change.purpose,
            change.mutation,
            change.variables,
        )
        .await;
    done(state, &visit, result, change.notice, &back)
}

/// `POST /survivors/{id}/consents`: records a witnessed consent (the
/// owning agency's staff; the node refuses anyone else).
pub fn consent_change(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    let form = f.fields;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id } }",
        variables: json!({ "input": consent_input(f.survivor, form)? }),
        notice: "notice-consent-recorded",
    })
}

/// `POST /survivors/{id}/consents/{grant}/revoke`: withdraws a consent at
/// the survivor's request, with the reason.
pub fn consent_revocation(f: &SurvivorForm, grant: &str) -> Result<Change, ConsoleError> {
    let form = f.fields;
    let reason =
        text(field(form, "reason"))?.ok_or(ConsoleError::BadRequest("a reason is needed"))?;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!, $reason: String) { revokeConsent(grantId: $id, reason: $reason) { id } }",
        variables: json!({ "id": grant, "reason": reason }),
        notice: "notice-consent-revoked",
    })
}

/// The closing form read into `closeCase`: a reason of the exchange's list.
pub fn case_closing(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    let reason = field(f.fields, "reason")
        .filter(|r| CLOSURE_REASONS.contains(r))
        .ok_or(ConsoleError::BadRequest("choose why the case is closed"))?;
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!, $reason: CaseClosureReason!) { closeCase(survivorId: $id, reason: $reason) { open } }",
        variables: json!({ "id": f.survivor, "reason": reason }),
        notice: "notice-case-closed",
    })
}

/// `reopenCase`: the case opened again.
pub fn case_reopening(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    Ok(Change {
        purpose: Purpose::CaseManagement,
        mutation: "mutation($id: ID!) { reopenCase(survivorId: $id) { open } }",
        variables: json!({ "id": f.survivor }),
        notice: "notice-case-reopened",
    })
}

/// The referral form read into `createReferral`'s input.
pub fn referral_change(survivor: &str, form: &[(String, String)]) -> Result<Change, ConsoleError> {
    let (Some(to), Some(service), Some(urgency)) = (
        field(form, "to_agency"),
        field(form, "service").filter(|s| SERVICES.contains(s)),
        field(form, "urgency").filter(|u| URGENCIES.contains(u)),
    ) else {
        return Err(ConsoleError::BadRequest(
            "choose an agency, a service and an urgency",
        ));
    };
    let notes = text(field(form, "notes"))?;
    Ok(Change {
        purpose: Purpose::Referral,
        mutation: "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
        variables: json!({ "input": { "survivorId": survivor, "toAgency": to, "service": service,
                                      "urgency": urgency, "notes": notes } }),
        notice: "notice-referred",
    })
}

/// The note form read into `addCaseNote`'s input, for the `work` purpose.
pub fn note_change(
    survivor: &str,
    form: &[(String, String)],
    work: Purpose,
) -> Result<Change, ConsoleError> {
    let category = field(form, "category")
        .filter(|c| CATEGORIES.contains(c))
        .ok_or(ConsoleError::BadRequest("choose a category"))?;
    let note = match field(form, "body") {
        Some(b) if b.chars().count() <= 4000 => b,
        Some(_) => return Err(ConsoleError::BadRequest("the note is too long")),
        None => return Err(ConsoleError::BadRequest("the note is empty")),
    };
    Ok(Change {
        purpose: work,
        mutation: "mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) { id } }",
        variables: json!({ "input": { "survivorId": survivor, "category": category, "body": note } }),
        notice: "notice-note-added",
    })
}

/// The follow-up form read into `scheduleFollowUp`'s input: assigned to
/// the caseworker's own agency and to them.
pub fn follow_up_change(
    survivor: &str,
    form: &[(String, String)],
    signed_in: &SignedIn,
    work: Purpose,
) -> Result<Change, ConsoleError> {
    let kind = field(form, "kind")
        .filter(|k| FOLLOW_UP_KINDS.contains(k))
        .ok_or(ConsoleError::BadRequest("choose a kind of follow-up"))?;
    let due = due_at(field(form, "due").unwrap_or_default())?;
    Ok(Change {
        purpose: work,
        mutation: "mutation($input: ScheduleFollowUpInput!) { scheduleFollowUp(input: $input) { id } }",
        variables: json!({ "input": { "survivorId": survivor, "kind": kind, "dueAt": due,
                                      "assignedAgency": signed_in.principal.agency.as_str(),
                                      "assignedUser": signed_in.principal.user } }),
        notice: "notice-follow-up-scheduled",
    })
}

/// The service form read into `recordService`'s input: a service the
/// caseworker's own agency provides.
pub fn service_change(
    survivor: &str,
    form: &[(String, String)],
    signed_in: &SignedIn,
    work: Purpose,
) -> Result<Change, ConsoleError> {
    let kind = field(form, "kind")
        .filter(|k| SERVICES.contains(k))
        .ok_or(ConsoleError::BadRequest("choose a service"))?;
    let status = field(form, "status")
        .filter(|s| ["PLANNED", "IN_PROGRESS", "DELIVERED"].contains(s))
        .ok_or(ConsoleError::BadRequest("choose a status"))?;
    let planned_for = match field(form, "planned_for") {
        Some(v) => Some(due_at(v)?),
        None => None,
    };
    let outcome = text(field(form, "outcome"))?;
    Ok(Change {
        purpose: work,
        mutation: "mutation($input: RecordServiceInput!) { recordService(input: $input) { id } }",
        variables: json!({ "input": { "survivorId": survivor, "kind": kind,
                                      "providerAgency": signed_in.principal.agency.as_str(),
                                      "status": status, "plannedFor": planned_for, "outcome": outcome } }),
        notice: "notice-service-recorded",
    })
}

/// `POST /survivors/{id}/services/{service}`: moves a service on (its
/// status only goes forward; the node refuses otherwise).
pub fn service_update(f: &SurvivorForm, service: &str) -> Result<Change, ConsoleError> {
    let form = f.fields;
    let work = f.work;
    let status = field(form, "status")
        .filter(|s| ["IN_PROGRESS", "DELIVERED", "CANCELLED"].contains(s))
        .ok_or(ConsoleError::BadRequest("choose a status"))?;
    Ok(Change {
        purpose: work,
        mutation: "mutation($id: ID!, $input: UpdateServiceInput!) { updateService(id: $id, input: $input) { id } }",
        variables: json!({ "id": service, "input": { "status": status, "outcome": text(field(form, "outcome"))? } }),
        notice: "notice-service-updated",
    })
}

/// `POST /survivors/{id}/plan-actions`: moves on an action of the care
/// plan the caseworker's agency is responsible for.
pub fn plan_action_update(f: &SurvivorForm) -> Result<Change, ConsoleError> {
    let form = f.fields;
    let work = f.work;
    let number = |name: &str| -> Result<i64, ConsoleError> {
        field(form, name)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| (0..=10_000).contains(v))
            .ok_or(ConsoleError::BadRequest("not a plan action"))
    };
    let status = field(form, "status")
        .filter(|s| crate::pages::PLAN_ACTION_STATUSES.contains(s))
        .ok_or(ConsoleError::BadRequest("choose a status"))?;
    Ok(Change {
        purpose: work,
        mutation: "mutation($id: ID!, $version: Int!, $position: Int!, $status: PlanActionStatus!) \
                   { updateCarePlanAction(survivorId: $id, version: $version, position: $position, status: $status) { position } }",
        variables: json!({ "id": f.survivor, "version": number("version")?, "position": number("position")?, "status": status }),
        notice: "notice-plan-action-updated",
    })
}

/// `POST /survivors/{id}/follow-ups/{follow_up}/close`: closes a follow-up
/// as done, missed or cancelled.
pub fn follow_up_closing(f: &SurvivorForm, follow_up: &str) -> Result<Change, ConsoleError> {
    let form = f.fields;
    let work = f.work;
    let status = field(form, "status")
        .filter(|s| crate::pages::FOLLOW_UP_CLOSINGS.contains(s))
        .ok_or(ConsoleError::BadRequest("choose how it ended"))?;
    Ok(Change {
        purpose: work,
        mutation: "mutation($id: ID!, $status: FollowUpStatus!) { closeFollowUp(id: $id, status: $status) { id } }",
        variables: json!({ "id": follow_up, "status": status }),
        notice: "notice-follow-up-closed",
    })
}

/// A `datetime-local` value (`2027-01-05T09:30`, the browser's local time
/// taken as UTC: the console says so beside the field) as RFC 3339.
pub fn due_at(value: &str) -> Result<String, ConsoleError> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let at = time::PrimitiveDateTime::parse(value, &format)
        .map_err(|_| ConsoleError::BadRequest("the due time is not a time"))?;
    at.assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ConsoleError::Internal(e.to_string()))
}

/// After a change: back to `back` with `notice`, or the refusal.
pub(crate) fn done(
    state: &ConsoleState,
    visit: &Visit,
    result: Result<Value, ConsoleError>,
    notice: &str,
    back: &str,
) -> Response {
    match result {
        Ok(_) => {
            state
                .sessions
                .update(&visit.token, |s| s.notice = Some(notice.to_owned()));
            visit.finish(state, redirect_to(back))
        }
        Err(e) => visit.refuse(state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Vec<(String, String)> {
        pairs(text)
    }

    #[test]
    fn the_note_and_referral_forms_become_their_mutations_and_bad_choices_are_refused() {
        let note = note_change(
            "s1",
            &form("category=HEALTH&body=Saw+the+nurse"),
            Purpose::HealthCare,
        )
        .unwrap();
        assert_eq!(note.purpose, Purpose::HealthCare);
        assert_eq!(note.variables["input"]["category"], "HEALTH");
        assert!(note_change("s1", &form("category=SECRETS&body=x"), Purpose::HealthCare).is_err());
        assert!(note_change("s1", &form("category=CASE"), Purpose::HealthCare).is_err());
        let referral = referral_change(
            "s1",
            &form("to_agency=legal-aid-city&service=LEGAL_AID&urgency=URGENT"),
        )
        .unwrap();
        assert_eq!(referral.purpose, Purpose::Referral);
        assert_eq!(referral.variables["input"]["urgency"], "URGENT");
        assert!(referral_change("s1", &form("to_agency=x&service=LEGAL_AID&urgency=NOW")).is_err());
    }

    #[test]
    fn a_due_time_from_the_form_is_rfc_3339_and_nonsense_is_refused() {
        assert_eq!(due_at("2027-01-05T09:30").unwrap(), "2027-01-05T09:30:00Z");
        assert!(due_at("tomorrow").is_err());
        assert!(due_at("2027-13-05T09:30").is_err());
    }

    #[test]
    fn a_consent_form_becomes_the_mutation_input_with_every_checked_box() {
        let input = consent_input(
            "shelter-north:s1",
            &form("grantee=clinic-east&category=IDENTITY&category=HEALTH&purpose=HEALTH_CARE&method=WITNESSED_WRITTEN&witness=Ana+B&valid_until=2027-03-01"),
        )
        .unwrap();
        assert_eq!(input["categories"], json!(["IDENTITY", "HEALTH"]));
        assert_eq!(input["purposes"], json!(["HEALTH_CARE"]));
        assert_eq!(input["validUntil"], "2027-03-01T23:59:59Z");
        assert_eq!(input["witness"], "Ana B");
    }

    #[test]
    fn a_consent_form_the_page_could_not_have_sent_is_refused() {
        let base = "grantee=clinic-east&category=IDENTITY&purpose=REFERRAL&method=WITNESSED_VERBAL&witness=W";
        assert!(consent_input("s", &form(base)).is_ok());
        for (bad, why) in [
            (
                base.replace("category=IDENTITY", "category=EVERYTHING"),
                "unknown category",
            ),
            (
                base.replace("purpose=REFERRAL", "purpose=AUDIT"),
                "not a grantable purpose",
            ),
            (
                base.replace("method=WITNESSED_VERBAL", "method=PORTAL"),
                "not a witnessed method",
            ),
            (base.replace("&witness=W", ""), "no witness"),
            (format!("{base}&valid_until=tomorrow"), "not a date"),
            (base.replace("grantee=clinic-east&", ""), "no grantee"),
        ] {
            assert!(
                matches!(
                    consent_input("s", &form(&bad)),
                    Err(ConsoleError::BadRequest(_))
                ),
                "{why}"
            );
        }
    }
}

//! The console's pages (askama templates in `console/templates/`) and what
//! each shows, read from the gateway's answers. Every string a caseworker
//! reads goes through the translations ([`Chrome::t`]).

use askama::Template;
use exchange_service::translations::FluentArgs;
use serde::Deserialize;

use crate::i18n::{Lang, translate};

/// What every page carries: language, CSRF token, who is signed in, and a
/// one-time notice.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    pub csrf: String,
    /// "Name (agency)" of the signed-in caseworker.
    pub user: Option<String>,
    pub notice: Option<String>,
    /// The current path and query, for the language picker to come back to.
    pub here: String,
    /// Until when a break-glass window this caseworker opened is open (the
    /// banner on every page).
    pub break_glass_until: Option<String>,
    /// Whether the signed-in caseworker is a supervisor (their pages in
    /// the navigation).
    pub supervisor: bool,
    /// Whether they answer survivors' requests to correct or erase (a
    /// supervisor or the data-protection officer).
    pub records_officer: bool,
}

impl Chrome {
    /// The chrome of a page for no one signed in, in `lang`.
    pub fn anonymous(lang: Lang) -> Self {
        Self {
            lang,
            csrf: String::new(),
            user: None,
            notice: None,
            here: "/".into(),
            break_glass_until: None,
            supervisor: false,
            records_officer: false,
        }
    }

    /// Message `id` in the page's language.
    pub fn t(&self, id: &str) -> String {
        translate(self.lang, id, None)
    }

    /// Message `id` with one argument.
    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        translate(self.lang, id, Some(&args))
    }

    /// The language picker's entries: tag, native name, selected.
    pub fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .into_iter()
            .map(|l| (l.tag(), l.native_name(), l == self.lang))
            .collect()
    }

    /// A wire enum value (`SHELTER_PLACEMENT`) in words, from the
    /// translations (`value-shelter-placement`).
    pub fn word(&self, value: &str) -> String {
        let id = format!("value-{}", value.to_ascii_lowercase().replace('_', "-"));
        let text = translate(self.lang, &id, None);
        if text == id { value.to_owned() } else { text }
    }
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    /// (agency ID, name).
    pub agencies: Vec<(String, String)>,
}

/// One page of the referral inbox.
#[derive(Template)]
#[template(path = "referrals.html")]
pub struct ReferralsPage {
    pub chrome: Chrome,
    pub direction: String,
    pub status: String,
    pub referrals: Vec<Referral>,
    /// The link to the next page, when there is one.
    pub next: Option<String>,
    pub own_agency: String,
}

/// One referral with what the caseworker may do with it.
#[derive(Template)]
#[template(path = "referral.html")]
pub struct ReferralPage {
    pub chrome: Chrome,
    pub referral: Referral,
    /// Whether the caseworker's agency receives it (else sent it).
    pub incoming: bool,
    /// The answers offered: (action, message ID of its button, needs a reason).
    pub actions: Vec<(&'static str, &'static str, bool)>,
}

/// Purposes a survivor can consent to (the owner's own purposes, audit and
/// emergency are not consent matters), as the portal offers them.
pub const GRANTABLE_PURPOSES: [&str; 6] = [
    "REFERRAL",
    "SERVICE_COORDINATION",
    "SHELTER_PLACEMENT",
    "LEGAL_ASSISTANCE",
    "HEALTH_CARE",
    "INVESTIGATION",
];

/// A survivor's record as far as the caseworker may see it, and what the
/// caseworker may do there.
#[derive(Template)]
#[template(path = "survivor.html")]
pub struct SurvivorPage {
    pub chrome: Chrome,
    pub survivor: Survivor,
    /// The purpose the record was read for, as a wire value.
    pub purpose: String,
    /// The referral it was read through, if any.
    pub referral: Option<String>,
    /// Whether the caseworker's agency owns the record (consent is theirs
    /// to record).
    pub own: bool,
    /// The survivor's consent grants (owner only).
    pub grants: Vec<ConsentGrant>,
    /// Agencies with a node other than the caseworker's: consent grantees
    /// and referral targets.
    pub agencies: Vec<MemberAgency>,
    pub categories: &'static [&'static str],
    pub purposes: &'static [&'static str],
    pub services: &'static [&'static str],
    pub urgencies: &'static [&'static str],
    pub follow_up_kinds: &'static [&'static str],
    /// The purpose case work here is done for (a note, a follow-up).
    pub work_purpose: String,
    /// Whether the caseworker may open break-glass on this record
    /// (a supervisor of a shelter, clinic or child-protection agency that
    /// does not own it), and whether a window is open now.
    pub may_break_glass: bool,
    pub break_glass_open: bool,
    /// Whether the caseworker may assign caseworkers (a supervisor of the
    /// owning agency).
    pub may_assign: bool,
    /// The portal languages, for the consent code slip: (tag, name).
    pub slip_languages: Vec<(&'static str, &'static str)>,
    /// The caseworker's agency: what it provides, is responsible for and
    /// is assigned, it may move on.
    pub own_agency: String,
    /// How long each part of the record is kept and the legal hold in
    /// force (the owner's staff).
    pub retention: Option<RetentionSchedule>,
    /// Whether the caseworker may place or lift a legal hold (a supervisor
    /// or the data-protection officer of the owning agency).
    pub may_hold: bool,
    /// Whether the case is open, and its closings (the owner's staff).
    pub case_status: Option<CaseStatus>,
    /// The reasons a case is closed for, in the form's order.
    pub closure_reasons: &'static [&'static str],
    /// The goals of the newest plan, one a line, to start a new version
    /// from.
    pub plan_goals: String,
    /// The rows of the proposal form: the newest plan's actions, then
    /// blank rows.
    pub plan_rows: Vec<PlanRow>,
    /// Agencies an action can be given to: (ID, name), the own first.
    pub plan_agencies: Vec<(String, String)>,
}

/// One action row of the care plan proposal form.
pub struct PlanRow {
    pub description: String,
    pub agency: String,
    /// As a `datetime-local` value, or empty.
    pub due: String,
}

/// Where a survivor's case stands.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseStatus {
    pub open: bool,
    pub closures: Vec<CaseClosure>,
}

impl CaseStatus {
    /// The closing in force, when the case is closed.
    pub fn closed(&self) -> Option<&CaseClosure> {
        self.closures.last().filter(|_| !self.open)
    }
}

/// One closing of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseClosure {
    pub reason: String,
    pub closed_at: String,
    pub closed_by: String,
}

/// The reasons a case is closed for (the exchange's `CaseClosureReason`).
pub const CLOSURE_REASONS: [&str; 5] = [
    "GOALS_MET",
    "CONTINUED_ELSEWHERE",
    "SURVIVOR_WITHDREW",
    "CONTACT_LOST",
    "OTHER",
];

/// How long a record's parts are kept, and the legal hold in force.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSchedule {
    pub parts: Vec<PartRetention>,
    pub legal_hold: Option<LegalHold>,
}

/// One part of a record: its end of keeping, or its erasure.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartRetention {
    pub part: String,
    pub due_at: Option<String>,
    pub rule: Option<String>,
    pub why: Option<String>,
    pub erased_at: Option<String>,
}

/// A legal hold in force.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalHold {
    pub reason: String,
    pub placed_at: String,
    pub placed_by: String,
}

impl SurvivorPage {
    pub fn next_statuses(&self, status: &str) -> &'static [&'static str] {
        next_service_statuses(status)
    }
    pub fn plan_statuses(&self) -> &'static [&'static str] {
        &PLAN_ACTION_STATUSES
    }
    pub fn closings(&self) -> &'static [&'static str] {
        &FOLLOW_UP_CLOSINGS
    }
    pub fn initial_service_statuses(&self) -> &'static [&'static str] {
        &["PLANNED", "IN_PROGRESS", "DELIVERED"]
    }
}

/// Survivors' requests to correct or erase their records, waiting for the
/// agency's answer (supervisors and the data-protection officer).
#[derive(Template)]
#[template(path = "requests.html")]
pub struct RequestsPage {
    pub chrome: Chrome,
    pub requests: Vec<RightsRequest>,
}

/// A survivor's request, as the gateway returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RightsRequest {
    pub id: String,
    pub survivor_id: String,
    pub kind: String,
    pub parts: Vec<String>,
    pub details: Option<String>,
    pub asked_at: String,
    pub answer_due_at: String,
    pub overdue: bool,
}

/// Emergency access to the agency's records, for its supervisors.
#[derive(Template)]
#[template(path = "review.html")]
pub struct ReviewPage {
    pub chrome: Chrome,
    pub entries: Vec<AuditEntry>,
}

/// An entry of a node's audit log, as the gateway returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: String,
    pub kind: String,
    pub actor_agency: Option<String>,
    pub actor_user: Option<String>,
    pub survivor_id: Option<String>,
    pub purpose: Option<String>,
    pub justification: Option<String>,
    pub decision: String,
    #[serde(default)]
    pub disclosed: Vec<String>,
}

/// The break-glass form: why the record is needed now.
#[derive(Template)]
#[template(path = "break_glass.html")]
pub struct BreakGlassPage {
    pub chrome: Chrome,
    pub survivor_id: String,
    pub min_chars: usize,
}

/// A portal consent code on a slip to print and hand over: the code, the
/// portal's address and a QR code opening its sign-in page in the
/// survivor's language, the words in that language. Shown once, never
/// stored by the console.
#[derive(Template)]
#[template(path = "slip.html")]
pub struct SlipPage {
    pub chrome: Chrome,
    /// The slip's language (the survivor's), apart from the page's.
    pub slip_lang: Lang,
    pub code: String,
    pub agency_name: String,
    pub portal_url: Option<String>,
    /// The QR code as inline SVG (generated here from the portal URL).
    pub qr_svg: Option<String>,
    pub survivor_id: String,
}

impl SlipPage {
    /// Message `id` in the slip's language.
    pub fn s(&self, id: &str) -> String {
        translate(self.slip_lang, id, None)
    }
}

/// The standardized intake form.
#[derive(Template)]
#[template(path = "intake.html")]
pub struct IntakePage {
    pub chrome: Chrome,
}

impl IntakePage {
    pub fn sexes(&self) -> &'static [&'static str] {
        &crate::routes::SEXES
    }
    pub fn genders(&self) -> &'static [&'static str] {
        &crate::routes::GENDER_IDENTITIES
    }
    pub fn age_bands(&self) -> &'static [&'static str] {
        &crate::routes::AGE_BANDS
    }
    pub fn exploitation_types(&self) -> &'static [&'static str] {
        &crate::routes::EXPLOITATION_TYPES
    }
    pub fn risk_levels(&self) -> &'static [&'static str] {
        &crate::routes::RISK_LEVELS
    }
    pub fn services(&self) -> &'static [&'static str] {
        &crate::routes::SERVICES
    }
    pub fn functioning(&self) -> &'static [(&'static str, &'static str)] {
        &crate::routes::FUNCTIONING
    }
    pub fn difficulty_levels(&self) -> &'static [&'static str] {
        &crate::routes::DIFFICULTY_LEVELS
    }
}

/// The own agency's survivors.
#[derive(Template)]
#[template(path = "survivors.html")]
pub struct SurvivorListPage {
    pub chrome: Chrome,
    pub rows: Vec<SurvivorListRow>,
    pub next: Option<String>,
}

/// One row of [`SurvivorListPage`].
#[derive(Debug, Clone)]
pub struct SurvivorListRow {
    pub id: String,
    pub registered_at: String,
    pub name: Option<String>,
}

/// A consent grant as the owner's node returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentGrant {
    pub id: String,
    pub grantee: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub valid_until: Option<String>,
    pub method: String,
    pub witness: Option<String>,
    pub active: bool,
    pub revoked_at: Option<String>,
    pub created_at: String,
}

/// A member agency from the gateway's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberAgency {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub services: Vec<String>,
    pub languages: Vec<String>,
    pub region: String,
    pub has_node: bool,
}

/// A refusal, with its stable code.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub code: String,
    pub message: String,
}

/// A referral as the gateway returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    pub id: String,
    pub survivor_id: String,
    pub from_agency: String,
    pub to_agency: String,
    pub service: String,
    pub urgency: String,
    pub status: String,
    pub notes: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub history: Vec<StatusChange>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: String,
    pub at: String,
    pub by_agency: String,
    pub note: Option<String>,
}

/// A survivor as the gateway returns it: the categories disclosed, and the
/// ones withheld with the reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Survivor {
    pub id: String,
    pub owner: String,
    pub identity: Option<Identity>,
    pub contact: Option<Contact>,
    #[serde(rename = "case")]
    pub case_details: Option<CaseDetails>,
    pub health: Option<Health>,
    pub legal: Option<Legal>,
    pub withheld: Vec<Withheld>,
    pub break_glass: bool,
    #[serde(default)]
    pub case_notes: Option<NoteConnection>,
    /// `None` unless CASE is disclosed.
    pub services: Option<Vec<ServiceRecord>>,
    pub follow_ups: Option<Vec<FollowUp>>,
    pub assigned_caseworkers: Option<Vec<Assignment>>,
    pub care_plan: Option<CarePlan>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoteConnection {
    pub nodes: Vec<CaseNote>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseNote {
    pub category: String,
    pub body: String,
    pub author: NoteAuthor,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoteAuthor {
    pub agency: String,
    pub user: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub id: String,
    pub kind: String,
    pub provider_agency: String,
    pub status: String,
    pub planned_for: Option<String>,
    pub delivered_at: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowUp {
    pub id: String,
    pub survivor_id: String,
    pub kind: String,
    pub due_at: String,
    pub assigned_agency: String,
    pub assigned_user: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub user: String,
    pub assigned_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CarePlan {
    pub version: i64,
    #[serde(default)]
    pub goals: Option<Vec<String>>,
    pub actions: Vec<CarePlanAction>,
    pub agreement: Option<PlanAgreement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CarePlanAction {
    pub position: i64,
    pub description: String,
    pub responsible_agency: String,
    pub due_at: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanAgreement {
    pub at: String,
    pub method: String,
}

/// Open follow-ups of the caseworker's agency due soon, across the
/// federation.
#[derive(Template)]
#[template(path = "follow_ups.html")]
pub struct FollowUpsPage {
    pub chrome: Chrome,
    pub follow_ups: Vec<FollowUp>,
    pub days: i64,
    pub next: Option<String>,
}

impl FollowUpsPage {
    pub fn closings(&self) -> &'static [&'static str] {
        &FOLLOW_UP_CLOSINGS
    }
}

/// The federation's agencies, filtered.
#[derive(Template)]
#[template(path = "agencies.html")]
pub struct AgenciesPage {
    pub chrome: Chrome,
    pub agencies: Vec<MemberAgency>,
    pub service: String,
    pub language: String,
    pub region: String,
    pub services: &'static [&'static str],
}

/// Service statuses a service can move to from `status` (forward only).
pub fn next_service_statuses(status: &str) -> &'static [&'static str] {
    match status {
        "PLANNED" => &["IN_PROGRESS", "DELIVERED", "CANCELLED"],
        "IN_PROGRESS" => &["DELIVERED", "CANCELLED"],
        _ => &[],
    }
}

/// Plan action statuses offered to the responsible agency.
pub const PLAN_ACTION_STATUSES: [&str; 4] = ["TO_DO", "IN_PROGRESS", "DONE", "CANCELLED"];

/// How an open follow-up can be closed.
pub const FOLLOW_UP_CLOSINGS: [&str; 3] = ["DONE", "MISSED", "CANCELLED"];

/// Follow-up kinds, in the order offered.
pub const FOLLOW_UP_KINDS: [&str; 5] = [
    "APPOINTMENT",
    "HOME_VISIT",
    "PHONE_CALL",
    "COURT_DATE",
    "CASE_REVIEW",
];

/// The purpose of a partner's case work under a referral for `service`:
/// the care the referral is for.
pub fn work_purpose(service: &str) -> &'static str {
    match service {
        "MEDICAL" | "PSYCHOSOCIAL" => "HEALTH_CARE",
        "LEGAL_AID" => "LEGAL_ASSISTANCE",
        "SHELTER" => "SHELTER_PLACEMENT",
        _ => "SERVICE_COORDINATION",
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub medical_notes: Option<String>,
    pub psychosocial_notes: Option<String>,
    #[serde(default)]
    pub allergies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Legal {
    pub immigration_status: Option<String>,
    #[serde(default)]
    pub proceedings: Vec<String>,
    #[serde(default)]
    pub protection_orders: Vec<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub given_name: String,
    pub family_name: Option<String>,
    pub preferred_name: Option<String>,
    pub nationality: Option<String>,
    #[serde(default)]
    pub languages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub safe_channel: Option<String>,
    pub phone: Option<String>,
    pub safety_notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseDetails {
    pub risk_level: String,
    #[serde(default)]
    pub needs: Vec<String>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Withheld {
    pub category: String,
    pub reason: String,
}

impl Withheld {
    /// The reason in plain words, as a message ID (`withheld-no-grant`).
    pub fn reason_id(&self) -> String {
        format!(
            "withheld-{}",
            self.reason.to_ascii_lowercase().replace('_', "-")
        )
    }

    /// Who could change it, as a message ID.
    pub fn remedy_id(&self) -> &'static str {
        match self.reason.as_str() {
            "FORBIDDEN_BY_POLICY" => "remedy-policy",
            "ERASED" => "remedy-erased",
            _ => "remedy-consent",
        }
    }
}

/// The answers a caseworker may give a referral in `status`, by side.
pub fn referral_actions(incoming: bool, status: &str) -> Vec<(&'static str, &'static str, bool)> {
    match (incoming, status) {
        (true, "PENDING") => vec![
            ("accept", "action-accept", false),
            ("decline", "action-decline", true),
        ],
        (true, "ACCEPTED") => vec![("complete", "action-complete", false)],
        (false, "PENDING" | "ACCEPTED") => vec![("withdraw", "action-withdraw", true)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_answers_the_node_would_accept_are_offered() {
        assert_eq!(referral_actions(true, "PENDING").len(), 2);
        assert_eq!(referral_actions(true, "ACCEPTED")[0].0, "complete");
        assert_eq!(referral_actions(false, "PENDING")[0].0, "withdraw");
        assert!(referral_actions(true, "COMPLETED").is_empty());
        assert!(referral_actions(false, "DECLINED").is_empty());
    }

    #[test]
    fn every_withheld_reason_and_wire_value_has_words_in_every_language() {
        for lang in Lang::ALL {
            let chrome = Chrome::anonymous(lang);
            for reason in [
                "NO_GRANT",
                "GRANT_EXPIRED",
                "GRANT_NOT_YET_VALID",
                "GRANT_REVOKED",
                "PURPOSE_NOT_GRANTED",
                "FORBIDDEN_BY_POLICY",
                "ERASED",
            ] {
                let w = Withheld {
                    category: "HEALTH".into(),
                    reason: reason.into(),
                };
                assert_ne!(chrome.t(&w.reason_id()), w.reason_id(), "{lang:?} {reason}");
            }
            for value in [
                "PENDING", "ACCEPTED", "URGENT", "MEDICAL", "REFERRAL", "HEALTH",
            ] {
                assert_ne!(chrome.word(value), value, "{lang:?} {value}");
            }
        }
    }
}

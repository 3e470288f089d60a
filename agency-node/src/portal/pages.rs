//! The portal's pages as askama templates (`agency-node/templates/portal`),
//! and the page chrome every one of them shares: language, direction,
//! CSRF token, the quick exit and the language picker.

use askama::Template;
use exchange_service::translations::FluentArgs;

use super::i18n::{Lang, translate};

/// What every page carries.
pub struct Chrome {
    pub lang: Lang,
    pub csrf: String,
    pub signed_in: bool,
    pub agency_name: String,
    /// Where the language picker sends its GET (the page itself when it is
    /// a GET page).
    pub picker_action: String,
}

impl Chrome {
    /// A message in the page's language.
    pub fn t(&self, id: &str) -> String {
        translate(self.lang, id, None)
    }

    /// A message with several arguments.
    pub fn t_args(&self, id: &str, values: &[(&str, &str)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set((*name).to_owned(), (*value).to_owned());
        }
        translate(self.lang, id, Some(&args))
    }

    /// A message with one argument.
    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        translate(self.lang, id, Some(&args))
    }

    /// `(tag, native name, selected)` for the picker.
    pub fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .into_iter()
            .map(|l| (l.tag(), l.native_name(), l == self.lang))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/choose_pin.html")]
pub struct ChoosePinPage {
    pub chrome: Chrome,
    pub problem: Option<String>,
}

/// A grant as the survivor sees it.
pub struct GrantRow {
    pub id: String,
    pub agency: String,
    pub parts: Vec<String>,
    pub purposes: Vec<String>,
    pub until: String,
    pub status: String,
    /// `ACTIVE`, `REVOKED`, `EXPIRED` or `PENDING` (for tests and styling).
    pub status_code: &'static str,
    pub revocable: bool,
}

/// One access to the record.
pub struct AccessRow {
    pub when: String,
    pub who: String,
    pub agency_id: String,
    pub purpose: String,
    pub seen: Vec<String>,
    pub break_glass: bool,
}

pub struct ReferralRow {
    pub to: String,
    pub service: String,
    pub status: String,
    pub updated: String,
}

pub struct ReceiptRow {
    pub id: String,
    pub when: String,
    pub what: String,
    pub agency: String,
}

/// An action of the care plan as the survivor reads it.
pub struct PlanActionRow {
    pub description: String,
    pub by: String,
    pub due: String,
    pub status: String,
    /// `TO_DO`, `IN_PROGRESS`, `DONE` or `CANCELLED`.
    pub status_code: &'static str,
}

/// The newest version of the survivor's care plan.
pub struct PlanView {
    pub version: i64,
    pub written: String,
    pub goals: Vec<String>,
    pub actions: Vec<PlanActionRow>,
    /// "You agreed on ...", once agreed.
    pub agreed: Option<String>,
    /// "You asked for a change on ...", while not agreed.
    pub change_sent: Option<String>,
}

/// One milestone of the survivor's case.
pub struct MilestoneRow {
    pub when: String,
    pub text: String,
    /// Still to come (an appointment, a hearing).
    pub upcoming: bool,
    /// What it is, for styling and tests (`referral`, `service`, `plan`,
    /// `follow-up`, `transfer`).
    pub kind: &'static str,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
pub struct HomePage {
    pub chrome: Chrome,
    pub heading: String,
    pub grants: Vec<GrantRow>,
    pub history: Vec<AccessRow>,
    /// Whether any access was an emergency (break-glass) one.
    pub has_break_glass: bool,
    pub referrals: Vec<ReferralRow>,
    pub receipts_intro: String,
    pub receipts: Vec<ReceiptRow>,
    pub plan: Option<PlanView>,
    pub timeline: Vec<MilestoneRow>,
    /// How long each part of the record is kept.
    pub retention: Vec<RetentionRow>,
    /// The survivor's requests to correct or erase, newest first.
    pub requests: Vec<RequestRow>,
    /// The parts a request can name, for the request forms.
    pub request_parts: Vec<Choice>,
    /// The agency's deadline, in plain words ("we answer within 30 days").
    pub request_deadline: String,
    /// Whether the survivor opted out of the federation's statistics.
    pub statistics_opt_out: bool,
}

/// A request to correct or erase, as the survivor sees it.
pub struct RequestRow {
    pub id: String,
    pub kind: String,
    pub parts: Vec<String>,
    pub details: Option<String>,
    pub asked: String,
    /// "We will answer by ..." while open; "Answered on ..." after.
    pub when: String,
    pub status: String,
    /// `OPEN`, `DONE` or `REFUSED` (for tests and styling).
    pub status_code: &'static str,
    pub answer: Option<String>,
    /// Why an open erasure must wait: the legal hold's reason.
    pub held: Option<String>,
}

/// Everything the node holds about the survivor, as a page to read.
#[derive(Template)]
#[template(path = "portal/my_record.html")]
pub struct MyRecordPage {
    pub chrome: Chrome,
    pub intro: String,
    /// Each section's heading and its contents, escaped HTML.
    pub sections: Vec<(String, String)>,
}

/// One part of the record and how long it is kept, in plain words.
pub struct RetentionRow {
    pub part: String,
    pub kept: String,
    pub why: Option<String>,
}

/// A choice in a list (select option or checkbox).
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "portal/grant.html")]
pub struct GrantPage {
    pub chrome: Chrome,
    pub problems: Vec<String>,
    pub agencies: Vec<Choice>,
    pub categories: Vec<Choice>,
    pub purposes: Vec<Choice>,
    pub until: String,
    pub min_date: String,
    pub max_date: String,
    pub until_hint: String,
}

/// The confirmation step before a grant or a revocation is written.
#[derive(Template)]
#[template(path = "portal/confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub heading: String,
    pub summary: String,
    pub parts: Vec<String>,
    pub purposes: Vec<String>,
    pub until: String,
    pub action: &'static str,
    pub hidden: Vec<(&'static str, String)>,
    pub button: String,
}

#[derive(Template)]
#[template(path = "portal/done.html")]
pub struct DonePage {
    pub chrome: Chrome,
    pub message: String,
    /// The consent receipt to download, for a consent given or withdrawn.
    pub receipt_id: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub code: &'static str,
    pub message: String,
}

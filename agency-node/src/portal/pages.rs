//! The portal's pages as askama templates (`agency-node/templates/portal`),
//! and the page chrome every one of them shares: language, direction,
//! CSRF token, the quick exit and the language picker.

use askama::Template;
use fluent::FluentArgs;

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
    pub receipt_id: String,
}

#[derive(Template)]
#[template(path = "portal/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub code: &'static str,
    pub message: String,
}

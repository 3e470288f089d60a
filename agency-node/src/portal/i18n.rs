//! The portal's translations: Fluent files (`agency-node/locales/<lang>/
//! portal.ftl`, compiled in) in the languages of [`Lang`] (shared with the
//! caseworker console, `exchange_service::lang`).

use std::sync::LazyLock;

use exchange_service::translations::Catalog;
use exchange_service::translations::FluentArgs;

pub use exchange_service::lang::Lang;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::new(|lang| match lang {
        Lang::En => include_str!("../../locales/en/portal.ftl"),
        Lang::Es => include_str!("../../locales/es/portal.ftl"),
        Lang::Fr => include_str!("../../locales/fr/portal.ftl"),
        Lang::Ar => include_str!("../../locales/ar/portal.ftl"),
    })
});

/// Translates message `id` into `lang`, with `args`; the ID itself when the
/// message is missing (a test keeps every language complete).
pub fn translate(lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
    CATALOG.translate(lang, id, args)
}

/// The message IDs of a language's file.
pub fn message_ids(lang: Lang) -> Vec<String> {
    CATALOG.message_ids(lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_parses_and_has_every_english_message() {
        assert!(
            message_ids(Lang::En).len() > 40,
            "the English file looks truncated"
        );
        let problems = CATALOG.completeness_problems();
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_message_with_an_argument_is_formatted() {
        let mut args = FluentArgs::new();
        args.set("date", "2027-01-01");
        let text = translate(Lang::En, "grant-until", Some(&args));
        assert!(text.contains("2027-01-01"), "{text}");
    }
}

//! The console's translations: Fluent files (`console/locales/<lang>/
//! console.ftl`, compiled in) in the languages the survivor portal speaks.

use std::sync::LazyLock;

use exchange_service::translations::{Catalog, FluentArgs};

pub use exchange_service::lang::Lang;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::new(|lang| match lang {
        Lang::En => include_str!("../locales/en/console.ftl"),
        Lang::Es => include_str!("../locales/es/console.ftl"),
        Lang::Fr => include_str!("../locales/fr/console.ftl"),
        Lang::Ar => include_str!("../locales/ar/console.ftl"),
    })
});

/// Message `id` in `lang` with `args`.
pub fn translate(lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
    CATALOG.translate(lang, id, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_parses_and_has_every_english_message() {
        assert!(CATALOG.message_ids(Lang::En).len() > 30);
        let problems = CATALOG.completeness_problems();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

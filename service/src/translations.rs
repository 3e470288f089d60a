//! Fluent translations for a set of pages, one file a language compiled in
//! (feature `web-pages`; the gateway does not build it): a [`Catalog`]
//! formats a message in a [`Lang`], and lists message IDs so that a test can
//! keep every language complete.

use std::collections::HashMap;

pub use fluent::FluentArgs;
use fluent::FluentResource;
use fluent::concurrent::FluentBundle;
use unic_langid::LanguageIdentifier;

use crate::lang::Lang;

/// Every language's bundle of one set of pages, parsed once.
pub struct Catalog {
    sources: HashMap<Lang, &'static str>,
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// A catalog of `sources`, one Fluent file per language. A file that
    /// does not parse is a build mistake caught by [`Catalog::syntax_errors`]
    /// in a test; at run time its broken entries are left out and the
    /// message ID is shown instead.
    pub fn new(sources: impl Fn(Lang) -> &'static str) -> Self {
        let sources: HashMap<Lang, &'static str> =
            Lang::ALL.into_iter().map(|l| (l, sources(l))).collect();
        let bundles = sources
            .iter()
            .map(|(&lang, &source)| {
                let resource = FluentResource::try_new(source.to_owned())
                    .unwrap_or_else(|(partial, _)| partial);
                let id: LanguageIdentifier = lang.tag().parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Directional isolation marks only where the script needs them.
                bundle.set_use_isolating(lang == Lang::Ar);
                let _ = bundle.add_resource(resource);
                (lang, bundle)
            })
            .collect();
        Self { sources, bundles }
    }

    /// Formats message `id` in `lang` with `args`; the ID itself when the
    /// message is missing.
    pub fn translate(&self, lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(bundle) = self.bundles.get(&lang) else {
            return id.to_owned();
        };
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(
                lang = lang.tag(),
                id,
                ?errors,
                "translation did not format cleanly"
            );
        }
        text.into_owned()
    }

    /// Whether `lang`'s file parses.
    pub fn parses(&self, lang: Lang) -> bool {
        self.sources
            .get(&lang)
            .is_some_and(|s| FluentResource::try_new((*s).to_owned()).is_ok())
    }

    /// The message IDs of `lang`'s file.
    pub fn message_ids(&self, lang: Lang) -> Vec<String> {
        let Some(source) = self.sources.get(&lang) else {
            return Vec::new();
        };
        let resource = match FluentResource::try_new((*source).to_owned()) {
            Ok(r) | Err((r, _)) => r,
        };
        resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    /// For a test: every language parses and has exactly English's
    /// messages; the problems found, empty when none.
    pub fn completeness_problems(&self) -> Vec<String> {
        let english = self.message_ids(Lang::En);
        let mut problems = Vec::new();
        for lang in Lang::ALL {
            if !self.parses(lang) {
                problems.push(format!("{} has syntax errors", lang.tag()));
            }
            let ids = self.message_ids(lang);
            let missing: Vec<_> = english.iter().filter(|id| !ids.contains(id)).collect();
            if !missing.is_empty() {
                problems.push(format!("{} lacks {missing:?}", lang.tag()));
            }
            let extra: Vec<_> = ids.iter().filter(|id| !english.contains(id)).collect();
            if !extra.is_empty() {
                problems.push(format!("{} has unknown {extra:?}", lang.tag()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_message_in_one_language_is_reported() {
        let catalog = Catalog::new(|lang| match lang {
            Lang::En => "hello = Hello\nbye = Bye { $name }\n",
            Lang::Es => "hello = Hola\n",
            Lang::Fr => "hello = Bonjour\nbye = Au revoir { $name }\n",
            Lang::Ar => "hello = مرحبا\nbye = { $name } وداعا\nextra = x\n",
        });
        let problems = catalog.completeness_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("es lacks"), "{problems:?}");
        assert!(problems[1].starts_with("ar has unknown"), "{problems:?}");
        let mut args = FluentArgs::new();
        args.set("name", "Ana");
        assert_eq!(
            catalog.translate(Lang::Fr, "bye", Some(&args)),
            "Au revoir Ana"
        );
        assert_eq!(catalog.translate(Lang::Es, "bye", None), "bye");
    }
}

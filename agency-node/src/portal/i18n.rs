//! The portal's languages: Fluent translation files (`agency-node/locales/
//! <lang>/portal.ftl`, compiled in), the choice of language from the picker
//! or the browser's `Accept-Language`, and the writing direction.

use std::collections::HashMap;
use std::sync::LazyLock;

use fluent::concurrent::FluentBundle;
use fluent::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// A language the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Es,
    Fr,
    Ar,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::Es, Lang::Fr, Lang::Ar];

    /// The BCP 47 tag (`lang` attribute and the picker's value).
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
            Self::Fr => "fr",
            Self::Ar => "ar",
        }
    }

    /// The language's own name, for the picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::Es => "Español",
            Self::Fr => "Français",
            Self::Ar => "العربية",
        }
    }

    /// `rtl` for Arabic, `ltr` otherwise.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Ar => "rtl",
            _ => "ltr",
        }
    }

    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.tag() == primary)
    }

    /// The best language for an `Accept-Language` header: the supported
    /// language with the highest weight, English when none is supported.
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let Some(header) = accept_language else {
            return Self::En;
        };
        let mut best: Option<(f32, usize, Lang)> = None;
        for (position, item) in header.split(',').take(32).enumerate() {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Self::parse) else {
                continue;
            };
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if weight <= 0.0 || !weight.is_finite() {
                continue;
            }
            // Higher weight wins; on equal weight the earlier entry.
            let better = match best {
                None => true,
                Some((w, p, _)) => weight > w || (weight == w && position < p),
            };
            if better {
                best = Some((weight, position, lang));
            }
        }
        best.map_or(Self::En, |(_, _, lang)| lang)
    }

    fn source(self) -> &'static str {
        match self {
            Self::En => include_str!("../../locales/en/portal.ftl"),
            Self::Es => include_str!("../../locales/es/portal.ftl"),
            Self::Fr => include_str!("../../locales/fr/portal.ftl"),
            Self::Ar => include_str!("../../locales/ar/portal.ftl"),
        }
    }
}

/// Every language's bundle, parsed once. A translation file that does not
/// parse is a build mistake caught by the tests below; at run time its
/// broken entries are left out and the message ID is shown instead.
static BUNDLES: LazyLock<HashMap<Lang, FluentBundle<FluentResource>>> = LazyLock::new(|| {
    Lang::ALL
        .into_iter()
        .map(|lang| {
            let resource = FluentResource::try_new(lang.source().to_owned())
                .unwrap_or_else(|(partial, _)| partial);
            let id: LanguageIdentifier = lang.tag().parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Directional isolation marks only where the script needs them.
            bundle.set_use_isolating(lang == Lang::Ar);
            let _ = bundle.add_resource(resource);
            (lang, bundle)
        })
        .collect()
});

/// Translates message `id` into `lang`, with `args`; the ID itself when the
/// message is missing (a test keeps every language complete).
pub fn translate(lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
    let Some(bundle) = BUNDLES.get(&lang) else {
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

/// The message IDs of a language's file.
pub fn message_ids(lang: Lang) -> Vec<String> {
    let resource = match FluentResource::try_new(lang.source().to_owned()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_translation_file_parses() {
        for lang in Lang::ALL {
            assert!(
                FluentResource::try_new(lang.source().to_owned()).is_ok(),
                "locales/{}/portal.ftl has syntax errors",
                lang.tag()
            );
        }
    }

    #[test]
    fn every_language_has_every_english_message() {
        let english = message_ids(Lang::En);
        assert!(english.len() > 40, "the English file looks truncated");
        for lang in Lang::ALL {
            let ids = message_ids(lang);
            let missing: Vec<_> = english.iter().filter(|id| !ids.contains(id)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
            let extra: Vec<_> = ids.iter().filter(|id| !english.contains(id)).collect();
            assert!(extra.is_empty(), "{} has unknown {extra:?}", lang.tag());
        }
    }

    #[test]
    fn the_browser_language_is_negotiated_by_weight() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-DE,de;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("es-MX,es;q=0.9,en;q=0.8")), Lang::Es);
        assert_eq!(Lang::negotiate(Some("en;q=0.5, ar;q=0.9")), Lang::Ar);
        assert_eq!(Lang::negotiate(Some("fr-CA;q=0, en")), Lang::En);
        assert_eq!(Lang::negotiate(Some(";;,,q=;")), Lang::En);
    }

    #[test]
    fn arabic_is_right_to_left() {
        assert_eq!(Lang::Ar.dir(), "rtl");
        assert_eq!(Lang::Es.dir(), "ltr");
    }

    #[test]
    fn a_message_with_an_argument_is_formatted() {
        let mut args = FluentArgs::new();
        args.set("date", "2027-01-01");
        let text = translate(Lang::En, "grant-until", Some(&args));
        assert!(text.contains("2027-01-01"), "{text}");
    }
}

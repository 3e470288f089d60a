//! What the survivor portal and the caseworker console share of their web
//! pages besides languages (feature `web-pages`): the stylesheet both
//! serve in front of their own rules.

/// The shared rules (`service/static/pages.css`).
pub const SHARED_STYLESHEET: &str = include_str!("../static/pages.css");

/// A page set's stylesheet: the shared rules, then `own`. Join it once
/// (in a `LazyLock`) and serve the result.
pub fn stylesheet(own: &str) -> String {
    format!("{SHARED_STYLESHEET}\n{own}")
}

/// Text for HTML or SVG built outside a template: `&`, `<`, `>`, `"` and
/// `'` escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}

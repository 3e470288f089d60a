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

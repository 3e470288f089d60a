//! GraphiQL served from the binary: the pinned GraphiQL, React and ReactDOM
//! builds (with their licences) embedded with `include_bytes!`, served under
//! versioned paths below [`ASSETS_PREFIX`], and the page that starts them
//! under a strict Content-Security-Policy with no inline script.
//!
//! Nothing is loaded from another host: GraphiQL works on a network without
//! internet access, and no third-party script runs in the page where
//! caseworkers paste bearer tokens. The files in `assets/` are fetched and
//! checked against `assets/SHA256SUMS` by `scripts/update-graphiql.sh`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;

/// Where the assets are served: `/graphiql/<package>-<version>/<file>`.
pub const ASSETS_PREFIX: &str = "/graphiql";

/// The pinned GraphiQL version.
pub const GRAPHIQL_VERSION: &str = "3.9.0";
/// The pinned React and ReactDOM version (GraphiQL 3 needs React 18's UMD
/// builds, which React 19 no longer ships).
pub const REACT_VERSION: &str = "18.3.1";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The script that starts GraphiQL (ours, not vendored).
const START_JS: &[u8] = include_bytes!("../assets/exchange/start.js");

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its path below [`ASSETS_PREFIX`]: `<package>-<version>/<file>`.
    pub path: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every embedded file. The vendored ones are versioned by their upstream
/// version; the start script by a hash of its content, so that a changed
/// script is never served from a stale cache.
pub static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let g = format!("graphiql-{GRAPHIQL_VERSION}");
    let r = format!("react-{REACT_VERSION}");
    let rd = format!("react-dom-{REACT_VERSION}");
    let start = format!("exchange-{:016x}", fnv1a(START_JS));
    let asset = |dir: &str, file: &str, content_type, bytes| Asset {
        path: format!("{dir}/{file}"),
        content_type,
        bytes,
    };
    vec![
        asset(
            &g,
            "graphiql.min.js",
            JAVASCRIPT,
            include_bytes!("../assets/graphiql-3.9.0/graphiql.min.js"),
        ),
        asset(
            &g,
            "graphiql.min.css",
            CSS,
            include_bytes!("../assets/graphiql-3.9.0/graphiql.min.css"),
        ),
        asset(
            &g,
            "LICENSE",
            TEXT,
            include_bytes!("../assets/graphiql-3.9.0/LICENSE"),
        ),
        asset(
            &r,
            "react.production.min.js",
            JAVASCRIPT,
            include_bytes!("../assets/react-18.3.1/react.production.min.js"),
        ),
        asset(
            &r,
            "LICENSE",
            TEXT,
            include_bytes!("../assets/react-18.3.1/LICENSE"),
        ),
        asset(
            &rd,
            "react-dom.production.min.js",
            JAVASCRIPT,
            include_bytes!("../assets/react-dom-18.3.1/react-dom.production.min.js"),
        ),
        asset(
            &rd,
            "LICENSE",
            TEXT,
            include_bytes!("../assets/react-dom-18.3.1/LICENSE"),
        ),
        asset(&start, "start.js", JAVASCRIPT, START_JS),
    ]
});

/// FNV-1a, 64 bits: a cache-busting tag for the start script, not a
/// security check.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The URL path of the embedded file whose path ends with `file`.
fn url_of(file: &str) -> String {
    let asset = ASSETS
        .iter()
        .find(|a| a.path.ends_with(file))
        .map_or(file, |a| a.path.as_str());
    format!("{ASSETS_PREFIX}/{asset}")
}

/// Headers every GraphiQL response carries.
fn common_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// The page's Content-Security-Policy. Everything comes from the page's own
/// origin. The only relaxations beyond that:
/// - `style-src 'nonce-…'`: GraphiQL's dialogs (Radix, through
///   `react-remove-scroll`) add `<style>` elements at run time; they carry
///   this per-response nonce (the start script hands it to the bundle as
///   `__webpack_nonce__`), so no `'unsafe-inline'` is needed;
/// - `img-src data:` and `font-src data:`: GraphiQL's stylesheet embeds its
///   fonts (and some images) as `data:` URLs.
pub fn content_security_policy(style_nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{style_nonce}'; \
         connect-src 'self'; img-src 'self' data:; font-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// What the query editor shows until the user types: where the token and
/// purpose go.
const NOTE: &str = "# Survivor data exchange\n\
#\n\
# Every operation needs your agency's bearer token and, to read or change\n\
# records, a declared purpose. Put them in the Headers pane below, e.g.\n\
#\n\
#   {\n\
#     \"Authorization\": \"Bearer <your token>\",\n\
#     \"x-exchange-purpose\": \"CASE_MANAGEMENT\"\n\
#   }\n\
#\n\
# (and \"x-exchange-justification\" when an operation asks for one),\n\
# then re-fetch the schema (the arrows button, bottom left) for the docs.\n\
# Headers are not kept in the browser's storage.\n";

/// Escapes text for an HTML attribute value or element content.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

/// The GraphiQL page for the GraphQL endpoint at `endpoint`, titled
/// `title`, with its security headers. It is rendered per request: the
/// style nonce is new each time.
pub fn page(endpoint: &str, title: &str) -> Response {
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>());
    let html = format!(
        "<!doctype html>\n\
<html lang=\"en\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n\
<title>{title}</title>\n\
<link rel=\"license\" href=\"{graphiql_licence}\">\n\
<link rel=\"stylesheet\" href=\"{css}\">\n\
<style nonce=\"{nonce}\">html, body, #graphiql {{ height: 100%; margin: 0; }}</style>\n\
</head>\n\
<body>\n\
<div id=\"graphiql\" data-endpoint=\"{endpoint}\" data-note=\"{note}\">Loading GraphiQL…</div>\n\
<script src=\"{react}\"></script>\n\
<script src=\"{react_dom}\"></script>\n\
<script src=\"{graphiql}\"></script>\n\
<script src=\"{start}\" nonce=\"{nonce}\"></script>\n\
</body>\n\
</html>\n",
        title = escape_html(title),
        endpoint = escape_html(endpoint),
        note = escape_html(NOTE),
        graphiql_licence = url_of(&format!("graphiql-{GRAPHIQL_VERSION}/LICENSE")),
        css = url_of("graphiql.min.css"),
        react = url_of("react.production.min.js"),
        react_dom = url_of("react-dom.production.min.js"),
        graphiql = url_of("graphiql.min.js"),
        start = url_of("start.js"),
    );
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.extend(common_headers());
    match HeaderValue::from_str(&content_security_policy(&nonce)) {
        Ok(csp) => {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        // Base64 is always a valid header value; never serve the page
        // without its policy all the same.
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    }
    response
}

/// The embedded file at `path` (below [`ASSETS_PREFIX`]), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Serves the embedded assets below [`ASSETS_PREFIX`]; mount it next to
/// the GraphQL route with `Router::merge`. Their paths are versioned, so
/// they are cached for a year; an unknown path is a 404.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        &format!("{ASSETS_PREFIX}/{{package}}/{{file}}"),
        get(serve_asset),
    )
}

async fn serve_asset(Path((package, file)): Path<(String, String)>) -> Response {
    let Some(asset) = asset(&format!("{package}/{file}")) else {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            "no such GraphiQL asset",
        )
            .into_response();
        response.headers_mut().extend(common_headers());
        return response;
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response();
    response.headers_mut().extend(common_headers());
    response
}

#[cfg(test)]
mod tests;

//! Unit tests of the GraphiQL page and its embedded assets.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;

async fn get_asset(path: &str) -> (Response<Body>, Vec<u8>) {
    let response = router::<()>()
        .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (Response::from_parts(parts, Body::empty()), bytes)
}

async fn page_text(endpoint: &str, title: &str) -> (Response<Body>, String) {
    let (parts, body) = page(endpoint, title).into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    )
}

fn header_of<'a>(response: &'a Response<Body>, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("text")
}

/// The values of `attribute` in every `<tag ...>` of `html`.
fn attributes(html: &str, tag: &str, attribute: &str) -> Vec<String> {
    html.split(&format!("<{tag}"))
        .skip(1)
        .filter_map(|rest| {
            let open = &rest[..rest.find('>').expect("a closed tag")];
            let start = open.find(&format!("{attribute}=\""))? + attribute.len() + 2;
            Some(open[start..start + open[start..].find('"')?].to_owned())
        })
        .collect()
}

/// The page's only scripts are files from the binary: every `<script>` has
/// a `src` below the assets prefix and nothing between its tags, and no
/// inline event handler or `javascript:` URL appears.
#[tokio::test]
async fn the_page_has_no_inline_script() {
    let (_, html) = page_text("/graphql", "Gateway").await;
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 4, "React, ReactDOM, GraphiQL, start: {html}");
    for script in scripts {
        let (open, rest) = script.split_once('>').expect("a closed tag");
        assert!(
            open.contains(&format!("src=\"{ASSETS_PREFIX}/")),
            "a script without a served src: {open}"
        );
        assert!(
            rest.starts_with("</script>"),
            "an inline script body: {rest}"
        );
    }
    let lower = html.to_lowercase();
    assert!(!lower.contains("javascript:"), "{html}");
    assert!(!lower.contains(" onload="), "{html}");
    assert!(!lower.contains(" onerror="), "{html}");
}

/// The page carries the strict policy with a fresh style nonce, and the
/// nosniff, no-referrer, no-framing and no-store headers.
#[tokio::test]
async fn the_page_carries_the_strict_content_security_policy() {
    let (first, html) = page_text("/graphql", "Gateway").await;
    let nonce = attributes(&html, "script", "nonce")
        .pop()
        .expect("the start script carries the style nonce");
    assert_eq!(
        header_of(&first, &header::CONTENT_SECURITY_POLICY),
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
             connect-src 'self'; img-src 'self' data:; font-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
    );
    let csp = header_of(&first, &header::CONTENT_SECURITY_POLICY);
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(
        header_of(&first, &header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    assert_eq!(header_of(&first, &header::REFERRER_POLICY), "no-referrer");
    assert_eq!(header_of(&first, &header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(header_of(&first, &header::CACHE_CONTROL), "no-store");
    assert_eq!(
        header_of(&first, &header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let (second, _) = page_text("/graphql", "Gateway").await;
    assert_ne!(
        header_of(&first, &header::CONTENT_SECURITY_POLICY),
        header_of(&second, &header::CONTENT_SECURITY_POLICY),
        "a new nonce for every page"
    );
}

/// The endpoint and title reach the page only as escaped text: the start
/// script reads the endpoint from a data- attribute.
#[tokio::test]
async fn the_endpoint_and_title_are_escaped() {
    let (_, html) = page_text("/x\"><script>alert(1)</script>", "<b>&'").await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("data-endpoint=\"/x&quot;&gt;&lt;script&gt;"));
    assert!(html.contains("<title>&lt;b&gt;&amp;&#39;</title>"));
    let (_, html) = page_text("/graphql", "Node").await;
    assert_eq!(attributes(&html, "div", "data-endpoint"), ["/graphql"]);
    let note = attributes(&html, "div", "data-note").concat();
    assert!(
        note.contains("Authorization") && note.contains("x-exchange-purpose"),
        "the note says which headers go in the Headers pane: {note}"
    );
}

/// Every file the page loads is served by the router, with the type of
/// its kind, the long cache and nosniff headers, and the embedded bytes.
#[tokio::test]
async fn every_asset_the_page_names_is_served_with_its_type() {
    let (_, html) = page_text("/graphql", "Gateway").await;
    let mut named = attributes(&html, "script", "src");
    named.extend(attributes(&html, "link", "href"));
    assert_eq!(named.len(), 6, "{named:?}");
    for path in named {
        let (response, bytes) = get_asset(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let expected_type = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            assert!(path.ends_with("/LICENSE"), "{path}");
            "text/plain; charset=utf-8"
        };
        assert_eq!(
            header_of(&response, &header::CONTENT_TYPE),
            expected_type,
            "{path}"
        );
        assert_eq!(
            header_of(&response, &header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            header_of(&response, &header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(
            header_of(&response, &header::REFERRER_POLICY),
            "no-referrer"
        );
        let embedded = asset(path.strip_prefix("/graphiql/").expect("below the prefix"))
            .expect("an embedded asset");
        assert_eq!(bytes, embedded.bytes, "{path}");
    }
}

/// Every embedded file is served: the three licences too.
#[tokio::test]
async fn every_embedded_file_and_licence_is_served() {
    let licences = ASSETS.iter().filter(|a| a.path.ends_with("/LICENSE"));
    assert_eq!(licences.count(), 3, "GraphiQL, React and ReactDOM");
    for asset in ASSETS.iter() {
        let (response, bytes) = get_asset(&format!("{ASSETS_PREFIX}/{}", asset.path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
        assert_eq!(
            header_of(&response, &header::CONTENT_TYPE),
            asset.content_type
        );
        assert_eq!(bytes, asset.bytes);
    }
}

/// Paths that name no embedded file are 404s: another version, another
/// file, a path climbing out, a path of the wrong shape.
#[tokio::test]
async fn an_unknown_asset_path_is_not_found() {
    for path in [
        "/graphiql/graphiql-3.8.0/graphiql.min.js",
        "/graphiql/graphiql-3.9.0/graphiql.js",
        "/graphiql/graphiql-3.9.0/graphiql.min.js.map",
        "/graphiql/graphiql-3.9.0/..%2F..%2FCargo.toml",
        "/graphiql/../Cargo.toml",
        "/graphiql/graphiql.min.js",
        "/graphiql/exchange-0000000000000000/start.js",
    ] {
        let (response, bytes) = get_asset(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !bytes.starts_with(b"!function") && bytes.len() < 100,
            "{path}"
        );
    }
}

/// The embedded vendored files are exactly the ones pinned in
/// `assets/SHA256SUMS` (which `scripts/update-graphiql.sh` checks against
/// the npm registry).
#[test]
fn the_embedded_files_match_the_pinned_sums() {
    let sums = include_str!("../assets/SHA256SUMS");
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, path) = line.split_once("  ").expect("`<sum>  <path>` lines");
        let embedded = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, embedded.bytes);
        assert_eq!(hex::encode(digest.as_ref()), sum, "{path}");
        checked += 1;
    }
    assert_eq!(checked, ASSETS.len() - 1, "every file but our start script");
}

/// The start script is served under a path that changes with its content.
#[test]
fn the_start_script_path_follows_its_content() {
    let start = ASSETS
        .iter()
        .find(|a| a.path.ends_with("/start.js"))
        .expect("the start script");
    assert_eq!(
        start.path,
        format!("exchange-{:016x}/start.js", fnv1a(START_JS))
    );
    assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
}

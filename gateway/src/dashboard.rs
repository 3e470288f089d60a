//! The public statistics dashboard (`/statistics`, no sign-in): the
//! released quarters' tables ([`crate::statistics`]) as server-rendered SVG
//! charts, each with its data table for screen readers and anyone who
//! prefers numbers, the release's metadata (period, k, rounding), and the
//! JSON and CSV downloads; the table by region also as a map of the
//! deployment's regions shaded by rate ([`crate::regions`]); in English, Spanish, French and Arabic (right
//! to left). No script, no third-party resource; the page's own stylesheet
//! only.
//!
//! Only what a release published is shown: a withheld number reads as
//! "withheld", and a chart draws it as an empty, dashed bar with no length.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_schema::statistics::{Dimension, Period, ReleasedTable};
use exchange_service::lang::Lang;
use exchange_service::pages::escape_html;
use exchange_service::translations::{Catalog, FluentArgs};
use serde::Deserialize;

use crate::http::HttpState;
use crate::regions::{MapWords, RegionMap};
use crate::statistics::Release;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::new(|lang| match lang {
        Lang::En => include_str!("../locales/en/dashboard.ftl"),
        Lang::Es => include_str!("../locales/es/dashboard.ftl"),
        Lang::Fr => include_str!("../locales/fr/dashboard.ftl"),
        Lang::Ar => include_str!("../locales/ar/dashboard.ftl"),
    })
});

/// The page's policy: its own stylesheet, nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The dashboard's words in one language.
pub struct Words {
    pub lang: Lang,
}

impl Words {
    pub fn t(&self, id: &str) -> String {
        CATALOG.translate(self.lang, id, None)
    }

    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        CATALOG.translate(self.lang, id, Some(&args))
    }

    /// A dimension's value in words: the message `value-<code>` when there
    /// is one, an age band as its range, else the code (countries).
    pub fn value(&self, value: &str) -> String {
        if let Some(band) = value.strip_prefix("AGE_") {
            return band.replace("_PLUS", "+").replace('_', "–");
        }
        let id = format!("value-{}", value.to_ascii_lowercase().replace('_', "-"));
        let text = self.t(&id);
        if text == id { value.to_owned() } else { text }
    }

    fn dimension(&self, d: Dimension) -> String {
        self.t(&format!(
            "dimension-{}",
            d.as_str().to_ascii_lowercase().replace('_', "-")
        ))
    }
}

/// One table as the page shows it.
pub struct ShownTable {
    pub id: String,
    pub title: String,
    /// The chart, SVG markup built here with every text escaped.
    pub chart: String,
    pub chart_caption: String,
    /// The first header cell (the row dimension), then the columns.
    pub header: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
    pub has_row_totals: bool,
    pub totals: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub words: Words,
    pub period: Option<String>,
    pub facts: Option<String>,
    pub periods: Vec<String>,
    pub tables: Vec<ShownTable>,
}

impl DashboardPage {
    fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .into_iter()
            .map(|l| (l.tag(), l.native_name(), l == self.words.lang))
            .collect()
    }
}

fn number(words: &Words, value: Option<u64>) -> String {
    value.map_or_else(|| words.t("withheld"), |n| n.to_string())
}

/// A horizontal bar chart of the rows' totals (a table of one dimension:
/// its cells), scaled to the largest published one.
pub fn bar_chart(words: &Words, table: &ReleasedTable, title_id: &str, title: &str) -> String {
    let two = table.dimensions.len() == 2;
    let bars: Vec<(String, Option<u64>)> = table
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let value = if two {
                table.row_totals[r]
            } else {
                table.cells[r][0]
            };
            (words.value(row), value)
        })
        .collect();
    let max = bars
        .iter()
        .filter_map(|(_, v)| *v)
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_width, bar_width, row_height) = (150.0, 330.0, 26.0);
    let height = row_height * bars.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 560 {height}\" \
         role=\"img\" aria-labelledby=\"{title_id}\"><title id=\"{title_id}\">{}</title>",
        escape_html(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 5.0 + row_height * i as f64;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            label_width - 8.0,
            y + 17.0,
            escape_html(label)
        ));
        match value {
            Some(n) => {
                let w = bar_width * (*n as f64) / (max as f64);
                svg.push_str(&format!(
                    "<rect x=\"{label_width}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" class=\"bar\"/>\
                     <text x=\"{:.1}\" y=\"{}\" class=\"value\">{n}</text>",
                    label_width + w + 6.0,
                    y + 15.0
                ));
            }
            None => {
                svg.push_str(&format!(
                    "<rect x=\"{label_width}\" y=\"{y}\" width=\"40\" height=\"20\" class=\"withheld\"/>\
                     <text x=\"{}\" y=\"{}\" class=\"value\">{}</text>",
                    label_width + 46.0,
                    y + 15.0,
                    escape_html(&words.t("withheld"))
                ));
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn shown(words: &Words, table: &ReleasedTable, regions: Option<&RegionMap>) -> ShownTable {
    let title = words.t(&format!("table-{}", table.table));
    let by_region = table.dimensions == [Dimension::Region];
    // A region reads as its name on the map, with its code.
    let label = |code: &str| -> String {
        match regions.and_then(|m| m.name(code, words.lang)) {
            Some(name) if by_region => format!("{name} ({code})"),
            _ => words.value(code),
        }
    };
    let two = table.dimensions.len() == 2;
    let mut header = vec![words.dimension(table.dimensions[0])];
    if two {
        header.extend(table.columns.iter().map(|c| words.value(c)));
        header.push(words.t("total"));
    } else {
        header.push(words.t(&format!(
            "measure-{}",
            table.measure.as_str().to_ascii_lowercase().replace('_', "-")
        )));
    }
    let rows = table
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let mut cells: Vec<String> = table.cells[r].iter().map(|v| number(words, *v)).collect();
            if two {
                cells.push(number(words, table.row_totals[r]));
            }
            (label(row), cells)
        })
        .collect();
    let mut totals: Vec<String> = if two {
        table
            .column_totals
            .iter()
            .map(|v| number(words, *v))
            .collect()
    } else {
        Vec::new()
    };
    totals.push(number(words, table.total));
    let title_id = format!("chart-{}", table.table);
    let map = regions.filter(|_| by_region);
    ShownTable {
        chart: match map {
            Some(map) => map.choropleth(
                table,
                &title_id,
                &title,
                &MapWords {
                    lang: words.lang,
                    per_100k: words.t("per-100k"),
                    withheld: words.t("withheld"),
                    no_data: words.t("no-data"),
                    rate_unit: words.t("map-rate-unit"),
                    count_unit: words.t("map-count-unit"),
                },
            ),
            None => bar_chart(words, table, &title_id, &title),
        },
        chart_caption: if map.is_some() {
            words.t("map-caption")
        } else if two {
            words.t1(
                "chart-caption-totals",
                "dimension",
                &words.dimension(table.dimensions[0]),
            )
        } else {
            words.t("chart-caption")
        },
        id: table.table.clone(),
        title,
        header,
        rows,
        has_row_totals: two,
        totals,
    }
}

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

fn language(headers: &HeaderMap, query: &LangQuery) -> Lang {
    query
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or_else(|| {
            Lang::negotiate(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        })
}

fn page(
    words: Words,
    release: Option<&Release>,
    periods: Vec<Period>,
    regions: Option<&RegionMap>,
) -> DashboardPage {
    DashboardPage {
        period: release.map(|r| r.period.clone()),
        facts: release.map(|r| {
            let mut args = FluentArgs::new();
            args.set("period", r.period.clone());
            args.set("below", (r.protection.k - 1).to_string());
            args.set("base", r.protection.rounding_base.to_string());
            args.set("agencies", r.agencies.len().to_string());
            args.set(
                "produced",
                r.produced_at.chars().take(10).collect::<String>(),
            );
            CATALOG.translate(words.lang, "release-facts", Some(&args))
        }),
        tables: release
            .map(|r| r.tables.iter().map(|t| shown(&words, t, regions)).collect())
            .unwrap_or_default(),
        periods: periods.iter().map(ToString::to_string).collect(),
        words,
    }
}

fn render(page: DashboardPage, status: StatusCode) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                "content-security-policy",
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "the dashboard did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// `GET /statistics`: the newest release.
pub async fn latest(
    State(state): State<HttpState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let words = Words {
        lang: language(&headers, &query),
    };
    // A store that cannot be read is an error, never "nothing released".
    let periods = match state.statistics.periods() {
        Ok(periods) => periods,
        Err(err) => return unavailable(err),
    };
    let release = match periods.first().map(|p| state.statistics.get(*p)) {
        None => None,
        Some(Ok(release)) => release,
        Some(Err(err)) => return unavailable(err),
    };
    render(
        page(words, release.as_ref(), periods, state.statistics.regions()),
        StatusCode::OK,
    )
}

/// `GET /statistics/{period}`: one quarter's release.
pub async fn quarter(
    State(state): State<HttpState>,
    Path(period): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let words = Words {
        lang: language(&headers, &query),
    };
    let periods = match state.statistics.periods() {
        Ok(periods) => periods,
        Err(err) => return unavailable(err),
    };
    let release = match Period::parse(&period).ok().map(|p| state.statistics.get(p)) {
        None | Some(Ok(None)) => None,
        Some(Ok(release)) => release,
        Some(Err(err)) => return unavailable(err),
    };
    let status = if release.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let mut response = render(
        page(words, release.as_ref(), periods, state.statistics.regions()),
        status,
    );
    if status == StatusCode::NOT_FOUND {
        response.headers_mut().insert(
            "x-exchange-error-code",
            HeaderValue::from_static("NOT_FOUND"),
        );
    }
    response
}

/// The releases could not be read: logged, and said as such.
fn unavailable(err: anyhow::Error) -> Response {
    tracing::error!(error = %err, "reading the statistics releases failed");
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the statistics releases cannot be read now",
    )
        .into_response();
    response.headers_mut().insert(
        "x-exchange-error-code",
        HeaderValue::from_static("INTERNAL_SERVER_ERROR"),
    );
    response
}

static STYLESHEET: LazyLock<String> =
    LazyLock::new(|| exchange_service::pages::stylesheet(include_str!("../static/dashboard.css")));

/// `GET /statistics/dashboard.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_schema::statistics::{CATALOGUE, CountTable, Protection, protect};

    #[test]
    fn every_language_has_every_message() {
        let problems = CATALOG.completeness_problems();
        assert!(problems.is_empty(), "{problems:?}");
        for lang in Lang::ALL {
            let words = Words { lang };
            for table in CATALOGUE {
                let id = format!("table-{}", table.id);
                assert_ne!(words.t(&id), id, "{lang:?} {id}");
                for d in table.dimensions {
                    assert!(!words.dimension(*d).starts_with("dimension-"));
                }
            }
        }
    }

    #[test]
    fn a_chart_draws_withheld_values_without_a_length_and_escapes_labels() {
        let spec = &CATALOGUE[1];
        let mut counts = CountTable::new(spec.id);
        counts.cells.insert(vec!["RO".into()], 40);
        counts.cells.insert(vec!["UA".into()], 3);
        counts.cells.insert(vec!["<b>".into()], 30);
        let (table, _) = protect(spec, &counts, Protection::default());
        let words = Words { lang: Lang::En };
        let svg = bar_chart(&words, &table, "c", "Survivors <by> nationality");
        assert!(svg.contains("Survivors &lt;by&gt; nationality"));
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("class=\"withheld\""));
        assert!(svg.contains(">withheld<"));
    }
}

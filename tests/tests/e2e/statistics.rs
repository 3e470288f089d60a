//! A statistics release across the federation: a statistician asks the
//! gateway for an ended quarter's release; every node counts its own
//! records (and audits it), the gateway sums them, withholds the small
//! cells and what would give them away, rounds, keeps the release and
//! audits it; the release is public as JSON and CSV; a quarter is never
//! released twice, an unfinished one not at all, and only a statistician
//! for the STATISTICS purpose may ask; the public dashboard shows it in
//! headless Chromium (Debian's, installed by `.ci/run`; never skipped).

use exchange_schema::statistics::Period;
use exchange_schema::{AuditKind, Role};
use exchange_test_kit::browser::{start_browser, start_driver, wait_for};
use exchange_test_kit::{CLINIC, LEGAL, OVERSIGHT, SHELTER, TestFederation};
use fantoccini::Locator;
use serde_json::{Value, json};

fn last_quarter() -> Period {
    let now = time::OffsetDateTime::now_utc();
    Period::of(Period::of(now).start() - time::Duration::days(1))
}

async fn register(federation: &TestFederation, agency: &str, n: usize, nationality: &str) {
    for i in 0..n {
        let mut input = exchange_test_kit::survivor_input(&format!("{agency} {i}"));
        input["identity"]["nationality"] = json!(nationality);
        // Each agency's survivors were identified in its own region.
        let region = match agency {
            SHELTER => "XZ-N",
            LEGAL => "XZ-C",
            _ => "XZ-S",
        };
        input["case"]["regionOfIdentification"] = json!(region);
        federation
            .gateway_gql(
                &federation.caseworker(agency),
                "CASE_MANAGEMENT",
                exchange_test_kit::survivors::REGISTER_SURVIVOR,
                json!({ "input": input }),
            )
            .await
            .id("registerSurvivor");
    }
}

async fn ask(
    federation: &TestFederation,
    token: &str,
    purpose: Option<&str>,
    period: &str,
) -> (u16, Value) {
    let mut request = federation
        .client
        .post(format!(
            "{}/statistics/releases/{period}",
            federation.gateway_base
        ))
        .bearer_auth(token);
    if let Some(purpose) = purpose {
        request = request.header("x-exchange-purpose", purpose);
    }
    let response = request.send().await.expect("gateway");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

fn table<'a>(release: &'a Value, name: &str) -> &'a Value {
    release["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statistician_releases_an_ended_quarter_once_protected_and_public() {
    let federation = TestFederation::start().await;
    register(&federation, SHELTER, 9, "RO").await;
    register(&federation, SHELTER, 2, "UA").await;
    register(&federation, LEGAL, 4, "RO").await;
    register(&federation, CLINIC, 1, "UA").await;
    let quarter = last_quarter();
    let at = (quarter.start() + time::Duration::days(5)).unix_timestamp() * 1000;
    for agency in [SHELTER, LEGAL, CLINIC] {
        sqlx::query("UPDATE survivors SET created_at = $1")
            .bind(at)
            .execute(federation.node(agency).state.db.pool())
            .await
            .expect("backdating");
    }
    let statistician = federation.token(OVERSIGHT, &[Role::Statistician]);

    // Refusals first, each with its code, and nothing kept.
    let (status, body) = ask(
        &federation,
        &federation.caseworker(SHELTER),
        Some("STATISTICS"),
        &quarter.to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"), "{body}");
    let (status, body) = ask(&federation, &statistician, None, &quarter.to_string()).await;
    assert_eq!((status, code(&body)), (400, "PURPOSE_REQUIRED"), "{body}");
    let (status, body) = ask(
        &federation,
        &statistician,
        Some("AUDIT"),
        &quarter.to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"), "{body}");
    let current = Period::of(time::OffsetDateTime::now_utc()).to_string();
    let (status, body) = ask(&federation, &statistician, Some("STATISTICS"), &current).await;
    assert_eq!((status, code(&body)), (400, "BAD_USER_INPUT"), "{body}");
    let (status, body) = ask(&federation, &statistician, Some("STATISTICS"), "2026-Q9").await;
    assert_eq!((status, code(&body)), (400, "BAD_USER_INPUT"), "{body}");
    let (status, body) = ask(
        &federation,
        "not-a-token",
        Some("STATISTICS"),
        &quarter.to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");

    let (status, release) = ask(
        &federation,
        &statistician,
        Some("STATISTICS"),
        &quarter.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{release}");
    assert_eq!(release["period"], quarter.to_string());
    assert_eq!(release["protection"], json!({ "k": 10, "roundingBase": 5 }));
    let nationality = table(&release, "survivors-by-nationality");
    let rows: Vec<&str> = nationality["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let cell = |value: &str| {
        nationality["cells"][rows.iter().position(|r| *r == value).unwrap()][0].clone()
    };
    // 3 from Ukraine: withheld. With the total (16, published rounded to
    // 15) the 13 from Romania would give the 3 away, so they are withheld
    // too (secondary suppression keeps the total, withholds a cell).
    assert_eq!(cell("UA"), Value::Null, "{nationality}");
    assert_eq!(cell("RO"), Value::Null, "{nationality}");
    assert_eq!(nationality["total"], json!(15), "{nationality}");
    // Every survivor is FEMALE, AGE_25_34: one cell of 16 (rounded to 15)
    // and zeros; nothing small to hide.
    let by_sex = table(&release, "survivors-by-sex-and-age");
    assert_eq!(by_sex["total"], json!(15), "{by_sex}");
    // By region: 11 in the north (published, 10); 4 and 1 withheld, and
    // their sum alone is known.
    let by_region = table(&release, "survivors-by-region");
    assert_eq!(
        by_region["rows"],
        json!(["XZ-C", "XZ-N", "XZ-S"]),
        "{by_region}"
    );
    assert_eq!(
        by_region["cells"],
        json!([[null], [10], [null]]),
        "{by_region}"
    );

    // Public, as stored: JSON, CSV, the list.
    let public = federation
        .client
        .get(format!(
            "{}/statistics/releases/{quarter}.json",
            federation.gateway_base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 200);
    assert_eq!(public.json::<Value>().await.unwrap(), release);
    let csv = federation
        .client
        .get(format!(
            "{}/statistics/releases/{quarter}.csv",
            federation.gateway_base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("period,k,rounding_base,table,measure,"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "{quarter},10,5,survivors-by-nationality,SURVIVORS,NATIONALITY,TOTAL,,,15\n"
        )),
        "{csv}"
    );
    assert!(csv.contains(&format!(
        "{quarter},10,5,survivors-by-nationality,SURVIVORS,NATIONALITY,UA,,,\n"
    )));
    let list = published_releases(&federation).await;
    assert_eq!(list["releases"], json!([quarter.to_string()]));

    // Never twice.
    let (status, body) = ask(
        &federation,
        &statistician,
        Some("STATISTICS"),
        &quarter.to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "CONFLICT"), "{body}");

    // Each node counted and said so; the gateway kept its entries.
    for agency in [SHELTER, LEGAL, CLINIC] {
        let counted = federation
            .node(agency)
            .audit_events()
            .await
            .into_iter()
            .filter(|e| e.kind == AuditKind::StatisticsCounted)
            .count();
        assert_eq!(counted, 1, "{agency}");
    }
    let gateway = federation.gateway_events().await;
    assert!(
        gateway
            .iter()
            .any(|e| e.kind == AuditKind::StatisticsCounted && e.reason == "RELEASE_PRODUCED")
    );
    assert!(
        gateway
            .iter()
            .filter(|e| e.kind == AuditKind::Denial)
            .count()
            >= 6
    );

    // The public dashboard in a real browser, in Arabic (right to left)
    // and English: a chart and a table for every table of the release,
    // the withheld numbers said as withheld, the regions named in the
    // page's language.
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = start_browser(&driver, profile.path()).await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for (lang, direction, withheld, north) in [
        ("ar", "rtl", "محجوب", "السهول الشمالية (XZ-N)"),
        ("en", "ltr", "withheld", "Northern Plains (XZ-N)"),
    ] {
        browser
            .goto(&format!(
                "{}/statistics?lang={lang}",
                federation.gateway_base
            ))
            .await
            .expect("dashboard");
        wait_for(&browser, "#survivors-by-nationality table").await;
        let html = browser.find(Locator::Css("html")).await.expect("html");
        assert_eq!(
            html.attr("dir").await.expect("dir").as_deref(),
            Some(direction)
        );
        let charts = browser
            .find_all(Locator::Css("section.release-table svg.chart"))
            .await
            .expect("charts");
        assert_eq!(charts.len(), exchange_schema::statistics::CATALOGUE.len());
        let table = browser
            .find(Locator::Css("#survivors-by-nationality table"))
            .await
            .expect("table")
            .text()
            .await
            .expect("text");
        assert!(table.contains(withheld), "{table}");
        assert!(table.contains("15"), "{table}");
        // The map by region: the north shaded (the highest rate), the two
        // withheld regions hatched, the three without survivors blank; the
        // table names each region.
        let map = browser
            .find(Locator::Css("#survivors-by-region svg.map"))
            .await
            .expect("the map by region");
        let shaded = map
            .find_all(Locator::Css("path.shade-4"))
            .await
            .expect("shaded");
        assert_eq!(shaded.len(), 1);
        let hatched = map
            .find_all(Locator::Css("path.withheld-region"))
            .await
            .expect("hatched");
        assert_eq!(hatched.len(), 2);
        let blank = map
            .find_all(Locator::Css("path.no-data"))
            .await
            .expect("blank");
        assert_eq!(blank.len(), 3);
        let regions = browser
            .find(Locator::Css("#survivors-by-region table"))
            .await
            .expect("table")
            .text()
            .await
            .expect("text");
        // In the page's language, from the map file's `name:<tag>`.
        assert!(regions.contains(north), "{regions}");
        let section = browser
            .find(Locator::Css("#survivors-by-region"))
            .await
            .expect("the section by region");
        let png = section.screenshot().await.expect("map screenshot");
        std::fs::write(dir.join(format!("dashboard-map-{lang}.png")), png).expect("writing");
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("dashboard-{lang}.png")), png).expect("writing");
    }
    browser.close().await.expect("closing the browser");

    // The gateway's log cannot be written: the release of another quarter
    // is refused and never served (it is kept only once its entry is).
    let earlier = Period::of(quarter.start() - time::Duration::days(1));
    federation.gateway.audit.db().pool().close().await;
    let (status, body) = ask(
        &federation,
        &statistician,
        Some("STATISTICS"),
        &earlier.to_string(),
    )
    .await;
    assert_eq!((status, code(&body)), (503, "AUDIT_UNAVAILABLE"), "{body}");
    let unserved = federation
        .client
        .get(format!(
            "{}/statistics/releases/{earlier}.json",
            federation.gateway_base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unserved.status().as_u16(), 404);
}

/// A node that cannot count stops the release: a sum without one agency
/// would be published as the federation's and be wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_needs_every_node() {
    let mut federation = TestFederation::start().await;
    let statistician = federation.token(OVERSIGHT, &[Role::Statistician]);
    federation.node_mut(CLINIC).stop().await;
    let quarter = last_quarter().to_string();
    let (status, body) = ask(&federation, &statistician, Some("STATISTICS"), &quarter).await;
    assert_eq!((status, code(&body)), (502, "NODE_UNAVAILABLE"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(CLINIC)
    );
    let list = published_releases(&federation).await;
    assert_eq!(list["releases"], json!([]));
}

/// The periods the gateway lists as released.
async fn published_releases(federation: &TestFederation) -> Value {
    let answer = federation
        .client
        .get(format!("{}/statistics/releases", federation.gateway_base))
        .send()
        .await
        .expect("the release list");
    answer.json().await.expect("a JSON list")
}

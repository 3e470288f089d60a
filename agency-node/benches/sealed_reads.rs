//! What encryption at rest costs a read: one survivor's record, and a page
//! of 20, read through the store (each category opened with the survivor's
//! data keys, fetched from the key store and unwrapped by the KEK: "cold",
//! with no key cache; "warm", with the node's default cache), against
//! the same reads of the same records kept in clear (the layout before
//! encryption at rest: a plain table of the same columns, same statement,
//! same JSON decoding), in the same run on SQLite.
//!
//! Run: `cargo bench -p agency-node --bench sealed_reads`

use std::sync::Arc;
use std::time::{Duration, Instant};

use agency_node::records::{CaseDetails, Contact, HealthNotes, Identity, LegalStatus};
use agency_node::store::survivors::{self, SurvivorRecord};
use agency_node::store::{from_ms, to_ms};
use agency_node::vault::{FileKek, Vault};
use serde_json::json;
use sqlx::{AnyConnection, Row as _};

const SURVIVORS: usize = 2_000;
const PAGE: i64 = 20;
const RUNS: usize = 400;

fn record(i: usize) -> SurvivorRecord {
    let at = from_ms(1_700_000_000_000 + i as i64);
    let input = json!({
        "identity": { "given_name": format!("Person {i}"), "family_name": "Example",
                      "date_of_birth": "1990-05-01", "nationality": "RO", "languages": ["en", "ro"],
                      "sex": "FEMALE", "gender_identity": "WOMAN" },
        "contact": { "safe_channel": "through caseworker", "phone": "+00 000 0000",
                     "current_location": "Safe house 7" },
        "case": { "exploitation_types": ["FORCED_LABOUR"], "exploitation_other": null,
                  "countries_of_exploitation": ["DE"], "risk_level": "HIGH",
                  "intake_date": "2026-10-01", "needs": ["SHELTER"],
                  "summary": "an invented summary of an invented case" },
        "health": { "medical_notes": "an invented note of some length, as notes are",
                    "psychosocial_notes": "another invented note" },
        "legal": { "immigration_status": "pending", "proceedings": ["invented case"] },
    });
    SurvivorRecord {
        id: format!("s{i:06}"),
        created_at: at,
        updated_at: at,
        created_by: "bench".into(),
        identity: Some(fill::<Identity>(&input["identity"])),
        contact: Some(fill::<Contact>(&input["contact"])),
        case: Some(serde_json::from_value::<CaseDetails>(input["case"].clone()).unwrap()),
        health: Some(fill::<HealthNotes>(&input["health"])),
        legal: Some(fill::<LegalStatus>(&input["legal"])),
        erased: Vec::new(),
    }
}

/// A category from the fields given, the rest left at their defaults.
fn fill<T: Default + serde::Serialize + serde::de::DeserializeOwned>(
    given: &serde_json::Value,
) -> T {
    let mut value = serde_json::to_value(T::default()).unwrap();
    for (k, v) in given.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

/// The read before encryption at rest: the row, and each category decoded.
fn decode_plain(row: &sqlx::any::AnyRow) -> usize {
    let mut decoded = 0;
    for column in ["identity", "contact", "case_details", "health", "legal"] {
        let text: Option<String> = row.try_get(column).unwrap();
        if let Some(text) = text {
            let _: serde_json::Value = serde_json::from_str(&text).unwrap();
            decoded += 1;
        }
    }
    decoded
}

async fn plain_one(conn: &mut AnyConnection, id: &str) -> usize {
    let row = sqlx::query("SELECT * FROM plain_survivors WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap();
    decode_plain(&row)
}

async fn plain_page(conn: &mut AnyConnection, after: (i64, &str)) -> usize {
    let rows = sqlx::query(
        "SELECT * FROM plain_survivors WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(after.0)
    .bind(after.1)
    .bind(PAGE)
    .fetch_all(conn)
    .await
    .unwrap();
    rows.iter().map(decode_plain).sum()
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = agency_node::store::open(
        &agency_node::store::sqlite_url(dir.path()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let vault = Vault::open(
        Arc::new(FileKek::load_or_generate(&dir.path().join("kek")).unwrap()),
        &exchange_service::db::sqlite_url(dir.path(), agency_node::vault::KEY_STORE_FILE),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query(
        "CREATE TABLE plain_survivors (id TEXT PRIMARY KEY NOT NULL, created_at INTEGER NOT NULL, \
         updated_at INTEGER NOT NULL, created_by TEXT NOT NULL, identity TEXT, contact TEXT, \
         case_details TEXT, health TEXT, legal TEXT)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("CREATE INDEX plain_by_created ON plain_survivors (created_at, id)")
        .execute(&mut *conn)
        .await
        .unwrap();
    for i in 0..SURVIVORS {
        let r = record(i);
        survivors::insert(&mut conn, &vault, &r).await.unwrap();
        let json = |v: serde_json::Value| Some(v.to_string());
        sqlx::query("INSERT INTO plain_survivors VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&r.id)
            .bind(to_ms(r.created_at))
            .bind(to_ms(r.updated_at))
            .bind(&r.created_by)
            .bind(json(serde_json::to_value(&r.identity).unwrap()))
            .bind(json(serde_json::to_value(&r.contact).unwrap()))
            .bind(json(serde_json::to_value(&r.case).unwrap()))
            .bind(json(serde_json::to_value(&r.health).unwrap()))
            .bind(json(serde_json::to_value(&r.legal).unwrap()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    let cold = Vault::open_with_cache(
        Arc::new(FileKek::load_or_generate(&dir.path().join("kek")).unwrap()),
        &exchange_service::db::sqlite_url(dir.path(), agency_node::vault::KEY_STORE_FILE),
        Duration::from_secs(10),
        Duration::ZERO,
    )
    .await
    .unwrap();
    println!(
        "SQLite, {SURVIVORS} survivors with every category filled, p50 of {RUNS} reads each, \
         sealed and clear alternating"
    );
    for (label, vault) in [("no key cache", &cold), ("key cache (default)", &vault)] {
        let [so, co, sp, cp] = measure(&mut conn, vault).await;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!("{label}:");
        println!(
            "  one record : sealed {:>8.1} us   clear {:>8.1} us   sealed/clear {:.2}x   (+{:.1} us)",
            us(so),
            us(co),
            so.as_secs_f64() / co.as_secs_f64(),
            us(so) - us(co)
        );
        println!(
            "  page of {PAGE} : sealed {:>8.1} us   clear {:>8.1} us   sealed/clear {:.2}x   \
             (+{:.1} us, {:.1} us per record)",
            us(sp),
            us(cp),
            sp.as_secs_f64() / cp.as_secs_f64(),
            us(sp) - us(cp),
            (us(sp) - us(cp)) / PAGE as f64
        );
    }
}

/// p50s of: one record sealed, the same in clear, a page sealed, the same
/// in clear.
async fn measure(conn: &mut AnyConnection, vault: &Vault) -> [Duration; 4] {
    let (mut sealed_one, mut clear_one, mut sealed_page, mut clear_page) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let i = (run * 7919) % SURVIVORS;
        let id = format!("s{i:06}");
        // Alternate which goes first, so neither always meets a warm cache.
        for sealed in [run % 2 == 0, run % 2 == 1] {
            let started = Instant::now();
            if sealed {
                let r = survivors::get(conn, vault, &id).await.unwrap();
                assert!(r.is_some_and(|r| r.health.is_some()));
                sealed_one.push(started.elapsed());
            } else {
                assert_eq!(plain_one(conn, &id).await, 5);
                clear_one.push(started.elapsed());
            }
        }
        let after = (
            1_700_000_000_000 + i.min(SURVIVORS - 40) as i64,
            id.as_str(),
        );
        for sealed in [run % 2 == 0, run % 2 == 1] {
            let started = Instant::now();
            if sealed {
                let page = survivors::page(conn, vault, Some((after.0, after.1.to_owned())), PAGE)
                    .await
                    .unwrap();
                assert_eq!(page.len() as i64, PAGE);
                sealed_page.push(started.elapsed());
            } else {
                assert_eq!(plain_page(conn, after).await as i64, PAGE * 5);
                clear_page.push(started.elapsed());
            }
        }
    }
    [
        p50(sealed_one),
        p50(clear_one),
        p50(sealed_page),
        p50(clear_page),
    ]
}

//! How long a page of the `referrals` listing takes to read as a node's
//! referrals grow, on SQLite and (when `EXCHANGE_TEST_POSTGRES_URL` is set,
//! as `scripts/postgres.sh` does) on PostgreSQL: the first page and a page
//! deep in the listing, for one direction and for both. Against a baseline
//! measured in the same run: the single statement with `to_agency = $1 OR
//! from_agency = $1` that both directions used until 2026-11-23, which
//! reads every referral of the agency and sorts them for each page.
//!
//! Run: `source scripts/postgres.sh; cargo bench -p agency-node --bench referral_pages`

use std::time::{Duration, Instant};

use agency_node::store::from_ms;
use agency_node::store::referrals::{self, Direction, ReferralEvent, ReferralRecord};
use agency_node::store::survivors::{self, SurvivorRecord};
use agency_node::vault::{FileKek, Vault};
use exchange_schema::{AgencyId, ReferralStatus, ServiceKind, Urgency};
use exchange_test_kit::scratch::ScratchDatabase;
use sqlx::AnyConnection;

const SIZES: [usize; 3] = [100, 2_000, 20_000];
const PAGE: i64 = 20;
const RUNS: usize = 200;
const REQUESTER: &str = "legal-aid-city";

/// The statement both directions used before 2026-11-23.
fn single_or_statement(after: bool) -> String {
    let cursor = if after {
        " AND (created_at, id) < ($2, $3)"
    } else {
        ""
    };
    let limit = if after { "$4" } else { "$2" };
    format!(
        "SELECT id, survivor_id, from_agency, to_agency, service, urgency, status, notes, \
         created_at, updated_at, created_by FROM referrals \
         WHERE (to_agency = $1 OR from_agency = $1){cursor} \
         ORDER BY created_at DESC, id DESC LIMIT {limit}"
    )
}

/// Adds referrals until the node holds `total`: a quarter sent by the
/// requester, a quarter sent to it, the rest between two other agencies.
async fn fill(conn: &mut AnyConnection, vault: &Vault, from: usize, total: usize) {
    let agency = |a: &str| AgencyId::parse(a).unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    for i in from..total {
        let (from_agency, to_agency) = match i % 4 {
            0 => ("shelter-north", REQUESTER),
            1 => (REQUESTER, "clinic-east"),
            _ => ("shelter-north", "clinic-east"),
        };
        let at = from_ms(1_700_000_000_000 + i as i64 * 1_000);
        let record = ReferralRecord {
            id: format!("referral-{i:06}"),
            survivor_id: "survivor".into(),
            from_agency: agency(from_agency),
            to_agency: agency(to_agency),
            service: ServiceKind::LegalAid,
            urgency: Urgency::Routine,
            status: ReferralStatus::Pending,
            notes: None,
            created_at: at,
            updated_at: at,
            created_by: "bench".into(),
            parent_id: None,
        };
        let first = ReferralEvent {
            status: ReferralStatus::Pending,
            at,
            by_agency: agency(from_agency),
            by_user: "bench".into(),
            note: None,
        };
        referrals::insert(conn, vault, &record, &first)
            .await
            .unwrap();
    }
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
}

/// The median of `RUNS` reads of one page.
async fn p50(
    conn: &mut AnyConnection,
    vault: &Vault,
    direction: Direction,
    after: Option<(i64, String)>,
    old: bool,
) -> Duration {
    let requester = AgencyId::parse(REQUESTER).unwrap();
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let rows = if old {
            let sql = single_or_statement(after.is_some());
            let mut query = sqlx::query(&sql).bind(REQUESTER);
            if let Some((at, id)) = &after {
                query = query.bind(*at).bind(id.as_str());
            }
            query.bind(PAGE).fetch_all(&mut *conn).await.unwrap().len()
        } else {
            referrals::page(conn, vault, &requester, direction, &[], after.clone(), PAGE)
                .await
                .unwrap()
                .len()
        };
        times.push(started.elapsed());
        assert!(rows > 0, "every measured page holds referrals");
    }
    times.sort_unstable();
    times[RUNS / 2]
}

async fn run(name: &str, url: &str, keys: &std::path::Path) {
    let db = agency_node::store::open(url, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let vault = Vault::open(
        std::sync::Arc::new(FileKek::from_bytes(&[9u8; 32]).unwrap()),
        &exchange_service::db::sqlite_url(keys, agency_node::vault::KEY_STORE_FILE),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let at = from_ms(1_600_000_000_000);
    survivors::insert(
        &mut conn,
        &vault,
        &SurvivorRecord {
            id: "survivor".into(),
            created_at: at,
            updated_at: at,
            created_by: "bench".into(),
            identity: None,
            contact: None,
            case: None,
            health: None,
            legal: None,
            erased: Vec::new(),
        },
    )
    .await
    .unwrap();
    let mut held = 0;
    for size in SIZES {
        fill(&mut conn, &vault, held, size).await;
        held = size;
        // A cursor halfway down the listing: the newest referral concerning
        // the requester in the older half.
        let middle = (size / 2) as i64;
        let deep = Some((
            1_700_000_000_000 + middle * 1_000,
            format!("referral-{middle:06}"),
        ));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for (label, after) in [("first page", None), ("halfway", deep)] {
            let incoming = p50(&mut conn, &vault, Direction::Incoming, after.clone(), false).await;
            let both = p50(&mut conn, &vault, Direction::Both, after.clone(), false).await;
            let before = p50(&mut conn, &vault, Direction::Both, after, true).await;
            println!(
                "{name:<10} {size:>6} referrals, {label:<10}: incoming {:.3} ms  both {:.3} ms  \
                 both before (one OR) {:.3} ms  (before / now {:.1}x)",
                ms(incoming),
                ms(both),
                ms(before),
                before.as_secs_f64() / both.as_secs_f64()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let dir = tempfile::tempdir().unwrap();
    println!(
        "a page of {PAGE} referrals (p50 of {RUNS} reads), the requester sending or receiving half of them"
    );
    let keys = tempfile::tempdir().unwrap();
    run(
        "SQLite",
        &agency_node::store::sqlite_url(dir.path()),
        keys.path(),
    )
    .await;
    let keys = tempfile::tempdir().unwrap();
    match ScratchDatabase::from_env("exchange_bench")
        .await
        .expect("creating a scratch PostgreSQL database")
    {
        Some(database) => run("PostgreSQL", database.url(), keys.path()).await,
        None => println!(
            "PostgreSQL  not measured: set EXCHANGE_TEST_POSTGRES_URL (source scripts/postgres.sh)"
        ),
    }
}

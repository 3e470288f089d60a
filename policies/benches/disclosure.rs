//! Cost of disclosure decisions: one record, a page of 100 survivors x 5
//! categories with mixed grants (first request of its kind, and a later
//! request sharing the engine's answers), and the naive baseline that asks
//! Cedar once per field, in the same run.
//!
//! Run: `cargo bench -p exchange-policies`

use divan::{Bencher, black_box};
use exchange_policies::{EngineOptions, GrantFacts, PolicyEngine, RequestFacts};
use exchange_schema::{AgencyId, AgencyKind, Category, Purpose, Role};
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn main() {
    divan::main();
}

fn engine() -> PolicyEngine {
    PolicyEngine::baseline(EngineOptions::default()).expect("the baseline is valid")
}

fn requester() -> RequestFacts {
    RequestFacts {
        agency: AgencyId::parse("legal-aid-east").unwrap(),
        agency_kind: AgencyKind::LegalAid,
        roles: vec![Role::Caseworker],
        user: "caseworker-7".to_owned(),
        purpose: Purpose::LegalAssistance,
        justification: None,
        now: NOW,
    }
}

fn owner() -> AgencyId {
    AgencyId::parse("shelter-north").unwrap()
}

/// Survivor `i`'s grants: none, active on three categories, expired,
/// revoked plus another purpose, or active on everything (mixed).
fn grants(i: usize) -> Vec<GrantFacts> {
    let grant = |id: String, categories: &[Category], purposes: &[Purpose]| GrantFacts {
        id,
        grantee: AgencyId::parse("legal-aid-east").unwrap(),
        categories: categories.to_vec(),
        purposes: purposes.to_vec(),
        valid_from: NOW - Duration::days(10),
        valid_until: Some(NOW + Duration::days(10)),
        revoked_at: None,
    };
    let legal = [Purpose::LegalAssistance];
    match i % 5 {
        0 => vec![],
        1 => vec![grant(
            format!("g{i}"),
            &[Category::Identity, Category::Legal, Category::Case],
            &legal,
        )],
        2 => vec![GrantFacts {
            valid_until: Some(NOW - Duration::days(1)),
            ..grant(
                format!("g{i}"),
                &[Category::Identity, Category::Legal],
                &legal,
            )
        }],
        3 => vec![
            GrantFacts {
                revoked_at: Some(NOW - Duration::hours(2)),
                ..grant(format!("g{i}a"), Category::ALL, &legal)
            },
            grant(format!("g{i}b"), &[Category::Case], &[Purpose::Referral]),
        ],
        _ => vec![grant(format!("g{i}"), Category::ALL, &legal)],
    }
}

fn page() -> Vec<Vec<GrantFacts>> {
    (0..100).map(grants).collect()
}

/// One record on a scope that has already seen the request's facts: the
/// steady-state cost per record.
#[divan::bench]
fn record_warm_scope(bencher: Bencher) {
    let engine = engine();
    let owner = owner();
    let grants = grants(1);
    let mut scope = engine.scope(requester());
    scope.disclose(&owner, &grants, None);
    bencher.bench_local(|| black_box(scope.disclose(&owner, black_box(&grants), None)));
}

/// The first record of the first request of its kind: five Cedar
/// evaluations.
#[divan::bench]
fn record_cold_scope(bencher: Bencher) {
    let engine = engine();
    let owner = owner();
    let grants = grants(1);
    bencher.bench_local(|| {
        engine.clear_decision_cache();
        let mut scope = engine.scope(requester());
        black_box(scope.disclose(&owner, black_box(&grants), None))
    });
}

/// A page of 100 survivors x 5 categories, mixed grants: the first request
/// of its kind (nothing shared yet; ten Cedar evaluations).
#[divan::bench]
fn page_100_first_request(bencher: Bencher) {
    let engine = engine();
    let owner = owner();
    let page = page();
    bencher.bench_local(|| {
        engine.clear_decision_cache();
        let mut scope = engine.scope(requester());
        let records: Vec<_> = page
            .iter()
            .map(|g| scope.disclose(&owner, g, None))
            .collect();
        black_box(records)
    });
}

/// The same page in a later request by a user with the same agency, roles
/// and purpose: the engine's shared answers, no Cedar evaluation.
#[divan::bench]
fn page_100_cached(bencher: Bencher) {
    let engine = engine();
    let owner = owner();
    let page = page();
    bencher.bench_local(|| {
        let mut scope = engine.scope(requester());
        let records: Vec<_> = page
            .iter()
            .map(|g| scope.disclose(&owner, g, None))
            .collect();
        black_box(records)
    });
}

/// The same page asking Cedar once per field (500 evaluations): naive.
#[divan::bench]
fn page_100_naive(bencher: Bencher) {
    let engine = engine();
    let owner = owner();
    let page = page();
    bencher.bench_local(|| {
        let mut scope = engine.scope(requester());
        let records: Vec<_> = page
            .iter()
            .map(|g| scope.disclose_uncached(&owner, g, None))
            .collect();
        black_box(records)
    });
}

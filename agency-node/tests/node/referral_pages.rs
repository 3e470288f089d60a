//! Pages of referrals, read from the store as the `referrals` listing reads
//! them: for every direction, status filter and cursor, the pages hold
//! exactly the referrals the requesting agency sent or received, newest
//! first, without gaps or repeats, a referral it sent to itself once; and
//! (on SQLite, whose plans the test can read reliably) no page reads the
//! whole table.
//!
//! A node only ever stores referrals its own agency sent, so the listing's
//! `ALL` direction cannot meet both kinds at one node through the API; the
//! rows here are written straight to the store to cover what the query
//! must handle whatever the data.

use agency_node::store::referrals::{self, Direction, ReferralEvent, ReferralRecord};
use agency_node::store::{from_ms, to_ms};
use exchange_schema::{AgencyId, ReferralStatus, ServiceKind, Urgency};
use sqlx::Row as _;

use crate::common::*;

const PAGE: i64 = 3;
const DIRECTIONS: [Direction; 3] = [Direction::Incoming, Direction::Outgoing, Direction::Both];

/// Forty referrals at one node between three agencies, in every direction
/// (one agency referring to itself too), with shared creation times so that
/// the cursor's `id` tie-break is exercised, and ids not in time order.
async fn stored_referrals(node: &TestNode) -> Vec<ReferralRecord> {
    node.register_full_survivor("Paged").await;
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let survivor: String = sqlx::query("SELECT id FROM survivors")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
    let agency = |a: &str| AgencyId::parse(a).unwrap();
    let statuses = [
        ReferralStatus::Pending,
        ReferralStatus::Accepted,
        ReferralStatus::Declined,
        ReferralStatus::Completed,
        ReferralStatus::Withdrawn,
    ];
    let mut made = Vec::new();
    for i in 0..40usize {
        let (from, to) = match i % 4 {
            0 => (OWNER, LEGAL),
            1 => (LEGAL, OWNER),
            2 => (LEGAL, CLINIC),
            _ => (OWNER, OWNER),
        };
        // Three referrals to each millisecond.
        let at = from_ms(1_700_000_000_000 + (i / 3) as i64);
        let record = ReferralRecord {
            id: format!("referral-{:02}", (i * 7) % 40),
            survivor_id: survivor.clone(),
            from_agency: agency(from),
            to_agency: agency(to),
            service: ServiceKind::LegalAid,
            urgency: Urgency::Routine,
            status: statuses[i % statuses.len()],
            notes: None,
            created_at: at,
            updated_at: at,
            created_by: "paging-test".into(),
            parent_id: None,
        };
        let first = ReferralEvent {
            status: ReferralStatus::Pending,
            at,
            by_agency: agency(from),
            by_user: "paging-test".into(),
            note: None,
        };
        referrals::insert(&mut conn, &node.state.vault, &record, &first)
            .await
            .unwrap();
        made.push(record);
    }
    made
}

/// What a listing must return, in order: the referrals `requester` sent or
/// received (by `direction`), in `statuses` when not empty, newest first.
fn expected(
    all: &[ReferralRecord],
    requester: &str,
    direction: Direction,
    statuses: &[ReferralStatus],
) -> Vec<String> {
    let mut wanted: Vec<&ReferralRecord> = all
        .iter()
        .filter(|r| {
            let to = r.to_agency.as_str() == requester;
            let from = r.from_agency.as_str() == requester;
            match direction {
                Direction::Incoming => to,
                Direction::Outgoing => from,
                Direction::Both => to || from,
            }
        })
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
        .collect();
    wanted.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    wanted.into_iter().map(|r| r.id.clone()).collect()
}

/// Every direction, status filter and requester pages through exactly its
/// referrals, newest first, without gaps or repeats.
async fn every_page_holds_the_requesters_referrals_in_order(backend: Backend) {
    let node = TestNode::start(backend).await;
    let all = stored_referrals(&node).await;
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    let filters: [&[ReferralStatus]; 3] = [
        &[],
        &[ReferralStatus::Pending],
        &[ReferralStatus::Pending, ReferralStatus::Declined],
    ];
    for requester in [OWNER, LEGAL, CLINIC] {
        let agency = AgencyId::parse(requester).unwrap();
        for direction in DIRECTIONS {
            for statuses in filters {
                let want = expected(&all, requester, direction, statuses);
                let mut got = Vec::new();
                let mut after = None;
                loop {
                    let page = referrals::page(
                        &mut conn,
                        &node.state.vault,
                        &agency,
                        direction,
                        statuses,
                        after,
                        PAGE,
                    )
                    .await
                    .unwrap();
                    assert!(page.len() as i64 <= PAGE);
                    let Some(last) = page.last() else { break };
                    after = Some((to_ms(last.created_at), last.id.clone()));
                    got.extend(page.into_iter().map(|r| r.id));
                    assert!(got.len() <= all.len(), "the pages never end");
                }
                assert_eq!(
                    got, want,
                    "{requester} {direction:?} {statuses:?}: newest first, no gaps, no repeats"
                );
            }
        }
    }
    // The data covers what it must: a self-referral in both directions'
    // answers, listed once.
    let both = expected(&all, OWNER, Direction::Both, &[]);
    let incoming = expected(&all, OWNER, Direction::Incoming, &[]);
    let outgoing = expected(&all, OWNER, Direction::Outgoing, &[]);
    assert!(incoming.len() + outgoing.len() > both.len());
}

/// On SQLite, every shape of the page's statement reads the referrals
/// through an index, in the index's order from the cursor on, and stops at
/// the limit: never a scan of the table, and never a sort of the rows it
/// reads (a sort of every referral of the agency, which a single `OR` of
/// both directions needs). So a page costs the same however many referrals
/// the node holds. Only the merge of the two directions' limited pages may
/// sort, outside the co-routine that reads each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_of_referrals_scans_or_sorts_the_table_on_sqlite() {
    let node = TestNode::start(Backend::Sqlite).await;
    let mut conn = node.state.db.pool().acquire().await.unwrap();
    for direction in DIRECTIONS {
        for after in [false, true] {
            for statuses in [0, 2] {
                let explain = format!(
                    "EXPLAIN QUERY PLAN {}",
                    referrals::page_sql(direction, after, statuses)
                );
                let mut query = sqlx::query(&explain).bind(OWNER);
                if after {
                    query = query.bind(1_700_000_000_000i64).bind("referral-00");
                }
                for _ in 0..statuses {
                    query = query.bind("PENDING");
                }
                let plan: Vec<PlanStep> = query
                    .bind(PAGE)
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| PlanStep {
                        id: row.try_get("id").unwrap(),
                        parent: row.try_get("parent").unwrap(),
                        detail: row.try_get("detail").unwrap(),
                    })
                    .collect();
                let shape = format!("{direction:?}, cursor {after}, {statuses} statuses: {plan:?}");
                let reads: Vec<&PlanStep> = plan
                    .iter()
                    .filter(|step| step.detail.contains(" referrals"))
                    .collect();
                let branches = if direction == Direction::Both { 2 } else { 1 };
                assert_eq!(reads.len(), branches, "{shape}");
                for read in reads {
                    assert!(
                        read.detail
                            .starts_with("SEARCH referrals USING INDEX referrals_by_"),
                        "{shape}"
                    );
                    let scope = enclosing_coroutine(&plan, read);
                    assert!(
                        !plan
                            .iter()
                            .any(|step| step.detail.starts_with("USE TEMP B-TREE")
                                && within(&plan, step, scope)),
                        "the rows read are sorted: {shape}"
                    );
                }
            }
        }
    }
}

/// One row of SQLite's `EXPLAIN QUERY PLAN`.
#[derive(Debug)]
struct PlanStep {
    id: i64,
    parent: i64,
    detail: String,
}

/// The ids of the steps above `step`, nearest first, ending with 0 (the
/// plan's root, which has no row of its own).
fn ancestors(plan: &[PlanStep], step: &PlanStep) -> Vec<i64> {
    let mut ids = vec![step.parent];
    while let Some(up) = plan.iter().find(|s| Some(&s.id) == ids.last()) {
        ids.push(up.parent);
    }
    ids
}

/// The nearest `CO-ROUTINE` step above `step`, or 0 (the whole plan).
fn enclosing_coroutine(plan: &[PlanStep], step: &PlanStep) -> i64 {
    ancestors(plan, step)
        .into_iter()
        .find(|id| {
            plan.iter()
                .any(|s| s.id == *id && s.detail.starts_with("CO-ROUTINE"))
        })
        .unwrap_or(0)
}

/// Whether `step` lies under the step `scope` (0: the whole plan).
fn within(plan: &[PlanStep], step: &PlanStep, scope: i64) -> bool {
    ancestors(plan, step).contains(&scope)
}

on_both_backends!(every_page_holds_the_requesters_referrals_in_order);

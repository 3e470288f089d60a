//! Federated statistics: the declared catalogue of tables a node may be
//! asked to count ([`CATALOGUE`]), the periods releases cover ([`Period`]),
//! the counts a node returns ([`CountTable`]), and the protection the
//! gateway applies to their sums before anyone sees them ([`protect`]).
//!
//! There is no free-form query: every table is declared here, with at most
//! two dimensions, so the disclosure risk of every release can be reasoned
//! about. Protection, in order:
//!
//! 1. **Primary suppression**: every cell and margin whose count is between
//!    1 and `k - 1` is withheld (zeros are published: they say no one).
//! 2. **Secondary suppression**: published margins and totals are linear
//!    equations over the withheld values; while any withheld value is the
//!    only solution of those equations (checked exactly, by linear algebra
//!    over the rationals, not by a rule of thumb), the smallest published
//!    cell on one of its lines is withheld too.
//! 3. **Rounding**: every published count is rounded to the nearest
//!    multiple of the rounding base (5 by default).
//!
//! Differencing across releases is prevented by the release policy, not by
//! noise: one release per quarter, produced once and then served as stored,
//! and quarters do not overlap, so no two releases share a survivor.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Time};

use crate::intake::{AgeBand, ExploitationType, Sex};
use crate::vocabulary::{ReferralStatus, ServiceKind, vocabulary};

vocabulary! {
    /// What a table is cut by.
    Dimension, "statistics dimension" {
        /// Sex as recorded at intake.
        Sex => "SEX",
        /// Age band at intake.
        AgeBand => "AGE_BAND",
        /// Nationality (ISO 3166-1 alpha-2, `STATELESS` or `UNKNOWN`).
        Nationality => "NATIONALITY",
        /// Disability by the Washington Group's cut-off: `YES`, `NO`, `UNKNOWN`.
        Disability => "DISABILITY",
        /// Form of exploitation (a survivor may count under several).
        ExploitationType => "EXPLOITATION_TYPE",
        /// Where the survivor was identified (ISO 3166-2, or `UNKNOWN`).
        Region => "REGION",
        /// How long a referral waited for its answer (accepted or
        /// declined), in bands.
        TimeToAnswer => "TIME_TO_ANSWER",
        /// The service a referral asked for, or that was delivered.
        Service => "SERVICE",
        /// Where a referral stands.
        ReferralStatus => "REFERRAL_STATUS",
        /// Why a case was closed.
        ClosureReason => "CLOSURE_REASON",
    }
}

vocabulary! {
    /// What a table counts.
    Measure, "statistics measure" {
        /// Survivors registered in the period (not opted out of statistics).
        Survivors => "SURVIVORS",
        /// Referrals made in the period.
        Referrals => "REFERRALS",
        /// Services delivered in the period.
        ServicesDelivered => "SERVICES_DELIVERED",
        /// Cases closed in the period by the agency that holds them (each
        /// closing counts, a case reopened and closed again twice). Cases
        /// opened are the survivors registered: the `SURVIVORS` tables.
        CasesClosed => "CASES_CLOSED",
    }
}

impl Dimension {
    /// Every value of a closed dimension, in order; `None` for nationality,
    /// whose values are the codes observed.
    pub fn values(self) -> Option<Vec<&'static str>> {
        let names = |all: &[&'static str]| Some(all.to_vec());
        match self {
            Dimension::Sex => names(&Sex::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
            Dimension::AgeBand => {
                names(&AgeBand::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())
            }
            Dimension::Nationality | Dimension::Region => None,
            Dimension::TimeToAnswer => names(&TIME_TO_ANSWER),
            Dimension::Disability => names(&["YES", "NO", "UNKNOWN"]),
            Dimension::ExploitationType => names(
                &ExploitationType::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>(),
            ),
            Dimension::Service => names(
                &ServiceKind::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>(),
            ),
            Dimension::ReferralStatus => names(
                &ReferralStatus::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>(),
            ),
            Dimension::ClosureReason => names(
                &crate::case::CaseClosureReason::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

/// The bands of [`Dimension::TimeToAnswer`], shortest first.
pub const TIME_TO_ANSWER: [&str; 5] = [
    "WITHIN_1_DAY",
    "WITHIN_7_DAYS",
    "WITHIN_30_DAYS",
    "OVER_30_DAYS",
    "NOT_ANSWERED",
];

/// The band of a referral answered `millis` after it was made, or not
/// answered (`None`).
pub fn time_to_answer_band(millis: Option<i64>) -> &'static str {
    const DAY: i64 = 24 * 60 * 60 * 1000;
    match millis {
        None => "NOT_ANSWERED",
        Some(m) if m <= DAY => "WITHIN_1_DAY",
        Some(m) if m <= 7 * DAY => "WITHIN_7_DAYS",
        Some(m) if m <= 30 * DAY => "WITHIN_30_DAYS",
        Some(_) => "OVER_30_DAYS",
    }
}

/// One table of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Its stable name (`survivors-by-sex-and-age`).
    pub id: &'static str,
    pub measure: Measure,
    /// One or two.
    pub dimensions: &'static [Dimension],
}

/// Every table a node can be asked to count, and a release publishes.
pub const CATALOGUE: &[TableSpec] = &[
    TableSpec {
        id: "survivors-by-sex-and-age",
        measure: Measure::Survivors,
        dimensions: &[Dimension::AgeBand, Dimension::Sex],
    },
    TableSpec {
        id: "survivors-by-nationality",
        measure: Measure::Survivors,
        dimensions: &[Dimension::Nationality],
    },
    TableSpec {
        id: "survivors-by-disability-and-sex",
        measure: Measure::Survivors,
        dimensions: &[Dimension::Disability, Dimension::Sex],
    },
    TableSpec {
        id: "survivors-by-exploitation-and-sex",
        measure: Measure::Survivors,
        dimensions: &[Dimension::ExploitationType, Dimension::Sex],
    },
    TableSpec {
        id: "referrals-by-service-and-status",
        measure: Measure::Referrals,
        dimensions: &[Dimension::Service, Dimension::ReferralStatus],
    },
    TableSpec {
        id: "survivors-by-region",
        measure: Measure::Survivors,
        dimensions: &[Dimension::Region],
    },
    TableSpec {
        id: "referrals-by-service-and-time-to-answer",
        measure: Measure::Referrals,
        dimensions: &[Dimension::Service, Dimension::TimeToAnswer],
    },
    TableSpec {
        id: "services-delivered-by-service",
        measure: Measure::ServicesDelivered,
        dimensions: &[Dimension::Service],
    },
    TableSpec {
        id: "cases-closed-by-reason",
        measure: Measure::CasesClosed,
        dimensions: &[Dimension::ClosureReason],
    },
];

impl Dimension {
    /// Whether `value` is a value of this dimension: one of its closed list,
    /// for nationality an ISO 3166-1 alpha-2 code (two capital letters),
    /// `STATELESS` or `UNKNOWN`, for region an ISO 3166-2 code or `UNKNOWN`.
    pub fn accepts(self, value: &str) -> bool {
        match self.values() {
            Some(values) => values.contains(&value),
            None if self == Dimension::Region => crate::intake::RegionCode::is_code(value),
            None => {
                matches!(value, "STATELESS" | "UNKNOWN")
                    || (value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()))
            }
        }
    }
}

impl TableSpec {
    /// Whether `key` names a cell of this table: one value of each of its
    /// dimensions, in order.
    pub fn accepts(&self, key: &[String]) -> bool {
        key.len() == self.dimensions.len()
            && self.dimensions.iter().zip(key).all(|(d, v)| d.accepts(v))
    }
}

/// The table of the catalogue named `id`.
pub fn table(id: &str) -> Option<&'static TableSpec> {
    CATALOGUE.iter().find(|t| t.id == id)
}

/// A calendar quarter: what one release covers (`2026-Q4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub year: i32,
    /// 1 to 4.
    pub quarter: u8,
}

/// A period that is not `YYYY-Qn`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a period is a calendar quarter written YYYY-Qn (2026-Q4), not {0:?}")]
pub struct PeriodError(pub String);

impl Period {
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError(text.chars().take(40).collect());
        let (year, quarter) = text.split_once("-Q").ok_or_else(bad)?;
        let year: i32 = year.parse().map_err(|_| bad())?;
        let quarter: u8 = quarter.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) || !(1..=4).contains(&quarter) || text.len() != 7 {
            return Err(bad());
        }
        Ok(Period { year, quarter })
    }

    /// The quarter holding `at`.
    pub fn of(at: OffsetDateTime) -> Period {
        Period {
            year: at.year(),
            quarter: (u8::from(at.month()) - 1) / 3 + 1,
        }
    }

    fn first_day(year: i32, quarter: u8) -> OffsetDateTime {
        let month = Month::try_from(3 * (quarter - 1) + 1).unwrap_or(Month::January);
        Date::from_calendar_date(year, month, 1)
            .unwrap_or(Date::MIN)
            .with_time(Time::MIDNIGHT)
            .assume_utc()
    }

    /// Its first instant (UTC).
    pub fn start(self) -> OffsetDateTime {
        Self::first_day(self.year, self.quarter)
    }

    /// The first instant after it (UTC).
    pub fn end(self) -> OffsetDateTime {
        if self.quarter == 4 {
            Self::first_day(self.year + 1, 1)
        } else {
            Self::first_day(self.year, self.quarter + 1)
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.quarter)
    }
}

/// One table's counts: for each combination of dimension values (in the
/// table's dimension order), how many. Combinations not listed are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTable {
    pub table: String,
    pub cells: BTreeMap<Vec<String>, u64>,
}

impl CountTable {
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            cells: BTreeMap::new(),
        }
    }

    /// Counts one more under `key`.
    pub fn add(&mut self, key: Vec<String>) {
        *self.cells.entry(key).or_default() += 1;
    }

    /// Adds another node's counts of the same table.
    pub fn merge(&mut self, other: &CountTable) {
        for (key, count) in &other.cells {
            *self.cells.entry(key.clone()).or_default() += count;
        }
    }
}

/// How a release is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    /// Counts from 1 to `k - 1` are withheld (at least 2).
    pub k: u64,
    /// Published counts are rounded to a multiple of this (1: not rounded).
    pub rounding_base: u64,
}

impl Default for Protection {
    fn default() -> Self {
        Self {
            k: 10,
            rounding_base: 5,
        }
    }
}

/// A published number: a rounded count, or `None` when withheld (`null`
/// in JSON).
pub type Published = Option<u64>;

/// A protected table as released: rows by the first dimension, columns by
/// the second (one column, named `""`, for a table of one dimension), the
/// row and column totals, and the grand total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedTable {
    pub table: String,
    pub measure: Measure,
    pub dimensions: Vec<Dimension>,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<Vec<Published>>,
    /// Empty for a table of one dimension (the cells are the row totals).
    pub row_totals: Vec<Published>,
    pub column_totals: Vec<Published>,
    pub total: Published,
}

/// The grid of a table: every value of each dimension (observed ones for
/// nationality) and each cell's true count.
pub struct Grid {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

impl Grid {
    pub fn of(spec: &TableSpec, counts: &CountTable) -> Grid {
        let axis = |i: usize| -> Vec<String> {
            match spec.dimensions.get(i) {
                None => vec![String::new()],
                Some(d) => {
                    let mut values: Vec<String> = d
                        .values()
                        .map(|v| v.into_iter().map(str::to_owned).collect())
                        .unwrap_or_default();
                    let known: BTreeSet<String> = values.iter().cloned().collect();
                    let seen: BTreeSet<String> = counts
                        .cells
                        .keys()
                        .filter_map(|k| k.get(i).cloned())
                        .filter(|v| !known.contains(v))
                        .collect();
                    values.extend(seen);
                    values
                }
            }
        };
        let (rows, columns) = (axis(0), axis(1));
        let counts = rows
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| {
                        let key = if spec.dimensions.len() == 1 {
                            vec![r.clone()]
                        } else {
                            vec![r.clone(), c.clone()]
                        };
                        counts.cells.get(&key).copied().unwrap_or(0)
                    })
                    .collect()
            })
            .collect();
        Grid {
            rows,
            columns,
            counts,
        }
    }
}

/// The values of a protected table, each a variable of the linear system
/// an attacker could write from what is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Cell(usize, usize),
    RowTotal(usize),
    ColumnTotal(usize),
    Total,
}

/// The published lines: every "sum of these slots equals that slot" a
/// reader knows holds.
pub fn lines(rows: usize, columns: usize) -> Vec<(Vec<Slot>, Slot)> {
    let mut out = Vec::new();
    if columns > 1 {
        for r in 0..rows {
            out.push((
                (0..columns).map(|c| Slot::Cell(r, c)).collect(),
                Slot::RowTotal(r),
            ));
        }
        out.push(((0..rows).map(Slot::RowTotal).collect(), Slot::Total));
    }
    for c in 0..columns {
        out.push((
            (0..rows).map(|r| Slot::Cell(r, c)).collect(),
            Slot::ColumnTotal(c),
        ));
    }
    out.push(((0..columns).map(Slot::ColumnTotal).collect(), Slot::Total));
    out
}

/// Which withheld slots the published values determine exactly: those
/// whose unit vector lies in the row space of the lines' equations over
/// the withheld slots (Gaussian elimination over the rationals).
pub fn derivable(rows: usize, columns: usize, withheld: &BTreeSet<Slot>) -> Vec<Slot> {
    let unknowns: Vec<Slot> = withheld.iter().copied().collect();
    let index = |s: &Slot| unknowns.iter().position(|u| u == s);
    let mut matrix: Vec<Vec<Fraction>> = Vec::new();
    for (parts, total) in lines(rows, columns) {
        let mut row = vec![Fraction::ZERO; unknowns.len()];
        for part in &parts {
            if let Some(i) = index(part) {
                row[i] = row[i].add(Fraction::ONE);
            }
        }
        if let Some(i) = index(&total) {
            row[i] = row[i].sub(Fraction::ONE);
        }
        if row.iter().any(|v| !v.is_zero()) {
            matrix.push(row);
        }
    }
    let base = rank(matrix.clone());
    unknowns
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let mut with = matrix.clone();
            let mut unit = vec![Fraction::ZERO; unknowns.len()];
            unit[*i] = Fraction::ONE;
            with.push(unit);
            rank(with) == base
        })
        .map(|(_, s)| *s)
        .collect()
}

/// An exact rational, small enough for tables of a few hundred cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fraction {
    num: i128,
    den: i128,
}

impl Fraction {
    const ZERO: Fraction = Fraction { num: 0, den: 1 };
    const ONE: Fraction = Fraction { num: 1, den: 1 };

    fn new(num: i128, den: i128) -> Fraction {
        let g = gcd(num.abs(), den.abs()).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Fraction {
            num: sign * num / g,
            den: sign * den / g,
        }
    }
    fn is_zero(self) -> bool {
        self.num == 0
    }
    fn add(self, o: Fraction) -> Fraction {
        Fraction::new(self.num * o.den + o.num * self.den, self.den * o.den)
    }
    fn sub(self, o: Fraction) -> Fraction {
        Fraction::new(self.num * o.den - o.num * self.den, self.den * o.den)
    }
    fn mul(self, o: Fraction) -> Fraction {
        Fraction::new(self.num * o.num, self.den * o.den)
    }
    fn div(self, o: Fraction) -> Fraction {
        Fraction::new(self.num * o.den, self.den * o.num)
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn rank(mut m: Vec<Vec<Fraction>>) -> usize {
    let columns = m.first().map_or(0, Vec::len);
    let mut rank = 0;
    for c in 0..columns {
        let Some(pivot) = (rank..m.len()).find(|&r| !m[r][c].is_zero()) else {
            continue;
        };
        m.swap(rank, pivot);
        for r in 0..m.len() {
            if r != rank && !m[r][c].is_zero() {
                let factor = m[r][c].div(m[rank][c]);
                let pivot_row = m[rank].clone();
                for (cell, p) in m[r].iter_mut().zip(&pivot_row).skip(c) {
                    *cell = cell.sub(factor.mul(*p));
                }
            }
        }
        rank += 1;
    }
    rank
}

/// The release of one table: the sums of every node's counts, protected.
/// The second value lists the withheld slots (for the tests and the log,
/// never for publication).
pub fn protect(
    spec: &TableSpec,
    counts: &CountTable,
    protection: Protection,
) -> (ReleasedTable, BTreeSet<Slot>) {
    let grid = Grid::of(spec, counts);
    let (rows, columns) = (grid.rows.len(), grid.columns.len());
    let value = |slot: Slot| -> u64 {
        match slot {
            Slot::Cell(r, c) => grid.counts[r][c],
            Slot::RowTotal(r) => grid.counts[r].iter().sum(),
            Slot::ColumnTotal(c) => grid.counts.iter().map(|row| row[c]).sum(),
            Slot::Total => grid.counts.iter().flatten().sum(),
        }
    };
    let mut slots: Vec<Slot> = Vec::new();
    for r in 0..rows {
        for c in 0..columns {
            slots.push(Slot::Cell(r, c));
        }
        if columns > 1 {
            slots.push(Slot::RowTotal(r));
        }
    }
    slots.extend((0..columns).map(Slot::ColumnTotal));
    slots.push(Slot::Total);
    let k = protection.k.max(2);
    // 1. Primary: small counts.
    let mut withheld: BTreeSet<Slot> = slots
        .iter()
        .copied()
        .filter(|s| (1..k).contains(&value(*s)))
        .collect();
    // 2. Secondary: until nothing withheld can be solved for.
    loop {
        let solvable = derivable(rows, columns, &withheld);
        if solvable.is_empty() {
            break;
        }
        // On the lines through what can be solved for: the smallest
        // published non-zero cell, else the smallest non-zero total, is
        // withheld too. (A zero is never withheld: its line would give it
        // away, and publishing it says only that no one is there.)
        let on_lines: BTreeSet<Slot> = lines(rows, columns)
            .into_iter()
            .filter(|(parts, total)| solvable.iter().any(|s| parts.contains(s) || total == s))
            .flat_map(|(parts, total)| parts.into_iter().chain(std::iter::once(total)))
            .filter(|s| !withheld.contains(s) && slots.contains(s) && value(*s) > 0)
            .collect();
        let candidate = on_lines
            .iter()
            .copied()
            .min_by_key(|s| (!matches!(s, Slot::Cell(..)), value(*s)));
        match candidate {
            Some(slot) => {
                withheld.insert(slot);
            }
            // Nothing left to withhold beside it: withhold every slot (the
            // safe answer; a table this small publishes nothing).
            None => {
                withheld.extend(slots.iter().copied());
                break;
            }
        }
    }
    // 3. Rounding.
    let base = protection.rounding_base.max(1);
    let publish = |slot: Slot| -> Published {
        if withheld.contains(&slot) {
            None
        } else {
            let v = value(slot);
            Some((v + base / 2) / base * base)
        }
    };
    let released = ReleasedTable {
        table: spec.id.to_owned(),
        measure: spec.measure,
        dimensions: spec.dimensions.to_vec(),
        cells: (0..rows)
            .map(|r| (0..columns).map(|c| publish(Slot::Cell(r, c))).collect())
            .collect(),
        row_totals: if columns > 1 {
            (0..rows).map(|r| publish(Slot::RowTotal(r))).collect()
        } else {
            Vec::new()
        },
        column_totals: (0..columns)
            .map(|c| publish(Slot::ColumnTotal(c)))
            .collect(),
        total: publish(Slot::Total),
        rows: grid.rows,
        columns: grid.columns,
    };
    (released, withheld)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn periods_are_quarters_written_year_dash_q() {
        let p = Period::parse("2026-Q4").unwrap();
        assert_eq!(p.to_string(), "2026-Q4");
        assert_eq!(p.start().date().to_string(), "2026-10-01");
        assert_eq!(p.end().date().to_string(), "2027-01-01");
        assert_eq!(
            Period::parse("2026-Q1").unwrap().end().month(),
            Month::April
        );
        for bad in [
            "2026", "2026-Q5", "2026-Q0", "26-Q1", "2026-Q1x", "", "2026-Q+1",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Period::of(p.start()), p);
    }

    #[test]
    fn a_cell_key_must_be_values_of_the_tables_dimensions() {
        let t = table("survivors-by-disability-and-sex").unwrap();
        let key = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
        assert!(t.accepts(&key("YES", "FEMALE")));
        assert!(!t.accepts(&key("FEMALE", "YES")));
        assert!(!t.accepts(&key("YES", "=cmd()")));
        assert!(!t.accepts(&["YES".to_owned()]));
        let n = table("survivors-by-nationality").unwrap();
        assert!(n.accepts(&["RO".to_owned()]));
        assert!(n.accepts(&["STATELESS".to_owned()]));
        assert!(!n.accepts(&["ro".to_owned()]));
        assert!(!n.accepts(&["<b>".to_owned()]));
    }

    #[test]
    fn every_table_of_the_catalogue_has_one_or_two_dimensions_and_a_unique_name() {
        let names: BTreeSet<&str> = CATALOGUE.iter().map(|t| t.id).collect();
        assert_eq!(names.len(), CATALOGUE.len());
        assert!(
            CATALOGUE
                .iter()
                .all(|t| (1..=2).contains(&t.dimensions.len()))
        );
        assert!(table("survivors-by-sex-and-age").is_some());
        assert!(table("survivors-by-name").is_none());
    }

    fn sex_by_disability(cells: &[(&str, &str, u64)]) -> CountTable {
        let mut t = CountTable::new("survivors-by-disability-and-sex");
        for (d, s, n) in cells {
            t.cells.insert(vec![(*d).into(), (*s).into()], *n);
        }
        t
    }

    #[test]
    fn a_lone_small_cell_takes_a_second_cell_of_its_row_and_column_with_it() {
        let spec = table("survivors-by-disability-and-sex").unwrap();
        let counts = sex_by_disability(&[
            ("YES", "FEMALE", 3),
            ("YES", "MALE", 40),
            ("NO", "FEMALE", 50),
            ("NO", "MALE", 60),
        ]);
        let (released, withheld) = protect(spec, &counts, Protection::default());
        assert!(withheld.contains(&Slot::Cell(0, 0)));
        assert!(withheld.len() >= 4, "{withheld:?}");
        assert!(derivable(released.rows.len(), released.columns.len(), &withheld).is_empty());
        assert_eq!(released.total, Some(155));
    }

    /// An independent check of what a reader can solve for: tries every
    /// withheld slot with every other value consistent with the published
    /// exact sums, for tiny tables (brute force, no linear algebra).
    fn brute_force_unique(counts: &[Vec<u64>], withheld: &BTreeSet<Slot>, slot: Slot) -> bool {
        let (rows, columns) = (counts.len(), counts[0].len());
        let cells: Vec<(usize, usize)> = withheld
            .iter()
            .filter_map(|s| match s {
                Slot::Cell(r, c) => Some((*r, *c)),
                _ => None,
            })
            .collect();
        let original = counts.to_vec();
        let value_of = |grid: &Vec<Vec<u64>>, s: Slot| -> u64 {
            match s {
                Slot::Cell(r, c) => grid[r][c],
                Slot::RowTotal(r) => grid[r].iter().sum(),
                Slot::ColumnTotal(c) => grid.iter().map(|row| row[c]).sum(),
                Slot::Total => grid.iter().flatten().sum(),
            }
        };
        // Enumerate alternative values of the withheld cells; a grid is
        // consistent when every published (not withheld) slot keeps its value.
        let mut grid = original.clone();
        let mut found_other = false;
        // The equations are those of a transportation table (totally
        // unimodular): if a withheld cell is not determined, another
        // solution differs from the truth by at most one in each cell.
        fn walk(
            i: usize,
            cells: &[(usize, usize)],
            truth: &[Vec<u64>],
            grid: &mut Vec<Vec<u64>>,
            check: &mut dyn FnMut(&Vec<Vec<u64>>),
        ) {
            if i == cells.len() {
                check(grid);
                return;
            }
            let (r, c) = cells[i];
            let t = truth[r][c];
            for v in t.saturating_sub(1)..=t + 1 {
                grid[r][c] = v;
                walk(i + 1, cells, truth, grid, check);
            }
            grid[r][c] = t;
        }
        let all_slots: Vec<Slot> = (0..rows)
            .flat_map(|r| (0..columns).map(move |c| Slot::Cell(r, c)))
            .chain((0..rows).filter(|_| columns > 1).map(Slot::RowTotal))
            .chain((0..columns).map(Slot::ColumnTotal))
            .chain(std::iter::once(Slot::Total))
            .collect();
        let mut check = |g: &Vec<Vec<u64>>| {
            let consistent = all_slots
                .iter()
                .filter(|s| !withheld.contains(s))
                .all(|s| value_of(g, *s) == value_of(&original, *s));
            if consistent && value_of(g, slot) != value_of(&original, slot) {
                found_other = true;
            }
        };
        walk(0, &cells, &original, &mut grid, &mut check);
        !found_other
    }

    fn small_table() -> impl Strategy<Value = Vec<Vec<u64>>> {
        (1usize..=3, 2usize..=3).prop_flat_map(|(rows, columns)| {
            prop::collection::vec(prop::collection::vec(0u64..=12, columns), rows)
        })
    }

    fn as_counts(grid: &[Vec<u64>]) -> (TableSpec, CountTable) {
        // A synthetic two-dimensional table over the first values of two
        // closed dimensions.
        const DIMS: &[Dimension] = &[Dimension::Sex, Dimension::Disability];
        let spec = TableSpec {
            id: "test",
            measure: Measure::Survivors,
            dimensions: DIMS,
        };
        let sexes = Dimension::Sex.values().unwrap();
        let disability = Dimension::Disability.values().unwrap();
        let mut t = CountTable::new("test");
        for (r, row) in grid.iter().enumerate() {
            for (c, n) in row.iter().enumerate() {
                t.cells
                    .insert(vec![sexes[r].to_owned(), disability[c].to_owned()], *n);
            }
        }
        (spec, t)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No published count comes from a true count between 1 and k - 1.
        #[test]
        fn no_published_cell_is_below_k(grid in small_table(), k in 2u64..=6) {
            let (spec, counts) = as_counts(&grid);
            let (released, _) = protect(&spec, &counts, Protection { k, rounding_base: 1 });
            for (r, row) in released.cells.iter().enumerate() {
                for (c, p) in row.iter().enumerate() {
                    if let Some(n) = *p {
                        let truth = Grid::of(&spec, &counts).counts[r][c];
                        prop_assert!(truth == 0 || truth >= k, "{truth} published under k={k}");
                        prop_assert_eq!(n, truth);
                    }
                }
            }
        }

        /// No withheld cell can be recovered from the published cells,
        /// margins and total of one release, checked by brute force.
        #[test]
        fn no_withheld_cell_is_derivable_from_the_margins(grid in small_table(), k in 2u64..=6) {
            let (spec, counts) = as_counts(&grid);
            let (released, withheld) = protect(&spec, &counts, Protection { k, rounding_base: 1 });
            let full = Grid::of(&spec, &counts).counts;
            let cells = withheld.iter().filter(|s| matches!(s, Slot::Cell(..))).count();
            prop_assume!(cells <= 8); // brute force stays small
            prop_assert_eq!(released.rows.len(), full.len());
            for slot in &withheld {
                if let Slot::Cell(r, c) = slot {
                    let unique = brute_force_unique(&full, &withheld, *slot);
                    prop_assert!(
                        !unique,
                        "withheld cell ({r}, {c}) of {full:?} is recoverable; withheld {withheld:?}"
                    );
                }
            }
        }

        /// Two releases (two quarters) together reveal no withheld cell of
        /// either: the reader's equations for the two are independent, so
        /// the union is as safe as each.
        #[test]
        fn differencing_two_releases_reveals_no_withheld_cell(
            a in small_table(), b in small_table(), k in 2u64..=6
        ) {
            for grid in [&a, &b] {
                let (spec, counts) = as_counts(grid);
                let (released, withheld) = protect(&spec, &counts, Protection { k, rounding_base: 1 });
                prop_assert!(derivable(released.rows.len(), released.columns.len(), &withheld).is_empty());
            }
        }

        /// The sums of several nodes' counts equal a brute-force count of
        /// the records they were made from.
        #[test]
        fn merged_counts_equal_a_brute_force_count(
            records in prop::collection::vec((0usize..4, 0usize..5, 0usize..3), 0..200)
        ) {
            let sexes = Dimension::Sex.values().unwrap();
            let disability = Dimension::Disability.values().unwrap();
            let mut nodes = vec![CountTable::new("t"); 4];
            for (node, s, d) in &records {
                nodes[*node].add(vec![sexes[*s].to_owned(), disability[*d].to_owned()]);
            }
            let mut sum = CountTable::new("t");
            for n in &nodes { sum.merge(n); }
            for (s, sex) in sexes.iter().enumerate() {
                for (d, level) in disability.iter().enumerate() {
                    let brute = records.iter().filter(|(_, rs, rd)| *rs == s && *rd == d).count() as u64;
                    let key = vec![(*sex).to_owned(), (*level).to_owned()];
                    prop_assert_eq!(sum.cells.get(&key).copied().unwrap_or(0), brute);
                }
            }
            let total: u64 = sum.cells.values().sum();
            prop_assert_eq!(total, records.len() as u64);
        }
    }
}

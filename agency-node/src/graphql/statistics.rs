//! `statisticsCounts`: the node's counts of its records for tables of the
//! declared catalogue in one quarter ([`crate::statistics`]). For the
//! gateway's release (which sums and protects them), asked with a
//! statistician's token and the `STATISTICS` purpose; audited.

use async_graphql::{Context, Result, SimpleObject};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::statistics::{self, Period, TableSpec};
use exchange_schema::{AuditKind, Decision, Purpose};

use super::{caller, state};
use crate::error::NodeError;

/// One table's counts at this node.
#[derive(SimpleObject)]
pub struct StatisticsCount {
    /// The table's name in the catalogue.
    pub table: String,
    /// The non-zero cells.
    pub cells: Vec<StatisticsCell>,
}

/// How many records have these values (in the table's dimension order).
#[derive(SimpleObject)]
pub struct StatisticsCell {
    pub key: Vec<String>,
    pub count: i64,
}

/// The `statisticsCounts` query.
pub async fn counts(
    ctx: &Context<'_>,
    period: &str,
    tables: Option<Vec<String>>,
) -> Result<Vec<StatisticsCount>> {
    let (state, caller) = (state(ctx), caller(ctx)?);
    let purpose = caller.purpose()?;
    let period = Period::parse(period).map_err(|e| NodeError::bad_input(e.to_string()))?;
    // As the gateway's release: only a quarter that has ended is counted,
    // so a count once given does not change with records added later.
    if period.end() > exchange_schema::audit::now_millis() {
        return Err(NodeError::bad_input(format!(
            "{period} has not ended: only an ended quarter is counted"
        ))
        .into());
    }
    let specs: Vec<&'static TableSpec> = match tables {
        None => statistics::CATALOGUE.iter().collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                statistics::table(n).ok_or_else(|| {
                    NodeError::bad_input(format!("{n:?} is not a table of the catalogue"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if purpose != Purpose::Statistics {
        let err = NodeError::Forbidden("counts are asked for the STATISTICS purpose only".into());
        return Err(state.deny(caller, err, None, None).await.into());
    }
    let target = ActionTarget::owned_by(state.agency.clone());
    state
        .authorize(caller, purpose, Action::CountRecords, target, None)
        .await?;
    let counted = crate::statistics::count(state, period, &specs).await?;
    // Audited before anything is answered.
    let mut event = caller.event(
        AuditKind::StatisticsCounted,
        Decision::Permit,
        period.to_string(),
    );
    event.purpose = Some(purpose);
    event.explanation = Some(format!(
        "tables: {}",
        specs.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
    ));
    state.audit.append(event).await.map_err(NodeError::from)?;
    Ok(counted
        .into_iter()
        .map(|t| StatisticsCount {
            table: t.table,
            cells: t
                .cells
                .into_iter()
                .map(|(key, count)| StatisticsCell {
                    key,
                    count: count as i64,
                })
                .collect(),
        })
        .collect())
}

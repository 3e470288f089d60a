//! The writes that create a node's records: a survivor registered, a consent
//! recorded, a referral made. Each writes the record and its audit entry in
//! one transaction ([`exchange_audit::AuditLog::record`]). The GraphQL
//! mutations call them once they have checked who may make the change, and
//! the demo seed calls the same functions, so demo data is written exactly
//! as real data is (same audit entries, same consent receipts).
//!
//! The `_keyed` forms also write the request's idempotency key, first, in
//! the same transaction ([`crate::idempotency`]); the plain forms write none.

use exchange_schema::{AuditKind, GlobalId};
use time::OffsetDateTime;

use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::idempotency::{self, FieldKey, Outcome};
use crate::receipt::{self, ConsentEvent};
use crate::state::{Caller, NodeState};
use crate::store::grants::ConsentGrantRecord;
use crate::store::referrals::{ReferralEvent, ReferralRecord};
use crate::store::survivors::SurvivorRecord;
use crate::store::{grants, portal, referrals, survivors};

/// Inside a change's transaction: the survivor must (still) exist here and
/// not be in the middle of a case transfer, or the change fails and nothing
/// is written: [`NodeError::NotFound`], [`NodeError::Moved`] once the
/// record has moved, or [`NodeError::Conflict`] while it is handed over.
pub async fn require_survivor(
    conn: &mut sqlx::AnyConnection,
    survivor_id: &str,
) -> Result<(), NodeError> {
    if !survivors::exists(&mut *conn, survivor_id)
        .await
        .map_err(NodeError::internal)?
    {
        return Err(moved_or_missing(conn, survivor_id, "survivor").await);
    }
    if crate::store::transfer::is_moving(conn, survivor_id)
        .await
        .map_err(NodeError::internal)?
    {
        return Err(NodeError::Conflict(
            "the case is being transferred to another agency and is read-only until the \
             hand-over finishes"
                .into(),
        ));
    }
    Ok(())
}

/// The error for an ID this node does not hold: [`NodeError::Moved`] when
/// a tombstone says where it went, else [`NodeError::NotFound`].
pub async fn moved_or_missing(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    what: &'static str,
) -> NodeError {
    match crate::store::transfer::moved_to(conn, id).await {
        Ok(Some(agency)) => match GlobalId::new(agency, id.to_owned()) {
            Ok(to) => NodeError::Moved(to),
            Err(err) => err.into(),
        },
        Ok(None) => NodeError::NotFound(what),
        Err(err) => NodeError::internal(err),
    }
}

/// Stores a new survivor's record; returns its global ID.
pub async fn register_survivor(
    state: &NodeState,
    caller: &Caller,
    record: &SurvivorRecord,
) -> Result<GlobalId, NodeError> {
    register_survivor_keyed(state, caller, record, false, None).await
}

/// [`register_survivor`] under an idempotency key; `statistics_opt_out`
/// when the survivor asked at intake not to be counted in the federation's
/// statistics (stored in the same transaction as the record).
pub async fn register_survivor_keyed(
    state: &NodeState,
    caller: &Caller,
    record: &SurvivorRecord,
    statistics_opt_out: bool,
    key: Option<FieldKey>,
) -> Result<GlobalId, NodeError> {
    let gid = GlobalId::new(state.agency.clone(), record.id.clone())?;
    let event = change_event(
        caller,
        AuditKind::SurvivorRegistered,
        Some(gid.clone()),
        None,
    );
    let stored = record.clone();
    let vault = state.vault.clone();
    state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let outcome = Outcome::Survivor {
                    id: stored.id.clone(),
                };
                idempotency::write(key.as_ref(), conn, &outcome).await?;
                survivors::insert(conn, &vault, &stored)
                    .await
                    .map_err(NodeError::internal)?;
                if statistics_opt_out {
                    crate::statistics::set_opt_out(conn, &stored.id, true)
                        .await
                        .map_err(NodeError::internal)?;
                }
                Ok(((), event))
            })
        })
        .await?;
    Ok(gid)
}

/// Stores a consent grant the survivor gave outside the portal, with the
/// signed receipt the survivor sees in the portal. Fails with
/// [`NodeError::NotFound`] (and writes nothing) when the survivor is gone.
pub async fn record_consent(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    grant: &ConsentGrantRecord,
    now: OffsetDateTime,
) -> Result<(), NodeError> {
    record_consent_keyed(state, caller, survivor, grant, now, None).await
}

/// [`record_consent`] under an idempotency key.
pub async fn record_consent_keyed(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    grant: &ConsentGrantRecord,
    now: OffsetDateTime,
    key: Option<FieldKey>,
) -> Result<(), NodeError> {
    let mut event = change_event(
        caller,
        AuditKind::ConsentGranted,
        Some(survivor.clone()),
        Some(format!("{}:{}", state.agency, grant.id)),
    );
    event.disclosed = grant.categories.clone();
    let stored = grant.clone();
    let receipt = receipt::for_grant(state, grant, ConsentEvent::Given, now);
    let local = survivor.local().to_owned();
    let vault = state.vault.clone();
    state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let outcome = Outcome::ConsentGrant {
                    id: stored.id.clone(),
                };
                idempotency::write(key.as_ref(), conn, &outcome).await?;
                require_survivor(conn, &local).await?;
                grants::insert(conn, &vault, &stored)
                    .await
                    .map_err(NodeError::internal)?;
                portal::insert_receipt(conn, &vault, &receipt)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await
}

/// Stores a new referral in the PENDING state; returns its history (the one
/// PENDING step).
pub async fn create_referral(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    record: &ReferralRecord,
) -> Result<Vec<ReferralEvent>, NodeError> {
    create_referral_keyed(state, caller, survivor, record, None).await
}

/// [`create_referral`] under an idempotency key.
pub async fn create_referral_keyed(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    record: &ReferralRecord,
    key: Option<FieldKey>,
) -> Result<Vec<ReferralEvent>, NodeError> {
    let first = ReferralEvent {
        status: record.status,
        at: record.created_at,
        by_agency: record.from_agency.clone(),
        by_user: caller.principal.user.clone(),
        note: None,
    };
    let mut event = change_event(
        caller,
        AuditKind::ReferralCreated,
        Some(survivor.clone()),
        Some(format!("{}:{}", state.agency, record.id)),
    );
    if let Some(parent) = &record.parent_id {
        event.reason = "ONWARD".into();
        event.explanation = Some(format!("continues {}:{parent}", state.agency));
    }
    let stored = record.clone();
    let history = vec![first.clone()];
    let (owner, survivor_id) = (state.agency.clone(), survivor.clone());
    let vault = state.vault.clone();
    state
        .audit
        .record::<_, crate::error::NodeError, _>(move |conn| {
            Box::pin(async move {
                let outcome = Outcome::Referral {
                    id: stored.id.clone(),
                };
                idempotency::write(key.as_ref(), conn, &outcome).await?;
                require_survivor(conn, &stored.survivor_id).await?;
                // An onward referral continues an accepted one: it must
                // still be accepted when the new one is written.
                if let Some(parent) = &stored.parent_id
                    && referrals::get(conn, &vault, parent)
                        .await
                        .map_err(NodeError::internal)?
                        .is_none_or(|p| p.status != exchange_schema::ReferralStatus::Accepted)
                {
                    return Err(NodeError::Conflict(
                        "the referral your agency accepted is no longer accepted".into(),
                    ));
                }
                referrals::insert(conn, &vault, &stored, &first)
                    .await
                    .map_err(NodeError::internal)?;
                crate::store::notifications::queue(
                    conn,
                    &stored.to_agency,
                    exchange_schema::NotificationKind::ReferralReceived,
                    &format!("{owner}:{}", stored.id),
                    Some(&survivor_id),
                )
                .await
                .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    Ok(history)
}

//! Case transfer: when a survivor moves (to another shelter, say), the
//! ownership of their record moves from this node to another, with the
//! survivor's consent, and nothing is ever half-moved.
//!
//! The hand-over, driven by the sending node (`transferCase`):
//!
//! 1. The sending node checks the request (its own caseworker or
//!    supervisor, `transferCase` in the policies, the survivor's witnessed
//!    consent, a receiving agency that accepted a referral of the
//!    survivor), then marks the transfer PENDING with its audit entry
//!    (`CASE_TRANSFER`/`STARTED`). From then on the record is read-only
//!    here: every change is refused until the hand-over ends.
//! 2. It sends every row that travels ([`crate::store::transfer`]) to the
//!    receiving node's `receiveCaseTransfer`, as the same caseworker (their
//!    token, forwarded). The receiving node checks it all again, imports the
//!    rows in one transaction with its entry (`RECEIVED`), and answers a
//!    repeat of the same transfer with the same answer.
//! 3. On that answer the sending node deletes the record, leaves a
//!    tombstone per ID (what moved, and where; nothing else), and writes
//!    `COMPLETED`, in one transaction. On a refusal, it writes `ABORTED`
//!    and the record is writable again. With no answer (or a storage fault
//!    there, which may have committed), it stays PENDING: asking
//!    `transferCase` again finishes it, and the receiving node answers the
//!    repeat as before.
//!
//! So at every moment exactly one node accepts changes to the record; both
//! may hold a copy only between steps 2 and 3, the old one read-only.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use exchange_policies::{Action, ActionTarget};
use exchange_schema::{AgencyId, AuditKind, ConsentMethod, GlobalId, ReferralStatus};
use serde_json::json;
use time::OffsetDateTime;

use super::{caller, state};
use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::peers::{BearerToken, PeerError, Peers};
use crate::records::{SHORT_TEXT, check_text};
use crate::state::{Caller, NodeState};
use crate::store::transfer::{self as store, CasePackage, TransferRecord};
use crate::store::{new_local_id, survivors};

/// Where a transfer stands, as the node answering saw it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum CaseTransferStatus {
    /// Handed over but not yet confirmed; the record is read-only at the
    /// sending node. Ask `transferCase` again to finish.
    Pending,
    /// The record lives at the receiving node; a tombstone stayed here.
    Completed,
    /// The receiving node refused; nothing moved.
    Aborted,
    /// Received here from the sending node.
    Received,
}

impl CaseTransferStatus {
    fn parse(stored: &str) -> Self {
        match stored {
            "COMPLETED" => Self::Completed,
            "ABORTED" => Self::Aborted,
            "RECEIVED" => Self::Received,
            _ => Self::Pending,
        }
    }
}

/// A case transfer.
#[derive(SimpleObject, Clone)]
pub struct CaseTransfer {
    /// The transfer's ID (the same at both nodes).
    pub id: String,
    /// The survivor's global ID at the sending node.
    pub survivor_id: ID,
    /// The survivor's global ID at the receiving node.
    pub new_survivor_id: ID,
    pub from_agency: String,
    pub to_agency: String,
    pub status: CaseTransferStatus,
    pub updated_at: OffsetDateTime,
}

impl CaseTransfer {
    fn new(t: &TransferRecord, from: &AgencyId, to: &AgencyId) -> Self {
        Self {
            id: t.id.clone(),
            survivor_id: ID(format!("{from}:{}", t.survivor_id)),
            new_survivor_id: ID(format!("{to}:{}", t.survivor_id)),
            from_agency: from.to_string(),
            to_agency: to.to_string(),
            status: CaseTransferStatus::parse(&t.status),
            updated_at: t.updated_at,
        }
    }
}

/// A request to move a survivor's case to another agency's node.
#[derive(InputObject)]
pub struct TransferCaseInput {
    pub survivor_id: ID,
    /// The agency that takes the case over; it must have accepted a
    /// referral of the survivor.
    pub to_agency: String,
    /// How the survivor agreed to the move: WITNESSED_VERBAL or
    /// WITNESSED_WRITTEN.
    pub consent_method: ConsentMethod,
    /// Who witnessed it, besides the caseworker.
    pub witness: Option<String>,
}

/// A case handed over by the sending node (called by that node on its
/// caseworker's behalf).
#[derive(InputObject)]
pub struct ReceiveCaseTransferInput {
    pub transfer_id: String,
    /// The survivor's global ID here, at the receiving node.
    pub survivor_id: ID,
    pub from_agency: String,
    pub consent_method: ConsentMethod,
    /// The rows that travel, as the sending node exported them (JSON).
    pub package: String,
}

const RECEIVE: &str = "mutation($input: ReceiveCaseTransferInput!) { \
    receiveCaseTransfer(input: $input) { id status } }";

fn check_transfer_id(id: &str) -> Result<(), NodeError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(NodeError::bad_input("transferId is not a transfer ID"));
    }
    Ok(())
}

fn peers<'a>(ctx: &Context<'a>) -> &'a Peers {
    ctx.data_unchecked::<std::sync::Arc<Peers>>()
}

/// The case-transfer mutations, merged into the node's `Mutation`.
#[derive(Default)]
pub struct TransferMutation;

#[Object]
impl TransferMutation {
    /// Moves a survivor's case to another agency's node, with the
    /// survivor's witnessed consent: the record, its consent grants and
    /// receipts, referrals, notes, services, follow-ups and care plan. The
    /// old ID then answers `MOVED` with the new one. Asking again for a
    /// PENDING transfer finishes it.
    async fn transfer_case(
        &self,
        ctx: &Context<'_>,
        input: TransferCaseInput,
    ) -> Result<CaseTransfer> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        if !state.is_own_staff(caller) {
            let err = NodeError::Forbidden(format!(
                "only staff of {} may transfer its cases",
                state.agency
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        state
            .authorize(
                caller,
                purpose,
                Action::TransferCase,
                ActionTarget::case(state.agency.clone(), None),
                Some(&gid),
            )
            .await?;
        if input.consent_method == ConsentMethod::Portal {
            return Err(NodeError::bad_input(
                "a transfer is agreed in person: WITNESSED_VERBAL or WITNESSED_WRITTEN",
            )
            .into());
        }
        if let Some(w) = &input.witness {
            check_text("witness", w, SHORT_TEXT, false)?;
        }
        let to = state.known_agency(&input.to_agency)?;
        if to == state.agency {
            return Err(NodeError::bad_input("a case is transferred to another agency").into());
        }
        let peers = peers(ctx);
        if !peers.has_node(&to) {
            return Err(NodeError::bad_input(format!("{to} has no node to take the case")).into());
        }
        let token = ctx
            .data_opt::<BearerToken>()
            .ok_or_else(|| NodeError::Unauthenticated("no bearer token to act with".into()))?;

        let mut conn = crate::store::acquire(&state.db).await?;
        if !survivors::exists(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?
        {
            let err = crate::changes::moved_or_missing(&mut conn, gid.local(), "survivor").await;
            drop(conn);
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        // A legal hold is this agency's duty to keep the record: it does not
        // travel, so the record does not either while one is in force.
        if let Some(hold) = crate::retention::hold_in_force(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?
        {
            drop(conn);
            let err = NodeError::Conflict(format!(
                "the record is under a legal hold since {}: lift it before transferring the case",
                hold.placed_at.date()
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let accepted = crate::store::referrals::is_partner(&mut conn, gid.local(), &to)
            .await
            .map_err(NodeError::internal)?;
        let pending = store::pending_out(&mut conn, gid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        if !accepted {
            let err = NodeError::Conflict(format!(
                "{to} has not accepted a referral of the survivor: refer them first"
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        let transfer = match pending {
            Some(p) if p.peer == to => p,
            Some(p) => {
                let err = NodeError::Conflict(format!(
                    "the case is already being transferred to {}",
                    p.peer
                ));
                return Err(state.deny(caller, err, Some(&gid), None).await.into());
            }
            None => start(state, caller, &gid, &to, &input).await?,
        };

        let mut conn = crate::store::acquire(&state.db).await?;
        let package = store::export(&mut conn, &state.vault, gid.local())
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        let package_json = serde_json::to_string(&package).map_err(NodeError::internal)?;
        let variables = json!({ "input": {
            "transferId": transfer.id,
            "survivorId": format!("{to}:{}", gid.local()),
            "fromAgency": state.agency.as_str(),
            "consentMethod": transfer.consent_method,
            "package": package_json,
        }});
        let answer = peers
            .graphql(&to, token, purpose, &caller.trace_id, RECEIVE, variables)
            .await;
        match answer {
            Ok(_) => {
                let done = finish(state, caller, &gid, &transfer, &package, &to).await?;
                Ok(CaseTransfer::new(&done, &state.agency, &to))
            }
            Err(PeerError::Refused { code, message, .. }) => {
                abort(state, caller, &gid, &transfer, &code).await?;
                Err(NodeError::Conflict(format!(
                    "{to} refused the case ({code}: {message}); nothing moved"
                ))
                .into())
            }
            Err(err @ (PeerError::Unanswered { .. } | PeerError::NoNode(_))) => {
                tracing::warn!(error = %err, transfer = %transfer.id, "case transfer left pending");
                Err(NodeError::PeerUnavailable(format!(
                    "{to} did not confirm the hand-over; the case stays read-only here until \
                     transferCase is asked again"
                ))
                .into())
            }
        }
    }

    /// Takes over a survivor's case from another agency's node. Called by
    /// the sending node on its caseworker's behalf (`transferCase`); every
    /// check is made here again. A repeat of a received transfer answers
    /// the same.
    async fn receive_case_transfer(
        &self,
        ctx: &Context<'_>,
        input: ReceiveCaseTransferInput,
    ) -> Result<CaseTransfer> {
        let (state, caller) = (state(ctx), caller(ctx)?);
        let purpose = caller.purpose()?;
        let gid = state.local_id(&input.survivor_id)?;
        check_transfer_id(&input.transfer_id)?;
        let from = state.known_agency(&input.from_agency)?;
        if from == state.agency || caller.principal.agency != from {
            let err = NodeError::Forbidden(
                "a case is handed over by staff of the agency that holds it".into(),
            );
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }
        state
            .authorize(
                caller,
                purpose,
                Action::TransferCase,
                ActionTarget::case(from.clone(), None),
                Some(&gid),
            )
            .await?;
        if input.consent_method == ConsentMethod::Portal {
            return Err(NodeError::bad_input("consentMethod must be witnessed").into());
        }
        let package: CasePackage = serde_json::from_str(&input.package)
            .map_err(|e| NodeError::bad_input(format!("package: {e}")))?;
        if package.survivor_id != gid.local() {
            return Err(NodeError::bad_input("package: it holds another survivor").into());
        }
        store::check(&package).map_err(|e| NodeError::bad_input(format!("package: {e}")))?;
        // This agency takes over only a survivor it agreed to work with.
        // (the shelter's referral, or a partner's onward one: as the sending
        // node checks).
        let accepted = package.rows("referrals").iter().any(|r| {
            r.get("to_agency").and_then(|v| v.as_str()) == Some(state.agency.as_str())
                && r.get("status").and_then(|v| v.as_str())
                    == Some(ReferralStatus::Accepted.as_str())
        });
        if !accepted {
            let err = NodeError::Conflict(format!(
                "{} has not accepted a referral of this survivor",
                state.agency
            ));
            return Err(state.deny(caller, err, Some(&gid), None).await.into());
        }

        let mut conn = crate::store::acquire(&state.db).await?;
        let known = store::get_transfer(&mut conn, &input.transfer_id)
            .await
            .map_err(NodeError::internal)?;
        drop(conn);
        if let Some(known) = known {
            return if known.direction == "IN"
                && known.peer == from
                && known.survivor_id == gid.local()
            {
                Ok(CaseTransfer::new(&known, &from, &state.agency))
            } else {
                Err(NodeError::Conflict("that transfer ID is taken".into()).into())
            };
        }

        let now = exchange_schema::audit::now_millis();
        let record = TransferRecord {
            id: input.transfer_id.clone(),
            survivor_id: gid.local().to_owned(),
            direction: "IN".into(),
            peer: from.clone(),
            status: "RECEIVED".into(),
            consent_method: input.consent_method.as_str().to_owned(),
            requested_by: format!("{}/{}", caller.principal.agency, caller.principal.user),
            created_at: now,
            updated_at: now,
        };
        let mut event = change_event(
            caller,
            AuditKind::CaseTransfer,
            Some(gid.clone()),
            Some(format!("transfer:{}", record.id)),
        );
        event.purpose = Some(purpose);
        event.reason = "RECEIVED".into();
        event.explanation = Some(format!(
            "from {from}:{}; survivor's consent {}",
            gid.local(),
            input.consent_method
        ));
        let stored = record.clone();
        let vault = state.vault.clone();
        let received = state
            .audit
            .record::<_, NodeError, _>(move |conn| {
                Box::pin(async move {
                    store::import(conn, &vault, &package).await.map_err(|e| {
                        if super::case::is_unique_violation(&e) {
                            NodeError::Conflict(
                                "this node already holds a record with one of the case's IDs"
                                    .into(),
                            )
                        } else {
                            NodeError::internal(e)
                        }
                    })?;
                    readable(conn, &vault, &package.survivor_id).await?;
                    store::insert_transfer(conn, &stored)
                        .await
                        .map_err(NodeError::internal)?;
                    Ok(((), event))
                })
            })
            .await;
        match received {
            Ok(()) => Ok(CaseTransfer::new(&record, &from, &state.agency)),
            Err(err @ (NodeError::Conflict(_) | NodeError::BadInput(_))) => {
                Err(state.deny(caller, err, Some(&gid), None).await.into())
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// Inside the import: everything imported reads back as this node's own
/// records would (the closed lists, the JSON categories); a row that does
/// not is refused and nothing is kept.
async fn readable(
    conn: &mut sqlx::AnyConnection,
    vault: &crate::vault::Vault,
    survivor: &str,
) -> Result<(), NodeError> {
    let bad = |e: anyhow::Error| NodeError::bad_input(format!("package: {e:#}"));
    survivors::get(&mut *conn, vault, survivor)
        .await
        .map_err(bad)?;
    crate::store::grants::for_survivor(&mut *conn, vault, survivor)
        .await
        .map_err(bad)?;
    let referrals = crate::store::referrals::for_survivor(&mut *conn, vault, survivor)
        .await
        .map_err(bad)?;
    let ids: Vec<&str> = referrals.iter().map(|r| r.id.as_str()).collect();
    crate::store::referrals::histories(&mut *conn, vault, &ids)
        .await
        .map_err(bad)?;
    crate::store::case::notes_page(
        &mut *conn,
        vault,
        survivor,
        exchange_schema::Category::ALL,
        true,
        None,
        i64::MAX,
    )
    .await
    .map_err(bad)?;
    crate::store::case::services_for(&mut *conn, vault, survivor)
        .await
        .map_err(bad)?;
    crate::store::case::follow_ups_for(&mut *conn, survivor)
        .await
        .map_err(bad)?;
    crate::store::care_plan::versions(&mut *conn, vault, survivor)
        .await
        .map_err(bad)?;
    Ok(())
}

/// Step 1: the transfer PENDING, with its entry; the record read-only.
async fn start(
    state: &NodeState,
    caller: &Caller,
    gid: &GlobalId,
    to: &AgencyId,
    input: &TransferCaseInput,
) -> Result<TransferRecord, NodeError> {
    let now = exchange_schema::audit::now_millis();
    let transfer = TransferRecord {
        id: new_local_id(),
        survivor_id: gid.local().to_owned(),
        direction: "OUT".into(),
        peer: to.clone(),
        status: "PENDING".into(),
        consent_method: input.consent_method.as_str().to_owned(),
        requested_by: format!("{}/{}", caller.principal.agency, caller.principal.user),
        created_at: now,
        updated_at: now,
    };
    let mut event = step_event(caller, gid, &transfer, "STARTED");
    event.explanation = Some(format!(
        "to {to}; survivor's consent {}{}",
        input.consent_method,
        input
            .witness
            .as_deref()
            .map(|w| format!(", witnessed by {w}"))
            .unwrap_or_default()
    ));
    let stored = transfer.clone();
    let started = state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                crate::changes::require_survivor(conn, &stored.survivor_id).await?;
                store::insert_transfer(conn, &stored).await.map_err(|e| {
                    if super::case::is_unique_violation(&e) {
                        NodeError::Conflict("the case is already being transferred".into())
                    } else {
                        NodeError::internal(e)
                    }
                })?;
                Ok(((), event))
            })
        })
        .await;
    match started {
        Ok(()) => Ok(transfer),
        Err(err @ (NodeError::Conflict(_) | NodeError::NotFound(_) | NodeError::Moved(_))) => {
            Err(state.deny(caller, err, Some(gid), None).await)
        }
        Err(err) => Err(err),
    }
}

fn step_event(
    caller: &Caller,
    gid: &GlobalId,
    transfer: &TransferRecord,
    step: &str,
) -> exchange_schema::AuditEvent {
    let mut event = change_event(
        caller,
        AuditKind::CaseTransfer,
        Some(gid.clone()),
        Some(format!("transfer:{}", transfer.id)),
    );
    event.reason = step.to_owned();
    event
}

/// Step 3: the record deleted, tombstones left, the transfer COMPLETED.
async fn finish(
    state: &NodeState,
    caller: &Caller,
    gid: &GlobalId,
    transfer: &TransferRecord,
    package: &CasePackage,
    to: &AgencyId,
) -> Result<TransferRecord, NodeError> {
    let mut event = step_event(caller, gid, transfer, "COMPLETED");
    event.explanation = Some(format!("now {to}:{}", gid.local()));
    let (id, package, to) = (transfer.id.clone(), package.clone(), to.clone());
    let now = exchange_schema::audit::now_millis();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                if !store::settle_transfer(conn, &id, "COMPLETED", now)
                    .await
                    .map_err(NodeError::internal)?
                {
                    return Err(NodeError::Conflict(
                        "the transfer is no longer pending".into(),
                    ));
                }
                store::remove_and_tombstone(conn, &package, &to, now)
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await?;
    // The record lives at the new owner now, sealed under its key: this
    // node's key goes, so the copies in this node's backups stay closed.
    if let Err(err) = state
        .vault
        .destroy(gid.local(), &crate::vault::Part::ALL, now)
        .await
    {
        tracing::error!(error = %err, "the moved record's data key could not be destroyed");
    }
    let mut done = transfer.clone();
    done.status = "COMPLETED".into();
    done.updated_at = now;
    Ok(done)
}

/// The receiving node refused: the transfer ABORTED, the record writable.
async fn abort(
    state: &NodeState,
    caller: &Caller,
    gid: &GlobalId,
    transfer: &TransferRecord,
    code: &str,
) -> Result<(), NodeError> {
    let mut event = step_event(caller, gid, transfer, "ABORTED");
    event.explanation = Some(format!("{} refused: {code}", transfer.peer));
    let id = transfer.id.clone();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                store::settle_transfer(conn, &id, "ABORTED", exchange_schema::audit::now_millis())
                    .await
                    .map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await
}

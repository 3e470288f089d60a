//! The survivor's choice to be counted, or not, in the federation's
//! published statistics (`POST /statistics-choice`): recorded with its
//! audit entry (`SURVIVOR_UPDATED`, reason `STATISTICS_OPT_OUT` or
//! `STATISTICS_OPT_IN`) in one transaction.

use super::*;

pub(super) async fn statistics_choice(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let opted_out = match form.get("choice") {
        Some("out") => true,
        Some("in") => false,
        _ => {
            return error_page(
                &portal,
                &visit,
                NodeError::bad_input("choose to be counted or not").into(),
            );
        }
    };
    let event = survivor_event(
        &portal.node,
        AuditKind::SurvivorUpdated,
        Decision::Permit,
        if opted_out {
            "STATISTICS_OPT_OUT"
        } else {
            "STATISTICS_OPT_IN"
        },
        Some(&who.survivor_id),
    );
    let local = who.survivor_id.clone();
    let done = portal
        .node
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                if !crate::statistics::set_opt_out(conn, &local, opted_out)
                    .await
                    .map_err(NodeError::internal)?
                {
                    return Err(NodeError::NotFound("survivor"));
                }
                Ok(((), event))
            })
        })
        .await;
    let chrome = portal.chrome(&visit, "/home");
    consent::finished(
        &portal,
        &visit,
        chrome,
        if opted_out {
            "statistics-out-done"
        } else {
            "statistics-in-done"
        },
        done.map(|()| None),
    )
}

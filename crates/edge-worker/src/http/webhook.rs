//! `POST /webhooks/linear`: verify, store durably, answer.
//!
//! The delivery is committed to the store *before* the 200 goes out
//! (concurrent deliveries share one commit, see the store's group commit);
//! if the store cannot take it — down, or more deliveries waiting than it
//! queues — the answer is 503 so Linear retries. Duplicates (same
//! `Linear-Delivery`) are answered 200 and otherwise ignored.
//!
//! A new session is accepted (acknowledged while its delivery commits, or
//! right after a burst of webhooks is answered, see `intake_first`; its
//! task created once it has committed) straight from here for latency, at most
//! [`INLINE_ACCEPTS`] at a time; past that the delivery processor takes it.
//! That keeps a burst of delegations from spawning work, and memory,
//! without bound. Everything else goes to this process's processor in
//! memory once committed (see `intake::Handoff`). A delivery accepted
//! inline or handed over is stored leased to this process, so no other
//! claim takes it meanwhile; one the hand-off has no room for is stored
//! unleased and claimed from the store. One that is settled by what it is
//! alone (an `Issue` update that changes no task) is stored processed.

use super::HttpState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cyrus_linear::WebhookHeaders;
use cyrus_store::{Arrival, Insert, NewDelivery};
use serde_json::json;

/// New sessions being accepted from webhook handlers at once. Each holds
/// a copy of its delivery (a few KiB) and an acknowledgement in flight to
/// Linear, or waiting up to 2 s for a burst to be answered. At 200 new
/// sessions a second with the simulators on the same two cores an
/// acceptance takes up to a few hundred milliseconds, so 32 sent a steady
/// 200/s to the (then serial, slower) processor and the p99 to the
/// acknowledgement rose to 10 s; 256 leaves room for that and still
/// bounds the memory a burst can take.
pub(crate) const INLINE_ACCEPTS: usize = 256;

pub async fn linear(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = &state.ctx;
    let now = chrono::Utc::now();
    let headers = WebhookHeaders::from_header_map(&headers);
    // The body is checked and stored as received; only a new session,
    // accepted from here, needs its payload parsed.
    let verified = match state.secrets.verify_body(&headers, &body, now) {
        Ok(verified) => verified,
        Err(rejection) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => rejection.reason())
                .increment(1);
            tracing::warn!(reason = rejection.reason(), "webhook rejected: {rejection}");
            let status =
                StatusCode::from_u16(rejection.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return (
                status,
                Json(json!({"error": rejection.reason(), "message": rejection.to_string()})),
            )
                .into_response();
        }
    };
    // Counted once signed (unsigned noise holds nothing back): deferrable
    // work yields to a burst (`intake_first`).
    ctx.intake_load.arrived();
    let settled = crate::intake::settled_on_arrival(
        &verified.event_type,
        &verified.action,
        verified.updated_fields.as_deref(),
    );
    if settled.is_some() {
        // Nothing follows its commit, so a sender hanging up loses nothing
        // here; most deliveries are such updates, spared the task below.
        return store_and_answer(state.clone(), verified, settled, now).await;
    }
    // The rest runs to its end even if the sender hangs up meanwhile (hyper
    // then drops this handler): a delivery that commits is handed to the
    // processor, and a new session's acceptance finishes, whether or not
    // anyone hears the answer. Dropped with the handler, a committed
    // delivery waited for its lease to expire (30 s), and a new session's
    // acknowledgement with it.
    match state
        .background
        .spawn(store_and_answer(state.clone(), verified, None, now))
        .await
    {
        Ok(answer) => answer,
        Err(err) => {
            // A panic, or the runtime shutting down under it; the delivery
            // may have been stored all the same (its retry is then answered
            // as a duplicate).
            let why = if err.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            tracing::error!(error = %err, "webhook: storing a delivery {why}; asking Linear to retry");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "store_unavailable", "message": "the delivery may not have been stored; retry later"})),
            )
                .into_response()
        }
    }
}

/// Stores a verified delivery and answers for it; starts a new session's
/// inline acceptance, or hands the delivery to the processor, unless it is
/// `settled` (with that outcome) by what it is alone.
async fn store_and_answer(
    state: HttpState,
    verified: cyrus_linear::webhook::VerifiedBody,
    settled: Option<&'static str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    let ctx = &state.ctx;
    // What the lease it may be stored with is computed from, and released
    // by (see `Handoff::release`).
    let received_at = now.timestamp_millis();
    // A new session is accepted from here only if there is room for one
    // more (past the bound, the processor takes it).
    let new_session = crate::intake::accepts_inline(&verified.event_type, &verified.action);
    let mut inline = if new_session {
        state.inline.clone().try_acquire_owned().ok().map(|permit| {
            let accept = crate::intake::InlineAccept::begin(ctx, verified.clone(), received_at);
            (permit, accept)
        })
    } else {
        None
    };
    // Anything else goes to this process's processor in memory once stored,
    // if it has room; the delivery is then stored leased to this process,
    // as is a new session accepted from here, so no other claim takes it.
    // A delivery settled by what it is alone is stored processed and
    // needs neither.
    let slot = if inline.is_none() && settled.is_none() {
        state.handoff.reserve()
    } else {
        None
    };
    let leased = inline.is_some() || slot.is_some();
    let arrival = match settled {
        Some(outcome) => Arrival::Settled {
            outcome: outcome.into(),
        },
        None if leased => Arrival::Leased(state.handoff.lease(received_at)),
        None => Arrival::Unclaimed,
    };
    let new = NewDelivery {
        delivery_id: verified.delivery_id,
        organization_id: verified.organization_id,
        event_type: verified.event_type,
        action: Some(verified.action).filter(|a| !a.is_empty()),
        body: verified.body,
        received_at,
        arrival,
    };
    let handover = slot.map(|slot| (slot, new.clone()));
    let leased_id = leased.then(|| new.delivery_id.clone());
    let stored = ctx.store.insert_delivery(new).await;
    if !matches!(stored, Ok(Insert::Inserted)) {
        // A copy, or one Linear sends again after the 503: the stored
        // original or that retry acknowledges the session.
        if let Some((_, accept)) = inline.take() {
            accept.abandon();
        }
    }
    match stored {
        Ok(Insert::Inserted) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "accepted")
                .increment(1);
            // The stored row is the guarantee; accepting a new session right
            // away and waking the processor are only for latency (the
            // acknowledgement goes out within milliseconds, or right after
            // a burst).
            match inline {
                Some((permit, accept)) => {
                    let (early, handoff) = (ctx.clone(), state.handoff.clone());
                    state.background.spawn(async move {
                        accept.finish(&early, &handoff).await;
                        drop(permit);
                    });
                }
                None if new_session => {
                    metrics::counter!("cyrus_webhook_inline_deferred_total").increment(1);
                }
                None => {}
            }
            match handover {
                Some((slot, delivery)) => slot.send(delivery),
                None if settled.is_some() => {}
                None => {
                    if !leased {
                        state.handoff.stored_unleased();
                    }
                    ctx.wake.intake.notify_one();
                }
            }
            status_answer(r#"{"status":"accepted"}"#)
        }
        Ok(Insert::Duplicate) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "duplicate")
                .increment(1);
            status_answer(r#"{"status":"duplicate"}"#)
        }
        Err(cyrus_store::StoreError::Overloaded(why)) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "overloaded")
                .increment(1);
            tracing::warn!("webhook: store overloaded ({why}); asking Linear to retry");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                Json(json!({"error": "overloaded", "message": "too many deliveries are waiting to be stored; retry later"})),
            )
                .into_response()
        }
        Err(err) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "store_unavailable")
                .increment(1);
            tracing::error!(error = %err, "webhook: store unavailable; asking Linear to retry");
            if let Some(id) = leased_id {
                release_if_stored(&state, id, received_at);
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "store_unavailable", "message": "the delivery could not be stored; retry later"})),
            )
                .into_response()
        }
    }
}

/// A commit that failed may still have written its rows: an fsync that
/// failed after SQLite committed, a PostgreSQL connection lost while
/// committing. Such a delivery, stored leased to this process, would wait
/// 30 s for its lease (a new session's acknowledgement with it), since
/// neither the hand-off nor the inline acceptance takes it after a
/// failure; released, the processor claims it on its next pass. Releasing
/// a delivery that is not there changes nothing. It waits a moment first,
/// so that a commit still settling at the server is seen.
fn release_if_stored(state: &HttpState, delivery_id: String, received_at: i64) {
    let (ctx, handoff) = (state.ctx.clone(), state.handoff.clone());
    state.background.spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if let Err(err) = handoff.release(&ctx, &delivery_id, received_at).await {
            tracing::debug!(delivery = %delivery_id, error = %err, "webhook: releasing a delivery whose commit failed did not succeed; if it was stored, it is claimed when its lease expires");
        }
    });
}

/// A 200 with a fixed JSON body (the common answers, built without a JSON
/// tree).
fn status_answer(body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

//! `POST /webhooks/linear`: verify, store durably, answer.
//!
//! The delivery is committed to the store *before* the 200 goes out
//! (concurrent deliveries share one commit, see the store's group commit);
//! if the store cannot take it — down, or more deliveries waiting than it
//! queues — the answer is 503 so Linear retries. Duplicates (same
//! `Linear-Delivery`) are answered 200 and otherwise ignored.
//!
//! A new session is accepted (acknowledged, its task created) straight from
//! here for latency, at most [`INLINE_ACCEPTS`] at a time; past that the
//! delivery processor takes it from the store. That keeps a burst of
//! delegations from spawning work, and memory, without bound.

use super::HttpState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cyrus_linear::WebhookHeaders;
use cyrus_store::{Insert, NewDelivery};
use serde_json::json;

/// New sessions being accepted from webhook handlers at once. Each holds
/// its parsed delivery (a few KiB) and an acknowledgement in flight to
/// Linear. At 200 new sessions a second with the simulators on the same
/// two cores an acceptance takes up to a few hundred milliseconds, so 32
/// sent a steady 200/s to the (serial, slower) processor and the p99 to
/// the acknowledgement rose to 10 s; 256 leaves room for that and still
/// bounds the memory a burst can take.
pub(crate) const INLINE_ACCEPTS: usize = 256;

pub async fn linear(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = &state.ctx;
    let now = chrono::Utc::now();
    let headers = WebhookHeaders::from_header_map(&headers);
    let mut delivery = match state.secrets.verify(&headers, &body, now) {
        Ok(delivery) => delivery,
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
    // Only a new session needs the parsed payload after it is stored.
    let inline = crate::intake::accepts_inline(&delivery);
    let payload = if inline {
        delivery.payload.clone()
    } else {
        std::mem::take(&mut delivery.payload)
    };
    let new = NewDelivery {
        delivery_id: delivery.delivery_id.clone(),
        organization_id: delivery.organization_id.clone(),
        event_type: delivery.event_type.clone(),
        action: Some(delivery.action.clone()).filter(|a| !a.is_empty()),
        payload,
        received_at: now.timestamp_millis(),
    };
    match ctx.store.insert_delivery(&new).await {
        Ok(Insert::Inserted) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "accepted")
                .increment(1);
            // The stored row is the guarantee; accepting a new session right
            // away and waking the processor are only for latency (the
            // acknowledgement goes out within milliseconds).
            if inline {
                match state.inline.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let early = ctx.clone();
                        tokio::spawn(async move {
                            crate::intake::accept_inline(&early, &delivery).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        metrics::counter!("cyrus_webhook_inline_deferred_total").increment(1);
                    }
                }
            }
            ctx.wake.intake.notify_one();
            (StatusCode::OK, Json(json!({"status": "accepted"}))).into_response()
        }
        Ok(Insert::Duplicate) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "duplicate")
                .increment(1);
            (StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response()
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
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "store_unavailable", "message": "the delivery could not be stored; retry later"})),
            )
                .into_response()
        }
    }
}

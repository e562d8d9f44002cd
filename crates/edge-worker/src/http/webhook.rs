//! `POST /webhooks/linear`: verify, store durably, answer.
//!
//! The delivery is committed to the store *before* the 200 goes out; if the
//! store cannot take it the answer is 503 so Linear retries. Duplicates (same
//! `Linear-Delivery`) are answered 200 and otherwise ignored.

use super::HttpState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cyrus_linear::WebhookHeaders;
use cyrus_store::{Insert, NewDelivery};
use serde_json::json;

pub async fn linear(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = &state.ctx;
    let now = chrono::Utc::now();
    let headers = WebhookHeaders::from_header_map(&headers);
    let delivery = match state.secrets.verify(&headers, &body, now) {
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
    let new = NewDelivery {
        delivery_id: delivery.delivery_id.clone(),
        organization_id: delivery.organization_id.clone(),
        event_type: delivery.event_type.clone(),
        action: Some(delivery.action.clone()).filter(|a| !a.is_empty()),
        payload: delivery.payload.clone(),
        received_at: now.timestamp_millis(),
    };
    match ctx.store.insert_delivery(&new).await {
        Ok(Insert::Inserted) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "accepted")
                .increment(1);
            // The stored row is the guarantee; accepting a new session right
            // away and waking the processor are only for latency (the
            // acknowledgement goes out within milliseconds).
            let early = ctx.clone();
            let verified = delivery.clone();
            tokio::spawn(async move { crate::intake::accept_inline(&early, &verified).await });
            ctx.wake.intake.notify_one();
            (StatusCode::OK, Json(json!({"status": "accepted"}))).into_response()
        }
        Ok(Insert::Duplicate) => {
            metrics::counter!("cyrus_webhook_deliveries_total", "outcome" => "duplicate")
                .increment(1);
            (StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response()
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

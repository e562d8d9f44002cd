//! The Prometheus recorder behind `/metrics`.
//!
//! The `metrics` facade has one global recorder per process; tests and the
//! demo start several workers in one process, so the recorder is installed
//! once and every worker renders the same registry.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets for latencies measured in seconds, from 5 ms to 1 h.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0,
];

/// Installs the recorder (first call) and returns the handle that renders it.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS_BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding
            // application); we still render our own registry.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "cyrus_webhook_deliveries_total",
        "Linear webhook deliveries by outcome"
    );
    describe_gauge!("cyrus_tasks", "Tasks by state");
    describe_histogram!(
        "cyrus_time_to_ack_seconds",
        Unit::Seconds,
        "Webhook received to acknowledgement delivered"
    );
    describe_histogram!(
        "cyrus_time_to_start_seconds",
        Unit::Seconds,
        "Task created to Codegen run created"
    );
    describe_histogram!(
        "cyrus_run_duration_seconds",
        Unit::Seconds,
        "Codegen run created to terminal status seen"
    );
    describe_gauge!(
        "cyrus_spend_today_micro_dollars",
        "Estimated spend today, in micro-dollars (estimate)"
    );
    describe_counter!("cyrus_alerts_raised_total", "Alerts raised, by kind");
    describe_counter!(
        "cyrus_alerts_resolved_total",
        "Alerts whose condition ended, by kind"
    );
    describe_gauge!(
        "codegen_rate_headroom",
        "Codegen calls left in the current window, by endpoint class"
    );
    describe_gauge!(
        "linear_rate_headroom",
        "Share of Linear's rate-limit budget left (0-1), by workspace"
    );
    describe_gauge!("cyrus_active_runs", "Codegen runs active across replicas");
    describe_counter!(
        "codegen_api_calls_total",
        "Codegen API calls by endpoint and HTTP status"
    );
    describe_counter!(
        "linear_api_calls_total",
        "Linear GraphQL calls by operation and outcome"
    );
    describe_counter!(
        "codegen_retries_total",
        "Codegen calls retried, by endpoint"
    );
    describe_histogram!(
        "codegen_rate_limit_wait_seconds",
        Unit::Seconds,
        "Time our own limiter made a Codegen call wait, by class"
    );
}

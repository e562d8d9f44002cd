//! The store's one integration suite: every test runs against SQLite (its
//! own temp file) and PostgreSQL (its own schema).

mod decisions;
mod deliveries;
mod harness;
mod installations;
mod ledger;
mod scheduling;

harness::both!(
    scheduling::migrations_twice_are_harmless,
    scheduling::deliveries_dedupe_and_lease,
    deliveries::batch_dedupes_inside_and_against_table,
    deliveries::concurrent_inserts_answer_each_caller,
    deliveries::sqlite_sync_defaults_to_full,
    deliveries::a_claimed_batch_is_marked_processed_at_once,
    deliveries::a_delivery_stored_leased_is_left_to_its_receiver,
    deliveries::a_delivery_stored_settled_is_processed_and_still_deduplicates,
    deliveries::processed_deliveries_past_the_retention_are_pruned_with_their_bodies,
    scheduling::task_unique_per_session,
    scheduling::issues_with_live_tasks_are_read_at_once,
    scheduling::new_sessions_are_accepted_once_in_shared_batches,
    scheduling::a_refused_session_fails_alone_in_its_batch,
    deliveries::a_refused_delivery_fails_alone_in_its_batch,
    deliveries::a_body_with_a_nul_escape_is_stored,
    scheduling::claim_order_priority_then_fifo,
    scheduling::expired_lease_is_claimable_again,
    scheduling::stale_owner_cannot_write,
    scheduling::concurrent_claimers_never_share,
    scheduling::run_slots_are_capped_atomically,
    ledger::outbox_is_idempotent,
    ledger::activity_stored_delivered_is_never_sent,
    scheduling::settled_task_reopens_for_a_follow_up,
    ledger::reservations_hold_under_concurrency,
    ledger::token_bucket_never_exceeds_capacity,
    ledger::sliding_window_grants_exactly_max_per_window,
    ledger::costs_alerts_followups,
    ledger::stop_requests_are_their_own_kind,
    installations::installation_round_trip,
    installations::reconnect_replaces_tokens,
    installations::installation_status_changes,
    installations::refresh_is_single_flight,
    installations::refresh_lease_is_fenced,
    installations::pending_authorization_is_taken_once,
    installations::tokens_never_stored_in_plain_text,
    installations::wrong_key_is_reported_clearly,
    installations::key_rotation_with_previous_key,
    installations::permission_changes_are_recorded_once,
    decisions::audit_rows_are_recorded_once_filtered_and_pruned,
    decisions::triage_claims_once_per_issue_within_the_daily_cap,
    decisions::experiment_assignments_and_late_outcomes,
);

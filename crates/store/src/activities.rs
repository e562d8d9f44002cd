//! The outbox of Linear agent activities: enqueued idempotently in the same
//! step that decides to post, delivered by a leased worker.

use std::time::Duration;

use crate::{Activity, ActivityCounts, Insert, NewActivity, Result, Store, UnixMillis};

impl Store {
    /// Enqueues an activity unless one with the same `dedupe_key` exists
    /// (in any status), so a retried step never posts twice.
    pub async fn enqueue_activity(&self, a: &NewActivity, now: UnixMillis) -> Result<Insert> {
        todo!("{a:?}{now}")
    }

    /// Atomically leases up to `limit` pending activities with
    /// `not_before <= now` and a free or expired lease to `owner` until
    /// `now + lease`, in enqueue order, incrementing `attempts`.
    pub async fn claim_due_activities(
        &self,
        owner: &str,
        lease: Duration,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Activity>> {
        todo!("{owner}{lease:?}{now}{limit}")
    }

    /// Marks an activity delivered (terminal). Idempotent.
    pub async fn mark_activity_delivered(&self, id: i64, now: UnixMillis) -> Result<()> {
        todo!("{id}{now}")
    }

    /// Puts a pending activity back for a retry at `at`, recording `error`
    /// and clearing the lease.
    pub async fn reschedule_activity(&self, id: i64, at: UnixMillis, error: &str) -> Result<()> {
        todo!("{id}{at}{error}")
    }

    /// Gives up on an activity (permanent error): terminal, kept for audit.
    pub async fn give_up_activity(&self, id: i64, reason: &str) -> Result<()> {
        todo!("{id}{reason}")
    }

    /// Reads one activity.
    pub async fn get_activity(&self, id: i64) -> Result<Option<Activity>> {
        todo!("{id}")
    }

    /// Outbox counts for one session.
    pub async fn activity_counts(&self, session_id: &str) -> Result<ActivityCounts> {
        todo!("{session_id}")
    }
}

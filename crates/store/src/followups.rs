//! Follow-up prompts a user sent into a busy session, deduped by Linear's
//! `agentActivity.id` and delivered to the run in order.

use crate::{FollowUp, Insert, Result, Store, UnixMillis};

impl Store {
    /// Stores a follow-up prompt unless `activity_id` was stored before.
    pub async fn add_followup(&self, task_id: &str, activity_id: &str, body: &str, now: UnixMillis) -> Result<Insert> {
        todo!("{task_id}{activity_id}{body}{now}")
    }

    /// Undelivered follow-ups of a task, oldest first.
    pub async fn pending_followups(&self, task_id: &str) -> Result<Vec<FollowUp>> {
        todo!("{task_id}")
    }

    /// Marks a follow-up delivered to the run. Idempotent.
    pub async fn mark_followup_delivered(&self, id: i64, now: UnixMillis) -> Result<()> {
        todo!("{id}{now}")
    }
}

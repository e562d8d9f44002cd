//! Cost ledger, daily budget holds shared across replicas, and alerts that
//! are raised once per condition.

use chrono::NaiveDate;
use cyrus_core::MicroDollars;

use crate::{Alert, CostBucket, CostDimension, CostEntry, Insert, Reservation, Result, Store, UnixMillis};

impl Store {
    /// Appends a cost entry; idempotent on `(task_id, seq)`.
    pub async fn add_cost(&self, e: &CostEntry) -> Result<Insert> {
        todo!("{e:?}")
    }

    /// Recorded spend on `day` (sum of cost entries).
    pub async fn spend_for_day(&self, day: NaiveDate) -> Result<MicroDollars> {
        todo!("{day}")
    }

    /// Recorded spend of one task.
    pub async fn spend_for_task(&self, task_id: &str) -> Result<MicroDollars> {
        todo!("{task_id}")
    }

    /// Spend grouped by `by` over `from..=to`, largest first.
    pub async fn cost_breakdown(&self, from: NaiveDate, to: NaiveDate, by: CostDimension) -> Result<Vec<CostBucket>> {
        todo!("{from}{to}{by:?}")
    }

    /// Atomically holds `amount` of `day`'s budget for `task_id` if recorded
    /// spend + other open holds + `amount` stays within `limit`; else
    /// `WouldExceed` with the current figures. Idempotent per task: a task
    /// with an open hold gets `Reserved` again without a second hold.
    pub async fn try_reserve(
        &self,
        day: NaiveDate,
        task_id: &str,
        amount: MicroDollars,
        limit: MicroDollars,
        now: UnixMillis,
    ) -> Result<Reservation> {
        todo!("{day}{task_id}{amount:?}{limit:?}{now}")
    }

    /// Closes a task's open hold, noting the `actual` cost (record the spend
    /// itself with [`Store::add_cost`]). Returns false if none was open.
    pub async fn settle_reservation(&self, task_id: &str, actual: MicroDollars) -> Result<bool> {
        todo!("{task_id}{actual:?}")
    }

    /// Drops a task's open hold without cost (the run never started).
    /// Returns false if none was open.
    pub async fn release_reservation(&self, task_id: &str) -> Result<bool> {
        todo!("{task_id}")
    }

    /// Total of open holds on `day`.
    pub async fn reserved_for_day(&self, day: NaiveDate) -> Result<MicroDollars> {
        todo!("{day}")
    }

    /// Raises alert `key`. Returns true only when it was not already active
    /// (so a notification goes out once per condition, across replicas).
    pub async fn raise_alert(&self, key: &str, message: &str, now: UnixMillis) -> Result<bool> {
        todo!("{key}{message}{now}")
    }

    /// Clears alert `key` (it may be raised again later). Returns true if it
    /// was active.
    pub async fn clear_alert(&self, key: &str, now: UnixMillis) -> Result<bool> {
        todo!("{key}{now}")
    }

    /// Active alerts, oldest first.
    pub async fn active_alerts(&self) -> Result<Vec<Alert>> {
        todo!()
    }
}

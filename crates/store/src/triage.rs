//! Proactive triage's claims: one start per issue, ever, and at most
//! `max_per_day` per UTC day, decided atomically across replicas.

use crate::connect::{in_write_tx, on_pool};
use crate::{Result, Store, TriageClaim};

impl Store {
    /// Claims a triage start for `issue_id` on `day` (`YYYY-MM-DD`) before
    /// Linear is asked, so a crash afterwards never starts it twice.
    pub async fn claim_triage_start(
        &self,
        issue_id: &str,
        organization_id: &str,
        rule: &str,
        day: &str,
        max_per_day: u32,
        now: i64,
    ) -> Result<TriageClaim> {
        let claim = in_write_tx!(self, "triage_starts", tx => {
            let (existing,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM triage_starts WHERE issue_id = $1")
                    .bind(issue_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let (today,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM triage_starts WHERE day = $1")
                    .bind(day)
                    .fetch_one(&mut *tx)
                    .await?;
            if existing > 0 {
                TriageClaim::AlreadyStarted
            } else if today >= i64::from(max_per_day) {
                TriageClaim::DailyCapReached
            } else {
                sqlx::query(
                    "INSERT INTO triage_starts (issue_id, organization_id, rule, day, claimed_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(issue_id)
                .bind(organization_id)
                .bind(rule)
                .bind(day)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                TriageClaim::Claimed
            }
        });
        Ok(claim)
    }

    /// Records the session Linear opened for a claimed start.
    pub async fn set_triage_session(&self, issue_id: &str, session_id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE triage_starts SET session_id = $1 WHERE issue_id = $2")
            .bind(session_id)
            .bind(issue_id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The session triage opened for `session_id`'s issue, if triage opened
    /// it: the rule's name.
    pub async fn triage_rule_for_session(&self, session_id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT rule FROM triage_starts WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(p)
        .await?);
        Ok(row.map(|(r,)| r))
    }

    /// Starts claimed on `day`.
    pub async fn triage_starts_on(&self, day: &str) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*) FROM triage_starts WHERE day = $1",
        )
        .bind(day)
        .fetch_one(p)
        .await?);
        Ok(n)
    }
}

//! New sessions on one issue are accepted one at a time on this replica.
//!
//! Accepting a session reads the store for a live task on its issue (one
//! active run per issue: a second session becomes a follow-up to it), then
//! stores its task. New sessions are stored in shared batches, so two
//! sessions on one issue that arrive together would both read "no live
//! task" before either task was stored, and both would start a run. Holding
//! the issue's gate from that read until the task is stored makes the
//! second session see the first. Replicas do not share the gate: two
//! replicas taking sessions of one issue within the same few milliseconds
//! can still both start one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Issues held by an acceptance, or idle since (swept past [`SWEEP_AT`]).
#[derive(Default)]
pub(crate) struct IssueGate {
    issues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Entries kept before the idle ones are dropped. Far above the sessions
/// accepted at once (the webhook handlers' bound, 256, plus the
/// processor's, 128), so a sweep is rare and leaves few.
const SWEEP_AT: usize = 1024;

impl IssueGate {
    /// Waits until no other acceptance holds `issue`; holds it until the
    /// returned guard is dropped.
    pub(crate) async fn enter(&self, issue: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut issues = self.issues.lock().unwrap_or_else(|e| e.into_inner());
            if issues.len() >= SWEEP_AT {
                // Held or awaited entries have clones outside the map.
                issues.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            issues.entry(issue.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.issues.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A second acceptance on an issue waits for the first; another issue
    /// does not; idle entries go once the map is full.
    #[tokio::test]
    async fn one_acceptance_per_issue_at_a_time() {
        let gate = Arc::new(IssueGate::default());
        let first = gate.enter("issue-1").await;
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter("issue-1").await })
        };
        let other = tokio::time::timeout(Duration::from_secs(5), gate.enter("issue-2")).await;
        assert!(other.is_ok(), "another issue must not wait");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the same issue must wait");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiter goes through once the first is done")
            .unwrap();
        drop((second, other));

        for i in 0..SWEEP_AT + 10 {
            drop(gate.enter(&format!("idle-{i}")).await);
        }
        assert!(
            gate.len() < SWEEP_AT,
            "idle entries are swept: {}",
            gate.len()
        );
    }
}

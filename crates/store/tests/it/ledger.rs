//! Outbox, budget holds, rate tokens, costs, alerts and follow-ups.

use chrono::NaiveDate;
use cyrus_core::MicroDollars;
use cyrus_store::*;
use serde_json::json;

use crate::harness::TestDb;
use crate::scheduling::new_task;

const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

fn activity(key: &str, at: UnixMillis) -> NewActivity {
    NewActivity {
        session_id: "sess".into(),
        kind: "response".into(),
        body: json!({"body": key}),
        ephemeral: false,
        dedupe_key: key.into(),
        not_before: at,
        delivered_at: None,
    }
}

pub async fn outbox_is_idempotent(db: TestDb) {
    let s = &db.store;
    assert_eq!(
        s.enqueue_activity(&activity("final:sess", 0), 0)
            .await
            .unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        s.enqueue_activity(&activity("final:sess", 0), 1)
            .await
            .unwrap(),
        Insert::Duplicate
    );
    assert_eq!(
        s.enqueue_activity(&activity("later", 500), 1)
            .await
            .unwrap(),
        Insert::Inserted
    );
    let got = s.claim_due_activities("w", LEASE, 10, 10).await.unwrap();
    assert_eq!(got.len(), 1, "only the due one: {got:?}");
    assert!(
        s.claim_due_activities("w2", LEASE, 11, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    s.reschedule_activity(got[0].id, 1_000, "429")
        .await
        .unwrap();
    let again = s
        .claim_due_activities("w2", LEASE, 1_000, 10)
        .await
        .unwrap();
    // Per-session order: the later activity waits behind the retried one.
    assert_eq!(again.iter().map(|a| a.attempts).collect::<Vec<_>>(), [2]);
    s.mark_activity_delivered(again[0].id, 1_001).await.unwrap();
    s.mark_activity_delivered(again[0].id, 1_002).await.unwrap();
    let later = s
        .claim_due_activities("w2", LEASE, 1_003, 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "released once the earlier one is delivered");
    assert_eq!(later[0].dedupe_key, "later");
    s.give_up_activity(later[0].id, "INPUT_ERROR")
        .await
        .unwrap();
    assert!(matches!(
        s.give_up_activity(again[0].id, "x").await,
        Err(StoreError::Conflict(_))
    ));
    // Delivered keys stay deduped forever.
    assert_eq!(
        s.enqueue_activity(&activity("final:sess", 0), 2)
            .await
            .unwrap(),
        Insert::Duplicate
    );
    assert_eq!(
        s.activity_counts("sess").await.unwrap(),
        ActivityCounts {
            pending: 0,
            delivered: 1,
            gave_up: 1
        }
    );
}

pub async fn activity_stored_delivered_is_never_sent(db: TestDb) {
    let s = &db.store;
    let posted = NewActivity {
        delivered_at: Some(5),
        ..activity("ack:sess", 0)
    };
    assert_eq!(
        s.enqueue_activity(&posted, 5).await.unwrap(),
        Insert::Inserted
    );
    s.enqueue_activity(&activity("next", 0), 6).await.unwrap();
    let due = s.claim_due_activities("w", LEASE, 10, 10).await.unwrap();
    // The delivered row neither goes out nor holds back the session's next one.
    assert_eq!(
        due.iter()
            .map(|a| a.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        ["next"]
    );
    // The outbox's own enqueue of the same write (after a crash) is a duplicate.
    assert_eq!(
        s.enqueue_activity(&activity("ack:sess", 0), 7)
            .await
            .unwrap(),
        Insert::Duplicate
    );
    assert_eq!(s.activity_counts("sess").await.unwrap().delivered, 1);
}

pub async fn reservations_hold_under_concurrency(db: TestDb) {
    let day = NaiveDate::from_ymd_opt(2025, 10, 1).unwrap();
    db.store
        .add_cost(&CostEntry {
            task_id: "old".into(),
            seq: 1,
            repository: "r".into(),
            model: "m".into(),
            task_type: None,
            day,
            amount: MicroDollars(300),
            recorded_at: 0,
        })
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..20 {
        let store = db.replica().await;
        handles.push(tokio::spawn(async move {
            store
                .try_reserve(
                    day,
                    &format!("t{i}"),
                    MicroDollars(100),
                    MicroDollars(1_000),
                    1,
                )
                .await
                .unwrap()
        }));
    }
    let mut reserved = 0;
    for h in handles {
        if h.await.unwrap() == Reservation::Reserved {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 7, "(1000 - 300 spent) / 100");
    assert_eq!(
        db.store.reserved_for_day(day).await.unwrap(),
        MicroDollars(700)
    );
    assert_eq!(
        db.store
            .try_reserve(day, "late", MicroDollars(1), MicroDollars(1_000), 2)
            .await
            .unwrap(),
        Reservation::WouldExceed {
            spent: MicroDollars(300),
            reserved: MicroDollars(700)
        }
    );
    assert!(
        db.store
            .settle_reservation("t0", MicroDollars(50))
            .await
            .unwrap()
            || db
                .store
                .settle_reservation("t1", MicroDollars(50))
                .await
                .unwrap()
    );
    assert_eq!(
        db.store.reserved_for_day(day).await.unwrap(),
        MicroDollars(600)
    );
    assert!(!db.store.release_reservation("nobody").await.unwrap());
}

/// Eight replicas (own connections) each ask five times at once; how many
/// of the 40 asks were granted.
async fn grants_when_replicas_race<F, Fut>(db: &TestDb, ask: F) -> usize
where
    F: Fn(Store) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = RateDecision> + Send,
{
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = db.replica().await;
        let ask = ask.clone();
        handles.push(tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..5 {
                if ask(store.clone()).await == RateDecision::Granted {
                    granted += 1;
                }
            }
            granted
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total
}

pub async fn token_bucket_never_exceeds_capacity(db: TestDb) {
    // No time passes: only the initial capacity can be granted.
    let total = grants_when_replicas_race(&db, |store| async move {
        store
            .take_rate_token("codegen", 10, 0.001, 1_000)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(total, 10);
    assert_eq!(
        db.store
            .take_rate_token("codegen", 10, 0.001, 1_000)
            .await
            .unwrap(),
        RateDecision::WaitMs(1_000)
    );
    assert_eq!(
        db.store
            .take_rate_token("codegen", 10, 0.001, 2_000)
            .await
            .unwrap(),
        RateDecision::Granted
    );
    assert!(
        matches!(
            db.store
                .take_rate_token("codegen", 10, 0.001, 500)
                .await
                .unwrap(),
            RateDecision::WaitMs(_)
        ),
        "clock going back adds nothing"
    );
}

pub async fn costs_alerts_followups(db: TestDb) {
    let s = &db.store;
    let d1 = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
    for (task, seq, repo, day, micros) in [
        ("a", 1, "web", d1, 10),
        ("a", 2, "web", d2, 5),
        ("b", 1, "api", d2, 40),
    ] {
        let e = CostEntry {
            task_id: task.into(),
            seq,
            repository: repo.into(),
            model: "sonnet".into(),
            task_type: Some(cyrus_core::TaskType::Builder),
            day,
            amount: MicroDollars(micros),
            recorded_at: 0,
        };
        assert_eq!(s.add_cost(&e).await.unwrap(), Insert::Inserted);
        assert_eq!(s.add_cost(&e).await.unwrap(), Insert::Duplicate);
    }
    assert_eq!(s.spend_for_day(d2).await.unwrap(), MicroDollars(45));
    assert_eq!(s.spend_for_task("a").await.unwrap(), MicroDollars(15));
    let by_repo = s
        .cost_breakdown(d1, d2, CostDimension::Repository)
        .await
        .unwrap();
    assert_eq!(
        by_repo
            .iter()
            .map(|b| (b.key.as_str(), b.total.0, b.entries))
            .collect::<Vec<_>>(),
        [("api", 40, 1), ("web", 15, 2)]
    );
    let by_day = s.cost_breakdown(d2, d2, CostDimension::Day).await.unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(by_day[0].key, "2025-01-02");

    assert!(s.raise_alert("budget", "80% spent", 1).await.unwrap());
    assert!(!s.raise_alert("budget", "80% spent", 2).await.unwrap());
    assert_eq!(s.active_alerts().await.unwrap().len(), 1);
    assert!(s.clear_alert("budget", 3).await.unwrap());
    assert!(s.active_alerts().await.unwrap().is_empty());
    assert!(s.raise_alert("budget", "again", 4).await.unwrap());

    let (t, _) = s.create_task_if_absent(&new_task("f", 1, 0)).await.unwrap();
    assert_eq!(
        s.add_followup(&t.id, "act-1", "also fix docs", 5)
            .await
            .unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        s.add_followup(&t.id, "act-1", "also fix docs", 6)
            .await
            .unwrap(),
        Insert::Duplicate
    );
    s.add_followup(&t.id, "act-2", "and tests", 7)
        .await
        .unwrap();
    let pending = s.pending_followups(&t.id).await.unwrap();
    assert_eq!(
        pending.iter().map(|f| f.body.as_str()).collect::<Vec<_>>(),
        ["also fix docs", "and tests"]
    );
    s.mark_followup_delivered(pending[0].id, 8).await.unwrap();
    assert_eq!(s.pending_followups(&t.id).await.unwrap().len(), 1);

    let timings = s.task_timings(0, 100).await.unwrap();
    assert_eq!(timings.len(), 1);
    assert_eq!(s.task_outcomes(0, 100).await.unwrap(), vec![(None, 1)]);
}

pub async fn stop_requests_are_their_own_kind(db: TestDb) {
    let s = &db.store;
    let (t, _) = s.create_task_if_absent(&new_task("k", 1, 0)).await.unwrap();
    s.add_followup(&t.id, "act-1", "please also add docs", 1)
        .await
        .unwrap();
    assert_eq!(
        s.add_stop_request(&t.id, "stop:1", "You un-delegated the issue.", 2)
            .await
            .unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        s.add_stop_request(&t.id, "stop:1", "You un-delegated the issue.", 3)
            .await
            .unwrap(),
        Insert::Duplicate
    );
    let pending = s.pending_followups(&t.id).await.unwrap();
    let kinds: Vec<_> = pending.iter().map(|f| (f.kind, f.body.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (FollowUpKind::Prompt, "please also add docs"),
            (FollowUpKind::Stop, "You un-delegated the issue."),
        ]
    );
}

pub async fn sliding_window_grants_exactly_max_per_window(db: TestDb) {
    // 8 replicas race for slots at the same instant: exactly `max` win.
    let total = grants_when_replicas_race(&db, |store| async move {
        store
            .take_window_slot("create", 10, 60_000, 1_000)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(total, 10);
    // Full until the oldest grant leaves the window.
    assert_eq!(
        db.store
            .take_window_slot("create", 10, 60_000, 30_000)
            .await
            .unwrap(),
        RateDecision::WaitMs(31_000)
    );
    assert_eq!(
        db.store
            .take_window_slot("create", 10, 60_000, 61_000)
            .await
            .unwrap(),
        RateDecision::Granted
    );
    // Steady state: one slot frees per grant that ages out, so a caller that
    // waits as told gets `max` per window, never more.
    let mut now = 61_000;
    let mut grants = vec![61_000i64];
    while grants.len() < 40 {
        match db
            .store
            .take_window_slot("steady", 10, 60_000, now)
            .await
            .unwrap()
        {
            RateDecision::Granted => grants.push(now),
            RateDecision::WaitMs(ms) => now += ms as i64,
        }
    }
    let grants = &grants[1..];
    for (i, t) in grants.iter().enumerate() {
        let in_window = grants[..=i].iter().filter(|g| **g > t - 60_000).count();
        assert!(
            in_window <= 10,
            "{in_window} grants in the window ending at {t}"
        );
    }
    let span = grants.last().unwrap() - grants.first().unwrap();
    assert!(
        span <= 4 * 60_000,
        "39 grants took {span} ms: under 10 per window"
    );
}

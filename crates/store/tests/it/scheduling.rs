//! Deliveries, tasks, leases and run slots.

use std::collections::HashSet;
use std::time::Duration;

use cyrus_core::lifecycle::TaskState;
use cyrus_store::*;
use serde_json::json;

use crate::harness::TestDb;

const LEASE: Duration = Duration::from_secs(60);

pub fn new_task(session: &str, priority: i64, created_at: UnixMillis) -> NewTask {
    NewTask {
        agent_session_id: session.to_string(),
        issue_id: format!("issue-{session}"),
        issue_identifier: format!("ENG-{session}"),
        organization_id: "org".into(),
        state: TaskState::Queued,
        priority,
        created_at,
        run_at: created_at,
        max_attempts: 3,
        data: json!({"prompt": session}),
    }
}

pub async fn migrations_twice_are_harmless(db: TestDb) {
    assert!(db.store.migrations_applied().await.unwrap());
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ping().await.unwrap();
    assert!(db.store.migrations_applied().await.unwrap());
}

pub async fn deliveries_dedupe_and_lease(db: TestDb) {
    let s = &db.store;
    let d = NewDelivery {
        delivery_id: "d1".into(),
        organization_id: "org".into(),
        event_type: "SomethingNew".into(),
        action: None,
        body: r#"{"a": 1}"#.into(),
        received_at: 1_000,
        arrival: Arrival::Unclaimed,
    };
    assert_eq!(
        s.insert_delivery(d.clone()).await.unwrap(),
        Insert::Inserted
    );
    assert_eq!(s.insert_delivery(d).await.unwrap(), Insert::Duplicate);
    let claimed = s
        .claim_unprocessed_deliveries("w1", LEASE, 2_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].payload, json!({"a": 1}));
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        s.claim_unprocessed_deliveries("w2", LEASE, 2_001, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A graceful shutdown of w1 hands it over at once.
    assert_eq!(s.release_lease("w1").await.unwrap(), 1);
    let handed = s
        .claim_unprocessed_deliveries("w3", LEASE, 2_002, 10)
        .await
        .unwrap();
    assert_eq!(handed.len(), 1, "released on shutdown: {handed:?}");
    // Lease expired: another worker takes it over.
    let again = s
        .claim_unprocessed_deliveries("w2", LEASE, 2_002 + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 3);
    s.mark_delivery_processed("d1", "ok", 70_000).await.unwrap();
    assert!(
        s.claim_unprocessed_deliveries("w3", LEASE, 999_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get_delivery("d1")
            .await
            .unwrap()
            .unwrap()
            .outcome
            .as_deref(),
        Some("ok")
    );
    assert!(matches!(
        s.mark_delivery_processed("nope", "ok", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn task_unique_per_session(db: TestDb) {
    let s = &db.store;
    let (a, created) = s
        .create_task_if_absent(&new_task("s1", 2, 10))
        .await
        .unwrap();
    assert!(created);
    let (b, created_again) = s
        .create_task_if_absent(&new_task("s1", 1, 20))
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(a, b);
    assert_eq!(s.get_task(&a.id).await.unwrap().unwrap(), a);
    assert_eq!(
        s.find_active_task_for_issue("issue-s1")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(
        s.find_active_task_for_issue("issue-other")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.count_tasks_by_state().await.unwrap(),
        vec![("queued".to_string(), 1)]
    );
}

pub async fn claim_order_priority_then_fifo(db: TestDb) {
    let s = &db.store;
    // (session, priority, created_at)
    for (sess, prio, at) in [
        ("none", 0, 1),
        ("low", 4, 2),
        ("urgent-late", 1, 9),
        ("urgent", 1, 3),
        ("high", 2, 4),
    ] {
        s.create_task_if_absent(&new_task(sess, prio, at))
            .await
            .unwrap();
    }
    let mut future = new_task("future", 1, 1);
    future.run_at = 1_000;
    s.create_task_if_absent(&future).await.unwrap();

    let first = s.claim_due_tasks("w", LEASE, 100, 3).await.unwrap();
    let names: Vec<_> = first.iter().map(|t| t.agent_session_id.as_str()).collect();
    assert_eq!(names, ["urgent", "urgent-late", "high"]);
    let rest = s.claim_due_tasks("w", LEASE, 100, 10).await.unwrap();
    let names: Vec<_> = rest.iter().map(|t| t.agent_session_id.as_str()).collect();
    assert_eq!(
        names,
        ["low", "none"],
        "priority 0 (none) comes last; not-yet-due excluded"
    );
}

pub async fn expired_lease_is_claimable_again(db: TestDb) {
    let s = &db.store;
    let (t, _) = s.create_task_if_absent(&new_task("s", 3, 0)).await.unwrap();
    assert_eq!(s.claim_due_tasks("a", LEASE, 10, 5).await.unwrap().len(), 1);
    assert!(
        s.claim_due_tasks("b", LEASE, 60_009, 5)
            .await
            .unwrap()
            .is_empty(),
        "lease still live"
    );
    let got = s.claim_due_tasks("b", LEASE, 60_010, 5).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].lease_owner.as_deref(), Some("b"));
    // Renewal by the old owner fails; by the new one succeeds.
    assert!(matches!(
        s.renew_lease(&t.id, "a", 200_000).await,
        Err(StoreError::Conflict(_))
    ));
    s.renew_lease(&t.id, "b", 200_000).await.unwrap();
    assert_eq!(s.release_lease("b").await.unwrap(), 1);
    assert_eq!(
        s.claim_due_tasks("c", LEASE, 60_011, 5)
            .await
            .unwrap()
            .len(),
        1,
        "released at shutdown"
    );
}

pub async fn stale_owner_cannot_write(db: TestDb) {
    let s = &db.store;
    s.create_task_if_absent(&new_task("s", 3, 0)).await.unwrap();
    let mut mine = s
        .claim_due_tasks("a", LEASE, 10, 1)
        .await
        .unwrap()
        .remove(0);
    let mut theirs = s
        .claim_due_tasks("b", LEASE, 70_000, 1)
        .await
        .unwrap()
        .remove(0);
    mine.state = TaskState::Running;
    assert!(matches!(
        s.update_task(&mine, "a").await,
        Err(StoreError::Conflict(_))
    ));
    theirs.state = TaskState::Running;
    theirs.codegen_run_id = Some(1001);
    theirs.task_type = Some(cyrus_core::TaskType::Builder);
    theirs.estimated_cost = Some(cyrus_core::MicroDollars(1234));
    theirs.data = json!({"pr": ["u"]});
    let stored = s.update_task(&theirs, "b").await.unwrap();
    assert_eq!(stored.version, theirs.version + 1);
    assert_eq!(stored.task_type, Some(cyrus_core::TaskType::Builder));
    assert_eq!(stored.data, json!({"pr": ["u"]}));
    // Same owner, stale version: rejected too.
    assert!(matches!(
        s.update_task(&theirs, "b").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.dead_letter(&stored.id, "a", "x", 1).await,
        Err(StoreError::Conflict(_))
    ));
    s.dead_letter(&stored.id, "b", "gave up", 80_000)
        .await
        .unwrap();
    let dead = s.get_task(&stored.id).await.unwrap().unwrap();
    assert_eq!(dead.state, DEAD_LETTER_STATE);
    assert!(!dead.is_active());
    assert!(
        s.claim_due_tasks("c", LEASE, 999_999, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn concurrent_claimers_never_share(db: TestDb) {
    for i in 0..60 {
        db.store
            .create_task_if_absent(&new_task(&format!("t{i}"), i % 5, i))
            .await
            .unwrap();
    }
    let mut handles = Vec::new();
    for w in 0..6 {
        let store = db.replica().await;
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_due_tasks(&format!("w{w}"), LEASE, 1_000, 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|t| t.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every task claimed exactly once: {all:?}");
    assert_eq!(unique.len(), 60);
}

pub async fn run_slots_are_capped_atomically(db: TestDb) {
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            db.store
                .create_task_if_absent(&new_task(&format!("r{i}"), 1, i))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    let mut handles = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let store = db.replica().await;
        handles.push(tokio::spawn(async move {
            store
                .record_run_intent(&id, 1, &format!("m{i}"), 5, Some(4))
                .await
                .unwrap()
        }));
    }
    let mut recorded = Vec::new();
    for h in handles {
        if let RunSlot::Recorded(r) = h.await.unwrap() {
            recorded.push(r);
        }
    }
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert_eq!(db.store.count_active_runs().await.unwrap(), 4);
    let r = &recorded[0];
    // Idempotent re-record, even at capacity.
    assert_eq!(
        db.store
            .record_run_intent(&r.task_id, 1, "other", 6, Some(4))
            .await
            .unwrap(),
        RunSlot::Recorded(r.clone())
    );
    db.store.attach_codegen_run(r.id, 77).await.unwrap();
    db.store.attach_codegen_run(r.id, 77).await.unwrap();
    assert!(matches!(
        db.store.attach_codegen_run(r.id, 78).await,
        Err(StoreError::Conflict(_))
    ));
    let found = db
        .store
        .find_run_by_marker(&r.marker)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.codegen_run_id, found.status.as_str()),
        (Some(77), "ACTIVE")
    );
    db.store
        .finish_run(r.id, "COMPLETE", &["https://x/pr/1".into()], 9)
        .await
        .unwrap();
    assert_eq!(db.store.count_active_runs().await.unwrap(), 3);
    assert_eq!(
        db.store
            .find_run_intent(&r.task_id)
            .await
            .unwrap()
            .unwrap()
            .pr_urls,
        ["https://x/pr/1"]
    );
}

pub async fn settled_task_reopens_for_a_follow_up(db: TestDb) {
    let s = &db.store;
    let (task, _) = s.create_task_if_absent(&new_task("r", 0, 0)).await.unwrap();
    assert!(
        !s.reopen_task(&task.id, 5).await.unwrap(),
        "an active task is not reopened"
    );
    let mut task = s
        .claim_due_tasks("w", std::time::Duration::from_secs(30), 1, 1)
        .await
        .unwrap()
        .remove(0);
    task.state = TaskState::Completed;
    task.finished_at = Some(2);
    task.run_at = PARKED;
    s.update_task(&task, "w").await.unwrap();
    s.release_task(&task.id, "w").await.unwrap();
    assert!(
        s.claim_due_tasks("w", std::time::Duration::from_secs(30), 10, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.reopen_task(&task.id, 10).await.unwrap());
    let again = s
        .claim_due_tasks("w", std::time::Duration::from_secs(30), 10, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "claimable after reopening");
    assert!(again[0].finished_at.is_none());
    // Final states stay final.
    let mut stopped = again[0].clone();
    stopped.state = TaskState::Stopped;
    stopped.finished_at = Some(11);
    s.update_task(&stopped, "w").await.unwrap();
    assert!(!s.reopen_task(&task.id, 12).await.unwrap());
}

/// Which of many issues have a live task, read at once: finished tasks and
/// issues with none are left out, an issue asked twice is answered once.
pub async fn issues_with_live_tasks_are_read_at_once(db: TestDb) {
    let s = &db.store;
    for session in ["live", "done", "live-too"] {
        s.create_task_if_absent(&new_task(session, 0, 1))
            .await
            .unwrap();
    }
    let claimed = s.claim_due_tasks("w", LEASE, 1, 10).await.unwrap();
    let mut done = claimed
        .into_iter()
        .find(|t| t.agent_session_id == "done")
        .expect("claimed");
    done.state = TaskState::Completed;
    done.finished_at = Some(2);
    s.update_task(&done, "w").await.unwrap();
    let asked = [
        "issue-live",
        "issue-done",
        "issue-none",
        "issue-live",
        "issue-live-too",
    ];
    let live = s.issues_with_live_tasks(&asked).await.unwrap();
    assert_eq!(
        live,
        HashSet::from(["issue-live".to_string(), "issue-live-too".to_string()])
    );
    assert!(s.issues_with_live_tasks(&[]).await.unwrap().is_empty());
}

/// The acknowledgement row `accept_session` is given for `session`;
/// `posted`: it already reached Linear.
fn acknowledgement(session: &str, posted: bool) -> NewActivity {
    NewActivity {
        session_id: session.to_string(),
        kind: "thought".into(),
        body: json!({"body": format!("on it: {session}")}),
        ephemeral: false,
        dedupe_key: format!("ack:{session}"),
        not_before: 5,
        delivered_at: posted.then_some(5),
    }
}

/// Sessions accepted at the same time share batches; each caller is told
/// what of its own rows was new: a session accepted twice at once (two
/// copies of one delivery) or one that already had its rows gets one task
/// and one acknowledgement, and the rows read back as the one-at-a-time
/// writes would store them.
pub async fn new_sessions_are_accepted_once_in_shared_batches(db: TestDb) {
    let s = &db.store;
    let (existing, _) = s
        .create_task_if_absent(&new_task("old", 2, 1))
        .await
        .unwrap();
    s.enqueue_activity(&acknowledgement("old", true), 1)
        .await
        .unwrap();

    let sessions: Vec<String> = (0..40)
        .map(|i| format!("new{i}"))
        .chain(["twice".into(), "twice".into(), "old".into()])
        .collect();
    // Each its own task, so they queue at once (both copies of "twice"
    // already posted their acknowledgement: either may be written first).
    let handles: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, session)| {
            let (store, session) = (s.clone(), session.clone());
            tokio::spawn(async move {
                let posted = i % 2 == 0 || session == "twice";
                let task = new_task(&session, (i % 5) as i64, 10 + i as i64);
                store
                    .accept_session(acknowledgement(&session, posted), task, 10)
                    .await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for handle in handles {
        accepted.push(handle.await.unwrap().unwrap());
    }
    let of = |session: &str| -> Vec<Accepted> {
        sessions
            .iter()
            .zip(&accepted)
            .filter(|(s, _)| s.as_str() == session)
            .map(|(_, a)| *a)
            .collect()
    };
    let written_once = Accepted {
        acknowledgement: Insert::Inserted,
        task_created: true,
    };
    let written_before = Accepted {
        acknowledgement: Insert::Duplicate,
        task_created: false,
    };
    for i in 0..40 {
        assert_eq!(of(&format!("new{i}")), vec![written_once], "new{i}");
    }
    let mut twice = of("twice");
    twice.sort_by_key(|a| !a.task_created);
    assert_eq!(twice, vec![written_once, written_before]);
    assert_eq!(of("old"), vec![written_before]);
    assert_eq!(
        s.get_task_by_session("old").await.unwrap().unwrap(),
        existing
    );

    // A task as `create_task_if_absent` stores it: due, in priority order.
    let new7 = s.get_task_by_session("new7").await.unwrap().unwrap();
    let expected = new_task("new7", 2, 17);
    assert_eq!(
        (new7.state, new7.priority, new7.created_at, new7.run_at),
        (expected.state, 2, 17, 17)
    );
    assert_eq!(
        (new7.issue_id, new7.issue_identifier, new7.data),
        (expected.issue_id, expected.issue_identifier, expected.data)
    );
    let claimed = s.claim_due_tasks("w", LEASE, 100, 100).await.unwrap();
    assert_eq!(claimed.len(), 42, "40 new, one twice, the old one");
    assert_eq!(claimed[0].priority, 1, "urgent first");

    // Acknowledgements already posted are stored delivered, the others
    // go out through the outbox, once each.
    let due = s.claim_due_activities("w", LEASE, 100, 100).await.unwrap();
    let mut keys: Vec<String> = due.into_iter().map(|a| a.dedupe_key).collect();
    keys.sort();
    let mut expected: Vec<String> = (0..40)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("ack:new{i}"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
}

/// One session whose rows the database refuses fails alone: the batch it
/// shared is written again one session at a time, so every other session
/// of it is accepted (task and acknowledgement), and the refused one
/// leaves neither row behind.
pub async fn a_refused_session_fails_alone_in_its_batch(db: TestDb) {
    db.refuse_poison("tasks", "agent_session_id").await;
    let s = &db.store;
    let sessions: Vec<String> = (0..40)
        .map(|i| format!("fine{i}"))
        .chain(std::iter::once("poison".into()))
        .chain((40..80).map(|i| format!("fine{i}")))
        .collect();
    // Each its own task, so they queue while a batch commits and the
    // poisoned one shares a batch with others.
    let handles: Vec<_> = sessions
        .iter()
        .map(|session| {
            let (store, session) = (s.clone(), session.clone());
            tokio::spawn(async move {
                let task = new_task(&session, 2, 10);
                store
                    .accept_session(acknowledgement(&session, false), task, 10)
                    .await
            })
        })
        .collect();
    for (session, handle) in sessions.iter().zip(handles) {
        let accepted = handle.await.unwrap();
        if session == "poison" {
            let err = accepted.expect_err("the poisoned session is refused");
            assert!(err.to_string().contains("poisoned"), "{err}");
        } else {
            assert_eq!(
                accepted.unwrap_or_else(|e| panic!("{session}: {e}")),
                Accepted {
                    acknowledgement: Insert::Inserted,
                    task_created: true,
                },
                "{session}"
            );
        }
    }
    assert!(s.get_task_by_session("poison").await.unwrap().is_none());
    let due = s
        .claim_due_activities("w", LEASE, 100, 1_000)
        .await
        .unwrap();
    let mut keys: Vec<String> = due.into_iter().map(|a| a.dedupe_key).collect();
    keys.sort();
    let mut expected: Vec<String> = (0..80).map(|i| format!("ack:fine{i}")).collect();
    expected.sort();
    assert_eq!(
        keys, expected,
        "one acknowledgement per accepted session, none for the refused one"
    );
}

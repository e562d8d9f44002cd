//! The audit log and proactive triage's claims.

use cyrus_store::*;

use crate::harness::TestDb;

fn entry(key: &str, at: i64, kind: AuditKind, issue: &str) -> AuditEntry {
    AuditEntry {
        dedupe_key: key.into(),
        at,
        kind,
        organization_id: Some("org".into()),
        issue_id: Some(format!("id-{issue}")),
        issue_identifier: Some(issue.into()),
        task_id: Some("t1".into()),
        actor: Some("dana@acme.dev".into()),
        reason: "because".into(),
        detail: Some(serde_json::json!({"model": "opus"})),
    }
}

pub async fn audit_rows_are_recorded_once_filtered_and_pruned(db: TestDb) {
    let s = &db.store;
    let first = entry("a", 1_000, AuditKind::AccessRefused, "ENG-1");
    assert_eq!(s.record_audit(&first).await.unwrap(), Insert::Inserted);
    assert_eq!(s.record_audit(&first).await.unwrap(), Insert::Duplicate);
    s.record_audit(&entry("b", 2_000, AuditKind::Routed, "ENG-2"))
        .await
        .unwrap();
    s.record_audit(&entry("c", 3_000, AuditKind::Stopped, "ENG-1"))
        .await
        .unwrap();

    let all = s.list_audit(&AuditFilter::default()).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"], "oldest first");
    assert_eq!(all[0], first, "a row reads back as written");

    let issue = AuditFilter {
        issue: Some("ENG-1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.list_audit(&issue).await.unwrap().len(), 2);
    let by_id = AuditFilter {
        issue: Some("id-ENG-2".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.list_audit(&by_id).await.unwrap().len(), 1);
    let since = AuditFilter {
        since: Some(2_000),
        kind: Some(AuditKind::Stopped),
        ..AuditFilter::default()
    };
    let got = s.list_audit(&since).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, AuditKind::Stopped);
    let newest = AuditFilter {
        limit: Some(1),
        ..AuditFilter::default()
    };
    assert_eq!(s.list_audit(&newest).await.unwrap()[0].dedupe_key, "c");

    assert_eq!(s.prune_audit(2_500).await.unwrap(), 2);
    assert_eq!(
        s.list_audit(&AuditFilter::default()).await.unwrap().len(),
        1
    );
}

pub async fn triage_claims_once_per_issue_within_the_daily_cap(db: TestDb) {
    let s = &db.store;
    let claim = |issue: &'static str, day: &'static str| async move {
        s.claim_triage_start(issue, "org", "bugs", day, 2, 1_000)
            .await
            .unwrap()
    };
    assert_eq!(claim("i1", "2026-12-01").await, TriageClaim::Claimed);
    assert_eq!(claim("i1", "2026-12-01").await, TriageClaim::AlreadyStarted);
    assert_eq!(claim("i1", "2026-12-02").await, TriageClaim::AlreadyStarted);
    assert_eq!(claim("i2", "2026-12-01").await, TriageClaim::Claimed);
    assert_eq!(
        claim("i3", "2026-12-01").await,
        TriageClaim::DailyCapReached
    );
    assert_eq!(claim("i3", "2026-12-02").await, TriageClaim::Claimed);
    assert_eq!(s.triage_starts_on("2026-12-01").await.unwrap(), 2);

    s.set_triage_session("i1", "session-1").await.unwrap();
    assert_eq!(
        s.triage_rule_for_session("session-1")
            .await
            .unwrap()
            .as_deref(),
        Some("bugs")
    );
    assert_eq!(s.triage_rule_for_session("other").await.unwrap(), None);

    // Replicas racing for the last slot of a day: exactly one wins.
    let other = db.replica().await;
    let (a, b) = tokio::join!(
        s.claim_triage_start("i4", "org", "bugs", "2026-12-03", 1, 1),
        other.claim_triage_start("i5", "org", "bugs", "2026-12-03", 1, 1),
    );
    let mut got = [a.unwrap(), b.unwrap()];
    got.sort_by_key(|c| *c == TriageClaim::Claimed);
    assert_eq!(got, [TriageClaim::DailyCapReached, TriageClaim::Claimed]);
}

pub async fn experiment_assignments_and_late_outcomes(db: TestDb) {
    let s = &db.store;
    let (task, _) = s
        .create_task_if_absent(&NewTask {
            agent_session_id: "sess-1".into(),
            issue_id: "issue-1".into(),
            issue_identifier: "ENG-1".into(),
            organization_id: "org".into(),
            state: cyrus_core::lifecycle::TaskState::Received,
            priority: 0,
            created_at: 1,
            run_at: 1,
            max_attempts: 5,
            data: serde_json::json!({}),
        })
        .await
        .unwrap();
    let a = ExperimentAssignment {
        task_id: task.id.clone(),
        experiment: "models".into(),
        arm: "B".into(),
        model: "gpt-5".into(),
        issue_id: "issue-1".into(),
        assigned_at: 100,
    };
    assert_eq!(
        s.record_experiment_assignment(&a).await.unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        s.record_experiment_assignment(&a).await.unwrap(),
        Insert::Duplicate
    );
    s.add_followup(&task.id, "act-1", "also this", 200)
        .await
        .unwrap();
    s.add_stop_request(&task.id, "stop-1", "stop", 300)
        .await
        .unwrap();

    // Reopened before it was ever completed means nothing.
    assert_eq!(
        s.mark_experiment_issue_reopened("issue-1", 400)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.mark_experiment_issue_completed("issue-1", 500)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.mark_experiment_issue_completed("issue-1", 600)
            .await
            .unwrap(),
        0,
        "the first completion counts"
    );
    assert_eq!(
        s.mark_experiment_issue_reopened("issue-1", 700)
            .await
            .unwrap(),
        1
    );

    let rows = s.experiment_tasks("models").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].assignment, a);
    assert_eq!(rows[0].completed_at, Some(500));
    assert_eq!(rows[0].reopened_at, Some(700));
    assert_eq!(rows[0].follow_ups, 1, "prompts only, not the stop");
    assert_eq!(
        rows[0].task.as_ref().map(|t| t.id.clone()),
        Some(task.id.clone())
    );
    assert_eq!(
        s.experiment_task_counts().await.unwrap(),
        [("models".to_string(), 1)]
    );
    assert!(s.experiment_tasks("other").await.unwrap().is_empty());
}

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

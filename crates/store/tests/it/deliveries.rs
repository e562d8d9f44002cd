//! Delivery intake: group commit keeps the dedupe semantics of one insert
//! per request.

use std::collections::HashMap;

use cyrus_store::*;
use serde_json::json;

use crate::harness::TestDb;

fn delivery(id: &str, n: i64) -> NewDelivery {
    NewDelivery {
        delivery_id: id.into(),
        organization_id: "org".into(),
        event_type: "Issue".into(),
        action: (n % 2 == 0).then(|| "update".to_string()),
        // As received: the text is stored as is, not re-serialised.
        body: format!("{{ \"text\": \"é ✓ \\\"quoted\\\"\" ,\"n\":{n} }}"),
        received_at: 1_000 + n,
        arrival: Arrival::Unclaimed,
    }
}

pub async fn batch_dedupes_inside_and_against_table(db: TestDb) {
    let s = &db.store;
    assert_eq!(
        s.insert_delivery(delivery("d0", 0)).await.unwrap(),
        Insert::Inserted
    );
    // One batch: d1 twice (inside the batch), d0 again (against the table).
    let answers = s
        .insert_deliveries(vec![
            delivery("d1", 1),
            delivery("d0", 7),
            delivery("d1", 9),
            delivery("d2", 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Insert::Inserted,
            Insert::Duplicate,
            Insert::Duplicate,
            Insert::Inserted
        ]
    );
    let ids = db
        .raw_strings("SELECT delivery_id FROM deliveries ORDER BY delivery_id")
        .await;
    assert_eq!(ids, vec!["d0", "d1", "d2"]);
    // The first copy is the one stored, fields intact.
    let d0 = s.get_delivery("d0").await.unwrap().unwrap();
    assert_eq!(d0.payload, json!({"n": 0, "text": "é ✓ \"quoted\""}));
    let d1 = s.get_delivery("d1").await.unwrap().unwrap();
    assert_eq!(d1.payload, json!({"n": 1, "text": "é ✓ \"quoted\""}));
    assert_eq!(d1.action, None);
    assert_eq!(d1.received_at, 1_001);
    let d2 = s.get_delivery("d2").await.unwrap().unwrap();
    assert_eq!(d2.action.as_deref(), Some("update"));
    assert_eq!(d2.event_type, "Issue");
    assert!(s.insert_deliveries(vec![]).await.unwrap().is_empty());
}

pub async fn concurrent_inserts_answer_each_caller(db: TestDb) {
    // 100 ids, each sent three times at once from separate tasks: whatever
    // batches form, each id is stored once and answered `Inserted` once.
    let mut handles = Vec::new();
    for copy in 0..3 {
        for i in 0..100 {
            let s = db.store.clone();
            handles.push(tokio::spawn(async move {
                let id = format!("c{i}");
                let answer = s.insert_delivery(delivery(&id, i)).await;
                (id, copy, answer)
            }));
        }
    }
    let mut inserted: HashMap<String, usize> = HashMap::new();
    for h in handles {
        let (id, _copy, answer) = h.await.unwrap();
        if answer.unwrap() == Insert::Inserted {
            *inserted.entry(id).or_default() += 1;
        }
    }
    assert_eq!(inserted.len(), 100, "every id inserted by someone");
    assert!(inserted.values().all(|&n| n == 1), "{inserted:?}");
    let rows = db.raw_strings("SELECT delivery_id FROM deliveries").await;
    assert_eq!(rows.len(), 100);
    let c42 = db.store.get_delivery("c42").await.unwrap().unwrap();
    assert_eq!(c42.payload, json!({"n": 42, "text": "é ✓ \"quoted\""}));
    // The stored rows are claimable as before.
    let claimed = db
        .store
        .claim_unprocessed_deliveries("w", std::time::Duration::from_secs(30), 5_000, 1_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 100);
}

pub async fn sqlite_sync_defaults_to_full(db: TestDb) {
    assert_eq!(db.store.sqlite_sync(), SqliteSync::Full);
    let normal = db.store.clone().with_sqlite_sync(SqliteSync::Normal);
    assert_eq!(normal.sqlite_sync(), SqliteSync::Normal);
    // Both settings store and dedupe alike.
    assert_eq!(
        normal.insert_delivery(delivery("n1", 1)).await.unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        db.store.insert_delivery(delivery("n1", 1)).await.unwrap(),
        Insert::Duplicate
    );
    assert_eq!(
        db.store.insert_delivery(delivery("f1", 2)).await.unwrap(),
        Insert::Inserted
    );
}

pub async fn a_claimed_batch_is_marked_processed_at_once(db: TestDb) {
    let s = &db.store;
    let ids = ["m1", "m2", "m3"];
    for (n, id) in ids.iter().enumerate() {
        s.insert_delivery(delivery(id, n as i64)).await.unwrap();
    }
    s.mark_delivery_processed("m2", "first", 10).await.unwrap();
    let claimed = s
        .claim_unprocessed_deliveries("w", std::time::Duration::from_secs(30), 20, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    let done: Vec<(String, String)> = ["m1", "m2", "m3", "unknown"]
        .iter()
        .map(|id| (id.to_string(), format!("ok {id}")))
        .collect();
    s.mark_deliveries_processed(&done, 30).await.unwrap();
    s.mark_deliveries_processed(&[], 40).await.unwrap();
    let outcome = |d: Delivery| (d.outcome, d.processed_at);
    assert_eq!(
        outcome(s.get_delivery("m1").await.unwrap().unwrap()),
        (Some("ok m1".into()), Some(30))
    );
    // The first outcome stands.
    assert_eq!(
        outcome(s.get_delivery("m2").await.unwrap().unwrap()),
        (Some("first".into()), Some(10))
    );
    // Marked and released: nothing left to claim, even after the lease.
    assert!(
        s.claim_unprocessed_deliveries("w2", std::time::Duration::from_secs(30), 999_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_delivery_stored_settled_is_processed_and_still_deduplicates(db: TestDb) {
    let s = &db.store;
    let settled = |id: &str, n: i64| NewDelivery {
        arrival: Arrival::Settled {
            outcome: "ignored: nothing to do".into(),
        },
        ..delivery(id, n)
    };
    // A settled one, a copy of it in the same batch, and an unclaimed one.
    let answers = s
        .insert_deliveries(vec![settled("s1", 1), settled("s1", 3), delivery("u1", 2)])
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![Insert::Inserted, Insert::Duplicate, Insert::Inserted]
    );
    assert_eq!(
        s.insert_delivery(delivery("s1", 5)).await.unwrap(),
        Insert::Duplicate,
        "a copy arriving later is a duplicate whatever its arrival"
    );
    let stored = s.get_delivery("s1").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.processed_at,
            stored.outcome.as_deref(),
            stored.attempts
        ),
        (Some(1_001), Some("ignored: nothing to do"), 0),
        "processed as it arrived, never claimed"
    );
    assert_eq!(stored.payload["n"], 1, "its body is kept");
    assert_eq!(s.unprocessed_delivery_count().await.unwrap(), 1);
    let claimed = s
        .claim_unprocessed_deliveries("w", std::time::Duration::from_secs(30), 9_999, 10)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["u1"], "a settled delivery is never claimed");
}

pub async fn a_delivery_stored_leased_is_left_to_its_receiver(db: TestDb) {
    let s = &db.store;
    let lease = std::time::Duration::from_secs(30);
    let mut mine = delivery("l1", 1);
    mine.arrival = Arrival::Leased(DeliveryLease {
        owner: "receiver".into(),
        expires_at: 5_000,
    });
    let mut freed = delivery("l2", 2);
    freed.arrival = mine.arrival.clone();
    let answers = s
        .insert_deliveries(vec![mine, freed, delivery("l3", 3)])
        .await
        .unwrap();
    assert_eq!(answers, vec![Insert::Inserted; 3]);
    let stored = s.get_delivery("l1").await.unwrap().unwrap();
    assert_eq!(
        stored.attempts, 1,
        "the lease written with it is its first claim"
    );
    // Before the lease expires only the unleased one is claimable; a
    // release by someone else, or of another lease of the receiver's,
    // changes nothing; the receiver's release of its lease frees it.
    let theirs = |owner: &str, expires_at| DeliveryLease {
        owner: owner.into(),
        expires_at,
    };
    s.release_delivery("l2", &theirs("someone else", 5_000))
        .await
        .unwrap();
    s.release_delivery("l2", &theirs("receiver", 6_000))
        .await
        .unwrap();
    let ids = |ds: Vec<Delivery>| ds.into_iter().map(|d| d.delivery_id).collect::<Vec<_>>();
    let claimed = s
        .claim_unprocessed_deliveries("other", lease, 4_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(claimed), vec!["l3"]);
    s.release_delivery("l2", &theirs("receiver", 5_000))
        .await
        .unwrap();
    let claimed = s
        .claim_unprocessed_deliveries("other", lease, 4_001, 10)
        .await
        .unwrap();
    assert_eq!(ids(claimed), vec!["l2"]);
    // The receiver died without processing l1: once its lease has expired
    // another claimer takes it.
    let claimed = s
        .claim_unprocessed_deliveries("other", lease, 5_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(claimed.clone()), vec!["l1"]);
    assert_eq!(claimed[0].attempts, 2);
    assert_eq!(claimed[0].payload["n"], 1, "its body is stored");
}

/// SQLite's migration 0009 (deliveries keyed in arrival order, bodies by
/// that key) keeps every stored delivery, its state and its body.
#[tokio::test]
async fn sqlite_migration_to_delivery_sequence_keeps_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let all = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"),
    )
    .await
    .unwrap();
    let mut before = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"),
    )
    .await
    .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 9)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    for (id, received, processed) in [("b", 2, Some(5)), ("a", 1, None), ("c", 3, None)] {
        sqlx::query(
            "INSERT INTO deliveries (delivery_id, organization_id, event_type, action, received_at, processed_at, outcome)
             VALUES ($1, 'org', 'Issue', 'update', $2, $3, $4)",
        )
        .bind(id)
        .bind(received)
        .bind(processed)
        .bind(processed.map(|_| "ok"))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO delivery_payloads (delivery_id, payload) VALUES ($1, $2)")
            .bind(id)
            .bind(format!(r#"{{"id": "{id}"}}"#))
            .execute(&pool)
            .await
            .unwrap();
    }
    all.run(&pool).await.unwrap();
    pool.close().await;
    let store = Store::connect(&url).await.unwrap();
    for id in ["a", "b", "c"] {
        let d = store.get_delivery(id).await.unwrap().unwrap();
        assert_eq!(d.payload["id"], id, "{d:?}");
    }
    assert_eq!(
        store.get_delivery("b").await.unwrap().unwrap().outcome,
        Some("ok".into())
    );
    let claimed = store
        .claim_unprocessed_deliveries("w", std::time::Duration::from_secs(30), 10, 10)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    // New deliveries after the migrated ones, and still deduplicated.
    assert_eq!(
        store.insert_delivery(delivery("a", 9)).await.unwrap(),
        Insert::Duplicate
    );
    assert_eq!(
        store.insert_delivery(delivery("d", 4)).await.unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        store.get_delivery("d").await.unwrap().unwrap().payload["n"],
        4
    );
}

/// With `full`, a delivery is answered after the log SQLite writes to is
/// fsynced; reached through a symbolic link, that log is beside the real
/// file, not beside the link (a log synced beside the link would not exist,
/// and every delivery would be answered as failed).
#[tokio::test]
async fn a_database_reached_through_a_symbolic_link_syncs_its_real_log() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let link = dir.path().join("cyrus.db");
    std::fs::File::create(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let store = Store::connect(&format!("sqlite://{}", link.display()))
        .await
        .unwrap();
    assert_eq!(store.sqlite_sync(), SqliteSync::Full);
    assert_eq!(
        store.insert_delivery(delivery("s1", 1)).await.unwrap(),
        Insert::Inserted
    );
    assert!(
        dir.path().join("real.db-wal").exists(),
        "SQLite's log is beside the real file"
    );
    assert!(!dir.path().join("cyrus.db-wal").exists());
}

pub async fn processed_deliveries_past_the_retention_are_pruned_with_their_bodies(db: TestDb) {
    let s = &db.store;
    // Received at 1 000 + n.
    for (id, n) in [("done-1", 0), ("open", 1), ("done-2", 2), ("recent", 100)] {
        s.insert_delivery(delivery(id, n)).await.unwrap();
    }
    let done: Vec<(String, String)> = ["done-1", "done-2", "recent"]
        .iter()
        .map(|id| (id.to_string(), "ok".to_string()))
        .collect();
    s.mark_deliveries_processed(&done, 2_000).await.unwrap();
    let bodies = || async {
        let sql = if db.sqlite_file().is_some() {
            "SELECT CAST(COUNT(*) AS TEXT) FROM delivery_bodies"
        } else {
            "SELECT COUNT(*)::text FROM delivery_payloads"
        };
        db.raw_strings(sql).await[0].parse::<u32>().unwrap()
    };
    assert_eq!(bodies().await, 4);
    // At most `limit` a call; received before 1 050 and processed only.
    assert_eq!(s.prune_deliveries(1_050, 1).await.unwrap(), 1);
    assert_eq!(s.prune_deliveries(1_050, 10).await.unwrap(), 1);
    assert_eq!(s.prune_deliveries(1_050, 10).await.unwrap(), 0);
    for (id, kept) in [
        ("done-1", false),
        ("done-2", false),
        ("open", true),
        ("recent", true),
    ] {
        assert_eq!(
            s.get_delivery(id).await.unwrap().is_some(),
            kept,
            "{id} kept"
        );
    }
    assert_eq!(bodies().await, 2, "the bodies went with their rows");
    // The unprocessed one is still owed, body and all.
    let claimed = s
        .claim_unprocessed_deliveries("w", std::time::Duration::from_secs(30), 3_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].delivery_id, "open");
    assert_eq!(claimed[0].payload["n"], 1);
    // With every delivery past the retention, the processed ones go.
    assert_eq!(s.prune_deliveries(10_000, 10).await.unwrap(), 1);
    assert!(s.get_delivery("recent").await.unwrap().is_none());
    // A pruned id no longer deduplicates: that is what the retention
    // trades, hence its floor of a day against Linear's last retry at 6 h.
    assert_eq!(
        s.insert_delivery(delivery("done-1", 5)).await.unwrap(),
        Insert::Inserted
    );
}

/// A delivery whose row the database refuses fails alone: the batch it
/// shared is written again one caller at a time, so every other delivery
/// of it is stored and answered `Inserted`, and the refused one is not
/// stored (its sender is answered an error and sends it again).
pub async fn a_refused_delivery_fails_alone_in_its_batch(db: TestDb) {
    db.refuse_poison("deliveries", "delivery_id").await;
    let ids: Vec<String> = (0..40)
        .map(|i| format!("fine{i}"))
        .chain(std::iter::once("poison".into()))
        .chain((40..80).map(|i| format!("fine{i}")))
        .collect();
    // Each its own task, so they queue while a batch commits and the
    // poisoned one shares a batch with others.
    let handles: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let (store, id) = (db.store.clone(), id.clone());
            tokio::spawn(async move { store.insert_delivery(delivery(&id, n as i64)).await })
        })
        .collect();
    for (id, handle) in ids.iter().zip(handles) {
        let answer = handle.await.unwrap();
        if id == "poison" {
            let err = answer.expect_err("the poisoned delivery is refused");
            assert!(err.to_string().contains("poisoned"), "{err}");
        } else {
            assert_eq!(
                answer.unwrap_or_else(|e| panic!("{id}: {e}")),
                Insert::Inserted,
                "{id}"
            );
        }
    }
    let mut stored = db.raw_strings("SELECT delivery_id FROM deliveries").await;
    stored.sort();
    let mut expected: Vec<String> = (0..80).map(|i| format!("fine{i}")).collect();
    expected.sort();
    assert_eq!(stored, expected);
}

/// A body with a JSON `\u0000` escape is stored (on PostgreSQL, whose
/// `jsonb` cannot hold a NUL, as the replacement character), and does not
/// fail the deliveries batched with it.
pub async fn a_body_with_a_nul_escape_is_stored(db: TestDb) {
    let mut nul = delivery("nul", 1);
    nul.body = r#"{"text":"before\u0000after","kept":"\\u0000"}"#.into();
    let answers = db
        .store
        .insert_deliveries(vec![delivery("beside", 2), nul])
        .await
        .unwrap();
    assert_eq!(answers, vec![Insert::Inserted, Insert::Inserted]);
    let stored = db.store.get_delivery("nul").await.unwrap().unwrap();
    let text = if db.is_postgres() {
        "before\u{fffd}after"
    } else {
        "before\u{0}after"
    };
    assert_eq!(stored.payload, json!({"text": text, "kept": "\\u0000"}));
    assert!(db.store.get_delivery("beside").await.unwrap().is_some());
}

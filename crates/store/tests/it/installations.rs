//! Linear OAuth installations: sealed tokens, reconnects, statuses, the
//! single-flight refresh lease, pending authorizations and key rotation.

use std::time::Duration;

use cyrus_store::*;
use secrecy::{ExposeSecret, SecretString};

use crate::harness::TestDb;

const LEASE: Duration = Duration::from_secs(60);
const HOUR: i64 = 3_600_000;

fn keys() -> Keyring {
    Keyring::new(SecretKey::generate(), None)
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn tokens(access: &str, refresh: Option<&str>, expires: UnixMillis) -> OAuthTokens {
    OAuthTokens {
        access_token: secret(access),
        refresh_token: refresh.map(secret),
        access_expires_at: expires,
    }
}

fn new_installation(workspace: &str, access: &str, refresh: &str) -> NewInstallation {
    NewInstallation {
        workspace_id: workspace.to_string(),
        workspace_name: format!("Workspace {workspace}"),
        url_key: workspace.to_lowercase(),
        app_user_id: format!("app-user-{workspace}"),
        app_user_name: "Cyrus".into(),
        oauth_client_id: "client-1".into(),
        scopes: vec!["read".into(), "write".into(), "app:assignable".into()],
        grant: GrantKind::AuthorizationCode,
        tokens: tokens(access, Some(refresh), 1_000 + 24 * HOUR),
    }
}

fn access(i: &Installation) -> &str {
    i.tokens.access_token.expose_secret()
}

fn refresh(i: &Installation) -> Option<&str> {
    i.tokens.refresh_token.as_ref().map(|t| t.expose_secret())
}

pub async fn installation_round_trip(db: TestDb) {
    let s = db.store.clone().with_secret_keys(keys());
    let stored = s
        .connect_installation(&new_installation("org-a", "acc-a1", "ref-a1"), 1_000)
        .await
        .unwrap();
    assert_eq!(access(&stored), "acc-a1");
    assert_eq!(refresh(&stored), Some("ref-a1"));
    let info = &stored.info;
    assert_eq!(info.status, InstallationStatus::Active);
    assert_eq!(info.grant, GrantKind::AuthorizationCode);
    assert_eq!(info.scopes, ["read", "write", "app:assignable"]);
    assert_eq!((info.installed_at, info.status_changed_at), (1_000, 1_000));
    assert_eq!(info.app_user_id, "app-user-org-a");
    assert_eq!(info.token_version, 1);
    assert_eq!(info.refreshed_at, None);

    let mut app = new_installation("org-b", "acc-b1", "unused");
    app.grant = GrantKind::ClientCredentials;
    app.tokens.refresh_token = None;
    s.connect_installation(&app, 2_000).await.unwrap();

    let got = s.get_installation("org-a").await.unwrap().unwrap();
    assert_eq!((access(&got), refresh(&got)), ("acc-a1", Some("ref-a1")));
    assert_eq!(got.info, stored.info);
    assert!(s.get_installation("org-z").await.unwrap().is_none());
    let all = s.list_installations().await.unwrap();
    let ids: Vec<_> = all.iter().map(|i| i.info.workspace_id.as_str()).collect();
    assert_eq!(ids, ["org-a", "org-b"]);
    assert_eq!(all[1].info.grant, GrantKind::ClientCredentials);
    assert_eq!(refresh(&all[1]), None);
    let current = s.installation_tokens("org-b").await.unwrap().unwrap();
    assert_eq!(current.tokens.access_token.expose_secret(), "acc-b1");
    assert_eq!(current.token_version, 1);

    // Without the key: the tokens are out of reach, the rest is readable.
    let keyless = db.replica().await;
    assert!(matches!(
        keyless.get_installation("org-a").await,
        Err(StoreError::Secret(SecretError::NoKey))
    ));
    let infos = keyless.list_installation_infos().await.unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0], stored.info);
}

pub async fn reconnect_replaces_tokens(db: TestDb) {
    let s = db.store.clone().with_secret_keys(keys());
    s.connect_installation(&new_installation("org-a", "acc-1", "ref-1"), 1_000)
        .await
        .unwrap();
    s.set_installation_status(
        "org-a",
        InstallationStatus::NeedsReconnect,
        Some("invalid_grant"),
        2_000,
    )
    .await
    .unwrap();
    s.mark_revoked("org-a", 2_500).await.unwrap();
    // A stale refresher held the lease when the user reconnected.
    assert!(matches!(
        s.set_installation_status("org-a", InstallationStatus::Active, None, 2_600)
            .await
            .unwrap()
            .status,
        InstallationStatus::Active
    ));
    let RefreshLease::Held { .. } = s
        .begin_refresh("org-a", "stale", LEASE, 2_700)
        .await
        .unwrap()
    else {
        panic!("the lease was free")
    };
    s.set_installation_status(
        "org-a",
        InstallationStatus::NeedsReconnect,
        Some("x"),
        2_800,
    )
    .await
    .unwrap();

    let mut again = new_installation("org-a", "acc-2", "ref-2");
    again.workspace_name = "Renamed".into();
    let re = s.connect_installation(&again, 3_000).await.unwrap();
    assert_eq!((access(&re), refresh(&re)), ("acc-2", Some("ref-2")));
    assert_eq!(re.info.status, InstallationStatus::Active);
    assert_eq!(re.info.status_reason, None);
    assert_eq!(re.info.revoked_at, None);
    assert_eq!(re.info.workspace_name, "Renamed");
    assert_eq!(re.info.installed_at, 3_000);
    assert_eq!(re.info.token_version, 2, "a reconnect is a token change");
    assert_eq!(re.info.refresh_lease_owner, None);
    assert_eq!(s.list_installations().await.unwrap().len(), 1);

    // The stale refresher cannot overwrite the reconnect's tokens.
    let err = s
        .finish_refresh(
            "org-a",
            "stale",
            &tokens("acc-old", Some("ref-old"), 9),
            3_100,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let now = s.get_installation("org-a").await.unwrap().unwrap();
    assert_eq!((access(&now), refresh(&now)), ("acc-2", Some("ref-2")));
}

pub async fn installation_status_changes(db: TestDb) {
    let s = db.store.clone().with_secret_keys(keys());
    s.connect_installation(&new_installation("org-a", "acc", "ref"), 1_000)
        .await
        .unwrap();
    let info = s
        .set_installation_status(
            "org-a",
            InstallationStatus::NeedsReconnect,
            Some("Linear answered invalid_grant"),
            2_000,
        )
        .await
        .unwrap();
    assert_eq!(info.status, InstallationStatus::NeedsReconnect);
    assert_eq!(
        info.status_reason.as_deref(),
        Some("Linear answered invalid_grant")
    );
    assert_eq!(info.status_changed_at, 2_000);
    assert_eq!(info.revoked_at, None);
    // The same status again keeps when it changed, updates the reason.
    let info = s
        .set_installation_status(
            "org-a",
            InstallationStatus::NeedsReconnect,
            Some("again"),
            3_000,
        )
        .await
        .unwrap();
    assert_eq!(
        (info.status_changed_at, info.status_reason.as_deref()),
        (2_000, Some("again"))
    );
    assert!(matches!(
        s.begin_refresh("org-a", "w1", LEASE, 3_000).await.unwrap(),
        RefreshLease::NotActive(InstallationStatus::NeedsReconnect)
    ));

    let info = s.mark_revoked("org-a", 4_000).await.unwrap();
    assert_eq!(info.status, InstallationStatus::Revoked);
    assert_eq!(
        (info.revoked_at, info.status_changed_at),
        (Some(4_000), 4_000)
    );
    assert!(info.status_reason.unwrap().contains("cyrus linear connect"));
    let info = s.mark_revoked("org-a", 5_000).await.unwrap();
    assert_eq!(
        info.revoked_at,
        Some(4_000),
        "first revocation time is kept"
    );
    let listed = s.list_installation_infos().await.unwrap();
    assert_eq!(listed[0].status, InstallationStatus::Revoked);
    assert!(matches!(
        s.begin_refresh("org-a", "w1", LEASE, 5_000).await.unwrap(),
        RefreshLease::NotActive(InstallationStatus::Revoked)
    ));

    assert!(matches!(
        s.set_installation_status("org-z", InstallationStatus::Active, None, 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.begin_refresh("org-z", "w1", LEASE, 1).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Eight replicas find the access token expired at the same moment and
/// each tries to refresh until it holds a token newer than the one that
/// failed: exactly one refresh is made; the others reload its tokens.
pub async fn refresh_is_single_flight(db: TestDb) {
    let k = keys();
    let s = db.store.clone().with_secret_keys(k.clone());
    s.connect_installation(&new_installation("org-a", "acc-0", "ref-0"), 1_000)
        .await
        .unwrap();
    let now = 2_000;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut handles = Vec::new();
    for replica in 0..8 {
        let store = db.replica().await.with_secret_keys(k.clone());
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let owner = format!("replica-{replica}");
            let failed_version = 1;
            let mut refreshed = 0;
            let mut waited = 0;
            loop {
                match store
                    .begin_refresh("org-a", &owner, LEASE, now)
                    .await
                    .unwrap()
                {
                    RefreshLease::Held { installation, .. } => {
                        if installation.info.token_version > failed_version {
                            // Someone refreshed meanwhile: nothing to do.
                            assert!(store.abandon_refresh("org-a", &owner).await.unwrap());
                        } else {
                            // Spend the refresh token, as Linear would
                            // (taking a while, as a call to Linear does).
                            assert_eq!(refresh(&installation), Some("ref-0"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let new = tokens(
                                &format!("acc-{owner}"),
                                Some(&format!("ref-{owner}")),
                                now + 24 * HOUR,
                            );
                            store
                                .finish_refresh("org-a", &owner, &new, now)
                                .await
                                .unwrap();
                            refreshed += 1;
                        }
                        break;
                    }
                    RefreshLease::HeldElsewhere {
                        owner: holder,
                        until,
                    } => {
                        assert_ne!(holder, owner);
                        assert_eq!(until, now + 60_000);
                        waited += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    RefreshLease::NotActive(status) => panic!("not active: {status}"),
                }
            }
            let current = store.installation_tokens("org-a").await.unwrap().unwrap();
            (
                refreshed,
                waited,
                current.token_version,
                current.tokens.access_token,
            )
        }));
    }
    let mut refreshes = 0;
    let mut waits = 0;
    let mut seen = Vec::new();
    for h in handles {
        let (r, w, version, token) = h.await.unwrap();
        refreshes += r;
        waits += w;
        assert_eq!(version, 2);
        seen.push(token.expose_secret().to_string());
    }
    assert_eq!(refreshes, 1, "exactly one replica spends the refresh token");
    assert!(waits > 0, "the contenders did overlap");
    seen.dedup();
    assert_eq!(
        seen.len(),
        1,
        "every replica reloads the winner's tokens: {seen:?}"
    );
    let after = s.get_installation("org-a").await.unwrap().unwrap();
    assert_eq!(after.info.refresh_lease_owner, None, "released");
    assert_eq!(after.info.refreshed_at, Some(now));
}

pub async fn refresh_lease_is_fenced(db: TestDb) {
    let s = db.store.clone().with_secret_keys(keys());
    s.connect_installation(&new_installation("org-a", "acc-0", "ref-0"), 1_000)
        .await
        .unwrap();
    let RefreshLease::Held { until, .. } =
        s.begin_refresh("org-a", "a", LEASE, 2_000).await.unwrap()
    else {
        panic!("free lease")
    };
    assert_eq!(until, 62_000);
    // The holder may take it again (renew); others wait until it expires.
    assert!(matches!(
        s.begin_refresh("org-a", "a", LEASE, 3_000).await.unwrap(),
        RefreshLease::Held { until: 63_000, .. }
    ));
    match s.begin_refresh("org-a", "b", LEASE, 62_999).await.unwrap() {
        RefreshLease::HeldElsewhere { owner, until } => {
            assert_eq!((owner.as_str(), until), ("a", 63_000))
        }
        other => panic!("{other:?}"),
    }
    // Expired: b takes over, and a can neither commit nor release.
    assert!(matches!(
        s.begin_refresh("org-a", "b", LEASE, 63_000).await.unwrap(),
        RefreshLease::Held { .. }
    ));
    let err = s
        .finish_refresh("org-a", "a", &tokens("acc-a", Some("ref-a"), 1), 63_001)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("held by"), "{err}");
    assert!(!s.abandon_refresh("org-a", "a").await.unwrap());
    // The holder commits both tokens at once; `None` keeps the refresh token.
    let done = s
        .finish_refresh(
            "org-a",
            "b",
            &tokens("acc-b", Some("ref-b"), 90_000),
            63_002,
        )
        .await
        .unwrap();
    assert_eq!((access(&done), refresh(&done)), ("acc-b", Some("ref-b")));
    assert_eq!(
        (done.info.token_version, done.tokens.access_expires_at),
        (2, 90_000)
    );
    assert!(
        matches!(
            s.finish_refresh("org-a", "b", &tokens("x", None, 1), 63_003)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "the lease is released by finishing"
    );
    let RefreshLease::Held { .. } = s.begin_refresh("org-a", "c", LEASE, 63_004).await.unwrap()
    else {
        panic!("free after finish")
    };
    let kept = s
        .finish_refresh("org-a", "c", &tokens("acc-c", None, 95_000), 63_005)
        .await
        .unwrap();
    assert_eq!((access(&kept), refresh(&kept)), ("acc-c", Some("ref-b")));
    assert_eq!(kept.info.token_version, 3);
    // Abandoning releases without a token change.
    let RefreshLease::Held { .. } = s.begin_refresh("org-a", "d", LEASE, 63_006).await.unwrap()
    else {
        panic!("free")
    };
    assert!(s.abandon_refresh("org-a", "d").await.unwrap());
    assert!(matches!(
        s.begin_refresh("org-a", "e", LEASE, 63_007).await.unwrap(),
        RefreshLease::Held { .. }
    ));
    assert_eq!(
        s.installation_tokens("org-a")
            .await
            .unwrap()
            .unwrap()
            .token_version,
        3
    );
}

fn pending(
    state: &str,
    verifier: &str,
    created_at: UnixMillis,
    expires_at: UnixMillis,
) -> NewPendingAuthorization {
    NewPendingAuthorization {
        state: secret(state),
        code_verifier: secret(verifier),
        redirect_uri: "http://127.0.0.1:8765/oauth/callback".into(),
        additional_workspace: true,
        created_at,
        expires_at,
    }
}

pub async fn pending_authorization_is_taken_once(db: TestDb) {
    let k = keys();
    let s = db.store.clone().with_secret_keys(k.clone());
    s.insert_pending_authorization(&pending("state-1", "verifier-1", 1_000, 601_000))
        .await
        .unwrap();
    assert!(matches!(
        s.take_pending_authorization("state-forged", 2_000)
            .await
            .unwrap(),
        TakeAuthorization::Unknown
    ));
    match s
        .take_pending_authorization("state-1", 2_000)
        .await
        .unwrap()
    {
        TakeAuthorization::Taken(p) => {
            assert_eq!(p.code_verifier.expose_secret(), "verifier-1");
            assert_eq!(p.redirect_uri, "http://127.0.0.1:8765/oauth/callback");
            assert!(p.additional_workspace);
            assert_eq!((p.created_at, p.expires_at), (1_000, 601_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.take_pending_authorization("state-1", 3_000)
            .await
            .unwrap(),
        TakeAuthorization::AlreadyUsed { used_at: 2_000 }
    ));

    s.insert_pending_authorization(&pending("state-2", "verifier-2", 1_000, 5_000))
        .await
        .unwrap();
    assert!(matches!(
        s.take_pending_authorization("state-2", 5_000)
            .await
            .unwrap(),
        TakeAuthorization::Expired { expired_at: 5_000 }
    ));
    assert!(
        matches!(
            s.take_pending_authorization("state-2", 5_001)
                .await
                .unwrap(),
            TakeAuthorization::Expired { .. }
        ),
        "an expired state stays expired"
    );

    // Two callbacks with one state racing from eight replicas: one wins.
    s.insert_pending_authorization(&pending("state-3", "verifier-3", 10_000, 610_000))
        .await
        .unwrap();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = db.replica().await.with_secret_keys(k.clone());
        handles.push(tokio::spawn(async move {
            matches!(
                store
                    .take_pending_authorization("state-3", 11_000)
                    .await
                    .unwrap(),
                TakeAuthorization::Taken(_)
            )
        }));
    }
    let mut taken = 0;
    for h in handles {
        taken += usize::from(h.await.unwrap());
    }
    assert_eq!(taken, 1);

    // A day after expiry old rows are forgotten by the next insert.
    s.insert_pending_authorization(&pending(
        "state-4",
        "v4",
        5_000 + 24 * HOUR + 1,
        5_000 + 25 * HOUR,
    ))
    .await
    .unwrap();
    assert!(matches!(
        s.take_pending_authorization("state-2", 5_000 + 24 * HOUR + 2)
            .await
            .unwrap(),
        TakeAuthorization::Unknown
    ));
}

/// What an attacker with a copy of the database sees: no token, verifier
/// or state in plain text — neither in the columns nor anywhere in the
/// SQLite file and its write-ahead log.
pub async fn tokens_never_stored_in_plain_text(db: TestDb) {
    let s = db.store.clone().with_secret_keys(keys());
    let plain = [
        "lin_oauth_ACCESS_c0ffee_first",
        "lin_refresh_REFRESH_c0ffee_first",
        "lin_oauth_ACCESS_c0ffee_second",
        "lin_refresh_REFRESH_c0ffee_second",
        "pkce_VERIFIER_c0ffee_0123456789abcdef",
        "csrf_STATE_c0ffee_0123456789abcdef",
    ];
    let mut new = new_installation("org-a", plain[0], plain[1]);
    new.workspace_name = "Plaintext Probe Workspace".into();
    s.connect_installation(&new, 1_000).await.unwrap();
    let RefreshLease::Held { .. } = s.begin_refresh("org-a", "w", LEASE, 2_000).await.unwrap()
    else {
        panic!("free")
    };
    s.finish_refresh(
        "org-a",
        "w",
        &tokens(plain[2], Some(plain[3]), 9_000_000),
        2_001,
    )
    .await
    .unwrap();
    s.insert_pending_authorization(&pending(plain[5], plain[4], 3_000, 600_000))
        .await
        .unwrap();

    let mut columns = db
        .raw_strings("SELECT access_token FROM installations")
        .await;
    columns.extend(
        db.raw_strings("SELECT refresh_token FROM installations")
            .await,
    );
    columns.extend(
        db.raw_strings("SELECT code_verifier FROM oauth_pending")
            .await,
    );
    columns.extend(db.raw_strings("SELECT state_hash FROM oauth_pending").await);
    assert_eq!(columns.len(), 4);
    for value in &columns {
        for p in plain {
            assert!(!value.contains(p), "{p} stored in plain text: {value}");
        }
    }
    assert!(
        columns[..3].iter().all(|v| v.starts_with("v1:")),
        "{columns:?}"
    );

    if let Some(file) = db.sqlite_file() {
        let mut bytes = std::fs::read(&file).unwrap();
        let wal = file.with_file_name(format!(
            "{}-wal",
            file.file_name().unwrap().to_string_lossy()
        ));
        if let Ok(more) = std::fs::read(&wal) {
            bytes.extend(more);
        }
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        // The probe can see what was written (else finding nothing proves nothing).
        assert!(
            contains("Plaintext Probe Workspace"),
            "the files hold the rows"
        );
        for p in plain {
            assert!(!contains(p), "{p} is in the SQLite files in plain text");
        }
    }
}

pub async fn wrong_key_is_reported_clearly(db: TestDb) {
    let right = keys();
    let s = db.store.clone().with_secret_keys(right.clone());
    s.connect_installation(&new_installation("org-a", "acc-a", "ref-a"), 1_000)
        .await
        .unwrap();
    s.connect_installation(&new_installation("org-b", "acc-b", "ref-b"), 1_000)
        .await
        .unwrap();

    let wrong = keys();
    let other = db.replica().await.with_secret_keys(wrong.clone());
    let err = other.get_installation("org-a").await.unwrap_err();
    match &err {
        StoreError::Secret(SecretError::WrongKey {
            stored, current, ..
        }) => {
            assert_eq!(stored, right.current().id());
            assert_eq!(current, wrong.current().id());
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "this database was encrypted with key {}",
            right.current().id()
        )) && text.contains(wrong.current().id())
            && text.contains(SECRET_KEY_ENV),
        "{text}"
    );
    assert!(other.list_installations().await.is_err());
    assert_eq!(other.list_installation_infos().await.unwrap().len(), 2);

    // A token copied into another workspace's row does not decrypt there.
    db.raw_execute(
        "UPDATE installations SET access_token =
             (SELECT access_token FROM installations WHERE workspace_id = 'org-a')
         WHERE workspace_id = 'org-b'",
    )
    .await;
    let err = s.get_installation("org-b").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Secret(SecretError::Tampered { .. })),
        "{err}"
    );
    assert!(s.get_installation("org-a").await.is_ok());
}

pub async fn key_rotation_with_previous_key(db: TestDb) {
    let old = SecretKey::generate();
    let new = SecretKey::generate();
    let before = db
        .store
        .clone()
        .with_secret_keys(Keyring::new(old.clone(), None));
    before
        .connect_installation(&new_installation("org-a", "acc-a", "ref-a"), 1_000)
        .await
        .unwrap();
    let mut app = new_installation("org-b", "acc-b", "x");
    app.tokens.refresh_token = None;
    before.connect_installation(&app, 1_000).await.unwrap();
    before
        .insert_pending_authorization(&pending("state", "verifier", 1_000, 600_000))
        .await
        .unwrap();

    let rotating = db
        .replica()
        .await
        .with_secret_keys(Keyring::new(new.clone(), Some(old.clone())));
    let a = rotating.get_installation("org-a").await.unwrap().unwrap();
    assert_eq!((access(&a), refresh(&a)), ("acc-a", Some("ref-a")));
    assert_eq!(rotating.reencrypt_installations().await.unwrap(), 3);
    assert_eq!(
        rotating.reencrypt_installations().await.unwrap(),
        0,
        "nothing left"
    );

    let after = db
        .replica()
        .await
        .with_secret_keys(Keyring::new(new.clone(), None));
    let a = after.get_installation("org-a").await.unwrap().unwrap();
    assert_eq!((access(&a), refresh(&a)), ("acc-a", Some("ref-a")));
    assert_eq!(
        a.info.token_version, 1,
        "re-encryption is not a token change"
    );
    let b = after.get_installation("org-b").await.unwrap().unwrap();
    assert_eq!((access(&b), refresh(&b)), ("acc-b", None));
    match after
        .take_pending_authorization("state", 2_000)
        .await
        .unwrap()
    {
        TakeAuthorization::Taken(p) => assert_eq!(p.code_verifier.expose_secret(), "verifier"),
        other => panic!("{other:?}"),
    }
    let err = before.get_installation("org-a").await.unwrap_err();
    assert!(err.to_string().contains(new.id()), "{err}");
}

pub async fn permission_changes_are_recorded_once(db: TestDb) {
    let s = &db.store;
    let change = PermissionChange {
        dedupe_key: "delivery-1".into(),
        workspace_id: "org-a".into(),
        changed_at: 1_000,
        added_team_ids: vec!["team-1".into(), "team-2".into()],
        removed_team_ids: vec!["team-3".into()],
    };
    assert_eq!(
        s.record_permission_change(&change).await.unwrap(),
        Insert::Inserted
    );
    assert_eq!(
        s.record_permission_change(&change).await.unwrap(),
        Insert::Duplicate
    );
    let later = PermissionChange {
        dedupe_key: "delivery-2".into(),
        changed_at: 2_000,
        added_team_ids: vec![],
        ..change.clone()
    };
    s.record_permission_change(&later).await.unwrap();
    let other = PermissionChange {
        dedupe_key: "delivery-3".into(),
        workspace_id: "org-b".into(),
        ..change.clone()
    };
    s.record_permission_change(&other).await.unwrap();
    assert_eq!(
        s.list_permission_changes(Some("org-a"), 10).await.unwrap(),
        [later.clone(), change.clone()]
    );
    assert_eq!(s.list_permission_changes(None, 10).await.unwrap().len(), 3);
    assert_eq!(s.list_permission_changes(None, 1).await.unwrap(), [later]);
}

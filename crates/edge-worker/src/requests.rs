//! What any replica may ask of a task without holding its lease: stop it,
//! or wake the tasks parked for a condition that may have changed. The
//! lease holder acts on it (one claim, one writer).

use crate::context::Ctx;
use cyrus_core::lifecycle::WaitReason;
use cyrus_store::{StoreError, Task};

/// Records a stop request with the reason to tell the user (and, in the
/// audit log, `by` whom: a person, `linear` for a change in Linear, `cyrus`
/// for the worker's own checks), and wakes the task; its next step is the
/// stop (see `steps::dispatch`).
pub(crate) async fn request_stop(
    ctx: &Ctx,
    task: &Task,
    key: &str,
    reason: &str,
    by: &str,
) -> Result<(), StoreError> {
    let now = ctx.now_ms();
    crate::audit::task(
        ctx,
        task,
        cyrus_store::AuditKind::Stopped,
        key,
        Some(by),
        reason,
        None,
    )
    .await?;
    ctx.store
        .add_stop_request(&task.id, key, reason, now)
        .await?;
    ctx.store.request_cancel(&task.id, now).await?;
    ctx.wake.scheduler.notify_one();
    Ok(())
}

/// Makes every active task parked for `reason` due now. Returns how many.
pub(crate) async fn wake_parked(ctx: &Ctx, reason: WaitReason) -> Result<usize, StoreError> {
    let filter = cyrus_store::TaskFilter {
        state: Some(reason.state()),
        active_only: true,
        ..Default::default()
    };
    let now = ctx.now_ms();
    let mut woken = 0;
    for task in ctx.store.list_tasks(&filter).await? {
        if task.step == Some(reason) {
            ctx.store.wake_task(&task.id, now).await?;
            woken += 1;
        }
    }
    if woken > 0 {
        ctx.wake.scheduler.notify_one();
    }
    Ok(woken)
}

/// Makes every active task of a workspace due now: it was just connected
/// again, and its tasks wait with a recheck time of their own.
pub(crate) async fn wake_workspace(ctx: &Ctx, organization_id: &str) -> Result<usize, StoreError> {
    let filter = cyrus_store::TaskFilter {
        active_only: true,
        ..Default::default()
    };
    let now = ctx.now_ms();
    let mut woken = 0;
    for task in ctx.store.list_tasks(&filter).await? {
        if task.organization_id == organization_id && task.run_at > now {
            ctx.store.wake_task(&task.id, now).await?;
            woken += 1;
        }
    }
    ctx.wake.scheduler.notify_one();
    ctx.wake.outbox.notify_one();
    Ok(woken)
}

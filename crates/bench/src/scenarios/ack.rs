//! Webhook → first Linear activity: the Linear simulator sends `created` for
//! each delegation at a steady rate; the latency is from just before the
//! delegation (which sends the signed webhook) to the `created_at` of the
//! session's first activity (the acknowledgement `thought`), both read from
//! the same wall clock.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig, wait_until};
use crate::stats::{Samples, ms};
use std::time::Duration;

pub struct AckOptions {
    pub webhooks: usize,
    pub per_second: u32,
}

pub async fn run(opts: AckOptions) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "ack latency";
    let mut stack = rig::options();
    // Every delegation makes a Linear request or more; the documented
    // hourly budget would throttle the acknowledgements themselves.
    stack.linear.rate_limits.requests_per_window = 1_000_000;
    let mut rig = Rig::prepare(stack).await?;
    let worker = rig.start_worker().await?;
    let issues = rig.create_issues(opts.webhooks, "[sim never_finish]")?;

    let mut sent = Vec::with_capacity(issues.len());
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / opts.per_second.max(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = std::time::Instant::now();
    for issue in &issues {
        ticker.tick().await;
        let at = chrono::Utc::now();
        sent.push((rig.delegate(issue)?, at));
    }
    let send_secs = started.elapsed().as_secs_f64();

    let control = rig.linear.control();
    wait_until(Duration::from_secs(60), || {
        sent.iter()
            .all(|(s, _)| control.session(s).is_some_and(|v| !v.activities.is_empty()))
    })
    .await;
    let mut samples = Samples::default();
    let mut missing = 0;
    for (session, at) in &sent {
        match control
            .session(session)
            .and_then(|v| v.activities.first().cloned())
        {
            Some(first) => samples.push((first.created_at - *at).to_std().unwrap_or_default()),
            None => missing += 1,
        }
    }
    // Where the time goes: sent → stored (webhook transit and the insert),
    // stored → processed (intake), processed → acknowledgement (outbox and
    // Linear's mutation).
    let sent_at: std::collections::HashMap<&str, chrono::DateTime<chrono::Utc>> =
        sent.iter().map(|(s, at)| (s.as_str(), *at)).collect();
    let (mut stored, mut processed, mut posted) =
        (Samples::default(), Samples::default(), Samples::default());
    let store = worker.context().store.clone();
    let ms_after =
        |later: i64, earlier: i64| Duration::from_millis((later - earlier).max(0) as u64);
    // Deliveries the simulator had to send again, and why the first try
    // failed: a retry waits Linear's backoff, which is most of such a tail.
    let mut retried = 0;
    let mut first_failure = None;
    let mut retried_at = Samples::default();
    let first_sent = sent.first().map(|(_, at)| *at);
    for d in control.deliveries() {
        if d.attempts.len() > 1 {
            retried += 1;
            if let Some(first) = first_sent {
                retried_at.push((d.attempts[0].at - first).to_std().unwrap_or_default());
            }
            first_failure.get_or_insert_with(|| {
                let a = &d.attempts[0];
                a.error
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", a.status.unwrap_or_default()))
            });
        }
        let Some(session) = d.body.pointer("/agentSession/id").and_then(|v| v.as_str()) else {
            continue;
        };
        let (Some(at), Ok(Some(row))) = (sent_at.get(session), store.get_delivery(&d.id).await)
        else {
            continue;
        };
        stored.push(ms_after(row.received_at, at.timestamp_millis()));
        if let Some(done) = row.processed_at {
            processed.push(ms_after(done, row.received_at));
            if let Some(first) = control
                .session(session)
                .and_then(|v| v.activities.first().cloned())
            {
                posted.push(ms_after(first.created_at.timestamp_millis(), done));
            }
        }
    }
    worker.shutdown().await;
    rig.shutdown().await;

    let rate = opts.webhooks as f64 / send_secs;
    let pct = |p| samples.percentile(p).map(ms);
    let note = format!(
        "{} webhooks sent at {rate:.0}/s; {missing} without an acknowledgement after 60 s",
        opts.webhooks
    );
    Ok(vec![
        Figure::new(S, "p50", pct(50.0), "ms").note(note.clone()),
        Figure::new(S, "p99", pct(99.0), "ms")
            .goal(Goal::AtMost(25.0))
            .note(note),
        Figure::new(S, "max", samples.max().map(ms), "ms"),
        Figure::new(
            S,
            "p99 sent → stored",
            stored.percentile(99.0).map(ms),
            "ms",
        )
        .note(format!(
            "{retried} deliveries retried by the simulator{}{}",
            match (retried_at.percentile(0.0), retried_at.max()) {
                (Some(a), Some(b)) => format!(
                    " (first tries failing {:.1}–{:.1} s into the run)",
                    a.as_secs_f64(),
                    b.as_secs_f64()
                ),
                _ => String::new(),
            },
            first_failure
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        )),
        Figure::new(
            S,
            "p99 stored → processed",
            processed.percentile(99.0).map(ms),
            "ms",
        ),
        Figure::new(
            S,
            "p99 processed → ack",
            posted.percentile(99.0).map(ms),
            "ms",
        ),
        Figure::new(S, "unacknowledged", Some(missing as f64), "webhooks").goal(Goal::AtMost(0.0)),
    ])
}

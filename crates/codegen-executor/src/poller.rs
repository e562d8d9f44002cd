//! One poller for every active run.
//!
//! Codegen has no webhooks, so completion is noticed by polling, and every
//! read spends the organization's shared 60 / 30 s budget. Polling each run
//! separately costs one read per run per tick: 200 runs at 10 s would need
//! 1 200 reads a minute, ten times the budget. Instead [`RunTracker::tick`]
//! reads the newest pages of `list runs` (`source_type=API`, 100 runs per
//! read, newest first) and picks our runs out of them; only runs not found
//! there (older than the pages it reads, or filtered out) get a `get run`
//! each, a bounded number per tick.
//!
//! The interval adapts: it is the smallest of `max_interval` and the larger
//! of `min_interval` and the time the last tick's reads need to stay within
//! the poller's share of the read budget; it doubles while the shared read
//! budget is nearly spent (other callers are busy).
//!
//! Time is injectable: [`RunTracker::tick`] does one round and returns what
//! changed, and [`RunTracker::next_delay`] says how long to wait; the
//! [`RunTracker::run`] loop only sleeps on tokio's clock (pausable in tests).

use crate::client::CodegenClient;
use crate::error::CodegenError;
use crate::model::{AgentRun, ListRuns, PageRequest};
use crate::rate::EndpointClass;
use crate::status::RunStatus;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq)]
pub struct PollConfig {
    /// Never poll more often (Codegen's own tools poll every 10 s).
    pub min_interval: Duration,
    /// Never poll less often while runs are active.
    pub max_interval: Duration,
    /// Percent of the read budget the poller may spend; the rest is left
    /// for creates' follow-up reads, setup checks and other replicas.
    pub read_budget_percent: u32,
    /// Runs per list page (Codegen allows 1..=100).
    pub list_page_size: u64,
    /// List pages read per tick at most.
    pub max_list_pages: u64,
    /// `source_type` filter on list; our runs are `API`.
    pub source_type: Option<String>,
    /// Restrict lists to runs started by this Codegen user (our token's).
    pub user_id: Option<i64>,
    /// `get run` calls per tick for runs the list pages did not show.
    pub max_gets_per_tick: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            min_interval: Duration::from_secs(10),
            max_interval: Duration::from_secs(60),
            read_budget_percent: 50,
            list_page_size: 100,
            max_list_pages: 4,
            source_type: Some("API".to_string()),
            user_id: None,
            max_gets_per_tick: 10,
        }
    }
}

/// Something the Linear side must hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackerEvent {
    /// The run's status differs from the last one seen. When the new status
    /// is terminal or waits for input the run is no longer tracked.
    StatusChanged {
        run_id: i64,
        previous: Option<RunStatus>,
        run: Box<AgentRun>,
    },
    /// Codegen answered 404 for the run: it is no longer tracked.
    Vanished { run_id: i64 },
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickReport {
    pub events: Vec<TrackerEvent>,
    pub list_calls: u32,
    pub get_calls: u32,
}

impl TickReport {
    pub fn reads(&self) -> u32 {
        self.list_calls + self.get_calls
    }
}

#[derive(Clone, Debug)]
struct Tracked {
    last_status: Option<RunStatus>,
    /// Ticks since the run was last seen; orders the fallback `get`s.
    unseen_ticks: u32,
}

/// Commands for the [`RunTracker::run`] loop.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackerCommand {
    Track {
        run_id: i64,
        known: Option<RunStatus>,
    },
    Untrack {
        run_id: i64,
    },
}

pub struct RunTracker {
    client: CodegenClient,
    config: PollConfig,
    runs: BTreeMap<i64, Tracked>,
    last_reads: u32,
}

impl RunTracker {
    pub fn new(client: CodegenClient, config: PollConfig) -> RunTracker {
        RunTracker {
            client,
            config,
            runs: BTreeMap::new(),
            last_reads: 0,
        }
    }

    /// Follows `run_id`; `known` is the status from the create/resume answer,
    /// so an unchanged first poll emits nothing.
    pub fn track(&mut self, run_id: i64, known: Option<RunStatus>) {
        self.runs.insert(
            run_id,
            Tracked {
                last_status: known,
                unseen_ticks: 0,
            },
        );
    }

    pub fn untrack(&mut self, run_id: i64) -> bool {
        self.runs.remove(&run_id).is_some()
    }

    pub fn is_tracking(&self, run_id: i64) -> bool {
        self.runs.contains_key(&run_id)
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// One polling round. A failed list call returns the error with nothing
    /// changed (the next tick repeats the round); a failed `get` only skips
    /// that run this time.
    pub async fn tick(&mut self) -> Result<TickReport, CodegenError> {
        let mut report = TickReport::default();
        if self.runs.is_empty() {
            self.last_reads = 0;
            return Ok(report);
        }
        for t in self.runs.values_mut() {
            t.unseen_ticks = t.unseen_ticks.saturating_add(1);
        }
        let oldest = *self.runs.keys().next().expect("not empty");
        let mut seen: Vec<i64> = Vec::new();
        let limit = self.config.list_page_size.clamp(1, 100);
        let mut skip = 0;
        let mut fresh: Vec<AgentRun> = Vec::new();
        while u64::from(report.list_calls) < self.config.max_list_pages {
            let page = self
                .client
                .list_runs(&ListRuns {
                    page: PageRequest { skip, limit },
                    source_type: self.config.source_type.clone(),
                    user_id: self.config.user_id,
                })
                .await?;
            report.list_calls += 1;
            let count = page.items.len() as u64;
            let min_on_page = page.items.iter().map(|r| r.id).min();
            for run in page.items {
                if self.runs.contains_key(&run.id) {
                    seen.push(run.id);
                    fresh.push(run);
                }
            }
            skip += count;
            let all_found = seen.len() == self.runs.len();
            let past_oldest = min_on_page.is_none_or(|m| m <= oldest);
            if all_found || past_oldest || count < limit || skip >= page.total {
                break;
            }
        }
        // Runs the pages did not show: one `get` each, longest unseen first.
        let mut missing: Vec<(u32, i64)> = self
            .runs
            .iter()
            .filter(|(id, _)| !seen.contains(id))
            .map(|(id, t)| (t.unseen_ticks, *id))
            .collect();
        missing.sort_by(|a, b| b.cmp(a));
        for (_, run_id) in missing.into_iter().take(self.config.max_gets_per_tick) {
            match self.client.get_run(run_id).await {
                Ok(run) => fresh.push(run),
                Err(CodegenError::NotFound { .. }) => {
                    self.runs.remove(&run_id);
                    report.events.push(TrackerEvent::Vanished { run_id });
                }
                Err(e) => {
                    // Keep what this tick learnt; the rest is retried next tick.
                    report.get_calls += 1;
                    tracing::warn!(run_id, error = %e, "polling a run failed");
                    continue;
                }
            }
            report.get_calls += 1;
        }
        for run in fresh {
            self.observe_run(run, &mut report.events);
        }
        self.last_reads = report.reads();
        metrics::gauge!("codegen_tracked_runs").set(self.runs.len() as f64);
        Ok(report)
    }

    fn observe_run(&mut self, run: AgentRun, events: &mut Vec<TrackerEvent>) {
        let id = run.id;
        let Some(tracked) = self.runs.get_mut(&id) else {
            return;
        };
        tracked.unseen_ticks = 0;
        let status = run.status();
        if tracked.last_status.as_ref() != Some(&status) {
            let previous = tracked.last_status.replace(status.clone());
            events.push(TrackerEvent::StatusChanged {
                run_id: id,
                previous,
                run: Box::new(run),
            });
        }
        if !status.should_poll() {
            self.runs.remove(&id);
        }
    }

    /// How long to wait before the next tick (see the module docs).
    pub fn next_delay(&self) -> Duration {
        let cfg = &self.config;
        if self.runs.is_empty() {
            return cfg.max_interval;
        }
        let limits = self.client.rate_limits().read;
        let budget =
            (u64::from(limits.max) * u64::from(cfg.read_budget_percent.clamp(1, 100)) / 100).max(1);
        let reads = u64::from(self.last_reads.max(1));
        // `reads` per tick within `budget` per `limits.per`.
        let needed = limits.per.mul_f64(reads as f64 / budget as f64);
        let mut delay = needed.max(cfg.min_interval);
        let headroom = self
            .client
            .rate_permit()
            .headroom()
            .into_iter()
            .find(|h| h.class == EndpointClass::Read);
        if let Some(h) = headroom
            && h.remaining() * 4 < h.limit.max
        {
            delay *= 2;
        }
        delay.min(cfg.max_interval.max(cfg.min_interval))
    }

    /// Runs until `commands` closes: applies commands, ticks, and sends every
    /// event to `events`. Errors are logged and retried on the next tick.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<TrackerCommand>,
        events: mpsc::Sender<TrackerEvent>,
    ) {
        let mut next = tokio::time::Instant::now() + self.config.min_interval;
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(TrackerCommand::Track { run_id, known }) => {
                        if self.is_empty() {
                            next = tokio::time::Instant::now() + self.config.min_interval;
                        }
                        self.track(run_id, known);
                    }
                    Some(TrackerCommand::Untrack { run_id }) => {
                        self.untrack(run_id);
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(next) => {
                    match self.tick().await {
                        Ok(report) => {
                            for event in report.events {
                                if events.send(event).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "run poller tick failed; retrying next tick"),
                    }
                    next = tokio::time::Instant::now() + self.next_delay();
                }
            }
        }
    }
}

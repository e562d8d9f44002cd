//! The simulator's shared state, behind one mutex never held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::clock::SimClock;
use super::endpoint::Endpoint;
use super::faults::Faults;
use super::options::{RateLimits, SimMcpProvider, SimOptions, SimRepo};
use super::rate_limit::RateLimiter;
use super::run::{Defaults, PrCounter, Run};
use super::script::RunScript;

/// First id handed out; ids then only increase.
const FIRST_RUN_ID: i64 = 1001;

pub struct Shared {
    pub clock: SimClock,
    pub org_id: i64,
    pub org_name: String,
    pub token: String,
    pub repos: Vec<SimRepo>,
    pub defaults: Defaults,
    inner: Mutex<Inner>,
}

pub struct Inner {
    pub runs: BTreeMap<i64, Run>,
    pub next_run_id: i64,
    pub prs: PrCounter,
    pub faults: Faults,
    pub next_scripts: VecDeque<RunScript>,
    pub run_scripts: HashMap<i64, RunScript>,
    pub allowance: Option<u32>,
    pub rate_limits: RateLimits,
    pub limiter: RateLimiter,
    pub requests: BTreeMap<Endpoint, u64>,
    pub served_429: u64,
    /// Successful answers lost by `Faults::lose_answer_next`.
    pub answers_lost: u64,
    pub integrations: Vec<(String, bool)>,
    pub mcp_providers: Vec<SimMcpProvider>,
}

impl Shared {
    pub fn new(opts: &SimOptions) -> Shared {
        Shared {
            clock: SimClock::new(opts.time_scale),
            org_id: opts.org_id,
            org_name: opts.org_name.clone(),
            token: opts.token.clone(),
            repos: opts.repos.clone(),
            defaults: Defaults {
                duration_ms: opts.default_run_duration.as_millis() as u64,
                log_count: opts.default_log_count,
            },
            inner: Mutex::new(Inner {
                runs: BTreeMap::new(),
                next_run_id: FIRST_RUN_ID,
                prs: PrCounter {
                    next_id: 5001,
                    next_number: 1,
                },
                faults: Faults::default(),
                next_scripts: VecDeque::new(),
                run_scripts: HashMap::new(),
                allowance: opts.run_allowance,
                rate_limits: opts.rate_limits.clone(),
                limiter: RateLimiter::default(),
                requests: BTreeMap::new(),
                served_429: 0,
                answers_lost: 0,
                integrations: opts.integrations.clone(),
                mcp_providers: opts.mcp_providers.clone(),
            }),
        }
    }

    /// Locks the state. A panic while locked cannot leave it half-updated in
    /// a way that matters to a simulator, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Settles one run against the clock and returns the lock with it.
    pub fn settle_all(&self, inner: &mut Inner) {
        let now = self.clock.now();
        let Inner { runs, prs, .. } = inner;
        for run in runs.values_mut() {
            run.settle(now, prs);
        }
    }
}

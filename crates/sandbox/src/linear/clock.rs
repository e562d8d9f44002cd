//! The simulator's compressible clock for OAuth lifetimes.
//!
//! Access tokens live 24 hours and client-credentials tokens 30 days; no test
//! can wait that long, so token and code expiry read this clock instead of
//! the wall clock. It runs `time_scale` times faster than real time (0
//! freezes it) and tests can push it forward with [`LinearClock::advance`].
//! The rest of the simulator (session timing, webhook retries) keeps its own
//! scaled durations from `LinearSimOptions::time_scaled`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

#[derive(Debug)]
pub struct LinearClock {
    state: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    /// The simulated instant at `since`.
    base: DateTime<Utc>,
    /// The real instant the current scale took effect.
    since: Instant,
    scale: f64,
}

impl LinearClock {
    pub fn new(time_scale: f64) -> LinearClock {
        LinearClock {
            state: Mutex::new(ClockState {
                base: Utc::now(),
                since: Instant::now(),
                scale: sanitize(time_scale),
            }),
        }
    }

    /// The current simulated instant.
    pub fn now(&self) -> DateTime<Utc> {
        let s = self.state.lock().expect("clock lock");
        s.now()
    }

    /// Moves simulated time forward by `by` at once.
    pub fn advance(&self, by: Duration) {
        let mut s = self.state.lock().expect("clock lock");
        s.base += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Changes how fast simulated time flows from now on (0 = frozen).
    pub fn set_scale(&self, time_scale: f64) {
        let mut s = self.state.lock().expect("clock lock");
        s.base = s.now();
        s.since = Instant::now();
        s.scale = sanitize(time_scale);
    }

    pub fn scale(&self) -> f64 {
        self.state.lock().expect("clock lock").scale
    }
}

impl ClockState {
    fn now(&self) -> DateTime<Utc> {
        let real = self.since.elapsed().as_secs_f64() * self.scale;
        self.base + chrono::Duration::microseconds((real * 1e6) as i64)
    }
}

fn sanitize(scale: f64) -> f64 {
    if scale.is_finite() && scale >= 0.0 {
        scale
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let c = LinearClock::new(0.0);
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(24 * 3600));
        assert_eq!(c.now() - t0, chrono::Duration::hours(24));
    }

    #[test]
    fn a_scaled_clock_runs_faster_than_real_time() {
        let c = LinearClock::new(1000.0);
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() - t0 >= chrono::Duration::seconds(19));
        c.set_scale(0.0);
        let t1 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t1);
    }

    #[test]
    fn an_invalid_scale_falls_back_to_real_time() {
        assert_eq!(LinearClock::new(f64::NAN).scale(), 1.0);
        assert_eq!(LinearClock::new(-2.0).scale(), 1.0);
    }
}

//! The simulated clock every run timeline and rate-limit window reads.
//!
//! Simulated time runs `time_scale` times faster than real time and can be
//! pushed forward from tests, so a "five-minute" run can finish in five real
//! seconds — or instantly, with `time_scale = 0` and an explicit advance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Milliseconds of simulated time since the simulator started.
pub type SimMillis = u64;

#[derive(Debug)]
pub struct SimClock {
    real_start: Instant,
    wall_start: DateTime<Utc>,
    /// Stored as bits of an `f64` so the scale can change at run time.
    scale_bits: AtomicU64,
    /// Simulated time accumulated before the last scale change.
    base_ms: AtomicU64,
    /// Real instant (ms since `real_start`) when the current scale began.
    scale_since_real_ms: AtomicU64,
    /// Manual advances from tests.
    advanced_ms: AtomicU64,
}

impl SimClock {
    pub fn new(time_scale: f64) -> Self {
        Self {
            real_start: Instant::now(),
            wall_start: Utc::now(),
            scale_bits: AtomicU64::new(sanitize(time_scale).to_bits()),
            base_ms: AtomicU64::new(0),
            scale_since_real_ms: AtomicU64::new(0),
            advanced_ms: AtomicU64::new(0),
        }
    }

    fn real_ms(&self) -> u64 {
        self.real_start.elapsed().as_millis() as u64
    }

    /// Current simulated time.
    pub fn now(&self) -> SimMillis {
        let scale = f64::from_bits(self.scale_bits.load(Ordering::Acquire));
        let since = self
            .real_ms()
            .saturating_sub(self.scale_since_real_ms.load(Ordering::Acquire));
        self.base_ms.load(Ordering::Acquire)
            + (since as f64 * scale) as u64
            + self.advanced_ms.load(Ordering::Acquire)
    }

    /// Moves simulated time forward by `by` at once.
    pub fn advance(&self, by: Duration) {
        self.advanced_ms
            .fetch_add(by.as_millis() as u64, Ordering::AcqRel);
    }

    /// Changes how fast simulated time flows from now on (0 = frozen).
    pub fn set_scale(&self, time_scale: f64) {
        let real = self.real_ms();
        let scale = f64::from_bits(self.scale_bits.load(Ordering::Acquire));
        let since = real.saturating_sub(self.scale_since_real_ms.load(Ordering::Acquire));
        self.base_ms
            .fetch_add((since as f64 * scale) as u64, Ordering::AcqRel);
        self.scale_since_real_ms.store(real, Ordering::Release);
        self.scale_bits
            .store(sanitize(time_scale).to_bits(), Ordering::Release);
    }

    pub fn scale(&self) -> f64 {
        f64::from_bits(self.scale_bits.load(Ordering::Acquire))
    }

    /// Wall-clock rendering of a simulated instant, as Codegen writes it:
    /// naive ISO-8601 with microseconds (UTC implied).
    pub fn timestamp(&self, at: SimMillis) -> String {
        let t = self.wall_start + chrono::Duration::milliseconds(at as i64);
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
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
    fn frozen_clock_moves_only_when_advanced() {
        let c = SimClock::new(0.0);
        assert_eq!(c.now(), 0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now(), 90_000);
        c.set_scale(0.0);
        assert_eq!(c.now(), 90_000);
    }

    #[test]
    fn timestamps_are_naive_iso_with_micros() {
        let c = SimClock::new(0.0);
        let ts = c.timestamp(1_500);
        assert!(
            chrono::NaiveDateTime::parse_from_str(&ts, "%Y-%m-%dT%H:%M:%S%.6f").is_ok(),
            "{ts}"
        );
        assert_eq!(ts.len(), 26, "{ts}");
    }

    #[test]
    fn invalid_scale_falls_back_to_real_time() {
        assert_eq!(SimClock::new(f64::NAN).scale(), 1.0);
        assert_eq!(SimClock::new(-3.0).scale(), 1.0);
    }
}

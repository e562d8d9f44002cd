//! Per-token sliding-window rate limiting in simulated time.

use std::collections::{HashMap, VecDeque};

use super::clock::SimMillis;
use super::endpoint::Bucket;
use super::options::{RateLimits, Window};

#[derive(Debug, Default)]
pub struct RateLimiter {
    hits: HashMap<(String, Bucket), VecDeque<SimMillis>>,
}

impl RateLimiter {
    /// Records a request and tells whether it is within the limit. Refused
    /// requests are not recorded, as a real limiter counts served requests.
    pub fn admit(
        &mut self,
        limits: &RateLimits,
        token: &str,
        bucket: Bucket,
        now: SimMillis,
    ) -> bool {
        if !limits.enabled {
            return true;
        }
        let Window { max, window } = match bucket {
            Bucket::Create => limits.create,
            Bucket::Standard => limits.standard,
            Bucket::Logs => limits.logs,
        };
        let window_ms = window.as_millis() as u64;
        let hits = self.hits.entry((token.to_owned(), bucket)).or_default();
        while hits.front().is_some_and(|&t| t + window_ms <= now) {
            hits.pop_front();
        }
        if hits.len() >= max as usize {
            return false;
        }
        hits.push_back(now);
        true
    }

    pub fn reset(&mut self) {
        self.hits.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let limits = RateLimits::default();
        let mut rl = RateLimiter::default();
        for i in 0..10 {
            assert!(rl.admit(&limits, "t", Bucket::Create, i), "request {i}");
        }
        assert!(!rl.admit(&limits, "t", Bucket::Create, 59_999));
        assert!(
            rl.admit(&limits, "other", Bucket::Create, 59_999),
            "per token"
        );
        assert!(
            rl.admit(&limits, "t", Bucket::Create, 60_000),
            "first hit left the window"
        );
        assert!(!rl.admit(&limits, "t", Bucket::Create, 60_000));
    }

    #[test]
    fn disabled_admits_everything() {
        let limits = RateLimits::disabled();
        let mut rl = RateLimiter::default();
        assert!((0..1000).all(|_| rl.admit(&limits, "t", Bucket::Create, 0)));
    }
}

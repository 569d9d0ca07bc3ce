//! A client-side rate limit shared by every request of one client, which
//! slows down when the server answers 429 and recovers as requests succeed.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimitConfig;

/// Spaces requests at least `1 / rate` apart. The rate halves on each 429
/// (down to a floor) and a `Retry-After` pauses every request of the client;
/// each success brings the spacing 10 % back towards the configured rate.
/// Without a configured rate the limiter lets everything through until the
/// first 429, then spaces requests from 10 ms upwards.
#[derive(Debug)]
pub struct RateLimiter {
    base: Duration,
    ceiling: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next: Instant,
    interval: Duration,
    pause_until: Option<Instant>,
}

impl RateLimiter {
    /// A limiter for `config`, or an unlimited one for `None`.
    pub fn new(config: Option<&RateLimitConfig>) -> Self {
        let (base, ceiling) = match config {
            Some(c) if c.per_second > 0.0 && c.per_second.is_finite() => {
                let floor = c.min_per_second.filter(|m| *m > 0.0).unwrap_or(c.per_second / 16.0);
                (
                    Duration::from_secs_f64(1.0 / c.per_second),
                    Duration::from_secs_f64(1.0 / floor.min(c.per_second)),
                )
            }
            _ => (Duration::ZERO, Duration::from_secs(1)),
        };
        RateLimiter {
            base,
            ceiling,
            state: Mutex::new(State {
                next: Instant::now(),
                interval: base,
                pause_until: None,
            }),
        }
    }

    /// The spacing now in force.
    pub fn interval(&self) -> Duration {
        self.lock().interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let start = {
            let mut s = self.lock();
            let now = Instant::now();
            let mut start = now.max(s.next);
            if let Some(p) = s.pause_until {
                if p > start {
                    start = p;
                } else if p <= now {
                    s.pause_until = None;
                }
            }
            s.next = start + s.interval;
            start
        };
        if start > Instant::now() {
            tokio::time::sleep_until(start).await;
        }
    }

    /// The server answered 429: halve the rate and pause everything for
    /// `retry_after` when given.
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let mut s = self.lock();
        s.interval = (s.interval * 2).max(Duration::from_millis(10)).min(self.ceiling);
        if let Some(after) = retry_after {
            let until = Instant::now() + after;
            s.pause_until = Some(s.pause_until.map_or(until, |p| p.max(until)));
        }
        tracing::debug!(
            interval_ms = s.interval.as_millis() as u64,
            "rate limit: slowing down after 429"
        );
    }

    /// A request succeeded: speed up 10 % towards the configured rate.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        if s.interval > self.base {
            let next = s.interval.mul_f64(0.9);
            s.interval = if next < Duration::from_millis(1) {
                self.base
            } else {
                next.max(self.base)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_and_slows_on_429() {
        let rl = RateLimiter::new(Some(&RateLimitConfig {
            per_second: 10.0,
            min_per_second: None,
        }));
        let t0 = Instant::now();
        for _ in 0..5 {
            rl.acquire().await;
        }
        assert_eq!(Instant::now() - t0, Duration::from_millis(400));
        rl.throttled(Some(Duration::from_secs(2)));
        assert_eq!(rl.interval(), Duration::from_millis(200));
        let t1 = Instant::now();
        rl.acquire().await;
        assert!(Instant::now() - t1 >= Duration::from_secs(2));
        for _ in 0..100 {
            rl.succeeded();
        }
        assert_eq!(rl.interval(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_until_throttled() {
        let rl = RateLimiter::new(None);
        let t0 = Instant::now();
        for _ in 0..100 {
            rl.acquire().await;
        }
        assert_eq!(Instant::now(), t0);
        rl.throttled(None);
        assert_eq!(rl.interval(), Duration::from_millis(10));
        for _ in 0..100 {
            rl.succeeded();
        }
        assert_eq!(rl.interval(), Duration::ZERO);
    }
}

//! Fault knobs (rate limits, server errors, delays) and request counters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::error::ApiError;

/// What a faulted request gets instead of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests, with `Retry-After: <seconds>` when `Some`.
    /// (JumpCloud documents 429 but not `Retry-After`; test both.)
    RateLimited {
        /// The `Retry-After` header's value in seconds, or no header.
        retry_after: Option<u64>,
    },
    /// A server error such as 500, 502, 503 or 504 with an `Error` body.
    Status(u16),
}

impl Fault {
    fn into_response(self) -> Response {
        match self {
            Fault::RateLimited { retry_after } => {
                let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
                if let Some(secs) = retry_after {
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let reason = status.canonical_reason().unwrap_or("Server Error");
                ApiError::new(status, reason).into_response()
            }
        }
    }
}

#[derive(Debug, Default)]
struct Plan {
    /// The next `n` requests fail.
    next: Option<(usize, Fault)>,
    /// Every n-th request (counted since set) fails.
    every: Option<(u64, u64, Fault)>,
    /// A seeded random share of requests fails.
    share: Option<(f64, StdRng, Fault)>,
    delay: Duration,
}

/// The fault knobs of a [`super::FakeJumpCloud`], settable while it runs.
/// Knobs combine: the first of `fail_next`, `fail_every`, `fail_share`
/// that fires decides. Faults are injected before authentication.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
}

impl Faults {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `count` requests get `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        self.plan().next = (count > 0).then_some((count, fault));
    }

    /// Every `n`-th request from now on (the n-th, 2n-th, …) gets `fault`;
    /// `n == 0` turns this knob off.
    pub fn fail_every(&self, n: u64, fault: Fault) {
        self.plan().every = (n > 0).then_some((n, 0, fault));
    }

    /// A share (0.0 to 1.0) of requests gets `fault`, chosen by a random
    /// generator seeded with `seed`, so a run is repeatable.
    pub fn fail_share(&self, share: f64, seed: u64, fault: Fault) {
        self.plan().share = (share > 0.0).then(|| (share, StdRng::seed_from_u64(seed), fault));
    }

    /// Every response (faulted or not) is delayed by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.plan().delay = delay;
    }

    /// Turns every knob off.
    pub fn clear(&self) {
        *self.plan() = Plan::default();
    }

    /// Decides the fate of one request: a fault or none, and the delay.
    fn draw(&self) -> (Option<Fault>, Duration) {
        let mut plan = self.plan();
        let mut fault = None;
        if let Some((left, f)) = &mut plan.next {
            fault = Some(*f);
            *left -= 1;
            if *left == 0 {
                plan.next = None;
            }
        }
        if let Some((n, seen, f)) = &mut plan.every {
            *seen += 1;
            if fault.is_none() && *seen % *n == 0 {
                fault = Some(*f);
            }
        }
        if let Some((share, rng, f)) = &mut plan.share {
            let hit = rng.random_bool(share.clamp(0.0, 1.0));
            if fault.is_none() && hit {
                fault = Some(*f);
            }
        }
        (fault, plan.delay)
    }
}

/// How many requests arrived, per path, and how many were faulted.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) total: u64,
    pub(crate) faulted: u64,
    pub(crate) per_path: BTreeMap<String, u64>,
}

/// Counts a request and applies the knobs: `Some(response)` when faulted.
pub(crate) async fn intercept(faults: &Faults, counters: &Mutex<Counters>, path: &str) -> Option<Response> {
    let (fault, delay) = faults.draw();
    {
        let mut c = counters.lock().unwrap_or_else(PoisonError::into_inner);
        c.total += 1;
        c.faulted += u64::from(fault.is_some());
        *c.per_path.entry(path.to_owned()).or_default() += 1;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    fault.map(Fault::into_response)
}

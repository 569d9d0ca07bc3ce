//! HTTP fault knobs shared by the fake servers and proxies of this crate:
//! [`crate::rest::RestServer`], [`crate::jumpcloud::FakeJumpCloud`] and
//! [`crate::scim2::FaultProxy`] each hold one [`Faults`] (their `faults()`)
//! and answer a faulted request in their own error format.
//!
//! Faults below HTTP (resets, refused connections, silent links) are the
//! [`crate::proxy::TcpProxy`]'s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), idsync_testkit::StartError> {
//! use std::time::Duration;
//! use idsync_testkit::fault::Fault;
//! use idsync_testkit::jumpcloud::FakeJumpCloud;
//! let jc = FakeJumpCloud::start("k".repeat(40).as_str()).await?;
//! let faults = jc.faults();
//! faults.fail_next(2, Fault::RateLimited { retry_after: Some(1) });
//! faults.fail_next_of(axum::http::Method::PATCH, 1, Fault::Status(503));
//! faults.fail_every(10, Fault::Status(500));
//! faults.fail_share(0.1, 7, Fault::Status(502));
//! faults.set_delay(Duration::from_millis(50));
//! // … run the client, then:
//! assert_eq!(faults.pending(), 0);
//! let _injected = faults.faulted();
//! faults.clear();
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a faulted request gets instead of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests, with `Retry-After: <seconds>` when `Some`.
    RateLimited {
        /// The `Retry-After` header's value in seconds, or no header.
        retry_after: Option<u64>,
    },
    /// A status such as 400, 500, 502, 503 or 504.
    Status(u16),
}

impl Fault {
    /// The status the fault answers (500 for a `Status` that is not one).
    pub fn status(self) -> StatusCode {
        match self {
            Fault::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Fault::Status(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The answer: `body` (a server's own error format) with the fault's
    /// status and `Retry-After` header.
    pub(crate) fn respond(self, body: impl IntoResponse) -> Response {
        let mut r = (self.status(), body).into_response();
        if let Fault::RateLimited {
            retry_after: Some(secs),
        } = self
        {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// The next faults: `count` requests (of `method`, when given) get `fault`.
#[derive(Debug)]
struct Next {
    count: usize,
    fault: Fault,
    method: Option<Method>,
}

#[derive(Debug, Default)]
struct Plan {
    /// In order; only the first is considered.
    next: VecDeque<Next>,
    /// Every n-th request (counted since set) fails: (n, seen, fault).
    every: Option<(u64, u64, Fault)>,
    /// A seeded random share of requests fails.
    share: Option<(f64, StdRng, Fault)>,
    delay: Duration,
    faulted: u64,
}

/// Fault knobs, settable while the server runs; cheap to clone (clones
/// share the knobs).
///
/// Knobs combine: the first of [`Faults::fail_next`],
/// [`Faults::fail_every`], [`Faults::fail_share`] that fires decides.
/// Faults are injected before authentication.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
}

impl Faults {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `count` requests get `fault`, after the faults of earlier
    /// calls not yet used.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        self.queue(count, fault, None);
    }

    /// The next `count` requests with this `method` get `fault`, after the
    /// faults of earlier calls not yet used; while this is the first fault
    /// in line, requests with other methods pass.
    pub fn fail_next_of(&self, method: Method, count: usize, fault: Fault) {
        self.queue(count, fault, Some(method));
    }

    fn queue(&self, count: usize, fault: Fault, method: Option<Method>) {
        if count > 0 {
            self.plan().next.push_back(Next { count, fault, method });
        }
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

    /// Turns every knob off (the count of [`Faults::faulted`] stays).
    pub fn clear(&self) {
        let mut plan = self.plan();
        let faulted = plan.faulted;
        *plan = Plan {
            faulted,
            ..Plan::default()
        };
    }

    /// How many requests [`Faults::fail_next`] and [`Faults::fail_next_of`]
    /// still have to fail.
    pub fn pending(&self) -> usize {
        self.plan().next.iter().map(|n| n.count).sum()
    }

    /// How many requests got a fault instead of their answer.
    pub fn faulted(&self) -> u64 {
        self.plan().faulted
    }

    /// Decides the fate of one request: a fault or none, and the delay.
    fn draw(&self, method: &Method) -> (Option<Fault>, Duration) {
        let mut plan = self.plan();
        let mut fault = None;
        if let Some(next) = plan.next.front_mut()
            && next.method.as_ref().is_none_or(|m| m == method)
        {
            fault = Some(next.fault);
            next.count -= 1;
            if next.count == 0 {
                plan.next.pop_front();
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
        plan.faulted += u64::from(fault.is_some());
        (fault, plan.delay)
    }

    /// Applies the knobs to one request: waits the delay, then `Some(fault)`
    /// when the request is to get one instead of its answer.
    pub(crate) async fn intercept(&self, method: &Method) -> Option<Fault> {
        let (fault, delay) = self.draw(method);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(f: &Faults, method: Method) -> Option<Fault> {
        f.draw(&method).0
    }

    #[test]
    fn next_faults_queue_in_order_and_wait_for_their_method() {
        let f = Faults::default();
        f.fail_next_of(Method::POST, 2, Fault::Status(503));
        f.fail_next(1, Fault::RateLimited { retry_after: Some(1) });
        assert_eq!(f.pending(), 3);
        assert_eq!(draw(&f, Method::GET), None);
        assert_eq!(draw(&f, Method::POST), Some(Fault::Status(503)));
        assert_eq!(draw(&f, Method::POST), Some(Fault::Status(503)));
        assert_eq!(draw(&f, Method::GET), Some(Fault::RateLimited { retry_after: Some(1) }));
        assert_eq!(draw(&f, Method::GET), None);
        assert_eq!((f.pending(), f.faulted()), (0, 3));
    }

    #[test]
    fn every_nth_and_a_seeded_share_fire_and_clear_turns_them_off() {
        let f = Faults::default();
        f.fail_every(2, Fault::Status(500));
        let hits: Vec<bool> = (0..4).map(|_| draw(&f, Method::GET).is_some()).collect();
        assert_eq!(hits, [false, true, false, true]);
        f.clear();
        f.fail_share(1.0, 7, Fault::Status(502));
        assert_eq!(draw(&f, Method::GET), Some(Fault::Status(502)));
        f.clear();
        assert_eq!(draw(&f, Method::GET), None);
        assert_eq!(f.faulted(), 3);
    }

    #[test]
    fn the_answer_carries_the_status_and_retry_after() {
        let r = Fault::RateLimited { retry_after: Some(3) }.respond("slow down");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        let r = Fault::Status(503).respond("busy");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
    }
}

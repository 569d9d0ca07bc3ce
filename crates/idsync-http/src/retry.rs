//! Backoff and `Retry-After`.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::config::RetryConfig;

/// The wait before retry number `attempt` (0 for the first retry):
/// exponential backoff with full jitter, `random(0..=min(max, base·2^attempt))`,
/// or the server's `Retry-After` plus up to 10 % jitter when it gave one
/// (so many clients told the same second do not all come back at once).
pub fn backoff(config: &RetryConfig, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let mut rng = rand::rng();
    if let Some(after) = retry_after {
        let jitter_ms = (after.as_millis() as u64 / 10).max(1);
        return after + Duration::from_millis(rng.random_range(0..=jitter_ms));
    }
    let cap = config
        .base_ms
        .saturating_mul(1u64.checked_shl(attempt.min(30)).unwrap_or(u64::MAX))
        .min(config.max_backoff_ms);
    Duration::from_millis(rng.random_range(0..=cap))
}

/// Parses a `Retry-After` value: delay seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. A date in the
/// past is zero; anything else unparseable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let c = RetryConfig {
            max_retries: 10,
            base_ms: 100,
            max_backoff_ms: 1_000,
            max_retry_after_ms: 60_000,
        };
        for attempt in 0..40 {
            let cap = (100u64 << attempt.min(20)).min(1_000);
            for _ in 0..20 {
                assert!(backoff(&c, attempt, None) <= Duration::from_millis(cap));
            }
        }
        let d = backoff(&c, 0, Some(Duration::from_secs(2)));
        assert!(
            d >= Duration::from_secs(2) && d <= Duration::from_millis(2_200),
            "{d:?}"
        );
    }
}

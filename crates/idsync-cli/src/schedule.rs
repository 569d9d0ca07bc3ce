//! When `idsync worker` runs a profile: `[schedule]` in the profile file,
//! every so long, at times of day, or on a cron expression.

use std::str::FromStr as _;
use std::time::Duration;

use serde::Deserialize;

/// `[schedule]`: exactly one of `every`, `at` and `cron` (none: every 30
/// minutes).
///
/// ```toml
/// [schedule]
/// every = "30m"                 # after each run; x2, x4, x8 after failures
/// # at = ["02:00", "14:30"]     # times of day
/// # cron = "0 */4 * * 1-5"      # minute hour day-of-month month day-of-week
/// # timezone = "Europe/Paris"   # for at and cron (default: the machine's)
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleConfig {
    /// Time between the end of a run and the next ("30m", "1h").
    pub every: Option<String>,
    /// Times of day ("HH:MM").
    #[serde(default)]
    pub at: Vec<String>,
    /// A cron expression (5 fields, or 6 with seconds first).
    pub cron: Option<String>,
    /// The IANA time zone of `at` and `cron` ("Europe/Paris").
    pub timezone: Option<String>,
}

/// A profile's schedule, checked.
#[derive(Clone, Debug)]
pub(crate) enum Schedule {
    /// Every so long after the last run.
    Every(Duration),
    /// At the times the crons name, in a time zone.
    Cron(Vec<croner::Cron>, jiff::tz::TimeZone),
}

/// The schedule of a profile without `[schedule]`.
const DEFAULT_EVERY: Duration = Duration::from_secs(30 * 60);

impl ScheduleConfig {
    /// Checks it (errors name the setting).
    pub(crate) fn check(&self) -> Result<(), String> {
        self.schedule().map(drop)
    }

    /// The schedule.
    pub(crate) fn schedule(&self) -> Result<Schedule, String> {
        let set = [self.every.is_some(), !self.at.is_empty(), self.cron.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err("schedule: give one of `every`, `at` and `cron`".into());
        }
        if let Some(every) = &self.every {
            if self.timezone.is_some() {
                return Err("schedule.timezone: only for `at` and `cron`".into());
            }
            let d = crate::duration::parse_duration("schedule.every", every)?;
            if d.is_zero() {
                return Err("schedule.every: must be more than 0s".into());
            }
            return Ok(Schedule::Every(d));
        }
        let tz = match &self.timezone {
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| format!("schedule.timezone: {name:?} is not a known time zone: {e}"))?,
            None => jiff::tz::TimeZone::system(),
        };
        let mut crons = Vec::new();
        for at in &self.at {
            let (h, m) = at
                .split_once(':')
                .and_then(|(h, m)| Some((h.parse::<u8>().ok()?, m.parse::<u8>().ok()?)))
                .filter(|(h, m)| *h < 24 && *m < 60)
                .ok_or_else(|| format!("schedule.at: {at:?} is not a time of day like \"02:30\""))?;
            crons.push(parse_cron("schedule.at", &format!("{m} {h} * * *"))?);
        }
        if let Some(cron) = &self.cron {
            crons.push(parse_cron("schedule.cron", cron)?);
        }
        if crons.is_empty() {
            return Ok(Schedule::Every(DEFAULT_EVERY));
        }
        Ok(Schedule::Cron(crons, tz))
    }
}

fn parse_cron(what: &str, text: &str) -> Result<croner::Cron, String> {
    croner::Cron::from_str(text).map_err(|e| format!("{what}: {text:?} is not a cron expression: {e}"))
}

impl Schedule {
    /// How long from `now` until the first run of a profile never run.
    pub(crate) fn first_in(&self, now: jiff::Timestamp) -> Duration {
        match self {
            Schedule::Every(_) => Duration::ZERO,
            Schedule::Cron(..) => self.next_in(now, 0),
        }
    }

    /// How long from `now` (a run just ended) until the next run, after
    /// `failures` failed runs in a row: `every` doubles per failure (up to
    /// x8) with ±10 % jitter, so that many profiles spread out; a cron's
    /// next time stays its next time.
    pub(crate) fn next_in(&self, now: jiff::Timestamp, failures: u32) -> Duration {
        match self {
            Schedule::Every(every) => {
                let factor = 1u32 << failures.min(3);
                every.saturating_mul(factor).mul_f64(0.9 + 0.2 * rand::random::<f64>())
            }
            Schedule::Cron(crons, tz) => {
                let zoned = now.to_zoned(tz.clone());
                crons
                    .iter()
                    .filter_map(|c| c.find_next_occurrence(&zoned, false).ok())
                    .map(|next| next.timestamp())
                    .min()
                    .and_then(|next| Duration::try_from(next.duration_since(now)).ok())
                    .unwrap_or(DEFAULT_EVERY)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn times_of_day_and_crons_give_the_next_time_in_their_zone() {
        let s = ScheduleConfig {
            at: vec!["02:00".into(), "14:30".into()],
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        }
        .schedule()
        .unwrap();
        // 12:00 UTC is 13:00 in Paris in January: next is 14:30 Paris = 13:30 UTC.
        let now = at("2026-01-10T12:00:00Z");
        assert_eq!(s.next_in(now, 0), Duration::from_secs(90 * 60));
        assert_eq!(s.first_in(now), Duration::from_secs(90 * 60));
        // After 14:30 Paris, 02:00 Paris tomorrow = 01:00 UTC.
        assert_eq!(s.next_in(at("2026-01-10T14:00:00Z"), 3), Duration::from_secs(11 * 3600));

        let s = ScheduleConfig {
            cron: Some("*/15 * * * *".into()),
            timezone: Some("UTC".into()),
            ..Default::default()
        }
        .schedule()
        .unwrap();
        assert_eq!(s.next_in(at("2026-01-10T12:07:00Z"), 0), Duration::from_secs(8 * 60));
    }

    #[test]
    fn every_backs_off_after_failures_and_runs_a_new_profile_at_once() {
        let s = ScheduleConfig {
            every: Some("10m".into()),
            ..Default::default()
        }
        .schedule()
        .unwrap();
        let now = at("2026-01-10T12:00:00Z");
        assert_eq!(s.first_in(now), Duration::ZERO);
        for (failures, base) in [(0, 600.0), (1, 1200.0), (2, 2400.0), (3, 4800.0), (9, 4800.0)] {
            let d = s.next_in(now, failures).as_secs_f64();
            assert!(d >= base * 0.9 && d <= base * 1.1, "{failures}: {d}");
        }
        let default = ScheduleConfig::default().schedule().unwrap();
        assert!(matches!(default, Schedule::Every(d) if d == DEFAULT_EVERY));
    }

    #[test]
    fn mistakes_name_the_setting() {
        let e = |c: ScheduleConfig| c.schedule().unwrap_err();
        assert_eq!(
            e(ScheduleConfig {
                every: Some("1h".into()),
                cron: Some("* * * * *".into()),
                ..Default::default()
            }),
            "schedule: give one of `every`, `at` and `cron`"
        );
        assert_eq!(
            e(ScheduleConfig {
                at: vec!["25:00".into()],
                ..Default::default()
            }),
            "schedule.at: \"25:00\" is not a time of day like \"02:30\""
        );
        assert!(
            e(ScheduleConfig {
                cron: Some("61 * * * *".into()),
                ..Default::default()
            })
            .starts_with("schedule.cron: \"61 * * * *\" is not a cron expression")
        );
        assert!(
            e(ScheduleConfig {
                at: vec!["02:00".into()],
                timezone: Some("Mars/Olympus".into()),
                ..Default::default()
            })
            .starts_with("schedule.timezone: \"Mars/Olympus\" is not a known time zone")
        );
    }
}

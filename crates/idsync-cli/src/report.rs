//! What the binary shows of a state database: every profile's status
//! (`status --state`), past runs, and one object's lasting history
//! (`history --object`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use idsync::sql::{ObjectEvent, ProfileStatus, RunRow, SqlStateStore};
use idsync::{ExternalId, ProfileId};
use serde_json::json;

use crate::Failure;
use crate::config;
use crate::output::Out;

/// Opens a state database named on the command line.
pub(crate) async fn open(url: &str) -> Result<SqlStateStore, Failure> {
    let url = config::state_url(url);
    SqlStateStore::connect(url.expose()).await.map_err(Failure::unavailable)
}

/// Unix milliseconds as RFC 3339 (to the nearest second, UTC).
pub(crate) fn time(unix_ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_ms.saturating_add(500) / 1000).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A run as JSON for monitoring.
fn run_json(r: &RunRow) -> serde_json::Value {
    json!({
        "started_at": time(r.started_unix_ms),
        "finished_at": time(r.finished_unix_ms),
        "duration_ms": r.finished_unix_ms - r.started_unix_ms,
        "worker": r.worker,
        "generation": r.generation,
        "outcome": r.outcome,
        "exit_code": r.exit_code,
        "applied": r.applied,
        "failed": r.failed,
        "held_deprovisions": r.held,
        "partial_read": r.partial,
        "error": r.error,
    })
}

/// A profile as JSON for monitoring.
fn profile_json(p: &ProfileStatus) -> serde_json::Value {
    let last = p.last_run.as_ref();
    json!({
        "profile": p.profile,
        "name": p.name,
        "source": p.source,
        "next_run": p.next_run_unix_ms.map(time),
        "running_on": p.running_on,
        "generation": p.generation,
        "failures_in_a_row": p.failures,
        "last_run": last.map(run_json),
        "last_error": last.and_then(|r| r.error.clone()),
        "held_deprovisions": last.map_or(0, |r| r.held),
        "partial_read": last.and_then(|r| r.partial.clone()),
    })
}

/// `status --state`: every profile of the store, one line each (with the
/// error, the held deprovisions and the partial read below when there
/// are), or `--json`.
pub(crate) async fn status(url: &str, as_json: bool) -> Result<u8, Failure> {
    let store = open(url).await?;
    let profiles = store.profiles().await.map_err(Failure::unavailable)?;
    if as_json {
        let all: Vec<serde_json::Value> = profiles.iter().map(profile_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "profiles": all })).unwrap_or_default()
        );
        return Ok(0);
    }
    let mut out = Out::new();
    out.line(&format!(
        "{:<28} {:<36}  {:<22} {:<20} {:<16} {:>7} {:>6} {:>4}",
        "NAME", "PROFILE", "NEXT RUN", "LAST RUN", "OUTCOME", "APPLIED", "FAILED", "HELD"
    ));
    for p in &profiles {
        let next = match (&p.running_on, p.next_run_unix_ms) {
            (Some(worker), _) => format!("running on {worker}"),
            (None, Some(t)) => time(t),
            (None, None) => "not scheduled".into(),
        };
        let last = p.last_run.as_ref();
        out.line(&format!(
            "{:<28} {:<36}  {:<22} {:<20} {:<16} {:>7} {:>6} {:>4}",
            p.name.as_deref().unwrap_or("?"),
            p.profile,
            next,
            last.map_or("never".into(), |r| time(r.started_unix_ms)),
            last.map_or("", |r| r.outcome.as_str()),
            last.map_or(0, |r| r.applied),
            last.map_or(0, |r| r.failed),
            last.map_or(0, |r| r.held),
        ));
        if let Some(r) = last {
            if r.held > 0 {
                out.line(&format!(
                    "    held: {} deprovision(s) beyond the threshold (review, then `sync --yes`)",
                    r.held
                ));
            }
            if let Some(reason) = &r.partial {
                out.line(&format!("    partial read: {reason} (deprovisions were spared)"));
            }
            if let Some(e) = &r.error {
                let streak = if p.failures > 1 {
                    format!(" ({} runs in a row failed)", p.failures)
                } else {
                    String::new()
                };
                out.line(&format!("    error: {e}{streak}"));
            }
        }
    }
    Ok(0)
}

/// `history [--object X]` on a state database: with `profile`, only its.
pub(crate) async fn history(
    url: &str,
    profile: Option<ProfileId>,
    object: Option<&str>,
    limit: usize,
) -> Result<u8, Failure> {
    let store = open(url).await?;
    show(&store, profile, object, limit).await
}

/// Past runs, or one object's history, from `store`.
pub(crate) async fn show(
    store: &SqlStateStore,
    profile: Option<ProfileId>,
    object: Option<&str>,
    limit: usize,
) -> Result<u8, Failure> {
    let mut out = Out::new();
    let Some(key) = object else {
        for r in store.runs(profile, limit).await.map_err(Failure::unavailable)? {
            out.line(&format!(
                "{}  {}  {:<16} {} applied, {} failed, {} held{}{}",
                time(r.started_unix_ms),
                r.profile,
                r.outcome,
                r.applied,
                r.failed,
                r.held,
                r.partial
                    .as_ref()
                    .map(|p| format!(", partial read: {p}"))
                    .unwrap_or_default(),
                r.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default(),
            ));
        }
        return Ok(0);
    };
    let events = store
        .object_history(profile, key, limit)
        .await
        .map_err(Failure::unavailable)?;
    let names = names(store, &events).await;
    let name = |profile: &str, id: &str| {
        names
            .get(&(profile.to_owned(), id.to_owned()))
            .map(|n| format!("{n} ({id})"))
            .unwrap_or_else(|| id.to_owned())
    };
    for e in &events {
        let detail = match (&e.other, e.event.as_str()) {
            (Some(other), "joined" | "left") => format!("group {}", name(&e.profile, other)),
            (Some(other), _) => format!("member {}", name(&e.profile, other)),
            (None, _) => e.detail.clone(),
        };
        let note = match (&e.other, e.detail.split_once(" (")) {
            (Some(_), Some((_, rest))) => format!(" ({rest}"),
            _ => String::new(),
        };
        out.line(&format!(
            "{}  {}  {:<13} {:<8} {:<5} {}  {detail}{note}",
            time(e.at_unix_ms),
            e.profile,
            e.event,
            e.status,
            e.kind,
            name(&e.profile, &e.external),
        ));
    }
    if events.is_empty() {
        out.line(&format!("no history for {key:?}"));
    }
    Ok(0)
}

/// The names of the objects the events name, by (profile, external id).
async fn names(store: &SqlStateStore, events: &[ObjectEvent]) -> BTreeMap<(String, String), String> {
    let mut by_profile: BTreeMap<&str, BTreeSet<ExternalId>> = BTreeMap::new();
    for e in events {
        let ids = by_profile.entry(&e.profile).or_default();
        ids.insert(ExternalId(e.external.clone()));
        if let Some(o) = &e.other {
            ids.insert(ExternalId(o.clone()));
        }
    }
    let mut out = BTreeMap::new();
    for (profile, ids) in by_profile {
        let Ok(id) = profile.parse() else { continue };
        match store.names_of(ProfileId(id), &ids).await {
            Ok(names) => out.extend(names.into_iter().map(|(e, n)| ((profile.to_owned(), e.0), n))),
            Err(e) => tracing::warn!(error = %e, "names could not be read"),
        }
    }
    out
}

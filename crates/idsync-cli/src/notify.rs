//! Tells admins when a run fails (seed 000): a webhook and/or a command,
//! each given a JSON summary. A run fails when it exits with code 3, 4, 5 or
//! 7 (see `EXIT_CODES`): the source, target or state unreachable, a bad
//! password, failed operations, a stop, or a partial read that spared
//! deprovisions. Notification failures are logged, never fatal.

use std::time::Duration;

use idsync::RunReport;
use tokio::io::AsyncWriteExt;

use crate::config::Config;

/// Sends the failure notice to every configured channel: what happened,
/// the exit code and, when the run got that far, its report's figures, why
/// its read was partial and the first read and operation errors.
pub(crate) async fn failure(config: &Config, what: &str, exit_code: u8, report: Option<&RunReport>) {
    let summary = serde_json::json!({
        "profile": config.profile.id,
        "name": config.profile.name,
        "what": what,
        "exit_code": exit_code,
        "started_at": report.map(|r| r.started_at.clone()),
        "failed": report.map(|r| r.failures().count()),
        "applied": report.map(|r| r.applied()),
        "partial_read": report.and_then(crate::partial_read),
        "read_errors": report.map(|r| r.read_errors.iter().take(20).collect::<Vec<_>>()),
        "errors": report.map(|r| r.failures().map(|o| format!("{:?}", o.status)).take(20).collect::<Vec<_>>()),
    });
    if let Some(url) = &config.notify.webhook {
        let sent = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map(|c| c.post(url.clone()).json(&summary).send());
        match sent {
            Ok(request) => match request.await {
                Ok(r) if r.status().is_success() => tracing::info!(status = %r.status(), "webhook notified"),
                Ok(r) => tracing::warn!(status = %r.status(), "the webhook refused the notice"),
                Err(e) => tracing::warn!(error = %e, "the webhook could not be reached"),
            },
            Err(e) => tracing::warn!(error = %e, "no HTTP client for the webhook"),
        }
    }
    if let Some(command) = &config.notify.command {
        let Some((program, args)) = command.split_first() else {
            return;
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .env("IDSYNC_PROFILE", config.profile.id.to_string())
            .spawn();
        match child {
            Ok(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(summary.to_string().as_bytes()).await;
                }
                match child.wait().await {
                    Ok(s) if s.success() => tracing::info!("notify command ran"),
                    Ok(s) => tracing::warn!(status = %s, "the notify command failed"),
                    Err(e) => tracing::warn!(error = %e, "the notify command failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, program = %program, "the notify command could not start"),
        }
    }
}

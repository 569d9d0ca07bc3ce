//! The README's "Running many profiles", as written: the worker on the
//! embedded SQLite default over `examples/profiles`, `status`, SIGTERM;
//! then the same commands after the one line that switches to PostgreSQL.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{ObjectKind, ProfileId, Target as _, TargetAccount};
use idsync_testkit::postgres::postgres;

mod common;
use common::Process;

/// The commands of the README's "Running many profiles", as written: a
/// `sh` block of `export NAME=value` and `cargo run -p idsync-cli -- …`
/// lines.
fn readme_blocks() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let section = readme.split("## Running many profiles").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().lines().map(str::to_owned).collect())
        .collect()
}

/// `cargo run -p idsync-cli -- ARGS` as the built binary, in `cwd`, with
/// `IDSYNC_STATE`.
fn readme_command(line: &str, cwd: &Path, state: &str) -> Command {
    let args = line
        .strip_prefix("cargo run -p idsync-cli -- ")
        .unwrap_or_else(|| panic!("not a cargo run line: {line}"));
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.args(args.split_whitespace())
        .current_dir(cwd)
        .env("IDSYNC_STATE", state);
    cmd
}

/// Runs the README's worker and status lines with `state`: the sales
/// profile runs, the support desk waits for its time of day, SIGTERM
/// ends the worker with code 0.
async fn readme_worker(commands: &[String], repo: &Path, state: &str) {
    let worker_line = commands.iter().find(|l| l.contains(" worker ")).unwrap();
    let status_line = commands.iter().find(|l| l.ends_with(" status")).unwrap();
    let log = repo.join("worker.log");
    let child = readme_command(worker_line, repo, state)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut worker = Process::new(child, Some(log));
    let mut text = String::new();
    let start = Instant::now();
    while !text
        .lines()
        .any(|l| l.starts_with("sales app") && l.contains("succeeded"))
    {
        if start.elapsed() > Duration::from_secs(30) {
            panic!("the sales profile did not run: {text}\n{}", worker.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let out = readme_command(status_line, repo, state).output().unwrap();
        text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let support = text.lines().find(|l| l.starts_with("support desk")).unwrap();
    assert!(support.contains(" never "), "{text}");
    assert!(
        support.contains(":00:00Z") || support.contains(":30:00Z"),
        "the support desk waits for 02:00 or 14:30: {text}"
    );
    worker.signal("-TERM");
    assert_eq!(worker.wait(Duration::from_secs(10)), Some(0), "{}", worker.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_runs_many_profiles_on_sqlite_then_postgres() {
    let blocks = readme_blocks();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let commands = &blocks[0];
    let state = commands[0]
        .strip_prefix("export IDSYNC_STATE=")
        .unwrap_or_else(|| panic!("{commands:?}"));
    assert_eq!(state, "sqlite://idsync-state.db");

    // A copy of the repository's examples.
    let repo = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (from, to) in [
        ("profiles/sales.toml", "examples/profiles/sales.toml"),
        ("profiles/support.toml", "examples/profiles/support.toml"),
        ("quickstart/directory.ldif", "examples/quickstart/directory.ldif"),
    ] {
        let to = repo.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(examples.join(from), to).unwrap();
    }
    readme_worker(commands, repo.path(), state).await;
    assert!(repo.path().join("idsync-state.db").is_file());
    let sales = repo.path().join("examples/profiles/sales-app.db");
    let target = SqlTarget::open(&format!("sqlite://{}", sales.display()), SqlTargetConfig::default())
        .await
        .unwrap();
    let profile = ProfileId("5a1e5a1e-0000-4000-8000-000000000001".parse().unwrap());
    let users: Vec<TargetAccount> = target.linked(profile).await.unwrap().try_collect().await.unwrap();
    let ldif = std::fs::read_to_string(examples.join("quickstart/directory.ldif")).unwrap();
    let sales_users = ldif
        .split("\n\n")
        .filter(|e| e.contains("\ndepartment: Sales\n"))
        .count();
    assert_eq!(
        users.iter().filter(|a| a.kind == ObjectKind::User).count(),
        sales_users,
        "every Sales user, and no one else"
    );

    // The one line that switches to PostgreSQL.
    let Some(pg) = postgres().await else {
        return;
    };
    let line = &blocks[1][0];
    let written = "export IDSYNC_STATE=postgres://idsync:${PG_PASSWORD}@db.acme.test/idsync";
    assert_eq!(line, written);
    readme_worker(commands, repo.path(), &pg.url()).await;
    let db = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idsync_runs WHERE outcome = 'succeeded'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(runs >= 1);
}

//! A throwaway PostgreSQL on loopback, one per test, in a temporary
//! directory.
//!
//! Follows the recipe of `TEST-SERVERS.md`: the server binaries come from
//! `/usr/lib/postgresql/<newest>/bin` (they are not on PATH on Debian),
//! `initdb` runs as the `postgres` user (it refuses root) with `-A trust
//! --no-sync`, and `pg_ctl` starts the server with a log file (`-l`, else it
//! keeps the caller's stdout open), its Unix socket in the short temporary
//! folder (`-k`) and `fsync=off`, on a free port of 127.0.0.1. A database
//! `idsync` is created. The server is stopped (`-m immediate`) and the
//! folder removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::gate::{StartError, gate};

/// The database created in every instance.
pub const DATABASE: &str = "idsync";

/// A running PostgreSQL on 127.0.0.1, stopped and removed on drop.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    running: bool,
}

/// Starts a PostgreSQL for a test, or `None` (the test skips) when it is
/// not installed and `IDSYNC_REQUIRE_SERVERS` is not `1`.
pub async fn postgres() -> Option<Postgres> {
    gate("postgresql", Postgres::start().await)
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `program args` as the `postgres` user, failing with its output.
async fn as_postgres(program: &Path, args: &[&str]) -> Result<(), StartError> {
    let program = program.to_string_lossy().into_owned();
    let mut all = vec!["-u", "postgres", "--", program.as_str()];
    all.extend_from_slice(args);
    crate::ldif_cli::run("runuser", &all, None)
        .await
        .map(drop)
        .map_err(|e| StartError(e.to_string()))
}

impl Postgres {
    /// Creates a cluster, starts it on a free port of 127.0.0.1 (retrying
    /// on a port collision) and creates the database [`DATABASE`].
    pub async fn start() -> Result<Postgres, StartError> {
        let bin = find_bin().ok_or_else(|| {
            StartError("postgresql is not installed (no /usr/lib/postgresql/*/bin; run `bash .ci/install`)".into())
        })?;
        let dir = tempfile::Builder::new().prefix("idsync-pg-").tempdir_in("/tmp")?;
        let d = dir.path().to_string_lossy().into_owned();
        let status = Command::new("chown")
            .args(["postgres:", &d])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(StartError(format!("cannot chown {d} to postgres (is this root?)")));
        }
        let data = format!("{d}/data");
        #[rustfmt::skip]
        as_postgres(&bin.join("initdb"), &[
            "-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        ]).await?;
        let mut server = Postgres {
            dir,
            bin,
            port: 0,
            running: false,
        };
        let mut last = StartError("postgresql not started".into());
        for _ in 0..5 {
            server.port = free_port()?;
            let opts = format!("-k {d} -h 127.0.0.1 -p {} -c fsync=off", server.port);
            let log = format!("{d}/pg.log");
            match as_postgres(
                &server.bin.join("pg_ctl"),
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            )
            .await
            {
                Ok(()) => {
                    server.running = true;
                    let psql = server.psql();
                    let port = server.port.to_string();
                    #[rustfmt::skip]
                    crate::ldif_cli::run(&psql, &[
                        "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "postgres", "-q",
                        "-c", &format!("create database {DATABASE}"),
                    ], None).await.map_err(|e| StartError(e.to_string()))?;
                    tracing::debug!(port = server.port, "postgresql is up");
                    return Ok(server);
                }
                Err(e) => {
                    let tail = std::fs::read(&log).unwrap_or_default();
                    last = StartError(format!("{e}; log: {}", crate::ldif_cli::tail(&tail, 800)));
                    tracing::debug!(port = server.port, "postgresql did not start, retrying: {last}");
                }
            }
        }
        Err(last)
    }

    fn psql(&self) -> String {
        let own = self.bin.join("psql");
        if own.is_file() {
            own.to_string_lossy().into_owned()
        } else {
            "psql".to_owned()
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/idsync` (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Stops the server now (immediate shutdown); drop does it otherwise.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-w", "stop", "-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

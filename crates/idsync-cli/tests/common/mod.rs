//! A process of the binary under test (a worker), for the tests that start
//! one, signal it and wait for it.
#![allow(dead_code, reason = "each test binary uses a part of it")]

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A child process, resumed and killed (by its id) if the test ends first.
pub(crate) struct Process {
    child: Option<Child>,
    /// Where its standard error goes, when a file.
    log: Option<PathBuf>,
}

impl Process {
    /// `child`, whose standard error goes to `log` when given.
    pub(crate) fn new(child: Child, log: Option<PathBuf>) -> Process {
        Process {
            child: Some(child),
            log,
        }
    }

    /// Its process id (0 once it has exited).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Sends `signal` (`-TERM`, `-STOP`, …) with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for it to exit (at most `limit`): its exit code.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(start.elapsed() < limit, "the process did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for it to end: its output.
    pub(crate) fn output(mut self) -> Output {
        self.child.take().unwrap().wait_with_output().unwrap()
    }

    /// What it wrote to its log so far.
    pub(crate) fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child
            && let Ok(None) = child.try_wait()
        {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

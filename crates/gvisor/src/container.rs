//! One started container and its directory, removed on every way out:
//! waiting with a timeout, killing, deleting, and reading runsc's own
//! failure from its log.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::bundle::Workspace;
use crate::discover::Runsc;
use crate::error::GvisorError;
use crate::options::RunOptions;
use crate::outcome::{RunOutcome, RUNSC_FAILURE};
use crate::parse;
use crate::wait::{output_with_timeout, wait_timeout};

/// How long `runsc kill` / `runsc delete` may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// One started container and its directory. Dropping it (on an error or a
/// panic) kills and deletes the container and removes the directory.
pub(crate) struct Container<'a> {
    pub(crate) runsc: &'a Runsc,
    pub(crate) ws: Workspace,
    pub(crate) id: String,
    pub(crate) child: Option<Child>,
    /// Whether dropping must still clean up.
    pub(crate) armed: bool,
}

impl Container<'_> {
    /// Waits for `runsc run`; at the timeout kills the container, then
    /// `runsc run` itself if it does not return within the grace period.
    pub(crate) fn wait(&mut self, opts: &RunOptions) -> Result<(ExitStatus, bool), GvisorError> {
        let spawn_err = |source| GvisorError::Spawn {
            path: self.runsc.path.clone(),
            command: "run".into(),
            source,
        };
        let Some(child) = self.child.as_mut() else {
            return Err(spawn_err(std::io::Error::other("no runsc process")));
        };
        let Some(timeout) = opts.timeout else {
            return child.wait().map(|s| (s, false)).map_err(spawn_err);
        };
        if let Some(status) = wait_timeout(child, timeout).map_err(spawn_err)? {
            return Ok((status, false));
        }
        self.control(&["kill", "--all", &self.id, "KILL"]);
        let Some(child) = self.child.as_mut() else {
            return Err(spawn_err(std::io::Error::other("no runsc process")));
        };
        if let Some(status) = wait_timeout(child, opts.kill_grace).map_err(spawn_err)? {
            return Ok((status, true));
        }
        let _ = child.kill();
        child.wait().map(|s| (s, true)).map_err(spawn_err)
    }

    /// Runs a `runsc --root R <args>` control command; failures are left
    /// for the state-root check to notice.
    fn control(&self, args: &[&str]) {
        let mut cmd = Command::new(&self.runsc.path);
        cmd.arg("--root")
            .arg(&self.ws.state_root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _ = output_with_timeout(cmd, CONTROL_TIMEOUT);
    }

    /// Makes sure no container is left: reaps `runsc run` (killing it if
    /// needed) and, if runsc still has state, `runsc delete --force`.
    pub(crate) fn stop(&mut self) -> Result<(), std::io::Error> {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                self.control(&["kill", "--all", &self.id, "KILL"]);
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if self.ws.has_state() {
            self.control(&["delete", "--force", &self.id]);
        }
        if self.ws.has_state() {
            return Err(std::io::Error::other(format!(
                "runsc delete --force {} left state behind",
                self.id
            )));
        }
        Ok(())
    }

    /// Removes the directory and turns the run into its result.
    pub(crate) fn finish(
        mut self,
        stopped: Result<(), std::io::Error>,
        outcome: RunOutcome,
    ) -> Result<RunOutcome, GvisorError> {
        let log = self.ws.read_log();
        let removed = self.ws.remove();
        // Everything is done here; the drop has nothing left to do.
        self.armed = false;
        let cleanup = |path, source| GvisorError::Cleanup {
            id: outcome.container_id.clone(),
            path,
            source,
            outcome: Box::new(outcome.clone()),
        };
        if let Err(source) = stopped {
            return Err(cleanup(PathBuf::from(&outcome.container_id), source));
        }
        if let Err((path, source)) = removed {
            return Err(cleanup(path, source));
        }
        if outcome.exit_code == RUNSC_FAILURE && outcome.signal.is_none() {
            if let Some(message) = parse::runsc_log_error(&log) {
                return Err(GvisorError::RunscFailed {
                    id: outcome.container_id,
                    code: RUNSC_FAILURE,
                    message,
                });
            }
        }
        Ok(outcome)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.stop();
            let _ = self.ws.remove();
        }
    }
}

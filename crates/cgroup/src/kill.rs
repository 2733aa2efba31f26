//! Total kill: every process in the sandbox's cgroup dies, including ones
//! that double-forked or started a new session (cgroup membership is
//! inherited and cannot be left without write access to another cgroup).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::error::CgroupError;
use crate::fs;
use crate::sys;

/// How long [`Cgroup::kill_all`] keeps trying before giving up.
#[cfg(not(test))]
const KILL_DEADLINE: Duration = Duration::from_secs(5);
/// Shorter in unit tests, where fake survivors never die.
#[cfg(test)]
const KILL_DEADLINE: Duration = Duration::from_millis(300);
/// How long to wait for a freeze to settle before killing anyway.
const FREEZE_WAIT: Duration = Duration::from_millis(100);

impl Cgroup {
    /// Kills every process in the sandbox and waits until the cgroup is
    /// empty. Parent: on timeout, on memory kill, when the workload exits
    /// (to end what it left behind), and from [`remove`](Self::remove) and
    /// `Drop`.
    ///
    /// v2 with `cgroup.kill` (5.14+): one write, the kernel kills every task
    /// and any task forked meanwhile. Otherwise: freeze (v1 `freezer.state`
    /// or v2 `cgroup.freeze`) so nothing can fork, SIGKILL every pid listed
    /// in `cgroup.procs`, thaw so the signals are delivered, and repeat until
    /// empty. Without a freezer the SIGKILL pass repeats until empty. Zombies
    /// (exited, not yet reaped) are not members, so this returns before the
    /// caller reaps its child.
    ///
    /// Refuses to kill if the calling process itself is listed.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        if self.dirs().next().is_none() {
            return Ok(());
        }
        let start = Instant::now();
        if self.is_empty()? {
            return Ok(());
        }
        if let Some(v2) = &self.v2 {
            let kill = v2.path.join("cgroup.kill");
            if fs::write_raw(&kill, "1", self.mode).is_ok()
                && self.wait_empty(start + Duration::from_secs(1))?
            {
                return Ok(());
            }
        }
        loop {
            let frozen = self.freeze();
            let result = self.signal_all();
            self.thaw(frozen);
            result?;
            if self.wait_empty(Instant::now() + Duration::from_millis(100))? {
                return Ok(());
            }
            if start.elapsed() > KILL_DEADLINE {
                return Err(self.kill_timeout(start));
            }
        }
    }

    fn kill_timeout(&self, start: Instant) -> CgroupError {
        let (path, remaining) = self
            .dirs()
            .map(|d| {
                (
                    d.path.clone(),
                    fs::read_pids(&d.path.join("cgroup.procs"))
                        .map(|p| p.len())
                        .unwrap_or(0),
                )
            })
            .max_by_key(|(_, n)| *n)
            .unwrap_or_default();
        CgroupError::KillTimeout {
            path,
            remaining,
            waited_ms: start.elapsed().as_millis() as u64,
        }
    }

    /// Every pid of every directory, deduplicated.
    fn members(&self) -> Result<Vec<(i32, &Path)>, CgroupError> {
        let mut pids: Vec<(i32, &Path)> = Vec::new();
        for dir in self.dirs() {
            for pid in fs::read_pids(&dir.path.join("cgroup.procs"))? {
                if !pids.iter().any(|(p, _)| *p == pid) {
                    pids.push((pid, dir.path.as_path()));
                }
            }
        }
        Ok(pids)
    }

    fn is_empty(&self) -> Result<bool, CgroupError> {
        for dir in self.dirs() {
            if !fs::read_pids(&dir.path.join("cgroup.procs"))?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Polls until empty or `deadline`; true when empty.
    fn wait_empty(&self, deadline: Instant) -> Result<bool, CgroupError> {
        let mut pause = Duration::from_micros(200);
        loop {
            if self.is_empty()? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// SIGKILL every member; ESRCH (already gone) is fine.
    fn signal_all(&self) -> Result<(), CgroupError> {
        let members = self.members()?;
        let me = std::process::id() as i32;
        if let Some((_, path)) = members.iter().find(|(p, _)| *p == me) {
            return Err(CgroupError::SelfInCgroup {
                pid: me,
                path: path.to_path_buf(),
            });
        }
        for (pid, path) in members {
            match sys::sigkill(pid) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(source) => {
                    return Err(CgroupError::Kill {
                        pid,
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Freezes the sandbox if a freezer exists; returns what to thaw.
    fn freeze(&self) -> Option<Freezer<'_>> {
        let freezer = if let Some(d) = self.v1.iter().find(|d| d.controllers.contains(&"freezer")) {
            Freezer::V1(&d.path)
        } else if let Some(d) = self
            .v2
            .as_ref()
            .filter(|d| d.path.join("cgroup.freeze").exists())
        {
            Freezer::V2(&d.path)
        } else {
            return None;
        };
        let (file, value) = freezer.freeze_write();
        fs::write_raw(&freezer.dir().join(file), value, self.mode).ok()?;
        let deadline = Instant::now() + FREEZE_WAIT;
        while !freezer.is_frozen() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
        Some(freezer)
    }

    fn thaw(&self, freezer: Option<Freezer<'_>>) {
        if let Some(f) = freezer {
            let (file, value) = f.thaw_write();
            // If thawing fails the killed tasks stay frozen and the next
            // round (or the deadline) reports it; nothing better to do here.
            let _ = fs::write_raw(&f.dir().join(file), value, self.mode);
        }
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Freezer<'_> {
    fn dir(&self) -> &Path {
        match self {
            Freezer::V1(p) | Freezer::V2(p) => p,
        }
    }

    fn freeze_write(&self) -> (&'static str, &'static str) {
        match self {
            Freezer::V1(_) => ("freezer.state", "FROZEN"),
            Freezer::V2(_) => ("cgroup.freeze", "1"),
        }
    }

    fn thaw_write(&self) -> (&'static str, &'static str) {
        match self {
            Freezer::V1(_) => ("freezer.state", "THAWED"),
            Freezer::V2(_) => ("cgroup.freeze", "0"),
        }
    }

    fn is_frozen(&self) -> bool {
        match self {
            Freezer::V1(p) => {
                fs::read_opt(&p.join("freezer.state")).is_some_and(|s| s.trim() == "FROZEN")
            }
            Freezer::V2(p) => {
                fs::read_opt(&p.join("cgroup.events")).and_then(|s| fs::keyed(&s, "frozen"))
                    == Some(1)
            }
        }
    }
}

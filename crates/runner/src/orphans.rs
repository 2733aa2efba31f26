//! What a sandbox without a PID namespace leaves behind.
//!
//! With a PID namespace, the init's death ends every process of the
//! sandbox. Without one (`--ns default,-pid`), a workload's `setsid sleep &`
//! would outlive the run: the init is a subreaper, but when it exits its
//! children go to the next subreaper up, else to the host's init. So the
//! runner becomes that next subreaper for the run, and when the init is
//! gone it kills and reaps every child it did not have before — repeatedly,
//! since a killed process's own children come to it next.

use std::collections::BTreeSet;

/// The runner as the subreaper of one run; restores the previous setting
/// when dropped.
pub(crate) struct Subreaper {
    /// Children the runner had before: never touched.
    before: BTreeSet<libc::pid_t>,
    was_subreaper: bool,
}

impl Subreaper {
    /// Makes the runner a subreaper, noting its present children.
    pub(crate) fn arm() -> std::io::Result<Subreaper> {
        let was_subreaper = crate::sys::is_child_subreaper()?;
        crate::sys::set_child_subreaper().map_err(std::io::Error::from_raw_os_error)?;
        Ok(Subreaper {
            before: children(),
            was_subreaper,
        })
    }

    /// Kills and reaps every child the run left; returns how many.
    ///
    /// They are the runner's unreaped children, so their pids cannot be
    /// reused before the `waitpid` below: signalling by pid is exact.
    pub(crate) fn kill_orphans(&self) -> usize {
        let mut killed = 0;
        loop {
            let left: Vec<_> = children().difference(&self.before).copied().collect();
            if left.is_empty() {
                return killed;
            }
            for &pid in &left {
                crate::sys::kill(pid, libc::SIGKILL);
            }
            for &pid in &left {
                crate::sys::wait_pid(pid);
            }
            killed += left.len();
        }
    }
}

impl Drop for Subreaper {
    /// Also on an early error: nothing of the run is left.
    fn drop(&mut self) {
        self.kill_orphans();
        if !self.was_subreaper {
            let _ = crate::sys::clear_child_subreaper();
        }
    }
}

/// The runner's present children: from `/proc/self/task/*/children`, or,
/// on a kernel without that file, from every process's parent pid.
fn children() -> BTreeSet<libc::pid_t> {
    let mut found = BTreeSet::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return found;
    };
    let mut listed = false;
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            listed = true;
            found.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    }
    if !listed {
        found = children_by_scan();
    }
    found
}

fn children_by_scan() -> BTreeSet<libc::pid_t> {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// The parent pid, the fourth field of `/proc/PID/stat` (after the command
/// name, which may hold spaces and parentheses).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_own_children_both_ways() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        assert!(children().contains(&pid));
        assert!(children_by_scan().contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!children().contains(&pid));
    }
}

//! One sandbox's cgroup: put processes in, read usage, remove. Creating it
//! is in `create.rs`, killing everything inside in `kill.rs`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::applied::AppliedLimits;
use crate::error::CgroupError;
use crate::fs::{self, FsMode};
use crate::usage::Usage;

/// A cgroup directory this crate created.
#[derive(Debug)]
pub(crate) struct Dir {
    pub path: PathBuf,
    /// Controllers served by this directory (v1), or enabled for it (v2).
    pub controllers: Vec<&'static str>,
}

/// One sandbox's cgroup(s): on v2 a single directory, on v1 one directory
/// per controller hierarchy, on a hybrid machine both (v1 for limits, the v2
/// one to kill and clone into). Only directories this value created are
/// ever written, killed or removed.
///
/// Dropping it kills every process inside and removes the directories, so an
/// error path in the runner leaves nothing behind.
///
/// ```no_run
/// use nucleus_cgroup::{Cgroup, CgroupConfig, Limits};
/// let limits = Limits { memory: Some(512 << 20), pids: Some(256), ..Limits::default() };
/// let cg = Cgroup::create(&limits, &CgroupConfig::default())?;   // parent, before clone
/// let (pid, cloned_into) = (1234, false); // from fork, or clone3(CLONE_INTO_CGROUP, cg.clone_into_fd())
/// if !(cloned_into && cg.clone_into_covers_all()) {
///     cg.attach(pid)?;                                        // parent, before releasing the child
/// }
/// // ... wait, or on timeout: cg.kill_all()?
/// let usage = cg.usage();
/// cg.remove()?;
/// # Ok::<(), nucleus_cgroup::CgroupError>(())
/// ```
#[derive(Debug)]
pub struct Cgroup {
    pub(crate) v2: Option<Dir>,
    pub(crate) v2_fd: Option<File>,
    pub(crate) v1: Vec<Dir>,
    pub(crate) applied: AppliedLimits,
    pub(crate) mode: FsMode,
    pub(crate) removed: bool,
    /// The process that created it: a forked or cloned child holding a copy
    /// must never kill or remove the sandbox from its `Drop`.
    pub(crate) owner: u32,
    /// Parent directories created for a named cgroup, innermost first;
    /// removed after the cgroup when nothing else is in them.
    pub(crate) parents: Vec<PathBuf>,
}

impl Cgroup {
    /// An `O_DIRECTORY` fd of the v2 cgroup, for `clone3` with
    /// `CLONE_INTO_CGROUP` so the child starts inside (no window in which it
    /// runs outside). `None` when there is no v2 cgroup. The fd is
    /// close-on-exec and owned by `self`.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2_fd.as_ref().map(AsFd::as_fd)
    }

    /// Whether a process started with `CLONE_INTO_CGROUP` on
    /// [`clone_into_fd`](Self::clone_into_fd) is already in every directory
    /// of this cgroup: true when the cgroup is a v2 directory alone. False
    /// when it also has v1 directories (the flag reaches only the v2
    /// hierarchy, so on a hybrid machine the process still needs
    /// [`attach`](Self::attach)), and when there is no v2 directory to clone
    /// into. A process started any other way always needs `attach`.
    ///
    /// ```no_run
    /// use nucleus_cgroup::{Cgroup, CgroupConfig, Limits};
    /// let cg = Cgroup::create(&Limits { pids: Some(64), ..Limits::default() }, &CgroupConfig::default())?;
    /// let into = cg.clone_into_fd(); // pass to clone3 with CLONE_INTO_CGROUP when Some
    /// let pid = 1234; // the child, blocked until it is released
    /// if !(into.is_some() && cg.clone_into_covers_all()) {
    ///     cg.attach(pid)?;
    /// }
    /// # Ok::<(), nucleus_cgroup::CgroupError>(())
    /// ```
    pub fn clone_into_covers_all(&self) -> bool {
        self.v2_fd.is_some() && self.v1.is_empty()
    }

    /// Moves `pid` into every directory of this cgroup (`cgroup.procs`).
    /// Parent, right after clone and before releasing the child, so the
    /// workload never runs outside. Idempotent.
    ///
    /// On v1, memory the child touched before the move stays charged to the
    /// old cgroup; what it allocates afterwards (everything after `execve`)
    /// is charged here.
    pub fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.dirs() {
            let path = dir.path.join("cgroup.procs");
            if pid <= 0 {
                return Err(CgroupError::Attach {
                    pid,
                    path,
                    source: io::Error::from_raw_os_error(libc::ESRCH),
                });
            }
            fs::write_raw(&path, &value, self.mode).map_err(|source| CgroupError::Attach {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Which limits were applied, which not and why, and how kill works.
    pub fn applied(&self) -> &AppliedLimits {
        &self.applied
    }

    /// The directories this value created (for logs and tests).
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs().map(|d| d.path.as_path()).collect()
    }

    pub(crate) fn dirs(&self) -> impl Iterator<Item = &Dir> {
        self.v2.iter().chain(self.v1.iter())
    }

    /// Reads usage: peak memory, OOM kills, CPU time, pids and limit hits.
    /// Call after the workload ends and before [`remove`](Self::remove).
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        let v1 = |c: &str| {
            self.v1
                .iter()
                .find(|d| d.controllers.contains(&c))
                .map(|d| d.path.as_path())
        };
        let v2 = |c: &str| {
            self.v2
                .iter()
                .find(|d| d.controllers.contains(&c))
                .map(|d| d.path.as_path())
        };
        if let Some(d) = v1("memory") {
            u.read_v1_memory(d);
        } else if let Some(d) = v2("memory") {
            u.read_v2_memory(d);
        }
        if let Some(d) = v1("cpu") {
            u.read_v1_cpu(d);
        }
        if let Some(d) = v1("cpuacct") {
            u.read_v1_cpuacct(d);
        } else if let Some(d) = &self.v2 {
            u.read_v2_cpu(&d.path);
        }
        if let Some(d) = v1("pids").or_else(|| v2("pids")) {
            u.read_pids(d);
        }
        u.finish();
        u
    }

    /// Kills every process inside ([`kill_all`](Self::kill_all)), then
    /// removes every directory created, retrying briefly while the kernel
    /// still reports it busy. Parent, after the workload ended and usage
    /// was read.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_inner()
    }

    pub(crate) fn remove_inner(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        let killed = self.kill_all();
        self.v2_fd = None;
        let mut first_err = killed.err();
        for dir in self.v1.iter().chain(self.v2.iter()) {
            if let Err(e) = rmdir_retry(&dir.path, self.mode) {
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_none() {
            // Shared parents (another container's sibling) stay.
            for parent in &self.parents {
                let _ = fs::rmdir(parent, self.mode);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => {
                self.removed = true;
                Ok(())
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if std::process::id() != self.owner {
            return;
        }
        let _ = self.remove_inner();
    }
}

/// `rmdir`, retrying on EBUSY for up to a second (the kernel may still be
/// tearing down exited tasks). A directory already gone is fine.
fn rmdir_retry(path: &Path, mode: FsMode) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_millis(1);
    loop {
        match fs::rmdir(path, mode) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

//! A bundle written for a `runsc` that the caller starts itself, inside an
//! envelope of its own (user, mount and PID namespaces, a cgroup): the
//! crate writes the bundle and the command line, the caller runs it, then
//! hands back the exit status for the verdict and the clean-up.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::bundle::{container_id, Workspace};
use crate::discover::Runsc;
use crate::error::GvisorError;
use crate::options::RunOptions;
use crate::outcome::{SeccompStatus, RUNSC_FAILURE};
use crate::parse;
use crate::platform::Platform;
use crate::spec::BundleSpec;
use nucleus_rootfs::MountSpec;

/// The empty file bound over masked files, in the bundle directory.
const MASK_FILE: &str = "masked-file";

/// A written bundle and the `runsc run` command line that runs it.
/// Dropping it removes the per-run directory.
///
/// ```no_run
/// use nucleus_gvisor::{BundleSpec, RunOptions, Runsc};
/// let runsc = Runsc::discover(None)?;
/// let mut opts = RunOptions::new(runsc.choose_platform(None)?);
/// opts.ignore_cgroups = true;
/// let run = runsc.prepare(&BundleSpec::new(["/bin/true"]), &opts)?;
/// let status = std::process::Command::new(&run.argv()[0]).args(&run.argv()[1..]).status()?;
/// let failure = run.finish(status.code().unwrap_or(128), None)?;
/// assert!(failure.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PreparedRun {
    ws: Workspace,
    id: String,
    platform: Platform,
    seccomp: SeccompStatus,
    argv: Vec<OsString>,
    /// Where `run` is in `argv`: runsc's global flags come before it.
    run_at: usize,
    armed: bool,
}

/// Why `runsc` itself failed (its exit code 128 and its log's last error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunscFailure {
    /// runsc's own error message.
    pub message: String,
    /// The command was not found on the sandbox's `PATH`.
    pub not_found: bool,
}

impl Runsc {
    /// Writes the bundle for `spec` into a fresh private directory below
    /// `opts.work_dir` and returns the `runsc run` command line, without
    /// running it. A bind whose source is a relative path is taken relative
    /// to the run directory ([`PreparedRun::dir`]): the caller attaches
    /// something there itself before runsc starts (a tree it opened with
    /// its own rights). The caller starts it (for instance inside a user
    /// namespace where `runsc` has no host privilege), waits, and calls
    /// [`PreparedRun::finish`].
    pub fn prepare(
        &self,
        spec: &BundleSpec,
        opts: &RunOptions,
    ) -> Result<PreparedRun, GvisorError> {
        let parent = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let id = container_id();
        let ws = Workspace::create(&parent, &id)?;
        let mut run = PreparedRun {
            ws,
            id: id.clone(),
            platform: opts.platform,
            seccomp: SeccompStatus::NotRequested,
            argv: Vec::new(),
            run_at: 0,
            armed: true,
        };
        let empty = run.ws.bundle.join(MASK_FILE);
        write_empty(&empty).map_err(|source| GvisorError::WriteBundle {
            path: empty.clone(),
            source,
        })?;

        let spec = in_run_dir(spec, &run.ws.base);
        let plan = self.plan_for(&spec, opts, id, Some(empty))?;
        run.ws.write(&plan.config, plan.host.as_ref())?;
        run.platform = plan.platform;
        run.seccomp = plan.seccomp;
        run.argv = std::iter::once(self.path.clone().into_os_string())
            .chain(self.run_args(&plan, &run.ws, opts))
            .collect();
        run.run_at = run.argv.len() - 4;
        Ok(run)
    }
}

/// `spec` with relative bind sources made absolute below `dir`.
fn in_run_dir<'s>(spec: &'s BundleSpec, dir: &Path) -> std::borrow::Cow<'s, BundleSpec> {
    let relative = |m: &MountSpec| m.source.as_ref().is_some_and(|s| s.is_relative());
    if !spec.mounts.iter().any(relative) {
        return std::borrow::Cow::Borrowed(spec);
    }
    let mut owned = spec.clone();
    for m in &mut owned.mounts {
        if let Some(src) = m.source.as_mut().filter(|s| s.is_relative()) {
            *src = dir.join(&*src);
        }
    }
    std::borrow::Cow::Owned(owned)
}

fn write_empty(path: &Path) -> io::Result<()> {
    fs::write(path, b"")?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444))
}

impl PreparedRun {
    /// The whole command line, `runsc` first.
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The platform runsc will use.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// Whether the bundle's seccomp profile is enforced.
    pub fn seccomp(&self) -> SeccompStatus {
        self.seccomp
    }

    /// `runsc kill ID SIGNAL` for this container, `runsc` first: to be run
    /// where `runsc run` runs (its PID and network namespaces), to signal
    /// the workload itself (runsc run 20221219 forwards no signal, and
    /// the sentry raises no `SIGPIPE`). `signal` is a name or a number.
    pub fn kill_argv(&self, signal: &str) -> Vec<OsString> {
        vec![
            self.argv[0].clone(),
            "--root".into(),
            self.ws.state_root.clone().into(),
            "kill".into(),
            self.id.clone().into(),
            signal.into(),
        ]
    }

    /// `runsc run --detach` of this bundle, `runsc` first: it returns once
    /// the container runs, which then lives on without it (a container
    /// that later commands join with [`PreparedRun::exec_argv`]).
    ///
    /// ```no_run
    /// # let runsc = nucleus_gvisor::Runsc::discover(None)?;
    /// # let opts = nucleus_gvisor::RunOptions::new(runsc.choose_platform(None)?);
    /// let run = runsc.prepare(&nucleus_gvisor::BundleSpec::new(["/bin/sleep", "60"]), &opts)?;
    /// let started = std::process::Command::new(&run.argv()[0])
    ///     .args(&run.detached_argv()[1..])
    ///     .status()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn detached_argv(&self) -> Vec<OsString> {
        let mut argv = self.argv.clone();
        argv.insert(self.run_at + 1, "--detach".into());
        argv
    }

    /// `runsc exec FLAGS ID COMMAND…` in this container, `runsc` first, with
    /// the global flags of its `run` (state root, platform) but its own
    /// `log`: one per exec, so that runsc's error is that exec's. `flags`
    /// are `exec`'s own (`--process`, `--internal-pid-file`, …).
    ///
    /// ```no_run
    /// # let runsc = nucleus_gvisor::Runsc::discover(None)?;
    /// # let opts = nucleus_gvisor::RunOptions::new(runsc.choose_platform(None)?);
    /// # let run = runsc.prepare(&nucleus_gvisor::BundleSpec::new(["/bin/sleep", "60"]), &opts)?;
    /// let log = run.dir().join("exec-1.log");
    /// let argv = run.exec_argv(&log, &["--cwd".into(), "/tmp".into()], &["/bin/ls".into()]);
    /// assert_eq!(argv.last().unwrap(), "/bin/ls");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exec_argv(&self, log: &Path, flags: &[OsString], command: &[OsString]) -> Vec<OsString> {
        let mut argv = self.argv[..self.run_at].to_vec();
        if let Some(at) = argv.iter().position(|a| a == "--log") {
            argv[at + 1] = log.into();
        }
        argv.push("exec".into());
        argv.extend_from_slice(flags);
        argv.push(self.id.clone().into());
        argv.extend_from_slice(command);
        argv
    }

    /// `runsc kill --pid PID ID SIGNAL`, `runsc` first: signals one process
    /// of the container (its thread group only), `pid` as the sandbox sees it.
    ///
    /// ```no_run
    /// # let runsc = nucleus_gvisor::Runsc::discover(None)?;
    /// # let opts = nucleus_gvisor::RunOptions::new(runsc.choose_platform(None)?);
    /// # let run = runsc.prepare(&nucleus_gvisor::BundleSpec::new(["/bin/sleep", "60"]), &opts)?;
    /// let argv = run.kill_pid_argv(7, "TERM");
    /// assert_eq!(argv.last().unwrap(), "TERM");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_pid_argv(&self, pid: u32, signal: &str) -> Vec<OsString> {
        let mut argv = self.kill_argv(signal);
        argv.splice(4..4, ["--pid".into(), pid.to_string().into()]);
        argv
    }

    /// The last error runsc wrote to its log, if any (why a `runsc` of
    /// this bundle failed).
    ///
    /// ```no_run
    /// # let runsc = nucleus_gvisor::Runsc::discover(None)?;
    /// # let opts = nucleus_gvisor::RunOptions::new(runsc.choose_platform(None)?);
    /// # let run = runsc.prepare(&nucleus_gvisor::BundleSpec::new(["/bin/sleep", "60"]), &opts)?;
    /// if let Some(error) = run.log_error() {
    ///     eprintln!("runsc: {error}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn log_error(&self) -> Option<String> {
        parse::runsc_log_error(&self.ws.read_log())
    }

    /// The per-run directory (bundle, state root, log).
    pub fn dir(&self) -> &Path {
        &self.ws.base
    }

    /// Hands the per-run directory to `uid:gid`: the host ids `runsc` runs
    /// as when it is started in a user namespace.
    pub fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        chown_tree(&self.ws.base, uid, gid)
    }

    /// After `runsc run` ended with `exit_code` (and `signal`, when it was
    /// killed): reads runsc's own failure from its log when the code is
    /// runsc's (128), and removes the per-run directory. Every runsc
    /// process must be gone (the caller's PID namespace ended).
    pub fn finish(
        mut self,
        exit_code: i32,
        signal: Option<i32>,
    ) -> Result<Option<RunscFailure>, GvisorError> {
        let failure = failure_in_log(&self.ws.log, exit_code, signal);
        self.armed = false;
        self.ws
            .remove()
            .map_err(|(path, source)| GvisorError::RemoveWorkspace { path, source })?;
        Ok(failure)
    }
}

impl Drop for PreparedRun {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.ws.remove();
        }
    }
}

/// Why a `runsc` that logged to `log` failed, when its exit (`exit_code`,
/// `signal`) is runsc's own failure (128, no signal): its log's last error.
///
/// ```no_run
/// let log = std::path::Path::new("/run/nucleus/gvisor/nucleus-1-0-abc/exec-7.log");
/// if let Some(failure) = nucleus_gvisor::failure_in_log(log, 128, None) {
///     eprintln!("runsc: {}", failure.message);
/// }
/// ```
pub fn failure_in_log(log: &Path, exit_code: i32, signal: Option<i32>) -> Option<RunscFailure> {
    (exit_code == RUNSC_FAILURE && signal.is_none())
        .then(|| parse::runsc_log_error(&crate::bundle::read_log(log)))
        .flatten()
        .map(|message| RunscFailure {
            not_found: message.contains("error finding executable"),
            message,
        })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Removes the per-run directories below `parent` whose runner process is
/// gone (killed before it could clean up), runsc's state root inside them
/// included, and returns them. A directory is named `nucleus-<pid>-...`
/// after the process that made it; one whose process still runs is left
/// alone. A pid taken by a process that started after the directory last
/// changed is a reused one: its runner is gone.
///
/// ```no_run
/// for dir in nucleus_gvisor::sweep_stale(std::path::Path::new("/run/nucleus/gvisor")) {
///     eprintln!("removed {} left by a killed run", dir.display());
/// }
/// ```
pub fn sweep_stale(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        let path = entry.path();
        if pid == std::process::id() || !owner_gone(pid, &path, REUSE_MARGIN) {
            continue;
        }
        if fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// How much later than a directory's last change its owner pid's process
/// must have started to count as another process: covers the 10 ms
/// granularity of start times and uptime, and a small step of the clock.
const REUSE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the process that made `path` and named it after `pid` is gone:
/// no process has that pid, or the one that has started more than `margin`
/// after `path` last changed (the pid was reused). When unsure: not gone.
fn owner_gone(pid: u32, path: &Path, margin: std::time::Duration) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let changed = fs::metadata(path).and_then(|m| m.modified());
    match (started(&stat), changed) {
        (Some(started), Ok(changed)) => started > changed + margin,
        _ => false,
    }
}

/// When the process of `/proc/PID/stat` started, on the wall clock: its
/// start (field 22, clock ticks after boot) against `/proc/uptime`.
fn started(stat: &str) -> Option<std::time::SystemTime> {
    let ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = crate::sys::clock_ticks()? as f64;
    let age = std::time::Duration::try_from_secs_f64((uptime - ticks / hz).max(0.0)).ok()?;
    std::time::SystemTime::now().checked_sub(age)
}

/// The pid in `nucleus-<pid>-<n>-<nanos>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nucleus-")?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_exec_and_kill_lines_keep_the_run_s_global_flags() {
        let runsc = Runsc {
            path: "/usr/bin/runsc".into(),
            version: "test".into(),
            platforms: vec![Platform::Ptrace],
            default_platform: Some(Platform::Ptrace),
            features: Default::default(),
        };
        let parent = std::env::temp_dir().join(format!("nucleus-argv-test-{}", std::process::id()));
        fs::create_dir_all(&parent).unwrap();
        let mut opts = RunOptions::new(Platform::Ptrace);
        opts.work_dir = Some(parent.clone());
        let mut spec = BundleSpec::new(["/bin/true"]);
        spec.root = crate::RootSpec::Directory(parent.clone());
        let run = runsc.prepare(&spec, &opts).unwrap();
        let text = |argv: Vec<OsString>| {
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let run_argv = text(run.argv().to_vec());
        let at = run_argv.iter().position(|a| a == "run").unwrap();
        let detached = text(run.detached_argv());
        assert_eq!(detached[..=at], run_argv[..=at]);
        assert_eq!(detached[at + 1], "--detach");
        assert_eq!(detached[at + 2..], run_argv[at + 1..]);
        let log = parent.join("exec.log");
        let exec = text(run.exec_argv(&log, &["--cwd".into(), "/tmp".into()], &["ls".into()]));
        let log_at = run_argv.iter().position(|a| a == "--log").unwrap() + 1;
        assert_eq!(exec[..log_at], run_argv[..log_at]);
        assert_eq!(exec[log_at], log.display().to_string());
        assert_eq!(exec[log_at + 1..at], run_argv[log_at + 1..at]);
        assert_eq!(exec[at..], ["exec", "--cwd", "/tmp", run.id(), "ls"]);
        let kill = text(run.kill_pid_argv(7, "TERM"));
        assert_eq!(kill[3..], ["kill", "--pid", "7", run.id(), "TERM"]);
        drop(run);
        fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn owner_pid_from_names() {
        assert_eq!(owner_pid("nucleus-123-0-abc"), Some(123));
        assert_eq!(owner_pid("nucleus-x-0"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        use std::time::Duration;
        let dir = std::env::temp_dir().join(format!("nucleus-owner-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(!owner_gone(
            std::process::id(),
            &dir,
            Duration::from_millis(50)
        ));
        assert!(owner_gone(4_194_305, &dir, Duration::ZERO));
        std::thread::sleep(Duration::from_millis(100));
        let mut later = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(owner_gone(later.id(), &dir, Duration::from_millis(40)));
        assert!(!owner_gone(later.id(), &dir, Duration::from_secs(5)));
        later.kill().unwrap();
        later.wait().unwrap();
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn sweep_removes_only_dead_owners() {
        let parent =
            std::env::temp_dir().join(format!("nucleus-sweep-test-{}", std::process::id()));
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = parent.join("nucleus-4194305-0-1");
        let alive = parent.join(format!("nucleus-{}-0-1", std::process::id()));
        fs::create_dir_all(dead.join("state")).unwrap();
        fs::create_dir_all(&alive).unwrap();
        assert_eq!(sweep_stale(&parent), vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(alive.exists());
        fs::remove_dir_all(&parent).unwrap();
    }
}

//! Running a [`BundleSpec`] with `runsc run`, and always cleaning up.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::bundle::{container_id, Workspace};
use crate::container::Container;
use crate::discover::Runsc;
use crate::error::GvisorError;
use crate::oci::{to_oci_config, HostView, OciConfig};
use crate::options::{RunOptions, StdioMode};
use crate::outcome::{CapturedOutput, RunOutcome, SeccompStatus, RUNSC_FAILURE};
use crate::platform::Platform;
use crate::spec::{BundleSpec, RootSpec};
use crate::wait::{join, read_err, read_out};

impl Runsc {
    /// Writes the bundle for `spec` into a fresh private directory, runs it
    /// with `runsc run` in the foreground, waits (killing it at the
    /// timeout), and always deletes the container, the bundle and runsc's
    /// state root, also on errors and panics.
    ///
    /// Errors: configuration problems before anything starts; runsc's own
    /// failure ([`GvisorError::RunscFailed`], with its message);
    /// [`GvisorError::Cleanup`] (carrying the outcome) if something could
    /// not be removed.
    ///
    /// ```no_run
    /// use nucleus_gvisor::{BundleSpec, RunOptions, Runsc};
    /// let runsc = Runsc::discover(None)?;
    /// let opts = RunOptions::new(runsc.choose_platform(None)?);
    /// let outcome = runsc.run(&BundleSpec::new(["/bin/true"]), &opts)?;
    /// assert_eq!(outcome.exit_code, 0);
    /// # Ok::<(), nucleus_gvisor::GvisorError>(())
    /// ```
    pub fn run(&self, spec: &BundleSpec, opts: &RunOptions) -> Result<RunOutcome, GvisorError> {
        let plan = self.plan_for(spec, opts, container_id(), None)?;
        let parent = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut container = Container {
            runsc: self,
            ws: Workspace::create(&parent, &plan.id)?,
            id: plan.id.clone(),
            child: None,
            armed: true,
        };
        container.ws.write(&plan.config, plan.host.as_ref())?;
        let mut cmd = self.run_command(&plan, &container.ws, opts);

        let start = Instant::now();
        let child = container
            .child
            .insert(cmd.spawn().map_err(|source| GvisorError::Spawn {
                path: self.path.clone(),
                command: "run".into(),
                source,
            })?);
        let readers = (
            child.stdout.take().map(read_out),
            child.stderr.take().map(read_err),
        );
        let (status, timed_out) = container.wait(opts)?;
        let wall = start.elapsed();
        // The sandbox must be gone before the pipes can reach end-of-file.
        let stopped = container.stop();
        let output = (opts.stdio == StdioMode::Capture).then(|| collect(readers));
        let (exit_code, signal) = exit_of(status, timed_out);
        let outcome = RunOutcome {
            exit_code,
            signal,
            timed_out,
            wall,
            container_id: plan.id,
            platform: plan.platform,
            cgroup_path: plan.spec.cgroup_path.clone(),
            seccomp: plan.seccomp,
            output,
        };
        container.finish(stopped, outcome)
    }

    /// Everything decided before anything is created: the platform, the
    /// effective spec and its `config.json`.
    pub(crate) fn plan_for<'s>(
        &self,
        spec: &'s BundleSpec,
        opts: &RunOptions,
        id: String,
        empty_file: Option<PathBuf>,
    ) -> Result<Plan<'s>, GvisorError> {
        let platform = self.choose_platform(Some(opts.platform))?;
        let mut spec = Cow::Borrowed(spec);
        if opts.ignore_cgroups {
            // The caller's own cgroup limits the sandbox; runsc applies none.
            let s = spec.to_mut();
            s.cgroup_path = None;
            s.memory_limit = None;
            s.cpu_quota = None;
            s.pids_limit = None;
        } else if spec.has_limits() && spec.cgroup_path.is_none() {
            spec.to_mut().cgroup_path = Some(format!("nucleus-gvisor-{id}"));
        }
        let seccomp = match (spec.seccomp.is_some(), self.features.oci_seccomp) {
            (false, _) => SeccompStatus::NotRequested,
            (true, true) => SeccompStatus::Enforced,
            (true, false) => {
                spec.to_mut().seccomp = None;
                SeccompStatus::NotEnforced
            }
        };
        let overlay = spec.root == RootSpec::HostReadOnly && !spec.readonly_root;
        if overlay && !self.features.overlay2 {
            return Err(GvisorError::FeatureUnsupported {
                flag: "overlay2",
                needed_for: "a writable root over the host view",
                version: self.version.clone(),
            });
        }
        let mut host = (spec.root == RootSpec::HostReadOnly).then(HostView::scan);
        let mut facts = host.clone().unwrap_or_default();
        facts.empty_file = empty_file;
        if let Some(h) = host.as_mut() {
            h.empty_file.clone_from(&facts.empty_file);
        }
        let config = to_oci_config(&spec, &facts)?;
        Ok(Plan {
            id,
            platform,
            spec,
            seccomp,
            overlay,
            host,
            config,
        })
    }

    /// `runsc <global flags> <extra flags> run --bundle B ID`.
    fn run_command(&self, plan: &Plan<'_>, ws: &Workspace, opts: &RunOptions) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(self.run_args(plan, ws, opts));
        set_stdio(&mut cmd, opts.stdio);
        cmd
    }

    /// The arguments of [`Self::run_command`], without the binary.
    pub(crate) fn run_args(
        &self,
        plan: &Plan<'_>,
        ws: &Workspace,
        opts: &RunOptions,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--root".into(),
            ws.state_root.clone().into(),
            "--log".into(),
            ws.log.clone().into(),
            "--platform".into(),
            plan.platform.as_str().into(),
            "--network".into(),
            plan.spec.network.runsc_flag().into(),
        ];
        if plan.seccomp == SeccompStatus::Enforced {
            args.push("--oci-seccomp".into());
        }
        if plan.overlay {
            args.extend(["--overlay2".into(), "root:memory".into()]);
        }
        if opts.ignore_cgroups {
            args.push("--ignore-cgroups".into());
        }
        if opts.rootless {
            args.push("--rootless".into());
        }
        args.extend(opts.extra_flags.iter().map(OsString::from));
        args.extend([
            "run".into(),
            "--bundle".into(),
            ws.bundle.clone().into(),
            plan.id.clone().into(),
        ]);
        args
    }
}

/// What [`Runsc::plan_for`] decided.
pub(crate) struct Plan<'s> {
    pub(crate) id: String,
    pub(crate) platform: Platform,
    pub(crate) spec: Cow<'s, BundleSpec>,
    pub(crate) seccomp: SeccompStatus,
    pub(crate) overlay: bool,
    pub(crate) host: Option<HostView>,
    pub(crate) config: OciConfig,
}

fn set_stdio(cmd: &mut Command, mode: StdioMode) {
    match mode {
        StdioMode::Inherit => {}
        StdioMode::Null => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        StdioMode::Capture => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
}

type Readers = (Option<JoinHandle<Vec<u8>>>, Option<JoinHandle<Vec<u8>>>);

fn collect((out, err): Readers) -> CapturedOutput {
    CapturedOutput {
        stdout: join(out),
        stderr: join(err),
    }
}

/// `(exit_code, signal)` from how `runsc run` ended.
fn exit_of(status: ExitStatus, timed_out: bool) -> (i32, Option<i32>) {
    if timed_out {
        return (128 + libc::SIGKILL, Some(libc::SIGKILL));
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (RUNSC_FAILURE, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_of(ExitStatus::from_raw(7 << 8), false), (7, None));
        assert_eq!(exit_of(ExitStatus::from_raw(9), false), (137, Some(9)));
        assert_eq!(exit_of(ExitStatus::from_raw(0), true), (137, Some(9)));
    }
}

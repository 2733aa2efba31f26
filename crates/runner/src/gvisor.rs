//! The gVisor runtime: the Envelope translated into `nucleus-gvisor`'s
//! bundle, and `runsc` run inside the native launch sequence's own
//! envelope, so the workload meets gVisor *and* the host-side rules:
//!
//! - runsc, its gofer and its sandbox run in a user namespace with the
//!   native envelope's map (root-remapped as root, the caller's own id
//!   rootless): host files are reached with the mapped ids' rights, files
//!   created through binds land as those ids, never as host root;
//! - in a PID namespace whose init dies with the runner, so nothing of
//!   runsc outlives a killed runner, and a timeout kills it all;
//! - in the runner's own cgroup (`--ignore-cgroups`): limits and the
//!   result's usage and `killed_by` work as natively;
//! - with the same view rules in the bundle: masked credentials, writable
//!   mounts `noexec`, binds `nosuid,nodev`, the default seccomp profile
//!   (device nodes, fileless execution) enforced by the sentry.

use crate::gvisor_bundle::{bundle, writes_as_root};
use crate::gvisor_report::{check_command, View};
use crate::gvisor_workspace::{attach_binds, detach_binds, mask_covers, outside, Detached};
use crate::outcome::{GvisorEnforced, Outcome};
use crate::prepare::{idmap_wanted, ExecPlan, Prepared};
use crate::relay::Relay;
use crate::sandbox::{run_prepared, Holding, Mode};
use crate::{Envelope, NetworkMode, RunError};
use nucleus_gvisor::{BundleSpec, RunOptions, Runsc};
use nucleus_idmap::{Caller, ResolvedMaps, SubIdPaths};
use nucleus_ns::Namespace;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs the Envelope under gVisor: find `runsc`, write the bundle (and
/// check the command), lay out the run directory, run runsc in the native
/// envelope, and map the outcome. Each step is a debug span. The Envelope
/// was validated by `launch`.
pub(crate) fn run(
    env: &Envelope,
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let mut stage = Stage::new(env, None)?;
    if let Some(outcome) = check_command(env, &stage.staged.spec, started)? {
        return Ok(outcome);
    }
    let cleaned = nucleus_gvisor::sweep_stale(&stage.work_dir);
    let first = FirstStart::check(&stage.work_dir);
    let relay = match env.capture {
        Some(limit) => Relay::for_capture(limit),
        None => Relay::for_output(),
    }
    .map_err(|source| RunError::Pipe { source })?;
    let (prepared_run, mut prepared) =
        tracing::debug_span!("workspace").in_scope(|| stage.workspace(env))?;
    prepared.stdio_dups = relay.child_dups();
    // runsc run forwards no signal to the workload (20221219): the init
    // has runsc deliver each one the runner forwards, and SIGPIPE.
    prepared.signal_tool = crate::sys::FORWARDED
        .iter()
        .chain(&[libc::SIGPIPE])
        .map(|&sig| {
            Ok((
                sig,
                ExecPlan::program(&prepared_run.kill_argv(&sig.to_string()))?,
            ))
        })
        .collect::<Result<_, RunError>>()?;
    let host_userns = prepared.namespaces.contains(Namespace::User);
    let (mut outcome, _) =
        run_prepared(env, prepared, Mode::Run, Some(relay), cancel, Holding::None)?;
    first.done();
    let failure = tracing::debug_span!("finish")
        .in_scope(|| prepared_run.finish(outcome.exit_code, outcome.signal))?;
    let view = stage.view(env, host_userns);
    view.conclude(env, &mut outcome, failure);
    outcome.cleaned.extend(cleaned);
    Ok(outcome)
}

/// Holds the Envelope as a session under gVisor (`gvisor_session.rs`): the
/// same bundle and envelope as [`run`], its workload `nucleus-gvisor-exec
/// pause`, started by the session's holder once the envelope is ready;
/// each command then joins it with `runsc exec`.
pub(crate) fn hold(
    env: &Envelope,
    mut hold: crate::session::Hold,
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Outcome, RunError> {
    if let nucleus_rootfs::Base::Directory(_) = env.rootfs.base {
        return Err(RunError::SessionUnsupported {
            why: "under gVisor runs its helper on the host's libraries: drop --rootfs, \
                  or pass --trust-level trusted",
        });
    }
    let helper = crate::gvisor_session::helper_binary()?;
    let mut stage = Stage::new(env, Some(&helper))?;
    let cleaned = nucleus_gvisor::sweep_stale(&stage.work_dir);
    let (prepared_run, mut prepared) =
        tracing::debug_span!("workspace").in_scope(|| stage.workspace(env))?;
    prepared.hold = true;
    crate::session::check(env, &prepared)?;
    let host_userns = prepared.namespaces.contains(Namespace::User);
    let filter = stage
        .staged
        .seccomp
        .as_ref()
        .map(|f| nucleus_seccomp::program_to_hex(f.program()));
    let view = stage.view(env, host_userns);
    let container = crate::gvisor_session::Container::new(prepared_run, view, filter);
    hold.gvisor = Some(Box::new(container));
    let session = Holding::Session(hold);
    let (mut outcome, _) = run_prepared(env, prepared, Mode::Run, None, cancel, session)?;
    outcome.cleaned.extend(cleaned);
    Ok(outcome)
}

/// What a gVisor launch finds and decides before anything is made: runsc
/// and its platform, the map, the bundle.
struct Stage {
    work_dir: PathBuf,
    runsc: Runsc,
    opts: RunOptions,
    maps: Option<ResolvedMaps>,
    staged: Staged,
}

impl Stage {
    /// `helper`: the host binary a session binds into its container.
    fn new(env: &Envelope, helper: Option<&Path>) -> Result<Stage, RunError> {
        if env.landlock.policy_file.is_some() {
            return Err(RunError::NotUnderGvisor {
                what: "--landlock-policy (gVisor's kernel replaces Landlock)",
            });
        }
        let caller = Caller::current();
        let work_dir = crate::state::runtime_dir(&caller)?;
        let (runsc, platform) =
            tracing::debug_span!("runsc").in_scope(|| find_runsc(env, &work_dir))?;
        let maps = host_maps(env, &caller)?;
        let staged = tracing::debug_span!("bundle")
            .in_scope(|| Staged::new(env, &caller, maps.as_ref(), helper))?;
        if staged.seccomp.is_some() && !runsc.features.oci_seccomp {
            return Err(RunError::NotUnderGvisor {
                what: "a seccomp filter (this runsc lacks --oci-seccomp; use --seccomp off)",
            });
        }
        let opts = run_options(env, platform, work_dir.clone(), maps.as_ref());
        Ok(Stage {
            work_dir,
            runsc,
            opts,
            maps,
            staged,
        })
    }

    /// The run directory and the native envelope that runs runsc in it.
    fn workspace(
        &mut self,
        env: &Envelope,
    ) -> Result<(nucleus_gvisor::PreparedRun, Prepared), RunError> {
        let detached = std::mem::take(&mut self.staged.detached);
        workspace(
            env,
            &self.runsc,
            &self.opts,
            &self.staged,
            detached,
            self.maps.take(),
        )
    }

    /// What the result reports of this launch.
    fn view(self, env: &Envelope, host_userns: bool) -> View {
        let how = GvisorEnforced {
            version: self.runsc.version.clone(),
            platform: self.opts.platform.to_string(),
            host_userns,
            rootless_flag: self.opts.rootless,
            ignore_cgroups: self.opts.ignore_cgroups,
            oci_seccomp: self.staged.seccomp.is_some(),
            writable_noexec: true,
            network: match env.network {
                NetworkMode::None => "private-namespace",
                NetworkMode::Host => "host",
            },
        };
        let Staged {
            spec,
            seccomp,
            masks,
            hidden,
            ..
        } = self.staged;
        View {
            spec,
            seccomp: seccomp.map(|f| f.report().clone()),
            masks,
            hidden,
            how,
        }
    }
}

/// `runsc` (found once and cached beside the run directories) and the
/// platform it runs on.
/// The first gVisor start since boot (its runtime directory is on `/run`, or
/// the caller's `$TMPDIR`) loads runsc from disk, and is shown on a
/// terminal as a status line until the workload's output or its end.
struct FirstStart(Option<PathBuf>);

impl FirstStart {
    const MARKER: &'static str = "gvisor-started";

    fn check(work_dir: &Path) -> FirstStart {
        let marker = work_dir.join(Self::MARKER);
        if marker.exists() {
            return FirstStart(None);
        }
        crate::progress::show(
            "starting gVisor (the first start loads runsc; later ones are faster)",
        );
        FirstStart(Some(marker))
    }

    /// Records that a start happened (best effort: a marker that cannot be
    /// written only shows the status line once more).
    fn done(&self) {
        if let Some(marker) = &self.0 {
            let _ = std::fs::File::create(marker);
        }
    }
}

impl Drop for FirstStart {
    /// Also on an early return: no status line outlives the start.
    fn drop(&mut self) {
        crate::progress::clear();
    }
}

fn find_runsc(
    env: &Envelope,
    work_dir: &Path,
) -> Result<(Runsc, nucleus_gvisor::Platform), RunError> {
    let cache_dir = work_dir.parent().unwrap_or(work_dir);
    let runsc = Runsc::discover_cached(env.gvisor.runsc.as_deref(), cache_dir)?;
    let asked = env.gvisor.platform.as_deref().map(str::parse).transpose()?;
    let platform = runsc.choose_platform(asked)?;
    Ok((runsc, platform))
}

/// The bundle as described, before it is written: the spec, the seccomp
/// report, the masks, the hidden state directories, and the binds root
/// opens itself.
struct Staged {
    spec: BundleSpec,
    seccomp: Option<nucleus_seccomp::CompiledFilter>,
    masks: Vec<nucleus_rootfs::Mask>,
    hidden: Vec<PathBuf>,
    detached: Vec<Detached>,
}

impl Staged {
    fn new(
        env: &Envelope,
        caller: &Caller,
        maps: Option<&ResolvedMaps>,
        helper: Option<&Path>,
    ) -> Result<Self, RunError> {
        let uid = env.user.map_or(0, |u| u.uid);
        let masks = env.rootfs.masks()?;
        let (mut spec, seccomp) = bundle(env, uid, &masks, writes_as_root(env, caller, maps))?;
        if let Some(helper) = helper {
            crate::gvisor_session::install_helper(&mut spec, helper);
        }
        // The runner's own state is never shown through a bind (state.rs).
        let hidden = crate::state::hide_in_bundle(env, &mut spec)?;
        // Root opens bind sources itself: runsc gets them below its run
        // directory (see `attach_binds`).
        let detached = if caller.uid == 0 && maps.is_some() {
            detach_binds(&mut spec)
        } else {
            Vec::new()
        };
        Ok(Self {
            spec,
            seccomp,
            masks,
            hidden,
            detached,
        })
    }
}

/// How runsc is run: in `work_dir`, without cgroups of its own (the
/// runner's cgroup holds it), `--rootless` when the map has no `nobody`.
fn run_options(
    env: &Envelope,
    platform: nucleus_gvisor::Platform,
    work_dir: PathBuf,
    maps: Option<&ResolvedMaps>,
) -> RunOptions {
    let mut opts = RunOptions::new(platform);
    opts.work_dir = Some(work_dir);
    opts.ignore_cgroups = true;
    if let Some(dir) = &env.gvisor.debug_log {
        opts.extra_flags = vec!["--debug".into(), format!("--debug-log={}/", dir.display())];
    }
    // runsc maps the sandbox's nobody to nobody unless told it is rootless:
    // a map of the caller's single id has no nobody.
    opts.rootless = maps.is_some_and(|m| !m.maps_uid(NOBODY) || !m.maps_gid(NOBODY));
    opts
}

/// Writes the bundle into a new run directory with the mask covers and the
/// binds, gives it to the mapped root, and prepares the native envelope
/// that runs `runsc run` in it.
fn workspace(
    env: &Envelope,
    runsc: &Runsc,
    opts: &RunOptions,
    staged: &Staged,
    detached: Vec<Detached>,
    maps: Option<ResolvedMaps>,
) -> Result<(nucleus_gvisor::PreparedRun, Prepared), RunError> {
    let prepared_run = runsc.prepare(&staged.spec, opts)?;
    let workspace_err = |source| RunError::GvisorWorkspace {
        path: prepared_run.dir().to_owned(),
        source,
    };
    let covers = mask_covers(env, &staged.masks, prepared_run.dir()).map_err(workspace_err)?;
    let binds = attach_binds(detached, prepared_run.dir()).map_err(workspace_err)?;
    if let Some(m) = &maps {
        let (uid, gid) = (outside(&m.uid, 0), outside(&m.gid, 0));
        prepared_run.chown(uid, gid).map_err(workspace_err)?;
    }
    // Masked files are hidden where runsc itself runs: its gofer never
    // reaches them, and the sandbox sees empty files.
    let view = nucleus_rootfs::MountPlan::host_with_fresh_proc(&covers, &binds)?;
    let idmap = !binds.is_empty() && idmap_wanted(&env.rootfs, maps.as_ref());
    let mut prepared = Prepared::for_runtime(env, maps, prepared_run.argv(), view)?;
    prepared.idmap_binds = idmap;
    Ok((prepared_run, prepared))
}

/// uid and gid 65534, which runsc's sandbox runs as unless `--rootless`.
const NOBODY: u32 = 65534;

/// The map runsc runs under: the native envelope's, or none for
/// `--userns host` (root only).
fn host_maps(env: &Envelope, caller: &Caller) -> Result<Option<ResolvedMaps>, RunError> {
    let maps = if env.effective_namespaces().contains(Namespace::User) {
        env.userns
            .resolve_leased(caller, &SubIdPaths::default(), &Default::default())?
    } else {
        None
    };
    if maps.is_none() && caller.uid != 0 {
        return Err(RunError::HostUsernsNeedsRoot);
    }
    Ok(maps)
}

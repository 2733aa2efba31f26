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

use crate::guard::Decision;
use crate::launch::{run_prepared, Mode};
use crate::prepare::{idmap_wanted, ExecPlan, MemfdNoexec, Prepared};
use crate::relay::Relay;
use crate::report::{
    Enforced, GvisorEnforced, KilledBy, LandlockEnforced, LandlockStatus, Outcome,
};
use crate::{exit, Envelope, NetworkMode, RunError};
use nucleus_gvisor::{
    BundleSpec, CpuQuota, MaskedPath, MountKind, MountSpec, Network, RlimitSpec, RootSpec,
    RunOptions, Runsc,
};
use nucleus_idmap::{Caller, ResolvedMaps, SubIdPaths};
use nucleus_ns::Namespace;
use nucleus_rootfs::Located;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs the Envelope under gVisor: find `runsc`, check the command, write
/// the bundle, run runsc in the envelope, and map the outcome.
pub(crate) fn run(env: &Envelope) -> Result<Outcome, RunError> {
    env.validate()?;
    if env.landlock.policy_file.is_some() {
        return Err(RunError::NotUnderGvisor {
            what: "--landlock-policy (gVisor's kernel replaces Landlock)",
        });
    }
    let started = Instant::now();
    let caller = Caller::current();
    let work_dir = runtime_dir(&caller)?;
    let cache_dir = work_dir.parent().unwrap_or(&work_dir);
    let runsc = Runsc::discover_cached(env.gvisor.runsc.as_deref(), cache_dir)?;
    let asked = env.gvisor.platform.as_deref().map(str::parse).transpose()?;
    let platform = runsc.choose_platform(asked)?;
    let maps = host_maps(env, &caller)?;
    let uid = env.user.map_or(0, |u| u.uid);
    let masks = env.rootfs.masks()?;
    let (mut spec, seccomp) = bundle(
        env,
        uid,
        &masks,
        writes_as_root(env, &caller, maps.as_ref()),
    )?;
    // The runner's own state is never shown through a bind (state.rs).
    let hidden = crate::state::hide_in_bundle(env, &mut spec)?;
    // Root opens bind sources itself: runsc gets them below its run
    // directory (see `attach_binds`).
    let detached = if caller.uid == 0 && maps.is_some() {
        detach_binds(&mut spec)
    } else {
        Vec::new()
    };
    if let Some(outcome) = check_command(env, &spec, started)? {
        return Ok(outcome);
    }
    if seccomp.is_some() && !runsc.features.oci_seccomp {
        return Err(RunError::NotUnderGvisor {
            what: "a seccomp filter (this runsc lacks --oci-seccomp; use --seccomp off)",
        });
    }
    let cleaned = nucleus_gvisor::sweep_stale(&work_dir);
    let mut opts = RunOptions::new(platform);
    opts.work_dir = Some(work_dir);
    opts.ignore_cgroups = true;
    if let Some(dir) = &env.gvisor.debug_log {
        opts.extra_flags = vec!["--debug".into(), format!("--debug-log={}/", dir.display())];
    }
    // runsc maps the sandbox's nobody to nobody unless told it is rootless:
    // a map of the caller's single id has no nobody.
    opts.rootless = maps
        .as_ref()
        .is_some_and(|m| !m.maps_uid(NOBODY) || !m.maps_gid(NOBODY));
    let prepared_run = runsc.prepare(&spec, &opts)?;
    let workspace_err = |source| RunError::GvisorWorkspace {
        path: prepared_run.dir().to_owned(),
        source,
    };
    let covers = mask_covers(env, &masks, prepared_run.dir()).map_err(workspace_err)?;
    let binds = attach_binds(detached, prepared_run.dir()).map_err(workspace_err)?;
    if let Some(m) = &maps {
        let (uid, gid) = (outside(&m.uid, 0), outside(&m.gid, 0));
        prepared_run.chown(uid, gid).map_err(workspace_err)?;
    }
    let relay = match env.capture {
        Some(limit) => Relay::for_capture(crate::launch::limit_bytes(limit)),
        None => Relay::for_output(),
    }
    .map_err(|source| RunError::Pipe { source })?;
    // Masked files are hidden where runsc itself runs: its gofer never
    // reaches them, and the sandbox sees empty files.
    let view = nucleus_rootfs::MountPlan::host_with_fresh_proc(&covers, &binds)?;
    let idmap = !binds.is_empty() && idmap_wanted(&env.rootfs, maps.as_ref());
    let mut prepared = Prepared::for_runtime(env, maps, prepared_run.argv(), view)?;
    prepared.idmap_binds = idmap;
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
    let (mut outcome, _) = run_prepared(env, prepared, Mode::Run, Some(relay))?;
    let failure = prepared_run.finish(outcome.exit_code, outcome.signal)?;
    let how = GvisorEnforced {
        version: runsc.version.clone(),
        platform: platform.to_string(),
        host_userns,
        rootless_flag: opts.rootless,
        ignore_cgroups: opts.ignore_cgroups,
        oci_seccomp: seccomp.is_some(),
        writable_noexec: true,
        network: match env.network {
            NetworkMode::None => "private-namespace",
            NetworkMode::Host => "host",
        },
    };
    outcome.enforced = Enforced {
        gvisor: Some(how),
        ..enforced(env, &spec, seccomp, &outcome.enforced, &masks)
    };
    outcome.enforced.masked_paths.extend(hidden);
    outcome.cleaned.extend(cleaned);
    settle(&mut outcome, failure);
    Ok(outcome)
}

/// The overlays that hide masked files from runsc: for each directory of
/// the view holding masked files (`/etc` of the host, or the root
/// directory), a tree in the run directory with an empty, read-only file
/// at each masked path, laid over it.
fn mask_covers(
    env: &Envelope,
    masks: &[nucleus_rootfs::Mask],
    run_dir: &Path,
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut covers: Vec<(PathBuf, PathBuf)> = Vec::new();
    for mask in masks.iter().filter(|m| !m.is_dir) {
        let (top, rel) = match &env.rootfs.base {
            nucleus_rootfs::Base::Directory(dir) => (
                dir.clone(),
                mask.path.strip_prefix("/").unwrap_or(&mask.path).to_owned(),
            ),
            nucleus_rootfs::Base::Host => {
                let Some(d) = env
                    .rootfs
                    .host_dirs
                    .iter()
                    .find(|d| mask.path.starts_with(d))
                else {
                    continue;
                };
                (
                    d.clone(),
                    mask.path.strip_prefix(d).unwrap_or(&mask.path).to_owned(),
                )
            }
        };
        let cover = match covers.iter().find(|(_, t)| *t == top) {
            Some((c, _)) => c.clone(),
            None => {
                let c = run_dir.join(format!("cover-{}", covers.len()));
                std::fs::DirBuilder::new().mode(0o755).create(&c)?;
                covers.push((c.clone(), top.clone()));
                c
            }
        };
        // Each directory on the way keeps the host's mode: the merged
        // directory shows the top layer's.
        let mut host_dir = top.clone();
        let mut dir = cover.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            host_dir.push(part);
            dir.push(part);
            let mode = std::fs::metadata(&host_dir)?.permissions().mode() & 0o7777;
            match std::fs::DirBuilder::new().mode(mode).create(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let file = cover.join(&rel);
        std::fs::write(&file, b"")?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444))?;
    }
    Ok(covers)
}

/// Devices gVisor's `/dev` has and the native minimal `/dev` does not:
/// FUSE (an empty read-only file over it). (`/dev/net/tun` exists only
/// with gVisor's own network stack, which is not used.)
const GVISOR_EXTRA_DEVICES: [(&str, bool); 1] = [("/dev/fuse", false)];

/// Whether files the sandbox writes land as the invoking root's: root
/// caller, idmapped binds, and at least one writable.
fn writes_as_root(env: &Envelope, caller: &Caller, maps: Option<&ResolvedMaps>) -> bool {
    caller.uid == 0
        && idmap_wanted(&env.rootfs, maps)
        && env
            .rootfs
            .mounts
            .iter()
            .any(|m| m.kind == nucleus_rootfs::MountKind::Bind)
}

/// A bind source root opens itself: its host path, where it is attached
/// (relative to the run directory), read-only or not.
struct Detached {
    source: PathBuf,
    target: PathBuf,
    read_only: bool,
}

/// Points each bind of the bundle at `binds/N` in the run directory and
/// returns what to attach there.
fn detach_binds(spec: &mut BundleSpec) -> Vec<Detached> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts.iter_mut().enumerate() {
        let read_only = match m.kind {
            MountKind::Bind => false,
            MountKind::RoBind => true,
            MountKind::Tmpfs => continue,
        };
        let Some(source) = m.source.take() else {
            continue;
        };
        let target = PathBuf::from(format!("binds/{i}"));
        m.source = Some(target.clone());
        out.push(Detached {
            source,
            target,
            read_only,
        });
    }
    out
}

/// Makes each bind's mount point in the run directory (a directory or an
/// empty file, as its source is) and returns the binds for runsc's view.
fn attach_binds(
    detached: Vec<Detached>,
    run_dir: &Path,
) -> std::io::Result<Vec<nucleus_rootfs::RuntimeBind>> {
    if detached.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir(run_dir.join("binds"))?;
    detached
        .into_iter()
        .map(|d| {
            let target = run_dir.join(&d.target);
            if std::fs::metadata(&d.source)?.is_dir() {
                std::fs::create_dir(&target)?;
            } else {
                std::fs::write(&target, b"")?;
            }
            Ok(nucleus_rootfs::RuntimeBind {
                source: d.source,
                target,
                read_only: d.read_only,
            })
        })
        .collect()
}

/// uid and gid 65534, which runsc's sandbox runs as unless `--rootless`.
const NOBODY: u32 = 65534;

/// The host id that `inside` maps to.
fn outside(maps: &[nucleus_idmap::IdMapping], inside: u32) -> u32 {
    maps.iter()
        .find_map(|m| m.to_outside(inside))
        .unwrap_or(inside)
}

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

/// runsc's exit code and log turned into the result: its own failures
/// become one-line messages with the native exit codes, and a cgroup OOM
/// kill (which takes the whole sentry) is `killed_by: memory`.
fn settle(outcome: &mut Outcome, failure: Option<nucleus_gvisor::RunscFailure>) {
    if let Some(f) = failure {
        outcome.exit_code = if f.not_found {
            exit::NOT_FOUND
        } else {
            exit::SETUP_FAILED
        };
        outcome.error = Some(format!("gvisor: {}", last_cause(&f.message)));
        return;
    }
    let oom = outcome
        .enforced
        .limits
        .as_ref()
        .is_some_and(|l| l.usage.oom_killed);
    if oom && outcome.killed_by.is_none() {
        outcome.killed_by = Some(KilledBy::Memory);
        outcome.signal = Some(libc::SIGKILL);
        outcome.exit_code = 128 + libc::SIGKILL;
    }
}

/// The innermost cause of runsc's `a: b: c` error chain, which is the one
/// that says what went wrong.
fn last_cause(message: &str) -> &str {
    message.rsplit(": ").next().unwrap_or(message).trim()
}

/// Where run directories live: private to the caller, reachable by the
/// mapped ids (0711 up to it, the run directory itself is theirs).
pub(crate) fn runtime_dir(caller: &Caller) -> Result<PathBuf, RunError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let base = if caller.uid == 0 {
        PathBuf::from("/run/nucleus")
    } else {
        std::env::temp_dir().join(format!("nucleus-{}", caller.uid))
    };
    let dir = base.join("gvisor");
    for d in [&base, &dir] {
        let made = std::fs::DirBuilder::new().mode(0o711).create(d);
        let err = |source| RunError::GvisorWorkspace {
            path: d.clone(),
            source,
        };
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        let meta = std::fs::symlink_metadata(d).map_err(err)?;
        // Somebody else's directory (or a link) in a shared /tmp is refused.
        if !meta.is_dir() || meta.uid() != caller.uid {
            return Err(err(std::io::Error::from_raw_os_error(libc::EPERM)));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).map_err(err)?;
        }
    }
    Ok(dir)
}

/// The bundle description of the Envelope, and the seccomp report when a
/// filter is part of it.
fn bundle(
    env: &Envelope,
    uid: u32,
    masks: &[nucleus_rootfs::Mask],
    writes_as_root: bool,
) -> Result<(BundleSpec, Option<nucleus_seccomp::SeccompReport>), RunError> {
    let mut spec = BundleSpec::new(env.command.clone());
    spec.env = env
        .environment(uid)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    spec.cwd = env.workdir.clone();
    let user = env.user.unwrap_or(crate::UserSpec { uid: 0, gid: 0 });
    (spec.uid, spec.gid) = (user.uid, user.gid);
    spec.hostname = Some(env.effective_hostname());
    spec.root = match &env.rootfs.base {
        nucleus_rootfs::Base::Host => RootSpec::HostReadOnly,
        nucleus_rootfs::Base::Directory(dir) => RootSpec::Directory(dir.clone()),
    };
    spec.mounts = env
        .rootfs
        .mounts
        .iter()
        .map(|m| mount(m, &env.landlock.exec_binds, env.rootfs.bind_follow_symlinks))
        .collect::<Result<_, _>>()?;
    // Masked directories: an empty read-only tmpfs of the sentry's own
    // (masked files are covered where runsc runs, see `mask_covers`); and
    // the devices the sentry adds that the native /dev does not have.
    spec.masked = masks
        .iter()
        .filter(|m| m.is_dir)
        .map(|m| MaskedPath {
            path: m.path.clone(),
            is_dir: true,
        })
        .chain(
            GVISOR_EXTRA_DEVICES
                .iter()
                .map(|(path, is_dir)| MaskedPath {
                    path: PathBuf::from(path),
                    is_dir: *is_dir,
                }),
        )
        .collect();
    spec.readonly_root = env.rootfs.readonly_root;
    // runsc uses the network namespace it runs in: with `none`, the
    // envelope's own, holding only `lo`. The sentry's sockets are then the
    // host kernel's, in that namespace, so the host kernel checks what the
    // native envelope's kernel checks (ports below 1024, raw sockets) —
    // gVisor's own network stack does not (runsc 20221219).
    spec.network = Network::Host;
    spec.rlimits = env
        .rlimits
        .effective()?
        .iter()
        .map(|r| RlimitSpec {
            resource: format!("RLIMIT_{}", r.resource.to_string().to_uppercase()),
            soft: r.soft,
            hard: r.hard,
        })
        .collect();
    spec.capabilities = env.caps.keep.iter().map(ToString::to_string).collect();
    spec.no_new_privileges = true;
    // runsc gets the sandbox's own terminal (console.rs), never the
    // caller's: the sentry passes a console's settings through to it, and
    // makes a host fd non-blocking. The console needs all three to be it:
    // the sentry makes one terminal of stdin, stdout and stderr (any one of
    // them); a partial one stays a plain file inside.
    spec.terminal = crate::console::whole(env.capture.is_some());
    // Informational only: the runner's own cgroup applies the limits.
    spec.memory_limit = env.limits.memory;
    spec.cpu_quota = env.limits.cpus.map(|cpus| CpuQuota {
        quota: (cpus * 100_000.0) as i64,
        period: 100_000,
    });
    spec.pids_limit = env.limits.pids.map(|p| p as i64);
    // The profile is read and checked once; the bundle gets exactly what the
    // report describes. gVisor's memfd cannot be sealed non-executable, and
    // its seccomp answers EPERM to every errno rule.
    let seccomp = match env.seccomp.profile(spec.capabilities.clone())? {
        Some(profile) => {
            let mut profile = profile.deny_exec_memfd();
            if writes_as_root {
                profile = profile.deny_privileged_files();
            }
            let profile = profile.for_eperm_only_runtime();
            let filter = profile.compile()?;
            let json = profile.to_oci_json()?;
            spec.seccomp =
                Some(
                    serde_json::from_str(&json).map_err(|e| RunError::ParseConfig {
                        path: env.seccomp.profile_file.clone().unwrap_or_default(),
                        message: e.to_string(),
                    })?,
                );
            Some(filter.report().clone())
        }
        None => None,
    };
    Ok((spec, seccomp))
}

/// The bundle's mount for a user mount; a bind's source as
/// [`nucleus_rootfs::resolve_source`] resolves it (no symbolic link
/// followed unless asked).
fn mount(
    m: &nucleus_rootfs::MountSpec,
    exec_binds: &[PathBuf],
    follow: bool,
) -> Result<MountSpec, RunError> {
    let source = match &m.source {
        Some(src) => Some(nucleus_rootfs::resolve_source(src, follow)?),
        None => None,
    };
    Ok(MountSpec {
        source,
        destination: m.destination.clone(),
        kind: match m.kind {
            nucleus_rootfs::MountKind::Bind => MountKind::Bind,
            nucleus_rootfs::MountKind::RoBind => MountKind::RoBind,
            nucleus_rootfs::MountKind::Tmpfs => MountKind::Tmpfs,
        },
        exec: m.exec || exec_binds.contains(&m.destination),
    })
}

/// The command looked up on the sandbox's `PATH` in the view gVisor will
/// serve, as `execvp` would inside: a missing command fails at once with
/// native's message and code (127), one that is not executable with 126,
/// instead of runsc's chatter. `None`: found, or not decidable from the
/// host (it would be in a tmpfs); runsc then decides.
fn check_command(
    env: &Envelope,
    spec: &BundleSpec,
    started: Instant,
) -> Result<Option<Outcome>, RunError> {
    let path = spec
        .env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH);
    let cmd = &env.command[0];
    let refuse = |code, error: String| {
        let mut outcome = Outcome::new(
            started.elapsed(),
            enforced(
                env,
                spec,
                None,
                &Enforced::not_started(Decision::Gvisor),
                &[],
            ),
            None,
        );
        outcome.exit_code = code;
        outcome.error = Some(error);
        Ok(Some(outcome))
    };
    if let Located::Host(dir) = env.rootfs.locate(&spec.cwd) {
        if !dir.is_dir() {
            let reason = if dir.exists() {
                "not a directory"
            } else {
                "no such file or directory"
            };
            return refuse(
                exit::SETUP_FAILED,
                format!("workdir: {}: {reason}", spec.cwd.display()),
            );
        }
    }
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![spec.cwd.join(cmd)]
    } else {
        path.split(':')
            .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(cmd))
            .map(|p| spec.cwd.join(p))
            .collect()
    };
    let mut denied = false;
    for inside in &candidates {
        let host = match env.rootfs.locate(inside) {
            Located::Host(host) => host,
            Located::Nothing => continue,
            Located::RunTime => return Ok(None),
        };
        match std::fs::metadata(&host) {
            Ok(meta) if meta.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o111 != 0 {
                    return Ok(None);
                }
                denied = true;
            }
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    let (code, reason) = if denied {
        (exit::CANNOT_EXECUTE, "permission denied")
    } else {
        (exit::NOT_FOUND, "command not found")
    };
    refuse(code, format!("exec: {cmd}: {reason}"))
}

/// What was enforced: the host-side envelope around runsc (`host`: its
/// namespaces, map and limits) and what the bundle gave the workload.
fn enforced(
    env: &Envelope,
    spec: &BundleSpec,
    seccomp: Option<nucleus_seccomp::SeccompReport>,
    host: &Enforced,
    masks: &[nucleus_rootfs::Mask],
) -> Enforced {
    let memfd = if seccomp.is_some() {
        MemfdNoexec::Seccomp
    } else {
        MemfdNoexec::Off
    };
    Enforced {
        // The namespaces runsc runs in; the sentry adds its own inside.
        namespaces: host.namespaces.clone(),
        userns: host.userns.clone(),
        uid_map: host.uid_map.clone(),
        gid_map: host.gid_map.clone(),
        uid: spec.uid,
        gid: spec.gid,
        capabilities: spec.capabilities.clone(),
        no_new_privs: true,
        readonly_root: spec.readonly_root,
        landlock: LandlockEnforced {
            status: LandlockStatus::ReplacedByGvisor,
            ..LandlockEnforced::off()
        },
        seccomp: seccomp.filter(|_| spec.seccomp.is_some()),
        limits: host.limits.clone(),
        rlimits: env.rlimits.effective().unwrap_or_default(),
        runtime: Decision::Gvisor,
        masked_paths: masks.iter().map(|m| m.path.clone()).collect(),
        memfd_noexec: memfd,
        userns_limits: Default::default(),
        gvisor: None,
    }
}

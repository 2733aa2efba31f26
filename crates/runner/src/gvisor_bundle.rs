//! The Envelope as `nucleus-gvisor`'s bundle description: environment,
//! working directory, user, root, mounts, masks, rlimits, capabilities and
//! the seccomp profile rewritten for the sentry.

use crate::prepare::idmap_wanted;
use crate::{Envelope, RunError};
use nucleus_gvisor::{BundleSpec, CpuQuota, MaskedPath, Network, RlimitSpec, RootSpec};
use nucleus_idmap::{Caller, ResolvedMaps};
use nucleus_rootfs::MountSpec;
use std::path::PathBuf;

/// Devices gVisor's `/dev` has and the native minimal `/dev` does not:
/// FUSE (an empty read-only file over it). (`/dev/net/tun` exists only
/// with gVisor's own network stack, which is not used.)
const GVISOR_EXTRA_DEVICES: [(&str, bool); 1] = [("/dev/fuse", false)];

/// Whether files the sandbox writes land as the invoking root's: root
/// caller, idmapped binds, and at least one writable.
pub(crate) fn writes_as_root(env: &Envelope, caller: &Caller, maps: Option<&ResolvedMaps>) -> bool {
    caller.uid == 0
        && idmap_wanted(&env.rootfs, maps)
        && env
            .rootfs
            .mounts
            .iter()
            .any(|m| m.kind == nucleus_rootfs::MountKind::Bind)
}

/// The bundle description of the Envelope, and the compiled seccomp filter when a
/// filter is part of it.
pub(crate) fn bundle(
    env: &Envelope,
    uid: u32,
    masks: &[nucleus_rootfs::Mask],
    writes_as_root: bool,
) -> Result<(BundleSpec, Option<nucleus_seccomp::CompiledFilter>), RunError> {
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
            Some(filter)
        }
        None => None,
    };
    Ok((spec, seccomp))
}

/// The bundle's mount for a user mount; a bind's source as
/// [`nucleus_rootfs::resolve_source`] resolves it (no symbolic link
/// followed unless asked).
fn mount(m: &MountSpec, exec_binds: &[PathBuf], follow: bool) -> Result<MountSpec, RunError> {
    let source = match &m.source {
        Some(src) => Some(nucleus_rootfs::resolve_source(src, follow)?),
        None => None,
    };
    Ok(MountSpec {
        source,
        exec: m.exec || exec_binds.contains(&m.destination),
        ..m.clone()
    })
}

//! The gVisor runtime: the Envelope translated into `nucleus-gvisor`'s
//! bundle description and run with `runsc`.

use crate::guard::Decision;
use crate::report::{Enforced, KilledBy, LandlockEnforced, Outcome};
use crate::{Envelope, NetworkMode, RunError, SeccompMode};
use nucleus_gvisor::{
    BundleSpec, CpuQuota, MountKind, MountSpec, Network, RlimitSpec, RootSpec, RunOptions, Runsc,
    SeccompStatus,
};

/// Runs the Envelope under gVisor: find `runsc`, pick a platform it knows,
/// build the bundle description, run, and map the outcome. `runsc` itself
/// removes the container, its state and the bundle, also on errors.
pub(crate) fn run(env: &Envelope) -> Result<Outcome, RunError> {
    env.validate()?;
    if env.landlock.policy_file.is_some() {
        return Err(RunError::NotUnderGvisor {
            what: "--landlock-policy (gVisor's kernel replaces Landlock)",
        });
    }
    let l = &env.limits;
    let unsupported = l.memory_swap.is_some() || l.cpu_weight.is_some() || !l.io_max.is_empty();
    if unsupported && env.limit_mode == nucleus_cgroup::LimitMode::Required {
        return Err(RunError::NotUnderGvisor {
            what: "--memory-swap, cpu weight or --io-max (use --best-effort-limits to run without them)",
        });
    }
    let runsc = Runsc::discover(env.gvisor.runsc.as_deref())?;
    let asked = env.gvisor.platform.as_deref().map(str::parse).transpose()?;
    let platform = runsc.choose_platform(asked)?;
    let (spec, seccomp) = bundle(env)?;
    if seccomp.is_some() && !runsc.features.oci_seccomp {
        return Err(RunError::NotUnderGvisor {
            what: "a seccomp filter (this runsc lacks --oci-seccomp; use --seccomp off)",
        });
    }
    let mut opts = RunOptions::new(platform);
    opts.timeout = env.timeout;
    let done = runsc.run(&spec, &opts)?;
    if done.seccomp == SeccompStatus::NotEnforced {
        return Err(RunError::NotUnderGvisor {
            what: "the seccomp filter was not enforced",
        });
    }
    let mut outcome = Outcome::new(done.wall, enforced(env, &spec, seccomp), None);
    outcome.exit_code = done.exit_code;
    outcome.signal = done.signal;
    if done.timed_out {
        outcome.killed_by = Some(KilledBy::Timeout);
        outcome.exit_code = crate::exit::TIMEOUT;
    }
    Ok(outcome)
}

/// The bundle description of the Envelope, and the seccomp report when a
/// filter is part of it.
fn bundle(
    env: &Envelope,
) -> Result<(BundleSpec, Option<nucleus_seccomp::SeccompReport>), RunError> {
    let mut spec = BundleSpec::new(env.command.clone());
    spec.env = environment(env);
    spec.cwd = env.workdir.clone();
    let user = env.user.unwrap_or(crate::UserSpec { uid: 0, gid: 0 });
    (spec.uid, spec.gid) = (user.uid, user.gid);
    spec.hostname = Some(env.hostname.clone().unwrap_or_else(|| "nucleus".to_owned()));
    spec.root = match &env.rootfs.base {
        nucleus_rootfs::Base::Host => RootSpec::HostReadOnly,
        nucleus_rootfs::Base::Directory(dir) => RootSpec::Directory(dir.clone()),
    };
    spec.mounts = env.rootfs.mounts.iter().map(mount).collect();
    spec.readonly_root = env.rootfs.readonly_root;
    spec.network = match env.network {
        NetworkMode::None => Network::None,
        NetworkMode::Host => Network::Host,
    };
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
    spec.memory_limit = env.limits.memory;
    spec.cpu_quota = env.limits.cpus.map(|cpus| CpuQuota {
        quota: (cpus * 100_000.0) as i64,
        period: 100_000,
    });
    spec.pids_limit = env.limits.pids.map(|p| p as i64);
    // The profile is read and checked once; the bundle gets exactly what the
    // report describes.
    let seccomp = match env.seccomp.profile(spec.capabilities.clone())? {
        Some(profile) => {
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
    debug_assert!(env.seccomp.mode == SeccompMode::Off || seccomp.is_some());
    Ok((spec, seccomp))
}

fn mount(m: &nucleus_rootfs::MountSpec) -> MountSpec {
    MountSpec {
        source: m.source.clone(),
        destination: m.destination.clone(),
        kind: match m.kind {
            nucleus_rootfs::MountKind::Bind => MountKind::Bind,
            nucleus_rootfs::MountKind::RoBind => MountKind::RoBind,
            nucleus_rootfs::MountKind::Tmpfs => MountKind::Tmpfs,
        },
    }
}

/// The workload's environment as `NAME=VALUE` lines.
fn environment(env: &Envelope) -> Vec<String> {
    crate::prepare::environment(env)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn enforced(
    env: &Envelope,
    spec: &BundleSpec,
    seccomp: Option<nucleus_seccomp::SeccompReport>,
) -> Enforced {
    let mut namespaces = vec!["pid", "mount", "uts", "ipc"];
    if env.network == NetworkMode::None {
        namespaces.push("network");
    }
    Enforced {
        namespaces: namespaces.into_iter().map(str::to_owned).collect(),
        userns: "gvisor".to_owned(),
        uid_map: Vec::new(),
        gid_map: Vec::new(),
        uid: spec.uid,
        gid: spec.gid,
        capabilities: spec.capabilities.clone(),
        no_new_privs: true,
        readonly_root: spec.readonly_root,
        landlock: LandlockEnforced::off(),
        seccomp,
        limits: None,
        rlimits: env.rlimits.effective().unwrap_or_default(),
        runtime: Decision::Gvisor,
    }
}

//! [`BundleSpec`]: the plain-data description of one gVisor sandbox, which
//! the runner fills from its Envelope and [`to_oci_config`](crate::to_oci_config)
//! turns into an OCI `config.json`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use nucleus_rootfs::{MountKind, MountSpec};
use oci_spec::runtime::{Capability, PosixRlimitType};
use serde::{Deserialize, Serialize};

use crate::error::GvisorError;

/// What one gVisor sandbox runs and sees. Plain data: no file descriptors,
/// no syscalls. Defaults (from [`BundleSpec::new`] and serde) are the
/// secure ones: host view read-only, read-only root, loopback-only network,
/// no capabilities, `no_new_privileges`.
///
/// ```
/// use nucleus_gvisor::BundleSpec;
/// use nucleus_rootfs::MountSpec;
/// let spec = BundleSpec {
///     env: vec!["PATH=/usr/bin:/bin".into()],
///     mounts: vec!["/srv/data:/data".parse::<MountSpec>()?.read_only()],
///     ..BundleSpec::new(["/bin/sh", "-c", "ls /data"])
/// };
/// spec.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    /// The command and its arguments (`args[0]` is resolved with `PATH` from `env`).
    pub args: Vec<String>,
    /// The whole environment, `KEY=VALUE`; nothing else is passed.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory inside the sandbox (absolute).
    #[serde(default = "root_dir")]
    pub cwd: PathBuf,
    /// User id of the workload inside the sandbox.
    #[serde(default)]
    pub uid: u32,
    /// Group id of the workload inside the sandbox.
    #[serde(default)]
    pub gid: u32,
    /// Hostname inside the sandbox (its own UTS namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// What `/` is.
    #[serde(default)]
    pub root: RootSpec,
    /// Extra mounts, in order, after the built-in ones: the native view's
    /// own [`MountSpec`]s. A bind's source may here be relative: it is then
    /// below the run directory (see
    /// [`Runsc::prepare`](crate::Runsc::prepare)). A writable mount is
    /// `noexec` unless [`MountSpec::exec`]; a read-only bind keeps its
    /// source's.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Whether `/` is read-only. With [`RootSpec::HostReadOnly`] and a
    /// writable root, writes to `/` go to memory (`--overlay2 root:memory`).
    #[serde(default = "yes")]
    pub readonly_root: bool,
    /// Which network the sandbox gets.
    #[serde(default)]
    pub network: Network,
    /// Resource limits (`setrlimit`) of the workload.
    #[serde(default)]
    pub rlimits: Vec<RlimitSpec>,
    /// Capabilities kept (`CAP_NET_BIND_SERVICE` or `net_bind_service`); empty by default.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `no_new_privs` for the workload.
    #[serde(default = "yes")]
    pub no_new_privileges: bool,
    /// The workload's stdin, stdout and stderr are the caller's terminal
    /// (`process.terminal`): the sentry makes it the workload's controlling
    /// terminal, so `isatty` holds inside. Only when all three are one
    /// terminal: output redirected elsewhere must not go to it.
    #[serde(default)]
    pub terminal: bool,
    /// An OCI `linux.seccomp` object (e.g. from `nucleus-seccomp`'s
    /// `to_oci_json`), enforced by gVisor's sentry when runsc supports
    /// `--oci-seccomp`; see [`SeccompStatus`](crate::SeccompStatus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<serde_json::Value>,
    /// cgroup path handed to runsc (`linux.cgroupsPath`). A relative path is
    /// created below runsc's own cgroup in every hierarchy. When limits are
    /// set and this is `None`, [`Runsc::run`](crate::Runsc::run) uses
    /// `nucleus-gvisor-<container id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// CPU bandwidth: `quota` microseconds per `period` microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<CpuQuota>,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Paths hidden behind an empty read-only file or directory (the
    /// credentials a host keeps in `/etc`); see [`MaskedPath`].
    #[serde(default)]
    pub masked: Vec<MaskedPath>,
}

/// One path hidden from the workload: a file is covered by an empty
/// read-only file, a directory by an empty read-only tmpfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedPath {
    /// The path inside the sandbox (absolute).
    pub path: PathBuf,
    /// Whether it is a directory.
    pub is_dir: bool,
}

fn root_dir() -> PathBuf {
    PathBuf::from("/")
}

fn yes() -> bool {
    true
}

/// What the sandbox's `/` is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootSpec {
    /// An empty root with the host's `/usr`, `/bin`, `/sbin`, `/lib*` and
    /// `/etc` bound read-only (symlinked ones, as on merged-`/usr` systems,
    /// become the same symlinks), like the native sandbox's view.
    #[default]
    HostReadOnly,
    /// This host directory (absolute) is the root.
    Directory(PathBuf),
}

/// The sandbox's network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// Loopback only (`runsc --network none`, own network namespace).
    #[default]
    None,
    /// The host's network stack (`runsc --network host`): only by explicit choice.
    Host,
}

impl Network {
    /// The value of `runsc --network`.
    pub fn runsc_flag(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// One `setrlimit` limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitSpec {
    /// `RLIMIT_NOFILE`, or `nofile`.
    pub resource: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit (at least `soft`).
    pub hard: u64,
}

/// CPU bandwidth limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuQuota {
    /// Microseconds of CPU time per period (positive).
    pub quota: i64,
    /// Period in microseconds (1,000 to 1,000,000).
    pub period: u64,
}

/// Destinations the translation mounts itself.
const BUILTIN_DESTINATIONS: [&str; 3] = ["/proc", "/dev", "/sys"];

impl BundleSpec {
    /// A spec running `args` with the secure defaults and an empty environment.
    pub fn new<I, S>(args: I) -> BundleSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        BundleSpec {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: root_dir(),
            uid: 0,
            gid: 0,
            hostname: None,
            root: RootSpec::HostReadOnly,
            mounts: Vec::new(),
            readonly_root: true,
            network: Network::None,
            rlimits: Vec::new(),
            capabilities: Vec::new(),
            no_new_privileges: true,
            terminal: false,
            seccomp: None,
            cgroup_path: None,
            memory_limit: None,
            cpu_quota: None,
            pids_limit: None,
            masked: Vec::new(),
        }
    }

    /// Whether any cgroup limit is set.
    pub fn has_limits(&self) -> bool {
        self.memory_limit.is_some() || self.cpu_quota.is_some() || self.pids_limit.is_some()
    }

    /// Checks every field without touching the host. Runs in the parent.
    pub fn validate(&self) -> Result<(), GvisorError> {
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(invalid("args", "the command is empty".into()));
        }
        for a in &self.args {
            no_nul("args", a)?;
        }
        for e in &self.env {
            no_nul("env", e)?;
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(invalid("env", format!("{e:?} is not KEY=VALUE")));
            }
        }
        check_abs("cwd", &self.cwd)?;
        if let Some(h) = &self.hostname {
            check_hostname(h)?;
        }
        if let RootSpec::Directory(dir) = &self.root {
            check_abs("root", dir)?;
        }
        self.validate_mounts()?;
        for m in &self.masked {
            check_abs("masked", &m.path)?;
        }
        for r in &self.rlimits {
            rlimit_type(r)?;
        }
        for c in &self.capabilities {
            capability(c)?;
        }
        self.validate_cgroup()
    }

    fn validate_mounts(&self) -> Result<(), GvisorError> {
        let mut seen = HashSet::new();
        for m in &self.mounts {
            check_abs("mounts.destination", &m.destination)?;
            let dest = m.destination.as_path();
            let builtin = BUILTIN_DESTINATIONS.iter().any(|b| dest.starts_with(b));
            if dest == Path::new("/") || builtin {
                return Err(invalid(
                    "mounts.destination",
                    format!("{} is mounted by the sandbox itself", dest.display()),
                ));
            }
            if !seen.insert(dest) {
                return Err(invalid(
                    "mounts.destination",
                    format!("{} is mounted twice", dest.display()),
                ));
            }
            match (m.kind, &m.source) {
                (MountKind::Tmpfs, None) => {}
                (MountKind::Tmpfs, Some(s)) => {
                    return Err(invalid(
                        "mounts.source",
                        format!(
                            "tmpfs at {} takes no source, got {}",
                            dest.display(),
                            s.display()
                        ),
                    ))
                }
                (_, Some(s)) => check_abs("mounts.source", s)?,
                (_, None) => {
                    return Err(invalid(
                        "mounts.source",
                        format!("bind at {} needs a source", dest.display()),
                    ))
                }
            }
        }
        Ok(())
    }

    fn validate_cgroup(&self) -> Result<(), GvisorError> {
        if let Some(p) = &self.cgroup_path {
            no_nul("cgroup_path", p)?;
            let bad = p.is_empty()
                || Path::new(p)
                    .components()
                    .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
            if bad {
                return Err(invalid(
                    "cgroup_path",
                    format!("{p:?} is not a clean cgroup path"),
                ));
            }
        }
        if let Some(m) = self.memory_limit {
            if m == 0 || i64::try_from(m).is_err() {
                return Err(invalid("memory_limit", format!("{m} is out of range")));
            }
        }
        if let Some(CpuQuota { quota, period }) = self.cpu_quota {
            if quota <= 0 || !(1_000..=1_000_000).contains(&period) {
                return Err(invalid(
                    "cpu_quota",
                    format!("{quota}/{period}: quota must be positive, period 1000..=1000000 us"),
                ));
            }
        }
        if let Some(p) = self.pids_limit {
            if p <= 0 {
                return Err(invalid("pids_limit", format!("{p} is not positive")));
            }
        }
        Ok(())
    }
}

pub(crate) fn invalid(field: &'static str, reason: String) -> GvisorError {
    GvisorError::InvalidSpec { field, reason }
}

fn no_nul(field: &'static str, s: &str) -> Result<(), GvisorError> {
    if s.contains('\0') {
        return Err(invalid(field, format!("{s:?} contains a NUL byte")));
    }
    Ok(())
}

fn check_abs(field: &'static str, p: &Path) -> Result<(), GvisorError> {
    let clean = p.is_absolute()
        && !p.as_os_str().as_encoded_bytes().contains(&0)
        && !p.components().any(|c| c == Component::ParentDir);
    if !clean {
        return Err(invalid(
            field,
            format!("{} is not an absolute path without ..", p.display()),
        ));
    }
    Ok(())
}

fn check_hostname(h: &str) -> Result<(), GvisorError> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        return Err(invalid(
            "hostname",
            format!("{h:?} is not a valid hostname"),
        ));
    }
    Ok(())
}

/// The OCI rlimit type of `r`, checking `soft <= hard`.
pub(crate) fn rlimit_type(r: &RlimitSpec) -> Result<PosixRlimitType, GvisorError> {
    let upper = r.resource.to_ascii_uppercase();
    let name = if upper.starts_with("RLIMIT_") {
        upper
    } else {
        format!("RLIMIT_{upper}")
    };
    let typ = PosixRlimitType::from_str(&name)
        .map_err(|_| invalid("rlimits", format!("unknown resource {:?}", r.resource)))?;
    if r.soft > r.hard {
        return Err(invalid(
            "rlimits",
            format!("{name}: soft {} is above hard {}", r.soft, r.hard),
        ));
    }
    Ok(typ)
}

/// The OCI capability named `name` (`CAP_CHOWN`, `chown`, `cap_chown`).
pub(crate) fn capability(name: &str) -> Result<Capability, GvisorError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare)
        .map_err(|_| invalid("capabilities", format!("unknown capability {name:?}")))
}

//! What the judge reads of a doctor report: a lenient view of the JSON the
//! layer crates' probes serialize to (every field defaults, unknown fields
//! are ignored), so that a report saved on another machine, or edited by a
//! test, is judged the same way as a fresh one.

use super::tries::Launch;
use serde::Deserialize;

/// The facts of one report.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Facts {
    /// `/proc/sys/kernel/osrelease`.
    pub(crate) kernel: String,
    /// `nucleus_ns::probe`.
    pub(crate) namespaces: Namespaces,
    /// `nucleus_idmap::probe`.
    pub(crate) idmap: Idmap,
    /// `nucleus_rootfs::probe`.
    pub(crate) rootfs: Rootfs,
    /// `nucleus_landlock_policy::probe`.
    pub(crate) landlock: Landlock,
    /// `nucleus_seccomp::probe`.
    pub(crate) seccomp: Seccomp,
    /// `nucleus_cgroup::probe`.
    pub(crate) cgroup: Cgroup,
    /// `nucleus_gvisor::probe_with`.
    pub(crate) gvisor: Gvisor,
    /// `nucleus_runner::probe_envelope`.
    pub(crate) envelope: Envelope,
    /// `doctor --bind PATH` tries.
    pub(crate) binds: Vec<Bind>,
    /// `nucleus_wasm::probe`.
    pub(crate) wasm: Wasm,
    /// The kernel lockdown state.
    pub(crate) lockdown: Lockdown,
    /// The real launches (`tries.rs`).
    pub(crate) launches: Vec<Launch>,
}

/// Namespaces.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Namespaces {
    /// The namespace types the kernel offers.
    pub(crate) available: Vec<String>,
}

/// User namespaces and id maps.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Idmap {
    /// `kernel.unprivileged_userns_clone`.
    pub(crate) unprivileged_userns_clone: Option<bool>,
    /// `user.max_user_namespaces`.
    pub(crate) max_user_namespaces: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns`.
    pub(crate) apparmor_restrict_unprivileged_userns: Option<bool>,
    /// Whether unprivileged users may create user namespaces.
    pub(crate) unprivileged_userns: bool,
    /// `newuidmap` on `PATH`.
    pub(crate) newuidmap: Option<String>,
    /// `newgidmap` on `PATH`.
    pub(crate) newgidmap: Option<String>,
    /// Who was probed for.
    pub(crate) caller: Caller,
    /// The caller's subuid range.
    pub(crate) subuid: Option<Range>,
    /// The caller's subgid range.
    pub(crate) subgid: Option<Range>,
}

/// The user the report was made for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Caller {
    /// The uid.
    pub(crate) uid: u32,
    /// The user name, when known.
    pub(crate) name: Option<String>,
}

impl Caller {
    /// The name, else the uid.
    pub(crate) fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }
}

/// A subordinate id range.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Range {
    /// The first host id.
    pub(crate) start: u32,
    /// How many.
    pub(crate) count: u32,
}

/// Mount features.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Rootfs {
    /// `mount_setattr(2)` exists.
    pub(crate) mount_setattr: bool,
}

/// Landlock.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Landlock {
    /// `enabled`, `disabled-at-boot` or `not-built-in`.
    pub(crate) availability: String,
    /// The kernel's ABI.
    pub(crate) abi: Option<u8>,
    /// The ABI the default policy is vetted against.
    pub(crate) vetted_abi: u8,
    /// Filesystem rights the kernel restricts.
    pub(crate) fs: Vec<String>,
    /// TCP port rules.
    pub(crate) tcp: bool,
    /// Scopes.
    pub(crate) scopes: Vec<String>,
}

/// seccomp.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Seccomp {
    /// Filters can be installed.
    pub(crate) filter: bool,
    /// `SECCOMP_RET_KILL_PROCESS`.
    pub(crate) kill_process: bool,
    /// User notification.
    pub(crate) user_notif: bool,
    /// The actions the kernel offers.
    pub(crate) actions_avail: Vec<String>,
}

/// Cgroups.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Cgroup {
    /// `v2`, `v1`, `hybrid` or `none`.
    pub(crate) version: String,
    /// The controllers the v2 parent offers.
    pub(crate) v2_controllers: Vec<String>,
    /// Every hierarchy and where a sandbox's cgroup would be made.
    pub(crate) places: Vec<Place>,
    /// Why discovery failed.
    pub(crate) error: Option<String>,
}

/// One cgroup hierarchy.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Place {
    /// Its controllers (`unified` for v2).
    pub(crate) controllers: Vec<String>,
    /// The parent cgroup.
    pub(crate) parent: String,
    /// Writable by the caller.
    pub(crate) writable: bool,
}

/// gVisor.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Gvisor {
    /// A working runsc was found.
    pub(crate) found: bool,
    /// Where.
    pub(crate) path: Option<String>,
    /// Its version.
    pub(crate) version: Option<String>,
    /// The platforms it lists.
    pub(crate) platforms: Vec<String>,
    /// The platform a default launch uses.
    pub(crate) chosen_platform: Option<String>,
    /// Why not usable.
    pub(crate) error: Option<String>,
}

/// The default Envelope, as this caller would get it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Envelope {
    /// The uid map, or why there is none.
    pub(crate) uid_map: Option<Result<Vec<String>, String>>,
    /// `sysctl` or `seccomp`.
    pub(crate) memfd_noexec: Option<String>,
    /// Default Landlock rights this kernel cannot enforce.
    pub(crate) landlock_dropped: Option<Result<Vec<String>, String>>,
}

/// One `--bind PATH` try.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Bind {
    /// The path.
    pub(crate) path: String,
    /// `idmapped`, `not needed ...`, or why not.
    pub(crate) idmap: String,
}

/// The WASI host.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Wasm {
    /// The architecture.
    pub(crate) arch: String,
    /// The JIT works.
    pub(crate) jit: bool,
    /// Why not.
    pub(crate) error: Option<String>,
    /// WASI versions.
    pub(crate) wasi: Vec<String>,
}

/// Kernel lockdown, as gathered by the doctor.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub(crate) struct Lockdown {
    /// `none`, `integrity` or `confidentiality`, when it could be read.
    pub(crate) mode: Option<String>,
    /// Why it could not be read.
    pub(crate) error: Option<String>,
    /// Whether securityfs is mounted at `/sys/kernel/security`.
    pub(crate) securityfs_mounted: bool,
}

impl Facts {
    /// Whether the report was made for root.
    pub(crate) fn root(&self) -> bool {
        self.idmap.caller.uid == 0
    }

    /// The native launch try, if one was made.
    pub(crate) fn native_try(&self) -> Option<&Launch> {
        self.launches.iter().find(|l| l.runtime == "native")
    }

    /// The gVisor try on `platform`, if one was made.
    pub(crate) fn gvisor_try(&self, platform: &str) -> Option<&Launch> {
        self.launches
            .iter()
            .find(|l| l.runtime == "gvisor" && l.platform.as_deref() == Some(platform))
    }
}

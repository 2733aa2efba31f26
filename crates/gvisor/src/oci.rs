//! Translating a [`BundleSpec`] into an OCI runtime `config.json`.

use std::path::{Path, PathBuf};

use nucleus_rootfs::{MountKind, HOST_SYSTEM_DIRS};
use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxSeccomp, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder,
    Process, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use oci_spec::OciSpecError;
use serde::Serialize;

use crate::error::GvisorError;
use crate::spec::{capability, invalid, rlimit_type, BundleSpec, Network, RootSpec};

/// The OCI runtime spec version written to `config.json`.
pub const OCI_VERSION: &str = "1.0.2";

/// `root.path` of a bundle whose root is [`RootSpec::HostReadOnly`].
pub const ROOTFS_DIR: &str = "rootfs";

/// An OCI runtime `config.json`, as [`to_oci_config`] makes it: serialize
/// it (it is `Serialize`) or write it with [`OciConfig::to_json`].
///
/// ```
/// use nucleus_gvisor::{to_oci_config, BundleSpec, HostView};
/// let config = to_oci_config(&BundleSpec::new(["/bin/true"]), &HostView::merged_usr())?;
/// let json: serde_json::Value = serde_json::from_str(&config.to_json()?).unwrap();
/// assert_eq!(json["root"]["path"], "rootfs");
/// # Ok::<(), nucleus_gvisor::GvisorError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct OciConfig(Spec);

impl OciConfig {
    /// The `config.json` text.
    pub fn to_json(&self) -> Result<String, GvisorError> {
        serde_json::to_string(&self.0).map_err(|source| GvisorError::SerializeConfig { source })
    }

    /// The OCI types, for this crate's tests.
    #[cfg(test)]
    pub(crate) fn spec(&self) -> &Spec {
        &self.0
    }
}

/// What the host's top-level system directories
/// ([`HOST_SYSTEM_DIRS`](nucleus_rootfs::HOST_SYSTEM_DIRS)) are: the facts the
/// [`RootSpec::HostReadOnly`] translation needs, gathered once so the
/// translation itself stays pure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostView {
    /// The directories that exist, in
    /// [`HOST_SYSTEM_DIRS`](nucleus_rootfs::HOST_SYSTEM_DIRS) order.
    pub entries: Vec<HostEntry>,
    /// An empty, read-only host file bound over masked files
    /// ([`BundleSpec::masked`](crate::BundleSpec::masked)); required when a
    /// masked path is a file.
    pub empty_file: Option<PathBuf>,
}

/// One host directory of a [`HostView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostEntry {
    /// A real directory: bound read-only.
    Dir(PathBuf),
    /// A symlink (`/bin -> usr/bin`): the same symlink is made in the rootfs.
    Symlink {
        /// The host path.
        path: PathBuf,
        /// Where it points, as read.
        target: PathBuf,
    },
}

impl HostView {
    /// Looks at [`HOST_SYSTEM_DIRS`](nucleus_rootfs::HOST_SYSTEM_DIRS) on
    /// this host (`lstat` and `readlink` only), as the native view does.
    pub fn scan() -> HostView {
        HostView::scan_dirs(HOST_SYSTEM_DIRS.iter().map(Path::new))
    }

    /// Looks at the given absolute paths; absent ones and ones that are
    /// neither directories nor symlinks are left out.
    pub fn scan_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> HostView {
        let entries = dirs
            .into_iter()
            .filter_map(|dir| {
                let meta = std::fs::symlink_metadata(dir).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(dir).ok()?;
                    Some(HostEntry::Symlink {
                        path: dir.to_owned(),
                        target,
                    })
                } else {
                    meta.is_dir().then(|| HostEntry::Dir(dir.to_owned()))
                }
            })
            .collect();
        HostView {
            entries,
            empty_file: None,
        }
    }

    /// A merged-`/usr` layout (`/bin`, `/sbin`, `/lib`, `/lib64` link into
    /// `/usr`), for tests and documentation.
    pub fn merged_usr() -> HostView {
        let link = |p: &str, t: &str| HostEntry::Symlink {
            path: p.into(),
            target: t.into(),
        };
        HostView {
            entries: vec![
                HostEntry::Dir("/usr".into()),
                link("/bin", "usr/bin"),
                link("/sbin", "usr/sbin"),
                link("/lib", "usr/lib"),
                link("/lib64", "usr/lib64"),
                HostEntry::Dir("/etc".into()),
            ],
            empty_file: None,
        }
    }
}

/// Translates `spec` into an OCI runtime spec, after [`BundleSpec::validate`].
/// Pure: the host facts come in `host` (used only for
/// [`RootSpec::HostReadOnly`]).
///
/// The result has: `process` (args, env, cwd, uid/gid, rlimits, the kept
/// capabilities as bounding/effective/permitted, no inheritable or ambient,
/// `noNewPrivileges`), `root` (`rootfs` or the given directory, `readonly`),
/// `hostname`, `mounts` (`/proc`, a tmpfs `/dev`, read-only `/sys`, the host
/// directories read-only, a tmpfs `/tmp` unless the spec mounts `/tmp`, then
/// the spec's mounts), and `linux` (pid, ipc, uts and mount namespaces, plus
/// network when the network is [`Network::None`]; `cgroupsPath`, memory/cpu/
/// pids resources, `seccomp`).
///
/// ```
/// use nucleus_gvisor::{to_oci_config, BundleSpec, HostView};
/// let spec = BundleSpec::new(["/bin/echo", "hi"]);
/// let config = to_oci_config(&spec, &HostView::merged_usr())?;
/// let json = serde_json::to_value(&config).unwrap();
/// assert_eq!(json["process"]["args"], serde_json::json!(["/bin/echo", "hi"]));
/// # Ok::<(), nucleus_gvisor::GvisorError>(())
/// ```
pub fn to_oci_config(spec: &BundleSpec, host: &HostView) -> Result<OciConfig, GvisorError> {
    spec.validate()?;
    if host.empty_file.is_none() && spec.masked.iter().any(|m| !m.is_dir) {
        return Err(invalid(
            "masked",
            "masking a file needs an empty file to bind over it (HostView::empty_file)".into(),
        ));
    }
    if spec.has_limits() && spec.cgroup_path.is_none() {
        return Err(invalid(
            "cgroup_path",
            "memory/cpu/pids limits need a cgroup path: runsc applies none without one".into(),
        ));
    }
    let root_path = match &spec.root {
        RootSpec::HostReadOnly => PathBuf::from(ROOTFS_DIR),
        RootSpec::Directory(dir) => dir.clone(),
    };
    let root = RootBuilder::default()
        .path(root_path)
        .readonly(spec.readonly_root)
        .build()
        .map_err(oci("root"))?;
    // Built from `Spec::default()` with every field set or cleared: the
    // oci-spec builders fill unset fields from defaults meant for youki
    // (hostname "youki", masked paths, default mounts).
    let mut config = Spec::default();
    config
        .set_version(OCI_VERSION.to_owned())
        .set_root(Some(root))
        .set_process(Some(process(spec)?))
        .set_hostname(spec.hostname.clone())
        .set_mounts(Some(mounts(spec, host).map_err(oci("mounts"))?))
        .set_annotations(None)
        .set_hooks(None)
        .set_linux(Some(linux(spec)?));
    Ok(OciConfig(config))
}

fn oci(what: &'static str) -> impl Fn(OciSpecError) -> GvisorError {
    move |source| GvisorError::Oci {
        what,
        source: Box::new(source),
    }
}

fn process(spec: &BundleSpec) -> Result<Process, GvisorError> {
    let user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        .build()
        .map_err(oci("process.user"))?;
    let kept: Capabilities = spec
        .capabilities
        .iter()
        .map(|c| capability(c))
        .collect::<Result<_, _>>()?;
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(kept.clone())
        .effective(kept.clone())
        .permitted(kept)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(oci("process.capabilities"))?;
    let rlimits = spec
        .rlimits
        .iter()
        .map(|r| {
            PosixRlimitBuilder::default()
                .typ(rlimit_type(r)?)
                .soft(r.soft)
                .hard(r.hard)
                .build()
                .map_err(oci("process.rlimits"))
        })
        .collect::<Result<Vec<PosixRlimit>, _>>()?;
    ProcessBuilder::default()
        .terminal(spec.terminal)
        .user(user)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(spec.cwd.clone())
        .capabilities(caps)
        .rlimits(rlimits)
        .no_new_privileges(spec.no_new_privileges)
        .build()
        .map_err(oci("process"))
}

fn mount(dest: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
}

const RO_BIND: [&str; 4] = ["rbind", "ro", "nosuid", "nodev"];
// Writable places are no-exec, as Landlock makes them natively.
const RW_BIND: [&str; 5] = ["rbind", "rw", "nosuid", "nodev", "noexec"];
const RW_BIND_EXEC: [&str; 4] = ["rbind", "rw", "nosuid", "nodev"];
const TMPFS: [&str; 4] = ["nosuid", "nodev", "noexec", "mode=1777"];
const TMPFS_EXEC: [&str; 3] = ["nosuid", "nodev", "mode=1777"];
const MASK_FILE: [&str; 5] = ["bind", "ro", "nosuid", "nodev", "noexec"];
const MASK_DIR: [&str; 6] = ["ro", "nosuid", "nodev", "noexec", "mode=0755", "size=4k"];

fn mounts(spec: &BundleSpec, host: &HostView) -> Result<Vec<Mount>, OciSpecError> {
    let mut out = vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        // gVisor's own /dev/shm allows exec; natively it is no-exec.
        mount("/dev/shm", "tmpfs", Path::new("tmpfs"), &TMPFS)?,
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ];
    if spec.root == RootSpec::HostReadOnly {
        for entry in &host.entries {
            if let HostEntry::Dir(dir) = entry {
                let dest = dir.to_string_lossy();
                out.push(mount(&dest, "bind", dir, &RO_BIND)?);
            }
        }
    }
    if !spec
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("/tmp"))
    {
        out.push(mount("/tmp", "tmpfs", Path::new("tmpfs"), &TMPFS)?);
    }
    for m in &spec.mounts {
        let dest = m.destination.to_string_lossy();
        let tmpfs = Path::new("tmpfs");
        out.push(match (m.kind, &m.source, m.exec) {
            (MountKind::Tmpfs, _, false) => mount(&dest, "tmpfs", tmpfs, &TMPFS)?,
            (MountKind::Tmpfs, _, true) => mount(&dest, "tmpfs", tmpfs, &TMPFS_EXEC)?,
            (MountKind::Bind, Some(src), false) => mount(&dest, "bind", src, &RW_BIND)?,
            (MountKind::Bind, Some(src), true) => mount(&dest, "bind", src, &RW_BIND_EXEC)?,
            (MountKind::RoBind, Some(src), _) => mount(&dest, "bind", src, &RO_BIND)?,
            // validate() refused binds without a source.
            (_, None, _) => continue,
        });
    }
    for masked in &spec.masked {
        let dest = masked.path.to_string_lossy();
        out.push(match (&host.empty_file, masked.is_dir) {
            (_, true) => mount(&dest, "tmpfs", Path::new("tmpfs"), &MASK_DIR)?,
            (Some(empty), false) => mount(&dest, "bind", empty, &MASK_FILE)?,
            // to_oci_config refused file masks without an empty file.
            (None, false) => continue,
        });
    }
    Ok(out)
}

fn linux(spec: &BundleSpec) -> Result<Linux, GvisorError> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if spec.network == Network::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    let namespaces = kinds
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(oci("linux.namespaces"))?;
    let resources = if spec.has_limits() {
        Some(resources(spec).map_err(oci("linux.resources"))?)
    } else {
        None
    };
    let seccomp = match &spec.seccomp {
        Some(value) => Some(
            serde_json::from_value::<LinuxSeccomp>(value.clone())
                .map_err(|source| GvisorError::InvalidSeccomp { source })?,
        ),
        None => None,
    };
    // From `Linux::default()` with every field this crate decides set or
    // cleared (gVisor's /proc and /sys are its own, so no masked paths).
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces))
        .set_cgroups_path(spec.cgroup_path.as_ref().map(PathBuf::from))
        .set_resources(resources)
        .set_seccomp(seccomp)
        .set_masked_paths(None)
        .set_readonly_paths(None)
        .set_devices(None)
        .set_sysctl(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None);
    Ok(linux)
}

fn resources(spec: &BundleSpec) -> Result<LinuxResources, OciSpecError> {
    let mut r = LinuxResourcesBuilder::default();
    if let Some(limit) = spec.memory_limit {
        // validate() checked that it fits.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        r = r.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    if let Some(q) = spec.cpu_quota {
        r = r.cpu(
            LinuxCpuBuilder::default()
                .quota(q.quota)
                .period(q.period)
                .build()?,
        );
    }
    if let Some(limit) = spec.pids_limit {
        r = r.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    r.build()
}

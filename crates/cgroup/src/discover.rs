//! Where cgroups live on this machine and where the caller may create them.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;
use crate::fs;
use crate::limits::LimitMode;

/// Which cgroup layout the machine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupVersion {
    /// Only the unified v2 hierarchy.
    V2,
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controller hierarchies plus a v2 hierarchy (usually at
    /// `/sys/fs/cgroup/unified`) that holds few or no controllers. Limits go
    /// to v1; the v2 cgroup is used to track and kill (`cgroup.kill`).
    Hybrid,
    /// No cgroup hierarchy found.
    None,
}

/// Where and how to create the sandbox's cgroup.
///
/// ```
/// use nucleus_cgroup::{CgroupConfig, LimitMode};
/// let cfg = CgroupConfig { mode: LimitMode::BestEffort, ..CgroupConfig::default() };
/// assert_eq!(cfg.sys_root.to_str(), Some("/sys/fs/cgroup"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupConfig {
    /// Cgroup path, relative to each hierarchy's root, under which to create
    /// the sandbox's cgroup (like `--cgroup-parent`, e.g.
    /// `/user.slice/user-1000.slice/user@1000.service/nucleus.slice`).
    /// `None`: the caller's own cgroup, read from `proc_self_cgroup`, in
    /// every hierarchy. It must exist; it is never created.
    pub root: Option<PathBuf>,
    /// Directory name prefix; a unique suffix (pid and counter) is added.
    pub name_prefix: String,
    /// Fail or carry on when a limit cannot be set.
    pub mode: LimitMode,
    /// Where cgroupfs is mounted.
    pub sys_root: PathBuf,
    /// The caller's cgroup membership file.
    pub proc_self_cgroup: PathBuf,
    /// On a hybrid machine, also create a cgroup in the v2 hierarchy to kill
    /// with `cgroup.kill` and to clone into with `CLONE_INTO_CGROUP`.
    pub use_unified: bool,
}

impl CgroupConfig {
    /// Checks what can be checked without the machine: a cgroup parent
    /// ([`CgroupConfig::root`]) never climbs out with `..`.
    ///
    /// ```
    /// use nucleus_cgroup::CgroupConfig;
    /// let cfg = CgroupConfig { root: Some("/a/../b".into()), ..CgroupConfig::default() };
    /// assert!(cfg.validate().is_err());
    /// assert!(CgroupConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), CgroupError> {
        self.root.as_deref().map_or(Ok(()), check_root)
    }
}

impl Default for CgroupConfig {
    fn default() -> Self {
        CgroupConfig {
            root: None,
            name_prefix: "nucleus-".to_owned(),
            mode: LimitMode::Required,
            sys_root: PathBuf::from("/sys/fs/cgroup"),
            proc_self_cgroup: PathBuf::from("/proc/self/cgroup"),
            use_unified: true,
        }
    }
}

/// The v1 controllers this crate uses.
pub(crate) const V1_CONTROLLERS: &[&str] =
    &["memory", "cpu", "cpuacct", "pids", "freezer", "blkio"];

/// One line of `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Membership {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Parses `/proc/self/cgroup` (`ID:CONTROLLERS:PATH` lines); the v2 line has
/// empty controllers. Named v1 hierarchies (`name=systemd`) are dropped.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            if ctrls.starts_with("name=") {
                return None;
            }
            Some(Membership {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// A v1 hierarchy we may create in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct V1Place {
    /// Controllers of this hierarchy that we use.
    pub controllers: Vec<&'static str>,
    /// Parent directory for the new cgroup.
    pub parent: PathBuf,
}

/// The layout found by [`discover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub version: CgroupVersion,
    /// Parent directory in the v2 hierarchy, when there is one.
    pub unified: Option<PathBuf>,
    /// v1 hierarchies.
    pub v1: Vec<V1Place>,
}

fn join_cgroup(base: &Path, cg: &Path) -> PathBuf {
    let rel: PathBuf = cg
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        return base.to_owned();
    }
    base.join(rel)
}

fn check_root(root: &Path) -> Result<(), CgroupError> {
    let bad = |reason| CgroupError::InvalidCgroupParent {
        path: root.to_owned(),
        reason,
    };
    if root.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad("must not contain '..'"));
    }
    Ok(())
}

/// Finds the hierarchies and the parent directories to create in.
pub(crate) fn discover(cfg: &CgroupConfig) -> Result<Layout, CgroupError> {
    if let Some(root) = &cfg.root {
        check_root(root)?;
    }
    let text = fs::read_to_string(&cfg.proc_self_cgroup)?;
    let members = parse_proc_cgroup(&text);
    let own = |m: &Membership| cfg.root.clone().unwrap_or_else(|| m.path.clone());
    let v2_member = members.iter().find(|m| m.controllers.is_empty());

    if cfg.sys_root.join("cgroup.controllers").exists() {
        let path = v2_member.map(own).unwrap_or_else(|| PathBuf::from("/"));
        return Ok(Layout {
            version: CgroupVersion::V2,
            unified: Some(join_cgroup(&cfg.sys_root, &path)),
            v1: Vec::new(),
        });
    }
    let v1 = v1_places(cfg, &members, own);
    let unified_mount = cfg.sys_root.join("unified");
    let unified = match v2_member {
        Some(m) if unified_mount.join("cgroup.controllers").exists() => {
            Some(join_cgroup(&unified_mount, &own(m)))
        }
        _ => None,
    };
    let version = match (v1.is_empty(), unified.is_some()) {
        (false, true) => CgroupVersion::Hybrid,
        (false, false) => CgroupVersion::V1,
        (true, true) => CgroupVersion::V2,
        (true, false) => CgroupVersion::None,
    };
    Ok(Layout {
        version,
        unified,
        v1,
    })
}

/// The v1 hierarchies of `members` that hold a controller we use and are
/// mounted under `cfg.sys_root`, with the parent to create in (`own`).
fn v1_places(
    cfg: &CgroupConfig,
    members: &[Membership],
    own: impl Fn(&Membership) -> PathBuf,
) -> Vec<V1Place> {
    let mut v1: Vec<V1Place> = Vec::new();
    for m in members.iter().filter(|m| !m.controllers.is_empty()) {
        let used: Vec<&'static str> = V1_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| m.controllers.iter().any(|mc| mc == c))
            .collect();
        if used.is_empty() {
            continue;
        }
        let joined = cfg.sys_root.join(m.controllers.join(","));
        let mount = if joined.is_dir() {
            joined
        } else {
            cfg.sys_root.join(used[0])
        };
        if !mount.is_dir() {
            continue;
        }
        v1.push(V1Place {
            controllers: used,
            parent: join_cgroup(&mount, &own(m)),
        });
    }
    v1
}

/// One hierarchy and whether the caller may create cgroups in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbePlace {
    /// `unified` for v2, else the v1 controllers (`memory`, `cpu`, ...).
    pub controllers: Vec<String>,
    /// Where a sandbox cgroup would be created (its parent directory).
    pub parent: PathBuf,
    /// The parent exists and is writable by this process.
    pub writable: bool,
}

/// What this machine offers, for `nucleus-run doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupProbe {
    /// The layout.
    pub version: CgroupVersion,
    /// Controllers the v2 parent offers its children (`cgroup.controllers`).
    pub v2_controllers: Vec<String>,
    /// Controllers already enabled for children (`cgroup.subtree_control`).
    pub v2_enabled: Vec<String>,
    /// Every hierarchy and where we would create.
    pub places: Vec<ProbePlace>,
    /// `cgroup.kill` exists (v2, Linux 5.14+): total kill in one write.
    pub cgroup_kill: bool,
    /// `CLONE_INTO_CGROUP` is usable (a v2 hierarchy we may create in;
    /// the kernel has it since 5.7, before `cgroup.kill`).
    pub clone_into_cgroup: bool,
    /// A freezer exists (v1 `freezer` or v2 `cgroup.freeze`).
    pub freezer: bool,
    /// Swap can be limited (`memory.swap.max` or `memory.memsw.*`).
    pub swap_limit: bool,
    /// Why discovery failed, when it did.
    pub error: Option<String>,
}

/// Probes the default locations (`/sys/fs/cgroup`, `/proc/self/cgroup`).
pub fn probe() -> CgroupProbe {
    probe_with(&CgroupConfig::default())
}

/// Probes with explicit paths.
pub fn probe_with(cfg: &CgroupConfig) -> CgroupProbe {
    let mut p = CgroupProbe {
        version: CgroupVersion::None,
        v2_controllers: Vec::new(),
        v2_enabled: Vec::new(),
        places: Vec::new(),
        cgroup_kill: false,
        clone_into_cgroup: false,
        freezer: false,
        swap_limit: false,
        error: None,
    };
    let layout = match discover(cfg) {
        Ok(l) => l,
        Err(e) => {
            p.error = Some(e.to_string());
            return p;
        }
    };
    p.version = layout.version;
    if let Some(parent) = &layout.unified {
        p.v2_controllers = fs::read_words(&parent.join("cgroup.controllers"));
        p.v2_enabled = fs::read_words(&parent.join("cgroup.subtree_control"));
        let writable = parent.is_dir() && crate::sys::writable(parent);
        p.cgroup_kill = parent.join("cgroup.kill").exists()
            || child_has_kill(parent)
            || kernel_at_least(
                &fs::read_opt(Path::new("/proc/sys/kernel/osrelease")).unwrap_or_default(),
                5,
                14,
            );
        p.clone_into_cgroup = writable;
        p.freezer |= parent.join("cgroup.freeze").exists() || parent.join("cgroup.procs").exists();
        p.swap_limit |= p.v2_controllers.iter().any(|c| c == "memory")
            && parent.join("memory.swap.max").exists();
        p.places.push(ProbePlace {
            controllers: vec!["unified".to_owned()],
            parent: parent.clone(),
            writable,
        });
    }
    for place in &layout.v1 {
        p.freezer |= place.controllers.contains(&"freezer");
        p.swap_limit |= place.parent.join("memory.memsw.limit_in_bytes").exists();
        p.places.push(ProbePlace {
            controllers: place.controllers.iter().map(|c| (*c).to_owned()).collect(),
            parent: place.parent.clone(),
            writable: place.parent.is_dir() && crate::sys::writable(&place.parent),
        });
    }
    p
}

/// The root cgroup has no `cgroup.kill`; children do when the kernel has it.
/// Look at any existing child directory to tell.
fn child_has_kill(parent: &Path) -> bool {
    std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .take(64)
        .any(|e| e.path().join("cgroup.kill").exists())
}

/// Whether a kernel release string (`6.18.44-fc`) is at least `major.minor`.
fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn parse_lines() {
        let m = parse_proc_cgroup(HYBRID);
        assert_eq!(m.len(), 6);
        assert_eq!(m[2].controllers, vec!["memory"]);
        assert_eq!(m[2].path, PathBuf::from("/process_api/abc"));
        assert!(m[5].controllers.is_empty());
        let co = parse_proc_cgroup("3:cpu,cpuacct:/a/b\n");
        assert_eq!(co[0].controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn join_strips_root_and_dots() {
        assert_eq!(
            join_cgroup(Path::new("/s/memory"), Path::new("/")),
            PathBuf::from("/s/memory")
        );
        assert_eq!(
            join_cgroup(Path::new("/s/memory"), Path::new("/a/./b")),
            PathBuf::from("/s/memory/a/b")
        );
        assert!(check_root(Path::new("/a/../b")).is_err());
        assert_eq!(
            join_cgroup(Path::new("/s/unified"), Path::new("/")).to_str(),
            Some("/s/unified")
        );
    }

    #[test]
    fn kernel_versions() {
        assert!(kernel_at_least("6.18.44-fc-v769", 5, 14));
        assert!(kernel_at_least("5.14.0", 5, 14));
        assert!(!kernel_at_least("5.13.19", 5, 14));
        assert!(!kernel_at_least("4.19", 5, 14));
        assert!(!kernel_at_least("", 5, 14));
    }
}

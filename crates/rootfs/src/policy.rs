//! What the sandbox sees: the plain-data policy.

use crate::host::{HOST_SYSTEM_DIRS, MASKED_PATHS};
use crate::RootfsError;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// Where the root of the view comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// A fresh tmpfs holding read-only binds of [`RootfsPolicy::host_dirs`].
    #[default]
    Host,
    /// A host directory used as the (read-only) root, e.g. an unpacked image.
    Directory(PathBuf),
}

/// How binds show the ids of their files to a sandbox run by root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindMode {
    /// Idmapped (`MOUNT_ATTR_IDMAP` through the sandbox's user namespace):
    /// root's files show as the sandbox root's, and files the sandbox
    /// creates land as root's.
    #[default]
    Idmap,
    /// As they are on the host: the sandbox's root is an unprivileged host
    /// id, which reaches root's files as any other user would.
    Plain,
}

impl FromStr for BindMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "idmap" => Ok(BindMode::Idmap),
            "plain" => Ok(BindMode::Plain),
            _ => Err(format!("unknown bind mode {s:?}: expected idmap or plain")),
        }
    }
}

/// The kind of a user mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// A writable bind of a host path (`--bind`).
    Bind,
    /// A read-only bind of a host path (`--ro-bind`).
    RoBind,
    /// A fresh, empty tmpfs (`--tmpfs`).
    Tmpfs,
}

/// One user mount: `--bind SRC:DST`, `--ro-bind SRC:DST` or `--tmpfs DST`.
///
/// ```
/// use nucleus_rootfs::{MountKind, MountSpec};
/// let spec: MountSpec = "/srv/data:/data".parse().unwrap();
/// assert_eq!(spec.kind, MountKind::Bind);
/// assert_eq!(spec.clone().read_only().kind, MountKind::RoBind);
/// assert!(!spec.exec && spec.executable().exec); // writable mounts are noexec unless asked
/// let same: MountSpec = "/srv/data".parse().unwrap();
/// assert_eq!(same.destination, std::path::Path::new("/srv/data"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// Bind, read-only bind or tmpfs.
    pub kind: MountKind,
    /// The host path (absent for tmpfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Where it appears inside the sandbox.
    pub destination: PathBuf,
    /// Programs may run from this writable mount (`--bind-exec`); every
    /// other writable bind or tmpfs is `noexec`, so neither `execve` nor the
    /// dynamic loader (`ld.so /w/prog`, an `mmap` with `PROT_EXEC`) can run
    /// what the sandbox wrote there. Read-only binds keep their source's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
}

impl MountSpec {
    /// A tmpfs at `destination`.
    pub fn tmpfs(destination: impl Into<PathBuf>) -> Self {
        Self {
            kind: MountKind::Tmpfs,
            source: None,
            destination: destination.into(),
            exec: false,
        }
    }

    /// The same mount, with programs allowed to run from it.
    #[must_use]
    pub fn executable(mut self) -> Self {
        self.exec = true;
        self
    }

    /// The same bind, read-only.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        if self.kind == MountKind::Bind {
            self.kind = MountKind::RoBind;
        }
        self
    }

    /// Checks the paths: absolute, no `..`, destination not `/`.
    pub fn validate(&self) -> Result<(), RootfsError> {
        if let Some(src) = &self.source {
            if !src.is_absolute() {
                return Err(RootfsError::RelativeSource { path: src.clone() });
            }
        } else if self.kind != MountKind::Tmpfs {
            return Err(RootfsError::InvalidSpec {
                spec: self.destination.display().to_string(),
            });
        }
        normalize_destination(&self.destination)?;
        Ok(())
    }
}

impl FromStr for MountSpec {
    type Err = RootfsError;

    /// Parses `SRC[:DST]` as a writable bind (`DST` defaults to `SRC`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (src, dst) = s.split_once(':').unwrap_or((s, s));
        if src.is_empty() || dst.is_empty() || dst.contains(':') {
            return Err(RootfsError::InvalidSpec { spec: s.to_owned() });
        }
        let spec = Self {
            kind: MountKind::Bind,
            source: Some(PathBuf::from(src)),
            destination: PathBuf::from(dst),
            exec: false,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The filesystem view of a sandbox.
///
/// ```
/// let policy = nucleus_rootfs::RootfsPolicy::default();
/// assert!(policy.readonly_root);
/// assert!(policy.host_dirs.iter().any(|d| d == std::path::Path::new("/usr")));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RootfsPolicy {
    /// A tmpfs with host binds, or a directory as the root.
    pub base: Base,
    /// Host directories bound read-only into a [`Base::Host`] root; missing
    /// ones are skipped, symbolic links are recreated as links (default:
    /// [`HOST_SYSTEM_DIRS`](crate::HOST_SYSTEM_DIRS)).
    pub host_dirs: Vec<PathBuf>,
    /// User mounts, applied in order after the system mounts.
    pub mounts: Vec<MountSpec>,
    /// A `/proc` in the view at all (default). Without one (a WASI host
    /// opens nothing but its preopens), [`fresh_proc`](Self::fresh_proc) is
    /// moot.
    pub proc: bool,
    /// Mount a fresh `/proc` (needs a new pid namespace); otherwise the
    /// host's `/proc` is bound.
    pub fresh_proc: bool,
    /// Build the minimal `/dev`.
    pub dev: bool,
    /// Mount a private tmpfs on `/tmp`.
    pub tmp: bool,
    /// Size cap of `/tmp` and user tmpfs mounts, in bytes (default: the
    /// kernel's, half of RAM).
    pub tmpfs_size: Option<u64>,
    /// Make the root itself read-only once everything is mounted.
    pub readonly_root: bool,
    /// How a root caller's binds show ids (`--bind-mode`): `idmap` (the
    /// default) maps the caller's files to the sandbox's root and back;
    /// `plain` shows them as they are (the sandbox's mapped ids).
    pub bind_mode: BindMode,
    /// Follow symbolic links in bind sources (`--bind-follow-symlinks`);
    /// by default a source that is or passes through one is refused.
    pub bind_follow_symlinks: bool,
    /// Paths hidden behind an empty read-only file or directory (default:
    /// [`MASKED_PATHS`](crate::MASKED_PATHS), credentials of a typical host).
    pub masked_paths: Vec<PathBuf>,
    /// Directories of the view (paths inside it, reached through a user
    /// bind) hidden behind an empty read-only directory after every user
    /// mount, whatever is there on the host: the runner puts its own state
    /// here when a bind would show it. Each directory on the way from the
    /// bind's destination down to a hidden one is pinned (see
    /// [`RootfsPolicy::pins`]). Set at launch, never from a config file.
    #[serde(skip)]
    pub hidden_dirs: Vec<PathBuf>,
}

impl Default for RootfsPolicy {
    fn default() -> Self {
        Self {
            base: Base::Host,
            host_dirs: HOST_SYSTEM_DIRS.into_iter().map(PathBuf::from).collect(),
            mounts: Vec::new(),
            proc: true,
            fresh_proc: true,
            dev: true,
            tmp: true,
            tmpfs_size: None,
            readonly_root: true,
            bind_mode: BindMode::Idmap,
            bind_follow_symlinks: false,
            masked_paths: MASKED_PATHS.into_iter().map(PathBuf::from).collect(),
            hidden_dirs: Vec::new(),
        }
    }
}

impl RootfsPolicy {
    /// Checks every path, without touching the host.
    pub fn validate(&self) -> Result<(), RootfsError> {
        if let Base::Directory(dir) = &self.base {
            if !dir.is_absolute() {
                return Err(RootfsError::RelativeSource { path: dir.clone() });
            }
        }
        for dir in &self.host_dirs {
            normalize_destination(dir)?;
        }
        self.validate_masks()?;
        self.mounts.iter().try_for_each(MountSpec::validate)
    }
}

/// Where a path of the view comes from (see [`RootfsPolicy::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// This host path (through a host directory, a bind, or the root directory).
    Host(PathBuf),
    /// The root's own empty tmpfs: nothing is there.
    Nothing,
    /// A tmpfs filled at run time (a user tmpfs, `/tmp`, `/dev`, `/proc`):
    /// the host cannot tell.
    RunTime,
}

impl RootfsPolicy {
    /// Where the view's absolute path `inside` lives: the last user mount
    /// that covers it, else the root (a host directory of a [`Base::Host`]
    /// root, the root directory of a [`Base::Directory`] one).
    ///
    /// ```
    /// use nucleus_rootfs::{Located, RootfsPolicy};
    /// let policy = RootfsPolicy::default();
    /// assert_eq!(policy.locate("/usr/bin/env".as_ref()), Located::Host("/usr/bin/env".into()));
    /// assert_eq!(policy.locate("/opt/x".as_ref()), Located::Nothing);
    /// assert_eq!(policy.locate("/tmp/x".as_ref()), Located::RunTime);
    /// ```
    pub fn locate(&self, inside: &Path) -> Located {
        if let Some(m) = self
            .mounts
            .iter()
            .rev()
            .find(|m| inside.starts_with(&m.destination))
        {
            let rest = inside.strip_prefix(&m.destination).unwrap_or(inside);
            return match &m.source {
                Some(src) if m.kind != MountKind::Tmpfs => Located::Host(src.join(rest)),
                _ => Located::RunTime,
            };
        }
        let run_time = ["/tmp", "/dev", "/proc"];
        if run_time.iter().any(|d| inside.starts_with(d)) {
            return Located::RunTime;
        }
        match &self.base {
            Base::Directory(dir) => {
                Located::Host(dir.join(inside.strip_prefix("/").unwrap_or(inside)))
            }
            Base::Host if self.host_dirs.iter().any(|d| inside.starts_with(d)) => {
                Located::Host(inside.to_owned())
            }
            Base::Host => Located::Nothing,
        }
    }
}

/// Makes a destination canonical: absolute, no `.` or `..`, not `/`.
pub(crate) fn normalize_destination(path: &Path) -> Result<PathBuf, RootfsError> {
    let invalid = || RootfsError::InvalidDestination {
        path: path.to_owned(),
    };
    if !path.is_absolute() {
        return Err(invalid());
    }
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return Err(invalid()),
        }
    }
    if out == Path::new("/") {
        return Err(invalid());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bind_specs() {
        let spec: MountSpec = "/a:/b".parse().unwrap();
        assert_eq!(spec.source.as_deref(), Some(Path::new("/a")));
        assert_eq!(spec.destination, Path::new("/b"));
        assert!("".parse::<MountSpec>().is_err());
        assert!("/a:".parse::<MountSpec>().is_err());
        assert!("/a:/b:/c".parse::<MountSpec>().is_err());
    }

    #[test]
    fn rejects_relative_and_dotdot() {
        assert!(matches!(
            "rel:/b".parse::<MountSpec>(),
            Err(RootfsError::RelativeSource { .. })
        ));
        assert!(matches!(
            "/a:b".parse::<MountSpec>(),
            Err(RootfsError::InvalidDestination { .. })
        ));
        assert!(matches!(
            "/a:/x/../../etc".parse::<MountSpec>(),
            Err(RootfsError::InvalidDestination { .. })
        ));
        assert!(matches!(
            "/a:/".parse::<MountSpec>(),
            Err(RootfsError::InvalidDestination { .. })
        ));
    }

    #[test]
    fn normalizes_destinations() {
        assert_eq!(
            normalize_destination(Path::new("/a/./b/")).unwrap(),
            Path::new("/a/b")
        );
    }

    #[test]
    fn policy_round_trips_through_json() {
        let mut policy = RootfsPolicy::default();
        policy.mounts.push(MountSpec::tmpfs("/scratch"));
        policy.base = Base::Directory("/srv/root".into());
        let json = serde_json::to_string(&policy).unwrap();
        let back: RootfsPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
        assert!(serde_json::from_str::<RootfsPolicy>(r#"{"bogus":1}"#).is_err());
    }
}

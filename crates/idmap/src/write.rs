//! Writing resolved maps for a child process.

use crate::error::IdmapError;
use crate::mapping::{map_text, maps_id, IdMapping};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The search path used when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who writes the maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum MapWriter {
    /// The parent writes `/proc/PID/uid_map` itself: root, or an
    /// unprivileged caller mapping only its own ids.
    Direct,
    /// The setuid helpers from shadow-utils (package `uidmap`) write maps
    /// of subordinate ranges listed in `/etc/subuid` and `/etc/subgid`.
    NewIdMap {
        /// Path of `newuidmap`.
        newuidmap: PathBuf,
        /// Path of `newgidmap`.
        newgidmap: PathBuf,
    },
}

impl MapWriter {
    /// `newuidmap` and `newgidmap` found on `PATH`.
    pub fn find_helpers() -> Result<Self, IdmapError> {
        let path = std::env::var_os("PATH");
        let path = path.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH));
        let find = |helper| find_in_path(path, helper).ok_or(IdmapError::HelperNotFound { helper });
        Ok(Self::NewIdMap {
            newuidmap: find("newuidmap")?,
            newgidmap: find("newgidmap")?,
        })
    }
}

/// The first executable regular file named `name` in the `:`-separated `path`.
pub(crate) fn find_in_path(path: &OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `newuidmap`/`newgidmap` found on `PATH`, for [`crate::probe`].
pub(crate) fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH");
    find_in_path(path.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH)), name)
}

/// The maps of one sandbox, resolved for its caller by
/// [`IdMapPolicy::resolve`](crate::IdMapPolicy::resolve), ready to write.
///
/// ```no_run
/// use nucleus_idmap::{Caller, IdMapPolicy, SubIdPaths};
/// # let child_pid = 0;
/// let maps = IdMapPolicy::default()
///     .resolve(&Caller::current(), &SubIdPaths::default())
///     .unwrap()
///     .expect("a user namespace");
/// // ... clone(CLONE_NEWUSER | ...) -> child_pid, child waits on a pipe ...
/// maps.write(child_pid).unwrap();
/// // ... release the child; it may now setresuid(maps.default_uid, ...) ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedMaps {
    /// The uid map lines.
    pub uid: Vec<IdMapping>,
    /// The gid map lines.
    pub gid: Vec<IdMapping>,
    /// Who writes them.
    pub writer: MapWriter,
    /// Write `deny` to `/proc/PID/setgroups` before the gid map (required of
    /// an unprivileged writer; the workload then cannot call `setgroups`).
    pub deny_setgroups: bool,
    /// The uid the workload runs as unless told otherwise.
    pub default_uid: u32,
    /// The gid the workload runs as unless told otherwise.
    pub default_gid: u32,
    /// The range these maps hold while they live
    /// ([`IdMapPolicy::resolve_leased`](crate::IdMapPolicy::resolve_leased)).
    #[serde(skip)]
    pub lease: Option<std::sync::Arc<crate::RangeLease>>,
}

impl ResolvedMaps {
    /// Writes the maps of process `pid`, which must already be in its new
    /// user namespace.
    ///
    /// Launch sequence: in the parent, right after clone, before the child
    /// is released (the child cannot change ids until its maps exist).
    pub fn write(&self, pid: i32) -> Result<(), IdmapError> {
        self.write_at(Path::new("/proc"), pid)
    }

    /// Like [`ResolvedMaps::write`], with procfs mounted at `proc_root`
    /// (only used by the direct writer; the helpers always use `/proc`).
    pub fn write_at(&self, proc_root: &Path, pid: i32) -> Result<(), IdmapError> {
        match &self.writer {
            MapWriter::Direct => self.write_direct(proc_root, pid),
            MapWriter::NewIdMap {
                newuidmap,
                newgidmap,
            } => {
                run_helper(newuidmap, pid, &self.uid)?;
                run_helper(newgidmap, pid, &self.gid)
            }
        }
    }

    fn write_direct(&self, proc_root: &Path, pid: i32) -> Result<(), IdmapError> {
        let dir = proc_root.join(pid.to_string());
        if self.deny_setgroups {
            write_once(&dir.join("setgroups"), pid, b"deny")?;
        }
        write_once(&dir.join("uid_map"), pid, map_text(&self.uid).as_bytes())?;
        write_once(&dir.join("gid_map"), pid, map_text(&self.gid).as_bytes())
    }

    /// Whether uid `inside` exists in the namespace.
    pub fn maps_uid(&self, inside: u32) -> bool {
        maps_id(&self.uid, inside)
    }

    /// Whether gid `inside` exists in the namespace.
    pub fn maps_gid(&self, inside: u32) -> bool {
        maps_id(&self.gid, inside)
    }
}

/// Writes `data` in a single write(2): the kernel parses a map only from
/// one write at offset 0 and refuses later ones.
fn write_once(path: &Path, pid: i32, data: &[u8]) -> Result<(), IdmapError> {
    let err = |source| IdmapError::WriteMap {
        path: path.to_owned(),
        pid,
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    let written = file.write(data).map_err(err)?;
    if written != data.len() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", data.len()),
        )));
    }
    Ok(())
}

/// Runs `helper PID inside outside count [...]` and checks its exit status.
fn run_helper(helper: &Path, pid: i32, maps: &[IdMapping]) -> Result<(), IdmapError> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.arg(m.inside.to_string())
            .arg(m.outside.to_string())
            .arg(m.count.to_string());
    }
    let output = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| IdmapError::SpawnHelper {
            helper: helper.to_owned(),
            pid,
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(IdmapError::HelperFailed {
        helper: helper.to_owned(),
        pid,
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("nucleus-idmap-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn maps(writer: MapWriter, deny_setgroups: bool) -> ResolvedMaps {
        ResolvedMaps {
            uid: vec![IdMapping::new(0, 1000, 1), IdMapping::new(1, 100000, 65536)],
            gid: vec![IdMapping::new(0, 1000, 1)],
            writer,
            deny_setgroups,
            default_uid: 0,
            default_gid: 0,
            lease: None,
        }
    }

    fn fake_proc(tag: &str, pid: i32) -> TempDir {
        let dir = TempDir::new(tag);
        let p = dir.0.join(pid.to_string());
        fs::create_dir_all(&p).unwrap();
        for f in ["setgroups", "uid_map", "gid_map"] {
            fs::write(p.join(f), "").unwrap();
        }
        dir
    }

    #[test]
    fn direct_writes_all_three_files() {
        let proc = fake_proc("direct", 42);
        maps(MapWriter::Direct, true).write_at(&proc.0, 42).unwrap();
        let read = |f| fs::read_to_string(proc.0.join("42").join(f)).unwrap();
        assert_eq!(read("setgroups"), "deny");
        assert_eq!(read("uid_map"), "0 1000 1\n1 100000 65536\n");
        assert_eq!(read("gid_map"), "0 1000 1\n");
    }

    #[test]
    fn direct_leaves_setgroups_alone_when_not_asked() {
        let proc = fake_proc("nodeny", 7);
        maps(MapWriter::Direct, false).write_at(&proc.0, 7).unwrap();
        assert_eq!(fs::read_to_string(proc.0.join("7/setgroups")).unwrap(), "");
    }

    #[test]
    fn direct_error_names_path_and_pid() {
        let proc = TempDir::new("missing");
        let err = maps(MapWriter::Direct, false)
            .write_at(&proc.0, 9)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("9/uid_map") && msg.contains("pid 9"), "{msg}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    /// Held while writing and running fake helpers, so no other test of
    /// this binary forks while a script is open for writing (ETXTBSY).
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn helpers_get_pid_and_triples() {
        let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("helpers");
        let out = dir.0.join("out");
        let body = format!("echo \"$(basename $0) $*\" >> {}", out.display());
        let writer = MapWriter::NewIdMap {
            newuidmap: script(&dir.0, "newuidmap", &body),
            newgidmap: script(&dir.0, "newgidmap", &body),
        };
        maps(writer, true)
            .write_at(Path::new("/nonexistent"), 1234)
            .unwrap();
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "newuidmap 1234 0 1000 1 1 100000 65536\nnewgidmap 1234 0 1000 1\n"
        );
    }

    #[test]
    fn helper_failure_carries_stderr() {
        let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("helperfail");
        let writer = MapWriter::NewIdMap {
            newuidmap: script(&dir.0, "newuidmap", "echo 'range not allowed' >&2; exit 3"),
            newgidmap: script(&dir.0, "newgidmap", "exit 0"),
        };
        let err = maps(writer, false).write(1).unwrap_err();
        match &err {
            IdmapError::HelperFailed { stderr, pid, .. } => {
                assert_eq!(stderr, "range not allowed");
                assert_eq!(*pid, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("range not allowed"));
        let missing = MapWriter::NewIdMap {
            newuidmap: dir.0.join("nope"),
            newgidmap: dir.0.join("nope"),
        };
        let err = maps(missing, false).write(1).unwrap_err();
        assert!(matches!(err, IdmapError::SpawnHelper { .. }), "{err:?}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn finds_executables_on_path() {
        let dir = TempDir::new("path");
        script(&dir.0, "newuidmap", "exit 0");
        fs::write(dir.0.join("plain"), "").unwrap();
        let path = format!("relative:/nonexistent:{}", dir.0.display());
        assert_eq!(
            find_in_path(OsStr::new(&path), "newuidmap"),
            Some(dir.0.join("newuidmap"))
        );
        assert_eq!(find_in_path(OsStr::new(&path), "plain"), None);
        assert_eq!(find_in_path(OsStr::new(&path), "missing"), None);
    }

    #[test]
    fn maps_queries() {
        let m = maps(MapWriter::Direct, false);
        assert!(m.maps_uid(0) && m.maps_uid(65536) && !m.maps_uid(65537));
        assert!(m.maps_gid(0) && !m.maps_gid(1));
    }
}

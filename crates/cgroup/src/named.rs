//! A cgroup at a path the caller names (an OCI runtime's `cgroupsPath`)
//! that outlives the process creating it: saved by one command, restored
//! by the next to list, freeze, update, kill and remove it.

use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::applied::{AppliedLimits, KillMethod, NotApplied};
use crate::cgroup::{Cgroup, Dir};
use crate::discover::{self, CgroupConfig, CgroupVersion, Layout, V1_CONTROLLERS};
use crate::error::CgroupError;
use crate::fs::{self, FsMode};
use crate::limits::Limits;

/// Controllers a saved directory may name (v1 hierarchies and v2).
const KNOWN: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer", "blkio", "io"];

/// A cgroup's directories, as plain data to keep between processes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCgroup {
    /// The v2 directory, if any.
    pub v2: Option<SavedDir>,
    /// One directory per v1 hierarchy.
    pub v1: Vec<SavedDir>,
    /// Parent directories created for it, innermost first.
    pub parents: Vec<PathBuf>,
}

/// One saved directory and the controllers it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDir {
    /// The directory.
    pub path: PathBuf,
    /// Its controllers (v1), or those enabled for it (v2).
    pub controllers: Vec<String>,
}

fn check_name(name: &Path) -> Result<&Path, CgroupError> {
    let rel = name.strip_prefix("/").unwrap_or(name);
    let ok =
        rel.components().count() > 0 && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        return Ok(rel);
    }
    Err(CgroupError::InvalidCgroupParent {
        path: name.to_owned(),
        reason: "a cgroup name must be a path of plain components (no '.', '..' or empty)",
    })
}

impl Cgroup {
    /// Creates the cgroup `name` (a relative path; a leading `/` is ignored)
    /// below the caller's own cgroup (or `cfg.root`) in every hierarchy,
    /// making missing parents, and writes `limits`. An existing cgroup of
    /// that name is an error (`CreateDir` with `AlreadyExists`).
    ///
    /// ```no_run
    /// use nucleus_cgroup::{Cgroup, CgroupConfig, Limits};
    /// let cg = Cgroup::create_named(
    ///     &Limits { pids: Some(64), ..Limits::default() },
    ///     &CgroupConfig::default(),
    ///     "engine/ctr-1".as_ref(),
    /// )?;
    /// let saved = cg.save();                 // kept in the runtime's state
    /// let again = nucleus_cgroup::Cgroup::restore(&saved);
    /// assert!(again.pids()?.is_empty());
    /// again.remove()?;
    /// # Ok::<(), nucleus_cgroup::CgroupError>(())
    /// ```
    pub fn create_named(
        limits: &Limits,
        cfg: &CgroupConfig,
        name: &Path,
    ) -> Result<Cgroup, CgroupError> {
        limits.validate()?;
        let rel = check_name(name)?;
        let layout = discover::discover(cfg)?;
        Self::create_in(limits, cfg, &layout, FsMode::Kernel, Some(rel))
    }

    /// Creates missing parents of `name` in every hierarchy used, then the
    /// directories themselves.
    pub(crate) fn make_named_dirs(
        &mut self,
        name: &Path,
        limits: &Limits,
        layout: &Layout,
        use_v2: bool,
        failures: &mut Vec<NotApplied>,
    ) -> Result<(), CgroupError> {
        let mut bases: Vec<&Path> = layout.v1.iter().map(|p| p.parent.as_path()).collect();
        if use_v2 {
            bases.extend(layout.unified.as_deref());
        }
        for base in bases {
            self.make_parents(base, name)?;
        }
        self.make_dirs_named(name, limits, layout, use_v2, failures)
    }

    fn make_parents(&mut self, base: &Path, name: &Path) -> Result<(), CgroupError> {
        let mut made = Vec::new();
        let mut dir = base.to_path_buf();
        let parent = name.parent().unwrap_or(Path::new(""));
        for part in parent.components() {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => made.push(dir.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(CgroupError::CreateDir { path: dir, source }),
            }
        }
        made.reverse();
        self.parents.extend(made);
        Ok(())
    }

    /// The cgroup's directories as data; this value no longer kills or
    /// removes anything when dropped.
    pub fn save(mut self) -> SavedCgroup {
        let out = self.saved();
        self.parents.clear();
        self.removed = true;
        out
    }

    /// The cgroup's directories as data, this value still owning them.
    pub fn saved(&self) -> SavedCgroup {
        let saved = |d: &Dir| SavedDir {
            path: d.path.clone(),
            controllers: d.controllers.iter().map(|c| (*c).to_owned()).collect(),
        };
        SavedCgroup {
            v2: self.v2.as_ref().map(saved),
            v1: self.v1.iter().map(saved).collect(),
            parents: self.parents.clone(),
        }
    }

    /// A saved cgroup again, to list, freeze, update, kill or remove. Unlike
    /// a created one, dropping it does nothing: only [`remove`](Self::remove)
    /// removes it. Controllers this crate does not know are left out.
    pub fn restore(saved: &SavedCgroup) -> Cgroup {
        let dir = |d: &SavedDir| Dir {
            path: d.path.clone(),
            controllers: d
                .controllers
                .iter()
                .filter_map(|c| {
                    KNOWN
                        .iter()
                        .chain(V1_CONTROLLERS)
                        .find(|k| *k == c)
                        .copied()
                })
                .collect(),
        };
        let version = match (&saved.v2, saved.v1.is_empty()) {
            (Some(_), true) => CgroupVersion::V2,
            (Some(_), false) => CgroupVersion::Hybrid,
            (None, false) => CgroupVersion::V1,
            (None, true) => CgroupVersion::None,
        };
        let mut cg = Cgroup {
            v2: saved.v2.as_ref().map(dir),
            v2_fd: None,
            v1: saved.v1.iter().map(dir).collect(),
            applied: AppliedLimits {
                version,
                applied: Vec::new(),
                not_applied: Vec::new(),
                kill_method: KillMethod::None,
            },
            mode: FsMode::Kernel,
            removed: false,
            owner: 0,
            parents: saved.parents.clone(),
        };
        cg.applied.kill_method = cg.kill_method();
        cg
    }

    /// Every process in the cgroup, in every hierarchy, deduplicated.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out: Vec<i32> = Vec::new();
        for dir in self.dirs() {
            for pid in fs::read_pids(&dir.path.join("cgroup.procs"))? {
                if !out.contains(&pid) {
                    out.push(pid);
                }
            }
        }
        Ok(out)
    }

    /// Writes `limits` again (an engine's `update`). Every limit must apply.
    pub fn update(&mut self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        let mut failures = Vec::new();
        self.write_limits(limits, &mut failures);
        match failures.into_iter().next() {
            Some(first) => Err(CgroupError::LimitNotApplied {
                limit: first.limit,
                reason: first.reason,
            }),
            None => Ok(()),
        }
    }

    /// Freezes every process (`pause`): v1 `freezer.state`, v2 `cgroup.freeze`.
    pub fn pause(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    /// Thaws what [`pause`](Self::pause) froze.
    pub fn resume(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    /// Whether the cgroup is frozen now.
    pub fn is_paused(&self) -> bool {
        match self.freezer_file() {
            Some((path, true)) => fs::read_opt(&path).is_some_and(|s| s.trim() == "FROZEN"),
            Some((path, false)) => fs::read_opt(&path).is_some_and(|s| s.trim() == "1"),
            None => false,
        }
    }

    /// The freezer's control file and whether it is v1's.
    fn freezer_file(&self) -> Option<(PathBuf, bool)> {
        if let Some(d) = self.v1.iter().find(|d| d.controllers.contains(&"freezer")) {
            return Some((d.path.join("freezer.state"), true));
        }
        let v2 = self.v2.as_ref()?.path.join("cgroup.freeze");
        v2.exists().then_some((v2, false))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (path, v1) = self.freezer_file().ok_or(CgroupError::NoFreezer)?;
        let value = match (v1, frozen) {
            (true, true) => "FROZEN",
            (true, false) => "THAWED",
            (false, true) => "1",
            (false, false) => "0",
        };
        fs::write_raw(&path, value, self.mode).map_err(|source| CgroupError::WriteFile {
            path: path.clone(),
            value: value.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_relative_paths() {
        assert_eq!(check_name(Path::new("/a/b")).ok(), Some(Path::new("a/b")));
        assert!(check_name(Path::new("a/../b")).is_err());
        assert!(check_name(Path::new("/")).is_err());
        assert!(check_name(Path::new("./a")).is_err());
    }

    #[test]
    fn save_and_restore_keep_the_directories() {
        let saved = SavedCgroup {
            v2: Some(SavedDir {
                path: "/sys/fs/cgroup/x".into(),
                controllers: vec!["memory".into(), "bogus".into()],
            }),
            v1: Vec::new(),
            parents: vec!["/sys/fs/cgroup/p".into()],
        };
        let cg = Cgroup::restore(&saved);
        assert_eq!(
            cg.v2.as_ref().map(|d| d.controllers.clone()),
            Some(vec!["memory"])
        );
        let again = cg.save();
        assert_eq!(again.parents, saved.parents);
        assert_eq!(again.v2.map(|d| d.path), saved.v2.map(|d| d.path));
    }
}

//! Creating a sandbox's cgroup: one directory per hierarchy under a unique
//! name, the v2 controllers enabled in the parent, every limit written, and
//! what could not be applied collected for the report.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::applied::{AppliedLimits, KillMethod, NotApplied};
use crate::cgroup::{Cgroup, Dir};
use crate::discover::{self, CgroupConfig, CgroupVersion, Layout};
use crate::error::CgroupError;
use crate::fs::{self, FsMode};
use crate::limits::{LimitMode, Limits};
use crate::plan::{self, Ver};
use crate::types::{LimitKind, NotAppliedReason};

/// v1 controllers created for accounting and killing even with no limit.
const V1_ALWAYS: &[&str] = &["memory", "cpuacct", "pids", "freezer"];
/// v2 controllers enabled for accounting when available (failure ignored).
const V2_ACCOUNTING: &[&str] = &["memory", "pids"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn check_prefix(prefix: &str) -> Result<(), CgroupError> {
    let ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !prefix.starts_with('.');
    if ok {
        return Ok(());
    }
    Err(CgroupError::InvalidCgroupParent {
        path: PathBuf::from(prefix),
        reason: "name prefix must be letters, digits, '-', '_' or '.' and not start with '.'",
    })
}

fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{nanos:08x}", std::process::id())
}

impl Cgroup {
    /// Creates the sandbox's cgroup and writes the limits. Parent, before
    /// clone (launch step "cgroup").
    ///
    /// Validates `limits`, finds where this process may create cgroups (its
    /// own cgroup in each hierarchy, or `cfg.root`), creates one directory
    /// per hierarchy, enables v2 controllers in the parent's
    /// `cgroup.subtree_control` when needed (the only write outside our own
    /// directories), and writes every limit. In [`LimitMode::Required`] any
    /// limit that cannot be set fails the call after removing what was
    /// created; in [`LimitMode::BestEffort`] it is listed in
    /// [`applied`](Self::applied).
    pub fn create(limits: &Limits, cfg: &CgroupConfig) -> Result<Cgroup, CgroupError> {
        limits.validate()?;
        check_prefix(&cfg.name_prefix)?;
        let layout = discover::discover(cfg)?;
        Self::create_in(limits, cfg, &layout, FsMode::Kernel, None)
    }

    pub(crate) fn create_in(
        limits: &Limits,
        cfg: &CgroupConfig,
        layout: &Layout,
        mode: FsMode,
        name: Option<&Path>,
    ) -> Result<Cgroup, CgroupError> {
        let mut cg = Cgroup {
            v2: None,
            v2_fd: None,
            v1: Vec::new(),
            applied: AppliedLimits {
                version: layout.version,
                applied: Vec::new(),
                not_applied: Vec::new(),
                kill_method: KillMethod::None,
            },
            mode,
            removed: false,
            owner: std::process::id(),
            parents: Vec::new(),
        };
        let use_v2 = match layout.version {
            CgroupVersion::V2 => true,
            CgroupVersion::Hybrid => cfg.use_unified,
            _ => false,
        };
        let mut failures: Vec<NotApplied> = Vec::new();
        match name {
            Some(name) => cg.make_named_dirs(name, limits, layout, use_v2, &mut failures)?,
            None => cg.make_dirs(limits, cfg, layout, use_v2, &mut failures)?,
        }
        cg.write_limits(limits, &mut failures);
        cg.applied.kill_method = cg.kill_method();
        if let Some(first) = failures.first() {
            if cfg.mode == LimitMode::Required {
                let err = CgroupError::LimitNotApplied {
                    limit: first.limit,
                    reason: first.reason.clone(),
                };
                let _ = cg.remove_inner();
                return Err(err);
            }
        }
        cg.applied.not_applied = failures;
        Ok(cg)
    }

    /// Creates every directory, retrying under a new name when one exists.
    fn make_dirs(
        &mut self,
        limits: &Limits,
        cfg: &CgroupConfig,
        layout: &Layout,
        use_v2: bool,
        failures: &mut Vec<NotApplied>,
    ) -> Result<(), CgroupError> {
        for _ in 0..16 {
            let name = unique_name(&cfg.name_prefix);
            failures.clear();
            match self.make_dirs_named(Path::new(&name), limits, layout, use_v2, failures) {
                Err(CgroupError::CreateDir { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    self.reset();
                }
                other => return other,
            }
        }
        Err(CgroupError::CreateDir {
            path: layout.unified.clone().unwrap_or_default(),
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        })
    }

    pub(crate) fn make_dirs_named(
        &mut self,
        name: &Path,
        limits: &Limits,
        layout: &Layout,
        use_v2: bool,
        failures: &mut Vec<NotApplied>,
    ) -> Result<(), CgroupError> {
        let asked = limits.kinds();
        let v1_has = |c: &str| layout.v1.iter().any(|p| p.controllers.contains(&c));
        for place in &layout.v1 {
            let needed: Vec<LimitKind> = asked
                .iter()
                .copied()
                .filter(|k| place.controllers.contains(&plan::controller(*k, Ver::V1)))
                .collect();
            let wanted =
                !needed.is_empty() || place.controllers.iter().any(|c| V1_ALWAYS.contains(c));
            if !wanted {
                continue;
            }
            let path = place.parent.join(name);
            match mkdir(&path) {
                Ok(()) => self.v1.push(Dir {
                    path,
                    controllers: place.controllers.clone(),
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(CgroupError::CreateDir { path, source: e })
                }
                Err(e) => failures.extend(needed.into_iter().map(|limit| NotApplied {
                    limit,
                    reason: NotAppliedReason::NoCgroup {
                        errno: e.raw_os_error(),
                    },
                })),
            }
        }
        if let (true, Some(parent)) = (use_v2, &layout.unified) {
            // Limits whose controller no v1 hierarchy has go to v2.
            let v2_kinds: Vec<LimitKind> = asked
                .iter()
                .copied()
                .filter(|k| !v1_has(plan::controller(*k, Ver::V1)))
                .collect();
            self.make_v2_dir(parent, name, &v2_kinds, failures)?;
        }
        Ok(())
    }

    fn make_v2_dir(
        &mut self,
        parent: &Path,
        name: &Path,
        kinds: &[LimitKind],
        failures: &mut Vec<NotApplied>,
    ) -> Result<(), CgroupError> {
        let mut needed: Vec<&'static str> = kinds
            .iter()
            .map(|k| plan::controller(*k, Ver::V2))
            .collect();
        needed.dedup();
        let enabled = enable_along(parent, name, &needed, self.mode);
        let path = parent.join(name);
        if let Err(e) = mkdir(&path) {
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(CgroupError::CreateDir { path, source: e });
            }
            failures.extend(kinds.iter().map(|&limit| NotApplied {
                limit,
                reason: NotAppliedReason::NoCgroup {
                    errno: e.raw_os_error(),
                },
            }));
            return Ok(());
        }
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| CgroupError::OpenDir {
                path: path.clone(),
                source,
            });
        let mut controllers = Vec::new();
        for (ctrl, result) in enabled {
            match result {
                Ok(()) => controllers.push(ctrl),
                Err(reason) => failures.extend(
                    kinds
                        .iter()
                        .filter(|k| plan::controller(**k, Ver::V2) == ctrl)
                        .map(|&limit| NotApplied {
                            limit,
                            reason: reason.clone(),
                        }),
                ),
            }
        }
        self.v2 = Some(Dir { path, controllers });
        self.v2_fd = Some(fd?);
        Ok(())
    }

    /// Writes every asked limit to the directory serving its controller.
    pub(crate) fn write_limits(&mut self, limits: &Limits, failures: &mut Vec<NotApplied>) {
        for kind in limits.kinds() {
            if failures.iter().any(|f| f.limit == kind) {
                continue;
            }
            let (dir, ver) = match self.dir_for(kind) {
                Some(found) => found,
                None => {
                    let controller = plan::controller(kind, Ver::V1).to_owned();
                    failures.push(NotApplied {
                        limit: kind,
                        reason: NotAppliedReason::ControllerAbsent { controller },
                    });
                    continue;
                }
            };
            let result =
                plan::writes(kind, limits, ver)
                    .into_iter()
                    .try_for_each(|(file, value)| {
                        let path = dir.join(file);
                        fs::write_raw(&path, &value, self.mode).map_err(|e| {
                            match e.raw_os_error() {
                                Some(libc::ENOENT) => NotAppliedReason::FileAbsent { path },
                                errno => NotAppliedReason::WriteFailed {
                                    path,
                                    errno: errno.unwrap_or(libc::EIO),
                                },
                            }
                        })
                    });
            match result {
                Ok(()) => self.applied.applied.push(kind),
                Err(reason) => failures.push(NotApplied {
                    limit: kind,
                    reason,
                }),
            }
        }
    }

    /// The directory (and its version) that serves `kind`'s controller.
    fn dir_for(&self, kind: LimitKind) -> Option<(PathBuf, Ver)> {
        let c1 = plan::controller(kind, Ver::V1);
        if let Some(d) = self.v1.iter().find(|d| d.controllers.contains(&c1)) {
            return Some((d.path.clone(), Ver::V1));
        }
        let c2 = plan::controller(kind, Ver::V2);
        self.v2
            .as_ref()
            .filter(|d| d.controllers.contains(&c2))
            .map(|d| (d.path.clone(), Ver::V2))
    }

    pub(crate) fn kill_method(&self) -> KillMethod {
        match &self.v2 {
            Some(d) if d.path.join("cgroup.kill").exists() => KillMethod::CgroupKill,
            Some(d) if d.path.join("cgroup.freeze").exists() => KillMethod::Freezer,
            _ if self.v1.iter().any(|d| d.controllers.contains(&"freezer")) => KillMethod::Freezer,
            _ if self.v2.is_some() || !self.v1.is_empty() => KillMethod::SignalLoop,
            _ => KillMethod::None,
        }
    }

    /// Removes what was made under a name that collided, to start over.
    fn reset(&mut self) {
        let _ = self.remove_inner();
        self.v1.clear();
        self.v2 = None;
        self.v2_fd = None;
        self.applied.applied.clear();
        self.removed = false;
    }
}

fn mkdir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)
}

/// Enables `needed` controllers at `parent` and at every directory between
/// it and `name` (a named cgroup's parents): a controller reaches `name`
/// only when each level hands it down. The outcome per controller is the
/// first level's failure, if any.
fn enable_along(
    parent: &Path,
    name: &Path,
    needed: &[&'static str],
    mode: FsMode,
) -> Vec<(&'static str, Result<(), NotAppliedReason>)> {
    let mut out = enable_v2_controllers(parent, needed, mode);
    let mut level = parent.to_path_buf();
    for part in name.parent().into_iter().flat_map(Path::components) {
        level.push(part);
        let handed: Vec<&'static str> = out
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| *c)
            .collect();
        let below = enable_v2_controllers(&level, &handed, mode);
        for (ctrl, result) in &mut out {
            if result.is_ok() {
                match below.iter().find(|(c, _)| c == ctrl) {
                    Some((_, r)) => *result = r.clone(),
                    None => {
                        *result = Err(NotAppliedReason::ControllerAbsent {
                            controller: (*ctrl).to_owned(),
                        })
                    }
                }
            }
        }
        out.retain(|(c, r)| r.is_ok() || needed.contains(c));
    }
    out
}

/// Enables `needed` controllers in `parent`'s `cgroup.subtree_control`,
/// plus accounting ones when available (their failure is ignored). Returns
/// the outcome for every controller that ends up relevant.
fn enable_v2_controllers(
    parent: &Path,
    needed: &[&'static str],
    mode: FsMode,
) -> Vec<(&'static str, Result<(), NotAppliedReason>)> {
    let available = fs::read_words(&parent.join("cgroup.controllers"));
    let enabled = fs::read_words(&parent.join("cgroup.subtree_control"));
    let has = |list: &[String], c: &str| list.iter().any(|x| x == c);
    let mut out = Vec::new();
    let wanted = needed.iter().map(|c| (*c, true)).chain(
        V2_ACCOUNTING
            .iter()
            .filter(|c| !needed.contains(c))
            .map(|c| (*c, false)),
    );
    for (ctrl, required) in wanted {
        let result = if has(&enabled, ctrl) {
            Ok(())
        } else if !has(&available, ctrl) {
            Err(NotAppliedReason::ControllerAbsent {
                controller: ctrl.to_owned(),
            })
        } else {
            fs::write_raw(
                &parent.join("cgroup.subtree_control"),
                &format!("+{ctrl}"),
                mode,
            )
            .map_err(|e| NotAppliedReason::ControllerNotEnabled {
                controller: ctrl.to_owned(),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            })
        };
        if required || result.is_ok() {
            out.push((ctrl, result));
        }
    }
    out
}

//! From a [`RootfsPolicy`] to the steps of its [`MountPlan`], in the
//! parent: every host path checked, every string prepared.

use crate::plan::{Builder, MountPlan};
use crate::policy::normalize_destination;
use crate::step::{cstr, Step, Target, Trust, NEW, OLD};
use crate::sys::{self, Attr};
use crate::{Base, MountKind, MountSpec, RootfsError, RootfsPolicy};
use std::path::{Path, PathBuf};

/// A host directory every system has, used as a staging mount point. The
/// staging tmpfs leaves it again at the first `pivot_root`, so host paths
/// under it stay reachable as bind sources.
const STAGE: &str = "/tmp";

/// The empty file and directory bound over masked paths, in the staging
/// root (which is `/` once the staging pivot is done).
const EMPTY_FILE: &str = "/masked-file";
const EMPTY_DIR: &str = "/masked-dir";

const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
const DEV_LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];
/// Parts of a fresh `/proc` that configure the host kernel; bound
/// read-only over themselves, as bubblewrap and crun do.
const PROC_READONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

/// The host path `path` as the child reaches it: below the old root.
fn on_host(path: &Path) -> PathBuf {
    Path::new(OLD).join(path.strip_prefix("/").unwrap_or(path))
}

/// A mount point the plan makes in the view (see [`Trust::MountPoint`]).
fn mount_point(inside: &Path) -> Result<Target, RootfsError> {
    Target::in_view(inside, Trust::MountPoint)
}

impl RootfsPolicy {
    /// Checks the policy against the host and prepares the plan.
    ///
    /// Launch sequence: in the parent, before `clone`. Fails for missing bind
    /// sources, a root directory that is not one, and bad paths, naming the
    /// path.
    ///
    /// ```
    /// let plan = nucleus_rootfs::RootfsPolicy::default().compile().unwrap();
    /// assert!(!plan.is_empty());
    /// ```
    pub fn compile(&self) -> Result<MountPlan, RootfsError> {
        self.compile_with(false)
    }

    /// Like [`RootfsPolicy::compile`], but every bind source is opened here,
    /// in the parent, with the caller's own rights (`open_tree`, no
    /// symbolic link followed): a root caller binds what root can reach,
    /// though the sandbox's own root is an unprivileged host id. The plan
    /// then holds the detached trees; [`MountPlan::idmap`] can map their ids
    /// before the child attaches them. Needs `CAP_SYS_ADMIN` (root).
    ///
    /// ```no_run
    /// let plan = nucleus_rootfs::RootfsPolicy::default().compile_detached().unwrap();
    /// assert_eq!(plan.detached_trees().count(), 0); // no user bind
    /// ```
    pub fn compile_detached(&self) -> Result<MountPlan, RootfsError> {
        self.compile_with(true)
    }

    fn compile_with(&self, detach: bool) -> Result<MountPlan, RootfsError> {
        self.validate()?;
        let mut b = Builder::new(detach);
        b.push(Step::MakePrivate);
        let stage = Path::new(STAGE);
        b.tmpfs(
            Target::runtime(stage)?,
            sys::MS_NOSUID | sys::MS_NODEV,
            "mode=0755",
        )?;
        b.push(Step::Mkdir {
            path: Target::runtime(stage.join("oldroot"))?,
        });
        b.push(Step::Mkdir {
            path: Target::runtime(stage.join("newroot"))?,
        });
        b.push(Step::StagePivot);
        self.compile_root(&mut b)?;
        self.compile_proc(&mut b)?;
        if self.dev {
            compile_dev(&mut b)?;
        }
        if self.tmp {
            let tmp = Path::new("/tmp");
            b.mkdir(tmp)?;
            let data = self.tmpfs_data("mode=1777");
            b.tmpfs(mount_point(tmp)?, sys::NOEXEC_FLAGS, &data)?;
        }
        for spec in &self.mounts {
            self.compile_user_mount(&mut b, spec)?;
        }
        self.compile_masks(&mut b)?;
        if self.dev {
            b.push(Step::SetAttr {
                path: mount_point(Path::new("/dev"))?,
                attr: Attr::RDONLY,
            });
        }
        if self.readonly_root {
            b.push(Step::SetAttr {
                path: Target::runtime(NEW)?,
                attr: Attr::RDONLY,
            });
        }
        b.push(Step::FinalPivot);
        Ok(b.finish())
    }

    fn tmpfs_data(&self, base: &str) -> String {
        match self.tmpfs_size {
            Some(size) => format!("{base},size={size}"),
            None => base.to_owned(),
        }
    }

    fn compile_root(&self, b: &mut Builder) -> Result<(), RootfsError> {
        match &self.base {
            Base::Host => {
                let root = Target::runtime(NEW)?;
                b.tmpfs(root, sys::MS_NOSUID | sys::MS_NODEV, "mode=0755")?;
                for dir in &self.host_dirs {
                    compile_host_dir(b, dir)?;
                }
            }
            Base::Directory(dir) => {
                let meta = std::fs::metadata(dir).map_err(|source| RootfsError::Source {
                    path: dir.clone(),
                    source,
                })?;
                if !meta.is_dir() {
                    return Err(RootfsError::RootNotDirectory { path: dir.clone() });
                }
                b.bind(
                    &on_host(dir),
                    Target::runtime(NEW)?,
                    Attr::NOSUID_NODEV,
                    false,
                )?;
            }
        }
        Ok(())
    }

    /// Binds an empty file or directory of the staging root, read-only,
    /// over each masked path of the view; then pins the way to each hidden
    /// directory (each directory on it bound onto itself, see
    /// [`RootfsPolicy::pins`]) and hides it behind the empty directory. A
    /// hidden directory or pin that is not there in the view is skipped:
    /// nothing shows there. Each path is resolved in the view without
    /// leaving it ([`Trust::InView`]).
    fn compile_masks(&self, b: &mut Builder) -> Result<(), RootfsError> {
        let masks = self.masks()?;
        if masks.is_empty() && self.hidden_dirs.is_empty() {
            return Ok(());
        }
        b.push(Step::CreateFile {
            path: Target::runtime(EMPTY_FILE)?,
        });
        b.push(Step::Mkdir {
            path: Target::runtime(EMPTY_DIR)?,
        });
        let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV).union(Attr::NOEXEC);
        for mask in masks {
            let src = if mask.is_dir { EMPTY_DIR } else { EMPTY_FILE };
            b.push(Step::Bind {
                src: Some(cstr(src)?),
                dst: Target::in_view(&mask.path, Trust::InView)?,
                recursive: false,
                attr,
                optional: true,
            });
            b.masked.push(mask.path);
        }
        for pin in self.pins()? {
            let mut pin_attr = Attr::NOSUID_NODEV;
            if pin.read_only {
                pin_attr = pin_attr.union(Attr::RDONLY);
            }
            b.push(Step::Bind {
                src: None,
                dst: Target::in_view(&pin.path, Trust::InView)?,
                recursive: true,
                attr: pin_attr,
                optional: true,
            });
        }
        for hidden in &self.hidden_dirs {
            let hidden = normalize_destination(hidden)?;
            b.push(Step::Bind {
                src: Some(cstr(EMPTY_DIR)?),
                dst: Target::in_view(&hidden, Trust::InView)?,
                recursive: false,
                attr,
                optional: true,
            });
            if !b.masked.contains(&hidden) {
                b.masked.push(hidden);
            }
        }
        Ok(())
    }

    fn compile_proc(&self, b: &mut Builder) -> Result<(), RootfsError> {
        if !self.proc {
            return Ok(());
        }
        let proc = Path::new("/proc");
        b.mkdir(proc)?;
        let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV).union(Attr::NOEXEC);
        if self.fresh_proc {
            b.push(Step::Proc {
                dst: mount_point(proc)?,
            });
            for part in PROC_READONLY {
                b.push(Step::Bind {
                    src: None,
                    dst: Target::in_view(&proc.join(part), Trust::InView)?,
                    recursive: true,
                    attr,
                    optional: true,
                });
            }
        } else {
            // The host's /proc configures the host: read-only, all of it.
            b.bind(&on_host(proc), mount_point(proc)?, attr, false)?;
        }
        Ok(())
    }

    fn compile_user_mount(&self, b: &mut Builder, spec: &MountSpec) -> Result<(), RootfsError> {
        let dst = normalize_destination(&spec.destination)?;
        let mut is_dir = true;
        let mut resolved = None;
        if let Some(src) = &spec.source {
            let real = crate::source::resolve_source(src, self.bind_follow_symlinks)?;
            is_dir = std::fs::metadata(&real)
                .map_err(|source| RootfsError::Source {
                    path: src.clone(),
                    source,
                })?
                .is_dir();
            resolved = Some(real);
        }
        b.mkdir_parents(&dst)?;
        if is_dir {
            b.mkdir(&dst)?;
        } else {
            b.push(Step::CreateFile {
                path: mount_point(&dst)?,
            });
        }
        let target = mount_point(&dst)?;
        // What the sandbox can write it must not run, unless asked.
        let (noexec_flag, noexec_attr) = match spec.exec {
            true => (0, Attr::NOSUID_NODEV),
            false => (sys::MS_NOEXEC, Attr::NOSUID_NODEV.union(Attr::NOEXEC)),
        };
        match (spec.kind, &resolved) {
            (MountKind::Tmpfs, _) | (_, None) => {
                let data = self.tmpfs_data("mode=0755");
                b.tmpfs(target, sys::MS_NOSUID | sys::MS_NODEV | noexec_flag, &data)
            }
            (MountKind::Bind, Some(src)) => b.user_bind(src, target, noexec_attr),
            (MountKind::RoBind, Some(src)) => {
                b.user_bind(src, target, Attr::RDONLY.union(Attr::NOSUID_NODEV))
            }
        }
    }
}

fn compile_host_dir(b: &mut Builder, dir: &Path) -> Result<(), RootfsError> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(dir).map_err(|source| RootfsError::Source {
            path: dir.to_owned(),
            source,
        })?;
        b.push(Step::Symlink {
            target: cstr(target)?,
            link: mount_point(dir)?,
        });
    } else if meta.is_dir() {
        b.mkdir(dir)?;
        let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV);
        b.bind(&on_host(dir), mount_point(dir)?, attr, false)?;
    }
    Ok(())
}

fn compile_dev(b: &mut Builder) -> Result<(), RootfsError> {
    let dev = Path::new("/dev");
    b.mkdir(dev)?;
    b.tmpfs(
        mount_point(dev)?,
        sys::MS_NOSUID | sys::MS_NOEXEC,
        "mode=0755",
    )?;
    for node in DEV_NODES {
        let path = dev.join(node);
        b.push(Step::CreateFile {
            path: mount_point(&path)?,
        });
        let attr = Attr::NOSUID.union(Attr::NOEXEC);
        b.bind(&on_host(&path), mount_point(&path)?, attr, true)?;
    }
    let pts = dev.join("pts");
    b.mkdir(&pts)?;
    b.push(Step::Devpts {
        dst: mount_point(&pts)?,
    });
    let shm = dev.join("shm");
    b.mkdir(&shm)?;
    b.tmpfs(mount_point(&shm)?, sys::NOEXEC_FLAGS, "mode=1777")?;
    for (target, name) in DEV_LINKS {
        b.push(Step::Symlink {
            target: cstr(target)?,
            link: mount_point(&dev.join(name))?,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::step_target;
    use crate::ApplyError;

    fn targets(plan: &MountPlan) -> Vec<String> {
        plan.steps().iter().map(step_target).collect()
    }

    #[test]
    fn default_plan_has_the_expected_shape() {
        let plan = RootfsPolicy::default().compile().unwrap();
        assert!(matches!(plan.steps().first(), Some(Step::MakePrivate)));
        assert!(matches!(plan.steps().last(), Some(Step::FinalPivot)));
        let binds: Vec<String> = plan
            .steps()
            .iter()
            .filter(|s| matches!(s, Step::Bind { .. }))
            .map(step_target)
            .collect();
        assert!(binds.contains(&"/usr on /usr".to_owned()), "{binds:?}");
        assert!(
            binds.contains(&"/dev/null on /dev/null".to_owned()),
            "{binds:?}"
        );
    }

    #[test]
    fn missing_bind_source_names_the_path() {
        let mut policy = RootfsPolicy::default();
        policy
            .mounts
            .push("/definitely/not/here:/data".parse::<MountSpec>().unwrap());
        let err = policy.compile().unwrap_err();
        assert_eq!(err.to_string(), "/definitely/not/here");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn hidden_dirs_are_pinned_and_masked_after_the_user_binds() {
        let mut policy = RootfsPolicy::default();
        policy
            .mounts
            .push("/usr:/host-usr".parse::<MountSpec>().unwrap().read_only());
        policy.hidden_dirs.push("/host-usr/share/doc".into());
        let plan = policy.compile().unwrap();
        let targets = targets(&plan);
        let position = |t: &str| targets.iter().position(|x| x == t).unwrap();
        let bind = position("/usr on /host-usr");
        let pin = position("/host-usr/share on /host-usr/share");
        let mask = position("/masked-dir on /host-usr/share/doc");
        assert!(bind < pin && pin < mask, "{targets:?}");
        assert!(matches!(
            plan.steps()[pin],
            Step::Bind { optional: true, attr, .. } if attr.is_read_only()
        ));
        assert!(plan
            .masked()
            .contains(&PathBuf::from("/host-usr/share/doc")));
    }

    #[test]
    fn user_mounts_create_their_parents() {
        let mut policy = RootfsPolicy::default();
        policy.mounts.push(MountSpec::tmpfs("/a/b/c"));
        let plan = policy.compile().unwrap();
        let targets = targets(&plan);
        let a = targets.iter().position(|t| t == "/a").unwrap();
        let b = targets.iter().position(|t| t == "/a/b").unwrap();
        assert!(a < b);
    }

    #[test]
    fn describe_reads_like_a_sentence() {
        let mut policy = RootfsPolicy::default();
        policy.mounts.push(MountSpec::tmpfs("/data"));
        let plan = policy.compile().unwrap();
        let step = plan
            .steps()
            .iter()
            .position(
                |s| matches!(s, Step::Tmpfs { dst, .. } if dst.full.as_bytes() == b"/newroot/data"),
            )
            .unwrap();
        let msg = plan.describe(&ApplyError {
            step: step as u32,
            errno: libc::ENOENT,
        });
        assert_eq!(msg, "mount: /data: no such file or directory");
    }
}

//! The mount plan: every step prepared in the parent, run in the child.

use crate::policy::normalize_destination;
use crate::sys::{self, Attr};
use crate::{ApplyError, Base, MountKind, RootfsError, RootfsPolicy};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the host root is reachable while the view is built.
const OLD: &str = "/oldroot";
/// Where the new view is built before the final `pivot_root`.
const NEW: &str = "/newroot";
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

/// A path as overlayfs's `lowerdir=` option reads it: `:`, `,` and `\\`
/// escaped.
fn escape_lower(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A bind source for a runtime's own view (see
/// [`MountPlan::host_with_fresh_proc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeBind {
    /// The host path, opened by the caller.
    pub source: PathBuf,
    /// Where it is attached (an existing file or directory).
    pub target: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

/// A readable name of a `statfs` filesystem magic.
fn fs_name(magic: i64) -> String {
    let known: [(i64, &str); 12] = [
        (0x6265_6572, "sysfs"),
        (0x9fa0, "proc"),
        (0xEF53, "ext4"),
        (0x5846_5342, "xfs"),
        (0x9123_683E, "btrfs"),
        (0x0102_1994, "tmpfs"),
        (0x794C_7630, "overlay"),
        (0x6969, "nfs"),
        (0x0102_1997, "9p"),
        (0x6573_5546, "fuse"),
        (0x2FC1_2FC1, "zfs"),
        (0x4d44, "vfat"),
    ];
    known
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or_else(|| format!("magic {magic:#x}"), |(_, n)| (*n).to_owned())
}

/// One step of the plan. Every string is prepared before `clone`.
#[derive(Debug)]
enum Step {
    MakePrivate,
    Tmpfs {
        dst: CString,
        flags: libc::c_ulong,
        data: CString,
    },
    Mkdir {
        path: CString,
    },
    CreateFile {
        path: CString,
    },
    StagePivot,
    Bind {
        src: CString,
        dst: CString,
        recursive: bool,
        attr: Attr,
        optional: bool,
    },
    /// A bind of a user-given source: no symbolic link is followed
    /// anywhere in `src` (checked again in the child, where it counts).
    BindNoFollow {
        src: CString,
        dst: CString,
        attr: Attr,
    },
    /// A source tree the parent opened (and maybe idmapped), attached.
    AttachTree {
        fd: RawFd,
        dst: CString,
    },
    Proc {
        dst: CString,
    },
    Devpts {
        dst: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    SetAttr {
        path: CString,
        attr: Attr,
    },
    Overlay {
        dst: CString,
        data: CString,
    },
    FinalPivot,
}

/// A compiled [`RootfsPolicy`]: the exact list of mount steps, ready to run
/// in the sandbox child without allocating.
#[derive(Debug)]
pub struct MountPlan {
    steps: Vec<Step>,
    masked: Vec<PathBuf>,
    /// Detached source trees (with [`RootfsPolicy::compile_detached`]):
    /// the tree, its host source, whether it is writable.
    trees: Vec<(OwnedFd, PathBuf, bool)>,
}

fn cstr(path: impl AsRef<Path>) -> Result<CString, RootfsError> {
    let path = path.as_ref();
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RootfsError::NulByte {
        path: path.to_owned(),
    })
}

fn under(root: &str, path: &Path) -> PathBuf {
    Path::new(root).join(path.strip_prefix("/").unwrap_or(path))
}

impl RootfsPolicy {
    /// Checks the policy against the host and prepares the plan.
    ///
    /// Launch sequence: in the parent, before `clone`. Fails for missing bind
    /// sources, a root directory that is not one, and bad paths, naming the
    /// path.
    pub fn compile(&self) -> Result<MountPlan, RootfsError> {
        self.compile_with(false)
    }

    /// Like [`RootfsPolicy::compile`], but every bind source is opened here,
    /// in the parent, with the caller's own rights (`open_tree`, no
    /// symbolic link followed): a root caller binds what root can reach,
    /// though the sandbox's own root is an unprivileged host id. The plan
    /// then holds the detached trees; [`MountPlan::idmap`] can map their ids
    /// before the child attaches them. Needs `CAP_SYS_ADMIN` (root).
    pub fn compile_detached(&self) -> Result<MountPlan, RootfsError> {
        self.compile_with(true)
    }

    fn compile_with(&self, detach: bool) -> Result<MountPlan, RootfsError> {
        self.validate()?;
        let mut b = Builder {
            detach,
            ..Builder::default()
        };
        b.push(Step::MakePrivate);
        b.tmpfs(
            Path::new(STAGE),
            sys::MS_NOSUID | sys::MS_NODEV,
            "mode=0755",
        )?;
        b.mkdir(Path::new(STAGE).join("oldroot"))?;
        b.mkdir(Path::new(STAGE).join("newroot"))?;
        b.push(Step::StagePivot);
        self.compile_root(&mut b)?;
        self.compile_proc(&mut b)?;
        if self.dev {
            compile_dev(&mut b)?;
        }
        if self.tmp {
            b.mkdir(under(NEW, Path::new("/tmp")))?;
            let data = self.tmpfs_data("mode=1777");
            b.tmpfs(&under(NEW, Path::new("/tmp")), sys::NOEXEC_FLAGS, &data)?;
        }
        for spec in &self.mounts {
            self.compile_user_mount(&mut b, spec)?;
        }
        self.compile_masks(&mut b)?;
        if self.dev {
            b.push(Step::SetAttr {
                path: cstr(under(NEW, Path::new("/dev")))?,
                attr: Attr::RDONLY,
            });
        }
        if self.readonly_root {
            b.push(Step::SetAttr {
                path: cstr(NEW)?,
                attr: Attr::RDONLY,
            });
        }
        b.push(Step::FinalPivot);
        Ok(MountPlan {
            steps: b.steps,
            masked: b.masked,
            trees: b.trees,
        })
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
                b.tmpfs(Path::new(NEW), sys::MS_NOSUID | sys::MS_NODEV, "mode=0755")?;
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
                b.bind(&under(OLD, dir), Path::new(NEW), Attr::NOSUID_NODEV, false)?;
            }
        }
        Ok(())
    }

    /// Binds an empty file or directory of the staging root, read-only,
    /// over each masked path of the view; then pins the way to each hidden
    /// directory (each directory on it bound onto itself, see
    /// [`RootfsPolicy::pins`]) and hides it behind the empty directory. A
    /// hidden directory or pin that is not there in the view is skipped:
    /// nothing shows there.
    fn compile_masks(&self, b: &mut Builder) -> Result<(), RootfsError> {
        let masks = self.masks()?;
        if masks.is_empty() && self.hidden_dirs.is_empty() {
            return Ok(());
        }
        b.push(Step::CreateFile {
            path: cstr(EMPTY_FILE)?,
        });
        b.mkdir(EMPTY_DIR)?;
        let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV).union(Attr::NOEXEC);
        for mask in masks {
            let src = if mask.is_dir { EMPTY_DIR } else { EMPTY_FILE };
            b.bind(Path::new(src), &under(NEW, &mask.path), attr, true)?;
            b.masked.push(mask.path);
        }
        for pin in self.pins()? {
            let at = cstr(under(NEW, &pin.path))?;
            let mut pin_attr = Attr::NOSUID_NODEV;
            if pin.read_only {
                pin_attr = pin_attr.union(Attr::RDONLY);
            }
            b.push(Step::Bind {
                src: at.clone(),
                dst: at,
                recursive: true,
                attr: pin_attr,
                optional: true,
            });
        }
        for hidden in &self.hidden_dirs {
            let hidden = normalize_destination(hidden)?;
            b.push(Step::Bind {
                src: cstr(EMPTY_DIR)?,
                dst: cstr(under(NEW, &hidden))?,
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
        let proc = under(NEW, Path::new("/proc"));
        b.mkdir(&proc)?;
        if self.fresh_proc {
            b.push(Step::Proc { dst: cstr(&proc)? });
            for part in PROC_READONLY {
                let path = proc.join(part);
                let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV).union(Attr::NOEXEC);
                b.push(Step::Bind {
                    src: cstr(&path)?,
                    dst: cstr(&path)?,
                    recursive: true,
                    attr,
                    optional: true,
                });
            }
        } else {
            // The host's /proc configures the host: read-only, all of it.
            let attr = Attr::RDONLY.union(Attr::NOSUID_NODEV).union(Attr::NOEXEC);
            b.bind(Path::new("/oldroot/proc"), &proc, attr, false)?;
        }
        Ok(())
    }

    fn compile_user_mount(
        &self,
        b: &mut Builder,
        spec: &crate::MountSpec,
    ) -> Result<(), RootfsError> {
        let dst = normalize_destination(&spec.destination)?;
        let inside = under(NEW, &dst);
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
            b.mkdir(&inside)?;
        } else {
            b.push(Step::CreateFile {
                path: cstr(&inside)?,
            });
        }
        // What the sandbox can write it must not run, unless asked.
        let (noexec_flag, noexec_attr) = match spec.exec {
            true => (0, Attr::NOSUID_NODEV),
            false => (sys::MS_NOEXEC, Attr::NOSUID_NODEV.union(Attr::NOEXEC)),
        };
        match (spec.kind, &resolved) {
            (MountKind::Tmpfs, _) | (_, None) => {
                let data = self.tmpfs_data("mode=0755");
                b.tmpfs(&inside, sys::MS_NOSUID | sys::MS_NODEV | noexec_flag, &data)
            }
            (MountKind::Bind, Some(src)) => b.user_bind(src, &inside, noexec_attr),
            (MountKind::RoBind, Some(src)) => {
                b.user_bind(src, &inside, Attr::RDONLY.union(Attr::NOSUID_NODEV))
            }
        }
    }
}

fn compile_host_dir(b: &mut Builder, dir: &Path) -> Result<(), RootfsError> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    let inside = under(NEW, dir);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(dir).map_err(|source| RootfsError::Source {
            path: dir.to_owned(),
            source,
        })?;
        b.push(Step::Symlink {
            target: cstr(target)?,
            link: cstr(&inside)?,
        });
    } else if meta.is_dir() {
        b.mkdir(&inside)?;
        b.bind(
            &under(OLD, dir),
            &inside,
            Attr::RDONLY.union(Attr::NOSUID_NODEV),
            false,
        )?;
    }
    Ok(())
}

fn compile_dev(b: &mut Builder) -> Result<(), RootfsError> {
    let dev = under(NEW, Path::new("/dev"));
    b.mkdir(&dev)?;
    b.tmpfs(&dev, sys::MS_NOSUID | sys::MS_NOEXEC, "mode=0755")?;
    for node in DEV_NODES {
        let path = dev.join(node);
        b.push(Step::CreateFile { path: cstr(&path)? });
        let attr = Attr::NOSUID.union(Attr::NOEXEC);
        b.bind(&Path::new("/oldroot/dev").join(node), &path, attr, true)?;
    }
    b.mkdir(dev.join("pts"))?;
    b.push(Step::Devpts {
        dst: cstr(dev.join("pts"))?,
    });
    b.mkdir(dev.join("shm"))?;
    b.tmpfs(&dev.join("shm"), sys::NOEXEC_FLAGS, "mode=1777")?;
    for (target, name) in DEV_LINKS {
        b.push(Step::Symlink {
            target: cstr(target)?,
            link: cstr(dev.join(name))?,
        });
    }
    Ok(())
}

#[derive(Default)]
struct Builder {
    steps: Vec<Step>,
    masked: Vec<PathBuf>,
    detach: bool,
    trees: Vec<(OwnedFd, PathBuf, bool)>,
}

impl Builder {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    fn mkdir(&mut self, path: impl AsRef<Path>) -> Result<(), RootfsError> {
        self.push(Step::Mkdir { path: cstr(path)? });
        Ok(())
    }

    /// Creates the missing ancestors of `dst` (a normalized destination).
    fn mkdir_parents(&mut self, dst: &Path) -> Result<(), RootfsError> {
        let mut ancestors: Vec<&Path> = dst.ancestors().skip(1).collect();
        ancestors.pop(); // "/"
        for dir in ancestors.into_iter().rev() {
            self.mkdir(under(NEW, dir))?;
        }
        Ok(())
    }

    fn tmpfs(&mut self, dst: &Path, flags: libc::c_ulong, data: &str) -> Result<(), RootfsError> {
        let data = CString::new(data).map_err(|_| RootfsError::NulByte { path: data.into() })?;
        self.push(Step::Tmpfs {
            dst: cstr(dst)?,
            flags,
            data,
        });
        Ok(())
    }

    fn bind(
        &mut self,
        src: &Path,
        dst: &Path,
        attr: Attr,
        single: bool,
    ) -> Result<(), RootfsError> {
        self.push(Step::Bind {
            src: cstr(src)?,
            dst: cstr(dst)?,
            recursive: !single,
            attr,
            optional: false,
        });
        Ok(())
    }
}

impl Builder {
    /// A user bind: from the host path `src`, reached in the child through
    /// the old root, or (detached) opened here as a tree the child attaches.
    fn user_bind(&mut self, src: &Path, dst: &Path, attr: Attr) -> Result<(), RootfsError> {
        if !self.detach {
            self.push(Step::BindNoFollow {
                src: cstr(under(OLD, src))?,
                dst: cstr(dst)?,
                attr,
            });
            return Ok(());
        }
        let tree =
            sys::open_tree_nofollow(&cstr(src)?, attr).map_err(|errno| RootfsError::Source {
                path: src.to_owned(),
                source: std::io::Error::from_raw_os_error(errno),
            })?;
        self.push(Step::AttachTree {
            fd: tree.as_raw_fd(),
            dst: cstr(dst)?,
        });
        let writable = !attr.is_read_only();
        self.trees.push((tree, src.to_owned(), writable));
        Ok(())
    }
}

impl MountPlan {
    /// The view of a runtime that builds the sandbox's view itself (such as
    /// `runsc`): the host's root, with every mount made private, a fresh
    /// `/proc` of the new PID namespace over the host's (so what the
    /// runtime reads in `/proc` is its own namespace), and each
    /// `(cover, dir)` of `covers` mounted as a read-only overlay of `cover`
    /// over `dir`: files in `cover` (empty ones, say) hide those of `dir`
    /// from the runtime itself, without a mount point inside `dir` (a
    /// runtime serving `dir` whole may refuse to cross one).
    ///
    /// Launch sequence: in the parent, before `clone`; applied like any
    /// plan.
    ///
    /// Each of `binds` is opened here, by the caller, with its rights and
    /// without following a symbolic link (a detached tree, see
    /// [`RootfsPolicy::compile_detached`]; [`MountPlan::idmap`] applies), and
    /// attached at its target: a path the runtime can reach whatever the
    /// directories above the source.
    ///
    /// ```
    /// let plan = nucleus_rootfs::MountPlan::host_with_fresh_proc(&[], &[]).unwrap();
    /// assert_eq!(plan.len(), 2);
    /// ```
    pub fn host_with_fresh_proc(
        covers: &[(PathBuf, PathBuf)],
        binds: &[RuntimeBind],
    ) -> Result<MountPlan, RootfsError> {
        let mut b = Builder {
            detach: true,
            ..Builder::default()
        };
        b.push(Step::MakePrivate);
        b.push(Step::Proc {
            dst: cstr("/proc")?,
        });
        for (cover, dir) in covers {
            let lower = format!("lowerdir={}:{}", escape_lower(cover), escape_lower(dir));
            let data =
                CString::new(lower).map_err(|_| RootfsError::NulByte { path: dir.clone() })?;
            b.push(Step::Overlay {
                dst: cstr(dir)?,
                data,
            });
        }
        for bind in binds {
            let mut attr = Attr::NOSUID_NODEV;
            if bind.read_only {
                attr = attr.union(Attr::RDONLY);
            }
            b.user_bind(&bind.source, &bind.target, attr)?;
        }
        Ok(MountPlan {
            steps: b.steps,
            masked: b.masked,
            trees: b.trees,
        })
    }

    /// Maps the ids of the detached source trees through the user
    /// namespace `userns` (`MOUNT_ATTR_IDMAP`): a file the caller's id owns
    /// shows as owned by that namespace's id 0, and one the sandbox's root
    /// creates lands as the caller's. Only with `bind_mode = "idmap"`.
    ///
    /// Launch sequence: in the parent, after the child's id maps are
    /// written, before it is released. Fails naming the bind and its
    /// filesystem where the kernel cannot idmap a writable bind; a
    /// read-only one stays a plain bind there (nothing lands through it;
    /// root's files show as the overflow id, as they do to a rootless
    /// sandbox), e.g. an overlayfs root or a Linux 6.1 tmpfs.
    pub fn idmap(&self, userns: BorrowedFd<'_>) -> Result<(), RootfsError> {
        for (tree, src, writable) in &self.trees {
            if let Err(errno) = sys::idmap_tree(tree.as_raw_fd(), userns.as_raw_fd()) {
                let unsupported = matches!(errno, libc::EINVAL | libc::EOPNOTSUPP);
                if unsupported && !writable {
                    continue;
                }
                return Err(match errno {
                    libc::EINVAL | libc::EPERM | libc::EOPNOTSUPP => {
                        RootfsError::IdmapUnsupported {
                            path: src.clone(),
                            fs_type: sys::fs_type(tree.as_raw_fd())
                                .map_or_else(String::new, fs_name),
                        }
                    }
                    _ => RootfsError::Source {
                        path: src.clone(),
                        source: std::io::Error::from_raw_os_error(errno),
                    },
                });
            }
        }
        Ok(())
    }

    /// Whether the plan holds detached source trees (and which of them
    /// are writable).
    pub fn detached_trees(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.trees.iter().map(|(_, src, w)| (src.as_path(), *w))
    }

    /// The paths the plan masks (see [`RootfsPolicy::masks`]).
    pub fn masked(&self) -> &[PathBuf] {
        &self.masked
    }

    /// Builds the view and switches into it.
    ///
    /// Launch sequence: in the sandbox child, first thing after it is
    /// released by the parent, inside a new mount namespace (and user
    /// namespace when not host root). Makes every mount private, builds the
    /// view under a staging root, `pivot_root`s into it and detaches the old
    /// root. Runs only system calls on prepared data.
    pub fn apply(&self) -> Result<(), ApplyError> {
        for (index, step) in self.steps.iter().enumerate() {
            run_step(step).map_err(|errno| ApplyError {
                step: index as u32,
                errno,
            })?;
        }
        Ok(())
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the plan is empty.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// A sentence for a failed step, naming the path as the sandbox sees it:
    /// `mount: /data: no such file or directory`.
    pub fn describe(&self, err: &ApplyError) -> String {
        let what = self
            .steps
            .get(err.step as usize)
            .map(step_target)
            .unwrap_or_default();
        let reason = std::io::Error::from_raw_os_error(err.errno).to_string();
        let reason = reason
            .split(" (os error")
            .next()
            .unwrap_or(&reason)
            .to_lowercase();
        format!("mount: {what}: {reason}")
    }
}

/// The path a step is about, as the user named it.
fn step_target(step: &Step) -> String {
    let shown = |c: &CString| {
        let s = c.to_string_lossy();
        for root in [NEW, OLD] {
            if let Some(rest) = s.strip_prefix(root) {
                return if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest.to_owned()
                };
            }
        }
        s.into_owned()
    };
    match step {
        Step::MakePrivate => "/ (make private)".to_owned(),
        Step::StagePivot | Step::FinalPivot => "pivot_root".to_owned(),
        Step::Tmpfs { dst, .. } | Step::Proc { dst } | Step::Devpts { dst } => shown(dst),
        Step::Mkdir { path } | Step::CreateFile { path } | Step::SetAttr { path, .. } => {
            shown(path)
        }
        Step::Bind { src, dst, .. } | Step::BindNoFollow { src, dst, .. } => {
            format!("{} on {}", shown(src), shown(dst))
        }
        Step::AttachTree { dst, .. } => shown(dst),
        Step::Symlink { link, .. } => shown(link),
        Step::Overlay { dst, .. } => format!("overlay on {}", shown(dst)),
    }
}

fn run_step(step: &Step) -> Result<(), i32> {
    match step {
        Step::MakePrivate => sys::make_private(),
        Step::Tmpfs { dst, flags, data } => sys::mount_fs(c"tmpfs", dst, *flags, Some(data)),
        Step::Mkdir { path } => sys::mkdir_exist_ok(path),
        Step::CreateFile { path } => sys::create_file(path),
        Step::StagePivot => sys::stage_pivot(c"/tmp", c"/tmp/oldroot"),
        Step::Bind {
            src,
            dst,
            recursive,
            attr,
            optional,
        } => match sys::bind(src, dst, *recursive, *attr) {
            Err(libc::ENOENT) if *optional => Ok(()),
            other => other,
        },
        Step::BindNoFollow { src, dst, attr } => sys::bind_nofollow(src, dst, *attr),
        Step::AttachTree { fd, dst } => sys::attach_tree(*fd, dst),
        Step::Proc { dst } => sys::mount_fs(c"proc", dst, sys::NOEXEC_FLAGS, None),
        Step::Devpts { dst } => sys::mount_fs(
            c"devpts",
            dst,
            sys::MS_NOSUID | sys::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=620"),
        ),
        Step::Symlink { target, link } => sys::symlink(target, link),
        Step::SetAttr { path, attr } => sys::set_attr(path, *attr, false),
        Step::FinalPivot => sys::final_pivot(c"/oldroot", c"/newroot"),
        Step::Overlay { dst, data } => sys::mount_fs(
            c"overlay",
            dst,
            libc::MS_RDONLY | sys::MS_NOSUID | sys::MS_NODEV,
            Some(data),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MountSpec;

    #[test]
    fn default_plan_has_the_expected_shape() {
        let plan = RootfsPolicy::default().compile().unwrap();
        assert!(matches!(plan.steps.first(), Some(Step::MakePrivate)));
        assert!(matches!(plan.steps.last(), Some(Step::FinalPivot)));
        let binds: Vec<String> = plan
            .steps
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
        let targets: Vec<String> = plan.steps.iter().map(step_target).collect();
        let bind = targets
            .iter()
            .position(|t| t == "/usr on /host-usr")
            .unwrap();
        let pin = targets
            .iter()
            .position(|t| t == "/host-usr/share on /host-usr/share")
            .unwrap();
        let mask = targets
            .iter()
            .position(|t| t == "/masked-dir on /host-usr/share/doc")
            .unwrap();
        assert!(bind < pin && pin < mask, "{targets:?}");
        assert!(matches!(
            plan.steps[pin],
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
        let targets: Vec<String> = plan.steps.iter().map(step_target).collect();
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
            .steps
            .iter()
            .position(
                |s| matches!(s, Step::Tmpfs { dst, .. } if dst.as_bytes() == b"/newroot/data"),
            )
            .unwrap();
        let msg = plan.describe(&ApplyError {
            step: step as u32,
            errno: libc::ENOENT,
        });
        assert_eq!(msg, "mount: /data: no such file or directory");
    }
}

//! The mount plan: every step prepared in the parent, run in the child.

use crate::step::{cstr, run_step, step_target, Roots, Step, Target, OLD};
use crate::sys::{self, Attr};
use crate::{ApplyError, RootfsError};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

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

/// A compiled [`RootfsPolicy`](crate::RootfsPolicy): the exact list of mount steps, ready to run
/// in the sandbox child without allocating.
#[derive(Debug)]
pub struct MountPlan {
    steps: Vec<Step>,
    masked: Vec<PathBuf>,
    /// Detached source trees (with
    /// [`RootfsPolicy::compile_detached`](crate::RootfsPolicy::compile_detached)):
    /// the tree, its host source, whether it is writable.
    trees: Vec<(OwnedFd, PathBuf, bool)>,
}

/// The plan being built: its steps, what it masks, and (detached) the
/// source trees opened so far.
pub(crate) struct Builder {
    steps: Vec<Step>,
    pub(crate) masked: Vec<PathBuf>,
    detach: bool,
    trees: Vec<(OwnedFd, PathBuf, bool)>,
}

impl Builder {
    /// An empty plan; with `detach`, user binds are opened here (see
    /// [`RootfsPolicy::compile_detached`](crate::RootfsPolicy::compile_detached)).
    pub(crate) fn new(detach: bool) -> Builder {
        Builder {
            steps: Vec::new(),
            masked: Vec::new(),
            detach,
            trees: Vec::new(),
        }
    }

    pub(crate) fn finish(self) -> MountPlan {
        MountPlan {
            steps: self.steps,
            masked: self.masked,
            trees: self.trees,
        }
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// A directory at the view's path `inside`, made as a mount point.
    pub(crate) fn mkdir(&mut self, inside: &Path) -> Result<(), RootfsError> {
        self.push(Step::Mkdir {
            path: Target::in_view(inside, crate::step::Trust::MountPoint)?,
        });
        Ok(())
    }

    /// Creates the missing ancestors of `dst` (a normalized destination).
    pub(crate) fn mkdir_parents(&mut self, dst: &Path) -> Result<(), RootfsError> {
        let mut ancestors: Vec<&Path> = dst.ancestors().skip(1).collect();
        ancestors.pop(); // "/"
        for dir in ancestors.into_iter().rev() {
            self.mkdir(dir)?;
        }
        Ok(())
    }

    pub(crate) fn tmpfs(
        &mut self,
        dst: Target,
        flags: libc::c_ulong,
        data: &str,
    ) -> Result<(), RootfsError> {
        let data = CString::new(data).map_err(|_| RootfsError::NulByte { path: data.into() })?;
        self.push(Step::Tmpfs { dst, flags, data });
        Ok(())
    }

    /// A bind of the runtime path `src` (with `single`, of its own mount
    /// only, not of what is mounted below it).
    pub(crate) fn bind(
        &mut self,
        src: &Path,
        dst: Target,
        attr: Attr,
        single: bool,
    ) -> Result<(), RootfsError> {
        self.push(Step::Bind {
            src: Some(cstr(src)?),
            dst,
            recursive: !single,
            attr,
            optional: false,
        });
        Ok(())
    }

    /// A user bind: from the host path `src`, reached in the child through
    /// the old root, or (detached) opened here as a tree the child attaches.
    pub(crate) fn user_bind(
        &mut self,
        src: &Path,
        dst: Target,
        attr: Attr,
    ) -> Result<(), RootfsError> {
        if !self.detach {
            let on_host = Path::new(OLD).join(src.strip_prefix("/").unwrap_or(src));
            self.push(Step::BindNoFollow {
                src: cstr(on_host)?,
                dst,
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
            dst,
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
    /// [`RootfsPolicy::compile_detached`](crate::RootfsPolicy::compile_detached); [`MountPlan::idmap`] applies), and
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
        let mut b = Builder::new(true);
        b.push(Step::MakePrivate);
        b.push(Step::Proc {
            dst: Target::runtime("/proc")?,
        });
        for (cover, dir) in covers {
            let lower = format!("lowerdir={}:{}", escape_lower(cover), escape_lower(dir));
            let data =
                CString::new(lower).map_err(|_| RootfsError::NulByte { path: dir.clone() })?;
            b.push(Step::Overlay {
                dst: Target::runtime(dir)?,
                data,
            });
        }
        for bind in binds {
            let mut attr = Attr::NOSUID_NODEV;
            if bind.read_only {
                attr = attr.union(Attr::RDONLY);
            }
            b.user_bind(&bind.source, Target::runtime(&bind.target)?, attr)?;
        }
        Ok(b.finish())
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
                            fs_type: sys::fs_type(tree.as_fd()).map_or_else(String::new, fs_name),
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

    /// The paths the plan masks (see [`RootfsPolicy::masks`](crate::RootfsPolicy::masks)).
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
        let mut roots = Roots::default();
        for (index, step) in self.steps.iter().enumerate() {
            run_step(step, &mut roots).map_err(|errno| ApplyError {
                step: index as u32,
                errno,
            })?;
            roots.after(step);
        }
        Ok(())
    }

    /// The steps, in order.
    #[cfg(test)]
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_view_overlays_and_proc() {
        let covers = [(PathBuf::from("/run/x/cover-0"), PathBuf::from("/etc"))];
        let plan = MountPlan::host_with_fresh_proc(&covers, &[]).unwrap();
        let targets: Vec<String> = plan.steps().iter().map(step_target).collect();
        assert_eq!(targets, ["/ (make private)", "/proc", "overlay on /etc"]);
        assert_eq!(escape_lower(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }

    #[test]
    fn filesystem_names() {
        assert_eq!(fs_name(0xEF53), "ext4");
        assert_eq!(fs_name(0x1234), "magic 0x1234");
    }
}

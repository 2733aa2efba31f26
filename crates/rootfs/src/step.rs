//! One step of a mount plan: the data the parent prepares, and how the
//! child runs it (system calls only, nothing allocated).

use crate::sys::{self, Attr};
use crate::RootfsError;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where the host root is reachable while the view is built.
pub(crate) const OLD: &str = "/oldroot";
/// Where the new view is built before the final `pivot_root`.
pub(crate) const NEW: &str = "/newroot";
/// [`NEW`] as the child opens it.
const NEW_C: &CStr = c"/newroot";

/// A path as a C string, or the error naming it.
pub(crate) fn cstr(path: impl AsRef<Path>) -> Result<CString, RootfsError> {
    let path = path.as_ref();
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RootfsError::NulByte {
        path: path.to_owned(),
    })
}

/// How far a [`Target`]'s path is trusted, which decides how the child
/// resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// A path of the runtime's own making (the staging root, the old
    /// root, a runtime's run directory): resolved as it is, from `/`.
    Runtime,
    /// A mount point the plan makes in the view: resolved from the view's
    /// root with no symbolic link anywhere on the way
    /// (`RESOLVE_NO_SYMLINKS`), as a link planted there (in an image, in a
    /// writable bind) could point the mount anywhere.
    MountPoint,
    /// A path of the view that may be reached through symbolic links, as
    /// long as they stay inside it (masks, pins, `/proc` parts):
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`; a link out of the view or
    /// a `..` above its root fails with `EXDEV`.
    InView,
}

/// A path a step acts on, split so the child can resolve it from a
/// trusted directory without leaving it, and create its last component
/// relative to its parent's descriptor.
#[derive(Debug)]
pub(crate) struct Target {
    /// The trusted directory it is resolved from: `/` or [`NEW`].
    root: &'static CStr,
    /// The whole path, as the host sees it while the view is built.
    pub(crate) full: CString,
    /// The path below `root` (`.` for `root` itself).
    rel: CString,
    /// `rel`'s parent (`.` at the top) and last component.
    parent: CString,
    name: CString,
    /// `openat2` `RESOLVE_*` flags.
    resolve: u64,
}

impl Target {
    /// An absolute path of the runtime's own making, used as it is.
    pub(crate) fn runtime(path: impl AsRef<Path>) -> Result<Target, RootfsError> {
        Target::new(c"/", Path::new("/"), path.as_ref(), Trust::Runtime)
    }

    /// The view's absolute path `inside`, resolved from the view's root.
    pub(crate) fn in_view(inside: &Path, trust: Trust) -> Result<Target, RootfsError> {
        Target::new(NEW_C, Path::new(NEW), inside, trust)
    }

    fn new(
        root: &'static CStr,
        root_path: &Path,
        path: &Path,
        trust: Trust,
    ) -> Result<Target, RootfsError> {
        // `..` is kept for the kernel to resolve (beneath the root, it cannot
        // climb out of it); `.` and the root say nothing.
        let parts: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                Component::ParentDir => Some(OsStr::new("..")),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            })
            .collect();
        let join = |parts: &[&OsStr]| match parts.iter().map(Path::new).collect::<PathBuf>() {
            joined if joined.as_os_str().is_empty() => PathBuf::from("."),
            joined => joined,
        };
        let (parent, name) = match parts.split_last() {
            Some((name, parent)) => (join(parent), PathBuf::from(name)),
            None => (join(&[]), PathBuf::new()),
        };
        let resolve = match trust {
            Trust::Runtime => 0,
            Trust::MountPoint => {
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS
            }
            Trust::InView => libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        };
        let rel = join(&parts);
        Ok(Target {
            root,
            full: cstr(match parts.is_empty() {
                true => root_path.to_owned(),
                false => root_path.join(&rel),
            })?,
            rel: cstr(&rel)?,
            parent: cstr(parent)?,
            name: cstr(name)?,
            resolve,
        })
    }

    /// The path as the sandbox names it (or, for the runtime's own paths,
    /// as the host does, with the staging prefixes taken off).
    pub(crate) fn shown(&self) -> String {
        if self.root == NEW_C {
            return match self.rel.as_bytes() {
                b"." => "/".to_owned(),
                rel => format!("/{}", String::from_utf8_lossy(rel)),
            };
        }
        shown(&self.full)
    }

    /// Opens the path itself (`O_PATH`, plus `flags`).
    fn open(&self, roots: &mut Roots, flags: libc::c_int) -> Result<OwnedFd, i32> {
        sys::open_at(roots.get(self.root)?, &self.rel, self.resolve, flags)
    }

    /// Opens the parent directory, for creating the last component in it.
    fn open_parent(&self, roots: &mut Roots) -> Result<OwnedFd, i32> {
        sys::open_at(
            roots.get(self.root)?,
            &self.parent,
            self.resolve,
            libc::O_DIRECTORY,
        )
    }

    /// Whether this is the root a target is resolved from (`/` or [`NEW`]).
    fn is_a_root(&self) -> bool {
        self.rel.as_bytes() == b"." || self.full.as_bytes() == NEW.as_bytes()
    }
}

/// The directories targets are resolved from, each opened once for a
/// plan's steps instead of once per step (a plan resolves a hundred
/// paths). A descriptor is dropped when what it names changes: at a
/// `pivot_root`, and when a step mounts on a root itself.
#[derive(Default)]
pub(crate) struct Roots {
    host: Option<OwnedFd>,
    view: Option<OwnedFd>,
}

impl Roots {
    /// The open directory `root` (`/` or [`NEW`]).
    fn get(&mut self, root: &CStr) -> Result<RawFd, i32> {
        let slot = if root == NEW_C {
            &mut self.view
        } else {
            &mut self.host
        };
        if slot.is_none() {
            *slot = Some(sys::open_dir(root)?);
        }
        Ok(slot.as_ref().map_or(-1, AsRawFd::as_raw_fd))
    }

    /// After `step` ran: forgets what it may have changed.
    pub(crate) fn after(&mut self, step: &Step) {
        let mounted_on = match step {
            Step::StagePivot | Step::FinalPivot => {
                *self = Roots::default();
                return;
            }
            Step::Tmpfs { dst, .. }
            | Step::Bind { dst, .. }
            | Step::BindNoFollow { dst, .. }
            | Step::AttachTree { dst, .. }
            | Step::Proc { dst }
            | Step::Devpts { dst }
            | Step::Overlay { dst, .. } => dst,
            _ => return,
        };
        if mounted_on.is_a_root() {
            *self = Roots::default();
        }
    }
}

/// A runtime path as the user named it: the staging prefixes taken off.
fn shown(c: &CStr) -> String {
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
}

/// One step of the plan. Every string is prepared before `clone`.
#[derive(Debug)]
pub(crate) enum Step {
    MakePrivate,
    Tmpfs {
        dst: Target,
        flags: libc::c_ulong,
        data: CString,
    },
    Mkdir {
        path: Target,
    },
    CreateFile {
        path: Target,
    },
    StagePivot,
    /// A bind of the runtime path `src` (or, with `None`, of `dst` onto
    /// itself).
    Bind {
        src: Option<CString>,
        dst: Target,
        recursive: bool,
        attr: Attr,
        optional: bool,
    },
    /// A bind of a user-given source: no symbolic link is followed
    /// anywhere in `src` (checked again in the child, where it counts).
    BindNoFollow {
        src: CString,
        dst: Target,
        attr: Attr,
    },
    /// A source tree the parent opened (and maybe idmapped), attached.
    AttachTree {
        fd: RawFd,
        dst: Target,
    },
    Proc {
        dst: Target,
    },
    Devpts {
        dst: Target,
    },
    Symlink {
        target: CString,
        link: Target,
    },
    SetAttr {
        path: Target,
        attr: Attr,
    },
    Overlay {
        dst: Target,
        data: CString,
    },
    FinalPivot,
}

/// The path a step is about, as the user named it.
pub(crate) fn step_target(step: &Step) -> String {
    match step {
        Step::MakePrivate => "/ (make private)".to_owned(),
        Step::StagePivot | Step::FinalPivot => "pivot_root".to_owned(),
        Step::Tmpfs { dst, .. } | Step::Proc { dst } | Step::Devpts { dst } => dst.shown(),
        Step::Mkdir { path } | Step::CreateFile { path } | Step::SetAttr { path, .. } => {
            path.shown()
        }
        Step::Bind { src, dst, .. } => {
            let src = src.as_deref().map_or_else(|| dst.shown(), shown);
            format!("{src} on {}", dst.shown())
        }
        Step::BindNoFollow { src, dst, .. } => format!("{} on {}", shown(src), dst.shown()),
        Step::AttachTree { dst, .. } => dst.shown(),
        Step::Symlink { link, .. } => link.shown(),
        Step::Overlay { dst, .. } => format!("overlay on {}", dst.shown()),
    }
}

/// Runs one step. In the sandbox child: system calls on prepared data.
pub(crate) fn run_step(step: &Step, roots: &mut Roots) -> Result<(), i32> {
    match step {
        Step::MakePrivate => sys::make_private(),
        Step::Tmpfs { dst, flags, data } => mount_fs(roots, c"tmpfs", dst, *flags, Some(data)),
        Step::Mkdir { path } => sys::mkdir_in(path.open_parent(roots)?.as_fd(), &path.name),
        Step::CreateFile { path } => {
            sys::create_file_in(path.open_parent(roots)?.as_fd(), &path.name)
        }
        Step::StagePivot => sys::stage_pivot(c"/tmp", c"/tmp/oldroot"),
        Step::Bind {
            src,
            dst,
            recursive,
            attr,
            optional,
        } => match bind(roots, src.as_deref(), dst, *recursive, *attr) {
            Err(libc::ENOENT) if *optional => Ok(()),
            other => other,
        },
        Step::BindNoFollow { src, dst, attr } => {
            let tree = sys::detach_tree_nofollow(src)?;
            attach(roots, &tree, dst, Some((*attr, true)))
        }
        Step::AttachTree { fd, dst } => {
            let dst_fd = dst.open(roots, 0)?;
            sys::attach_tree(*fd, dst_fd.as_raw_fd())
        }
        Step::Proc { dst } => mount_fs(roots, c"proc", dst, sys::NOEXEC_FLAGS, None),
        Step::Devpts { dst } => mount_fs(
            roots,
            c"devpts",
            dst,
            sys::MS_NOSUID | sys::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=620"),
        ),
        Step::Symlink { target, link } => {
            sys::symlink_in(target, link.open_parent(roots)?.as_fd(), &link.name)
        }
        Step::SetAttr { path, attr } => {
            let fd = path.open(roots, 0)?;
            sys::set_attr(fd.as_fd(), *attr, false, &path.full)
        }
        Step::FinalPivot => sys::final_pivot(c"/oldroot", c"/newroot"),
        Step::Overlay { dst, data } => mount_fs(
            roots,
            c"overlay",
            dst,
            libc::MS_RDONLY | sys::MS_NOSUID | sys::MS_NODEV,
            Some(data),
        ),
    }
}

/// A new filesystem on the directory `dst`, reached through its resolved
/// descriptor.
fn mount_fs(
    roots: &mut Roots,
    fstype: &CStr,
    dst: &Target,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let dir = dst.open(roots, libc::O_DIRECTORY)?;
    sys::mount_fs_on(fstype, dir.as_fd(), flags, data)
}

/// A copy of the tree at the runtime path `src` (or at `dst` itself),
/// attached on `dst`, with `attr`.
fn bind(
    roots: &mut Roots,
    src: Option<&CStr>,
    dst: &Target,
    recursive: bool,
    attr: Attr,
) -> Result<(), i32> {
    let tree = match src {
        Some(src) => sys::clone_tree(src, recursive)?,
        None => sys::clone_tree_at(dst.open(roots, 0)?.as_fd(), recursive)?,
    };
    attach(roots, &tree, dst, Some((attr, recursive)))
}

/// Attaches the detached `tree` on `dst`, then sets `attr` on it (on all
/// of it with `recursive`).
fn attach(
    roots: &mut Roots,
    tree: &OwnedFd,
    dst: &Target,
    attr: Option<(Attr, bool)>,
) -> Result<(), i32> {
    let dst_fd = dst.open(roots, 0)?;
    sys::attach_tree(tree.as_raw_fd(), dst_fd.as_raw_fd())?;
    match attr {
        Some((attr, recursive)) => sys::set_attr(tree.as_fd(), attr, recursive, &dst.full),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_parent_and_name() {
        let t = Target::in_view(Path::new("/a/b/c"), Trust::MountPoint).unwrap();
        assert_eq!(t.full.as_bytes(), b"/newroot/a/b/c");
        assert_eq!(t.rel.as_bytes(), b"a/b/c");
        assert_eq!(t.parent.as_bytes(), b"a/b");
        assert_eq!(t.name.as_bytes(), b"c");
        assert_eq!(t.shown(), "/a/b/c");
        assert_ne!(t.resolve & libc::RESOLVE_NO_SYMLINKS, 0);
        let top = Target::in_view(Path::new("/usr"), Trust::InView).unwrap();
        assert_eq!(top.parent.as_bytes(), b".");
        assert_eq!(top.resolve & libc::RESOLVE_NO_SYMLINKS, 0);
        let runtime = Target::runtime("/oldroot/usr").unwrap();
        assert_eq!(runtime.rel.as_bytes(), b"oldroot/usr");
        assert_eq!(runtime.resolve, 0);
        assert_eq!(runtime.shown(), "/usr");
        assert_eq!(Target::runtime(NEW).unwrap().shown(), "/");
        let up = Target::runtime("/srv/../img").unwrap();
        assert_eq!(up.rel.as_bytes(), b"srv/../img");
    }
}

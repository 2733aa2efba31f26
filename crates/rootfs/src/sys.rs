//! The raw system calls of the mount plan. Each returns the errno on failure
//! and allocates nothing, so it can run between `clone` and `execve`.
//!
//! Raw `libc` rather than `nix`: most of these run in the sandbox child
//! between `clone` and `execve`, where the runner keeps to plain system
//! calls on prepared data; and `nix` has no `open_tree`, `move_mount` or
//! `mount_setattr`. The one parent-only call `nix` covers (`fstatfs`) uses
//! it.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

pub(crate) const MS_NOSUID: libc::c_ulong = libc::MS_NOSUID;
pub(crate) const MS_NODEV: libc::c_ulong = libc::MS_NODEV;
pub(crate) const MS_NOEXEC: libc::c_ulong = libc::MS_NOEXEC;
pub(crate) const NOEXEC_FLAGS: libc::c_ulong = MS_NOSUID | MS_NODEV | MS_NOEXEC;

/// `MOUNT_ATTR_*` bits for `mount_setattr(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr(u64);

impl Attr {
    pub(crate) const RDONLY: Attr = Attr(0x1);
    pub(crate) const NOSUID: Attr = Attr(0x2);
    pub(crate) const NODEV: Attr = Attr(0x4);
    pub(crate) const NOEXEC: Attr = Attr(0x8);
    pub(crate) const NOSUID_NODEV: Attr = Attr(0x2 | 0x4);

    pub(crate) const fn is_read_only(self) -> bool {
        self.0 & Self::RDONLY.0 != 0
    }

    pub(crate) const fn union(self, other: Attr) -> Attr {
        Attr(self.0 | other.0)
    }

    /// The same attributes as `MS_*` flags for the remount fallback.
    fn ms_flags(self) -> libc::c_ulong {
        let mut flags = 0;
        if self.0 & Self::RDONLY.0 != 0 {
            flags |= libc::MS_RDONLY;
        }
        if self.0 & Self::NOSUID.0 != 0 {
            flags |= libc::MS_NOSUID;
        }
        if self.0 & Self::NODEV.0 != 0 {
            flags |= libc::MS_NODEV;
        }
        if self.0 & Self::NOEXEC.0 != 0 {
            flags |= libc::MS_NOEXEC;
        }
        flags
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: libc::c_long) -> Result<(), i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn mount(
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let opt = |s: Option<&CStr>| s.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let ret = unsafe { libc::mount(opt(src), dst.as_ptr(), opt(fstype), flags, opt(data).cast()) };
    check(ret.into())
}

pub(crate) fn make_private() -> Result<(), i32> {
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
}

fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
}

fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { libc::chdir(path.as_ptr()) }.into())
}

fn umount_detach(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) }.into())
}

/// Moves the root to the staging tmpfs; the host root stays at `put_old`.
pub(crate) fn stage_pivot(stage: &CStr, put_old: &CStr) -> Result<(), i32> {
    pivot_root(stage, put_old)?;
    chdir(c"/")
}

/// Detaches the host root, then makes `new_root` the root. `pivot_root(".",
/// ".")` stacks the old root on top of the new one; detaching `.` drops it.
pub(crate) fn final_pivot(old_root: &CStr, new_root: &CStr) -> Result<(), i32> {
    umount_detach(old_root)?;
    chdir(new_root)?;
    pivot_root(c".", c".")?;
    umount_detach(c".")?;
    chdir(c"/")
}

/// Whether `mount_setattr(2)` exists: called with bad flags, it answers
/// `EINVAL` when it exists and `ENOSYS` when it does not.
pub(crate) fn mount_setattr_supported() -> bool {
    // SAFETY: a null attribute pointer with size 0 only makes the kernel validate arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            ptr::null::<libc::c_char>(),
            0,
            ptr::null::<u8>(),
            0,
        )
    };
    ret == 0 || errno() != libc::ENOSYS
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Takes ownership of a descriptor the kernel just returned.
fn owned(ret: libc::c_long) -> Result<OwnedFd, i32> {
    check(ret)?;
    // SAFETY: `ret` is a new descriptor the kernel returned to us, owned by
    // nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// `openat2(dir, path, O_CLOEXEC | flags, resolve)`.
fn openat2(
    dir: libc::c_int,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> Result<OwnedFd, i32> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and `how` is a live, correctly sized
    // open_how; both outlive the call.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// Opens the trusted directory `root` (`O_PATH`), to resolve paths from.
pub(crate) fn open_dir(root: &CStr) -> Result<OwnedFd, i32> {
    openat2(libc::AT_FDCWD, root, libc::O_PATH | libc::O_DIRECTORY, 0)
}

/// Opens `rel` below the open directory `dir` (`O_PATH`, plus `flags`),
/// with the `RESOLVE_*` flags `resolve`: with `RESOLVE_BENEATH`, neither
/// `..` nor a symbolic link can lead out of `dir` (`EXDEV`).
pub(crate) fn open_at(
    dir: RawFd,
    rel: &CStr,
    resolve: u64,
    flags: libc::c_int,
) -> Result<OwnedFd, i32> {
    openat2(dir, rel, libc::O_PATH | flags, resolve)
}

/// `mkdirat(dir, name)`; an existing entry must be a real directory: a
/// symbolic link there (in an image, in a writable bind) could point
/// mounts at the host (`ELOOP`).
pub(crate) fn mkdir_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), i32> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    match check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) }.into()) {
        Err(libc::EEXIST) => match file_type_in(dir, name)? {
            libc::S_IFDIR => Ok(()),
            libc::S_IFLNK => Err(libc::ELOOP),
            _ => Err(libc::ENOTDIR),
        },
        other => other,
    }
}

/// The `S_IFMT` bits of `name` in `dir`, not following a symbolic link.
fn file_type_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<libc::mode_t, i32> {
    // SAFETY: stat is plain data; all-zero is valid and the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is a live stat buffer.
    let ret = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(ret.into())?;
    Ok(st.st_mode & libc::S_IFMT)
}

/// Creates the empty file `name` in `dir` (kept if it is there); a
/// symbolic link there is refused (`O_NOFOLLOW`: `ELOOP`).
pub(crate) fn create_file_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), i32> {
    let flags =
        libc::O_RDONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;
    // SAFETY: `name` is NUL-terminated; the descriptor is owned right below.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o644) };
    owned(fd.into()).map(drop)
}

/// `symlinkat(target, dir, name)`.
pub(crate) fn symlink_in(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), i32> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }.into())
}

fn fchdir(dir: libc::c_int) -> Result<(), i32> {
    // SAFETY: plain call on a descriptor; no memory is passed.
    check(unsafe { libc::fchdir(dir) }.into())
}

/// Mounts a new `fstype` on the directory `dir` (a resolved descriptor):
/// `mount(2)` takes only paths, so on `.` after `fchdir`; the working
/// directory is put back after.
pub(crate) fn mount_fs_on(
    fstype: &CStr,
    dir: BorrowedFd<'_>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let back = openat2(libc::AT_FDCWD, c".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    fchdir(dir.as_raw_fd())?;
    let mounted = mount(Some(fstype), c".", Some(fstype), flags, data);
    let returned = fchdir(back.as_raw_fd());
    mounted.and(returned)
}

fn open_tree(dir: libc::c_int, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags) })
}

fn clone_flags(recursive: bool) -> libc::c_uint {
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec as libc::c_uint
}

/// A detached copy of the mount at the runtime path `src` (and, with
/// `recursive`, of what is mounted below it): a bind to attach.
pub(crate) fn clone_tree(src: &CStr, recursive: bool) -> Result<OwnedFd, i32> {
    open_tree(libc::AT_FDCWD, src, clone_flags(recursive))
}

/// [`clone_tree`] of the file or directory `fd` refers to.
pub(crate) fn clone_tree_at(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, i32> {
    let flags = clone_flags(recursive) | libc::AT_EMPTY_PATH as libc::c_uint;
    open_tree(fd.as_raw_fd(), c"", flags)
}

/// `openat2(O_PATH, RESOLVE_NO_SYMLINKS)` then `open_tree(OPEN_TREE_CLONE |
/// AT_RECURSIVE)`: a detached copy of the tree at `src`, reached without
/// following a symbolic link, with the caller's own rights. A source
/// replaced by a link after the parent checked it fails with `ELOOP`.
pub(crate) fn detach_tree_nofollow(src: &CStr) -> Result<OwnedFd, i32> {
    let fd = openat2(libc::AT_FDCWD, src, libc::O_PATH, libc::RESOLVE_NO_SYMLINKS)?;
    clone_tree_at(std::os::fd::AsFd::as_fd(&fd), true)
}

/// A detached copy of the tree at `src` (see [`detach_tree_nofollow`]),
/// with `attr` set on all of it.
///
/// Launch sequence: in the parent, before `clone`.
pub(crate) fn open_tree_nofollow(src: &CStr, attr: Attr) -> Result<OwnedFd, i32> {
    let tree = detach_tree_nofollow(src)?;
    setattr_fd(tree.as_raw_fd(), attr.0, 0, true)?;
    Ok(tree)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], ...)`.
fn setattr_fd(fd: libc::c_int, attr_set: u64, userns_fd: u64, recursive: bool) -> Result<(), i32> {
    let args = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: an empty NUL-terminated path relative to our fd, and a live,
    // correctly sized mount_attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | rec,
            &args as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret)
}

/// Sets mount attributes on the mount `fd` refers to with
/// `mount_setattr(2)`. Kernels older than 5.12 lack it: there, a bind
/// remount of `path` (the same mount, by its path), which keeps the flags
/// the mount already has (a user namespace may not clear them); as the
/// path is resolved again, the flags are then checked on `fd` itself, and a
/// mount that did not get them (a link swapped in on the way) fails with
/// `EXDEV`.
pub(crate) fn set_attr(
    fd: BorrowedFd<'_>,
    attr: Attr,
    recursive: bool,
    path: &CStr,
) -> Result<(), i32> {
    match setattr_fd(fd.as_raw_fd(), attr.0, 0, recursive) {
        Err(libc::ENOSYS) => remount(fd, attr, path),
        other => other,
    }
}

fn mount_flags(fd: BorrowedFd<'_>) -> Result<libc::c_ulong, i32> {
    // SAFETY: statvfs is plain old data; all-zero is valid and the kernel fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live statvfs.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) }.into())?;
    Ok(st.f_flag as libc::c_ulong)
}

fn remount(fd: BorrowedFd<'_>, attr: Attr, path: &CStr) -> Result<(), i32> {
    let kept = mount_flags(fd)?
        & (libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC | libc::ST_RDONLY | libc::ST_NOATIME)
            as libc::c_ulong;
    let flags = libc::MS_REMOUNT | libc::MS_BIND | attr.ms_flags() | kept;
    mount(None, path, None, flags, None)?;
    let wanted = attr.ms_flags();
    if mount_flags(fd)? & wanted != wanted {
        return Err(libc::EXDEV);
    }
    Ok(())
}

/// `MOUNT_ATTR_IDMAP`: the detached tree `fd` shows and stores ids through
/// the user namespace `userns` (on-disk id N is id N inside it).
pub(crate) fn idmap_tree(fd: libc::c_int, userns: libc::c_int) -> Result<(), i32> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr_fd(fd, MOUNT_ATTR_IDMAP, userns as u64, true)
}

/// Attaches the detached tree `fd` on the file or directory `dst` refers
/// to (`move_mount` between two descriptors: no path is resolved).
pub(crate) fn attach_tree(fd: libc::c_int, dst: libc::c_int) -> Result<(), i32> {
    // SAFETY: empty NUL-terminated paths relative to two descriptors.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            dst,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(moved)
}

/// The filesystem type of `fd`'s file (`statfs(2)`'s `f_type`).
///
/// Launch sequence: in the parent only (naming a filesystem in an error).
// `f_type`'s width differs between C libraries (an `i64` with glibc).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn fs_type(fd: BorrowedFd<'_>) -> Option<i64> {
    nix::sys::statfs::fstatfs(fd)
        .ok()
        .map(|st| st.filesystem_type().0 as i64)
}

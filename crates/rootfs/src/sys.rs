//! The raw system calls of the mount plan. Each returns the errno on failure
//! and allocates nothing, so it can run between `clone` and `execve`.

use std::ffi::CStr;
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

pub(crate) fn mount_fs(
    fstype: &CStr,
    dst: &CStr,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    mount(Some(fstype), dst, Some(fstype), flags, data)
}

pub(crate) fn mkdir_exist_ok(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    match check(unsafe { libc::mkdir(path.as_ptr(), 0o755) }.into()) {
        // An existing entry must be a real directory: a symbolic link in an
        // image or in a writable bind could point mounts at the host.
        Err(libc::EEXIST) => match file_type(path)? {
            libc::S_IFDIR => Ok(()),
            libc::S_IFLNK => Err(libc::ELOOP),
            _ => Err(libc::ENOTDIR),
        },
        other => other,
    }
}

/// The `S_IFMT` bits of `path`, not following a final symbolic link.
fn file_type(path: &CStr) -> Result<libc::mode_t, i32> {
    // SAFETY: stat is plain data; all-zero is valid and the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a live stat buffer.
    check(unsafe { libc::lstat(path.as_ptr(), &mut st) }.into())?;
    Ok(st.st_mode & libc::S_IFMT)
}

pub(crate) fn create_file(path: &CStr) -> Result<(), i32> {
    // O_NOFOLLOW: a symbolic link planted at the mount point is refused.
    let flags =
        libc::O_RDONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;
    // SAFETY: `path` is NUL-terminated; the returned fd is closed right below.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644) };
    check(fd.into())?;
    // SAFETY: `fd` was just opened by us.
    unsafe { libc::close(fd) };
    Ok(())
}

pub(crate) fn symlink(target: &CStr, link: &CStr) -> Result<(), i32> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }.into())
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

pub(crate) fn bind(src: &CStr, dst: &CStr, recursive: bool, attr: Attr) -> Result<(), i32> {
    let rec = if recursive { libc::MS_REC } else { 0 };
    mount(Some(src), dst, None, libc::MS_BIND | rec, None)?;
    set_attr(dst, attr, recursive)
}

/// Sets mount attributes with `mount_setattr(2)`, falling back to a bind
/// remount of the top mount on kernels older than 5.12. The remount keeps
/// the flags the mount already has, which a user namespace may not clear.
pub(crate) fn set_attr(path: &CStr, attr: Attr, recursive: bool) -> Result<(), i32> {
    let args = MountAttr {
        attr_set: attr.0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is NUL-terminated and `args` is a live, correctly sized mount_attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::AT_NO_AUTOMOUNT,
            &args as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    match check(ret) {
        Err(libc::ENOSYS) => remount(path, attr),
        other => other,
    }
}

fn remount(path: &CStr, attr: Attr) -> Result<(), i32> {
    // SAFETY: statvfs is plain old data; all-zero is valid and the kernel fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a live statvfs.
    check(unsafe { libc::statvfs(path.as_ptr(), &mut st) }.into())?;
    let kept = st.f_flag
        & (libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC | libc::ST_RDONLY | libc::ST_NOATIME);
    let flags = libc::MS_REMOUNT | libc::MS_BIND | attr.ms_flags() | kept as libc::c_ulong;
    mount(None, path, None, flags, None)
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

const OPEN_TREE_CLONE: libc::c_uint = 1;

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Closes an fd this module opened.
fn close(fd: libc::c_long) {
    // SAFETY: `fd` was returned by the kernel to us and is not used again.
    unsafe { libc::close(fd as libc::c_int) };
}

/// `openat2(O_PATH, RESOLVE_NO_SYMLINKS)` then `open_tree(OPEN_TREE_CLONE |
/// AT_RECURSIVE)`: a detached copy of the tree at `src`, reached without
/// following a symbolic link, with the caller's own rights.
fn detach_tree_nofollow(src: &CStr) -> Result<libc::c_long, i32> {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: `src` is NUL-terminated and `how` is a live, correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            src.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    check(fd)?;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: an empty NUL-terminated path relative to our own O_PATH fd.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) };
    close(fd);
    check(tree)?;
    Ok(tree)
}

/// A detached copy of the tree at `src` (see `detach_tree_nofollow`),
/// owned, with `attr` set on all of it.
pub(crate) fn open_tree_nofollow(src: &CStr, attr: Attr) -> Result<std::os::fd::OwnedFd, i32> {
    use std::os::fd::FromRawFd;
    let tree = detach_tree_nofollow(src)?;
    // SAFETY: `tree` was just returned by the kernel and nothing else owns it.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(tree as libc::c_int) };
    setattr_fd(tree as libc::c_int, attr.0, 0)?;
    Ok(owned)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, ...)`.
fn setattr_fd(fd: libc::c_int, attr_set: u64, userns_fd: u64) -> Result<(), i32> {
    let args = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    // SAFETY: an empty NUL-terminated path relative to our fd, and a live,
    // correctly sized mount_attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &args as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret)
}

/// `MOUNT_ATTR_IDMAP`: the detached tree `fd` shows and stores ids through
/// the user namespace `userns` (on-disk id N is id N inside it).
pub(crate) fn idmap_tree(fd: libc::c_int, userns: libc::c_int) -> Result<(), i32> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr_fd(fd, MOUNT_ATTR_IDMAP, userns as u64)
}

/// Attaches the detached tree `fd` at `dst` (`move_mount`).
pub(crate) fn attach_tree(fd: libc::c_int, dst: &CStr) -> Result<(), i32> {
    // SAFETY: attaches a detached tree we own at the NUL-terminated `dst`.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(moved)
}

/// The filesystem type of `fd`'s file (`statfs(2)`'s `f_type`).
pub(crate) fn fs_type(fd: libc::c_int) -> Option<i64> {
    // SAFETY: statfs is plain old data; all-zero is valid and the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live statfs buffer.
    let ret = unsafe { libc::fstatfs(fd, &mut st) };
    (ret == 0).then_some(st.f_type as i64)
}

/// Binds `src` (and what is mounted below it) on `dst` without following a
/// symbolic link in any component of `src`: `openat2(RESOLVE_NO_SYMLINKS)`,
/// a detached copy of that tree (`open_tree`), attached at `dst`
/// (`move_mount`); then `attr`. A source replaced by a link after the
/// parent checked it fails with `ELOOP` here.
pub(crate) fn bind_nofollow(src: &CStr, dst: &CStr, attr: Attr) -> Result<(), i32> {
    let tree = detach_tree_nofollow(src)?;
    let moved = attach_tree(tree as libc::c_int, dst);
    close(tree);
    moved?;
    set_attr(dst, attr, true)
}

//! The raw system calls of this crate.

pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid(2) takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

pub(crate) fn getgid() -> u32 {
    // SAFETY: getgid(2) takes no arguments and cannot fail.
    unsafe { libc::getgid() }
}

/// Opens (creating, mode 0600) the lock file `name` in the directory `dir`,
/// never through a symbolic link.
pub(crate) fn open_lock_file(
    dir: libc::c_int,
    name: &std::ffi::CStr,
) -> std::io::Result<libc::c_int> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is a live NUL-terminated string; the mode is a plain int.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Takes an exclusive `flock` on `fd` without waiting: `false` when
/// another open file description holds it.
pub(crate) fn try_flock(fd: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: plain flock on a descriptor the caller owns.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

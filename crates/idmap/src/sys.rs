//! The system calls of this crate: `nix` where it has a safe wrapper (none
//! of these runs between clone and exec), raw `libc` for `flock`.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;

/// The caller's real uid.
pub(crate) fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The caller's real gid.
pub(crate) fn getgid() -> u32 {
    nix::unistd::getgid().as_raw()
}

/// Opens (creating, mode 0600) the lock file `name` in the directory `dir`,
/// never through a symbolic link.
pub(crate) fn open_lock_file(dir: impl AsFd, name: &CStr) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    fcntl::openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map_err(std::io::Error::from)
}

/// Takes an exclusive `flock` on `fd` without waiting: `false` when
/// another open file description holds it.
///
/// Raw `libc`: nix's `flock` function is deprecated, and its replacement,
/// the `Flock` guard, unlocks explicitly when dropped (and panics if that
/// fails). The lease must instead stay locked until the kernel closes the
/// last copy of the descriptor, which is also what frees the range of a
/// runner that was killed.
pub(crate) fn try_flock(fd: &OwnedFd) -> std::io::Result<bool> {
    loop {
        // SAFETY: plain flock on a descriptor the caller owns.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
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

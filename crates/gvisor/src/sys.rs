//! The crate's only `unsafe`: a pidfd to wait for a child with a timeout,
//! and the clock tick of `/proc` start times. `pidfd_open(2)` is raw `libc`
//! because `nix` does not wrap it; `poll(2)` is `nix`'s (this all runs in
//! the parent, never in a sandbox child).

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits.
///
/// Only called on a child this process has not reaped yet, so the pid
/// cannot have been reused.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new
    // descriptor or -1; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `poll(2)` for readability of one descriptor; `Ok(false)` on timeout.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX);
    Ok(poll(&mut fds, timeout)? > 0)
}

/// `sysconf(_SC_CLK_TCK)`: the unit of start times in `/proc/PID/stat`.
pub(crate) fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf takes a constant by value and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|n| *n > 0)
}

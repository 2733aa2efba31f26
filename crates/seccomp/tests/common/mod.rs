//! Helpers for tests that install filters: every filter goes on a forked child, never on the
//! test process. The gates and the forking are `nucleus-test-support`'s (re-exported here);
//! the raw calls a filtered child makes, and all the tests' own `unsafe`, are here.
// Each test binary uses its own part of these helpers and re-exports.
#![allow(dead_code, unused_imports)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use nucleus_seccomp::CompiledFilter;

pub use nucleus_test_support::{exit, fork, in_child, no_new_privs, pipe, skip, wait, which, Exit};

/// A raw syscall; `Ok(ret)` or `Err(errno)`.
pub fn syscall(nr: libc::c_long, a: [libc::c_long; 5]) -> Result<libc::c_long, i32> {
    // SAFETY: callers pass syscalls whose pointer arguments are null or valid.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// `Ok(())` if `r` failed with `want`, else `Err(step)`: the child exits with `step`.
pub fn expect_errno(step: i32, r: Result<libc::c_long, i32>, want: i32) -> Result<(), i32> {
    match r {
        Err(e) if e == want => Ok(()),
        _ => Err(step),
    }
}

/// `Ok(())` if `r` succeeded, else `Err(step)`.
pub fn expect_ok(step: i32, r: Result<libc::c_long, i32>) -> Result<(), i32> {
    r.map(drop).map_err(|_| step)
}

/// `ioctl(fd, req, arg)`.
pub fn ioctl(fd: RawFd, req: libc::c_ulong, arg: *mut libc::c_void) -> Result<libc::c_long, i32> {
    syscall(
        libc::SYS_ioctl,
        [
            fd as libc::c_long,
            req as libc::c_long,
            arg as libc::c_long,
            0,
            0,
        ],
    )
}

/// A pseudo-terminal: (master, slave).
pub fn openpty() -> (OwnedFd, OwnedFd) {
    // SAFETY: posix_openpt returns a new fd or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(m >= 0);
    // SAFETY: `m` is a new fd of ours.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: `m` is a pty master; `name` is a live buffer of the given length.
    unsafe {
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
    }
    // SAFETY: `name` is NUL-terminated by ptsname_r.
    let s = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    assert!(s >= 0);
    // SAFETY: `s` is a new fd of ours.
    (master, unsafe { OwnedFd::from_raw_fd(s) })
}

/// `write` all of `buf`, allocation-free.
pub fn write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: `buf` is live for its length.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
}

/// `dup2(from, to)`.
pub fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: plain integers.
    unsafe { libc::dup2(from, to) };
}

/// A null-terminated pointer array for `execv`, built before fork so the child allocates
/// nothing.
pub fn argv_ptrs(argv: &[CString]) -> Vec<*const libc::c_char> {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    ptrs
}

/// `execv(argv[0], argv)`, returning only on failure.
pub fn execv(ptrs: &[*const libc::c_char]) {
    // SAFETY: callers pass `argv_ptrs` of live NUL-terminated strings, null-terminated.
    unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
}

/// Run `cmd` with `filter` installed (after `no_new_privs`) just before its `execve`.
pub fn output_under(cmd: &mut Command, filter: CompiledFilter) -> Output {
    let hook = move || {
        // SAFETY: plain integers.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        filter
            .apply()
            .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)))
    };
    // SAFETY: the hook makes two syscalls and allocates nothing.
    unsafe { cmd.pre_exec(hook) };
    cmd.output().expect("spawn")
}

/// The raw fd of `fd`.
pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

/// The kernel log lines not read yet from `kmsg` (an open `/dev/kmsg`), without blocking.
pub fn kmsg_drain(kmsg: &mut std::fs::File) -> Vec<String> {
    use std::io::Read;
    // SAFETY: plain integers on an fd the caller owns.
    unsafe { libc::fcntl(kmsg.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut buf) {
            Ok(n) if n > 0 => lines.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            // A record overwritten before we read it: go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            _ => return lines,
        }
    }
}

//! The crate's `unsafe`: loading compiled code, and the libc calls of the cache and of the
//! compile helper (fork, pipes, wait).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The effective uid, which must own the cache.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid takes no argument and cannot fail.
    unsafe { libc::geteuid() }
}

/// Loads a compiled core module.
///
/// Only call with bytes this crate serialized itself: a cache file whose owner, mode, header
/// and authentication tag the caller checked (see `cache::load`), or the artifact our own
/// compile helper wrote to its pipe (see `helper::compile`).
pub(crate) fn deserialize_module(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: `bytes` is the output of `Module::serialize` by this crate: from our compile
    // helper, or from a cache file authenticated with a key only our uid can read; wasmtime
    // checks the engine compatibility itself.
    unsafe { Module::deserialize(engine, bytes) }
}

/// Loads a compiled component; same contract as [`deserialize_module`].
pub(crate) fn deserialize_component(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: as in `deserialize_module`: our own `Component::serialize` output, from our
    // helper or authenticated.
    unsafe { Component::deserialize(engine, bytes) }
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`).
pub(crate) fn random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(())
}

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fork(2)`: `None` in the child, the child's pid in the parent.
///
/// The caller must be single-threaded: the child goes on allocating.
pub(crate) fn fork() -> std::io::Result<Option<i32>> {
    // SAFETY: fork has no memory-safety precondition; the caller is single-threaded, so no
    // lock is held by a thread that does not exist in the child.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

/// Sends `sig` to `pid` (an unreaped child of ours: its pid cannot be reused).
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, sig) };
}

/// Reaps `pid`: its wait status and peak resident set in bytes (`ru_maxrss`).
pub(crate) fn wait(pid: i32) -> std::io::Result<(i32, u64)> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; all-zero is valid and the kernel fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `status` and `usage` are live and writable.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, (usage.ru_maxrss.max(0) as u64) * 1024));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `fd` is readable (or at its end) within `timeout_ms` (-1: no limit).
pub(crate) fn poll_in(fd: RawFd, timeout_ms: i32) -> std::io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd.
    match unsafe { libc::poll(&mut p, 1, timeout_ms) } {
        -1 => {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => Ok(false),
                _ => Err(err),
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// One `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is live and writable for `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// In a forked child: `SIGKILL` when the parent dies; exits at once if it already has.
pub(crate) fn die_with_parent(parent: u32) {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        exit(1);
    }
}

/// `_exit(2)`: no destructor, no atexit handler, no flush of the parent's buffers.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

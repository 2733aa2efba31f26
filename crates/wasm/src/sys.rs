//! The crate's `unsafe`: loading compiled code, and the libc calls that nix does not wrap
//! safely (`fork`, `wait4` with the child's resource usage, `getrandom`, `_exit`). The rest
//! of the crate's system calls go through nix.

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

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

/// Fills `buf` from the kernel's random source (`getrandom(2)`, which nix does not wrap).
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

/// `fork(2)`: `None` in the child, the child's pid in the parent. (nix's `fork` is just as
/// `unsafe`: nothing to gain.)
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

/// Reaps `pid`: its wait status and peak resident set in bytes (`ru_maxrss`). `wait4(2)`,
/// which nix lacks: `getrusage(RUSAGE_CHILDREN)` would give the largest of all reaped
/// children, not this one's.
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

/// `_exit(2)` (nix has none): no destructor, no atexit handler, no flush of the parent's
/// buffers.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

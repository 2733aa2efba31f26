//! The crate's only `unsafe`: thin wrappers over the few libc calls used.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `sysconf(_SC_NPROCESSORS_ONLN)`, 0 on failure.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: sysconf takes an integer name and has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(0)
}

/// `kill(pid, SIGKILL)`. Refuses pids that would address a group or every
/// process (`<= 0`), which a corrupt `cgroup.procs` read must never reach.
pub(crate) fn sigkill(pid: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: kill has no memory effects; pid > 0 names one process.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `access(path, W_OK)`: may this process create entries in `path`?
pub(crate) fn writable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `getrlimit(resource)` as `(soft, hard)`.
pub(crate) fn getrlimit(resource: RlimitResource) -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(resource, &mut rl) };
    if rc == 0 {
        Ok((rl.rlim_cur, rl.rlim_max))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setrlimit(resource, soft, hard)`. Async-signal-safe, no allocation.
pub(crate) fn setrlimit(resource: RlimitResource, soft: u64, hard: u64) -> io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: rl is a valid rlimit for the duration of the call.
    let rc = unsafe { libc::setrlimit(resource, &rl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The type libc uses for rlimit resource numbers on this target.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) type RlimitResource = libc::__rlimit_resource_t;
/// The type libc uses for rlimit resource numbers on this target.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) type RlimitResource = libc::c_int;

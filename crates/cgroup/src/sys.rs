//! The crate's system calls: `nix` where it has a safe wrapper and the call
//! is made in the parent; raw `libc` for the rlimit calls, which
//! [`RlimitPolicy::apply`](crate::rlimit::RlimitPolicy::apply) makes in the
//! sandbox child between clone and exec.

use std::io;
use std::path::Path;

use nix::sys::signal::{self, Signal};
use nix::unistd::{self, AccessFlags, Pid, SysconfVar};

/// `sysconf(_SC_NPROCESSORS_ONLN)`, 0 on failure.
pub(crate) fn online_cpus() -> usize {
    match unistd::sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) => usize::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

/// `sysconf(_SC_CLK_TCK)`: the unit of start times in `/proc/PID/stat`.
pub(crate) fn clock_ticks() -> Option<u64> {
    match unistd::sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) => u64::try_from(n).ok().filter(|n| *n > 0),
        _ => None,
    }
}

/// `kill(pid, SIGKILL)`. Refuses pids that would address a group or every
/// process (`<= 0`), which a corrupt `cgroup.procs` read must never reach.
pub(crate) fn sigkill(pid: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    signal::kill(Pid::from_raw(pid), Signal::SIGKILL).map_err(io::Error::from)
}

/// `access(path, W_OK)`: may this process create entries in `path`?
pub(crate) fn writable(path: &Path) -> bool {
    unistd::access(path, AccessFlags::W_OK).is_ok()
}

/// `getrlimit(resource)` as `(soft, hard)`.
///
/// Raw `libc`, not `nix::sys::resource`: called between clone and exec by
/// `RlimitPolicy::apply`, where the sandbox child keeps to plain calls.
pub(crate) fn getrlimit(resource: libc::c_int) -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(resource as RlimitResource, &mut rl) };
    if rc == 0 {
        Ok((rl.rlim_cur, rl.rlim_max))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setrlimit(resource, soft, hard)`. Async-signal-safe, no allocation.
///
/// Raw `libc`, not `nix::sys::resource`: called between clone and exec by
/// `RlimitPolicy::apply`, where the sandbox child keeps to plain calls.
pub(crate) fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: rl is a valid rlimit for the duration of the call.
    let rc = unsafe { libc::setrlimit(resource as RlimitResource, &rl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The type libc uses for rlimit resource numbers on this target.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type RlimitResource = libc::__rlimit_resource_t;
/// The type libc uses for rlimit resource numbers on this target.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type RlimitResource = libc::c_int;

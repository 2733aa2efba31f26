//! The thread's privilege flags set with `prctl`: `no_new_privs` and
//! keepcaps.

use crate::error::CapsError;
use crate::sys;

/// Sets `no_new_privs`: `execve` can no longer grant privileges (setuid
/// bits, file capabilities), and seccomp filters may be installed without
/// `CAP_SYS_ADMIN`. Irreversible, inherited by children.
///
/// Launch sequence: in the sandbox child, after [`CompiledCaps::apply`](crate::CompiledCaps::apply),
/// before Landlock and seccomp.
///
/// ```no_run
/// nucleus_caps::set_no_new_privs().unwrap();
/// assert!(nucleus_caps::no_new_privs().unwrap());
/// ```
pub fn set_no_new_privs() -> Result<(), CapsError> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
        .map(drop)
        .map_err(|source| CapsError::NoNewPrivs { source })
}

/// Whether `no_new_privs` is set for the calling thread.
pub fn no_new_privs() -> Result<bool, CapsError> {
    sys::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0)
        .map(|v| v == 1)
        .map_err(|source| CapsError::NoNewPrivs { source })
}

/// Sets or clears `PR_SET_KEEPCAPS`: with it, a switch from uid 0 to a
/// non-zero uid keeps the permitted set (effective is still cleared, and
/// [`CompiledCaps::apply`](crate::CompiledCaps::apply) raises it again). Cleared by `execve` and by
/// [`CompiledCaps::apply`](crate::CompiledCaps::apply).
///
/// Launch sequence: in the sandbox child, right before `setresuid` to a
/// non-root workload uid (needed even when nothing is kept: dropping the
/// bounding set afterwards needs `CAP_SETPCAP`).
///
/// ```no_run
/// nucleus_caps::set_keepcaps(true).unwrap();
/// ```
pub fn set_keepcaps(on: bool) -> Result<(), CapsError> {
    sys::prctl(libc::PR_SET_KEEPCAPS, on.into(), 0)
        .map(drop)
        .map_err(|source| CapsError::KeepCaps { source })
}

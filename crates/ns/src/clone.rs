//! Creating namespaces: a fork into a new [`NamespaceSet`] (and a cgroup).

use crate::{NamespaceSet, NsError};
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `clone3(2)` (the version with `cgroup`, size 88).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The new process, seen from its parent: its pid and a pidfd for it (the
/// pidfd signals and waits without racing pid reuse).
#[derive(Debug)]
pub struct Child {
    /// The child's pid, in the parent's PID namespace.
    pub pid: libc::pid_t,
    /// A pidfd referring to the child.
    pub pidfd: OwnedFd,
}

/// Where [`fork_into`] returned.
#[derive(Debug)]
pub enum Forked {
    /// In the parent: the child that was made.
    Parent(Child),
    /// In the child, inside the new namespaces.
    Child,
}

/// Forks into new namespaces, like `fork(2)`: the child sees
/// [`Forked::Child`] inside the namespaces of `namespaces`, the parent
/// [`Forked::Parent`] with the child's pid and pidfd. With `cgroup` (an
/// open directory of a cgroup v2), the child starts in that cgroup
/// (`CLONE_INTO_CGROUP`), so it never runs outside it.
///
/// Uses `clone3(2)`; where it is unavailable (kernels before 5.3, seccomp
/// profiles of some container engines) and no cgroup is asked, falls back to
/// `clone(2)` plus `pidfd_open(2)`. The child exits with `SIGCHLD` sent to the
/// parent, as a forked process does.
///
/// # Safety
///
/// As for `fork(2)`: if the calling process has other threads, the child
/// may only call async-signal-safe functions (no allocation, no lock a
/// vanished thread could hold) until it calls `execve` or `_exit`. The
/// nucleus runner checks it is single-threaded and prepares every
/// allocation before it calls this.
///
/// ```no_run
/// use nucleus_ns::{fork_into, Forked, Namespace, NamespaceSet};
///
/// let set = NamespaceSet::default_set().without(Namespace::User);
/// // SAFETY: a single-threaded program; the child only calls _exit.
/// match unsafe { fork_into(set, None) }.unwrap() {
///     // SAFETY: _exit is async-signal-safe.
///     Forked::Child => unsafe { libc::_exit(0) },
///     Forked::Parent(child) => println!("sandbox pid {}", child.pid),
/// }
/// ```
pub unsafe fn fork_into(
    namespaces: NamespaceSet,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Forked, NsError> {
    let flags = namespaces.clone_flags();
    let cgroup = cgroup.map(|fd| std::os::fd::AsRawFd::as_raw_fd(&fd));
    match clone3(flags, cgroup) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && cgroup.is_none() => clone_legacy(flags),
        other => other,
    }
    .map_err(|source| NsError::Clone { source })
}

/// `clone3(2)` with a pidfd, optionally into a cgroup.
fn clone3(flags: u64, cgroup: Option<RawFd>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: without CLONE_VM this behaves as fork(2): the child gets a copy
    // of the address space and returns 0 here; `args` and `pidfd` are live.
    // (nix has no clone3; libc has only the syscall number.)
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Child {
            pid: pid as libc::pid_t,
            // SAFETY: the kernel stored a new pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        })),
    }
}

/// `clone(2)` as a fork into namespaces, then `pidfd_open(2)`.
fn clone_legacy(flags: u64) -> io::Result<Forked> {
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        // clone(2) has no room for CLONE_NEWTIME (it overlaps CSIGNAL).
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let flags = flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a null stack makes clone(2) behave as fork(2) on the same stack copy.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    let pid = match ret {
        r if r < 0 => return Err(io::Error::last_os_error()),
        0 => return Ok(Forked::Child),
        pid => pid as libc::pid_t,
    };
    // SAFETY: plain syscall on a pid we just created and have not reaped.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Forked::Parent(Child {
        pid,
        // SAFETY: the kernel returned a new fd that nobody else owns.
        pidfd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_args_has_the_kernel_layout() {
        // CLONE_ARGS_SIZE_VER2 (with `cgroup`) is 88 bytes.
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
    }
}

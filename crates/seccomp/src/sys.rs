//! The raw syscalls: every `unsafe` block of the crate is here. nix wraps none of them
//! (`seccomp(2)`, `PR_GET_SECCOMP`, `pidfd_open`/`pidfd_getfd`, the notification ioctls);
//! its `poll` serves the recorder (see `record.rs`). Installing the filter must stay raw
//! libc anyway: it runs in the child between `clone` and `execve`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::bpf::BpfInsn;

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. Returns the syscall's result (the listener
/// fd with `SECCOMP_FILTER_FLAG_NEW_LISTENER`, else 0). Allocates nothing: the runner calls it
/// in the child between `clone` and `execve` (`crates/runner/src/child.rs`), where it must stay
/// one raw system call on the program compiled in the parent.
pub(crate) fn seccomp_set_mode_filter(
    prog: &[BpfInsn],
    flags: libc::c_ulong,
) -> io::Result<libc::c_long> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        // `BpfInsn` is `#[repr(C)]` with the fields of `struct sock_filter` in the same order.
        filter: prog.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `fprog` points to `prog.len()` valid instructions laid out as `sock_filter`, and
    // lives across the call; the kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(ret)
    }
}

/// `seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action)`: whether the kernel knows `action`.
pub(crate) fn action_avail(action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from a pointer to a live local.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    ret == 0
}

/// `seccomp(SECCOMP_GET_NOTIF_SIZES)`: whether user notification is supported.
pub(crate) fn notif_sizes() -> Option<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: the kernel writes a `struct seccomp_notif_sizes` into a live local of that type.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    (ret == 0).then_some(sizes)
}

/// `prctl(PR_GET_SECCOMP)`: the calling thread's mode, or the errno when seccomp is absent.
pub(crate) fn get_seccomp_mode() -> io::Result<i32> {
    // SAFETY: PR_GET_SECCOMP takes no pointer and changes nothing.
    let ret = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(ret)
    }
}

/// `pidfd_open(pid)` then `pidfd_getfd(pidfd, fd)`: a copy of another process's fd.
pub(crate) fn take_fd(pid: libc::pid_t, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel just gave us this fd, and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes plain integers.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if ret < 0 {
        return Err(last_error());
    }
    // SAFETY: as above: a new fd of ours.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// A zeroed notification buffer, as `SECCOMP_IOCTL_NOTIF_RECV` requires.
pub(crate) fn empty_notif() -> libc::seccomp_notif {
    // SAFETY: `seccomp_notif` is plain integers, for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// `ioctl(SECCOMP_IOCTL_NOTIF_RECV)`.
pub(crate) fn notif_recv(fd: BorrowedFd<'_>, notif: &mut libc::seccomp_notif) -> io::Result<()> {
    // SAFETY: the kernel writes one `struct seccomp_notif` into `notif`, a live exclusive ref.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            notif as *mut libc::seccomp_notif,
        )
    };
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// `ioctl(SECCOMP_IOCTL_NOTIF_SEND)`.
pub(crate) fn notif_send(fd: BorrowedFd<'_>, resp: &libc::seccomp_notif_resp) -> io::Result<()> {
    // SAFETY: the kernel reads one `struct seccomp_notif_resp` from a live ref.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            resp as *const libc::seccomp_notif_resp,
        )
    };
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn insn_has_the_layout_of_sock_filter() {
        assert_eq!(
            std::mem::size_of::<crate::bpf::BpfInsn>(),
            std::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(
            std::mem::align_of::<crate::bpf::BpfInsn>(),
            std::mem::align_of::<libc::sock_filter>()
        );
    }
}

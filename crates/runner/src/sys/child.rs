//! The child's system calls, between clone and exec: nothing allocated,
//! the errno out.

use super::{check, errno};
use std::ffi::CStr;
use std::os::fd::RawFd;

pub(crate) fn read_byte(fd: RawFd) -> Result<usize, i32> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads one byte into a live stack variable.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        match check(n as libc::c_long) {
            Err(libc::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

pub(crate) fn set_pdeathsig() -> Result<(), i32> {
    // SAFETY: plain prctl with integer arguments.
    check(
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        }
        .into(),
    )
    .map(drop)
}

pub(crate) fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
}

/// Closes every fd from 3 up, except those in `keep` (in ascending order).
/// Allocates nothing: the init calls it between clone and exec.
pub(crate) fn close_fds_except(keep: &[RawFd]) -> Result<(), i32> {
    let close_range = |lo: libc::c_uint, hi: libc::c_uint| {
        if lo > hi {
            return Ok(0);
        }
        // SAFETY: closing fds the process inherited and does not use.
        check(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) })
    };
    let mut low: libc::c_uint = 3;
    for &fd in keep {
        let fd = fd as libc::c_uint;
        if fd > low {
            close_range(low, fd - 1)?;
        }
        low = low.max(fd + 1);
    }
    close_range(low, libc::c_uint::MAX).map(drop)
}

pub(crate) fn setsid() -> Result<(), i32> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() }.into()).map(drop)
}

/// Makes the terminal on `fd` the controlling terminal of this session
/// (whose leader we are); never takes one that another session has.
pub(crate) fn set_controlling_terminal(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain ioctl with an integer argument (0: do not steal).
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }.into()).map(drop)
}

/// Whether `pid` is in our own process group.
pub(crate) fn in_own_process_group(pid: libc::pid_t) -> bool {
    // SAFETY: plain syscalls with integer arguments.
    unsafe { libc::getpgid(pid) == libc::getpgrp() }
}

pub(crate) fn switch_user(uid: u32, gid: u32, set_groups: bool) -> Result<(), i32> {
    if set_groups {
        // SAFETY: an empty group list.
        check(unsafe { libc::setgroups(0, std::ptr::null()) }.into())?;
    }
    // SAFETY: plain syscalls with integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) }.into())?;
    // SAFETY: as above.
    check(unsafe { libc::setresuid(uid, uid, uid) }.into()).map(drop)
}

/// `fork(2)` from the single-threaded init.
pub(crate) fn fork() -> Result<libc::pid_t, i32> {
    // SAFETY: the init is single-threaded; the child only calls async-signal-safe functions.
    let pid = unsafe { libc::fork() };
    check(pid.into()).map(|p| p as libc::pid_t)
}

/// `clone(CLONE_VM | CLONE_VFORK)` on `stack`: `entry(arg)` runs in a new
/// process that shares this one's memory until it executes or exits, while
/// this one waits; returns its pid. Unlike `fork`, nothing of the address
/// space is copied.
pub(crate) fn vfork_on(
    stack: &mut [u8],
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> Result<libc::pid_t, i32> {
    // The stack grows down from its end, 16-byte aligned.
    let end = stack.as_mut_ptr_range().end as usize & !15;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: `stack` is ours and unused by anything else while the child
    // runs on it; the caller is suspended until the child executes or
    // exits (CLONE_VFORK), so `arg` stays alive; `entry` never returns into
    // the caller's frames (it runs on its own stack).
    let pid = unsafe { libc::clone(entry, end as *mut libc::c_void, flags, arg) };
    check(pid.into()).map(|p| p as libc::pid_t)
}

pub(crate) fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    // SAFETY: `argv` and `envp` are null-terminated arrays of pointers into
    // CStrings the caller keeps alive; execve only returns on failure.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// Reaps one exited child without waiting (`wait4`): (pid, status, its
/// usage), `None` when none has exited or none is left.
pub(crate) fn reap_any_usage() -> Option<(libc::pid_t, i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are live locals.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        if pid < 0 && errno() == libc::EINTR {
            continue;
        }
        return (pid > 0).then_some((pid, status, usage));
    }
}

/// Whether the process has no child left, running or exited (`ECHILD`);
/// reaps nothing (`WNOWAIT`).
pub(crate) fn no_children() -> bool {
    // SAFETY: all-zero is a valid siginfo_t.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    // SAFETY: `info` is a live local; WNOHANG never blocks.
    let ret = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    ret < 0 && errno() == libc::ECHILD
}

/// Waits for any child; returns (pid, status), or `None` when none is left
/// (or none has exited yet with `nohang`).
pub(crate) fn wait_any(nohang: bool) -> Option<(libc::pid_t, i32)> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is a live int.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid < 0 && errno() == libc::EINTR {
            continue;
        }
        return (pid > 0).then_some((pid, status));
    }
}

/// Sets `sig` to its default action; returns the previous one.
pub(crate) fn set_signal_default(sig: libc::c_int) -> libc::sighandler_t {
    // SAFETY: installing SIG_DFL is always valid.
    unsafe { libc::signal(sig, libc::SIG_DFL) }
}

/// Puts back a disposition returned by [`set_signal_default`].
pub(crate) fn restore_signal(sig: libc::c_int, old: libc::sighandler_t) {
    if old != libc::SIG_ERR {
        // SAFETY: `old` came from signal(2) for the same signal.
        unsafe { libc::signal(sig, old) };
    }
}

/// Closes an fd the child inherited but must not keep.
pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing an inherited fd number in the child; nothing else uses it.
    unsafe { libc::close(fd) };
}

/// Makes this process a subreaper: orphaned descendants are reparented here.
pub(crate) fn set_child_subreaper() -> Result<(), i32> {
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }.into()).map(drop)
}

/// Stops being a child subreaper.
pub(crate) fn clear_child_subreaper() -> Result<(), i32> {
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }.into()).map(drop)
}

/// Reaps the child `pid`, waiting for it.
pub(crate) fn wait_pid(pid: libc::pid_t) {
    wait_status(pid);
}

/// Waits for the child `pid` and returns its wait status.
pub(crate) fn wait_status(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live int.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if rc >= 0 || errno() != libc::EINTR {
            return status;
        }
    }
}

/// Joins the namespace `fd` (of type `nstype`, a `CLONE_NEW*` flag).
pub(crate) fn setns(fd: RawFd, nstype: libc::c_int) -> Result<(), i32> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setns(fd, nstype) }.into()).map(drop)
}

/// Writes all of `bytes` to `fd` (no allocation).
pub(crate) fn write_all(fd: RawFd, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: writes from a live slice.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    match n {
        n if n < 0 => Err(errno()),
        n if n as usize == bytes.len() => Ok(()),
        _ => Err(libc::EIO),
    }
}

/// `pid` in decimal, in `buf` (no allocation).
pub(crate) fn format_pid(pid: libc::pid_t, buf: &mut [u8; 12]) -> &[u8] {
    let mut n = pid.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Reaps the child `pid` if it ended: `true` when it is gone (reaped now,
/// or not a child any more).
pub(crate) fn reap_nohang(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: `status` is a live int.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    rc == pid || (rc < 0 && errno() == libc::ECHILD)
}

/// Makes this process non-dumpable: no ptrace, no /proc/PID/fd access by
/// processes without CAP_SYS_PTRACE.
pub(crate) fn set_not_dumpable() -> Result<(), i32> {
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }.into()).map(drop)
}

/// Resumes a ptrace-stopped child, delivering `sig`.
pub(crate) fn ptrace_cont(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: PTRACE_CONT on a child that is stopped for us; errors are ignored.
    unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0usize, sig as usize) };
}

/// Waits for a blocked signal.
/// Returns the signal and its `si_code` (`SI_KERNEL` when a terminal sent
/// it to its foreground group, `SI_USER` from `kill`).
pub(crate) fn sigwait(set: &libc::sigset_t) -> (libc::c_int, libc::c_int) {
    loop {
        // SAFETY: siginfo_t is plain data, overwritten by sigwaitinfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` and `info` are live.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig > 0 {
            return (sig, info.si_code);
        }
    }
}

pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// Restores the default action of `sig` (Rust's runtime ignores SIGPIPE,
/// and ignored signals survive `execve`).
pub(crate) fn default_signal(sig: libc::c_int) {
    // SAFETY: installing SIG_DFL is always valid.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Writes `data` to the existing file `path` (a sysctl).
pub(crate) fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    check(fd.into())?;
    // SAFETY: writes from a live slice to the fd we just opened.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let err = errno();
    // SAFETY: `fd` was opened above and is not used again.
    unsafe { libc::close(fd) };
    if n == data.len() as isize {
        Ok(())
    } else {
        Err(err)
    }
}

/// `dup2(2)`.
pub(crate) fn dup2(from: RawFd, to: RawFd) -> Result<(), i32> {
    // SAFETY: plain syscall on integer fds.
    check(unsafe { libc::dup2(from, to) }.into()).map(drop)
}

/// The `st_mode` of an open fd, `None` when it is not open.
pub(crate) fn fstat_mode(fd: RawFd) -> Option<libc::mode_t> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat buffer.
    let ret = unsafe { libc::fstat(fd, &mut st) };
    (ret == 0).then_some(st.st_mode)
}

/// One `recvmsg` into `buf` (`MSG_CMSG_CLOEXEC`), each `SCM_RIGHTS` fd
/// that came with it handed to `each_fd`; allocates nothing (the init of a
/// spare takes its command with it, the server its requests). Returns the
/// byte count (0: the peer closed) and whether the kernel cut the control
/// data (`MSG_CTRUNC`: the fds that did not fit were closed).
pub(crate) fn recv_fds(
    sock: RawFd,
    buf: &mut [u8],
    mut each_fd: impl FnMut(RawFd),
) -> Result<(usize, bool), i32> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control: super::socket::Control = [0; 8];
    // SAFETY: an all-zero msghdr is valid; it is pointed at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg writes into the buffers `msg` points at.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = check(n as libc::c_long)? as usize;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen; each fd read is new and ours.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let bytes = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    each_fd(std::ptr::read_unaligned(data.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, msg.msg_flags & libc::MSG_CTRUNC != 0))
}

/// [`recv_fds`] with up to `fds.len()` descriptors written into `fds`,
/// again after `EINTR`. Returns the byte count (0: the peer closed) and
/// the number of fds received; a message with more fds than fit is
/// `EMSGSIZE` (every fd of it closed).
pub(crate) fn recv_fds_into(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut [RawFd; 3],
) -> Result<(usize, usize), i32> {
    loop {
        let mut count = 0;
        let keep = |fd| {
            match fds.get_mut(count) {
                Some(slot) => *slot = fd,
                None => close(fd),
            }
            count += 1;
        };
        let (n, cut) = match recv_fds(sock, buf, keep) {
            Err(libc::EINTR) => continue,
            other => other?,
        };
        if count > fds.len() || cut {
            for &fd in &fds[..count.min(fds.len())] {
                close(fd);
            }
            return Err(libc::EMSGSIZE);
        }
        return Ok((n, count));
    }
}

//! The raw system calls of the launch sequence, each a small function.
//! Child-side functions allocate nothing and return the errno.
//!
//! `nix` wraps what it covers safely on the parent side (pipes, fd flags).
//! The rest stays on `libc`, each for one of these reasons: it runs in the
//! child between clone and exec, where nothing may allocate and the errno
//! is the whole report (`child.rs`, and `kill`, `sigmask` here); nix
//! lacks the call (`pidfd_send_signal`, `waitid` with a `rusage`,
//! `TIOCGPTPEER`, `PR_SET_CHILD_SUBREAPER`); or the function works on an fd
//! number the caller owns (terminals), where nix's `AsFd` arguments would
//! need an `unsafe` borrow of the same number and add no safety.

mod child;
pub(crate) mod socket;
mod terminal;

pub(crate) use child::*;
pub(crate) use terminal::*;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub(super) fn check(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock `Instant` reads), without
/// allocating: the child stamps its steps with it.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the live timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    set_o_nonblock(fd.as_fd(), true)
}

/// Clears `O_NONBLOCK`: a flag of the open file description, so every
/// copy of the fd (in every process) blocks again.
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_o_nonblock(fd, false)
}

fn set_o_nonblock(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = match on {
        true => flags | OFlag::O_NONBLOCK,
        false => flags - OFlag::O_NONBLOCK,
    };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// The signals the parent forwards to the sandbox.
pub(crate) const FORWARDED: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

pub(crate) fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in signals {
        // SAFETY: `set` is a live sigset_t and `sig` a valid signal number.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

pub(crate) fn full_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset initializes it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    set
}

/// Sets the signal mask; returns the previous one.
pub(crate) fn sigmask(how: libc::c_int, set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are live; sigprocmask only fails for a bad `how`.
    unsafe { libc::sigprocmask(how, set, &mut old) };
    old
}

pub(crate) fn signalfd(set: &libc::sigset_t) -> io::Result<OwnedFd> {
    // SAFETY: `set` is live; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal number from a signalfd, if any.
pub(crate) fn read_signal(fd: &OwnedFd) -> Option<libc::c_int> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is a live buffer of `size` bytes.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (n as usize == size).then_some(info.ssi_signo as libc::c_int)
}

pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, sig: libc::c_int) {
    // SAFETY: plain syscall on a pidfd we own; a dead target is not an error we act on.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            0usize,
            0u32,
        )
    };
}

/// Waits for the child behind `pidfd` to exit; returns its wait status.
pub(crate) fn wait_pidfd(pidfd: &OwnedFd) -> io::Result<i32> {
    wait_pidfd_usage(pidfd).map(|(status, _)| status)
}

/// Waits for the child behind `pidfd` to exit; returns its wait status and
/// its resource usage (its own and that of every descendant it reaped).
pub(crate) fn wait_pidfd_usage(pidfd: &OwnedFd) -> io::Result<(i32, libc::rusage)> {
    loop {
        // SAFETY: siginfo_t and rusage are plain data.
        let (mut info, mut usage): (libc::siginfo_t, libc::rusage) = unsafe { std::mem::zeroed() };
        // SAFETY: the raw waitid takes a fifth rusage argument (libc's wrapper
        // does not); P_PIDFD (3) with an fd we own and live out-buffers.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                3,
                pidfd.as_raw_fd(),
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED,
                &mut usage as *mut libc::rusage,
            )
        };
        if ret < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        // SAFETY: waitid filled a CLD_* record for our child.
        let (code, status) = unsafe { (info.si_code, info.si_status()) };
        let status = if code == libc::CLD_EXITED {
            (status & 0xff) << 8
        } else {
            status & 0x7f
        };
        return Ok((status, usage));
    }
}

pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: `fds` is a live slice of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::EINTR) {
            Ok(0)
        } else {
            Err(err)
        };
    }
    Ok(n as usize)
}

/// Whether `fd` becomes readable (a pidfd: its process ended) within
/// `limit`; `false` on a timeout, a signal or an error.
pub(crate) fn readable_within(fd: RawFd, limit: std::time::Duration) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain syscall; errors (a gone target) are not acted on.
    unsafe { libc::kill(pid, sig) };
}

/// The number of threads of this process, from `/proc/self/stat`.
pub(crate) fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_comm
        .split_whitespace()
        .nth(17)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/stat"))
}

/// Whether this process is a child subreaper.
pub(crate) fn is_child_subreaper() -> io::Result<bool> {
    let mut on: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int to the live `on`.
    let rc = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut on as *mut libc::c_int) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(on != 0)
}

/// Opens `/dev/null` on each of fds 0, 1 and 2 that is closed, and returns
/// them.
pub(crate) fn occupy_closed_stdio() -> io::Result<Vec<RawFd>> {
    let mut closed = Vec::new();
    for fd in 0..3 {
        if fstat_mode(fd).is_some() {
            continue;
        }
        // SAFETY: a NUL-terminated literal path; the lowest free fd is `fd`,
        // since every lower one is open (checked in order).
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        if got != fd {
            dup2(got, fd).map_err(io::Error::from_raw_os_error)?;
            close(got);
        }
        closed.push(fd);
    }
    Ok(closed)
}

/// Moves this process into the network namespace `fd`.
pub(crate) fn join_netns(fd: &OwnedFd) -> io::Result<()> {
    join_namespace(fd, libc::CLONE_NEWNET)
}

/// Moves this process into the namespace `fd` refers to, which must be of
/// type `nstype` (a `CLONE_NEW*` flag).
pub(crate) fn join_namespace(fd: &OwnedFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    if unsafe { libc::setns(fd.as_raw_fd(), nstype) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

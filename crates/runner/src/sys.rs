//! The raw system calls of the launch sequence, each a small function.
//! Child-side functions allocate nothing and return the errno.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc.
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` of `clone3(2)`.
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

/// The result of [`clone_child`] in the parent.
pub(crate) struct Child {
    pub(crate) pid: libc::pid_t,
    pub(crate) pidfd: OwnedFd,
}

/// Forks like `fork(2)` but into new namespaces (and a cgroup): `Ok(None)`
/// in the child, `Ok(Some(child))` in the parent. Falls back to `clone(2)`
/// plus `pidfd_open(2)` where `clone3` is unavailable (old kernels, some
/// container seccomp profiles).
pub(crate) fn clone_child(flags: u64, cgroup: Option<RawFd>) -> io::Result<Option<Child>> {
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
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 && errno() == libc::ENOSYS && cgroup.is_none() {
        return clone_legacy(flags);
    }
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(Child {
            pid: pid as libc::pid_t,
            // SAFETY: the kernel stored a new pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        })),
    }
}

fn clone_legacy(flags: u64) -> io::Result<Option<Child>> {
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let flags = flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a null stack makes clone(2) behave as fork(2) on the same stack copy.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => {
            // SAFETY: plain syscall on a pid we just created and have not reaped.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Some(Child {
                pid: pid as libc::pid_t,
                // SAFETY: the kernel returned a new fd that nobody else owns.
                pidfd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            }))
        }
    }
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a live array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new fds that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl on an fd we own.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
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

// ---- terminals, parent side ----

/// Whether `fd` is open on a terminal.
pub(crate) fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only asks the kernel about an fd number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether `fd` is this process's controlling terminal and another process
/// group is in its foreground (we were started in the background).
pub(crate) fn terminal_in_background(fd: RawFd) -> bool {
    // SAFETY: plain calls on an fd number; tcgetpgrp fails (-1) when `fd`
    // is not our controlling terminal.
    let (fg, own) = unsafe { (libc::tcgetpgrp(fd), libc::getpgrp()) };
    fg > 0 && fg != own
}

/// The settings of the terminal on `fd`.
pub(crate) fn tcgetattr(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data, overwritten by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a live, writable termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(t)
}

/// Sets the terminal on `fd` to `t`, at once.
pub(crate) fn tcsetattr(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    loop {
        // SAFETY: `t` is a live termios; the call only reads it.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `t` in raw mode (`cfmakeraw`): no echo, no line editing, no signal
/// keys, no output processing.
pub(crate) fn raw_termios(t: &libc::termios) -> libc::termios {
    let mut raw = *t;
    // SAFETY: `raw` is a live termios that cfmakeraw edits in place.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw
}

/// The window size of the terminal on `fd`.
pub(crate) fn window_size(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data, overwritten by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the live `ws`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    (rc == 0).then_some(ws)
}

/// Sets the window size of the terminal on `fd` (its foreground process
/// group is sent `SIGWINCH` when it changes).
pub(crate) fn set_window_size(fd: RawFd, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize from the live `ws`.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws as *const libc::winsize) };
}

/// A new pseudo-terminal: (master, slave), both close-on-exec and neither
/// made the caller's controlling terminal.
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: plain call with integer flags; returns a new fd or -1.
    let fd = unsafe { libc::posix_openpt(flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: posix_openpt returned a new fd that nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain calls on the master we own.
    if unsafe { libc::grantpt(fd) } < 0 || unsafe { libc::unlockpt(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // The slave through the master itself (TIOCGPTPEER, Linux 4.13): no
    // lookup of a /dev/pts path.
    // SAFETY: ioctl on our master with integer flags; returns a new fd or -1.
    let slave = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

// ---- child side: no allocation, errno out ----

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

/// Closes every fd from 3 up, except `keep`.
pub(crate) fn close_fds_except(keep: RawFd) -> Result<(), i32> {
    let close_range = |lo: libc::c_uint, hi: libc::c_uint| {
        if lo > hi {
            return Ok(0);
        }
        // SAFETY: closing fds the child inherited and does not use.
        check(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) })
    };
    close_range(3, keep as libc::c_uint - 1)?;
    close_range(keep as libc::c_uint + 1, libc::c_uint::MAX).map(drop)
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

/// Stops being a child subreaper.
pub(crate) fn clear_child_subreaper() -> Result<(), i32> {
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }.into()).map(drop)
}

/// Reaps the child `pid`, waiting for it.
pub(crate) fn wait_pid(pid: libc::pid_t) {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live int.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if rc >= 0 || errno() != libc::EINTR {
            return;
        }
    }
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

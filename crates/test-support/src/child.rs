//! Forked children: a test that changes its process (a filter, a Landlock domain, dropped
//! capabilities, other ids) does it in a child, never in the test process itself.
//!
//! `fork` and `_exit` are raw libc: nix's `fork` is as unsafe as libc's, and nix has no
//! `_exit`.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The exit code, or 128 + the signal number, as a shell reports it.
    ///
    /// ```
    /// use nucleus_test_support::Exit;
    /// assert_eq!(Exit::Code(3).code(), 3);
    /// assert_eq!(Exit::Signal(libc::SIGKILL).code(), 137);
    /// ```
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }
}

/// Serializes forks within one test process: held while forking (and for as long as the
/// child must not inherit another test's file descriptors or catch another thread's locks),
/// so that a child forked by one test never holds open another test's pipes. A test that
/// panicked while holding it does not poison it for the others.
///
/// ```
/// let _fork = nucleus_test_support::fork_lock();
/// let exit = nucleus_test_support::in_child(|| 0);
/// assert_eq!(exit, nucleus_test_support::Exit::Code(0));
/// ```
pub fn fork_lock() -> MutexGuard<'static, ()> {
    static FORK: Mutex<()> = Mutex::new(());
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `fork(2)`, as is: the child's pid in the parent, 0 in the child, -1 (with `errno` set) on
/// failure, which a test under a seccomp filter may want to see. The child must leave with
/// [`exit`] or `execve`, never by returning into the test harness.
///
/// ```
/// use nucleus_test_support::{exit, fork, wait, Exit};
///
/// let pid = fork();
/// if pid == 0 {
///     exit(7);
/// }
/// assert_eq!(wait(pid), Exit::Code(7));
/// ```
pub fn fork() -> libc::pid_t {
    // SAFETY: the child leaves with `exit` or `execve` (the caller's contract); glibc keeps
    // malloc usable in the child of a multi-threaded process.
    unsafe { libc::fork() }
}

/// `_exit(2)`: leaves a child without running the test process's atexit handlers or
/// destructors, and without unwinding into the harness.
///
/// ```
/// let pid = nucleus_test_support::fork();
/// if pid == 0 {
///     nucleus_test_support::exit(0);
/// }
/// nucleus_test_support::wait(pid);
/// ```
pub fn exit(code: i32) -> ! {
    // SAFETY: `_exit` ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Reaps child `pid` and tells how it ended. Panics when `pid` is not a child of ours.
///
/// ```
/// use nucleus_test_support::{exit, fork, wait, Exit};
///
/// let pid = fork();
/// if pid == 0 {
///     // SAFETY: a signal to ourselves.
///     unsafe { libc::raise(libc::SIGTERM) };
///     exit(0);
/// }
/// assert_eq!(wait(pid), Exit::Signal(libc::SIGTERM));
/// ```
pub fn wait(pid: libc::pid_t) -> Exit {
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Exit::Code(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Exit::Signal(signal as i32),
            Ok(other) => panic!("waitpid {pid}: unexpected {other:?}"),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
    }
}

/// Runs `f` in a forked child, which `_exit`s with what `f` returns (101 when it panics), and
/// tells how the child ended. `f` must not rely on locks that other threads of the test
/// process may hold (see [`fork_lock`]).
///
/// ```
/// use nucleus_test_support::{in_child, Exit};
///
/// // The child may change itself freely: the test process keeps its own state.
/// let exit = in_child(|| {
///     std::env::set_current_dir("/").map_or(1, |()| 0)
/// });
/// assert_eq!(exit, Exit::Code(0));
/// assert_eq!(in_child(|| panic!("in the child")), Exit::Code(101));
/// ```
pub fn in_child<F: FnOnce() -> i32>(f: F) -> Exit {
    let pid = fork();
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        exit(code);
    }
    wait(pid)
}

/// Runs `f` in a forked child and brings back its verdict: `Ok` when `f` returned `Ok`, else
/// `Err` with `f`'s message (or "child panicked") and how the child ended. The message
/// travels on a close-on-exec pipe, so `f` may also `execve`: then the program's exit code
/// decides.
///
/// ```
/// use nucleus_test_support::try_in_child;
///
/// assert_eq!(try_in_child(|| Ok(())), Ok(()));
/// let err = try_in_child(|| Err("no such thing".into())).unwrap_err();
/// assert!(err.contains("no such thing"), "{err}");
/// ```
pub fn try_in_child<F: FnOnce() -> Result<(), String>>(f: F) -> Result<(), String> {
    let (read_end, write_end) = pipe();
    let pid = fork();
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(read_end);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, msg) = match result {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(msg)) => (1, msg),
            Err(_) => (2, "child panicked".to_owned()),
        };
        let _ = std::fs::File::from(write_end).write_all(msg.as_bytes());
        exit(code);
    }
    drop(write_end);
    let mut msg = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut msg);
    match wait(pid) {
        Exit::Code(0) if msg.is_empty() => Ok(()),
        end => Err(format!("child ended with {end:?}: {msg}")),
    }
}

/// A pipe, `(read end, write end)`, both close-on-exec.
///
/// ```
/// use std::io::{Read, Write};
///
/// let (r, w) = nucleus_test_support::pipe();
/// std::fs::File::from(w).write_all(b"hi")?;
/// let mut got = String::new();
/// std::fs::File::from(r).read_to_string(&mut got)?;
/// assert_eq!(got, "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`, which installing a seccomp filter unprivileged requires;
/// panics when it fails. Call it in a child: it cannot be undone.
///
/// ```
/// use nucleus_test_support::{in_child, no_new_privs, Exit};
///
/// assert_eq!(in_child(|| { no_new_privs(); 0 }), Exit::Code(0));
/// ```
pub fn no_new_privs() {
    nix::sys::prctl::set_no_new_privs().expect("prctl(PR_SET_NO_NEW_PRIVS)");
}

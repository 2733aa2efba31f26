//! Record-to-profile: run a workload with every syscall allowed but seen by a supervisor, then
//! write the minimal allowlist that lets it run again.
//!
//! The sequence (the runner's `seccomp record`):
//! 1. Parent, before clone: `Profile::record_filter(report_fd).compile()`.
//! 2. Child, last step before `execve`: `apply_with_listener()` gives the listener fd number
//!    `N`; write `N` to `report_fd` (the only syscall the filter lets through unseen, so the
//!    child does not wait on a supervisor that does not have the fd yet); then `execve`, which
//!    blocks until the supervisor answers. The fd is close-on-exec.
//! 3. Parent: read `N`, [`take_listener`] (`pidfd_getfd`), [`Recorder::run`] until the
//!    workload is gone, then [`Recorder::into_profile`] and `to_oci_json`.
//!
//! Every notified syscall is answered with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the kernel runs
//! it as if there were no filter. The recording covers what runs after the filter is
//! installed, init included, which is exactly what the enforcing filter will see.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::action::{Action, EPERM};
use crate::arch::Arch;
use crate::error::SeccompError;
use crate::profile::{Profile, Rule, UnknownSyscalls};
use crate::{sys, syscalls};

/// Syscalls a recorded profile always allows: they happen or not depending on timing (a
/// signal arriving, a sleep interrupted), so one run may miss them, and they grant nothing.
pub const ALWAYS_ALLOWED: &[&str] = &["exit", "exit_group", "restart_syscall", "rt_sigreturn"];

/// Why [`Recorder::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEnd {
    /// Every task under the filter is gone (the listener reported hang-up).
    TargetsGone,
    /// The `stop` fd became readable (e.g. the child's pidfd: it exited).
    Stopped,
}

/// The supervisor: answers notifications and notes the syscall numbers.
///
/// ```no_run
/// use nucleus_seccomp::record::{take_listener, Recorder};
/// # let (child_pid, listener_fd_in_child) = (1234, 3);
/// let listener = take_listener(child_pid, listener_fd_in_child)?;
/// let mut recorder = Recorder::new(listener);
/// recorder.run(None)?;
/// let json = recorder.into_profile().to_oci_json()?;
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
#[derive(Debug)]
pub struct Recorder {
    listener: OwnedFd,
    arch: Arch,
    audit_arch: u32,
    seen: BTreeSet<u32>,
    notifications: u64,
}

/// Copy the listener fd `fd` out of process `pid` (`pidfd_open` + `pidfd_getfd`; the caller
/// must be allowed to ptrace it, as a parent is its child).
pub fn take_listener(pid: libc::pid_t, fd: RawFd) -> Result<OwnedFd, SeccompError> {
    sys::take_fd(pid, fd).map_err(|source| SeccompError::TakeListener { pid, fd, source })
}

impl Recorder {
    /// A recorder for the native architecture, on a listener fd.
    pub fn new(listener: OwnedFd) -> Recorder {
        let arch = Arch::native().unwrap_or(Arch::X86_64);
        Recorder {
            listener,
            arch,
            audit_arch: arch.audit_arch().unwrap_or(0),
            seen: BTreeSet::new(),
            notifications: 0,
        }
    }

    /// Answer notifications until every task under the filter is gone, or until `stop`
    /// becomes readable (then the notifications already queued are answered first).
    pub fn run(&mut self, stop: Option<BorrowedFd<'_>>) -> Result<RecordEnd, SeccompError> {
        loop {
            let rev = match poll2(self.listener.as_fd(), stop, PollTimeout::NONE) {
                Ok(rev) => rev,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(SeccompError::PollListener { source }),
            };
            if rev[0].contains(PollFlags::POLLIN) {
                self.handle_one()?;
            } else if rev[0].intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                return Ok(RecordEnd::TargetsGone);
            } else if !rev[1].is_empty() {
                self.drain()?;
                return Ok(RecordEnd::Stopped);
            }
        }
    }

    fn drain(&mut self) -> Result<(), SeccompError> {
        loop {
            match poll2(self.listener.as_fd(), None, PollTimeout::ZERO) {
                Ok(rev) if rev[0].contains(PollFlags::POLLIN) => self.handle_one()?,
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(SeccompError::PollListener { source }),
            }
        }
    }

    /// Receive one notification, note it, let the syscall run.
    fn handle_one(&mut self) -> Result<(), SeccompError> {
        let gone = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR));
        let mut notif = sys::empty_notif();
        match sys::notif_recv(self.listener.as_fd(), &mut notif) {
            Ok(()) => {}
            Err(e) if gone(&e) => return Ok(()),
            Err(source) => return Err(SeccompError::NotifyRecv { source }),
        }
        self.notifications += 1;
        if notif.data.arch == self.audit_arch {
            self.seen.insert(notif.data.nr as u32);
        }
        let resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        match sys::notif_send(self.listener.as_fd(), &resp) {
            Ok(()) => Ok(()),
            Err(e) if gone(&e) => Ok(()),
            Err(source) => Err(SeccompError::NotifySend { source }),
        }
    }

    /// How many syscalls were seen.
    pub fn notifications(&self) -> u64 {
        self.notifications
    }

    /// The names of the syscalls seen, sorted.
    pub fn syscalls(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .seen
            .iter()
            .filter_map(|nr| syscalls::name_of(self.arch, *nr))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// Syscall numbers seen that have no name in our table (a kernel newer than it).
    pub fn unnamed(&self) -> Vec<u32> {
        let named = |nr: &&u32| syscalls::name_of(self.arch, **nr).is_some();
        self.seen.iter().filter(|nr| !named(nr)).copied().collect()
    }

    /// The minimal allowlist: the syscalls seen and [`ALWAYS_ALLOWED`] run, everything else
    /// fails with `EPERM`.
    pub fn into_profile(self) -> Profile {
        let mut names = self.syscalls();
        for name in ALWAYS_ALLOWED {
            if !names.iter().any(|n| n == name) {
                names.push((*name).to_owned());
            }
        }
        names.sort();
        Profile {
            default_action: Action::Errno(EPERM),
            architectures: vec![self.arch],
            rules: vec![Rule::new(names, Action::Allow)],
            unknown_syscalls: UnknownSyscalls::Error,
            log_denied: false,
        }
    }
}

/// `poll` for input on `a` and, when given, `b`; their `revents` (empty for an absent `b`).
fn poll2(
    a: BorrowedFd<'_>,
    b: Option<BorrowedFd<'_>>,
    timeout: PollTimeout,
) -> io::Result<[PollFlags; 2]> {
    let mut fds = [
        PollFd::new(a, PollFlags::POLLIN),
        PollFd::new(b.unwrap_or(a), PollFlags::POLLIN),
    ];
    let n = if b.is_some() { 2 } else { 1 };
    poll(&mut fds[..n], timeout)?;
    let revents = |i: usize| {
        (i < n)
            .then(|| fds[i].revents())
            .flatten()
            .unwrap_or(PollFlags::empty())
    };
    Ok([revents(0), revents(1)])
}

//! Supervision, parent side: from the release of the sandbox to the end
//! of its init. Forwards signals, enforces the deadline, answers a seccomp
//! recorder, and collects the channel's records and the init's status.

use crate::channel::{self, Message};
use crate::{sys, RunError};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What the supervision loop saw.
pub(crate) struct Raw {
    pub(crate) messages: Vec<Message>,
    pub(crate) init_status: i32,
    pub(crate) usage: libc::rusage,
    pub(crate) timed_out: bool,
    pub(crate) recorded: Option<nucleus_seccomp::Profile>,
    /// The last signal forwarded from outside, if any.
    pub(crate) forwarded: Option<i32>,
}

/// What supervision watches.
pub(crate) struct Watch<'a, 'h> {
    pub(crate) child: &'a nucleus_ns::Child,
    pub(crate) msg: &'a OwnedFd,
    pub(crate) sigfd: &'a OwnedFd,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cgroup: Option<&'a nucleus_cgroup::Cgroup>,
    pub(crate) record: bool,
    /// The sandbox's own terminal, resized on `SIGWINCH` (which its
    /// kernel then sends the workload).
    pub(crate) console: Option<&'a crate::console::Console>,
    /// Kill the sandbox when this hangs up (a launch server's client went away).
    pub(crate) cancel: Option<std::os::fd::BorrowedFd<'a>>,
    /// A session's holder: its control socket is served, its idle timeout
    /// and the control's hang-up end the sandbox.
    pub(crate) host: Option<&'a mut (dyn Held + 'h)>,
    /// Runs before the sandbox is killed (a gVisor session's command: its
    /// helper inside is signalled first, `gvisor_session.rs`).
    pub(crate) on_kill: Option<&'a dyn Fn()>,
}

/// What supervision asks of a sandbox held as a session (`session::Host`).
pub(crate) trait Held {
    /// The control socket, polled for requests (and always for its hang-up).
    fn control_fd(&self) -> RawFd;
    /// Whether requests are taken yet (the init reported `Ready`).
    fn ready(&self) -> bool;
    /// Sees the channel's records so far (answers the creator on `Ready`).
    fn saw(&mut self, messages: &[Message]);
    /// Reaps the commands that ended.
    fn reap(&mut self);
    /// Takes the waiting requests; `false` when the control socket closed.
    fn serve(&mut self) -> bool;
    /// When the session ends for idleness (`None` while a command runs).
    fn idle_deadline(&self) -> Option<Instant>;
    /// The deadline of the command the sandbox's init runs (a spare's).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Kills the sandbox when it hangs up, as [`Watch::cancel`] (a
    /// spare's client).
    fn cancel_fd(&self) -> Option<RawFd> {
        None
    }
}

impl Watch<'_, '_> {
    /// Forwards signals, enforces the deadline and waits for the init.
    pub(crate) fn supervise(&mut self, started: Instant) -> Result<Raw, RunError> {
        let fixed = self.timeout.and_then(|t| started.checked_add(t));
        let mut messages = Vec::new();
        let mut eof = false;
        let mut timed_out = false;
        let mut recorded = None;
        let mut forwarded = None;
        let mut cancelled = false;
        loop {
            let deadline = fixed.or_else(|| self.host.as_ref().and_then(|h| h.deadline()));
            let idle = match (&self.host, cancelled) {
                (Some(host), false) => host.idle_deadline(),
                _ => None,
            };
            let wait_ms = match (deadline, idle) {
                (Some(_), _) if timed_out => -1,
                (Some(d), _) | (None, Some(d)) => ms_until(d),
                (None, None) => -1,
            };
            let mut fds = [
                pollfd(self.child.pidfd.as_raw_fd()),
                pollfd(self.sigfd.as_raw_fd()),
                pollfd(if eof { -1 } else { self.msg.as_raw_fd() }),
                hangup(match (self.cancel, &self.host) {
                    _ if cancelled => -1,
                    (Some(fd), _) => fd.as_raw_fd(),
                    (None, Some(host)) => host.cancel_fd().unwrap_or(-1),
                    (None, None) => -1,
                }),
                match &self.host {
                    Some(host) if !cancelled => libc::pollfd {
                        fd: host.control_fd(),
                        events: if host.ready() { libc::POLLIN } else { 0 },
                        revents: 0,
                    },
                    _ => hangup(-1),
                },
            ];
            sys::poll(&mut fds, wait_ms).map_err(|source| RunError::Wait { source })?;
            if fds[2].revents != 0 {
                eof = channel::drain(self.msg, &mut messages);
                if self.record && recorded.is_none() {
                    recorded = self.record_syscalls(&messages)?;
                }
            }
            if fds[1].revents != 0 {
                forwarded = self.forward_signals().or(forwarded);
            }
            if fds[3].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                cancelled = true;
                self.kill_all();
            }
            if !cancelled && self.serve_session(&messages, fds[4].revents, idle) {
                cancelled = true;
                self.kill_all();
            }
            if fds[0].revents != 0 {
                let (init_status, usage) = sys::wait_pidfd_usage(&self.child.pidfd)
                    .map_err(|source| RunError::Wait { source })?;
                channel::drain(self.msg, &mut messages);
                return Ok(Raw {
                    messages,
                    init_status,
                    usage,
                    timed_out,
                    recorded,
                    forwarded,
                });
            }
            if !timed_out && deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                self.kill_all();
            }
        }
    }

    /// A session's turn: answers its creator once the init is ready, reaps
    /// finished commands, starts requested ones; `true` when the session
    /// ends (the server hung up, or the idle timeout passed).
    fn serve_session(
        &mut self,
        messages: &[Message],
        revents: libc::c_short,
        idle: Option<Instant>,
    ) -> bool {
        let Some(host) = self.host.as_deref_mut() else {
            return false;
        };
        host.saw(messages);
        host.reap();
        if revents & libc::POLLIN != 0 && host.ready() && !host.serve() {
            return true;
        }
        if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return true;
        }
        let expired = idle.is_some_and(|d| Instant::now() >= d) && host.idle_deadline().is_some();
        if expired {
            tracing::info!("session idle for its whole timeout; ending it");
        }
        expired
    }

    /// Once the init reported its listener fd: takes it and answers every
    /// notification until the sandbox is gone.
    fn record_syscalls(
        &self,
        messages: &[Message],
    ) -> Result<Option<nucleus_seccomp::Profile>, RunError> {
        let Some(fd) = messages.iter().find_map(|m| match m {
            Message::Listener { fd } => Some(*fd),
            _ => None,
        }) else {
            return Ok(None);
        };
        let listener = nucleus_seccomp::record::take_listener(self.child.pid, fd)?;
        let mut recorder = nucleus_seccomp::record::Recorder::new(listener);
        recorder.run(Some(self.child.pidfd.as_fd()))?;
        Ok(Some(recorder.into_profile()))
    }

    /// Forwards pending signals to the init; returns the last one.
    fn forward_signals(&self) -> Option<i32> {
        let mut last = None;
        while let Some(sig) = sys::read_signal(self.sigfd) {
            if sig == libc::SIGWINCH && self.console.is_some_and(|c| c.resize()) {
                continue;
            }
            if sig != libc::SIGCHLD {
                sys::pidfd_send_signal(&self.child.pidfd, sig);
                last = Some(sig);
            }
        }
        last
    }

    /// Kills the whole sandbox: SIGKILL to a PID-namespace init takes every
    /// process of the namespace with it; without one, the init's process
    /// group is killed too.
    fn kill_all(&self) {
        if let Some(on_kill) = self.on_kill {
            on_kill();
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all();
        }
        sys::kill(-self.child.pid, libc::SIGKILL);
        sys::pidfd_send_signal(&self.child.pidfd, libc::SIGKILL);
    }
}

/// Milliseconds from now to `d` (0 when past), as poll takes them.
fn ms_until(d: Instant) -> i32 {
    d.saturating_duration_since(Instant::now())
        .as_millis()
        .min(i32::MAX as u128) as i32
}

/// Polls `fd` for its hangup only (reported whatever the events asked).
fn hangup(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    }
}

fn pollfd(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

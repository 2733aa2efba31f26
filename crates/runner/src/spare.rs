//! Spare sandboxes: a launch server builds the sandbox of a request it saw
//! before ahead of the next one, so that a request finds its namespaces,
//! view, cgroup and confinement ready and pays only for its own fork and
//! exec. Each spare runs one command, then ends as any launch does: no
//! namespace, mount, cgroup or process is ever shared by two commands.
//! The server side (which shapes are kept, how many) is in `server/`.
//!
//! A spare is a launch whose init does its whole setup, the same stages in
//! the same order as for a one-shot run, confines itself (`restrict`),
//! reports `Ready` and then waits on a socket of its own for the command
//! (`slot::Slot`). Its parent, the **holder** (a server worker), waits for the
//! request on the control socket the server gave it. The request's
//! Envelope matches the spare's in everything but the command, its
//! timeout and capture (the server keys spares by the rest, with the
//! client's directory and environment). The holder resolves the command
//! (`ExecPlan`) and sends the init its `PATH` candidates, argv and
//! environment with the client's stdio (or the capture's pipes); the init
//! puts the stdio on 0, 1 and 2, forks the workload and is PID 1 as in
//! any run. The holder supervises it with the request's deadline and
//! cancel fd, and the worker replies with the result.
//!
//! What a spare cannot give runs cold, as without spares, in the same
//! worker once the spare is gone: a command whose plan does not fit the
//! init's buffers, a client whose stdio is a terminal (the sandbox's own
//! terminal is made before the clone), a spare whose init failed.

use crate::channel::Message;
use crate::prepare::{ExecPlan, Prepared};
use crate::protocol::{self, Request};
use crate::relay::Relay;
use crate::slot::{HEADER, MAX_COMMAND, MAX_STRINGS};
use crate::supervise::Held;
use crate::sys::{self, socket};
use crate::{Envelope, RunError};
use nucleus_ns::Namespace;
use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

/// The message a [`Slot`](crate::slot::Slot) takes: the three counts (little-endian `u32`),
/// then every string NUL-terminated. `None` when it does not fit.
pub(crate) fn encode(plan: &ExecPlan) -> Option<Vec<u8>> {
    let groups = [&plan.candidates[..], plan.argv(), plan.envp()];
    let strings: usize = groups.iter().map(|g| g.len()).sum();
    if strings + 2 > MAX_STRINGS + 2 {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER + 256);
    for g in groups {
        out.extend_from_slice(&(g.len() as u32).to_le_bytes());
    }
    for s in groups.into_iter().flatten() {
        out.extend_from_slice(s.as_bytes_with_nul());
    }
    (out.len() <= MAX_COMMAND).then_some(out)
}

/// Checks that an Envelope can be kept as a spare: a program on the
/// native runtime, in its own PID and mount namespaces, with no pinned
/// policy file (which each run reads and checks again).
pub(crate) fn check(env: &Envelope, prepared: &Prepared) -> Result<(), RunError> {
    let why = if prepared.wasm().is_some() {
        "runs programs only"
    } else if env.seccomp.profile_file.is_some() || env.landlock.policy_file.is_some() {
        "is never made of a policy file: each run reads and checks it"
    } else if ![Namespace::Pid, Namespace::Mount]
        .into_iter()
        .all(|ns| prepared.namespaces.contains(ns))
    {
        "needs its own PID and mount namespaces"
    } else {
        return Ok(());
    };
    Err(RunError::SpareUnsupported { why })
}

/// What the server gives a spare's launch.
#[derive(Debug)]
pub(crate) struct SpareHold<'a> {
    /// The holder's end of the server's control socket (`SOCK_SEQPACKET`).
    pub(crate) control: BorrowedFd<'a>,
    /// The request the spare took, for the worker once the launch is over.
    pub(crate) taken: &'a RefCell<Option<Taken>>,
}

/// A request a spare took.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The client's connection: the reply goes there.
    pub(crate) conn: OwnedFd,
    pub(crate) request: Request,
    /// The client's stdio, until the init has it.
    pub(crate) stdio: Vec<OwnedFd>,
    /// The init has the command: the run is the spare's, never run again.
    pub(crate) started: bool,
    /// The client has its result already (the holder answered as soon as
    /// the command ended, see [`Host::saw`]).
    pub(crate) replied: bool,
}

/// A command the spare runs.
pub(crate) struct Run {
    /// The spare's Envelope with the request's command, timeout and capture.
    pub(crate) env: Envelope,
    pub(crate) started: Instant,
    pub(crate) relay: Option<Relay>,
}

/// The holder's side of a spare.
pub(crate) struct Host<'a> {
    env: &'a Envelope,
    prepared: &'a Prepared,
    control: BorrowedFd<'a>,
    /// The holder's end of the init's socket.
    init_control: OwnedFd,
    init: OwnedFd,
    taken: &'a RefCell<Option<Taken>>,
    ready: bool,
    /// The sandbox has a cgroup (its figures are read once it is gone).
    cgroup: bool,
    pub(crate) run: Option<Run>,
}

impl<'a> Host<'a> {
    pub(crate) fn new(
        env: &'a Envelope,
        prepared: &'a Prepared,
        hold: SpareHold<'a>,
        init_control: OwnedFd,
        init: &OwnedFd,
        cgroup: bool,
    ) -> Result<Host<'a>, RunError> {
        sys::set_nonblocking(hold.control).map_err(|source| RunError::Pipe { source })?;
        Ok(Host {
            env,
            prepared,
            control: hold.control,
            init_control,
            init: init
                .try_clone()
                .map_err(|source| RunError::Pipe { source })?,
            taken: hold.taken,
            ready: false,
            cgroup,
            run: None,
        })
    }

    /// Answers the client as soon as its command ended, when that is the
    /// whole result: the init reported the workload's usage (it does when
    /// no other process is left in the sandbox), no cgroup's figures and
    /// no captured output are to come, and the deadline did not pass. The
    /// sandbox is removed right after, as ever; the reply just does not
    /// wait for the kernel to tear its namespaces down.
    fn answer_early(&self, messages: &[Message]) {
        let Some(run) = &self.run else { return };
        let mut taken = self.taken.borrow_mut();
        let Some(t) = taken.as_mut().filter(|t| !t.replied) else {
            return;
        };
        if self.cgroup
            || run.relay.is_some()
            || self.deadline().is_some_and(|d| Instant::now() >= d)
        {
            return;
        }
        let Some(usage) = usage_of(messages) else {
            return;
        };
        if !messages.iter().any(|m| matches!(m, Message::Exited { .. })) {
            return;
        }
        let raw = crate::supervise::Raw {
            messages: messages.to_vec(),
            init_status: 0,
            usage,
            timed_out: false,
            recorded: None,
            forwarded: None,
        };
        let mut outcome =
            crate::report::interpret(&run.env, self.prepared, &raw, run.started.elapsed());
        outcome.enforced.runtime = crate::guard::Decision::Native;
        crate::session::send_reply(t.conn.as_fd(), &protocol::encode_outcome(Ok(outcome)));
        t.replied = true;
    }

    /// Sends the init the taken request's command with its stdio; `Err`
    /// (why) when the request must run cold instead.
    fn go(&mut self) -> Result<Run, String> {
        let mut taken = self.taken.borrow_mut();
        let t = taken.as_mut().ok_or("no request")?;
        let wanted = t.request.envelope().ok_or("a run needs an envelope")?;
        // What else the Envelope says is the spare's own (the server
        // keyed it so): only the command is checked, as `validate` would.
        if wanted.command.first().is_none_or(String::is_empty) {
            return Err("no command".into());
        }
        let mut env = self.env.clone();
        env.command.clone_from(&wanted.command);
        env.timeout = wanted.timeout;
        env.capture = wanted.capture;
        // The spare's environment, resolved when it was built.
        let crate::prepare::Workload::Exec(built) = &self.prepared.workload else {
            return Err("a spare runs programs only".into());
        };
        let plan = built
            .with_command(&env.command)
            .map_err(|e| e.to_string())?;
        let message = encode(&plan).ok_or("the command is larger than a spare takes")?;
        if t.stdio.iter().any(|fd| sys::is_terminal(fd.as_raw_fd())) {
            return Err("a terminal needs the sandbox's own, made before the clone".into());
        }
        let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
        let mut stdio: Vec<BorrowedFd<'_>> = (0..3)
            .map(|i| t.stdio.get(i).map_or(null.as_fd(), AsFd::as_fd))
            .collect();
        let mut relay = env
            .capture
            .map(Relay::for_capture)
            .transpose()
            .map_err(|e| e.to_string())?;
        let dups = relay.as_ref().map(Relay::child_dups).unwrap_or_default();
        for (from, to) in dups {
            // SAFETY: the relay's write end, open until `start` below.
            stdio[to as usize] = unsafe { BorrowedFd::borrow_raw(from) };
        }
        // The run's time counts from the send: the command may be done
        // before this process runs again.
        let started = Instant::now();
        socket::send_with_fds(self.init_control.as_fd(), &message, &stdio)
            .map_err(|e| format!("the spare's init is gone: {e}"))?;
        drop(stdio);
        t.started = true;
        t.stdio.clear();
        if let Some(relay) = relay.as_mut() {
            if let Err(e) = relay.start(&self.init) {
                // The command runs already: it is killed, never run again.
                tracing::warn!(error = %e, "cannot relay a spare's output");
                sys::pidfd_send_signal(&self.init, libc::SIGKILL);
            }
        }
        Ok(Run {
            env,
            started,
            relay,
        })
    }
}

impl Held for Host<'_> {
    fn control_fd(&self) -> RawFd {
        self.control.as_raw_fd()
    }

    /// Takes one request, once the init is ready.
    fn ready(&self) -> bool {
        self.ready && self.taken.borrow().is_none()
    }

    fn saw(&mut self, messages: &[Message]) {
        self.ready |= messages.contains(&Message::Ready);
        self.answer_early(messages);
    }

    fn reap(&mut self) {}

    /// Takes the request and starts it; `false` ends the spare (the
    /// server closed the socket, or the request runs cold).
    fn serve(&mut self) -> bool {
        let mut buf = vec![0u8; crate::session::MAX_EXEC_REQUEST];
        let mut fds = Vec::new();
        let n = match socket::recv_with_fds(self.control, &mut buf, &mut fds) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                return true
            }
            Err(e) => {
                tracing::warn!(error = %e, "a spare's control socket failed");
                return false;
            }
        };
        let Some(taken) = take(&buf[..n], fds) else {
            return false;
        };
        *self.taken.borrow_mut() = Some(taken);
        match self.go() {
            Ok(run) => {
                self.run = Some(run);
                true
            }
            Err(why) => {
                tracing::debug!(%why, "the request runs cold");
                false
            }
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        None
    }

    fn deadline(&self) -> Option<Instant> {
        let run = self.run.as_ref()?;
        run.started.checked_add(run.env.timeout?)
    }

    fn cancel_fd(&self) -> Option<RawFd> {
        self.run.as_ref()?;
        self.taken.borrow().as_ref().map(|t| t.conn.as_raw_fd())
    }
}

/// The workload's usage from the init's `Usage` record, unless a figure
/// saturated.
fn usage_of(messages: &[Message]) -> Option<libc::rusage> {
    let (user_us, sys_us, maxrss_kb) = messages.iter().find_map(|m| match *m {
        Message::Usage {
            user_us,
            sys_us,
            maxrss_kb,
        } => Some((user_us, sys_us, maxrss_kb)),
        _ => None,
    })?;
    if [user_us, sys_us, maxrss_kb].contains(&u32::MAX) {
        return None;
    }
    let tv = |us: u32| libc::timeval {
        tv_sec: libc::time_t::from(us / 1_000_000),
        tv_usec: libc::suseconds_t::from(us % 1_000_000),
    };
    // SAFETY: all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    usage.ru_utime = tv(user_us);
    usage.ru_stime = tv(sys_us);
    usage.ru_maxrss = libc::c_long::from(maxrss_kb);
    Some(usage)
}

/// A request as the server passes it: the body, then the client's
/// connection and stdio. `None` (answered, if it can be) when it is not
/// one the server would pass.
pub(crate) fn take(body: &[u8], fds: Vec<OwnedFd>) -> Option<Taken> {
    let mut fds = fds.into_iter();
    let conn = fds.next()?;
    match protocol::decode_request(body) {
        Ok(request) => Some(Taken {
            conn,
            request,
            stdio: fds.collect(),
            started: false,
            replied: false,
        }),
        Err(e) => {
            let kind = protocol::ErrorKind::BadRequest;
            crate::session::reply_error(conn.as_fd(), kind, &e.to_string());
            None
        }
    }
}

/// After the launch: takes a request still queued on the control socket
/// (sent before the spare could refuse it), refusing any later one
/// (`shutdown` of the reading side: the server's send fails).
pub(crate) fn drain(control: BorrowedFd<'_>) -> Option<Taken> {
    // SAFETY: plain syscall on a live socket.
    unsafe { libc::shutdown(control.as_raw_fd(), libc::SHUT_RD) };
    let mut buf = vec![0u8; crate::session::MAX_EXEC_REQUEST];
    let mut fds = Vec::new();
    match socket::recv_with_fds(control, &mut buf, &mut fds) {
        Ok(n) if n > 0 => take(&buf[..n], fds),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::parse;
    use std::ffi::CStr;

    #[test]
    fn a_command_comes_back_as_it_was_sent() {
        let env = Envelope::builder(["echo", "a b", ""]).build().unwrap();
        let plan = ExecPlan::new(&env, 0).unwrap();
        let bytes = encode(&plan).unwrap();
        let mut ptrs = vec![std::ptr::null(); 64];
        let (c, a, v) = parse(&bytes, &mut ptrs).unwrap();
        assert_eq!((c, a), (plan.candidates.len(), 3));
        assert_eq!(v, plan.envp().len());
        // SAFETY: parse pointed them into `bytes`, alive here.
        let text = |p: *const libc::c_char| unsafe { CStr::from_ptr(p) }.to_owned();
        assert_eq!(text(ptrs[c + 1]).as_bytes(), b"a b");
        assert_eq!(text(ptrs[c + 2]).as_bytes(), b"");
        assert!(ptrs[c + 3].is_null() && ptrs[c + 3 + v + 1].is_null());
    }
}

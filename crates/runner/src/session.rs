//! Sessions, sandbox side: a sandbox kept for several commands that join
//! it (`nucleus-run session create`, then `session exec` any number of
//! times). The server side (names, idle removal, the socket's ops) is in
//! `server/`.
//!
//! A session is a launch whose init builds and confines itself as usual
//! but starts no workload: it reports `Ready` and only reaps
//! (`Prepared::hold`). Its parent, the **holder**, opens the sandbox's
//! namespaces (`/proc/PID/ns/*`) before it releases the init (later the
//! init is not dumpable, and its namespaces could not be opened by a
//! rootless holder) and the `cgroup.procs` of its cgroup, and then
//! supervises it as any launch does, plus a control socket from the
//! server.
//!
//! Each command comes over that socket: the request, with the client's
//! connection and stdio. The holder forks an **exec worker**, a copy of
//! itself holding the session's prepared policy (the same compiled
//! seccomp filter, capabilities, ids, Landlock rules and rlimits). The
//! worker joins the namespaces (user first), forks the command (which so
//! lands in the PID namespace, with the init as the reaper of its
//! orphans), writes it into the session's cgroup and releases it. The
//! command confines itself as the init did (`child::run_exec`) and
//! executes; the worker supervises it as a launch supervises its init
//! (timeout, the client's hang-up, relayed output) and replies with the
//! result. The worker is outside the PID namespace: nothing in the session
//! can see or signal it.
//!
//! Under gVisor the envelope is the one around runsc, and the commands
//! are `runsc exec` into the container the holder started in it
//! (`gvisor_session.rs`).
//!
//! The session ends when the server closes the control socket
//! (`session rm`, the server's stop), or when no command ran for its idle
//! timeout: the init is killed, which ends every process of the PID
//! namespace, and the launch removes what it made, as after a timeout.

use crate::channel::Message;
use crate::outcome::Outcome;
use crate::prepare::{ExecPlan, Prepared};
use crate::protocol::{self, ErrorKind, Exec};
use crate::supervise::{Held, Watch};
use crate::sys::{self, socket};
use crate::{Envelope, RunError};
use nucleus_ns::Namespace;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The largest request the server passes to a holder (one message of the
/// control socket).
pub(crate) const MAX_EXEC_REQUEST: usize = 64 << 10;

/// The most commands one session runs at once; more get a `busy` reply.
pub(crate) const MAX_COMMANDS: usize = 64;

/// How long a gVisor session's container may take to start.
const START_LIMIT: Duration = Duration::from_secs(60);

/// How long a gVisor command's helper pid and its `runsc kill` are waited for.
const KILL_LIMIT: Duration = Duration::from_secs(5);

/// Whether `child` ended, waiting at most `limit` for it.
fn ended(child: &nucleus_ns::Child, limit: Duration) -> bool {
    sys::readable_within(child.pidfd.as_raw_fd(), limit)
}

/// How long a reply may wait for a client that does not read it.
const REPLY_TIMEOUT_SECS: libc::time_t = 30;

/// Sends a reply frame on a client's connection. The server reads requests
/// without blocking, and `O_NONBLOCK` belongs to the connection (every copy
/// of it): it is cleared first, so that a reply larger than the socket's
/// buffer (captured output) is sent whole, waiting at most
/// [`REPLY_TIMEOUT_SECS`] for a client that does not read. A client gone
/// meanwhile cannot be told.
pub(crate) fn send_reply(conn: BorrowedFd<'_>, frame: &[u8]) {
    let _ = sys::set_blocking(conn);
    socket::set_send_timeout(conn, REPLY_TIMEOUT_SECS);
    let _ = socket::send_all(conn, frame, &[]);
}

/// What the server gives a session's launch.
#[derive(Debug)]
pub(crate) struct Hold {
    /// The holder's end of the control socket (`SOCK_SEQPACKET`).
    pub(crate) control: OwnedFd,
    /// The connection of the client that asked for the session: answered
    /// once the init is ready.
    pub(crate) reply: OwnedFd,
    /// The session's name, for the reply.
    pub(crate) name: String,
    /// How long the session lives with no command running.
    pub(crate) idle: Duration,
    /// Under gVisor: the container the commands join
    /// (`gvisor_session.rs`), set by the launch.
    pub(crate) gvisor: Option<Box<crate::gvisor_session::Container>>,
}

/// Checks that an Envelope can be held as a session: with the PID and
/// mount namespaces that contain its commands, and a program workload.
pub(crate) fn check(env: &Envelope, prepared: &Prepared) -> Result<(), RunError> {
    if prepared.wasm().is_some() {
        return Err(RunError::SessionUnsupported {
            why: "runs programs: --wasm is not supported",
        });
    }
    for ns in [Namespace::Pid, Namespace::Mount] {
        if !prepared.namespaces.contains(ns) {
            return Err(RunError::SessionUnsupported {
                why: "needs its own PID and mount namespaces (drop --share pid/mount)",
            });
        }
    }
    if env.capture.is_some() {
        return Err(RunError::SessionUnsupported {
            why: "has no output of its own: pass --capture to each `session exec`",
        });
    }
    Ok(())
}

/// The holder's side of a running session.
pub(crate) struct Host<'a> {
    env: &'a Envelope,
    prepared: &'a Prepared,
    hold: Hold,
    /// The sandbox's namespaces, the user namespace first.
    namespaces: Vec<(Namespace, OwnedFd)>,
    /// `cgroup.procs` of each of the session's cgroups, open for writing.
    procs: Vec<OwnedFd>,
    ready: bool,
    /// The gVisor container did not start: the session ends.
    failed: bool,
    gvisor: Option<Box<crate::gvisor_session::Container>>,
    /// The exec workers still running.
    workers: Vec<libc::pid_t>,
    idle_since: Instant,
}

impl<'a> Host<'a> {
    /// Opens the namespaces of the (not yet released) init `pid` and the
    /// cgroup's `cgroup.procs`.
    pub(crate) fn open(
        env: &'a Envelope,
        prepared: &'a Prepared,
        mut hold: Hold,
        pid: libc::pid_t,
        cgroup: Option<&nucleus_cgroup::Cgroup>,
    ) -> Result<Host<'a>, RunError> {
        let mut order: Vec<Namespace> = prepared.namespaces.iter().collect();
        // The user namespace first: joining it grants the rights the
        // others' joins need.
        order.sort_by_key(|ns| *ns != Namespace::User);
        let namespaces = order
            .into_iter()
            .map(|ns| {
                let path = format!("/proc/{pid}/ns/{}", ns.proc_name());
                std::fs::File::open(path)
                    .map(|file| (ns, OwnedFd::from(file)))
                    .map_err(|source| RunError::SessionJoin {
                        what: "open",
                        ns: format!("{} namespace", ns.name()),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let procs = cgroup
            .map(|cg| cg.paths())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| {
                let procs = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"));
                procs
                    .map(OwnedFd::from)
                    .map_err(|source| RunError::SessionJoin {
                        what: "open",
                        ns: format!("cgroup {}", dir.display()),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        sys::set_nonblocking(&hold.control).map_err(|source| RunError::Pipe { source })?;
        Ok(Host {
            env,
            prepared,
            gvisor: hold.gvisor.take(),
            hold,
            namespaces,
            procs,
            ready: false,
            failed: false,
            workers: Vec::new(),
            idle_since: Instant::now(),
        })
    }

    /// Forks the exec worker of one request: `fds` are the client's
    /// connection, then its stdio.
    fn start(&mut self, body: &[u8], fds: Vec<OwnedFd>) {
        let mut fds = fds.into_iter();
        let Some(conn) = fds.next() else {
            tracing::warn!("a session request came without its connection");
            return;
        };
        let exec = match protocol::decode_request(body).map(|r| r.exec) {
            Ok(Some(exec)) => exec,
            Ok(None) => return reply_error(conn.as_fd(), ErrorKind::BadRequest, "no command"),
            Err(e) => return reply_error(conn.as_fd(), ErrorKind::BadRequest, &e.to_string()),
        };
        if self.workers.len() >= MAX_COMMANDS {
            let message = format!("the session runs {MAX_COMMANDS} commands, the most it runs");
            return reply_error(conn.as_fd(), ErrorKind::Busy, &message);
        }
        match sys::fork() {
            // The holder is single-threaded (its launch checked): the
            // worker may allocate.
            Ok(0) => self.exec_worker(conn, fds.collect(), &exec),
            Ok(pid) => {
                self.workers.push(pid);
                tracing::debug!(pid, "session command started");
            }
            Err(e) => {
                let text = std::io::Error::from_raw_os_error(e);
                reply_error(
                    conn.as_fd(),
                    ErrorKind::Setup,
                    &format!("cannot fork: {text}"),
                );
            }
        }
    }

    /// The exec worker (a forked copy of the holder): runs one command and
    /// replies; never returns.
    fn exec_worker(&self, conn: OwnedFd, stdio: Vec<OwnedFd>, exec: &Exec) -> ! {
        let conn = conn.into_raw_fd();
        let mut keep = vec![conn];
        keep.extend(self.namespaces.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep.extend(self.procs.iter().map(AsRawFd::as_raw_fd));
        // SAFETY: the fd was the connection's, owned here and closed only
        // by `_exit`.
        let conn = unsafe { BorrowedFd::borrow_raw(conn) };
        let frame = match adopt_stdio(stdio, &keep) {
            Ok(()) => protocol::encode_outcome(self.run_command(conn, exec)),
            Err(message) => protocol::encode_error(ErrorKind::Setup, &message),
        };
        send_reply(conn, &frame);
        sys::exit(0)
    }

    /// Runs `exec` in the session and interprets its end. The worker
    /// stays in its own namespaces (it may start the relay's threads);
    /// the command's parent joins the session's (`child::run_command`).
    fn run_command(&self, conn: BorrowedFd<'_>, exec: &Exec) -> Result<Outcome, RunError> {
        let p = self.prepared;
        let env = self.command_envelope(exec);
        let started = Instant::now();
        let (plan, workdir, files) = match &self.gvisor {
            Some(container) => {
                let files = container.exec_files();
                let plan = container.exec_plan(&env, &files)?;
                (plan, crate::prepare::cstring("/")?, Some(files))
            }
            None => (
                ExecPlan::new(&env, p.uid)?,
                crate::prepare::cstring(env.workdir.as_os_str().as_encoded_bytes())?,
                None,
            ),
        };
        // gVisor writes a host file at offsets of its own per fd: output
        // goes through pipes, as in a one-shot gVisor run.
        let relay = match (env.capture, &self.gvisor) {
            (Some(limit), _) => Some(crate::relay::Relay::for_capture(limit)),
            (None, Some(_)) => Some(crate::relay::Relay::for_output()),
            (None, None) => None,
        };
        let mut relay = relay
            .transpose()
            .map_err(|source| RunError::Pipe { source })?;
        let dups = relay.as_ref().map(|r| r.child_dups()).unwrap_or_default();
        let sigfd = sys::signalfd(&sys::sigset(&[libc::SIGCHLD]))
            .map_err(|source| RunError::Signalfd { source })?;
        let (parent, msg_r) = self.spawn(&plan, &workdir, &dups)?;
        if let Some(relay) = relay.as_mut() {
            if let Err(source) = relay.start(&parent.pidfd) {
                sys::pidfd_send_signal(&parent.pidfd, libc::SIGKILL);
                return Err(RunError::Pipe { source });
            }
        }
        let kill_inside = |files| self.kill_inside(&parent, files);
        let on_kill = files.as_ref().map(|f| move || kill_inside(f));
        let mut watch = Watch {
            child: &parent,
            msg: &msg_r,
            sigfd: &sigfd,
            timeout: env.timeout,
            cgroup: None,
            record: false,
            console: None,
            cancel: Some(conn),
            host: None,
            on_kill: on_kill.as_ref().map(|f| f as &dyn Fn()),
        };
        let raw = watch.supervise(started)?;
        let kept = relay.and_then(crate::relay::Relay::finish);
        let mut outcome = crate::report::interpret(&env, p, &raw, started.elapsed());
        outcome.captured = kept.map(|(out, err)| crate::outcome::Captured::new(out, err));
        if let (Some(container), Some(files)) = (&self.gvisor, &files) {
            container.conclude(&env, &mut outcome, files);
        }
        Ok(outcome)
    }

    /// Forks the parent of one command, which joins the session's
    /// namespaces and cgroup and starts `plan` in `workdir`
    /// (`child::run_command`); returns it and the read end of its channel.
    fn spawn(
        &self,
        plan: &ExecPlan,
        workdir: &std::ffi::CStr,
        dups: &[(RawFd, RawFd)],
    ) -> Result<(nucleus_ns::Child, OwnedFd), RunError> {
        let namespaces: Vec<(libc::c_int, RawFd)> = self
            .namespaces
            .iter()
            .map(|(ns, fd)| (ns.clone_flag(), fd.as_raw_fd()))
            .collect();
        let procs: Vec<RawFd> = self.procs.iter().map(AsRawFd::as_raw_fd).collect();
        let (go_r, go_w) = sys::pipe().map_err(|source| RunError::Pipe { source })?;
        let (msg_r, msg_w) = sys::pipe().map_err(|source| RunError::Pipe { source })?;
        let cmd = crate::child::CommandPlan {
            namespaces: &namespaces,
            procs: &procs,
            exec: plan,
            workdir,
            stdio_dups: dups,
            go: (go_r.as_raw_fd(), go_w.as_raw_fd()),
        };
        // SAFETY: the child only runs `child::run_command`, which does
        // async-signal-safe work on what was prepared above and never
        // returns; so a fork beside the relay's threads (`--capture`) is
        // sound too.
        let parent = match unsafe { nucleus_ns::fork_into(nucleus_ns::NamespaceSet::none(), None) }
        {
            Ok(nucleus_ns::Forked::Child) => {
                crate::child::run_command(self.prepared, &cmd, msg_w.as_raw_fd())
            }
            Ok(nucleus_ns::Forked::Parent(child)) => child,
            Err(err) => {
                return Err(RunError::Clone {
                    source: std::io::Error::other(err),
                })
            }
        };
        drop((go_r, go_w, msg_w));
        sys::set_nonblocking(&msg_r).map_err(|source| RunError::Pipe { source })?;
        Ok((parent, msg_r))
    }

    /// Runs `plan` in the session with its stdio on `/dev/null`, for at
    /// most `limit`; the wait status of the program, if it ran.
    fn run_quietly(&self, plan: &ExecPlan, limit: Duration) -> Result<i32, String> {
        let null = dev_null()?;
        let fd = null.as_raw_fd();
        let slash = crate::prepare::cstring("/").map_err(|e| e.to_string())?;
        let (child, msg) = self
            .spawn(plan, &slash, &[(fd, 0), (fd, 1), (fd, 2)])
            .map_err(|e| e.to_string())?;
        if !ended(&child, limit) {
            sys::kill(-child.pid, libc::SIGKILL);
            sys::pidfd_send_signal(&child.pidfd, libc::SIGKILL);
        }
        sys::wait_pidfd_usage(&child.pidfd).map_err(|e| e.to_string())?;
        let mut messages = Vec::new();
        crate::channel::drain(&msg, &mut messages);
        messages
            .iter()
            .find_map(|m| match m {
                Message::Exited { status } => Some(*status),
                _ => None,
            })
            .ok_or_else(|| "runsc did not start in the session".to_owned())
    }

    /// Starts the gVisor container, before the session is ready.
    fn start_container(&self, container: &crate::gvisor_session::Container) -> Result<(), String> {
        let plan = container.start_plan().map_err(|e| e.to_string())?;
        let status = self.run_quietly(&plan, START_LIMIT)?;
        match libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            true => Ok(()),
            false => Err(container.start_failure()),
        }
    }

    /// Before a gVisor command's parent is killed (its timeout, its
    /// client's hang-up): has runsc signal the command's helper, which
    /// kills the command's process group inside. `runsc exec` writes the
    /// helper's pid once it started it; until then it is waited for.
    fn kill_inside(&self, parent: &nucleus_ns::Child, files: &crate::gvisor_session::ExecFiles) {
        let Some(container) = &self.gvisor else {
            return;
        };
        let until = Instant::now() + KILL_LIMIT;
        let pid = loop {
            if let Some(pid) = files.pid() {
                break pid;
            }
            if ended(parent, Duration::from_millis(5)) || Instant::now() >= until {
                return;
            }
        };
        let done = container
            .kill_plan(pid)
            .map_err(|e| e.to_string())
            .and_then(|plan| self.run_quietly(&plan, KILL_LIMIT));
        if let Err(error) = done {
            tracing::warn!(%error, pid, "the command's helper could not be signalled");
        }
    }

    /// The session's Envelope with this command's own settings.
    fn command_envelope(&self, exec: &Exec) -> Envelope {
        let mut env = self.env.clone();
        env.command.clone_from(&exec.command);
        env.env.extend(exec.env.clone());
        if let Some(dir) = &exec.workdir {
            env.workdir.clone_from(dir);
        }
        env.timeout = exec.timeout.or(env.timeout);
        env.capture = exec.capture;
        env
    }
}

impl Held for Host<'_> {
    fn control_fd(&self) -> RawFd {
        self.hold.control.as_raw_fd()
    }

    fn ready(&self) -> bool {
        self.ready
    }

    /// Answers the create request once the init reported `Ready` (under
    /// gVisor, once the container started too).
    fn saw(&mut self, messages: &[Message]) {
        if self.ready || self.failed || !messages.contains(&Message::Ready) {
            return;
        }
        if let Some(container) = &self.gvisor {
            if let Err(message) = self.start_container(container) {
                self.failed = true;
                reply_error(self.hold.reply.as_fd(), ErrorKind::Setup, &message);
                socket::shutdown(self.hold.reply.as_fd());
                return;
            }
        }
        self.ready = true;
        self.idle_since = Instant::now();
        let value = serde_json::json!({ "session": self.hold.name, "pid": std::process::id() });
        let reply = self.hold.reply.as_fd();
        send_reply(reply, &protocol::encode_value(&value));
        socket::shutdown(reply);
        tracing::debug!(session = %self.hold.name, "session ready");
    }

    /// Reaps the exec workers that ended.
    fn reap(&mut self) {
        let before = self.workers.len();
        self.workers.retain(|&pid| !sys::reap_nohang(pid));
        if self.workers.is_empty() && before > 0 {
            self.idle_since = Instant::now();
        }
    }

    /// Takes the requests waiting on the control socket, forking an exec
    /// worker for each; `false` when the server closed it (the session ends).
    fn serve(&mut self) -> bool {
        loop {
            let mut buf = vec![0u8; MAX_EXEC_REQUEST];
            let mut fds = Vec::new();
            match socket::recv_with_fds(self.hold.control.as_fd(), &mut buf, &mut fds) {
                Ok(0) => return false,
                Ok(n) => self.start(&buf[..n], fds),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the session's control socket failed");
                    return false;
                }
            }
        }
    }

    /// `None` while a command runs or before the init is ready; now
    /// when the container did not start.
    fn idle_deadline(&self) -> Option<Instant> {
        if self.failed {
            return Some(self.idle_since);
        }
        (self.ready && self.workers.is_empty()).then(|| self.idle_since + self.hold.idle)
    }
}

impl Drop for Host<'_> {
    /// Waits for the exec workers: the session is gone, their commands
    /// with it, and each only sends its reply.
    fn drop(&mut self) {
        for &pid in &self.workers {
            sys::wait_pid(pid);
        }
        if let Some(container) = self.gvisor.take() {
            container.finish();
        }
    }
}

/// Puts `stdio` on 0, 1 and 2 (`/dev/null` for missing ones) and closes
/// every other fd but `keep` (sorted or not).
pub(crate) fn adopt_stdio(stdio: Vec<OwnedFd>, keep: &[RawFd]) -> Result<(), String> {
    let mut stdio = stdio.into_iter();
    for target in 0..3 {
        let from = match stdio.next() {
            Some(fd) => fd.into_raw_fd(),
            None => dev_null()?.into_raw_fd(),
        };
        sys::dup2(from, target).map_err(|e| {
            let e = std::io::Error::from_raw_os_error(e);
            format!("cannot set up fd {target}: {e}")
        })?;
    }
    let mut kept = keep.to_vec();
    kept.sort_unstable();
    sys::close_fds_except(&kept).map_err(|e| {
        let e = std::io::Error::from_raw_os_error(e);
        format!("cannot close the server's fds: {e}")
    })
}

fn dev_null() -> Result<OwnedFd, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| format!("cannot open /dev/null: {e}"))
}

/// Sends an error reply without waiting (it is small; a client that does
/// not read loses it).
pub(crate) fn reply_error(conn: BorrowedFd<'_>, kind: ErrorKind, message: &str) {
    tracing::debug!(%kind, message, "error reply");
    let _ = socket::send_with_fds(conn, &protocol::encode_error(kind, message), &[]);
}

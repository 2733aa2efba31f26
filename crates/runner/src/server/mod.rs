//! `nucleus-run serve`: a launcher that stays up and runs each request of
//! its unix socket in a new sandbox ([`crate::protocol`] is the wire).
//!
//! One thread, one `poll` loop: it accepts connections, checks each peer
//! (`SO_PEERCRED`: the server's own uid, or root), reads the request frame
//! and its stdio fds, and forks a **worker** per request. The worker puts
//! the client's fds on 0, 1 and 2, takes the client's directory and
//! environment, runs the ordinary launch sequence
//! ([`launch_with`](crate::launch_with), with the connection as the cancel
//! fd) and writes the reply. What it saves against a one-shot `nucleus-run`
//! is the exec of the binary, its dynamic linking and page faults, the
//! parse of the command line and the compile of the default seccomp
//! profile (done once, before the first fork), and, for a root server, the
//! network namespace: a small pool of fresh ones is made while the server
//! is idle, each handed to one sandbox.
//!
//! Nothing is shared between two sandboxes: each worker clones its own
//! namespaces, mounts and cgroup, and a worker's failure ends only its own
//! connection. `SIGTERM`, `SIGINT` or `SIGHUP` stop the server: it stops
//! accepting, shuts every running connection down (each worker then kills
//! its sandbox and removes what it made, as after a timeout), waits for the
//! workers and removes its socket.
//!
//! ```no_run
//! let opts = nucleus_runner::server::ServeOptions::new("/run/user/1000/nucleus.sock");
//! nucleus_runner::server::serve(&opts)?; // until SIGTERM
//! # Ok::<(), nucleus_runner::RunError>(())
//! ```

mod listen;
mod netns;
mod spares;
mod worker;

use crate::protocol::{self, ErrorKind, Op, Request, MAX_FDS, MAX_REQUEST};
use crate::sys::{self, socket};
use crate::RunError;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How a server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The socket's path; made with mode 0600.
    pub socket: PathBuf,
    /// The most sandboxes run at once; a request beyond gets a `busy` reply.
    pub max_sandboxes: usize,
    /// The most connections whose request is still being read.
    pub max_pending: usize,
    /// How long a connection may take to send its request.
    pub request_timeout: Duration,
    /// How long stopping waits for the workers before killing them.
    pub stop_grace: Duration,
    /// How many network namespaces to keep made ahead (root servers; 0: none).
    pub netns_pool: usize,
    /// How many spare sandboxes to keep built ahead for each recent shape
    /// of request (0, the default: none). See `docs/ARCHITECTURE.md`.
    pub spares: usize,
}

impl ServeOptions {
    /// The defaults: 256 sandboxes, 64 pending requests, 10 s to send one,
    /// 10 s to stop, 8 network namespaces ahead, no spares.
    ///
    /// ```
    /// let opts = nucleus_runner::server::ServeOptions::new("/tmp/n.sock");
    /// assert_eq!((opts.max_sandboxes, opts.spares), (256, 0));
    /// ```
    pub fn new(socket: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            socket: socket.into(),
            max_sandboxes: 256,
            max_pending: 64,
            request_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(10),
            netns_pool: 8,
            spares: 0,
        }
    }
}

/// Serves requests on `opts.socket` until a stop signal; see the module.
/// Fails when the socket cannot be made (another server listens there, the
/// path is not a socket) or when the process has more than one thread (a
/// worker is a `fork` of it).
pub fn serve(opts: &ServeOptions) -> Result<(), RunError> {
    crate::sandbox::ensure_single_threaded()?;
    // Received fds must never land on 0-2 (a worker dup2s onto them).
    sys::occupy_closed_stdio().map_err(|source| RunError::Pipe { source })?;
    // Blocked before the socket exists: a stop signal sent as soon as a
    // client could connect is a stop, never a default death.
    let signals = sys::sigset(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD]);
    let old_mask = sys::sigmask(libc::SIG_BLOCK, &signals);
    let old_chld = sys::set_signal_default(libc::SIGCHLD);
    let restore = || {
        sys::restore_signal(libc::SIGCHLD, old_chld);
        sys::sigmask(libc::SIG_SETMASK, &old_mask);
    };
    let sigfd = match sys::signalfd(&signals) {
        Ok(fd) => fd,
        Err(source) => {
            restore();
            return Err(RunError::Signalfd { source });
        }
    };
    // What every worker would otherwise compile again: the default
    // seccomp profile's variants.
    crate::seccomp::warm();
    let listener = match listen::bind(&opts.socket) {
        Ok(listener) => listener,
        Err(err) => {
            restore();
            return Err(err);
        }
    };
    let ino = listen::inode(&opts.socket);
    tracing::info!(socket = %opts.socket.display(), "serving");
    let mut server = Server {
        opts,
        pending: Vec::new(),
        running: Vec::new(),
        sessions: BTreeMap::new(),
        old_mask,
        pool: netns::Pool::new(opts.netns_pool),
        shapes: spares::Shapes::new(opts.spares),
    };
    let result = server.run(&listener, &sigfd);
    listen::remove(&opts.socket, ino);
    drop(listener);
    server.stop(&sigfd);
    restore();
    result
}

/// A connection whose request is being read.
struct Pending {
    conn: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    since: Instant,
}

/// A worker and its client's connection (a session's holder: the
/// server's end of its control socket).
struct Running {
    pid: libc::pid_t,
    conn: OwnedFd,
    /// A spare's shape, until it took a request (`spares.rs`).
    spare: Option<String>,
}

/// A session the server holds.
struct Session {
    /// Its holder (a worker in `running`).
    pid: libc::pid_t,
    idle: Duration,
    since: Instant,
    /// Clients of `session-rm`, answered once the holder is gone.
    removing: Vec<UnixStream>,
}

struct Server<'a> {
    opts: &'a ServeOptions,
    pending: Vec<Pending>,
    running: Vec<Running>,
    /// By name.
    sessions: BTreeMap<String, Session>,
    /// The mask before the server blocked its signals: a worker's.
    old_mask: libc::sigset_t,
    pool: netns::Pool,
    shapes: spares::Shapes,
}

impl Server<'_> {
    /// The loop: until a stop signal (`Ok`) or a failed `poll` (`Err`).
    fn run(&mut self, listener: &UnixListener, sigfd: &OwnedFd) -> Result<(), RunError> {
        loop {
            let accepting = self.pending.len() < self.opts.max_pending;
            let mut fds = vec![
                pollin(sigfd.as_raw_fd()),
                pollin(if accepting { listener.as_raw_fd() } else { -1 }),
            ];
            fds.extend(self.pending.iter().map(|p| pollin(p.conn.as_raw_fd())));
            // Idle time fills the pool and builds spares: one namespace or
            // spare per turn of the loop, and only when nothing is waiting.
            let fill = self.pool.wants_more() || self.wanted_spare().is_some();
            let timeout = if fill { 0 } else { self.next_deadline_ms() };
            let ready = sys::poll(&mut fds, timeout).map_err(|source| RunError::Wait { source })?;
            for key in self.shapes.expire() {
                self.close_spares(&key);
            }
            if fill && ready == 0 {
                match self.pool.wants_more() {
                    true => self.pool.add_one(),
                    false => self.add_spare(),
                }
                continue;
            }
            // Pending connections first: `accept` below pushes new ones.
            let ready: Vec<bool> = fds[2..].iter().map(|f| f.revents != 0).collect();
            self.read_pending(&ready);
            self.expire_pending();
            if fds[1].revents != 0 {
                self.accept(listener);
                // A request usually comes with its connection: read it now
                // rather than after another turn of the loop.
                let ready = vec![true; self.pending.len()];
                self.read_pending(&ready);
            }
            if fds[0].revents != 0 && self.signals(sigfd) {
                return Ok(());
            }
        }
    }

    /// Milliseconds to the first deadline (-1: none): a pending
    /// connection's, a shape's expiry, the retry of a failed shape.
    fn next_deadline_ms(&self) -> libc::c_int {
        self.pending
            .iter()
            .map(|p| p.since + self.opts.request_timeout)
            .chain(self.shapes.next_expiry())
            .chain(self.shapes.next_retry())
            .map(|at| {
                at.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as libc::c_int
            })
            .min()
            .unwrap_or(-1)
    }

    /// The sandboxes that count against `--max-sandboxes`: every worker
    /// but the spares still waiting for a request.
    fn sandboxes(&self) -> usize {
        self.running.iter().filter(|r| r.spare.is_none()).count()
    }

    /// The shape that wants one more spare, if the server has room and
    /// no run is under way: a spare's build (clone, namespaces, mounts)
    /// would take the CPU the run waits for; it comes when the run is done.
    fn wanted_spare(&self) -> Option<&spares::Shape> {
        let holder = |pid: libc::pid_t| self.sessions.values().any(|s| s.pid == pid);
        let busy = self
            .running
            .iter()
            .any(|r| r.spare.is_none() && !holder(r.pid));
        if busy || self.running.len() >= self.opts.max_sandboxes {
            return None;
        }
        let count = |key: &str| {
            let mine = |r: &&Running| r.spare.as_deref() == Some(key);
            self.running.iter().filter(mine).count()
        };
        self.shapes.wanting(count)
    }

    /// Forks the holder of one more spare of the shape that wants one.
    fn add_spare(&mut self) {
        let Some(shape) = self.wanted_spare() else {
            return;
        };
        let (key, template) = (shape.key.clone(), shape.template.clone());
        let forked = socket::seqpacket_pair().and_then(|(ours, theirs)| {
            match sys::fork().map_err(std::io::Error::from_raw_os_error)? {
                // The server is single-threaded: the child may allocate.
                0 => worker::spare(&template, theirs, &self.old_mask),
                pid => Ok((pid, ours)),
            }
        });
        match forked {
            Ok((pid, conn)) => {
                // A full queue is a refused pass (the request runs cold),
                // never a blocked server.
                let _ = sys::set_nonblocking(&conn);
                self.running.push(Running {
                    pid,
                    conn,
                    spare: Some(key),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a spare");
                self.shapes.failed(&key);
            }
        }
    }

    /// Ends the spares of shape `key` that wait for a request.
    fn close_spares(&mut self, key: &str) {
        for r in &mut self.running {
            if r.spare.as_deref() == Some(key) {
                socket::shutdown(r.conn.as_fd());
                r.spare = None;
            }
        }
    }

    /// Passes a `run` to a spare of its shape; `false` when none took it.
    fn pass_to_spare(&mut self, key: &str, p: &Pending, body: &[u8]) -> bool {
        let mut fds: Vec<BorrowedFd<'_>> = vec![p.conn.as_fd()];
        fds.extend(p.fds.iter().map(AsFd::as_fd));
        for r in &mut self.running {
            if r.spare.as_deref() != Some(key) {
                continue;
            }
            // Taken or refused, a spare gets one request: it is no longer one.
            r.spare = None;
            match socket::send_with_fds(r.conn.as_fd(), body, &fds) {
                Ok(_) => return true,
                Err(e) => {
                    tracing::debug!(error = %e, "a spare refused a request");
                    socket::shutdown(r.conn.as_fd());
                }
            }
        }
        false
    }

    /// Reaps workers; `true` on a stop signal.
    fn signals(&mut self, sigfd: &OwnedFd) -> bool {
        let mut stop = false;
        while let Some(sig) = sys::read_signal(sigfd) {
            if sig == libc::SIGCHLD {
                self.reap();
            } else {
                tracing::info!(signal = sig, "stopping");
                stop = true;
            }
        }
        stop
    }

    fn reap(&mut self) {
        while let Some((pid, _)) = sys::wait_any(true) {
            // A spare that ended on its own, before any request: its build failed.
            let failed = self
                .running
                .iter()
                .find(|r| r.pid == pid)
                .and_then(|r| r.spare.clone());
            if let Some(key) = failed {
                self.shapes.failed(&key);
            }
            self.running.retain(|r| r.pid != pid);
            self.session_ended(pid);
        }
    }

    /// Forgets the session whose holder `pid` ended and answers its
    /// `session-rm` clients: everything it made is gone by now.
    fn session_ended(&mut self, pid: libc::pid_t) {
        let Some(name) = self
            .sessions
            .iter()
            .find_map(|(name, s)| (s.pid == pid).then(|| name.clone()))
        else {
            return;
        };
        tracing::info!(session = %name, "session ended");
        if let Some(session) = self.sessions.remove(&name) {
            let frame = protocol::encode_value(&serde_json::json!({ "removed": name }));
            for conn in session.removing {
                let _ = socket::send_with_fds(conn.as_fd(), &frame, &[]);
            }
        }
    }

    /// Accepts what waits, up to the pending limit; refuses other users.
    fn accept(&mut self, listener: &UnixListener) {
        while self.pending.len() < self.opts.max_pending {
            let conn = match listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and the like: the next poll retries.
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            if let Err(message) = check_peer(&conn) {
                reply_now(&conn, ErrorKind::Refused, &message);
                continue;
            }
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            self.pending.push(Pending {
                conn,
                buf: Vec::new(),
                fds: Vec::new(),
                since: Instant::now(),
            });
        }
    }

    /// Reads what came on each ready pending connection; starts the ones
    /// whose request is whole, answers the broken ones.
    fn read_pending(&mut self, ready: &[bool]) {
        let mut left = Vec::with_capacity(self.pending.len());
        for (i, mut p) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                left.push(p);
                continue;
            }
            match p.read() {
                Ok(None) => left.push(p),
                Ok(Some(body)) => self.dispatch(p, &body),
                Err(Some(message)) => reply_now(&p.conn, ErrorKind::BadRequest, &message),
                Err(None) => {} // the client left before its request was whole
            }
        }
        self.pending = left;
    }

    fn expire_pending(&mut self) {
        let timeout = self.opts.request_timeout;
        self.pending.retain(|p| {
            let alive = p.since.elapsed() < timeout;
            if !alive {
                let message = format!("no whole request within {}s", timeout.as_secs());
                reply_now(&p.conn, ErrorKind::BadRequest, &message);
            }
            alive
        });
    }

    /// Decodes a whole request and does what it asks.
    fn dispatch(&mut self, p: Pending, body: &[u8]) {
        let req = match protocol::decode_request(body) {
            Ok(req) => req,
            Err(e) => return reply_now(&p.conn, ErrorKind::BadRequest, &e.to_string()),
        };
        match req.op {
            Op::Run | Op::SessionCreate => self.start(p, req, body),
            Op::SessionExec => self.exec(p, &req, body),
            Op::SessionRm => self.remove(p, &req),
            Op::SessionLs => self.list(&p.conn),
        }
    }

    /// Forks the worker of a `run` or the holder of a `session-create`.
    fn start(&mut self, p: Pending, mut req: Request, body: &[u8]) {
        if self.sandboxes() >= self.opts.max_sandboxes {
            let message = format!(
                "{} sandboxes run, the most this server runs",
                self.sandboxes()
            );
            return reply_now(&p.conn, ErrorKind::Busy, &message);
        }
        // A spare of the request's shape takes it; the next one of the
        // shape is built when the server is idle again.
        if let Some(key) = self.shapes.key(&mut req, body.len()) {
            for dropped in self.shapes.note(&key, &req) {
                self.close_spares(&dropped);
            }
            if self.pass_to_spare(&key, &p, body) {
                return;
            }
        }
        if let Some(name) = req
            .session
            .as_ref()
            .filter(|n| self.sessions.contains_key(*n))
        {
            let message =
                format!("a session named {name:?} exists; remove it or pick another name");
            return reply_now(&p.conn, ErrorKind::Exists, &message);
        }
        // A pinned profile file or kept capabilities: compiled here once,
        // found by this and every later worker.
        if let Some(env) = req.envelope() {
            let caps: Vec<String> = env.caps.keep.iter().map(ToString::to_string).collect();
            crate::seccomp::warm_for(&env.seccomp, &caps, req.cwd.as_deref());
        }
        let (job, ours) = match req.op {
            Op::SessionCreate => match socket::seqpacket_pair() {
                Ok((ours, theirs)) => (worker::Job::Session { control: theirs }, Some(ours)),
                Err(e) => {
                    return reply_now(
                        &p.conn,
                        ErrorKind::Setup,
                        &format!("cannot make a socket: {e}"),
                    )
                }
            },
            _ => (
                worker::Job::Run {
                    netns: self.pool.take(),
                },
                None,
            ),
        };
        let name = req.session.clone();
        let idle = req.idle_timeout.unwrap_or(worker::DEFAULT_IDLE);
        // A session's init would hold its creator's stdio for its whole
        // life: it gets /dev/null (its commands bring their own).
        let stdio = match name {
            Some(_) => Vec::new(),
            None => p.fds,
        };
        match self.fork_worker(p.conn.as_fd(), stdio, req, job) {
            Ok(pid) => {
                let conn = match ours {
                    Some(control) => {
                        // A full control queue answers `busy`, never blocks the server.
                        let _ = sys::set_nonblocking(&control);
                        control
                    }
                    None => p.conn.into(),
                };
                self.running.push(Running {
                    pid,
                    conn,
                    spare: None,
                });
                if let Some(name) = name {
                    let session = Session {
                        pid,
                        idle,
                        since: Instant::now(),
                        removing: Vec::new(),
                    };
                    self.sessions.insert(name, session);
                }
            }
            Err(e) => reply_now(&p.conn, ErrorKind::Setup, &format!("cannot fork: {e}")),
        }
    }

    /// Passes a `session-exec` to its session's holder, with the client's
    /// connection and stdio.
    fn exec(&mut self, p: Pending, req: &Request, body: &[u8]) {
        let Some(control) = self.control_of(req) else {
            return reply_now(&p.conn, ErrorKind::NotFound, &not_found(req));
        };
        if body.len() > crate::session::MAX_EXEC_REQUEST {
            let message = format!(
                "a session-exec request is at most {} KiB",
                crate::session::MAX_EXEC_REQUEST >> 10
            );
            return reply_now(&p.conn, ErrorKind::BadRequest, &message);
        }
        let mut fds: Vec<BorrowedFd<'_>> = vec![p.conn.as_fd()];
        fds.extend(p.fds.iter().map(AsFd::as_fd));
        match socket::send_with_fds(control, body, &fds) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => reply_now(
                &p.conn,
                ErrorKind::Busy,
                "the session has too many commands waiting to start",
            ),
            Err(e) => reply_now(
                &p.conn,
                ErrorKind::NotFound,
                &format!("the session is ending ({e})"),
            ),
        }
    }

    /// Ends a session; its client is answered once the holder is gone.
    fn remove(&mut self, p: Pending, req: &Request) {
        let Some(control) = self.control_of(req) else {
            return reply_now(&p.conn, ErrorKind::NotFound, &not_found(req));
        };
        socket::shutdown(control);
        if let Some(session) = req.session.as_ref().and_then(|n| self.sessions.get_mut(n)) {
            session.removing.push(p.conn);
        }
    }

    /// Answers a `session-ls`.
    fn list(&self, conn: &UnixStream) {
        let sessions: Vec<serde_json::Value> = self
            .sessions
            .iter()
            .map(|(name, s)| {
                serde_json::json!({
                    "name": name,
                    "pid": s.pid,
                    "age_s": s.since.elapsed().as_secs(),
                    "idle_timeout": crate::duration::format_duration(s.idle),
                })
            })
            .collect();
        let frame = protocol::encode_value(&serde_json::json!({ "sessions": sessions }));
        let _ = socket::send_with_fds(conn.as_fd(), &frame, &[]);
    }

    /// The server's end of the control socket of the request's session.
    fn control_of(&self, req: &Request) -> Option<BorrowedFd<'_>> {
        let session = self.sessions.get(req.session.as_deref()?)?;
        let running = self.running.iter().find(|r| r.pid == session.pid)?;
        Some(running.conn.as_fd())
    }

    fn fork_worker(
        &self,
        conn: std::os::fd::BorrowedFd<'_>,
        stdio: Vec<OwnedFd>,
        req: Request,
        job: worker::Job,
    ) -> std::io::Result<libc::pid_t> {
        match sys::fork().map_err(std::io::Error::from_raw_os_error)? {
            // The server is single-threaded (checked at start): the child
            // may allocate and run the launch sequence.
            0 => worker::run(conn.as_raw_fd(), stdio, req, job, &self.old_mask),
            pid => Ok(pid),
        }
    }

    /// Ends every connection; waits for the workers (their sandboxes are
    /// killed and removed when their connection hangs up), kills the ones
    /// still there after the grace period.
    fn stop(&mut self, sigfd: &OwnedFd) {
        self.pending.clear();
        for r in &self.running {
            socket::shutdown(r.conn.as_fd());
        }
        let deadline = Instant::now() + self.opts.stop_grace;
        while !self.running.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for r in &self.running {
                    tracing::warn!(pid = r.pid, "worker did not stop; killing it");
                    sys::kill(r.pid, libc::SIGKILL);
                }
                while sys::wait_any(false).is_some() {}
                self.running.clear();
                return;
            }
            let mut fds = [pollin(sigfd.as_raw_fd())];
            let ms = left.as_millis().min(1000) as libc::c_int;
            let _ = sys::poll(&mut fds, ms);
            while sys::read_signal(sigfd).is_some() {}
            self.reap();
        }
    }
}

impl Pending {
    /// Reads once: `Ok(Some(body))` when the frame is whole, `Ok(None)` for
    /// more to come, `Err(Some(why))` for a request that breaks the
    /// protocol, `Err(None)` when the client is gone.
    fn read(&mut self) -> Result<Option<Vec<u8>>, Option<String>> {
        let mut chunk = [0u8; 64 << 10];
        let n = match socket::recv_with_fds(self.conn.as_fd(), &mut chunk, &mut self.fds) {
            Ok(0) => return Err(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Err(Some(e.to_string()))
            }
            Err(_) => return Err(None),
        };
        if self.fds.len() > MAX_FDS {
            return Err(Some(format!(
                "{} file descriptors came; a request carries at most {MAX_FDS} (stdin, stdout, stderr)",
                self.fds.len()
            )));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        let Some(header) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = protocol::frame_len(*header, MAX_REQUEST).map_err(|e| Some(e.to_string()))?;
        match self.buf.len().cmp(&(4 + len)) {
            std::cmp::Ordering::Less => Ok(None),
            std::cmp::Ordering::Equal => Ok(Some(self.buf.split_off(4))),
            std::cmp::Ordering::Greater => Err(Some(
                "bytes came after the request; a connection carries one request".to_owned(),
            )),
        }
    }
}

fn not_found(req: &Request) -> String {
    let name = req.session.as_deref().unwrap_or_default();
    format!("no session is named {name:?} (it was removed, timed out idle, or never made)")
}

/// The peer must be the server's own user or root.
fn check_peer(conn: &UnixStream) -> Result<(), String> {
    // SAFETY: geteuid cannot fail.
    let own = unsafe { libc::geteuid() };
    match socket::peer_uid(conn.as_fd()) {
        Ok(uid) if uid == own || uid == 0 => Ok(()),
        Ok(uid) => Err(format!(
            "uid {uid} may not use the server of uid {own} (only uid {own} and root may)"
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
}

/// Sends an error reply without waiting (it is small; a client that does
/// not read loses it) and lets the connection close.
fn reply_now(conn: &UnixStream, kind: ErrorKind, message: &str) {
    crate::session::reply_error(conn.as_fd(), kind, message);
}

fn pollin(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

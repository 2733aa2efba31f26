//! The sandbox's life, parent side, once the launch is prepared: the
//! cgroup, the clone into the namespaces, `admit` (id maps, cgroup attach),
//! the release, supervision, and the end (orphans, relays, terminal, the
//! report, the cgroup's removal). Used by both runtimes: natively around
//! the workload, under gVisor around `runsc run`.

use crate::outcome::Outcome;
use crate::prepare::Prepared;
use crate::supervise::Watch;
use crate::{child, sys, Envelope, RunError};
use nucleus_ns::Forked;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    Record,
}

/// Clones the sandbox for `prepared`, supervises it to the end and
/// interprets what happened; `relay` copies relayed output meanwhile.
///
/// Clean-up is by drop guards, in the reverse order of their making: on an
/// early error the sandbox is killed and reaped (`Sandbox`), the caller's
/// terminal put back (`Console`), the signal mask and `SIGCHLD` restored
/// (`BlockedSignals`), and the cgroup removed (`Cgroup`'s own drop).
///
/// Longer than the other functions on purpose: the parent's sequence reads
/// top to bottom in one place, each step a line or a call.
pub(crate) fn run_prepared(
    env: &Envelope,
    mut prepared: Prepared,
    mode: Mode,
    mut relay: Option<crate::relay::Relay>,
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
    holding: Holding<'_>,
) -> Result<(Outcome, Option<nucleus_seccomp::Profile>), RunError> {
    // The clone copies the address space; a second thread would leave its
    // locks held in the child forever.
    ensure_single_threaded()?;
    let (go_r, go_w) = sys::pipe().map_err(|source| RunError::Pipe { source })?;
    let (msg_r, msg_w) = sys::pipe().map_err(|source| RunError::Pipe { source })?;
    if mode == Mode::Record {
        // The one syscall the record filter lets through: reporting the listener fd.
        let filter = nucleus_seccomp::Profile::record_filter(msg_w.as_raw_fd()).compile()?;
        prepared.seccomp = Some(filter);
        prepared.seccomp_listener = true;
    }
    prepared.step_times = tracing::enabled!(tracing::Level::DEBUG);
    // Limits before clone: the child must never run outside its cgroup.
    let (cgroup, cleaned) = tracing::debug_span!("cgroup").in_scope(|| create_cgroup(env))?;
    // Without a PID namespace, what the workload leaves comes to us.
    let reaper = match prepared.namespaces.contains(nucleus_ns::Namespace::Pid) {
        true => None,
        false => Some(
            crate::orphans::Subreaper::arm().map_err(|source| RunError::Subreaper { source })?,
        ),
    };
    // Forwarded signals blocked before clone, so none is lost in between.
    let signals = BlockedSignals::block();
    // The sandbox's own terminal in place of the caller's, with the
    // forwarded signals blocked.
    let mut console = crate::console::Console::open(&mut prepared)
        .map_err(|source| RunError::Terminal { source })?;
    let sigfd = sys::signalfd(&signals.watched).map_err(|source| RunError::Signalfd { source })?;
    let started = Instant::now();
    let cloned_ns = sys::monotonic_ns();
    let into = cgroup
        .as_ref()
        .and_then(nucleus_cgroup::Cgroup::clone_into_fd);
    let cloned_into = into.is_some();
    let child =
        tracing::debug_span!("clone").in_scope(|| clone(&prepared, into, &go_r, &go_w, &msg_w))?;
    drop((go_r, msg_w));
    // From here on, an early return kills and reaps the sandbox.
    let mut sandbox = Sandbox {
        child,
        waited: false,
    };
    // The child waits on the go pipe until its id maps exist.
    tracing::debug_span!("admit")
        .in_scope(|| admit(&prepared, cgroup.as_ref(), &sandbox.child, cloned_into))?;
    // A session's namespaces are opened while the init cannot run yet.
    let (mut session, mut spare) = (None, None);
    match holding {
        Holding::None => {}
        Holding::Session(hold) => {
            let pid = sandbox.child.pid;
            let host = crate::session::Host::open(env, &prepared, hold, pid, cgroup.as_ref())?;
            session = Some(host);
        }
        Holding::Spare(hold, ours, theirs) => {
            drop(theirs);
            let pidfd = &sandbox.child.pidfd;
            let cg = cgroup.is_some();
            spare = Some(crate::spare::Host::new(
                env, &prepared, hold, ours, pidfd, cg,
            )?);
        }
    }
    let held = session.is_some() || spare.is_some();
    release(&go_w)?;
    drop(go_w);
    if let Some(relay) = relay.as_mut() {
        relay
            .start(&sandbox.child.pidfd)
            .map_err(|source| RunError::Pipe { source })?;
    }
    if let Some(console) = console.as_mut() {
        console
            .start()
            .map_err(|source| RunError::Terminal { source })?;
    }
    sys::set_nonblocking(&msg_r).map_err(|source| RunError::Pipe { source })?;
    let mut watch = Watch {
        child: &sandbox.child,
        msg: &msg_r,
        sigfd: &sigfd,
        // A session has no deadline of its own: its commands have theirs
        // (a spare's, once it has one).
        timeout: match held {
            true => None,
            false => crate::wasm_host::wall_clock_timeout(env, prepared.wasm()),
        },
        cgroup: cgroup.as_ref(),
        record: mode == Mode::Record,
        console: console.as_ref(),
        cancel,
        host: match (&mut session, &mut spare) {
            (Some(h), _) => Some(h as &mut dyn crate::supervise::Held),
            (None, Some(h)) => Some(h as &mut dyn crate::supervise::Held),
            (None, None) => None,
        },
        on_kill: None,
    };
    let raw = tracing::debug_span!("supervise").in_scope(|| watch.supervise(started))?;
    sandbox.waited = true;
    drop(session);
    // A spare's result is its command's: that Envelope, from its start.
    let mut run = spare.and_then(|h| h.run);
    let relay = match run.as_mut() {
        Some(run) => run.relay.take(),
        None => relay,
    };
    let env = run.as_ref().map_or(env, |run| &run.env);
    let started = run.as_ref().map_or(started, |run| run.started);
    crate::steps::log(&raw.messages, cloned_ns);
    let ends = Ends {
        reaper,
        relay,
        console,
        cgroup,
        cleaned,
        cloned_into,
    };
    let outcome = ends.conclude(env, &prepared, &raw, started)?;
    Ok((outcome, raw.recorded))
}

/// What holds a sandbox besides its own command.
pub(crate) enum Holding<'a> {
    /// Nothing: the init runs the Envelope's command.
    None,
    /// A session: commands join the sandbox (`session.rs`).
    Session(crate::session::Hold),
    /// A spare: the init waits for its command (`spare.rs`); with the
    /// holder's end of the init's socket, then the init's end.
    Spare(crate::spare::SpareHold<'a>, OwnedFd, OwnedFd),
}

/// What is left to end once the init is gone, in the order it is ended.
struct Ends {
    reaper: Option<crate::orphans::Subreaper>,
    relay: Option<crate::relay::Relay>,
    console: Option<crate::console::Console>,
    cgroup: Option<nucleus_cgroup::Cgroup>,
    cleaned: Vec<std::path::PathBuf>,
    cloned_into: bool,
}

impl Ends {
    /// Ends what the run left and builds its outcome.
    fn conclude(
        self,
        env: &Envelope,
        prepared: &Prepared,
        raw: &crate::supervise::Raw,
        started: Instant,
    ) -> Result<Outcome, RunError> {
        // Before the relay's end: a leftover process may hold its pipes.
        if let Some(reaper) = &self.reaper {
            reaper.kill_orphans();
        }
        // The init is gone, and with it its PID namespace: every writer of
        // a relayed pipe has ended, so the copies reach their end.
        let kept = self.relay.and_then(crate::relay::Relay::finish);
        // Every holder of the terminal's slave has ended too: its master is
        // drained, then the caller's terminal is put back.
        let terminal = self.console.and_then(crate::console::Console::finish);
        let mut outcome = crate::report::interpret(env, prepared, raw, started.elapsed());
        outcome.cleaned = self.cleaned;
        outcome.captured = kept.map(|(out, err)| crate::outcome::Captured::new(out, err));
        outcome.terminal = terminal;
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all();
            crate::report::add_cgroup_usage(&mut outcome, &cg, raw.timed_out, self.cloned_into);
            // A failed removal is an error of the run (the outcome is lost with it).
            tracing::debug_span!("cleanup").in_scope(|| cg.remove())?;
        }
        Ok(outcome)
    }
}

/// Clones the init into its namespaces (and straight into the cgroup on
/// v2); in the child, runs the init's side and never returns.
fn clone(
    p: &Prepared,
    into: Option<std::os::fd::BorrowedFd<'_>>,
    go_r: &OwnedFd,
    go_w: &OwnedFd,
    msg_w: &OwnedFd,
) -> Result<nucleus_ns::Child, RunError> {
    // A pooled network namespace was joined already: the clone inherits it.
    let namespaces = match p.pooled_netns {
        true => p.namespaces.without(nucleus_ns::Namespace::Network),
        false => p.namespaces,
    };
    // SAFETY: the process is single-threaded (checked above) and the child
    // only runs `child::run`, which does async-signal-safe work on what
    // `prepare` allocated before the clone, and never returns.
    match unsafe { nucleus_ns::fork_into(namespaces, into) } {
        Ok(Forked::Child) => child::run(p, go_r.as_raw_fd(), go_w.as_raw_fd(), msg_w.as_raw_fd()),
        Ok(Forked::Parent(child)) => Ok(child),
        Err(err) => Err(RunError::Clone {
            source: clone_error(err),
        }),
    }
}

fn clone_error(err: nucleus_ns::NsError) -> std::io::Error {
    match err.raw_os_error() {
        Some(errno) => std::io::Error::from_raw_os_error(errno),
        None => std::io::Error::other(err),
    }
}

/// The cloned sandbox; killed and reaped when dropped before supervision
/// waited for it (an early error).
struct Sandbox {
    child: nucleus_ns::Child,
    waited: bool,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.waited {
            sys::pidfd_send_signal(&self.child.pidfd, libc::SIGKILL);
            let _ = sys::wait_pidfd(&self.child.pidfd);
        }
    }
}

/// The forwarded signals and `SIGCHLD`, blocked (taken by a signalfd) for
/// the whole run, with `SIGCHLD`'s disposition at its default; both are
/// restored when dropped.
struct BlockedSignals {
    watched: libc::sigset_t,
    old_mask: libc::sigset_t,
    old_chld: libc::sighandler_t,
}

impl BlockedSignals {
    fn block() -> Self {
        let mut watched = sys::FORWARDED.to_vec();
        watched.push(libc::SIGCHLD);
        let watched = sys::sigset(&watched);
        let old_mask = sys::sigmask(libc::SIG_BLOCK, &watched);
        // An inherited SIG_IGN for SIGCHLD would make the kernel reap the
        // workload and the init behind their parents' backs.
        let old_chld = sys::set_signal_default(libc::SIGCHLD);
        Self {
            watched,
            old_mask,
            old_chld,
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        sys::restore_signal(libc::SIGCHLD, self.old_chld);
        sys::sigmask(libc::SIG_SETMASK, &self.old_mask);
    }
}

/// Creates the sandbox's cgroup when limits are asked, after removing the
/// empty ones that killed runs left beside it.
fn create_cgroup(
    env: &Envelope,
) -> Result<(Option<nucleus_cgroup::Cgroup>, Vec<std::path::PathBuf>), RunError> {
    if env.limits.is_empty() {
        return Ok((None, Vec::new()));
    }
    let cfg = env.cgroup_config();
    let cleaned = nucleus_cgroup::sweep_stale(&cfg);
    Ok((
        Some(nucleus_cgroup::Cgroup::create(&env.limits, &cfg)?),
        cleaned,
    ))
}

/// Parent, after clone: the id maps, and the v1 cgroup attach.
fn admit(
    p: &Prepared,
    cgroup: Option<&nucleus_cgroup::Cgroup>,
    child: &nucleus_ns::Child,
    cloned_into: bool,
) -> Result<(), RunError> {
    if let Some(maps) = &p.maps {
        maps.write(child.pid)?;
    }
    // Idmapped binds map through the child's user namespace, which has its
    // maps only now; the child attaches the trees after this.
    if let (true, Some(plan)) = (p.idmap_binds, &p.plan) {
        let userns = std::fs::File::open(format!("/proc/{}/ns/user", child.pid))
            .map_err(|source| RunError::IdmapUserns { source })?;
        plan.idmap(std::os::fd::AsFd::as_fd(&userns))?;
    }
    if let Some(cg) = cgroup {
        if !(cloned_into && cg.clone_into_covers_all()) {
            cg.attach(child.pid)?;
        }
    }
    Ok(())
}

pub(crate) fn ensure_single_threaded() -> Result<(), RunError> {
    match sys::thread_count() {
        Ok(1) => Ok(()),
        Ok(threads) => Err(RunError::Multithreaded { threads }),
        Err(source) => Err(RunError::ThreadCount { source }),
    }
}

fn release(go_w: &OwnedFd) -> Result<(), RunError> {
    let byte = [1u8];
    // SAFETY: writes one byte from a live array to our pipe end.
    let n = unsafe { libc::write(go_w.as_raw_fd(), byte.as_ptr().cast(), 1) };
    if n != 1 {
        let source = std::io::Error::last_os_error();
        return Err(RunError::Pipe { source });
    }
    Ok(())
}

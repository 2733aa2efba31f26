//! The launch sequence, parent side: one function, steps in order.

use crate::channel::{self, Message};
use crate::guard::Decision;
use crate::prepare::Prepared;
use crate::report::Outcome;
use crate::{child, sys, Envelope, RunError};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Runs the Envelope's command in a new sandbox and waits for it.
///
/// The steps, in order (the whole sequence, parent and child side, is in
/// `docs/ARCHITECTURE.md`):
/// 1. validate the Envelope and run the guards;
/// 2. prepare argv/env, the mount plan, the id maps, the capability masks,
///    the Landlock rules and the compiled seccomp filter;
/// 3. create the cgroup and write its limits (when limits are asked);
/// 4. clone into the new namespaces (and straight into the cgroup on v2),
///    with the channel pipes;
/// 5. write the child's id maps, attach it to v1 cgroups, then release it;
/// 6. supervise: forward signals, enforce the timeout, collect the result,
///    kill what is left and remove the cgroup.
///
/// The child's own steps are listed in one place, `child::run`.
///
/// ```no_run
/// let env = nucleus_runner::Envelope::builder(["/bin/true"]).build().unwrap();
/// let outcome = nucleus_runner::launch(&env).unwrap();
/// assert_eq!(outcome.exit_code, 0);
/// ```
pub fn launch(env: &Envelope) -> Result<Outcome, RunError> {
    // Bad input is named first, then the guards decide the runtime, both
    // before anything is created.
    env.validate()?;
    let decision = env.guard()?;
    // A closed stdin, stdout or stderr would be taken by the next pipe we
    // make, and the workload would write into it: /dev/null holds the
    // place until the workload closes it again (natively).
    let closed = sys::occupy_closed_stdio().map_err(|source| RunError::Pipe { source })?;
    if decision == Decision::Gvisor {
        return crate::gvisor::run(env);
    }
    let mut prepared = match Prepared::new(env) {
        Ok(prepared) => prepared,
        // A limit stopped the module's compile: that is the run's result.
        Err(RunError::WasmCompileStopped(outcome)) => return Ok(*outcome),
        Err(err) => return Err(err),
    };
    prepared.closed_stdio = closed;
    let relay = match env.capture {
        Some(limit) => {
            let relay = crate::relay::Relay::for_capture(limit_bytes(limit))
                .map_err(|source| RunError::Pipe { source })?;
            prepared.stdio_dups = relay.child_dups();
            Some(relay)
        }
        None => None,
    };
    let (mut outcome, _) = run_prepared(env, prepared, Mode::Run, relay)?;
    outcome.enforced.runtime = decision;
    Ok(outcome)
}

/// A `--capture` limit as a buffer size.
pub(crate) fn limit_bytes(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// Runs the Envelope's command with every syscall allowed but recorded, and
/// returns the minimal allowlist profile that lets it run again.
///
/// The init installs a filter that turns every syscall into a user
/// notification; the parent answers each with "continue" and notes its
/// number (see `nucleus_seccomp::record`). The wall-clock timeout is not
/// enforced while recording.
pub fn record(env: &Envelope) -> Result<(Outcome, nucleus_seccomp::Profile), RunError> {
    if env.guard()? == Decision::Gvisor {
        return Err(RunError::RecordNeedsNative);
    }
    if env.seccomp != crate::SeccompSettings::default() {
        return Err(RunError::SeccompConflict {
            what: "seccomp record installs its own filter; drop --seccomp* flags",
        });
    }
    let mut env = env.clone();
    env.seccomp.mode = crate::SeccompMode::Off;
    env.seccomp.profile_file = None;
    env.seccomp.profile_sha256 = None;
    let prepared = Prepared::new(&env)?;
    let (outcome, profile) = run_prepared(&env, prepared, Mode::Record, None)?;
    let mut profile = profile.ok_or(RunError::RecordIncomplete)?;
    // What the init may need on another run (forwarding a signal) though
    // this one did not.
    let names = crate::seccomp::INIT_SYSCALLS.map(str::to_owned).to_vec();
    profile.rules.push(nucleus_seccomp::Rule::new(
        names,
        nucleus_seccomp::Action::Allow,
    ));
    Ok((outcome, profile))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    Record,
}

/// Clones the sandbox for `prepared`, supervises it to the end and
/// interprets what happened; `relay` copies relayed output meanwhile.
pub(crate) fn run_prepared(
    env: &Envelope,
    mut prepared: Prepared,
    mode: Mode,
    mut relay: Option<crate::relay::Relay>,
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
    // Limits before clone: the child must never run outside its cgroup.
    let (cgroup, cleaned) = create_cgroup(env)?;
    // Without a PID namespace, what the workload leaves comes to us.
    let reaper = match prepared.namespaces.contains(nucleus_ns::Namespace::Pid) {
        true => None,
        false => Some(
            crate::orphans::Subreaper::arm().map_err(|source| RunError::Subreaper { source })?,
        ),
    };
    // Block forwarded signals before clone, so none is lost in between.
    let mut watched = sys::FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    let watched = sys::sigset(&watched);
    let old_mask = sys::sigmask(libc::SIG_BLOCK, &watched);
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap the
    // workload and the init behind their parents' backs.
    let old_chld = sys::set_signal_default(libc::SIGCHLD);
    let result = (|| {
        // The sandbox's own terminal in place of the caller's, with the
        // forwarded signals blocked; dropped after the sandbox is killed on
        // an error, it puts the caller's terminal back.
        let mut console = crate::console::Console::open(&mut prepared)
            .map_err(|source| RunError::Terminal { source })?;
        let sigfd = sys::signalfd(&watched).map_err(|source| RunError::Signalfd { source })?;
        let started = Instant::now();
        let flags = prepared.namespaces.clone_flags();
        let into = cgroup
            .as_ref()
            .and_then(nucleus_cgroup::Cgroup::clone_into_fd);
        let child =
            match sys::clone_child(flags, into).map_err(|source| RunError::Clone { source })? {
                None => child::run(
                    &prepared,
                    go_r.as_raw_fd(),
                    go_w.as_raw_fd(),
                    msg_w.as_raw_fd(),
                ),
                Some(child) => child,
            };
        drop((go_r, msg_w));
        // From here on, any error kills and reaps the sandbox.
        let guard = KillOnError(&child);
        // The child waits on the go pipe until its id maps exist.
        admit(&prepared, cgroup.as_ref(), &child, into.is_some())?;
        release(&go_w)?;
        drop(go_w);
        if let Some(relay) = relay.as_mut() {
            relay
                .start(&child.pidfd)
                .map_err(|source| RunError::Pipe { source })?;
        }
        if let Some(console) = console.as_mut() {
            console
                .start()
                .map_err(|source| RunError::Terminal { source })?;
        }
        sys::set_nonblocking(&msg_r).map_err(|source| RunError::Pipe { source })?;
        let watch = Watch {
            child: &child,
            msg: &msg_r,
            sigfd: &sigfd,
            timeout: crate::wasm::wall_clock_timeout(env, prepared.wasm()),
            cgroup: cgroup.as_ref(),
            record: mode == Mode::Record,
            console: console.as_ref(),
        };
        let raw = watch.supervise(started)?;
        std::mem::forget(guard);
        // Before the relay's end: a leftover process may hold its pipes.
        if let Some(reaper) = &reaper {
            reaper.kill_orphans();
        }
        // The init is gone, and with it its PID namespace: every writer of
        // a relayed pipe has ended, so the copies reach their end.
        let kept = relay.take().and_then(crate::relay::Relay::finish);
        // Every holder of the terminal's slave has ended too: its master is
        // drained, then the caller's terminal is put back.
        let terminal = console.take().and_then(crate::console::Console::finish);
        let mut outcome = crate::interpret::interpret(env, &prepared, &raw, started.elapsed());
        outcome.cleaned = cleaned;
        outcome.captured = kept.map(|(out, err)| crate::report::Captured::new(out, err));
        outcome.terminal = terminal;
        if let Some(cg) = &cgroup {
            let _ = cg.kill_all();
            crate::interpret::add_cgroup_usage(&mut outcome, cg, raw.timed_out, into.is_some());
        }
        Ok((outcome, raw.recorded))
    })();
    sys::restore_signal(libc::SIGCHLD, old_chld);
    sys::sigmask(libc::SIG_SETMASK, &old_mask);
    if let Some(cg) = cgroup {
        // A failed removal is reported, but never hides the run's own result.
        let removed = cg.remove();
        if result.is_ok() {
            removed?;
        }
    }
    result
}

/// Kills and reaps the sandbox when the parent leaves early with an error.
struct KillOnError<'a>(&'a sys::Child);

impl Drop for KillOnError<'_> {
    fn drop(&mut self) {
        sys::pidfd_send_signal(&self.0.pidfd, libc::SIGKILL);
        let _ = sys::wait_pidfd(&self.0.pidfd);
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
    child: &sys::Child,
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
        if cg.needs_attach(cloned_into) {
            cg.attach(child.pid)?;
        }
    }
    Ok(())
}

fn ensure_single_threaded() -> Result<(), RunError> {
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

struct Watch<'a> {
    child: &'a sys::Child,
    msg: &'a OwnedFd,
    sigfd: &'a OwnedFd,
    timeout: Option<Duration>,
    cgroup: Option<&'a nucleus_cgroup::Cgroup>,
    record: bool,
    /// The sandbox's own terminal, resized on `SIGWINCH` (which its
    /// kernel then sends the workload).
    console: Option<&'a crate::console::Console>,
}

impl Watch<'_> {
    /// Forwards signals, enforces the deadline and waits for the init.
    fn supervise(&self, started: Instant) -> Result<Raw, RunError> {
        let deadline = self.timeout.and_then(|t| started.checked_add(t));
        let mut messages = Vec::new();
        let mut eof = false;
        let mut timed_out = false;
        let mut recorded = None;
        let mut forwarded = None;
        loop {
            let wait_ms = match deadline {
                Some(_) if timed_out => -1,
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
                None => -1,
            };
            let mut fds = [
                pollfd(self.child.pidfd.as_raw_fd()),
                pollfd(self.sigfd.as_raw_fd()),
                pollfd(if eof { -1 } else { self.msg.as_raw_fd() }),
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
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all();
        }
        sys::kill(-self.child.pid, libc::SIGKILL);
        sys::pidfd_send_signal(&self.child.pidfd, libc::SIGKILL);
    }
}

fn pollfd(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

//! The entry points, parent side: `launch` validates, guards and prepares,
//! then hands the sandbox's life to `sandbox::run_prepared` (or the run to
//! `gvisor::run`); `record` does the same with a recording filter.

use crate::guard::Decision;
use crate::outcome::Outcome;
use crate::prepare::Prepared;
use crate::sandbox::{run_prepared, Holding, Mode};
use crate::{sys, Envelope, RunError};
use std::os::fd::AsRawFd;

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
    launch_with(env, LaunchOptions::default())
}

/// What a launch server adds to a launch ([`launch_with`]).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LaunchOptions<'a> {
    /// The sandbox is killed when this fd hangs up (`POLLHUP`: the peer of
    /// a socket closed it, or it was shut down both ways); what the run
    /// made is removed as after a timeout. A server passes each client's
    /// connection: a client that dies takes its sandbox with it.
    pub cancel: Option<std::os::fd::BorrowedFd<'a>>,
    /// A fresh network namespace made ahead, its `lo` up, used by no other
    /// sandbox. The **calling process joins it** (`setns`) and the sandbox
    /// inherits it instead of making one. Used only where it changes
    /// nothing the workload can see: the native runtime, a network
    /// namespace asked for, no capability kept (a pooled namespace belongs
    /// to the caller's user namespace, so a kept `CAP_NET_*` would not
    /// apply in it); otherwise it is closed unused.
    pub netns: Option<std::os::fd::OwnedFd>,
    /// Hold the sandbox as a session instead of running its command
    /// (`session.rs`): set by the launch server.
    pub(crate) session: Option<crate::session::Hold>,
    /// Build the sandbox as a spare that waits for the command of the
    /// request the server passes it (`spare.rs`): set by the launch server.
    pub(crate) spare: Option<crate::spare::SpareHold<'a>>,
}

impl<'a> LaunchOptions<'a> {
    /// Options that kill the sandbox when `fd` hangs up.
    ///
    /// ```
    /// let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    /// use std::os::fd::AsFd;
    /// let opts = nucleus_runner::LaunchOptions::cancelled_by(ours.as_fd());
    /// assert!(opts.cancel.is_some() && opts.netns.is_none());
    /// ```
    pub fn cancelled_by(fd: std::os::fd::BorrowedFd<'a>) -> LaunchOptions<'a> {
        LaunchOptions {
            cancel: Some(fd),
            ..LaunchOptions::default()
        }
    }
}

/// [`launch`] with what a launch server provides: see [`LaunchOptions`].
///
/// ```no_run
/// use std::os::fd::AsFd;
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
/// let env = nucleus_runner::Envelope::builder(["/bin/sleep", "60"]).build()?;
/// drop(theirs); // the sleep is killed at once
/// let opts = nucleus_runner::LaunchOptions::cancelled_by(ours.as_fd());
/// let outcome = nucleus_runner::launch_with(&env, opts)?;
/// assert_eq!(outcome.signal, Some(9));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn launch_with(env: &Envelope, opts: LaunchOptions<'_>) -> Result<Outcome, RunError> {
    let cancel = opts.cancel;
    // Bad input is named first, then the guards decide the runtime, both
    // before anything is created.
    let _launch = tracing::debug_span!("launch").entered();
    tracing::debug_span!("validate").in_scope(|| env.validate())?;
    let decision = tracing::debug_span!("guard").in_scope(|| env.guard())?;
    tracing::debug!(runtime = ?decision, "runtime chosen");
    // A closed stdin, stdout or stderr would be taken by the next pipe we
    // make, and the workload would write into it: /dev/null holds the
    // place until the workload closes it again (natively).
    let closed = sys::occupy_closed_stdio().map_err(|source| RunError::Pipe { source })?;
    if decision == Decision::Gvisor {
        if opts.spare.is_some() {
            return Err(RunError::SpareUnsupported {
                why: "runs on the native runtime only",
            });
        }
        if let Some(hold) = opts.session {
            return crate::gvisor::hold(env, hold, cancel);
        }
        return crate::gvisor::run(env, cancel);
    }
    let mut prepared = match tracing::debug_span!("prepare").in_scope(|| Prepared::new(env)) {
        Ok(prepared) => prepared,
        // A limit stopped the module's compile: that is the run's result.
        Err(RunError::WasmCompileStopped(outcome)) => return Ok(*outcome),
        Err(err) => return Err(err),
    };
    prepared.closed_stdio = closed;
    let mut holding = Holding::None;
    if let Some(hold) = opts.session {
        crate::session::check(env, &prepared)?;
        prepared.hold = true;
        holding = Holding::Session(hold);
    }
    if let Some(hold) = opts.spare {
        crate::spare::check(env, &prepared)?;
        let (ours, theirs) =
            crate::sys::socket::seqpacket_pair().map_err(|source| RunError::Pipe { source })?;
        prepared.spare = Some(crate::slot::Slot::new(theirs.as_raw_fd()));
        holding = Holding::Spare(hold, ours, theirs);
    }
    if let Some(netns) = opts.netns {
        join_pooled_netns(env, &mut prepared, netns);
    }
    let relay = match env.capture {
        Some(limit) => {
            let relay = crate::relay::Relay::for_capture(limit)
                .map_err(|source| RunError::Pipe { source })?;
            prepared.stdio_dups = relay.child_dups();
            Some(relay)
        }
        None => None,
    };
    let (mut outcome, _) = run_prepared(env, prepared, Mode::Run, relay, cancel, holding)?;
    outcome.enforced.runtime = decision;
    Ok(outcome)
}

/// Runs the Envelope's command with every syscall allowed but recorded, and
/// returns the minimal allowlist profile that lets it run again.
///
/// The init installs a filter that turns every syscall into a user
/// notification; the parent answers each with "continue" and notes its
/// number (see `nucleus_seccomp::record`). The wall-clock timeout is not
/// enforced while recording.
pub fn record(env: &Envelope) -> Result<(Outcome, nucleus_seccomp::Profile), RunError> {
    env.validate()?;
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
    let (outcome, profile) = run_prepared(&env, prepared, Mode::Record, None, None, Holding::None)?;
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

/// Joins a pooled network namespace where that changes nothing the
/// workload sees (see [`LaunchOptions::netns`]); a failed join leaves the
/// clone to make one, as without a pool.
fn join_pooled_netns(env: &Envelope, prepared: &mut Prepared, netns: std::os::fd::OwnedFd) {
    let wanted =
        prepared.namespaces.contains(nucleus_ns::Namespace::Network) && env.caps.keep.is_empty();
    if !wanted {
        return;
    }
    match sys::join_netns(&netns) {
        Ok(()) => {
            tracing::debug!("joined a network namespace of the server's pool");
            prepared.pooled_netns = true;
            prepared.loopback = false;
        }
        Err(e) => tracing::debug!(error = %e, "cannot join a pooled network namespace; making one"),
    }
}

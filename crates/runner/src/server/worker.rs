//! A worker: the forked copy of the server that runs one request as a
//! one-shot `nucleus-run` would, with the client's stdio, directory and
//! environment, and writes the reply.

use crate::protocol::{self, ErrorKind, Request};
use crate::session::{send_reply, Hold};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

/// How long a session lives with no command running, unless its request says.
pub(super) const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// What a worker runs besides the client's request.
pub(super) enum Job {
    /// A `run`, in a network namespace of the pool if one was there.
    Run { netns: Option<OwnedFd> },
    /// A `session-create`: the holder's end of the session's control socket.
    Session { control: OwnedFd },
}

/// Runs `req` for the client on `conn`; never returns.
pub(super) fn run(
    conn: RawFd,
    stdio: Vec<OwnedFd>,
    req: Request,
    job: Job,
    mask: &libc::sigset_t,
) -> ! {
    // The server's blocked signals are its own; the launch blocks what it
    // watches itself, as in a one-shot run.
    sys::sigmask(libc::SIG_SETMASK, mask);
    // SAFETY: the fd number is the connection this process inherited from
    // the server; nothing else in this process closes it.
    let conn = unsafe { BorrowedFd::borrow_raw(conn) };
    let keep = match &job {
        Job::Run { netns } => netns.as_ref().map(AsRawFd::as_raw_fd),
        Job::Session { control } => Some(control.as_raw_fd()),
    };
    let mut kept = vec![conn.as_raw_fd()];
    kept.extend(keep);
    let frame = match take_client_context(stdio, &kept, &req) {
        Ok(()) => match job {
            Job::Run { netns } => launch(conn, req, netns),
            Job::Session { control } => hold(conn, req, control),
        },
        Err(message) => protocol::encode_error(ErrorKind::Setup, &message),
    };
    // A client gone meanwhile: its sandbox is already gone.
    send_reply(conn, &frame);
    sys::exit(0)
}

/// Runs the launch and encodes its result or error.
fn launch(conn: BorrowedFd<'_>, req: Request, netns: Option<OwnedFd>) -> Vec<u8> {
    let Some(env) = req.envelope() else {
        return protocol::encode_error(ErrorKind::BadRequest, "a run needs an envelope");
    };
    let mut opts = crate::LaunchOptions::cancelled_by(conn);
    opts.netns = netns;
    protocol::encode_outcome(crate::launch_with(env, opts))
}

/// Builds a spare for requests like `template` (with the template's
/// directory and environment, /dev/null as stdio) and waits for one
/// (`spare.rs`); replies to the request it took, or runs that request cold
/// when the spare could not; never returns.
pub(super) fn spare(template: &Request, control: OwnedFd, mask: &libc::sigset_t) -> ! {
    sys::sigmask(libc::SIG_SETMASK, mask);
    if let Err(message) = take_client_context(Vec::new(), &[control.as_raw_fd()], template) {
        tracing::debug!(%message, "cannot build a spare");
        sys::exit(1);
    }
    let taken = std::cell::RefCell::new(None);
    let result = match template.envelope() {
        Some(env) => {
            let opts = crate::LaunchOptions {
                spare: Some(crate::spare::SpareHold {
                    control: control.as_fd(),
                    taken: &taken,
                }),
                ..crate::LaunchOptions::default()
            };
            crate::launch_with(env, opts)
        }
        None => Err(crate::RunError::NoCommand),
    };
    if let Err(e) = &result {
        tracing::debug!(error = %e, "the spare ended");
    }
    let taken = taken
        .into_inner()
        .or_else(|| crate::spare::drain(control.as_fd()));
    drop(control);
    let Some(taken) = taken else { sys::exit(0) };
    let conn = taken.conn.as_raw_fd();
    if taken.started {
        if !taken.replied {
            // SAFETY: the connection is `taken.conn`, open until the exit.
            let conn = unsafe { BorrowedFd::borrow_raw(conn) };
            send_reply(conn, &protocol::encode_outcome(result));
        }
        sys::exit(0)
    }
    // Cold, in this worker, as `run` would have: the spare is gone.
    run(
        conn,
        taken.stdio,
        taken.request,
        Job::Run { netns: None },
        mask,
    )
}

/// Holds a session until it ends (`session.rs`). Its creator is answered
/// once the sandbox is ready; what is returned here reaches it only when
/// the session failed before that.
fn hold(conn: BorrowedFd<'_>, req: Request, control: OwnedFd) -> Vec<u8> {
    let (Some(env), Some(name)) = (req.envelope(), req.session.clone()) else {
        return protocol::encode_error(ErrorKind::BadRequest, "a session needs a name");
    };
    let reply = match conn.try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return protocol::encode_error(ErrorKind::Setup, &format!("cannot dup: {e}")),
    };
    // A session runs no command of its own; the launch's plan wants one.
    let mut env = env.clone();
    if env.command.is_empty() {
        env.command = vec!["/bin/true".to_owned()];
    }
    let opts = crate::LaunchOptions {
        session: Some(Hold {
            control,
            reply,
            name,
            idle: req.idle_timeout.unwrap_or(DEFAULT_IDLE),
            gvisor: None,
        }),
        ..crate::LaunchOptions::default()
    };
    match crate::launch_with(&env, opts) {
        Ok(outcome) => {
            let why = outcome
                .error
                .as_deref()
                .unwrap_or("it ended before it was ready");
            protocol::encode_error(ErrorKind::Setup, &format!("the session failed: {why}"))
        }
        Err(err) => protocol::encode_error(ErrorKind::Setup, &err.chain()),
    }
}

/// Puts the client's fds on 0, 1 and 2 (`/dev/null` for missing ones),
/// closes every other fd but `keep` (the connection, and what the job
/// holds), and takes the client's directory and environment.
fn take_client_context(stdio: Vec<OwnedFd>, keep: &[RawFd], req: &Request) -> Result<(), String> {
    // Every other fd of the server (its listener, the other clients'
    // connections, the fds just moved) closes here.
    crate::session::adopt_stdio(stdio, keep)?;
    if let Some(dir) = &req.cwd {
        std::env::set_current_dir(dir)
            .map_err(|e| format!("cannot enter the client's directory {}: {e}", dir.display()))?;
    }
    if let Some(environ) = &req.environ {
        // One thread (the server's, forked): changing the environment is safe.
        for (key, _) in std::env::vars_os() {
            std::env::remove_var(key);
        }
        for (key, value) in environ {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(format!("the environment variable {key:?} is not valid"));
            }
            std::env::set_var(key, value);
        }
    }
    Ok(())
}

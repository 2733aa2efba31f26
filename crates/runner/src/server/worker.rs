//! A worker: the forked copy of the server that runs one request as a
//! one-shot `nucleus-run` would, with the client's stdio, directory and
//! environment, and writes the reply.

use crate::protocol::{self, ErrorKind, Request};
use crate::sys::{self, socket};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

/// How long a reply may wait for a client that does not read it.
const REPLY_TIMEOUT_SECS: libc::time_t = 30;

/// Runs `req` for the client on `conn`; never returns.
pub(super) fn run(
    conn: RawFd,
    stdio: Vec<OwnedFd>,
    req: Request,
    netns: Option<OwnedFd>,
    mask: &libc::sigset_t,
) -> ! {
    // The server's blocked signals are its own; the launch blocks what it
    // watches itself, as in a one-shot run.
    sys::sigmask(libc::SIG_SETMASK, mask);
    // SAFETY: the fd number is the connection this process inherited from
    // the server; nothing else in this process closes it.
    let conn = unsafe { BorrowedFd::borrow_raw(conn) };
    let keep = netns.as_ref().map(AsRawFd::as_raw_fd);
    let frame = match take_client_context(conn, stdio, keep, &req) {
        Ok(()) => launch(conn, req, netns),
        Err(message) => protocol::encode_error(ErrorKind::Setup, &message),
    };
    socket::set_send_timeout(conn, REPLY_TIMEOUT_SECS);
    // A client gone meanwhile cannot be told; its sandbox is already gone.
    let _ = socket::send_all(conn, &frame, &[]);
    sys::exit(0)
}

/// Runs the launch and encodes its result or error.
fn launch(conn: BorrowedFd<'_>, req: Request, netns: Option<OwnedFd>) -> Vec<u8> {
    let mut opts = crate::LaunchOptions::cancelled_by(conn);
    opts.netns = netns;
    let outcome = crate::launch_with(&req.envelope, opts);
    match outcome {
        Ok(outcome) => protocol::encode_result(&outcome).unwrap_or_else(|e| {
            protocol::encode_error(ErrorKind::Setup, &format!("cannot encode the result: {e}"))
        }),
        Err(err) => protocol::encode_error(ErrorKind::Setup, &err.chain()),
    }
}

/// Puts the client's fds on 0, 1 and 2 (`/dev/null` for missing ones),
/// closes every other fd but the connection (and `keep`), and takes the
/// client's directory and environment.
fn take_client_context(
    conn: BorrowedFd<'_>,
    stdio: Vec<OwnedFd>,
    keep: Option<RawFd>,
    req: &Request,
) -> Result<(), String> {
    let mut stdio = stdio.into_iter();
    for target in 0..3 {
        let from = match stdio.next() {
            Some(fd) => fd.into_raw_fd(),
            None => dev_null()?,
        };
        sys::dup2(from, target)
            .map_err(|e| format!("cannot set up fd {target}: {}", errno_text(e)))?;
    }
    // Every other fd of the server (its listener, the other clients'
    // connections, the fds just moved) closes here.
    let mut kept = vec![conn.as_raw_fd()];
    kept.extend(keep);
    kept.sort_unstable();
    sys::close_fds_except(&kept)
        .map_err(|e| format!("cannot close the server's fds: {}", errno_text(e)))?;
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

fn dev_null() -> Result<RawFd, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(IntoRawFd::into_raw_fd)
        .map_err(|e| format!("cannot open /dev/null: {e}"))
}

fn errno_text(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

//! The messages between a runtime command and the container's init, one
//! JSON datagram each over a `SOCK_SEQPACKET` socket pair.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::OciError;

/// The environment variable naming the init's end of the socket pair.
pub const ENV_FD: &str = "_NUCLEUS_OCI_SYNC";

/// Largest message: a spec with a big seccomp profile fits easily.
const MAX: usize = 4 << 20;

/// What the init is to do.
#[derive(Debug, Serialize, Deserialize)]
pub enum Job {
    /// Set up a new container (create, run).
    Create(Box<CreateJob>),
    /// Join a running container and run a process (exec).
    Exec(Box<ExecJob>),
}

/// The init's work for `create`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateJob {
    /// The spec.
    pub spec: oci_spec::runtime::Spec,
    /// The root filesystem on the host.
    pub rootfs: PathBuf,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The exec fifo on the host (opened before the root changes).
    pub fifo: PathBuf,
    /// The connected console socket's fd, when the process has a terminal.
    pub console_fd: Option<i32>,
    /// The state JSON given to hooks on stdin.
    pub state: String,
    /// Whether the spec asked for a new user namespace.
    pub new_userns: bool,
    /// Fds 3..3+N the process keeps (`--preserve-fds`); the rest close at exec.
    pub preserve_fds: u32,
    /// The Landlock policy of `org.nucleus.landlock`.
    pub landlock: Option<nucleus_landlock_policy::Policy>,
    /// The seccomp agent's connection and what to send it.
    pub listener: Option<crate::listener::Listener>,
}

/// The init's work for `exec`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecJob {
    /// Namespace fds to join, user first (`(kind, fd)`).
    pub namespaces: Vec<(String, i32)>,
    /// The process to run.
    pub process: oci_spec::runtime::Process,
    /// The container's spec (seccomp, sysctl-free parts).
    pub spec: oci_spec::runtime::Spec,
    /// The connected console socket's fd, when the process has a terminal.
    pub console_fd: Option<i32>,
    /// Fds 3..3+N the process keeps (`--preserve-fds`); the rest close at exec.
    pub preserve_fds: u32,
    /// The container's Landlock policy: an exec'd process is held by it too.
    pub landlock: Option<nucleus_landlock_policy::Policy>,
    /// The seccomp agent's connection and what to send it: an exec'd
    /// process has the container's profile, so its own listener.
    pub listener: Option<crate::listener::Listener>,
}

/// What the init reports.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    /// Mounts are made; the runtime may run prestart and createRuntime hooks.
    Hooks,
    /// The container is created and waits on the fifo.
    Created,
    /// Setup failed.
    Error(String),
}

/// What the runtime answers to [`Report::Hooks`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    /// Go on.
    Continue,
}

/// A `SOCK_SEQPACKET` pair: the runtime's end (close-on-exec) and the init's.
pub fn pair() -> Result<(OwnedFd, OwnedFd), OciError> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array on success.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
    if rc != 0 {
        return Err(OciError::io("socketpair", io::Error::last_os_error()));
    }
    // SAFETY: both fds were just returned to us and are owned by nothing else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    crate::proc::set_cloexec(ours.as_raw_fd(), true)?;
    Ok((ours, theirs))
}

/// Sends one message.
pub fn send<T: Serialize>(fd: BorrowedFd<'_>, msg: &T) -> Result<(), OciError> {
    let data = serde_json::to_vec(msg).map_err(|e| OciError::Layer(format!("encode: {e}")))?;
    // SAFETY: send from a live buffer of its length.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(OciError::io("send to init", io::Error::last_os_error()));
    }
    Ok(())
}

/// Receives one message; `None` at end of stream (the peer closed or exec'd).
pub fn recv<T: for<'de> Deserialize<'de>>(fd: BorrowedFd<'_>) -> Result<Option<T>, OciError> {
    let mut buf = vec![0u8; MAX];
    let n = loop {
        // SAFETY: recv into a live buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(OciError::io("receive from init", e));
        }
    };
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..n])
        .map(Some)
        .map_err(|e| OciError::Layer(format!("decode message: {e}")))
}

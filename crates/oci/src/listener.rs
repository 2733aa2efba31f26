//! `linux.seccomp.listenerPath`: the seccomp agent that answers the
//! syscalls a profile sends it with `SCMP_ACT_NOTIFY`.
//!
//! The runtime connects to the agent's socket (`create`, `run` and `exec`,
//! as the caller, in the host's namespaces: the path is a host path, and
//! the init may run as an id that could not write the socket) and hands the
//! connection to the init with the container process state it is to send.
//! The init applies the filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`,
//! sends the listener fd (`SCM_RIGHTS`) and the JSON on that connection at
//! once, closes both and goes on to `execve`. A bad path fails `create`.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, Spec};
use serde::{Deserialize, Serialize};

use crate::error::OciError;

/// The name of the listener fd in the state's `fds`.
pub const SECCOMP_FD: &str = "seccompFd";

/// Whether the profile sends a syscall to an agent (as its default or in a rule).
pub fn notifies(sec: &LinuxSeccomp) -> bool {
    let notify = |a: LinuxSeccompAction| a == LinuxSeccompAction::ScmpActNotify;
    notify(sec.default_action()) || sec.syscalls().iter().flatten().any(|s| notify(s.action()))
}

fn path(sec: &LinuxSeccomp) -> Option<&Path> {
    sec.listener_path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
}

fn invalid(field: &str, reason: &str) -> OciError {
    OciError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The spec's rules: `SCMP_ACT_NOTIFY` needs a `listenerPath`, and
/// `listenerMetadata` goes with one. (A `listenerPath` without
/// `SCMP_ACT_NOTIFY` is ignored, as the spec says.)
pub fn check(sec: &LinuxSeccomp) -> Result<(), OciError> {
    let metadata = sec.listener_metadata().as_deref().unwrap_or("");
    if path(sec).is_none() && !metadata.is_empty() {
        return Err(invalid(
            "linux.seccomp.listenerMetadata",
            "set without listenerPath",
        ));
    }
    if notifies(sec) && path(sec).is_none() {
        return Err(invalid(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs the socket of a seccomp agent to answer the notified syscalls",
        ));
    }
    Ok(())
}

/// The profile of a spec that notifies, or `None`.
fn notifying(spec: &Spec) -> Option<&LinuxSeccomp> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .filter(|s| notifies(s))
}

/// Connects to the agent when the profile notifies; the fd stays open
/// across exec, for the init.
pub fn connect(spec: &Spec) -> Result<Option<UnixStream>, OciError> {
    let Some(path) = notifying(spec).and_then(path) else {
        return Ok(None);
    };
    let sock = UnixStream::connect(path).map_err(|e| {
        OciError::io(
            format!("connect to linux.seccomp.listenerPath {}", path.display()),
            e,
        )
    })?;
    crate::proc::set_cloexec(sock.as_raw_fd(), false)?;
    Ok(Some(sock))
}

/// What the init sends the agent, in its job.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listener {
    /// The connected socket's fd, left open for the init.
    pub fd: i32,
    /// The container process state, JSON.
    pub payload: String,
}

impl Listener {
    /// The job's part for `sock` (from [`connect`]): the container process
    /// state of process `pid` (as the runtime sees it) in a container whose
    /// state (as `state` prints it) is `state`.
    pub fn new(sock: &UnixStream, spec: &Spec, pid: i32, state: serde_json::Value) -> Listener {
        let metadata = notifying(spec)
            .and_then(|s| s.listener_metadata().clone())
            .unwrap_or_default();
        let payload = serde_json::json!({
            "ociVersion": spec.version(),
            "fds": [SECCOMP_FD],
            "pid": pid,
            "metadata": metadata,
            "state": state,
        });
        Listener {
            fd: sock.as_raw_fd(),
            payload: payload.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seccomp(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("a seccomp section")
    }

    #[test]
    fn notify_needs_a_listener_and_metadata_a_path() {
        let rule = serde_json::json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
        let no_path =
            seccomp(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}));
        assert!(notifies(&no_path));
        let e = check(&no_path).unwrap_err().to_string();
        assert!(
            e.contains("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs"),
            "{e}"
        );
        let by_default = seccomp(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(check(&by_default).is_err());
        let ok = seccomp(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule,
            "listenerPath": "/run/agent.sock", "listenerMetadata": "m"}),
        );
        assert!(check(&ok).is_ok());
        let stray = seccomp(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
        );
        let e = check(&stray).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.listenerMetadata"), "{e}");
        // Without SCMP_ACT_NOTIFY the path is ignored.
        let unused = seccomp(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent"}),
        );
        assert!(!notifies(&unused) && check(&unused).is_ok());
    }

    #[test]
    fn the_payload_is_the_container_process_state() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
                "listenerPath": "/run/agent.sock", "listenerMetadata": "meta"}}
        }))
        .expect("spec");
        let (sock, _peer) = UnixStream::pair().expect("pair");
        let state = serde_json::json!({"id": "c1", "status": "creating"});
        let l = Listener::new(&sock, &spec, 42, state.clone());
        assert_eq!(l.fd, sock.as_raw_fd());
        let p: serde_json::Value = serde_json::from_str(&l.payload).expect("JSON");
        assert_eq!(
            p,
            serde_json::json!({"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 42,
                "metadata": "meta", "state": state})
        );
    }
}

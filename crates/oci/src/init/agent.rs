//! The init's half of `linux.seccomp.listenerPath` (see
//! [`crate::listener`]): the agent's connection, taken as soon as the job
//! arrives (close-on-exec from then on, so no hook inherits it), the
//! message built before the filter is applied (while allocating is still
//! harmless), and the listener sent the moment the filter is in place.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nucleus_seccomp::{Action, CompiledFilter};

use super::scm::FdMessage;
use crate::error::OciError;
use crate::listener::Listener;

/// The connection to the seccomp agent and what goes to it.
pub struct Agent {
    sock: OwnedFd,
    msg: FdMessage,
}

impl Agent {
    /// Takes the connection the runtime left open for the init.
    pub fn take(listener: Listener) -> Result<Agent, OciError> {
        // SAFETY: the runtime left this fd open across exec for us alone;
        // nothing else in this process owns it.
        let sock = unsafe { OwnedFd::from_raw_fd(listener.fd) };
        crate::proc::set_cloexec(sock.as_raw_fd(), true)?;
        Ok(Agent {
            sock,
            msg: FdMessage::new(listener.payload.into_bytes()),
        })
    }

    /// Refuses a filter under which the listener could not reach the
    /// agent: it goes with `sendmsg(2)` once the filter is in place, so a
    /// notified `sendmsg` would wait for an agent that has no listener yet,
    /// and a denied one would fail the start.
    pub fn check(&self, filter: &CompiledFilter) -> Result<(), OciError> {
        let Some(nr) = nucleus_seccomp::number_of(filter.arch(), "sendmsg") else {
            return Ok(());
        };
        let fd = self.sock.as_raw_fd() as u64;
        let flags = libc::MSG_NOSIGNAL as u64;
        match filter.evaluate(nr, [fd, 0, flags, 0, 0, 0]) {
            Some(Action::Allow | Action::Log) => Ok(()),
            other => Err(OciError::Invalid {
                field: "linux.seccomp".to_owned(),
                reason: format!(
                    "the runtime sends the seccomp listener to the agent with sendmsg(2) \
                     once the filter is in place, and the profile answers sendmsg with {}",
                    other.map_or_else(|| "an unknown action".to_owned(), |a| a.to_string())
                ),
            }),
        }
    }

    /// Applies `filter` with a listener, sends the listener and the
    /// container process state, and closes both (the agent keeps its own
    /// copy of the listener). Nothing between the filter and the send
    /// allocates.
    pub fn apply(self, filter: &CompiledFilter) -> Result<(), OciError> {
        let Agent { sock, mut msg } = self;
        let fd = filter
            .apply_with_listener()
            .map_err(|e| OciError::layer(&e))?;
        // SAFETY: the kernel has just returned this fd; nothing else owns it.
        let listener = unsafe { OwnedFd::from_raw_fd(fd) };
        let sent = msg.send(sock.as_raw_fd(), listener.as_raw_fd());
        drop(listener);
        drop(sock);
        sent.map_err(|e| OciError::io("send the seccomp listener to linux.seccomp.listenerPath", e))
    }
}

//! What a syscall gets: the actions of a filter, in the kernel's order of precedence.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `EPERM`: what denials return by default, so programs see "operation not permitted" and
/// degrade instead of dying.
pub const EPERM: u16 = libc::EPERM as u16;
/// `ENOSYS`: "not implemented", which makes libc fall back (e.g. from `clone3` to `clone`).
pub const ENOSYS: u16 = libc::ENOSYS as u16;

/// What a syscall gets.
///
/// ```
/// use nucleus_seccomp::{Action, EPERM};
///
/// let deny = Action::Errno(EPERM);
/// assert!(deny.denies());
/// assert_eq!(Action::from_ret(deny.to_ret()), Some(deny));
/// assert_eq!(deny.to_string(), "errno(1)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Run it.
    Allow,
    /// Fail it with this errno, without running it.
    Errno(u16),
    /// Kill the whole process (`SIGSYS`, core dump).
    KillProcess,
    /// Kill the calling thread only.
    KillThread,
    /// Send `SIGSYS` to the thread.
    Trap,
    /// Run it, and log it.
    Log,
    /// Ask the supervisor holding the listener fd (without one: `ENOSYS`).
    UserNotify,
    /// Notify a ptrace tracer with this message (without one: `ENOSYS`).
    Trace(u16),
}

impl Action {
    /// The kernel's `SECCOMP_RET_*` value.
    pub fn to_ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::UserNotify => libc::SECCOMP_RET_USER_NOTIF,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
        }
    }

    /// The action a `SECCOMP_RET_*` value stands for, if it is one.
    pub fn from_ret(ret: u32) -> Option<Action> {
        let data = (ret & libc::SECCOMP_RET_DATA) as u16;
        Some(match ret & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_ALLOW => Action::Allow,
            libc::SECCOMP_RET_ERRNO => Action::Errno(data),
            libc::SECCOMP_RET_KILL_PROCESS => Action::KillProcess,
            libc::SECCOMP_RET_KILL_THREAD => Action::KillThread,
            libc::SECCOMP_RET_TRAP => Action::Trap,
            libc::SECCOMP_RET_LOG => Action::Log,
            libc::SECCOMP_RET_USER_NOTIF => Action::UserNotify,
            libc::SECCOMP_RET_TRACE => Action::Trace(data),
            _ => return None,
        })
    }

    /// Rank in the kernel's precedence: lower is more restrictive and wins.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::KillThread => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::UserNotify => 4,
            Action::Trace(_) => 5,
            Action::Log => 6,
            Action::Allow => 7,
        }
    }

    /// Whether the syscall is refused (not run, or the caller killed).
    pub fn denies(self) -> bool {
        matches!(
            self,
            Action::Errno(_) | Action::KillProcess | Action::KillThread | Action::Trap
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(e) => write!(f, "errno({e})"),
            Action::KillProcess => f.write_str("kill-process"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap => f.write_str("trap"),
            Action::Log => f.write_str("log"),
            Action::UserNotify => f.write_str("user-notify"),
            Action::Trace(d) => write!(f, "trace({d})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_ret_values() {
        for a in [
            Action::Allow,
            Action::Errno(1),
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Log,
            Action::UserNotify,
            Action::Trace(7),
        ] {
            assert_eq!(Action::from_ret(a.to_ret()), Some(a));
        }
    }
}

//! Linux namespaces for nucleus sandboxes.
//!
//! [`NamespaceSet`] says *which* namespaces a sandbox gets (with named presets),
//! [`fork_into`] creates them (`clone3`, with a pidfd and optionally straight
//! into a cgroup), and the functions below act inside the new namespaces: [`set_hostname`] (UTS), [`loopback_up`]
//! (network) and [`join`] (attach to an existing namespace by path).
//!
//! ```
//! use nucleus_ns::{Namespace, NamespaceSet};
//!
//! let set: NamespaceSet = "default".parse().unwrap();
//! assert!(set.contains(Namespace::Pid));
//! assert!(!set.contains(Namespace::Time));
//! let without_net = set.without(Namespace::Network);
//! assert_eq!(without_net.clone_flags() & libc::CLONE_NEWNET as u64, 0);
//! ```

mod clone;
mod error;
mod set;
mod sys;

pub use clone::{fork_into, Child, Forked};
pub use error::NsError;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use set::{Namespace, NamespaceSet};

use std::ffi::CStr;
use std::path::Path;

/// Sets the hostname of the calling process's UTS namespace.
///
/// Launch sequence: in the sandbox child, after the filesystem view is built,
/// before capabilities are dropped (it needs `CAP_SYS_ADMIN` in the namespace).
/// Runs without allocating.
///
/// ```no_run
/// nucleus_ns::set_hostname(c"sandbox").unwrap();
/// ```
pub fn set_hostname(name: &CStr) -> Result<(), NsError> {
    sys::sethostname(name.to_bytes()).map_err(|source| NsError::SetHostname { source })
}

/// Validates a hostname before it is used: 1 to 64 bytes, letters, digits,
/// `-` and `.`, not starting with `-`.
///
/// ```
/// assert!(nucleus_ns::validate_hostname("box-1").is_ok());
/// assert!(nucleus_ns::validate_hostname("bad name").is_err());
/// ```
pub fn validate_hostname(name: &str) -> Result<(), NsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NsError::InvalidHostname {
            name: name.to_owned(),
        })
    }
}

/// Brings the loopback interface `lo` up in the calling process's network
/// namespace (a new network namespace starts with `lo` down).
///
/// Launch sequence: in the sandbox child, in a new network namespace, before
/// capabilities are dropped (it needs `CAP_NET_ADMIN` there). No allocation.
///
/// ```no_run
/// nucleus_ns::loopback_up().unwrap();
/// ```
pub fn loopback_up() -> Result<(), NsError> {
    sys::loopback_up().map_err(|source| NsError::LoopbackUp { source })
}

/// Joins the namespace behind `path` (e.g. `/proc/1234/ns/net`) with `setns`.
///
/// `kind` restricts the join to that namespace type; the kernel refuses a
/// file of another type with `EINVAL`. For tools that attach to a running
/// sandbox.
///
/// ```no_run
/// use nucleus_ns::Namespace;
/// nucleus_ns::join(std::path::Path::new("/proc/1234/ns/uts"), Namespace::Uts).unwrap();
/// ```
pub fn join(path: &Path, kind: Namespace) -> Result<(), NsError> {
    let file = std::fs::File::open(path).map_err(|source| NsError::Open {
        path: path.to_owned(),
        source,
    })?;
    sys::setns(&file, kind.clone_flag()).map_err(|source| NsError::Setns {
        path: path.to_owned(),
        source,
    })
}

/// What this kernel supports, for `nucleus-run doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NsProbe {
    /// Namespace types the kernel offers (`/proc/self/ns/*` exists).
    pub available: Vec<Namespace>,
    /// Whether unprivileged users may create user namespaces.
    pub unprivileged_userns: bool,
    /// `/proc/sys/user/max_user_namespaces`, if readable.
    pub max_user_namespaces: Option<u64>,
}

/// Probes which namespaces this kernel supports.
///
/// ```
/// let probe = nucleus_ns::probe();
/// println!("{:?}", probe.available);
/// ```
pub fn probe() -> NsProbe {
    let available = Namespace::ALL
        .into_iter()
        .filter(|ns| Path::new("/proc/self/ns").join(ns.proc_name()).exists())
        .collect();
    let read_num = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let max_user_namespaces = read_num("/proc/sys/user/max_user_namespaces");
    let clone_allowed = read_num("/proc/sys/kernel/unprivileged_userns_clone").unwrap_or(1) != 0;
    let apparmor = read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").unwrap_or(0);
    NsProbe {
        available,
        unprivileged_userns: clone_allowed && apparmor == 0 && max_user_namespaces != Some(0),
        max_user_namespaces,
    }
}

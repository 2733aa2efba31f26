//! Landlock policies as data: filesystem, network and scope rules with ABI negotiation.
//!
//! A [`Policy`] says which accesses are restricted and the exceptions: filesystem rules
//! (a path and [rights by name](FsAccess)), TCP rules (a port, `bind-tcp` /
//! `connect-tcp`, ABI 4), [scopes](Scope) (abstract unix sockets and signals, ABI 6), a
//! minimum ABI and a [compatibility mode](Compat). It is read from TOML
//! ([`Policy::from_file`], optionally pinned by SHA-256), built in Rust, or taken from
//! [`Policy::default_container`]. [`Policy::compile`] checks it against the kernel in the
//! parent; [`CompiledPolicy::restrict_self`] enforces it and returns a [`LandlockReport`].
//! [`probe`] says what the kernel supports.
//!
//! # Restricting your own process
//!
//! ```no_run
//! use nucleus_landlock_policy::Policy;
//!
//! let policy = Policy::from_toml_str(r#"
//!     compat = "best-effort"
//!     scopes = ["abstract-unix-socket", "signal"]
//!     handle-net = ["bind-tcp", "connect-tcp"]
//!
//!     [[fs]]
//!     path = "/usr"
//!     access = ["read", "execute"]
//!
//!     [[fs]]
//!     path = "/tmp"
//!     access = ["read", "write", "create", "remove"]
//! "#)?;
//! let report = policy.restrict_self()?;
//! eprintln!("landlock abi {}: {:?}, dropped {:?}", report.abi, report.status, report.dropped);
//! // From here on, this thread and its children read only /usr and /tmp, write only
//! // /tmp, execute only from /usr, and open no TCP socket.
//! # Ok::<(), nucleus_landlock_policy::LandlockError>(())
//! ```
//!
//! Landlock restricts the calling thread and what it starts afterwards: call
//! `restrict_self` before spawning threads (or from each thread that needs it).
//!
//! # Strict and best-effort
//!
//! In [`Compat::Strict`] every right and scope the policy handles must be enforceable by
//! the running kernel, and every non-optional rule path must exist, or the restriction
//! fails (before anything is enforced) with an error naming what is missing. In
//! [`Compat::BestEffort`] the kernel's ABI decides: [`LandlockReport::dropped`] and
//! [`LandlockReport::skipped_paths`] say what was given up. `min-abi` is a floor in both.
//!
//! # In the nucleus launch sequence
//!
//! The runner calls [`Policy::compile`] in the parent before `clone`, and
//! [`CompiledPolicy::restrict_self`] in the child after `pivot_root`, the uid switch and
//! `no_new_privs`, before seccomp and before the init forks the workload.

mod access;
mod compile;
mod defaults;
mod error;
mod policy;
mod probe;
mod report;
mod sys;

pub use access::{FsAccess, NetAccess, Scope, MAX_KNOWN_ABI, VETTED_ABI};
pub use compile::CompiledPolicy;
pub use defaults::{DefaultOptions, Exec};
pub use error::LandlockError;
pub use policy::{sha256_hex, Compat, FsRule, NetRule, Policy};
pub use probe::{probe, Availability, LandlockProbe};
pub use report::{Enforcement, LandlockReport};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! Linux capability policies: drop everything, keep a named list, verify,
//! `no_new_privs`.
//!
//! - [`CapsPolicy`] is the plain-data policy, usually a TOML file such as
//!   `keep = ["CAP_NET_BIND_SERVICE"]`. The default keeps nothing.
//!   [`CapsPolicy::validate`] refuses capabilities that create or enter
//!   namespaces ([`NAMESPACE_CAPS`]) unless `allow_namespace_caps = true`.
//! - [`CapsPolicy::compile`] (parent, before clone) turns it into
//!   [`CompiledCaps`]: five masks for this kernel, `Copy`, no heap.
//! - [`CompiledCaps::apply`] (sandbox child, after the uid switch) drops the
//!   bounding, ambient, inheritable, permitted and effective sets down to
//!   the policy, raises ambient capabilities so a non-root workload keeps
//!   them across `execve`, verifies the result with `capget` and
//!   `PR_CAPBSET_READ`, and returns a [`CapsReport`]. Then
//!   [`set_no_new_privs`].
//! - [`read_state`], [`check_no_namespace_caps`] and [`probe`] inspect.
//!
//! System calls go through `libc` directly (`capget`/`capset` with
//! `_LINUX_CAPABILITY_VERSION_3`, `prctl`), in one small module.
//!
//! ```
//! use nucleus_caps::{CapsPolicy, Capability};
//!
//! let policy = CapsPolicy::from_toml_str(r#"keep = ["net_bind_service"]"#).unwrap();
//! let compiled = policy.compile().unwrap();
//! assert_eq!(compiled.bounding().names(), ["CAP_NET_BIND_SERVICE"]);
//! assert!(compiled.ambient_for(true).is_empty());
//! ```
//!
//! In the sandbox child, for a non-root workload:
//!
//! ```no_run
//! # let compiled = nucleus_caps::CapsPolicy::default().compile().unwrap();
//! nucleus_caps::set_keepcaps(true)?;
//! // setresgid(...), setresuid(1000, 1000, 1000)
//! let report = compiled.apply(false)?;
//! nucleus_caps::set_no_new_privs()?;
//! # Ok::<(), nucleus_caps::CapsError>(())
//! ```
//!
//! ## Why not the `caps` crate
//!
//! The [`caps`](https://docs.rs/caps) crate (0.5) was weighed for the set
//! manipulation and not taken, because [`CompiledCaps::apply`] runs in the
//! sandbox child between `clone` and `execve`, and must verify what it did:
//!
//! - It allocates on every call: sets are `HashSet<Capability>` in and out
//!   (`caps::read`, `caps::set`, `caps::all`), the ambient calls walk a
//!   fresh `HashSet` of supported capabilities, and every error is a
//!   `format!`ed `String`. The child may not allocate.
//! - Its errors keep no errno (`CapsError(String)`), and the runner reports
//!   a failed stage to the parent as an errno.
//! - It knows capabilities up to `CAP_CHECKPOINT_RESTORE` (40) and reads the
//!   bounding set only for those, so on a newer kernel a capability above
//!   40 left in a set would go unseen; [`CapState`] reads every bit up to
//!   the kernel's own last capability.
//! - `caps::set` changes one set per `capget` + `capset`, so dropping
//!   effective, permitted and inheritable takes three calls with ordering
//!   rules between them, where we make one `capset` of the final sets.
//! - Reading the bounding set (`caps::read(None, CapSet::Bounding)`) counts
//!   a failed `PR_CAPBSET_READ` as "not in the set": a verification built on
//!   it would pass where ours fails closed.
//! - It has keepcaps (`caps::securebits`) but not `no_new_privs`, so this
//!   crate would keep its own `prctl` wrapper anyway.

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod apply;
mod cap;
mod error;
mod flags;
mod name;
mod policy;
mod state;
mod sys;

pub use apply::{CapsReport, CompiledCaps};
pub use cap::{CapSet, Capability, SetName, NAMESPACE_CAPS};
pub use error::CapsError;
pub use flags::{no_new_privs, set_keepcaps, set_no_new_privs};
pub use policy::CapsPolicy;
pub use state::{check_no_namespace_caps, last_cap, probe, read_state, CapState, CapsProbe};

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
//! `_LINUX_CAPABILITY_VERSION_3`, `prctl`).
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

mod apply;
mod cap;
mod error;
mod policy;
mod state;
mod sys;

pub use apply::{no_new_privs, set_keepcaps, set_no_new_privs, CapsReport, CompiledCaps};
pub use cap::{CapSet, Capability};
pub use error::CapsError;
pub use policy::{CapsPolicy, SetName, NAMESPACE_CAPS};
pub use state::{check_no_namespace_caps, last_cap, probe, read_state, CapState, CapsProbe};

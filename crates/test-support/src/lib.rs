//! What the test suites of nucleus share: gates that skip (or, in CI, fail) a test the machine
//! cannot run, children forked to run a closure, temporary directories, and running a program
//! as another user. Dev-only: every crate of the workspace takes it as a `[dev-dependencies]`
//! entry, and it is never published.
//!
//! Each suite keeps its own specific helpers (fixtures, its layer's probes) in its
//! `tests/common/mod.rs`; what more than one suite needs lives here.
//!
//! ```
//! use nucleus_test_support::{in_child, require_root, Exit, TempDir};
//!
//! fn a_root_only_test() {
//!     // Prints `SKIPPED a_root_only_test: needs root`, or fails with NUCLEUS_TEST_STRICT=1.
//!     if !require_root("a_root_only_test", "needs root") {
//!         return;
//!     }
//!     // ...
//! }
//!
//! let dir = TempDir::new("example"); // removed on drop
//! let file = dir.join("f");
//! // The closure runs in a forked child: whatever it changes, the test process keeps.
//! assert_eq!(in_child(|| i32::from(std::fs::write(&file, "x").is_err())), Exit::Code(0));
//! assert!(file.exists());
//! # let _ = a_root_only_test;
//! ```

mod bin;
mod child;
mod gate;
mod scm;
mod temp;
mod user;

pub use bin::{reachable_copies, reachable_copy};
pub use child::{exit, fork, fork_lock, in_child, no_new_privs, pipe, try_in_child, wait, Exit};
pub use gate::{error_chain, is_root, require_root, skip, strict, which, STRICT_VAR};
pub use scm::{recv_fd, send_fds};
pub use temp::{unique_name, TempDir};
pub use user::{as_user, setpriv_args, NOBODY};

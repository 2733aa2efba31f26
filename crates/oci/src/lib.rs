//! `nucleus-oci`: a runc-compatible OCI runtime built from the nucleus
//! layer crates, for container engines (podman through conmon, containerd's
//! runc shim, and Kubernetes through them).
//!
//! The binary takes runc's commands and global flags (`create`, `start`,
//! `state`, `kill`, `delete`, `run`, `exec`, `ps`, `pause`, `resume`,
//! `update`, `features`, `events`, `list`; `--root`, `--log`,
//! `--log-format`). A container's `config.json` becomes the same envelope
//! the runner builds: namespaces (new or joined by path), id maps through
//! `nucleus-idmap`, the spec's mounts, devices and masked paths, capability
//! sets through `nucleus-caps`, the seccomp profile through
//! `nucleus-seccomp`, `linux.resources` through `nucleus-cgroup`. What the
//! spec asks and this runtime does not enforce is refused by name.
//!
//! The library half exists for the binary and for fuzzing the bundle
//! parser:
//!
//! ```
//! let config = br#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
//!     "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
//!     "linux": {"namespaces": [{"type": "mount"}], "intelRdt": {"closID": "x"}}}"#;
//! let err = nucleus_oci::spec::parse(config).unwrap_err();
//! assert!(err.to_string().contains("linux.intelRdt"));
//! ```

pub mod cli;
pub mod create;
pub mod error;
pub mod features;
pub mod gvisor;
pub mod hooks;
pub mod init;
pub mod landlock;
pub mod listener;
pub mod ops;
pub mod proc;
pub mod resources;
pub mod run;
pub mod spec;
pub mod state;
pub mod sync;

pub use error::OciError;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

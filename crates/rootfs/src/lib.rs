//! The filesystem view of a nucleus sandbox.
//!
//! A [`RootfsPolicy`] says *what* the sandbox sees: a fresh tmpfs root holding
//! read-only binds of the host's `/usr`, `/bin`, `/sbin`, `/lib*` and `/etc`
//! (or a whole directory given as the root), the user's binds and tmpfs
//! mounts, a fresh `/proc`, a minimal `/dev` and a private `/tmp`. Every mount
//! is `nosuid,nodev` (device nodes in `/dev` excepted); `/proc`, `/dev`,
//! `/dev/shm` and `/tmp` are also `noexec`.
//!
//! The work is split in two, so that the sandbox child does only system calls:
//! [`RootfsPolicy::compile`] runs in the parent before `clone`, checks every
//! host path and prepares every C string; [`MountPlan::apply`] runs in the child,
//! inside its new mount (and user) namespace, and ends with `pivot_root` into
//! the new view and the old root detached.
//!
//! A root directory given by the user, and any bind the sandbox could write
//! to, is not trusted: every path inside the new root is resolved from it
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (mount points the
//! plan makes with no symbolic link at all) and mounted on through the
//! resolved descriptor, so a link out of the root fails the step (`EXDEV`,
//! or `ELOOP` at a mount point) instead of mounting elsewhere. Linux 5.6 or
//! later (`openat2`).
//!
//! ```no_run
//! use nucleus_rootfs::{MountSpec, RootfsPolicy};
//!
//! let mut policy = RootfsPolicy::default();
//! policy.mounts.push("/srv/data:/data".parse::<MountSpec>().unwrap().read_only());
//! let plan = policy.compile().unwrap();            // parent, before clone
//! // ... in the child, in a new mount namespace:
//! plan.apply().map_err(|e| plan.describe(&e)).unwrap();
//! ```

mod compile;
mod error;
mod host;
mod image;
mod mask;
mod plan;
mod policy;
mod source;
mod step;
mod sys;

pub use error::{ApplyError, RootfsError};
pub use host::{HOST_CONFIG_DIR, HOST_SYSTEM_DIRS, MASKED_PATHS};
pub use mask::{Mask, Pin};
pub use plan::{MountPlan, RuntimeBind};
pub use policy::{Base, BindMode, Located, MountKind, MountSpec, RootfsPolicy};
pub use source::resolve_source;

/// What this kernel offers for building a filesystem view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootfsProbe {
    /// `mount_setattr(2)` (Linux 5.12+): read-only binds applied recursively.
    pub mount_setattr: bool,
    /// Whether `/proc/self/ns/mnt` exists.
    pub mount_namespaces: bool,
}

/// Probes the kernel features this crate uses.
///
/// ```
/// let probe = nucleus_rootfs::probe();
/// println!("mount_setattr: {}", probe.mount_setattr);
/// ```
pub fn probe() -> RootfsProbe {
    RootfsProbe {
        mount_setattr: sys::mount_setattr_supported(),
        mount_namespaces: std::path::Path::new("/proc/self/ns/mnt").exists(),
    }
}

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

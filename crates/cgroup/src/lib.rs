//! cgroup v2 and v1 resource limits, usage and total kill, plus rlimits.
//!
//! The face of this layer:
//!
//! - [`Limits`]: plain data, what to cap (memory, swap, CPUs, CPU weight,
//!   pids, block I/O), parsed from text with [`parse_size`],
//!   [`parse_cpus`], [`parse_count`] and checked with [`Limits::validate`].
//! - [`Cgroup`]: one sandbox's cgroup. [`Cgroup::create`] (parent, before
//!   clone) discovers where this process may create cgroups, creates them and
//!   writes the limits, failing closed unless [`LimitMode::BestEffort`];
//!   [`Cgroup::clone_into_fd`] / [`Cgroup::attach`] put the child inside
//!   ([`Cgroup::clone_into_covers_all`] tells whether the first is enough);
//!   [`Cgroup::usage`] reads what it used and why it died;
//!   [`Cgroup::kill_all`] kills every process inside; [`Cgroup::remove`] (or
//!   `Drop`) kills and removes.
//! - [`rlimit`]: `setrlimit` policy with safe defaults, applied in the child.
//! - [`probe`]: what this machine offers.
//!
//! Only directories created by this crate are written, killed or removed.
//! The one write outside them: on cgroup v2, enabling a needed controller in
//! the parent's `cgroup.subtree_control`.
//!
//! ```no_run
//! use nucleus_cgroup::{parse_cpus, parse_size, online_cpus, Cgroup, CgroupConfig, Limits};
//! let limits = Limits {
//!     memory: Some(parse_size("512M")?),
//!     cpus: Some(parse_cpus("1.5", online_cpus())?),
//!     pids: Some(256),
//!     ..Limits::default()
//! };
//! let cg = Cgroup::create(&limits, &CgroupConfig::default())?;
//! println!("{:?}", cg.applied());
//! cg.remove()?;
//! # Ok::<(), nucleus_cgroup::CgroupError>(())
//! ```

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod applied;
mod cgroup;
mod create;
mod devices;
mod discover;
mod error;
mod fs;
mod kill;
mod limits;
mod named;
mod parse;
mod plan;
pub mod rlimit;
mod sweep;
mod sys;
mod types;
mod usage;

#[cfg(test)]
mod fake_tests;

pub use applied::{AppliedLimits, KillMethod, NotApplied};
pub use cgroup::Cgroup;
pub use devices::{compile_device_program, DeviceAccess, DeviceKind, DeviceRule, Insn};
pub use discover::{probe, probe_with, CgroupConfig, CgroupProbe, CgroupVersion, ProbePlace};
pub use error::CgroupError;
pub use limits::{IoMax, LimitMode, Limits};
pub use named::{SavedCgroup, SavedDir};
pub use parse::{
    online_cpus, parse_count, parse_cpus, parse_duration, parse_size, CPUS_MIN, PIDS_MAX,
};
pub use sweep::sweep_stale;
pub use types::{LimitKind, NotAppliedReason};
pub use usage::Usage;

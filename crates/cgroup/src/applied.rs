//! The report of [`Cgroup::create`](crate::Cgroup::create): which limits
//! the kernel took, which not and why, and how the sandbox will be killed.

use serde::{Deserialize, Serialize};

use crate::discover::CgroupVersion;
use crate::types::{LimitKind, NotAppliedReason};

/// A limit that was asked but not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotApplied {
    /// Which limit.
    pub limit: LimitKind,
    /// Why.
    #[serde(flatten)]
    pub reason: NotAppliedReason,
}

/// How [`Cgroup::kill_all`](crate::Cgroup::kill_all) ends the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillMethod {
    /// cgroup v2 `cgroup.kill`: one atomic write (Linux 5.14+).
    CgroupKill,
    /// Freeze (v2 `cgroup.freeze` or v1 `freezer.state`), SIGKILL every
    /// listed pid, thaw, until empty.
    Freezer,
    /// SIGKILL every listed pid, repeatedly, until empty (no freezer).
    SignalLoop,
    /// No cgroup was created; the caller must kill by other means.
    None,
}

/// The report of [`Cgroup::create`](crate::Cgroup::create): which limits are
/// enforced and which are not (best-effort mode) and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedLimits {
    /// The cgroup version used.
    pub version: CgroupVersion,
    /// Limits written and accepted by the kernel.
    pub applied: Vec<LimitKind>,
    /// Limits asked but not applied.
    pub not_applied: Vec<NotApplied>,
    /// How the sandbox will be killed.
    pub kill_method: KillMethod,
}

impl AppliedLimits {
    /// True when every asked limit was applied.
    pub fn is_complete(&self) -> bool {
        self.not_applied.is_empty()
    }
}

//! What was enforced.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How much of the policy the kernel enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Enforcement {
    /// Every handled right and scope is enforced.
    FullyEnforced,
    /// Some handled rights or scopes were dropped (see [`LandlockReport::dropped`]).
    PartiallyEnforced,
    /// Nothing is enforced: no Landlock in this kernel, or nothing it supports was asked.
    NotEnforced,
}

impl From<landlock::RulesetStatus> for Enforcement {
    fn from(status: landlock::RulesetStatus) -> Self {
        match status {
            landlock::RulesetStatus::FullyEnforced => Enforcement::FullyEnforced,
            landlock::RulesetStatus::PartiallyEnforced => Enforcement::PartiallyEnforced,
            landlock::RulesetStatus::NotEnforced => Enforcement::NotEnforced,
        }
    }
}

/// What [`crate::CompiledPolicy::restrict_self`] enforced, for `--json` and `doctor`.
///
/// ```
/// use nucleus_landlock_policy::{Enforcement, LandlockReport};
/// let json = r#"{"abi":7,"status":"fully_enforced","dropped":[],"skipped_paths":["/lib32"]}"#;
/// let report: LandlockReport = serde_json::from_str(json).unwrap();
/// assert_eq!(report.status, Enforcement::FullyEnforced);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LandlockReport {
    /// The kernel's Landlock ABI (0: none).
    pub abi: u8,
    /// Fully, partially or not enforced.
    pub status: Enforcement,
    /// Rights and scopes the policy handles that this kernel cannot enforce, by name
    /// (`ioctl-dev`, `connect-tcp`, `signal`, ...). Always empty in strict mode.
    pub dropped: Vec<String>,
    /// Rule paths that did not exist and were skipped (optional rules, or best-effort).
    /// A skipped rule only takes access away.
    pub skipped_paths: Vec<PathBuf>,
}

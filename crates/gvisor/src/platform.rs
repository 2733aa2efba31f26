//! gVisor platforms: how the sentry intercepts the workload's system calls.
//!
//! A leaf: the error type names [`Platform`], so the platform names nothing
//! of the crate; its `FromStr` (which fails with a
//! [`GvisorError`](crate::GvisorError)) is in `parse.rs`, with the other
//! parsing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A gVisor platform (`runsc --platform`).
///
/// Which ones exist depends on the `runsc` release: `systrap` appeared in
/// 2023 and became the default there; older releases know `ptrace` and `kvm`.
///
/// ```
/// use nucleus_gvisor::Platform;
/// let p: Platform = "ptrace".parse()?;
/// assert_eq!(p, Platform::Ptrace);
/// assert_eq!(p.to_string(), "ptrace");
/// # Ok::<(), nucleus_gvisor::GvisorError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// `PTRACE_SYSEMU`: works everywhere, slowest system calls.
    Ptrace,
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
    /// seccomp `SECCOMP_RET_TRAP` plus shared memory (newer releases).
    Systrap,
}

impl Platform {
    /// Every platform this crate knows, in the order it prefers them when
    /// none is asked (`kvm` is never picked without being asked).
    pub const ALL: [Platform; 3] = [Platform::Ptrace, Platform::Systrap, Platform::Kvm];

    /// The name `runsc --platform` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ptrace => "ptrace",
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Joins platform names for messages: `"kvm, ptrace"`, or `"none"`.
pub(crate) fn names(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_owned();
    }
    platforms
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_names() {
        for p in Platform::ALL {
            assert_eq!(p.to_string().parse::<Platform>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
        }
    }

    #[test]
    fn rejects_unknown_names() {
        let err = "gvisor-magic".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("gvisor-magic"), "{err}");
        assert!("PTRACE".parse::<Platform>().is_err());
    }

    #[test]
    fn names_joins() {
        assert_eq!(names(&[]), "none");
        assert_eq!(names(&[Platform::Kvm, Platform::Ptrace]), "kvm, ptrace");
    }
}

//! What the guards decide on and what they decide: the trust level, the
//! runtime asked for, the kernel lockdown a launch may require, and the
//! decision. Plain types, shared by the Envelope, the guards, the errors and
//! the report (re-exported as `nucleus_runner::guard::*`).

use serde::{Deserialize, Serialize};

/// How far the workload is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TrustLevel {
    /// Possibly hostile code (the default): gVisor when `runsc` exists,
    /// never host networking.
    #[default]
    Untrusted,
    /// Code the operator vouches for: the native envelope.
    Trusted,
}

/// Which runtime runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Decided by the trust level: gVisor for untrusted, native for trusted.
    #[default]
    Auto,
    /// The native envelope (namespaces, Landlock, seccomp, limits).
    Native,
    /// gVisor's user-space kernel (`runsc`).
    Gvisor,
}

/// The kernel lockdown mode a launch may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lockdown {
    /// No lockdown.
    None,
    /// Integrity: the running kernel cannot be modified from user space.
    Integrity,
    /// Confidentiality: also no extraction of kernel secrets.
    Confidentiality,
}

impl std::fmt::Display for Lockdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Integrity => "integrity",
            Self::Confidentiality => "confidentiality",
        })
    }
}

/// What the guards decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Run natively.
    Native,
    /// Run under gVisor.
    Gvisor,
    /// Run natively although the trust level asked for gVisor
    /// (`--allow-degraded-security`); the result says so.
    NativeDegraded,
}

//! The error type of `nucleus-caps`.

use crate::cap::{CapIndex, CapSet, SetName};
use std::path::{Path, PathBuf};

/// What went wrong with a capability policy or while applying it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CapsError {
    /// A name that is not a capability.
    #[error("unknown capability {name:?} (expected a name such as CAP_NET_BIND_SERVICE; see capabilities(7))")]
    UnknownCapability {
        /// The name given.
        name: String,
    },
    /// The policy file could not be read.
    #[error("failed to read capability policy {path}")]
    ReadPolicy {
        /// The file.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The policy is not valid TOML or has unknown fields or names.
    #[error("invalid capability policy{}", of_path(.path.as_deref()))]
    ParsePolicy {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's answer.
        #[source]
        source: toml::de::Error,
    },
    /// One set holds capabilities another set must also hold.
    #[error("the {set} set has {extra}, which the {of} set lacks")]
    NotSubset {
        /// The larger set.
        set: SetName,
        /// The set it must fit in.
        of: SetName,
        /// What does not fit.
        extra: CapSet,
    },
    /// The policy keeps capabilities that create or enter namespaces.
    #[error("the policy keeps {caps}, which can create or enter namespaces; set allow_namespace_caps = true if that is intended")]
    NamespaceCapsKept {
        /// The capabilities concerned.
        caps: CapSet,
    },
    /// The policy names capabilities this kernel does not have.
    #[error("this kernel has no {caps} (its last capability is {})", CapIndex(*.last_cap))]
    UnsupportedCapability {
        /// The capabilities concerned.
        caps: CapSet,
        /// The kernel's last capability number.
        last_cap: u8,
    },
    /// `capget` failed.
    #[error("failed to read the capability sets (capget)")]
    Capget {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Raising the effective set to the permitted set before dropping failed.
    #[error("failed to raise the effective capabilities to the permitted set (capset)")]
    RaiseEffective {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_CAPBSET_DROP` failed.
    #[error("failed to drop {} from the bounding set (this needs CAP_SETPCAP: call set_keepcaps(true) before switching to a non-root uid)", CapIndex(*.cap))]
    DropBounding {
        /// The capability number.
        cap: u8,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_CAPBSET_READ` failed.
    #[error("failed to read {} in the bounding set", CapIndex(*.cap))]
    ReadBounding {
        /// The capability number.
        cap: u8,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_CAP_AMBIENT_CLEAR_ALL` failed.
    #[error("failed to clear the ambient capabilities")]
    ClearAmbient {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `capset` with the policy's sets failed.
    #[error("failed to set the capability sets (capset); a kept capability must be in the permitted set, which a switch to a non-root uid clears unless set_keepcaps(true) came first")]
    Capset {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_CAP_AMBIENT_RAISE` failed.
    #[error("failed to raise {} in the ambient set", CapIndex(*.cap))]
    RaiseAmbient {
        /// The capability number.
        cap: u8,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_CAP_AMBIENT_IS_SET` failed.
    #[error("failed to read {} in the ambient set", CapIndex(*.cap))]
    ReadAmbient {
        /// The capability number.
        cap: u8,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// After applying, a set still holds capabilities the policy does not keep.
    #[error("the {set} set still has {extra} after the capabilities were dropped")]
    Verify {
        /// The set concerned.
        set: SetName,
        /// What should not be there.
        extra: CapSet,
    },
    /// A set holds capabilities that can create or enter namespaces.
    #[error("the {set} set has {caps}, which can create or enter namespaces")]
    NamespaceCapsPresent {
        /// The set concerned.
        set: SetName,
        /// The capabilities concerned.
        caps: CapSet,
    },
    /// `PR_SET_NO_NEW_PRIVS` or `PR_GET_NO_NEW_PRIVS` failed.
    #[error("failed to set or read no_new_privs")]
    NoNewPrivs {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `PR_SET_KEEPCAPS` failed.
    #[error("failed to set keepcaps")]
    KeepCaps {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

fn of_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

impl CapsError {
    /// The errno behind this error, if the kernel gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::ReadPolicy { source, .. }
            | Self::Capget { source }
            | Self::RaiseEffective { source }
            | Self::DropBounding { source, .. }
            | Self::ReadBounding { source, .. }
            | Self::ClearAmbient { source }
            | Self::Capset { source }
            | Self::RaiseAmbient { source, .. }
            | Self::ReadAmbient { source, .. }
            | Self::NoNewPrivs { source }
            | Self::KeepCaps { source } => source.raw_os_error(),
            _ => None,
        }
    }
}

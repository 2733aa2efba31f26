//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::access::MAX_KNOWN_ABI;

/// Everything that can go wrong reading, checking or enforcing a Landlock policy.
///
/// Variants up to [`LandlockError::Unsupported`] are configuration errors and come from the
/// parent ([`crate::Policy::from_file`], [`crate::Policy::validate`],
/// [`crate::Policy::compile`]); the rest come from
/// [`crate::CompiledPolicy::restrict_self`] in the process being restricted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LandlockError {
    /// The policy file could not be read.
    #[error("failed to read landlock policy {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The policy file is not UTF-8.
    #[error("landlock policy {path} is not utf-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the bad byte is.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The policy text is not a valid policy (bad TOML, unknown field or right name).
    #[error("invalid landlock policy")]
    ParseToml {
        /// What the parser said.
        #[source]
        source: toml::de::Error,
    },
    /// The policy file is not a valid policy (bad TOML, unknown field or right name).
    #[error("invalid landlock policy {path}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: toml::de::Error,
    },
    /// The policy cannot be written as TOML (a path that is not UTF-8).
    #[error("cannot write the landlock policy as toml")]
    SerializeToml {
        /// What the serializer said.
        #[source]
        source: toml::ser::Error,
    },
    /// The SHA-256 pin is not 64 hexadecimal digits.
    #[error("sha-256 pin {pin:?} is not 64 hexadecimal digits")]
    InvalidPin {
        /// The pin as given.
        pin: String,
    },
    /// The policy file's SHA-256 differs from the pin.
    #[error("landlock policy {path} has sha-256 {actual} but {expected} is pinned")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pin, lowercase.
        expected: String,
        /// The hash of the file's bytes, lowercase.
        actual: String,
    },
    /// A rule path is relative.
    #[error("landlock rule path {path} is not absolute")]
    RelativePath {
        /// The path.
        path: PathBuf,
    },
    /// A rule path has a `..` component.
    #[error("landlock rule path {path} contains `..`")]
    ParentComponent {
        /// The path.
        path: PathBuf,
    },
    /// A rule path has a NUL byte.
    #[error("landlock rule path {path:?} contains a nul byte")]
    NulInPath {
        /// The path.
        path: PathBuf,
    },
    /// A filesystem rule lists no right.
    #[error("landlock rule for {path} grants no access right")]
    EmptyFsAccess {
        /// The rule's path.
        path: PathBuf,
    },
    /// A network rule lists no right.
    #[error("landlock rule for tcp port {port} grants no access right")]
    EmptyNetAccess {
        /// The rule's port.
        port: u16,
    },
    /// `min-abi` is 0 or above what this crate knows.
    #[error("min-abi {min_abi} is not a landlock abi this crate knows (1 to {MAX_KNOWN_ABI})")]
    UnknownAbi {
        /// The value asked.
        min_abi: u8,
    },
    /// The policy handles no right and no scope, so it would restrict nothing.
    #[error("landlock policy restricts nothing: handle-fs is empty and there is no rule or scope")]
    NothingHandled,
    /// The kernel's Landlock ABI is below the policy's `min-abi` (0: no Landlock at all).
    #[error("landlock policy needs abi {required} but the kernel has abi {kernel}")]
    AbiTooOld {
        /// The policy's `min-abi`.
        required: u8,
        /// The kernel's ABI.
        kernel: u8,
    },
    /// A strict policy asks for rights or scopes the kernel cannot enforce.
    #[error(
        "strict landlock policy asks for {} which kernel abi {kernel_abi} cannot enforce \
         (use compat = \"best-effort\" to drop them)",
        .dropped.join(", ")
    )]
    Unsupported {
        /// The kernel's ABI (0: no Landlock at all).
        kernel_abi: u8,
        /// The rights and scopes that would be dropped.
        dropped: Vec<String>,
    },
    /// A rule path that must exist does not (strict policy, rule not `optional`).
    #[error("landlock rule path {path} does not exist")]
    MissingPath {
        /// The path, in the sandbox's view.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A rule path could not be opened for another reason than not existing.
    #[error("failed to open landlock rule path {path}")]
    OpenPath {
        /// The path, in the sandbox's view.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// `landlock_create_ruleset(2)` failed, or the handled rights were refused.
    #[error("failed to create the landlock ruleset")]
    CreateRuleset {
        /// What the landlock crate said.
        #[source]
        source: landlock::RulesetError,
    },
    /// `landlock_add_rule(2)` failed for a path.
    #[error("failed to add the landlock rule for {path}")]
    AddFsRule {
        /// The rule's path.
        path: PathBuf,
        /// What the landlock crate said.
        #[source]
        source: landlock::RulesetError,
    },
    /// `landlock_add_rule(2)` failed for a port.
    #[error("failed to add the landlock rule for tcp port {port}")]
    AddNetRule {
        /// The rule's port.
        port: u16,
        /// What the landlock crate said.
        #[source]
        source: landlock::RulesetError,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS)` or `landlock_restrict_self(2)` failed.
    #[error("failed to enforce the landlock ruleset")]
    RestrictSelf {
        /// What the landlock crate said.
        #[source]
        source: landlock::RulesetError,
    },
}

impl LandlockError {
    /// The errno behind this error, when a system call failed.
    ///
    /// ```
    /// use nucleus_landlock_policy::LandlockError;
    /// let e = LandlockError::NothingHandled;
    /// assert_eq!(e.raw_os_error(), None);
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            LandlockError::ReadFile { source, .. }
            | LandlockError::MissingPath { source, .. }
            | LandlockError::OpenPath { source, .. } => source.raw_os_error(),
            LandlockError::CreateRuleset { source }
            | LandlockError::AddFsRule { source, .. }
            | LandlockError::AddNetRule { source, .. }
            | LandlockError::RestrictSelf { source } => chain_errno(source),
            _ => None,
        }
    }
}

/// The first `io::Error` errno in an error's source chain.
fn chain_errno(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_period() {
        let errors = [
            LandlockError::Unsupported {
                kernel_abi: 3,
                dropped: vec!["ioctl-dev".into(), "signal".into()],
            },
            LandlockError::AbiTooOld {
                required: 8,
                kernel: 7,
            },
            LandlockError::MissingPath {
                path: "/data".into(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            },
        ];
        for e in &errors {
            let msg = e.to_string();
            assert!(!msg.ends_with('.'), "{msg}");
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
        }
        assert!(errors[0].to_string().contains("ioctl-dev, signal"));
        assert_eq!(errors[2].raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            errors[2].to_string(),
            "landlock rule path /data does not exist"
        );
    }
}

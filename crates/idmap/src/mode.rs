//! How ids inside a user namespace relate to ids on the host, and the
//! default range root is remapped to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// First host id of the range root is remapped to when the caller has no
/// entry in `/etc/subuid` (resp. `/etc/subgid`): the conventional first
/// subordinate range handed out by `useradd`.
pub const DEFAULT_REMAP_START: u32 = 100_000;

/// Size of the default remap range: ids 0..=65535 inside.
pub const DEFAULT_REMAP_COUNT: u32 = 65_536;

/// How ids inside the user namespace relate to ids on the host.
///
/// ```
/// use nucleus_idmap::UsernsMode;
/// let mode: UsernsMode = "keep-id".parse().unwrap();
/// assert_eq!(mode, UsernsMode::KeepId);
/// assert_eq!(mode.to_string(), "keep-id");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsernsMode {
    /// `root-remapped` when the caller is root, else `rootless`.
    #[default]
    Auto,
    /// Root inside is the caller outside; only that one id is mapped.
    Rootless,
    /// The caller's own uid/gid inside are the same ids outside.
    KeepId,
    /// Root inside is an unprivileged host range (subuid/subgid, or
    /// [`DEFAULT_REMAP_START`]`:`[`DEFAULT_REMAP_COUNT`]).
    RootRemapped,
    /// The maps given in [`IdMapPolicy::uid_map`](crate::IdMapPolicy::uid_map) and [`IdMapPolicy::gid_map`](crate::IdMapPolicy::gid_map).
    Explicit,
    /// No user namespace: ids are the host's.
    Host,
}

impl UsernsMode {
    /// The config name of this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Rootless => "rootless",
            Self::KeepId => "keep-id",
            Self::RootRemapped => "root-remapped",
            Self::Explicit => "explicit",
            Self::Host => "host",
        }
    }
}

impl fmt::Display for UsernsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

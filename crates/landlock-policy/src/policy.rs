//! The policy as data: what to allow, what to handle, how strict to be.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::{FsAccess, NetAccess, Scope, MAX_KNOWN_ABI};
use crate::error::LandlockError;

/// What to do when the kernel cannot enforce everything the policy asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Compat {
    /// Every right and scope asked for is enforced, every non-optional path exists, or
    /// the restriction fails before anything is enforced.
    Strict,
    /// The kernel's ABI decides: unsupported rights and scopes are dropped, missing paths
    /// are skipped, and the [`crate::LandlockReport`] says which.
    #[default]
    BestEffort,
}

/// Allow some rights beneath a path (the path itself and everything under it).
///
/// ```
/// use nucleus_landlock_policy::{FsAccess, FsRule};
/// let rule = FsRule::new("/usr", [FsAccess::Read, FsAccess::Execute]);
/// let lib32 = FsRule::new("/lib32", [FsAccess::Read]).optional();
/// assert!(lib32.optional && !rule.optional);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct FsRule {
    /// An absolute path, as seen by the restricted process (inside the sandbox: after
    /// `pivot_root`). Symbolic links are followed once, when the rule is added.
    pub path: PathBuf,
    /// Rights or groups of rights (see [`FsAccess`] for the table).
    pub access: Vec<FsAccess>,
    /// A missing path is skipped and reported, even in [`Compat::Strict`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl FsRule {
    /// A rule that allows `access` beneath `path`.
    pub fn new(path: impl Into<PathBuf>, access: impl IntoIterator<Item = FsAccess>) -> Self {
        FsRule {
            path: path.into(),
            access: access.into_iter().collect(),
            optional: false,
        }
    }

    /// The same rule, skipped instead of failing when its path does not exist.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// Allow some TCP rights on a port (Landlock ABI 4).
///
/// ```
/// use nucleus_landlock_policy::{NetAccess, NetRule};
/// let https = NetRule::new(443, [NetAccess::ConnectTcp]);
/// assert_eq!(https.port, 443);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct NetRule {
    /// The TCP port (local port for `bind-tcp`, remote port for `connect-tcp`).
    pub port: u16,
    /// `bind-tcp`, `connect-tcp`.
    pub access: Vec<NetAccess>,
}

impl NetRule {
    /// A rule that allows `access` on `port`.
    pub fn new(port: u16, access: impl IntoIterator<Item = NetAccess>) -> Self {
        NetRule {
            port,
            access: access.into_iter().collect(),
        }
    }
}

/// A Landlock policy: which accesses are restricted, and the exceptions.
///
/// Anything of a *handled* kind that no rule allows is denied. Filesystem rights are
/// handled by default (all of ABI 7, see [`Policy::handle_fs`]); TCP only when asked
/// ([`Policy::handle_net`] or a [`NetRule`]). `Policy::default()` denies every filesystem
/// access and nothing else.
///
/// In TOML:
///
/// ```
/// use nucleus_landlock_policy::{Compat, Policy};
/// let policy = Policy::from_toml_str(r#"
///     compat = "strict"
///     min-abi = 6
///     scopes = ["abstract-unix-socket", "signal"]
///     handle-net = ["bind-tcp", "connect-tcp"]
///
///     [[fs]]
///     path = "/usr"
///     access = ["read", "execute"]
///
///     [[fs]]
///     path = "/lib32"
///     access = ["read", "execute"]
///     optional = true
///
///     [[net]]
///     port = 443
///     access = ["connect-tcp"]
/// "#)?;
/// assert_eq!(policy.compat, Compat::Strict);
/// assert_eq!(policy.fs.len(), 2);
/// # Ok::<(), nucleus_landlock_policy::LandlockError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Policy {
    /// Strict or best-effort (the default).
    #[serde(default)]
    pub compat: Compat,
    /// Refuse to run on a kernel whose Landlock ABI is lower, in either mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_abi: Option<u8>,
    /// Filesystem rights to deny where no rule allows them. Unset: every right of ABI 7
    /// ([`crate::VETTED_ABI`]). Rights named in rules are always handled too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_fs: Option<Vec<FsAccess>>,
    /// TCP rights to deny where no rule allows them. Rights named in rules are always
    /// handled too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handle_net: Vec<NetAccess>,
    /// IPC scopes: abstract unix sockets and signals confined to the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
    /// Filesystem exceptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs: Vec<FsRule>,
    /// TCP exceptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetRule>,
}

impl Policy {
    /// Parse a TOML policy and [`validate`](Policy::validate) it.
    ///
    /// ```
    /// use nucleus_landlock_policy::Policy;
    /// assert!(Policy::from_toml_str("[[fs]]\npath = \"/etc\"\naccess = [\"read\"]").is_ok());
    /// assert!(Policy::from_toml_str("[[fs]]\npath = \"/etc\"\naccess = [\"rwx\"]").is_err());
    /// ```
    pub fn from_toml_str(s: &str) -> Result<Policy, LandlockError> {
        let policy: Policy =
            toml::from_str(s).map_err(|source| LandlockError::ParseToml { source })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Read a TOML policy file (`--landlock-policy FILE`), check its SHA-256 against
    /// `sha256_pin` when one is given (`--landlock-policy-sha256`), parse and validate it.
    ///
    /// The hash is of the file's exact bytes; the pin is 64 hex digits, any case. A file
    /// whose hash differs is refused before it is parsed.
    ///
    /// ```no_run
    /// use nucleus_landlock_policy::Policy;
    /// let policy = Policy::from_file(
    ///     "/etc/nucleus/landlock.toml".as_ref(),
    ///     Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    /// )?;
    /// # Ok::<(), nucleus_landlock_policy::LandlockError>(())
    /// ```
    pub fn from_file(path: &Path, sha256_pin: Option<&str>) -> Result<Policy, LandlockError> {
        let expected = sha256_pin.map(normalize_pin).transpose()?;
        let bytes = std::fs::read(path).map_err(|source| LandlockError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(expected) = expected {
            let actual = sha256_hex(&bytes);
            if actual != expected {
                return Err(LandlockError::HashMismatch {
                    path: path.to_path_buf(),
                    expected,
                    actual,
                });
            }
        }
        let text = std::str::from_utf8(&bytes).map_err(|source| LandlockError::NotUtf8 {
            path: path.to_path_buf(),
            source,
        })?;
        let policy: Policy = toml::from_str(text).map_err(|source| LandlockError::ParseFile {
            path: path.to_path_buf(),
            source,
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as TOML, readable again by [`Policy::from_toml_str`]. Fails only for a
    /// path that is not UTF-8 (TOML cannot hold it).
    pub fn to_toml_string(&self) -> Result<String, LandlockError> {
        toml::to_string(self).map_err(|source| LandlockError::SerializeToml { source })
    }

    /// SHA-256 (lowercase hex) of [`Policy::to_toml_string`]: identifies the effective
    /// policy in reports, whatever file or flags it came from.
    pub fn sha256(&self) -> Result<String, LandlockError> {
        Ok(sha256_hex(self.to_toml_string()?.as_bytes()))
    }

    /// Check what can be checked without the kernel: absolute paths without `..`, at least
    /// one right per rule, a known `min-abi`, something to restrict. Runs in the parent.
    ///
    /// Right names are checked when parsing (unknown names are refused there).
    pub fn validate(&self) -> Result<(), LandlockError> {
        if let Some(min_abi) = self.min_abi {
            if min_abi == 0 || min_abi > MAX_KNOWN_ABI {
                return Err(LandlockError::UnknownAbi { min_abi });
            }
        }
        for rule in &self.fs {
            validate_path(&rule.path)?;
            if rule.access.is_empty() {
                return Err(LandlockError::EmptyFsAccess {
                    path: rule.path.clone(),
                });
            }
        }
        for rule in &self.net {
            if rule.access.is_empty() {
                return Err(LandlockError::EmptyNetAccess { port: rule.port });
            }
        }
        let handles_fs = self.handle_fs.as_ref().is_none_or(|h| !h.is_empty());
        if !handles_fs
            && self.fs.is_empty()
            && self.handle_net.is_empty()
            && self.net.is_empty()
            && self.scopes.is_empty()
        {
            return Err(LandlockError::NothingHandled);
        }
        Ok(())
    }
}

/// Lowercase hex SHA-256 of `data` (what `--landlock-policy-sha256` pins).
///
/// ```
/// assert_eq!(
///     nucleus_landlock_policy::sha256_hex(b"test"),
///     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// );
/// ```
pub fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(data);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn normalize_pin(pin: &str) -> Result<String, LandlockError> {
    let trimmed = pin.trim();
    if trimmed.len() != 64 || !trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LandlockError::InvalidPin { pin: pin.into() });
    }
    Ok(trimmed.to_ascii_lowercase())
}

fn validate_path(path: &Path) -> Result<(), LandlockError> {
    if !path.is_absolute() {
        return Err(LandlockError::RelativePath {
            path: path.to_path_buf(),
        });
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(LandlockError::ParentComponent {
            path: path.to_path_buf(),
        });
    }
    if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).contains(&0) {
        return Err(LandlockError::NulInPath {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let p = Policy::from_toml_str(
            r#"
            compat = "strict"
            min-abi = 4
            handle-fs = ["read", "write"]
            handle-net = ["connect-tcp"]
            scopes = ["signal"]
            [[fs]]
            path = "/data"
            access = ["read", "write", "make-reg"]
            optional = true
            [[net]]
            port = 8080
            access = ["bind-tcp", "connect-tcp"]
            "#,
        )
        .unwrap();
        assert_eq!(p.compat, Compat::Strict);
        assert_eq!(p.min_abi, Some(4));
        assert_eq!(p.handle_fs, Some(vec![FsAccess::Read, FsAccess::Write]));
        assert_eq!(p.handle_net, vec![NetAccess::ConnectTcp]);
        assert_eq!(p.scopes, vec![Scope::Signal]);
        assert_eq!(
            p.fs,
            vec![FsRule::new(
                "/data",
                [FsAccess::Read, FsAccess::Write, FsAccess::MakeReg]
            )
            .optional()]
        );
        assert_eq!(
            p.net,
            vec![NetRule::new(
                8080,
                [NetAccess::BindTcp, NetAccess::ConnectTcp]
            )]
        );
    }

    #[test]
    fn defaults_are_best_effort_and_fs_handled() {
        let p = Policy::from_toml_str("").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.compat, Compat::BestEffort);
        assert!(p.handle_fs.is_none());
    }

    #[test]
    fn round_trips_through_toml() {
        let p = Policy::from_toml_str(
            "compat = \"strict\"\nscopes = [\"signal\"]\n[[fs]]\npath = \"/a\"\naccess = [\"all\"]\n",
        )
        .unwrap();
        let again = Policy::from_toml_str(&p.to_toml_string().unwrap()).unwrap();
        assert_eq!(p, again);
        assert_eq!(p.sha256().unwrap(), again.sha256().unwrap());
        assert_eq!(p.sha256().unwrap().len(), 64);
        let with_default = Policy::default_container(&crate::DefaultOptions::default());
        let text = with_default.to_toml_string().unwrap();
        assert_eq!(Policy::from_toml_str(&text).unwrap(), with_default);
    }

    #[test]
    fn unknown_names_and_fields_are_refused() {
        for bad in [
            "[[fs]]\npath = \"/a\"\naccess = [\"rwx\"]",
            "[[fs]]\npath = \"/a\"\naccess = [\"read\"]\nrecursive = true",
            "[[net]]\nport = 80\naccess = [\"connect-udp\"]",
            "[[net]]\nport = 70000\naccess = [\"connect-tcp\"]",
            "scopes = [\"ptrace\"]",
            "compat = \"lenient\"",
            "allow-all = true",
        ] {
            let err = Policy::from_toml_str(bad).unwrap_err();
            assert!(
                matches!(err, LandlockError::ParseToml { .. }),
                "{bad}: {err}"
            );
        }
        let err = Policy::from_toml_str("[[fs]]\npath = \"/a\"\naccess = [\"rwx\"]").unwrap_err();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("rwx"), "{cause}");
    }

    #[test]
    fn bad_paths_are_refused() {
        let err =
            Policy::from_toml_str("[[fs]]\npath = \"data\"\naccess = [\"read\"]").unwrap_err();
        assert!(matches!(err, LandlockError::RelativePath { .. }), "{err}");
        assert_eq!(err.to_string(), "landlock rule path data is not absolute");
        let err =
            Policy::from_toml_str("[[fs]]\npath = \"/a/../etc\"\naccess = [\"read\"]").unwrap_err();
        assert!(
            matches!(err, LandlockError::ParentComponent { .. }),
            "{err}"
        );
        let err = Policy::from_toml_str("[[fs]]\npath = \"/a\"\naccess = []").unwrap_err();
        assert!(matches!(err, LandlockError::EmptyFsAccess { .. }), "{err}");
        let err = Policy::from_toml_str("[[net]]\nport = 1\naccess = []").unwrap_err();
        assert!(
            matches!(err, LandlockError::EmptyNetAccess { port: 1 }),
            "{err}"
        );
    }

    #[test]
    fn min_abi_must_be_known() {
        for (abi, ok) in [(0, false), (1, true), (7, true), (9, true), (10, false)] {
            let r = Policy::from_toml_str(&format!("min-abi = {abi}"));
            assert_eq!(r.is_ok(), ok, "{abi}");
        }
    }

    #[test]
    fn nothing_handled_is_refused() {
        let err = Policy::from_toml_str("handle-fs = []").unwrap_err();
        assert!(matches!(err, LandlockError::NothingHandled));
        assert!(Policy::from_toml_str("handle-fs = []\nscopes = [\"signal\"]").is_ok());
    }

    #[test]
    fn pins_are_normalized() {
        let pin = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        assert_eq!(normalize_pin(pin).unwrap(), pin.to_ascii_lowercase());
        assert!(matches!(
            normalize_pin("abc"),
            Err(LandlockError::InvalidPin { .. })
        ));
        assert!(normalize_pin(&"g".repeat(64)).is_err());
    }
}

//! What the running kernel's Landlock supports.

use serde::{Deserialize, Serialize};

use crate::access::{
    fs_singles, fs_supported, FsAccess, Scope, MAX_KNOWN_ABI, NET_ABI, SCOPE_ABI, VETTED_ABI,
};
use crate::sys;

/// Whether Landlock can be used at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Availability {
    /// Landlock is there; see [`LandlockProbe::abi`].
    Enabled,
    /// Built in but not enabled (`lsm=` boot parameter): `EOPNOTSUPP`.
    DisabledAtBoot,
    /// Not built into this kernel: `ENOSYS`.
    NotBuiltIn,
}

/// What the kernel's Landlock supports (for `nucleus-run doctor` and `--json`).
///
/// ```
/// let probe = nucleus_landlock_policy::probe();
/// println!("{}", serde_json::to_string(&probe).unwrap());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LandlockProbe {
    /// Enabled, disabled at boot, or not built in.
    pub availability: Availability,
    /// The kernel's Landlock ABI; `None` when unavailable.
    pub abi: Option<u8>,
    /// The highest ABI this crate knows.
    pub max_known_abi: u8,
    /// The ABI whose filesystem rights policies handle by default.
    pub vetted_abi: u8,
    /// Single filesystem rights the kernel can restrict.
    pub fs: Vec<FsAccess>,
    /// TCP bind/connect rules (ABI 4).
    pub tcp: bool,
    /// Scopes the kernel can enforce (ABI 6).
    pub scopes: Vec<Scope>,
}

/// Ask the kernel which Landlock ABI it has (`landlock_create_ruleset` with
/// `LANDLOCK_CREATE_RULESET_VERSION`) and what that ABI can restrict. One system call.
pub fn probe() -> LandlockProbe {
    let (availability, abi) = match sys::landlock_abi_version() {
        Ok(v) => (
            Availability::Enabled,
            Some(u8::try_from(v).unwrap_or(u8::MAX)),
        ),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            (Availability::DisabledAtBoot, None)
        }
        Err(_) => (Availability::NotBuiltIn, None),
    };
    let level = abi.unwrap_or(0);
    let scopes = if level >= SCOPE_ABI {
        vec![Scope::AbstractUnixSocket, Scope::Signal]
    } else {
        Vec::new()
    };
    LandlockProbe {
        availability,
        abi,
        max_known_abi: MAX_KNOWN_ABI,
        vetted_abi: VETTED_ABI,
        fs: fs_singles(fs_supported(level)).collect(),
        tcp: level >= NET_ABI,
        scopes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_consistent() {
        let p = probe();
        match p.abi {
            Some(abi) => {
                assert_eq!(p.availability, Availability::Enabled);
                assert!(p.fs.contains(&FsAccess::Execute));
                assert_eq!(p.tcp, abi >= 4);
                assert_eq!(p.scopes.is_empty(), abi < 6);
            }
            None => assert!(p.fs.is_empty() && !p.tcp),
        }
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("abi").is_some());
    }
}

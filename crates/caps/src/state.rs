//! Reading the capability state of the calling thread, and probing.

use crate::cap::{CapSet, SetName, NAMESPACE_CAPS};
use crate::error::CapsError;
use crate::flags;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The five capability sets of the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapState {
    /// What the kernel checks now.
    pub effective: CapSet,
    /// What the thread may make effective.
    pub permitted: CapSet,
    /// What `execve` passes on to files that allow it.
    pub inheritable: CapSet,
    /// The ceiling for what `execve` can grant.
    pub bounding: CapSet,
    /// What `execve` passes on to unprivileged programs.
    pub ambient: CapSet,
}

impl CapState {
    /// Reads the sets, the bounding and ambient ones for capabilities `0..=last_cap`.
    pub(crate) fn read_up_to(last_cap: u8) -> Result<Self, CapsError> {
        let sets = sys::capget().map_err(|source| CapsError::Capget { source })?;
        let mut bounding = CapSet::EMPTY;
        let mut ambient = CapSet::EMPTY;
        let ambient_supported = read_ambient(0).is_ok();
        for cap in 0..=last_cap {
            if read_bounding(cap)? {
                bounding = bounding.union(CapSet::from_bits(1 << cap));
            }
            if ambient_supported && read_ambient(cap)? {
                ambient = ambient.union(CapSet::from_bits(1 << cap));
            }
        }
        Ok(Self {
            effective: CapSet::from_bits(sets.effective),
            permitted: CapSet::from_bits(sets.permitted),
            inheritable: CapSet::from_bits(sets.inheritable),
            bounding,
            ambient,
        })
    }

    /// The set called `name`.
    pub fn get(&self, name: SetName) -> CapSet {
        match name {
            SetName::Bounding => self.bounding,
            SetName::Effective => self.effective,
            SetName::Permitted => self.permitted,
            SetName::Inheritable => self.inheritable,
            SetName::Ambient => self.ambient,
        }
    }
}

/// Whether capability `cap` is in the bounding set (`PR_CAPBSET_READ`).
pub(crate) fn read_bounding(cap: u8) -> Result<bool, CapsError> {
    sys::prctl(libc::PR_CAPBSET_READ, cap.into(), 0)
        .map(|v| v == 1)
        .map_err(|source| CapsError::ReadBounding { cap, source })
}

/// Whether capability `cap` is in the ambient set (`PR_CAP_AMBIENT_IS_SET`).
pub(crate) fn read_ambient(cap: u8) -> Result<bool, CapsError> {
    sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_IS_SET as _,
        cap.into(),
    )
    .map(|v| v == 1)
    .map_err(|source| CapsError::ReadAmbient { cap, source })
}

/// The last capability number of this kernel, asked of the bounding set:
/// `PR_CAPBSET_READ` answers `EINVAL` past it. No `/proc` needed.
fn last_cap_from_prctl() -> u8 {
    (1..64u8)
        .find(|cap| sys::prctl(libc::PR_CAPBSET_READ, (*cap).into(), 0).is_err())
        .map_or(63, |first_invalid| first_invalid - 1)
}

/// The last capability number in `path` (`/proc/sys/kernel/cap_last_cap`).
fn last_cap_from_file(path: &Path) -> Option<u8> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// This kernel's last capability number: `/proc/sys/kernel/cap_last_cap`,
/// or probed with `PR_CAPBSET_READ` when that file cannot be read.
pub fn last_cap() -> u8 {
    last_cap_from_file(Path::new("/proc/sys/kernel/cap_last_cap"))
        .unwrap_or_else(last_cap_from_prctl)
        .min(63)
}

/// Reads the five sets of the calling thread with `capget` and `prctl`
/// (no `/proc` parsing).
///
/// ```
/// let state = nucleus_caps::read_state().unwrap();
/// assert!(state.effective.is_subset(state.permitted));
/// ```
pub fn read_state() -> Result<CapState, CapsError> {
    CapState::read_up_to(last_cap_from_prctl())
}

/// Fails when any set of `state` holds one of the
/// [`NAMESPACE_CAPS`](crate::NAMESPACE_CAPS) (`CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`).
///
/// Launch sequence: in the sandbox child after
/// [`CompiledCaps::apply`](crate::CompiledCaps::apply), for policies that do
/// not allow namespace capabilities; or in tests and `doctor`.
///
/// ```
/// use nucleus_caps::{check_no_namespace_caps, CapSet, CapState, Capability};
/// let mut state = CapState {
///     effective: CapSet::EMPTY, permitted: CapSet::EMPTY, inheritable: CapSet::EMPTY,
///     bounding: CapSet::EMPTY, ambient: CapSet::EMPTY,
/// };
/// assert!(check_no_namespace_caps(&state).is_ok());
/// state.bounding.insert(Capability::SysAdmin);
/// assert!(check_no_namespace_caps(&state).is_err());
/// ```
pub fn check_no_namespace_caps(state: &CapState) -> Result<(), CapsError> {
    for set in [
        SetName::Effective,
        SetName::Permitted,
        SetName::Bounding,
        SetName::Ambient,
        SetName::Inheritable,
    ] {
        let caps = state.get(set).intersection(NAMESPACE_CAPS);
        if !caps.is_empty() {
            return Err(CapsError::NamespaceCapsPresent { set, caps });
        }
    }
    Ok(())
}

/// What this kernel supports; serializable for `nucleus-run doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CapsProbe {
    /// The last capability number, from `/proc/sys/kernel/cap_last_cap`
    /// (or probed with `PR_CAPBSET_READ`).
    pub last_cap: u8,
    /// Whether ambient capabilities exist (Linux 4.3+).
    pub ambient_supported: bool,
    /// Whether `no_new_privs` is already set for this process.
    pub no_new_privs: bool,
    /// The sets of the calling thread, when readable.
    pub current: Option<CapState>,
}

/// Probes capability support and the calling thread's state.
///
/// ```
/// let probe = nucleus_caps::probe();
/// assert!(probe.last_cap >= 36);
/// ```
pub fn probe() -> CapsProbe {
    CapsProbe {
        last_cap: last_cap(),
        ambient_supported: read_ambient(0).is_ok(),
        no_new_privs: flags::no_new_privs().unwrap_or(false),
        current: read_state().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_cap_agrees_with_proc() {
        let from_proc = last_cap_from_file(Path::new("/proc/sys/kernel/cap_last_cap"));
        assert_eq!(from_proc, Some(last_cap_from_prctl()));
        assert_eq!(last_cap_from_file(Path::new("/nonexistent")), None);
    }

    #[test]
    fn state_is_consistent() {
        let s = read_state().unwrap();
        assert!(s.effective.is_subset(s.permitted));
        assert!(s.ambient.is_subset(s.permitted));
        assert!(s.bounding.is_subset(CapSet::up_to(last_cap())));
    }

    #[test]
    fn check_names_the_set() {
        let empty = CapState {
            effective: CapSet::EMPTY,
            permitted: CapSet::EMPTY,
            inheritable: CapSet::EMPTY,
            bounding: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        };
        check_no_namespace_caps(&empty).unwrap();
        let ptrace = CapState {
            ambient: NAMESPACE_CAPS,
            ..empty
        };
        match check_no_namespace_caps(&ptrace) {
            Err(CapsError::NamespaceCapsPresent {
                set: SetName::Ambient,
                caps,
            }) => {
                assert_eq!(caps, NAMESPACE_CAPS)
            }
            other => panic!("{other:?}"),
        }
        let chown = CapState {
            permitted: CapSet::from_bits(1),
            ..empty
        };
        check_no_namespace_caps(&chown).unwrap();
    }

    #[test]
    fn probe_serializes() {
        let json = serde_json::to_value(probe()).unwrap();
        assert!(json["ambient_supported"].as_bool().unwrap());
    }
}

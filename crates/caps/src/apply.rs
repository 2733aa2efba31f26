//! Applying a compiled policy in the sandbox child.

use crate::cap::{CapSet, SetName};
use crate::error::CapsError;
use crate::flags::set_keepcaps;
use crate::state::{read_bounding, CapState};
use crate::sys;
use serde::{Deserialize, Serialize};

/// The five sets a policy asks for; `ambient` as for a non-root workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sets {
    pub(crate) keep: CapSet,
    pub(crate) bounding: CapSet,
    pub(crate) effective: CapSet,
    pub(crate) permitted: CapSet,
    pub(crate) inheritable: CapSet,
    pub(crate) ambient: CapSet,
}

impl Sets {
    pub(crate) fn all(&self) -> CapSet {
        self.keep
            .union(self.bounding)
            .union(self.effective)
            .union(self.permitted)
            .union(self.inheritable)
            .union(self.ambient)
    }
}

/// A policy compiled for this kernel: five plain masks, ready for
/// [`CompiledCaps::apply`] in the child. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledCaps {
    sets: Sets,
    ambient_explicit: bool,
    last_cap: u8,
}

/// What [`CompiledCaps::apply`] left in place, read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsReport {
    /// The policy's `keep` list.
    pub kept: CapSet,
    /// The bounding set after applying.
    pub bounding: CapSet,
    /// The effective set after applying.
    pub effective: CapSet,
    /// The permitted set after applying.
    pub permitted: CapSet,
    /// The inheritable set after applying.
    pub inheritable: CapSet,
    /// The ambient set after applying.
    pub ambient: CapSet,
}

impl CompiledCaps {
    pub(crate) fn new(sets: Sets, ambient_explicit: bool, last_cap: u8) -> Self {
        Self {
            sets,
            ambient_explicit,
            last_cap,
        }
    }

    /// The policy's `keep` list as a set.
    pub fn keep(&self) -> CapSet {
        self.sets.keep
    }

    /// The bounding set to leave.
    pub fn bounding(&self) -> CapSet {
        self.sets.bounding
    }

    /// The effective set to leave.
    pub fn effective(&self) -> CapSet {
        self.sets.effective
    }

    /// The permitted set to leave.
    pub fn permitted(&self) -> CapSet {
        self.sets.permitted
    }

    /// The inheritable set to leave.
    pub fn inheritable(&self) -> CapSet {
        self.sets.inheritable
    }

    /// The ambient set to leave for a workload running as root or not: the
    /// explicit set if the policy has one, else `keep` for a non-root
    /// workload and nothing for root (root regains its capabilities at
    /// `execve` from the bounding set; ambient would add nothing).
    pub fn ambient_for(&self, target_uid_is_root: bool) -> CapSet {
        if self.ambient_explicit || !target_uid_is_root {
            self.sets.ambient
        } else {
            CapSet::EMPTY
        }
    }

    /// The kernel's last capability number this was compiled for.
    pub fn last_cap(&self) -> u8 {
        self.last_cap
    }

    /// Drops every capability the policy does not keep, in every set, then
    /// verifies with `capget` and `PR_CAPBSET_READ` that nothing else remains.
    ///
    /// Steps: raise effective to permitted (a uid switch clears effective,
    /// and dropping the bounding set needs `CAP_SETPCAP` there); drop the
    /// bounding set; clear ambient; `capset` effective, permitted and
    /// inheritable; raise ambient (see [`CompiledCaps::ambient_for`]); clear
    /// keepcaps; verify.
    ///
    /// Launch sequence: in the sandbox child, after the switch to the
    /// workload uid/gid, before Landlock and seccomp. When the workload uid
    /// is not 0, call [`set_keepcaps`](crate::set_keepcaps)`(true)` before
    /// `setresuid`, whatever the policy keeps: without it the switch empties
    /// the permitted set, and the bounding set can no longer be dropped.
    /// Makes only syscalls; does not allocate.
    ///
    /// ```no_run
    /// use nucleus_caps::{CapsPolicy, Capability};
    /// let compiled = CapsPolicy::keep([Capability::NetBindService]).compile().unwrap();
    /// // ... fork/clone; in the child, after setresuid/setresgid:
    /// let report = compiled.apply(false).unwrap();
    /// assert_eq!(report.permitted, compiled.permitted());
    /// nucleus_caps::set_no_new_privs().unwrap();
    /// ```
    pub fn apply(&self, target_uid_is_root: bool) -> Result<CapsReport, CapsError> {
        let s = &self.sets;
        let current = sys::capget().map_err(|source| CapsError::Capget { source })?;
        if current.effective != current.permitted {
            sys::capset(sys::Sets {
                effective: current.permitted,
                ..current
            })
            .map_err(|source| CapsError::RaiseEffective { source })?;
        }
        self.drop_bounding()?;
        let ambient = self.ambient_for(target_uid_is_root);
        clear_ambient(ambient)?;
        sys::capset(sys::Sets {
            effective: s.effective.bits(),
            permitted: s.permitted.bits(),
            inheritable: s.inheritable.bits(),
        })
        .map_err(|source| CapsError::Capset { source })?;
        for cap in 0..=self.last_cap {
            if ambient.has(cap) {
                sys::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as _,
                    cap.into(),
                )
                .map_err(|source| CapsError::RaiseAmbient { cap, source })?;
            }
        }
        // Its job (carrying permitted across the uid switch) is done; a
        // later setuid in a workload that does not execve must not keep caps.
        set_keepcaps(false)?;
        self.verify(ambient)
    }

    fn drop_bounding(&self) -> Result<(), CapsError> {
        for cap in 0..=self.last_cap {
            if self.sets.bounding.has(cap) {
                continue;
            }
            if let Err(source) = sys::prctl(libc::PR_CAPBSET_DROP, cap.into(), 0) {
                // Without CAP_SETPCAP even dropping an absent capability
                // fails; that one is already where we want it.
                if read_bounding(cap)? {
                    return Err(CapsError::DropBounding { cap, source });
                }
            }
        }
        Ok(())
    }

    fn verify(&self, ambient: CapSet) -> Result<CapsReport, CapsError> {
        let state = CapState::read_up_to(self.last_cap)?;
        let s = &self.sets;
        let checks = [
            (SetName::Bounding, state.bounding, s.bounding),
            (SetName::Effective, state.effective, s.effective),
            (SetName::Permitted, state.permitted, s.permitted),
            (SetName::Inheritable, state.inheritable, s.inheritable),
            (SetName::Ambient, state.ambient, ambient),
        ];
        for (set, have, allowed) in checks {
            let extra = have.difference(allowed);
            if !extra.is_empty() {
                return Err(CapsError::Verify { set, extra });
            }
        }
        Ok(CapsReport {
            kept: s.keep,
            bounding: state.bounding,
            effective: state.effective,
            permitted: state.permitted,
            inheritable: state.inheritable,
            ambient: state.ambient,
        })
    }
}

/// Clears the ambient set; a kernel without ambient capabilities (before
/// 4.3) is fine as long as none are to be raised.
fn clear_ambient(wanted: CapSet) -> Result<(), CapsError> {
    match sys::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && wanted.is_empty() => Ok(()),
        Err(source) => Err(CapsError::ClearAmbient { source }),
    }
}

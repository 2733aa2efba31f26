//! The capability policy: plain data, validated and compiled in the parent.

use crate::apply::{CompiledCaps, Sets};
use crate::cap::{CapSet, Capability, SetName, NAMESPACE_CAPS};
use crate::error::CapsError;
use crate::state::last_cap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which capabilities the workload keeps. The default keeps none.
///
/// `keep` fills every set; a set given explicitly replaces `keep` for that
/// set. The ambient set defaults, for a non-root workload, to the kept
/// capabilities that are permitted and inheritable (so they survive
/// `execve`), and to nothing for root.
///
/// ```
/// use nucleus_caps::{CapsPolicy, Capability};
/// let policy = CapsPolicy::from_toml_str(r#"keep = ["CAP_NET_BIND_SERVICE"]"#).unwrap();
/// assert_eq!(policy.keep, [Capability::NetBindService]);
/// policy.validate().unwrap();
/// assert!(CapsPolicy::from_toml_str(r#"keep = ["CAP_SYS_ADMIN"]"#).unwrap().validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsPolicy {
    /// Capabilities kept in every set.
    #[serde(default)]
    pub keep: Vec<Capability>,
    /// Permit keeping [`NAMESPACE_CAPS`].
    #[serde(default)]
    pub allow_namespace_caps: bool,
    /// The bounding set, instead of `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Vec<Capability>>,
    /// The effective set, instead of `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Vec<Capability>>,
    /// The permitted set, instead of `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Vec<Capability>>,
    /// The inheritable set, instead of `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Vec<Capability>>,
    /// The ambient set, instead of the default (see above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<Capability>>,
}

impl CapsPolicy {
    /// A policy keeping exactly `keep`.
    pub fn keep(keep: impl IntoIterator<Item = Capability>) -> Self {
        Self {
            keep: keep.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Parses a TOML policy file's text; unknown fields and unknown
    /// capability names are errors.
    pub fn from_toml_str(s: &str) -> Result<Self, CapsError> {
        toml::from_str(s).map_err(|source| CapsError::ParsePolicy { path: None, source })
    }

    /// Reads and parses a TOML policy file.
    pub fn from_file(path: &Path) -> Result<Self, CapsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CapsError::ReadPolicy {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| CapsError::ParsePolicy {
            path: Some(path.to_owned()),
            source,
        })
    }

    pub(crate) fn sets(&self) -> Sets {
        let keep: CapSet = self.keep.iter().collect();
        let or_keep =
            |set: &Option<Vec<Capability>>| set.as_ref().map_or(keep, |s| s.iter().collect());
        let permitted = or_keep(&self.permitted);
        let inheritable = or_keep(&self.inheritable);
        // The kernel raises an ambient capability only when it is both
        // permitted and inheritable.
        let ambient = self.ambient.as_ref().map_or(
            keep.intersection(permitted).intersection(inheritable),
            |s| s.iter().collect(),
        );
        Sets {
            keep,
            bounding: or_keep(&self.bounding),
            effective: or_keep(&self.effective),
            permitted,
            inheritable,
            ambient,
        }
    }

    /// Checks that the sets fit together (effective ⊆ permitted ⊆ bounding,
    /// inheritable ⊆ bounding, ambient ⊆ permitted ∩ inheritable) and that
    /// no [`NAMESPACE_CAPS`] are kept without `allow_namespace_caps`.
    pub fn validate(&self) -> Result<(), CapsError> {
        let s = self.sets();
        let pairs = [
            (
                SetName::Effective,
                s.effective,
                SetName::Permitted,
                s.permitted,
            ),
            (
                SetName::Permitted,
                s.permitted,
                SetName::Bounding,
                s.bounding,
            ),
            (
                SetName::Inheritable,
                s.inheritable,
                SetName::Bounding,
                s.bounding,
            ),
            (SetName::Ambient, s.ambient, SetName::Permitted, s.permitted),
            (
                SetName::Ambient,
                s.ambient,
                SetName::Inheritable,
                s.inheritable,
            ),
        ];
        for (set, members, of, limit) in pairs {
            let extra = members.difference(limit);
            if !extra.is_empty() {
                return Err(CapsError::NotSubset { set, of, extra });
            }
        }
        let ns = s.all().intersection(NAMESPACE_CAPS);
        if !ns.is_empty() && !self.allow_namespace_caps {
            return Err(CapsError::NamespaceCapsKept { caps: ns });
        }
        Ok(())
    }

    /// Validates and compiles the policy for this kernel, reading its last
    /// capability number from `/proc/sys/kernel/cap_last_cap` (or probing
    /// the bounding set when `/proc` is not there).
    ///
    /// Launch sequence: in the parent, before clone.
    pub fn compile(&self) -> Result<CompiledCaps, CapsError> {
        self.compile_for(last_cap())
    }

    /// Like [`CapsPolicy::compile`], for a kernel whose last capability is `last_cap`.
    ///
    /// ```
    /// use nucleus_caps::{CapsPolicy, Capability};
    /// let compiled = CapsPolicy::keep([Capability::Chown]).compile_for(40).unwrap();
    /// assert_eq!(compiled.bounding().bits(), 1);
    /// let newer = CapsPolicy::keep([Capability::CheckpointRestore]);
    /// assert!(newer.compile_for(37).is_err());
    /// ```
    pub fn compile_for(&self, last_cap: u8) -> Result<CompiledCaps, CapsError> {
        self.validate()?;
        let last_cap = last_cap.min(63);
        let sets = self.sets();
        let unsupported = sets.all().difference(CapSet::up_to(last_cap));
        if !unsupported.is_empty() {
            return Err(CapsError::UnsupportedCapability {
                caps: unsupported,
                last_cap,
            });
        }
        Ok(CompiledCaps::new(sets, self.ambient.is_some(), last_cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    #[test]
    fn default_drops_everything() {
        let p = CapsPolicy::from_toml_str("").unwrap();
        assert_eq!(p, CapsPolicy::default());
        let c = p.compile_for(40).unwrap();
        for set in [c.bounding(), c.effective(), c.permitted(), c.inheritable()] {
            assert!(set.is_empty());
        }
        assert!(c.ambient_for(false).is_empty());
    }

    #[test]
    fn parses_names_in_every_spelling() {
        let p = CapsPolicy::from_toml_str(
            r#"
            keep = ["CAP_NET_BIND_SERVICE", "cap_chown", "kill"]
            effective = ["CAP_NET_BIND_SERVICE"]
            "#,
        )
        .unwrap();
        assert_eq!(p.keep, [NetBindService, Chown, Kill]);
        assert_eq!(p.effective, Some(vec![NetBindService]));
        p.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_fields_and_names() {
        let err = CapsPolicy::from_toml_str(r#"kep = ["CAP_CHOWN"]"#).unwrap_err();
        assert!(matches!(err, CapsError::ParsePolicy { path: None, .. }));
        let err = CapsPolicy::from_toml_str(r#"keep = ["CAP_FLY"]"#).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("CAP_FLY"), "{chain}");
        assert!(CapsPolicy::from_toml_str(r#"keep = "CAP_CHOWN""#).is_err());
    }

    #[test]
    fn reads_files() {
        let dir = std::env::temp_dir().join(format!("nucleus-caps-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("caps.toml");
        std::fs::write(&path, "keep = [\"CAP_KILL\"]\n").unwrap();
        assert_eq!(CapsPolicy::from_file(&path).unwrap().keep, [Kill]);
        std::fs::write(&path, "keep = [\"CAP_KILL\"\n").unwrap();
        let err = CapsPolicy::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("caps.toml"), "{err}");
        let err = CapsPolicy::from_file(&dir.join("missing.toml")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validate_refuses_namespace_caps_unless_allowed() {
        for cap in [SysAdmin, SysPtrace] {
            let mut p = CapsPolicy::keep([cap]);
            match p.validate() {
                Err(CapsError::NamespaceCapsKept { caps }) => assert!(caps.contains(cap)),
                other => panic!("{other:?}"),
            }
            p.allow_namespace_caps = true;
            p.validate().unwrap();
        }
        let sneaky = CapsPolicy {
            bounding: Some(vec![SysAdmin]),
            ..CapsPolicy::default()
        };
        assert!(matches!(
            sneaky.validate(),
            Err(CapsError::NamespaceCapsKept { .. })
        ));
    }

    #[test]
    fn validate_checks_set_relations() {
        let base = CapsPolicy::keep([Chown, Kill]);
        let cases = [
            (
                CapsPolicy {
                    effective: Some(vec![Setuid]),
                    ..base.clone()
                },
                SetName::Effective,
                SetName::Permitted,
            ),
            (
                CapsPolicy {
                    bounding: Some(vec![Chown]),
                    ..base.clone()
                },
                SetName::Permitted,
                SetName::Bounding,
            ),
            (
                CapsPolicy {
                    inheritable: Some(vec![Fowner]),
                    permitted: Some(vec![]),
                    effective: Some(vec![]),
                    ..base.clone()
                },
                SetName::Inheritable,
                SetName::Bounding,
            ),
            (
                CapsPolicy {
                    ambient: Some(vec![Setgid]),
                    ..base.clone()
                },
                SetName::Ambient,
                SetName::Permitted,
            ),
            (
                CapsPolicy {
                    inheritable: Some(vec![Chown]),
                    ambient: Some(vec![Kill]),
                    ..base.clone()
                },
                SetName::Ambient,
                SetName::Inheritable,
            ),
        ];
        for (p, set, of) in cases {
            match p.validate() {
                Err(CapsError::NotSubset {
                    set: s,
                    of: o,
                    extra,
                }) => {
                    assert_eq!((s, o), (set, of), "{p:?}");
                    assert!(!extra.is_empty());
                }
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn compile_masks() {
        let p = CapsPolicy {
            keep: vec![NetBindService, Chown],
            effective: Some(vec![NetBindService]),
            ambient: Some(vec![]),
            ..CapsPolicy::default()
        };
        let c = p.compile_for(40).unwrap();
        assert_eq!(c.keep().bits(), (1 << 10) | 1);
        assert_eq!(c.bounding().bits(), (1 << 10) | 1);
        assert_eq!(c.permitted().bits(), (1 << 10) | 1);
        assert_eq!(c.inheritable().bits(), (1 << 10) | 1);
        assert_eq!(c.effective().bits(), 1 << 10);
        assert!(c.ambient_for(false).is_empty());
        assert_eq!(c.last_cap(), 40);
        let plain = CapsPolicy::keep([NetBindService]).compile_for(40).unwrap();
        assert_eq!(plain.ambient_for(false).bits(), 1 << 10);
        assert!(plain.ambient_for(true).is_empty());
        assert!(matches!(
            CapsPolicy::keep([Bpf]).compile_for(38),
            Err(CapsError::UnsupportedCapability { last_cap: 38, .. })
        ));
    }

    #[test]
    fn default_ambient_is_permitted_and_inheritable_keep() {
        let p = CapsPolicy {
            keep: vec![Chown, Kill],
            inheritable: Some(vec![Kill]),
            ..CapsPolicy::default()
        };
        p.validate().unwrap();
        let c = p.compile_for(40).unwrap();
        assert_eq!(c.ambient_for(false).iter().collect::<Vec<_>>(), [Kill]);
    }

    #[test]
    fn compile_reads_this_kernel() {
        let c = CapsPolicy::default().compile().unwrap();
        assert!(c.last_cap() >= 36, "last_cap {}", c.last_cap());
    }

    #[test]
    fn serializes_back() {
        let p = CapsPolicy::keep([NetBindService]);
        let text = toml::to_string(&p).unwrap();
        assert_eq!(CapsPolicy::from_toml_str(&text).unwrap(), p);
        assert!(text.contains("CAP_NET_BIND_SERVICE"));
    }
}

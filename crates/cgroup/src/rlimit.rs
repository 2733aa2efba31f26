//! Per-process resource limits (`setrlimit(2)`): `--rlimit NAME=SOFT[:HARD]`,
//! `--cpu-time`, and safe defaults (no core dumps).
//!
//! ```
//! use nucleus_cgroup::rlimit::{Resource, Rlimit, RlimitPolicy};
//! let mut policy = RlimitPolicy::default(); // core=0:0, nofile=1024:65536
//! policy.set("nofile=256".parse::<Rlimit>().unwrap());
//! policy.set(nucleus_cgroup::rlimit::cpu_time(10));
//! policy.validate().unwrap();
//! assert_eq!(policy.get(Resource::Nofile).unwrap().hard, 256);
//! ```

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;
use crate::sys;
pub use crate::types::Resource;

/// `RLIM_INFINITY`: no limit.
pub const INFINITY: u64 = u64::MAX;

impl FromStr for Resource {
    type Err = CgroupError;

    /// Accepts `nofile`, `NOFILE`, `RLIMIT_NOFILE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let short = lower.strip_prefix("rlimit_").unwrap_or(&lower);
        Resource::ALL
            .iter()
            .copied()
            .find(|r| r.name() == short)
            .ok_or_else(|| CgroupError::UnknownRlimit { name: s.to_owned() })
    }
}

/// One limit: soft and hard values, [`INFINITY`] for none.
///
/// `FromStr` takes `NAME=SOFT[:HARD]`; a missing HARD equals SOFT; values
/// are numbers (size suffixes K/M/G/T allowed), or `unlimited`/`infinity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// Which resource.
    pub resource: Resource,
    /// Soft limit (the one enforced; the process may raise it up to hard).
    pub soft: u64,
    /// Hard limit (the ceiling).
    pub hard: u64,
}

impl Rlimit {
    /// A limit with the same soft and hard value.
    pub fn fixed(resource: Resource, value: u64) -> Self {
        Rlimit {
            resource,
            soft: value,
            hard: value,
        }
    }
}

fn parse_value(s: &str) -> Result<u64, &'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "unlimited" | "infinity" | "inf" => Ok(INFINITY),
        _ => crate::parse::parse_size_allow_zero(s),
    }
}

impl FromStr for Rlimit {
    type Err = CgroupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| CgroupError::InvalidRlimit {
            input: s.to_owned(),
            reason,
        };
        let (name, values) = s.split_once('=').ok_or_else(|| invalid("missing '='"))?;
        let resource: Resource = name.parse()?;
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (parse_value(soft), parse_value(hard)),
            None => (parse_value(values), parse_value(values)),
        };
        let rl = Rlimit {
            resource,
            soft: soft.map_err(invalid)?,
            hard: hard.map_err(invalid)?,
        };
        rl.validate()?;
        Ok(rl)
    }
}

impl Rlimit {
    /// Soft must not exceed hard.
    pub fn validate(&self) -> Result<(), CgroupError> {
        if self.soft > self.hard {
            return Err(CgroupError::RlimitSoftAboveHard {
                resource: self.resource,
                soft: self.soft,
                hard: self.hard,
            });
        }
        Ok(())
    }
}

/// `--cpu-time SECONDS`: RLIMIT_CPU with SIGXCPU at `seconds` and SIGKILL
/// one second later. Zero is raised to one (the kernel treats 0 as 1).
pub fn cpu_time(seconds: u64) -> Rlimit {
    let soft = seconds.max(1);
    Rlimit {
        resource: Resource::Cpu,
        soft,
        hard: soft.saturating_add(1),
    }
}

/// The rlimits for a sandbox.
///
/// The default is `core=0:0` (no core dumps: they would write sandbox memory
/// to wherever the host's `core_pattern` points) and `nofile=1024:65536`
/// (a conventional soft limit; a hard cap that programs raising their soft
/// limit to the hard one — Go does — can use without making "close every
/// fd" loops slow, as `nofile=infinity`-style limits do). Nothing else is
/// set by default: `nproc` counts host-wide per uid, so the pids cgroup limit
/// is the right cap for processes.
///
/// Hard limits are clamped to the hard limit the process already has when
/// they are applied: lowering is always allowed, raising needs
/// `CAP_SYS_RESOURCE` in the initial user namespace, which a sandbox child in
/// its own user namespace never has. A sandbox never gets more than the
/// runner has; [`effective`](Self::effective) tells the parent what the child
/// will get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitPolicy {
    /// The limits, applied in order, at most one per resource.
    pub limits: Vec<Rlimit>,
}

impl Default for RlimitPolicy {
    fn default() -> Self {
        RlimitPolicy {
            limits: vec![
                Rlimit::fixed(Resource::Core, 0),
                Rlimit {
                    resource: Resource::Nofile,
                    soft: 1024,
                    hard: 65536,
                },
            ],
        }
    }
}

impl RlimitPolicy {
    /// A policy that sets nothing.
    pub fn none() -> Self {
        RlimitPolicy { limits: Vec::new() }
    }

    /// Sets `rl`, replacing an earlier limit on the same resource.
    pub fn set(&mut self, rl: Rlimit) {
        match self.limits.iter_mut().find(|l| l.resource == rl.resource) {
            Some(slot) => *slot = rl,
            None => self.limits.push(rl),
        }
    }

    /// The limit on `resource`, if set.
    pub fn get(&self, resource: Resource) -> Option<&Rlimit> {
        self.limits.iter().find(|l| l.resource == resource)
    }

    /// Checks soft <= hard and that no resource is listed twice. Parent,
    /// before fork.
    pub fn validate(&self) -> Result<(), CgroupError> {
        for (i, rl) in self.limits.iter().enumerate() {
            rl.validate()?;
            if self.limits[..i].iter().any(|l| l.resource == rl.resource) {
                return Err(CgroupError::DuplicateRlimit {
                    resource: rl.resource,
                });
            }
        }
        Ok(())
    }

    /// What [`apply`](Self::apply) will set in a child of this process:
    /// every limit clamped to the current hard limit. Parent, for the report.
    pub fn effective(&self) -> Result<Vec<Rlimit>, CgroupError> {
        self.limits
            .iter()
            .map(|rl| {
                let (_, cur_hard) =
                    sys::getrlimit(rl.resource.raw()).map_err(|source| CgroupError::Getrlimit {
                        resource: rl.resource,
                        source,
                    })?;
                Ok(clamp(rl, cur_hard))
            })
            .collect()
    }

    /// Sets every limit on the calling process.
    ///
    /// Runs in the sandbox child between clone and exec (launch step "rlimits",
    /// after the root is built, before dropping privileges): only
    /// `getrlimit`/`setrlimit` calls, no allocation, no logging. The error
    /// carries the errno for the parent.
    ///
    /// ```no_run
    /// nucleus_cgroup::rlimit::RlimitPolicy::default().apply().unwrap();
    /// ```
    pub fn apply(&self) -> Result<(), CgroupError> {
        for rl in &self.limits {
            let raw = rl.resource.raw();
            let (_, cur_hard) = sys::getrlimit(raw).map_err(|source| CgroupError::Getrlimit {
                resource: rl.resource,
                source,
            })?;
            let eff = clamp(rl, cur_hard);
            sys::setrlimit(raw, eff.soft, eff.hard).map_err(|source| CgroupError::Setrlimit {
                resource: rl.resource,
                source,
            })?;
        }
        Ok(())
    }
}

fn clamp(rl: &Rlimit, cur_hard: u64) -> Rlimit {
    let hard = rl.hard.min(cur_hard);
    Rlimit {
        resource: rl.resource,
        soft: rl.soft.min(hard),
        hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        for r in Resource::ALL {
            assert_eq!(r.name().parse::<Resource>().unwrap(), *r);
            let upper = format!("RLIMIT_{}", r.name().to_ascii_uppercase());
            assert_eq!(upper.parse::<Resource>().unwrap(), *r);
        }
        assert_eq!(Resource::ALL.len(), 15);
        assert!(matches!(
            "nofiles".parse::<Resource>(),
            Err(CgroupError::UnknownRlimit { .. })
        ));
        assert_eq!(Resource::Core.raw(), libc::RLIMIT_CORE as libc::c_int);
    }

    #[test]
    fn rlimit_parse() {
        let r: Rlimit = "nofile=16".parse().unwrap();
        assert_eq!(r, Rlimit::fixed(Resource::Nofile, 16));
        let r: Rlimit = "RLIMIT_CORE=0:unlimited".parse().unwrap();
        assert_eq!((r.soft, r.hard), (0, INFINITY));
        let r: Rlimit = "fsize=1M:2M".parse().unwrap();
        assert_eq!((r.soft, r.hard), (1 << 20, 2 << 20));
        let r: Rlimit = "stack=infinity".parse().unwrap();
        assert_eq!((r.soft, r.hard), (INFINITY, INFINITY));
        for bad in [
            "nofile",
            "nofile=",
            "nofile=-1",
            "nofile=x",
            "bogus=1",
            "nofile=10:5",
            "nofile=1:2:3",
        ] {
            assert!(bad.parse::<Rlimit>().is_err(), "{bad}");
        }
        assert!(matches!(
            "bogus=1".parse::<Rlimit>(),
            Err(CgroupError::UnknownRlimit { .. })
        ));
    }

    #[test]
    fn policy_defaults_and_set() {
        let mut p = RlimitPolicy::default();
        assert_eq!(
            p.get(Resource::Core),
            Some(&Rlimit::fixed(Resource::Core, 0))
        );
        p.set(Rlimit::fixed(Resource::Core, 4096));
        assert_eq!(p.limits.len(), 2);
        assert_eq!(p.get(Resource::Core).unwrap().soft, 4096);
        p.validate().unwrap();
        p.limits.push(Rlimit::fixed(Resource::Core, 1));
        assert!(matches!(
            p.validate(),
            Err(CgroupError::DuplicateRlimit { .. })
        ));
        assert_eq!(
            cpu_time(10),
            Rlimit {
                resource: Resource::Cpu,
                soft: 10,
                hard: 11
            }
        );
        assert_eq!(cpu_time(0).soft, 1);
    }

    #[test]
    fn clamping() {
        let rl = Rlimit {
            resource: Resource::Nofile,
            soft: 1024,
            hard: 65536,
        };
        assert_eq!(
            clamp(&rl, 4096),
            Rlimit {
                resource: Resource::Nofile,
                soft: 1024,
                hard: 4096
            }
        );
        assert_eq!(
            clamp(&rl, 512),
            Rlimit {
                resource: Resource::Nofile,
                soft: 512,
                hard: 512
            }
        );
        assert_eq!(clamp(&rl, INFINITY), rl);
        let eff = RlimitPolicy::default().effective().unwrap();
        assert_eq!(eff[0], Rlimit::fixed(Resource::Core, 0));
    }

    #[test]
    fn policy_serde() {
        let p: RlimitPolicy =
            serde_json::from_str(r#"{"limits":[{"resource":"nofile","soft":10,"hard":20}]}"#)
                .unwrap();
        assert_eq!(
            p.limits[0],
            Rlimit {
                resource: Resource::Nofile,
                soft: 10,
                hard: 20
            }
        );
        assert!(serde_json::from_str::<RlimitPolicy>(r#"{"limits":[],"x":1}"#).is_err());
    }
}

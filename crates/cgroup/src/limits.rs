//! The plain-data limits policy: what to cap, and what to do when a limit
//! cannot be set. What was applied is in `applied.rs`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;
use crate::parse::{self, PIDS_MAX};
use crate::types::LimitKind;

/// Resource limits for one sandbox. Every field is optional; an empty
/// `Limits` asks for no limit (a cgroup may still be created to account
/// usage and to kill the whole sandbox).
///
/// Sizes in config files may be numbers of bytes or strings (`"512M"`).
///
/// ```
/// use nucleus_cgroup::{parse_size, Limits};
/// let limits = Limits {
///     memory: Some(parse_size("512M").unwrap()),
///     pids: Some(256),
///     cpus: Some(1.0),
///     ..Limits::default()
/// };
/// limits.validate_with(2).unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory limit in bytes (`memory.max` / `memory.limit_in_bytes`).
    #[serde(
        default,
        deserialize_with = "parse::de::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<u64>,
    /// Memory plus swap, in bytes, as Docker's `--memory-swap`: must be at
    /// least `memory`; equal to `memory` means no swap. v2 writes the
    /// difference to `memory.swap.max`, v1 writes it to
    /// `memory.memsw.limit_in_bytes`. Requires `memory`. `None` leaves swap
    /// as the kernel has it.
    #[serde(
        default,
        deserialize_with = "parse::de::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_swap: Option<u64>,
    /// CPU bandwidth in CPUs (`1.5` = one and a half cores), as a CFS quota
    /// over a 100 ms period (`cpu.max` / `cpu.cfs_quota_us`).
    #[serde(
        default,
        deserialize_with = "parse::de::opt_cpus",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpus: Option<f64>,
    /// Relative CPU weight, 1..=10000, default 100 (`cpu.weight`; on v1
    /// converted to `cpu.shares`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u64>,
    /// Maximum number of tasks (processes and threads) (`pids.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Block I/O throttles per device (`io.max` / `blkio.throttle.*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_max: Vec<IoMax>,
}

impl Limits {
    /// True when no limit is asked.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.cpus.is_none()
            && self.cpu_weight.is_none()
            && self.pids.is_none()
            && self.io_max.is_empty()
    }

    /// Checks every value against the CPUs online on this machine. Runs in
    /// the parent, before anything is created.
    pub fn validate(&self) -> Result<(), CgroupError> {
        self.validate_with(parse::online_cpus())
    }

    /// [`validate`](Self::validate) with an explicit number of online CPUs.
    pub fn validate_with(&self, online_cpus: usize) -> Result<(), CgroupError> {
        let invalid = |limit, reason| Err(CgroupError::InvalidLimit { limit, reason });
        if self.memory == Some(0) {
            return invalid(LimitKind::Memory, "must be greater than zero");
        }
        if let Some(swap) = self.memory_swap {
            match self.memory {
                None => return invalid(LimitKind::MemorySwap, "needs a memory limit too"),
                Some(mem) if swap < mem => {
                    return invalid(
                        LimitKind::MemorySwap,
                        "is memory plus swap and must be at least the memory limit",
                    )
                }
                Some(_) => {}
            }
        }
        if let Some(cpus) = self.cpus {
            parse::check_cpus(cpus, online_cpus)?;
        }
        if let Some(w) = self.cpu_weight {
            if !(1..=10_000).contains(&w) {
                return invalid(LimitKind::CpuWeight, "must be between 1 and 10000");
            }
        }
        match self.pids {
            Some(0) => return invalid(LimitKind::Pids, "must be greater than zero"),
            Some(p) if p > PIDS_MAX => return invalid(LimitKind::Pids, "must be at most 4194304"),
            _ => {}
        }
        for io in &self.io_max {
            io.validate()?;
        }
        Ok(())
    }

    /// The limits asked, in the order they are written.
    pub fn kinds(&self) -> Vec<LimitKind> {
        let mut kinds = Vec::new();
        let mut push = |asked: bool, kind| {
            if asked {
                kinds.push(kind)
            }
        };
        push(self.memory.is_some(), LimitKind::Memory);
        push(self.memory_swap.is_some(), LimitKind::MemorySwap);
        push(self.cpus.is_some(), LimitKind::Cpus);
        push(self.cpu_weight.is_some(), LimitKind::CpuWeight);
        push(self.pids.is_some(), LimitKind::Pids);
        push(!self.io_max.is_empty(), LimitKind::IoMax);
        kinds
    }
}

/// One block device's I/O throttle. `FromStr` takes the kernel's `io.max`
/// line: `8:0 rbps=1M wbps=1048576 riops=100 wiops=100` (bps values accept
/// size suffixes; separators may be spaces or commas).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoMax {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Read bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbps: Option<u64>,
    /// Write bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wbps: Option<u64>,
    /// Read operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub riops: Option<u64>,
    /// Write operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wiops: Option<u64>,
}

impl IoMax {
    /// Checks that at least one throttle is set and none is zero.
    pub fn validate(&self) -> Result<(), CgroupError> {
        let values = [self.rbps, self.wbps, self.riops, self.wiops];
        let reason = if values.iter().all(Option::is_none) {
            "sets no limit"
        } else if values.contains(&Some(0)) {
            "limits must be greater than zero"
        } else {
            return Ok(());
        };
        Err(CgroupError::InvalidLimit {
            limit: LimitKind::IoMax,
            reason,
        })
    }

    /// The `io.max` line for cgroup v2, e.g. `8:0 rbps=1048576 wiops=100`.
    pub fn v2_line(&self) -> String {
        let mut line = format!("{}:{}", self.major, self.minor);
        for (key, value) in self.pairs() {
            if let Some(v) = value {
                line.push_str(&format!(" {key}={v}"));
            }
        }
        line
    }

    /// `(key, value)` pairs in kernel order.
    pub(crate) fn pairs(&self) -> [(&'static str, Option<u64>); 4] {
        [
            ("rbps", self.rbps),
            ("wbps", self.wbps),
            ("riops", self.riops),
            ("wiops", self.wiops),
        ]
    }
}

impl FromStr for IoMax {
    type Err = CgroupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| CgroupError::InvalidIoMax {
            input: s.to_owned(),
            reason,
        };
        let mut parts = s.split([' ', ',']).filter(|p| !p.is_empty());
        let dev = parts.next().ok_or_else(|| invalid("empty"))?;
        let (major, minor) = dev
            .split_once(':')
            .ok_or_else(|| invalid("device must be MAJ:MIN"))?;
        let mut io = IoMax {
            major: major.parse().map_err(|_| invalid("bad device major"))?,
            minor: minor.parse().map_err(|_| invalid("bad device minor"))?,
            ..IoMax::default()
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| invalid("expected KEY=VALUE"))?;
            let value = parse::parse_size_allow_zero(value).map_err(invalid)?;
            let slot = match key {
                "rbps" => &mut io.rbps,
                "wbps" => &mut io.wbps,
                "riops" => &mut io.riops,
                "wiops" => &mut io.wiops,
                _ => return Err(invalid("unknown key (rbps, wbps, riops, wiops)")),
            };
            *slot = Some(value);
        }
        io.validate().map_err(|e| match e {
            CgroupError::InvalidLimit { reason, .. } => invalid(reason),
            other => other,
        })?;
        Ok(io)
    }
}

/// What to do when an asked limit cannot be set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitMode {
    /// Fail the launch (the default; fail closed).
    #[default]
    Required,
    /// Run anyway and report what was not applied (`--best-effort-limits`).
    BestEffort,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_kinds() {
        assert!(Limits::default().is_empty());
        let l = Limits {
            memory: Some(1),
            pids: Some(3),
            ..Limits::default()
        };
        assert!(!l.is_empty());
        assert_eq!(l.kinds(), vec![LimitKind::Memory, LimitKind::Pids]);
    }

    #[test]
    fn validate_ranges() {
        let ok = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(64 << 20),
            cpus: Some(0.5),
            cpu_weight: Some(100),
            pids: Some(32),
            io_max: vec!["8:0 rbps=1M".parse().unwrap()],
        };
        ok.validate_with(2).unwrap();
        let bad = [
            Limits {
                memory: Some(0),
                ..Limits::default()
            },
            Limits {
                memory_swap: Some(1),
                ..Limits::default()
            },
            Limits {
                memory: Some(10),
                memory_swap: Some(5),
                ..Limits::default()
            },
            Limits {
                cpus: Some(0.0),
                ..Limits::default()
            },
            Limits {
                cpus: Some(-1.0),
                ..Limits::default()
            },
            Limits {
                cpus: Some(f64::NAN),
                ..Limits::default()
            },
            Limits {
                cpus: Some(3.0),
                ..Limits::default()
            },
            Limits {
                cpu_weight: Some(0),
                ..Limits::default()
            },
            Limits {
                cpu_weight: Some(10_001),
                ..Limits::default()
            },
            Limits {
                pids: Some(0),
                ..Limits::default()
            },
            Limits {
                pids: Some(PIDS_MAX + 1),
                ..Limits::default()
            },
            Limits {
                io_max: vec![IoMax {
                    major: 8,
                    ..IoMax::default()
                }],
                ..Limits::default()
            },
        ];
        for l in bad {
            assert!(l.validate_with(2).is_err(), "{l:?}");
        }
    }

    #[test]
    fn io_max_parse() {
        let io: IoMax = "8:16 rbps=1M,wiops=100".parse().unwrap();
        assert_eq!(io.major, 8);
        assert_eq!(io.minor, 16);
        assert_eq!(io.rbps, Some(1 << 20));
        assert_eq!(io.wiops, Some(100));
        assert_eq!(io.v2_line(), "8:16 rbps=1048576 wiops=100");
        for bad in [
            "",
            "8",
            "8:x rbps=1",
            "8:0",
            "8:0 foo=1",
            "8:0 rbps=0",
            "8:0 rbps",
        ] {
            assert!(bad.parse::<IoMax>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_accepts_strings_and_rejects_unknown() {
        let l: Limits = serde_json::from_str(
            r#"{"memory":"512M","cpus":"1.5","pids":10,"memory_swap":1073741824}"#,
        )
        .unwrap();
        assert_eq!(l.memory, Some(512 << 20));
        assert_eq!(l.cpus, Some(1.5));
        assert_eq!(l.memory_swap, Some(1 << 30));
        assert!(serde_json::from_str::<Limits>(r#"{"memroy":1}"#).is_err());
        let back: Limits = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        let mode: LimitMode = serde_json::from_str(r#""best-effort""#).unwrap();
        assert_eq!(mode, LimitMode::BestEffort);
    }
}

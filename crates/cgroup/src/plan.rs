//! Which file each limit is written to, per cgroup version. Pure.

use crate::limits::Limits;
use crate::types::LimitKind;

/// CFS period used for `--cpus`, in microseconds (100 ms, the kernel default).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// A cgroup version, for planning writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ver {
    V1,
    V2,
}

/// The controller a limit needs, by version.
pub(crate) fn controller(kind: LimitKind, ver: Ver) -> &'static str {
    match (kind, ver) {
        (LimitKind::Memory | LimitKind::MemorySwap, _) => "memory",
        (LimitKind::Cpus | LimitKind::CpuWeight, _) => "cpu",
        (LimitKind::Pids, _) => "pids",
        (LimitKind::IoMax, Ver::V1) => "blkio",
        (LimitKind::IoMax, Ver::V2) => "io",
    }
}

/// CFS quota for `cpus`, at least the kernel's 1 ms minimum.
pub(crate) fn cpu_quota_us(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

/// v2 `cpu.weight` (1..=10000, default 100) to v1 `cpu.shares` (default
/// 1024), linearly as systemd does, within the kernel's 2..=262144.
pub(crate) fn weight_to_shares(weight: u64) -> u64 {
    (weight.saturating_mul(1024) / 100).clamp(2, 262_144)
}

/// `(file, value)` writes for one limit, in order. Empty when not asked.
pub(crate) fn writes(kind: LimitKind, l: &Limits, ver: Ver) -> Vec<(&'static str, String)> {
    match ver {
        Ver::V2 => writes_v2(kind, l),
        Ver::V1 => writes_v1(kind, l),
    }
}

fn writes_v2(kind: LimitKind, l: &Limits) -> Vec<(&'static str, String)> {
    match kind {
        LimitKind::Memory => l
            .memory
            .map(|m| ("memory.max", m.to_string()))
            .into_iter()
            .collect(),
        LimitKind::MemorySwap => match (l.memory, l.memory_swap) {
            (Some(m), Some(s)) => vec![("memory.swap.max", s.saturating_sub(m).to_string())],
            _ => Vec::new(),
        },
        LimitKind::Cpus => l
            .cpus
            .map(|c| ("cpu.max", format!("{} {CPU_PERIOD_US}", cpu_quota_us(c))))
            .into_iter()
            .collect(),
        LimitKind::CpuWeight => l
            .cpu_weight
            .map(|w| ("cpu.weight", w.to_string()))
            .into_iter()
            .collect(),
        LimitKind::Pids => l
            .pids
            .map(|p| ("pids.max", p.to_string()))
            .into_iter()
            .collect(),
        LimitKind::IoMax => l.io_max.iter().map(|io| ("io.max", io.v2_line())).collect(),
    }
}

// v1 memory: the limit applies to our own directory whatever the parent's
// `memory.use_hierarchy` says (always 1 since Linux 5.16); with no child
// cgroups below ours, the kernel's OOM killer picks inside the sandbox.
fn writes_v1(kind: LimitKind, l: &Limits) -> Vec<(&'static str, String)> {
    match kind {
        LimitKind::Memory => l
            .memory
            .map(|m| ("memory.limit_in_bytes", m.to_string()))
            .into_iter()
            .collect(),
        // memsw must be written after limit_in_bytes: the kernel rejects
        // memsw below the memory limit.
        LimitKind::MemorySwap => l
            .memory_swap
            .map(|s| ("memory.memsw.limit_in_bytes", s.to_string()))
            .into_iter()
            .collect(),
        LimitKind::Cpus => match l.cpus {
            Some(c) => vec![
                ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", cpu_quota_us(c).to_string()),
            ],
            None => Vec::new(),
        },
        LimitKind::CpuWeight => l
            .cpu_weight
            .map(|w| ("cpu.shares", weight_to_shares(w).to_string()))
            .into_iter()
            .collect(),
        LimitKind::Pids => l
            .pids
            .map(|p| ("pids.max", p.to_string()))
            .into_iter()
            .collect(),
        LimitKind::IoMax => {
            let files = [
                "blkio.throttle.read_bps_device",
                "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device",
                "blkio.throttle.write_iops_device",
            ];
            let mut out = Vec::new();
            for io in &l.io_max {
                for (file, (_, value)) in files.iter().zip(io.pairs()) {
                    if let Some(v) = value {
                        out.push((*file, format!("{}:{} {v}", io.major, io.minor)));
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IoMax;

    fn all() -> Limits {
        Limits {
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            cpus: Some(0.5),
            cpu_weight: Some(100),
            pids: Some(32),
            io_max: vec![IoMax {
                major: 8,
                minor: 0,
                rbps: Some(1 << 20),
                wiops: Some(10),
                ..IoMax::default()
            }],
        }
    }

    #[test]
    fn v2_files() {
        let l = all();
        let w = |k| writes(k, &l, Ver::V2);
        assert_eq!(
            w(LimitKind::Memory),
            vec![("memory.max", "67108864".to_owned())]
        );
        assert_eq!(
            w(LimitKind::MemorySwap),
            vec![("memory.swap.max", "33554432".to_owned())]
        );
        assert_eq!(
            w(LimitKind::Cpus),
            vec![("cpu.max", "50000 100000".to_owned())]
        );
        assert_eq!(
            w(LimitKind::CpuWeight),
            vec![("cpu.weight", "100".to_owned())]
        );
        assert_eq!(w(LimitKind::Pids), vec![("pids.max", "32".to_owned())]);
        assert_eq!(
            w(LimitKind::IoMax),
            vec![("io.max", "8:0 rbps=1048576 wiops=10".to_owned())]
        );
    }

    #[test]
    fn v1_files() {
        let l = all();
        let w = |k| writes(k, &l, Ver::V1);
        assert_eq!(
            w(LimitKind::Memory),
            vec![("memory.limit_in_bytes", "67108864".to_owned())]
        );
        assert_eq!(
            w(LimitKind::MemorySwap),
            vec![("memory.memsw.limit_in_bytes", "100663296".to_owned())]
        );
        assert_eq!(
            w(LimitKind::Cpus),
            vec![
                ("cpu.cfs_period_us", "100000".to_owned()),
                ("cpu.cfs_quota_us", "50000".to_owned())
            ]
        );
        assert_eq!(
            w(LimitKind::CpuWeight),
            vec![("cpu.shares", "1024".to_owned())]
        );
        assert_eq!(
            w(LimitKind::IoMax),
            vec![
                ("blkio.throttle.read_bps_device", "8:0 1048576".to_owned()),
                ("blkio.throttle.write_iops_device", "8:0 10".to_owned())
            ]
        );
        assert!(writes(LimitKind::Pids, &Limits::default(), Ver::V1).is_empty());
    }

    #[test]
    fn conversions() {
        assert_eq!(cpu_quota_us(1.5), 150_000);
        assert_eq!(cpu_quota_us(0.01), 1000);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(10_000), 102_400);
        assert_eq!(controller(LimitKind::IoMax, Ver::V1), "blkio");
        assert_eq!(controller(LimitKind::IoMax, Ver::V2), "io");
    }
}

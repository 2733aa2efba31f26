//! Reading what the sandbox used, and what hit its limits.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs::{self, keyed};

/// Resource usage of the sandbox's cgroup. Read it after the workload ends
/// and before [`Cgroup::remove`](crate::Cgroup::remove). Fields the kernel
/// does not provide are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Peak memory in bytes (`memory.peak` / `memory.max_usage_in_bytes`).
    pub memory_peak: Option<u64>,
    /// Memory in use now, in bytes.
    pub memory_current: Option<u64>,
    /// Times memory hit the limit (`memory.events` `max` / v1 `memory.failcnt`).
    pub memory_limit_hits: Option<u64>,
    /// Processes killed by the OOM killer inside the cgroup (`memory.events`
    /// `oom_kill` / v1 `memory.oom_control` `oom_kill`, Linux 4.13+).
    pub oom_kills: Option<u64>,
    /// The kernel killed something in the sandbox for memory: `oom_kills > 0`;
    /// on a v1 kernel without the `oom_kill` counter, `memory_limit_hits > 0`.
    pub oom_killed: bool,
    /// CPU time, user plus system, microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// User CPU time, microseconds.
    pub cpu_user_usec: Option<u64>,
    /// System CPU time, microseconds.
    pub cpu_system_usec: Option<u64>,
    /// Periods in which the CPU quota throttled the sandbox.
    pub cpu_throttled_periods: Option<u64>,
    /// Time throttled, microseconds.
    pub cpu_throttled_usec: Option<u64>,
    /// Tasks now.
    pub pids_current: Option<u64>,
    /// Peak tasks (`pids.peak`, where the kernel has it).
    pub pids_peak: Option<u64>,
    /// Forks refused by the pids limit (`pids.events` `max`).
    pub pids_limit_hits: Option<u64>,
    /// `pids_limit_hits > 0`: the sandbox ran into `--pids`.
    pub pids_limit_hit: bool,
}

impl Usage {
    pub(crate) fn finish(&mut self) {
        self.oom_killed = match self.oom_kills {
            Some(n) => n > 0,
            None => self.memory_limit_hits.is_some_and(|n| n > 0),
        };
        self.pids_limit_hit = self.pids_limit_hits.is_some_and(|n| n > 0);
    }

    pub(crate) fn read_v2_memory(&mut self, dir: &Path) {
        self.memory_peak = fs::read_u64(&dir.join("memory.peak"));
        self.memory_current = fs::read_u64(&dir.join("memory.current"));
        if let Some(ev) = fs::read_opt(&dir.join("memory.events")) {
            self.memory_limit_hits = keyed(&ev, "max");
            self.oom_kills = keyed(&ev, "oom_kill");
        }
    }

    pub(crate) fn read_v1_memory(&mut self, dir: &Path) {
        self.memory_peak = fs::read_u64(&dir.join("memory.max_usage_in_bytes"));
        self.memory_current = fs::read_u64(&dir.join("memory.usage_in_bytes"));
        self.memory_limit_hits = fs::read_u64(&dir.join("memory.failcnt"));
        self.oom_kills =
            fs::read_opt(&dir.join("memory.oom_control")).and_then(|t| keyed(&t, "oom_kill"));
    }

    /// v2 `cpu.stat` (present in every v2 cgroup, controller or not).
    pub(crate) fn read_v2_cpu(&mut self, dir: &Path) {
        if let Some(st) = fs::read_opt(&dir.join("cpu.stat")) {
            self.cpu_usage_usec = keyed(&st, "usage_usec");
            self.cpu_user_usec = keyed(&st, "user_usec");
            self.cpu_system_usec = keyed(&st, "system_usec");
            self.cpu_throttled_periods = self.cpu_throttled_periods.or(keyed(&st, "nr_throttled"));
            self.cpu_throttled_usec = self.cpu_throttled_usec.or(keyed(&st, "throttled_usec"));
        }
    }

    pub(crate) fn read_v1_cpuacct(&mut self, dir: &Path) {
        let us = |f: &str| fs::read_u64(&dir.join(f)).map(|ns| ns / 1000);
        self.cpu_usage_usec = us("cpuacct.usage");
        self.cpu_user_usec = us("cpuacct.usage_user");
        self.cpu_system_usec = us("cpuacct.usage_sys");
        if self.cpu_user_usec.is_none() {
            // cpuacct.stat is in USER_HZ ticks, 100 per second on Linux.
            if let Some(st) = fs::read_opt(&dir.join("cpuacct.stat")) {
                self.cpu_user_usec = keyed(&st, "user").map(|t| t * 10_000);
                self.cpu_system_usec = keyed(&st, "system").map(|t| t * 10_000);
            }
        }
    }

    pub(crate) fn read_v1_cpu(&mut self, dir: &Path) {
        if let Some(st) = fs::read_opt(&dir.join("cpu.stat")) {
            self.cpu_throttled_periods = keyed(&st, "nr_throttled");
            self.cpu_throttled_usec = keyed(&st, "throttled_time").map(|ns| ns / 1000);
        }
    }

    /// Same files on v1 and v2.
    pub(crate) fn read_pids(&mut self, dir: &Path) {
        self.pids_current = fs::read_u64(&dir.join("pids.current"));
        self.pids_peak = fs::read_u64(&dir.join("pids.peak"));
        self.pids_limit_hits =
            fs::read_opt(&dir.join("pids.events")).and_then(|t| keyed(&t, "max"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_flags() {
        let mut u = Usage {
            oom_kills: Some(0),
            memory_limit_hits: Some(5),
            ..Usage::default()
        };
        u.finish();
        assert!(!u.oom_killed, "the oom_kill counter wins over failcnt");
        let mut u = Usage {
            memory_limit_hits: Some(5),
            pids_limit_hits: Some(1),
            ..Usage::default()
        };
        u.finish();
        assert!(u.oom_killed && u.pids_limit_hit);
        let mut u = Usage::default();
        u.finish();
        assert!(!u.oom_killed && !u.pids_limit_hit);
    }

    #[test]
    fn keyed_files() {
        let ev = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(ev, "max"), Some(12));
        assert_eq!(keyed(ev, "oom_kill"), Some(1));
        assert_eq!(keyed(ev, "oom"), Some(1));
        assert_eq!(keyed(ev, "nope"), None);
    }
}

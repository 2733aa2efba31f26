//! Removing the cgroups that killed runs left behind.

use crate::discover::{self, CgroupConfig};

/// Removes the sandbox cgroups that a runner killed before it could clean
/// up left behind (empty directories named `<prefix><pid>-...` whose
/// runner is gone) below where [`Cgroup::create`](crate::Cgroup::create) would create one,
/// in every hierarchy (v2 and each v1 one, the freezer too), and returns
/// them. A cgroup that still holds a process, or whose runner still runs,
/// is left alone. A runner is gone when its pid is free, or taken by a
/// process that started after the cgroup was last changed (the pid was
/// reused: the runner started before it made the cgroup).
///
/// ```no_run
/// let cfg = nucleus_cgroup::CgroupConfig::default();
/// for path in nucleus_cgroup::sweep_stale(&cfg) {
///     eprintln!("removed {} left by a killed run", path.display());
/// }
/// ```
pub fn sweep_stale(cfg: &CgroupConfig) -> Vec<std::path::PathBuf> {
    let Ok(layout) = discover::discover(cfg) else {
        return Vec::new();
    };
    let parents = layout
        .unified
        .iter()
        .chain(layout.v1.iter().map(|p| &p.parent));
    let mut removed = Vec::new();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = stale_owner(&name, &cfg.name_prefix) else {
                continue;
            };
            if !owner_gone(pid, &entry.path(), REUSE_MARGIN) {
                continue;
            }
            if std::fs::remove_dir(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}

/// How much later than a directory's last change its owner pid's process
/// must have started to count as another process: covers the 10 ms
/// granularity of start times and uptime, and a small step of the clock.
const REUSE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the process that made `path` and named it after `pid` is gone:
/// no process has that pid, or the one that has started more than `margin`
/// after `path` last changed (the pid was reused). When unsure: not gone.
fn owner_gone(pid: u32, path: &std::path::Path, margin: std::time::Duration) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let changed = std::fs::metadata(path).and_then(|m| m.modified());
    match (started(&stat), changed) {
        (Some(started), Ok(changed)) => started > changed + margin,
        _ => false,
    }
}

/// When the process of `/proc/PID/stat` started, on the wall clock: its
/// start (field 22, clock ticks after boot) against `/proc/uptime`.
fn started(stat: &str) -> Option<std::time::SystemTime> {
    let ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = crate::sys::clock_ticks()? as f64;
    let age = std::time::Duration::try_from_secs_f64((uptime - ticks / hz).max(0.0)).ok()?;
    std::time::SystemTime::now().checked_sub(age)
}

/// The runner pid in `<prefix><pid>-<n>-<nanos>`, unless it is ours.
fn stale_owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let pid: u32 = rest.split_once('-')?.0.parse().ok()?;
    (pid != std::process::id()).then_some(pid)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let dir = std::env::temp_dir().join(format!("nucleus-owner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Our own process started before the directory (50 ms: the error of
        // start times and uptime, 10 ms each): the owner.
        assert!(!super::owner_gone(
            std::process::id(),
            &dir,
            Duration::from_millis(50)
        ));
        // pid_max is at most 2^22: this pid is free.
        assert!(super::owner_gone(4_194_305, &dir, Duration::ZERO));
        // A process started later holds the pid: not the owner.
        std::thread::sleep(Duration::from_millis(100));
        let mut later = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(super::owner_gone(
            later.id(),
            &dir,
            Duration::from_millis(40)
        ));
        assert!(!super::owner_gone(later.id(), &dir, Duration::from_secs(5)));
        later.kill().unwrap();
        later.wait().unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn stale_owner_parses_names() {
        assert_eq!(super::stale_owner("nucleus-42-0-abc", "nucleus-"), Some(42));
        assert_eq!(super::stale_owner("nucleus-x-0", "nucleus-"), None);
        assert_eq!(super::stale_owner("other-42-0", "nucleus-"), None);
    }
}

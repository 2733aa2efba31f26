//! Removing the cgroups that killed runs left behind.

use crate::discover::{self, CgroupConfig};

/// Removes the sandbox cgroups that a runner killed before it could clean
/// up left behind (empty directories named `<prefix><pid>-...` whose
/// runner pid is gone) below where [`Cgroup::create`](crate::Cgroup::create) would create one,
/// and returns them. A cgroup that still holds a process, or whose runner
/// still runs, is left alone.
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
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if std::fs::remove_dir(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}

/// The runner pid in `<prefix><pid>-<n>-<nanos>`, unless it is ours.
fn stale_owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let pid: u32 = rest.split_once('-')?.0.parse().ok()?;
    (pid != std::process::id()).then_some(pid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_owner_parses_names() {
        assert_eq!(super::stale_owner("nucleus-42-0-abc", "nucleus-"), Some(42));
        assert_eq!(super::stale_owner("nucleus-x-0", "nucleus-"), None);
        assert_eq!(super::stale_owner("other-42-0", "nucleus-"), None);
    }
}

//! What this machine offers for user namespaces.

use crate::subid::{find_range, Caller, SubIdPaths, SubIdRange};
use crate::write::find_helper;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What [`probe`] found; serializable for `nucleus-run doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IdmapProbe {
    /// `kernel.unprivileged_userns_clone` (Debian/Ubuntu patch), when present.
    pub unprivileged_userns_clone: Option<bool>,
    /// `user.max_user_namespaces`, when readable.
    pub max_user_namespaces: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu), when present:
    /// if set, unconfined unprivileged processes get a namespace without
    /// capabilities.
    pub apparmor_restrict_unprivileged_userns: Option<bool>,
    /// Whether an unprivileged process may create a usable user namespace,
    /// judged from the three knobs above.
    pub unprivileged_userns: bool,
    /// `newuidmap` on `PATH`.
    pub newuidmap: Option<PathBuf>,
    /// `newgidmap` on `PATH`.
    pub newgidmap: Option<PathBuf>,
    /// The caller probed for.
    pub caller: Caller,
    /// The caller's first subuid range.
    pub subuid: Option<SubIdRange>,
    /// The caller's first subgid range.
    pub subgid: Option<SubIdRange>,
}

/// Probes the kernel knobs under `/proc/sys`, the helpers on `PATH`, and the
/// current caller's entries in `/etc/subuid` and `/etc/subgid`.
///
/// ```
/// let p = nucleus_idmap::probe();
/// println!("{}", p.unprivileged_userns);
/// ```
pub fn probe() -> IdmapProbe {
    probe_with(
        Path::new("/proc/sys"),
        &SubIdPaths::default(),
        Caller::current(),
    )
}

/// Like [`probe`], with sysctls under `proc_sys`, the subordinate id files at
/// `paths` and the given caller.
pub fn probe_with(proc_sys: &Path, paths: &SubIdPaths, caller: Caller) -> IdmapProbe {
    let read = |rel: &str| {
        std::fs::read_to_string(proc_sys.join(rel))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let unprivileged_userns_clone = read("kernel/unprivileged_userns_clone").map(|v| v != 0);
    let max_user_namespaces = read("user/max_user_namespaces");
    let apparmor = read("kernel/apparmor_restrict_unprivileged_userns").map(|v| v != 0);
    IdmapProbe {
        unprivileged_userns: unprivileged_userns_clone != Some(false)
            && max_user_namespaces != Some(0)
            && apparmor != Some(true),
        unprivileged_userns_clone,
        max_user_namespaces,
        apparmor_restrict_unprivileged_userns: apparmor,
        newuidmap: find_helper("newuidmap"),
        newgidmap: find_helper("newgidmap"),
        subuid: find_range(&paths.subuid, &caller).ok().flatten(),
        subgid: find_range(&paths.subgid, &caller).ok().flatten(),
        caller,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_knobs_and_ranges() {
        let dir = std::env::temp_dir().join(format!("nucleus-idmap-probe-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("kernel")).unwrap();
        fs::create_dir_all(dir.join("user")).unwrap();
        fs::write(dir.join("kernel/unprivileged_userns_clone"), "1\n").unwrap();
        fs::write(dir.join("user/max_user_namespaces"), "1000\n").unwrap();
        fs::write(dir.join("subuid"), "alice:100000:65536\n").unwrap();
        let paths = SubIdPaths::new(dir.join("subuid"), dir.join("subgid"));
        let alice = Caller::new(1000, 1000, Some("alice".into()));
        let p = probe_with(&dir, &paths, alice.clone());
        assert_eq!(p.unprivileged_userns_clone, Some(true));
        assert_eq!(p.max_user_namespaces, Some(1000));
        assert_eq!(p.apparmor_restrict_unprivileged_userns, None);
        assert!(p.unprivileged_userns);
        assert_eq!(p.subuid.as_ref().map(|r| r.start), Some(100000));
        assert_eq!(p.subgid, None);

        fs::write(dir.join("user/max_user_namespaces"), "0\n").unwrap();
        assert!(!probe_with(&dir, &paths, alice.clone()).unprivileged_userns);
        fs::write(dir.join("user/max_user_namespaces"), "10\n").unwrap();
        fs::write(dir.join("kernel/unprivileged_userns_clone"), "0\n").unwrap();
        assert!(!probe_with(&dir, &paths, alice).unprivileged_userns);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn real_probe_serializes() {
        let json = serde_json::to_value(probe()).unwrap();
        assert!(json.get("unprivileged_userns").is_some());
        assert!(json.get("caller").is_some());
    }
}

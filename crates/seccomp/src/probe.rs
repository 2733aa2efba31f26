//! What the kernel supports.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sys;

/// What this kernel supports of seccomp, for `nucleus-run doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProbe {
    /// seccomp is built in (`prctl(PR_GET_SECCOMP)` answers).
    pub available: bool,
    /// Filters can be installed (`SECCOMP_GET_ACTION_AVAIL` answers for `allow`).
    pub filter: bool,
    /// The calling process's mode (`Seccomp:` in `/proc/self/status`: 0 none, 1 strict,
    /// 2 filter).
    pub mode: Option<u32>,
    /// Filters already installed on the calling process (`Seccomp_filters:`).
    pub filters: Option<u32>,
    /// `/proc/sys/kernel/seccomp/actions_avail`.
    pub actions_avail: Vec<String>,
    /// `/proc/sys/kernel/seccomp/actions_logged`: what `log_denied` will actually log.
    pub actions_logged: Vec<String>,
    /// `SECCOMP_RET_KILL_PROCESS` is available (Linux 4.14).
    pub kill_process: bool,
    /// `SECCOMP_RET_LOG` and `SECCOMP_FILTER_FLAG_LOG` are available (Linux 4.14).
    pub log: bool,
    /// User notification is available (Linux 5.0; `CONTINUE`, needed to record, 5.5).
    pub user_notif: bool,
}

/// Probe the running kernel, reading `/proc`.
///
/// ```
/// let probe = nucleus_seccomp::probe();
/// println!("{}", serde_json::to_string(&probe).unwrap());
/// ```
pub fn probe() -> SeccompProbe {
    probe_with(Path::new("/proc"))
}

/// Probe the running kernel, reading the files under `proc_root` instead of `/proc`.
pub fn probe_with(proc_root: &Path) -> SeccompProbe {
    let words = |rel: &str| {
        std::fs::read_to_string(proc_root.join(rel))
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let status = std::fs::read_to_string(proc_root.join("self/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    SeccompProbe {
        available: sys::get_seccomp_mode().is_ok(),
        filter: sys::action_avail(libc::SECCOMP_RET_ALLOW),
        mode: field("Seccomp"),
        filters: field("Seccomp_filters"),
        actions_avail: words("sys/kernel/seccomp/actions_avail"),
        actions_logged: words("sys/kernel/seccomp/actions_logged"),
        kill_process: sys::action_avail(libc::SECCOMP_RET_KILL_PROCESS),
        log: sys::action_avail(libc::SECCOMP_RET_LOG),
        user_notif: sys::notif_sizes().is_some() && sys::action_avail(libc::SECCOMP_RET_USER_NOTIF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_an_injected_proc() {
        let dir = nucleus_test_support::TempDir::new("seccomp-probe");
        std::fs::create_dir_all(dir.join("self")).unwrap();
        std::fs::create_dir_all(dir.join("sys/kernel/seccomp")).unwrap();
        std::fs::write(
            dir.join("self/status"),
            "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t3\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("sys/kernel/seccomp/actions_avail"),
            "kill_process allow\n",
        )
        .unwrap();
        let p = probe_with(&dir);
        assert_eq!(p.mode, Some(2));
        assert_eq!(p.filters, Some(3));
        assert_eq!(p.actions_avail, ["kill_process", "allow"]);
        assert!(p.actions_logged.is_empty());
    }
}

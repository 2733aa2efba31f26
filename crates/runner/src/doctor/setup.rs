//! The machine's setup around the kernel features: cgroups (what is
//! delegated to the caller), idmapped mounts (and `--bind PATH` tries) and
//! kernel lockdown.

use super::facts::Facts;
use super::judge::{Check, Status};

/// The controllers behind the limit flags.
const LIMITS: [(&str, &str); 4] = [
    ("memory", "--memory"),
    ("cpu", "--cpus"),
    ("pids", "--pids"),
    ("io", "--io-max"),
];

/// Cgroups: the layout, the controllers the caller may use, writability.
pub(crate) fn cgroups(f: &Facts) -> Check {
    let item = "cgroups";
    let c = &f.cgroup;
    let user = f.idmap.caller.label();
    let more: Vec<String> = c
        .places
        .iter()
        .map(|p| {
            let w = if p.writable { "writable" } else { "read-only" };
            format!("{}: {} ({w})", p.controllers.join(","), p.parent)
        })
        .collect();
    if let Some(error) = &c.error {
        return Check::bad(
            item,
            Status::Missing,
            error.clone(),
            "no resource limits: --memory, --cpus, --pids and --io-max are refused (--best-effort-limits runs without them)",
            "mount cgroup2 at /sys/fs/cgroup (systemd does at boot)",
        )
        .more(more);
    }
    let version = match c.version.as_str() {
        "v2" => "v2",
        "hybrid" => "v1 (hybrid)",
        "v1" => "v1",
        _ => "none",
    };
    // The controllers this caller can make a cgroup with: v2's when the
    // unified parent is writable (the limits go there on v2 only), and
    // each writable v1 hierarchy's.
    let mut usable: Vec<String> = Vec::new();
    for place in c.places.iter().filter(|p| p.writable) {
        if place.controllers.iter().any(|n| n == "unified") {
            if c.version == "v2" {
                usable.extend(c.v2_controllers.iter().cloned());
            }
        } else {
            usable.extend(place.controllers.iter().cloned());
        }
    }
    usable.sort();
    usable.dedup();
    let has = |ctl: &str| {
        usable
            .iter()
            .any(|u| u == ctl || (ctl == "io" && u == "blkio"))
    };
    let lacking: Vec<(&str, &str)> = LIMITS.into_iter().filter(|(ctl, _)| !has(ctl)).collect();
    if lacking.is_empty() {
        return Check::ok(item, format!("{version}: {} usable", usable.join(" "))).more(more);
    }
    let flags: Vec<&str> = lacking.iter().map(|(_, flag)| *flag).collect();
    let consequence = format!(
        "{} refused (--best-effort-limits runs without)",
        flags.join(", ")
    );
    let fix = if c.version == "v2" {
        format!(
            "run under a delegated cgroup: systemd-run --user --scope -p Delegate=yes nucleus-run ..., or --cgroup-parent a subtree delegated to {user}"
        )
    } else if f.root() {
        "mount the missing v1 controllers, or boot with systemd.unified_cgroup_hierarchy=1"
            .to_owned()
    } else {
        "run as root, or boot with systemd.unified_cgroup_hierarchy=1 and run under systemd-run --user --scope -p Delegate=yes".to_owned()
    };
    let detail = if usable.is_empty() {
        format!("{version}: nothing writable by {user}")
    } else {
        let names: Vec<&str> = lacking.iter().map(|(ctl, _)| *ctl).collect();
        format!(
            "{version}: {} usable, no {}",
            usable.join(" "),
            names.join(" ")
        )
    };
    Check::bad(item, Status::Limited, detail, consequence, fix).more(more)
}

/// Kernel lockdown (`/sys/kernel/security/lockdown`).
pub(crate) fn lockdown(f: &Facts) -> Check {
    let item = "kernel lockdown";
    let l = &f.lockdown;
    let more: Vec<String> = l.error.iter().cloned().collect();
    match l.mode.as_deref() {
        Some(mode @ ("integrity" | "confidentiality")) => Check::ok(item, mode),
        Some(mode) => Check::bad(
            item,
            Status::Limited,
            mode,
            "root can change the running kernel (modules, /dev/mem, kexec); --require-kernel-lockdown refuses to start",
            "boot with lockdown=integrity on the kernel command line (or enable Secure Boot)",
        ),
        None if !l.securityfs_mounted && !f.root() => Check::bad(
            item,
            Status::Limited,
            "unknown: securityfs is not mounted and only root can mount it",
            "--require-kernel-lockdown refuses to start for this user",
            "mount -t securityfs securityfs /sys/kernel/security (as root, or in /etc/fstab)",
        )
        .more(more),
        None => Check::bad(
            item,
            Status::Missing,
            "this kernel has no lockdown LSM",
            "root can change the running kernel; --require-kernel-lockdown refuses to start",
            "a kernel built with CONFIG_SECURITY_LOCKDOWN_LSM=y, booted with lockdown=integrity",
        )
        .more(more),
    }
}

/// Idmapped mounts (writable binds as root).
pub(crate) fn idmapped_mounts(f: &Facts) -> Check {
    let item = "idmapped mounts";
    if !f.root() {
        return Check::ok(
            item,
            "not needed: rootless, your own id is the sandbox's root",
        );
    }
    if f.rootfs.mount_setattr {
        return Check::ok(
            item,
            "mount_setattr: writable binds are idmapped (doctor --bind PATH tries a filesystem)",
        );
    }
    Check::bad(
        item,
        Status::Limited,
        "no mount_setattr (Linux before 5.12)",
        "writable binds fail the launch unless --bind-mode plain or --userns keep-id",
        "Linux 5.12+",
    )
}

/// One `doctor --bind PATH` try.
pub(crate) fn bind(path: &str, verdict: &str) -> Check {
    let item = format!("bind {path}");
    if verdict == "idmapped" || verdict.starts_with("not needed") {
        return Check::ok(&item, verdict);
    }
    Check::bad(
        &item,
        Status::Limited,
        verdict,
        format!("a writable bind of {path} fails the launch (a read-only one is a plain bind)"),
        "--bind-mode plain, or --userns keep-id, or a filesystem that can be idmapped (ext4, xfs, btrfs)",
    )
}

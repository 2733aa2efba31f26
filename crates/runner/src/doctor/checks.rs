//! One check per kernel feature the envelope uses, judged from the
//! [`Facts`]: user namespaces, namespaces, id mapping, Landlock, seccomp.
//! The machine's setup (cgroups, idmapped mounts, lockdown) is judged in
//! `setup.rs`, the runtimes (gVisor, the WASI JIT) in `runtimes.rs`.

use super::facts::Facts;
use super::judge::{Check, Status};

/// The namespaces every launch makes (the user namespace has its own check).
const REQUIRED_NS: [&str; 5] = ["pid", "mount", "network", "uts", "ipc"];
/// Namespaces used when the kernel has them.
const OPTIONAL_NS: [&str; 2] = ["cgroup", "time"];

/// The user namespace: every launch makes one.
pub(crate) fn userns(f: &Facts) -> Check {
    let id = &f.idmap;
    let item = "user namespaces";
    let knobs = vec![
        format!("user.max_user_namespaces: {}", opt(id.max_user_namespaces)),
        format!(
            "kernel.unprivileged_userns_clone: {}",
            opt(id.unprivileged_userns_clone.map(u8::from))
        ),
        format!(
            "kernel.apparmor_restrict_unprivileged_userns: {}",
            opt(id.apparmor_restrict_unprivileged_userns.map(u8::from))
        ),
    ];
    if !f.namespaces.available.iter().any(|n| n == "user") {
        return Check::bad(
            item,
            Status::Missing,
            "this kernel has no user namespaces",
            "no sandbox can start: every launch makes a user namespace",
            "a kernel built with CONFIG_USER_NS=y",
        )
        .more(knobs);
    }
    if id.max_user_namespaces == Some(0) {
        return Check::bad(
            item,
            Status::Missing,
            "user.max_user_namespaces is 0",
            "no sandbox can start: every launch makes a user namespace",
            "sysctl -w user.max_user_namespaces=15000 (and a file in /etc/sysctl.d/ to keep it)",
        )
        .more(knobs);
    }
    let max = id
        .max_user_namespaces
        .map_or(String::new(), |m| format!(", max {m}"));
    if id.unprivileged_userns {
        return Check::ok(item, format!("unprivileged{max}")).more(knobs);
    }
    let (why, fix) = if id.unprivileged_userns_clone == Some(false) {
        (
            "kernel.unprivileged_userns_clone is 0",
            "sysctl -w kernel.unprivileged_userns_clone=1 (and a file in /etc/sysctl.d/ to keep it)",
        )
    } else {
        (
            "kernel.apparmor_restrict_unprivileged_userns is 1",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile that gives nucleus-run userns",
        )
    };
    let check = if f.root() {
        Check::bad(
            item,
            Status::Limited,
            format!("root only{max}: {why}"),
            "users other than root cannot start sandboxes",
            fix,
        )
    } else {
        Check::bad(
            item,
            Status::Missing,
            format!("not for unprivileged users: {why}"),
            format!(
                "no sandbox can start as {}: every launch makes a user namespace",
                id.caller.label()
            ),
            fix,
        )
    };
    check.more(knobs)
}

/// The other namespaces.
pub(crate) fn namespaces(f: &Facts) -> Check {
    let item = "namespaces";
    let have = |n: &str| f.namespaces.available.iter().any(|a| a == n);
    let lacking = |list: &[&'static str]| -> Vec<&'static str> {
        list.iter().copied().filter(|n| !have(n)).collect()
    };
    let config = |names: &[&str]| {
        let opts: Vec<String> = names
            .iter()
            .map(|n| format!("CONFIG_{}_NS=y", kconfig(n)))
            .collect();
        format!("a kernel built with {}", opts.join(" "))
    };
    let required = lacking(&REQUIRED_NS);
    if !required.is_empty() {
        return Check::bad(
            item,
            Status::Missing,
            format!("no {} namespace", required.join(", ")),
            "no sandbox can start: every launch makes them",
            config(&required),
        );
    }
    let optional = lacking(&OPTIONAL_NS);
    let detail = f.namespaces.available.join(" ");
    if optional.is_empty() {
        return Check::ok(item, detail);
    }
    Check::bad(
        item,
        Status::Limited,
        format!("{detail} (no {})", optional.join(", ")),
        format!(
            "sandboxes run without a {} namespace of their own",
            optional.join(" or ")
        ),
        config(&optional),
    )
}

/// The kernel config name of a namespace.
fn kconfig(ns: &str) -> &'static str {
    match ns {
        "pid" => "PID",
        "network" => "NET",
        "uts" => "UTS",
        "ipc" => "IPC",
        "cgroup" => "CGROUP",
        "time" => "TIME",
        _ => "USER",
    }
}

/// The uid/gid maps: what the default launch maps, and whether ranges
/// (`newuidmap` and a subuid range) are there for more than one id.
pub(crate) fn idmap(f: &Facts) -> Check {
    let item = "id mapping";
    let id = &f.idmap;
    let user = id.caller.label();
    let map = match &f.envelope.uid_map {
        Some(Ok(map)) => map.join(" "),
        Some(Err(why)) => {
            let fix = if why.contains("newuidmap") || why.contains("newgidmap") {
                "apt-get install uidmap".to_owned()
            } else {
                add_subids(&user)
            };
            return Check::bad(
                item,
                Status::Missing,
                why.clone(),
                format!("no sandbox can start as {user}"),
                fix,
            );
        }
        None => String::new(),
    };
    let helper = |h: &Option<String>, name: &str| {
        format!("{name}: {}", h.as_deref().unwrap_or("not on PATH"))
    };
    let range = |r: &Option<super::facts::Range>, file: &str| match r {
        Some(r) => format!("{file}: {}+{}", r.start, r.count),
        None => format!("{file}: no range for {user}"),
    };
    let more = vec![
        helper(&id.newuidmap, "newuidmap"),
        helper(&id.newgidmap, "newgidmap"),
        range(&id.subuid, "/etc/subuid"),
        range(&id.subgid, "/etc/subgid"),
    ];
    if f.root() {
        return Check::ok(item, format!("root-remapped: {map} (a leased range)")).more(more);
    }
    let no_helpers = id.newuidmap.is_none() || id.newgidmap.is_none();
    let no_range = id.subuid.is_none() || id.subgid.is_none();
    if !no_helpers && !no_range {
        return Check::ok(
            item,
            format!("rootless: {map}; ranges via newuidmap for --userns root-remapped"),
        )
        .more(more);
    }
    let mut lacks = Vec::new();
    let mut fixes = Vec::new();
    if no_helpers {
        lacks.push("no newuidmap/newgidmap on PATH".to_owned());
        fixes.push("apt-get install uidmap".to_owned());
    }
    if no_range {
        lacks.push(format!("no subuid/subgid range for {user}"));
        fixes.push(add_subids(&user));
    }
    Check::bad(
        item,
        Status::Limited,
        format!("rootless, one id ({map}): {}", lacks.join(", ")),
        "only your own id exists inside: changing user or chown to another id fails; --userns root-remapped and --uidmap ranges are refused",
        fixes.join("; then "),
    )
    .more(more)
}

fn add_subids(user: &str) -> String {
    format!("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}")
}

/// Landlock: its ABI and what it brings.
pub(crate) fn landlock(f: &Facts) -> Check {
    let item = "Landlock";
    let l = &f.landlock;
    let without = "the native envelope cannot start (trusted, --wasm, degraded untrusted); --landlock off runs without it";
    let abi = match (l.availability.as_str(), l.abi) {
        ("enabled", Some(abi)) => abi,
        ("disabled-at-boot", _) => {
            return Check::bad(
                item,
                Status::Missing,
                "built in, not enabled at boot",
                without,
                "add landlock to the lsm= kernel parameter (the current list: /sys/kernel/security/lsm) and reboot",
            )
        }
        _ => {
            return Check::bad(
                item,
                Status::Missing,
                "not in this kernel",
                without,
                "a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+)",
            )
        }
    };
    let mut brings = vec![format!("{} file rights", l.fs.len())];
    if l.tcp {
        brings.push("TCP ports".to_owned());
    }
    if !l.scopes.is_empty() {
        brings.push(format!("scopes ({})", l.scopes.join(", ")));
    }
    let detail = format!("ABI {abi}: {}", brings.join(", "));
    let more = vec![format!("file rights: {}", l.fs.join(" "))];
    if abi >= l.vetted_abi {
        return Check::ok(item, detail).more(more);
    }
    let dropped = match &f.envelope.landlock_dropped {
        Some(Ok(d)) if !d.is_empty() => d.join(", "),
        _ => "some rights".to_owned(),
    };
    Check::bad(
        item,
        Status::Limited,
        format!("{detail} (vetted: ABI {})", l.vetted_abi),
        format!(
            "the native envelope runs without {dropped}; --landlock-compat strict refuses to start"
        ),
        format!(
            "a kernel with Landlock ABI {} (Linux {}+)",
            l.vetted_abi,
            landlock_linux(l.vetted_abi)
        ),
    )
    .more(more)
}

/// The first Linux release with Landlock ABI `abi`.
fn landlock_linux(abi: u8) -> &'static str {
    match abi {
        0 | 1 => "5.13",
        2 => "5.19",
        3 => "6.2",
        4 => "6.7",
        5 => "6.10",
        6 => "6.12",
        _ => "6.15",
    }
}

/// seccomp filters.
pub(crate) fn seccomp(f: &Facts) -> Check {
    let s = &f.seccomp;
    if !s.filter {
        return Check::bad(
            "seccomp",
            Status::Missing,
            "no seccomp filters",
            "no sandbox can start: the native envelope and runsc both install filters",
            "a kernel built with CONFIG_SECCOMP_FILTER=y",
        );
    }
    let mut has = vec!["filters"];
    if s.kill_process {
        has.push("kill-process");
    }
    if s.user_notif {
        has.push("user notification");
    }
    Check::ok("seccomp", has.join(", "))
        .more(vec![format!("actions: {}", s.actions_avail.join(" "))])
}

/// seccomp user notification (`nucleus-run seccomp record`).
pub(crate) fn seccomp_notify(f: &Facts) -> Check {
    if f.seccomp.filter && f.seccomp.user_notif {
        return Check::ok("seccomp notify", "user notification: seccomp record works");
    }
    Check::bad(
        "seccomp notify",
        Status::Limited,
        "no seccomp user notification",
        "nucleus-run seccomp record cannot record a profile; running is unaffected",
        "Linux 5.5+ with CONFIG_SECCOMP_FILTER=y",
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "absent".to_owned(), |v| v.to_string())
}

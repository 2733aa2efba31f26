//! End to end: the gVisor runtime and the trust-level guards, through
//! `nucleus-run` with the real `runsc`.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// Whether runsc is installed; prints the skip line when not.
fn have_runsc(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("runsc").is_file()));
    if !found {
        skip(test, "runsc is not installed (apt-get install runsc)");
    }
    found
}

/// Where `who`'s gVisor run directories are made.
fn run_dir(who: As) -> PathBuf {
    match who {
        As::Caller if is_root() => PathBuf::from("/run/nucleus/gvisor"),
        As::Caller => std::env::temp_dir().join(format!("nucleus-{}/gvisor", caller_uid())),
        As::Nobody => std::env::temp_dir().join("nucleus-65534/gvisor"),
    }
}

/// The run directories of runner `pid` left in `who`'s run directory.
fn left_by(who: As, pid: u32) -> Vec<String> {
    left_in(&run_dir(who), pid)
}

/// The run directories of runner `pid` left in `runs`.
fn left_in(runs: &Path, pid: u32) -> Vec<String> {
    let prefix = format!("nucleus-{pid}-");
    std::fs::read_dir(runs)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs an untrusted workload (the default trust level) as `who` and
/// checks that nothing of its container is left: no run directory, no
/// runsc process.
fn untrusted_as(who: As, args: &[&str]) -> Output {
    let mut all = vec!["--trust-level", "untrusted"];
    all.extend(args);
    let child = command(who, &all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    check_printed_result(&out);
    let left = left_by(who, pid);
    assert!(left.is_empty(), "runsc run directory left: {left:?}");
    let prefix = format!("nucleus-{pid}-");
    assert_eq!(
        processes_with(&prefix),
        Vec::<u32>::new(),
        "a runsc process survived"
    );
    out
}

fn untrusted(args: &[&str]) -> Output {
    untrusted_as(As::Caller, args)
}

fn json(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    parse_result(text.lines().last().unwrap_or_default())
}

#[test]
fn untrusted_runs_under_gvisor_with_output_and_exit_code() {
    if !have_runsc("untrusted_runs_under_gvisor") {
        return;
    }
    let out = untrusted(&[
        "--json",
        "--",
        "/bin/sh",
        "-c",
        "echo hi; cat /proc/version; exit 7",
    ]);
    assert_code(&out, 7);
    let text = stdout(&out);
    assert!(text.starts_with("hi\n"), "{text}");
    // gVisor's Sentry answers for the kernel: not the host's version string.
    let host = std::fs::read_to_string("/proc/version").unwrap();
    let inside = text.lines().nth(1).unwrap_or_default();
    assert!(inside.starts_with("Linux version"), "{text}");
    assert_ne!(inside, host.trim(), "the host kernel answered");
    let result = json(&out);
    assert_eq!(result["enforced"]["runtime"], "gvisor");
    assert_eq!(result["exit_code"], 7);
}

#[test]
fn gvisor_view_is_read_only_private_and_offline() {
    if !have_runsc("gvisor_view") {
        return;
    }
    let dir = TempDir::new("gvisor-ro");
    std::fs::write(dir.path().join("f"), "data").unwrap();
    let bind = format!("{}:/data", dir.arg());
    let script = "cat /data/f; echo; echo x > /data/new || echo ro; \
                  tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo \"secret=${SECRET_TOKEN:-absent}\"";
    let out = command(
        As::Caller,
        &[
            "--trust-level",
            "untrusted",
            "--ro-bind",
            &bind,
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
    )
    .env("SECRET_TOKEN", "leak")
    .output()
    .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "data\nro\nlo\nsecret=absent\n");
    // gVisor checks the (unmapped) owner's permission before the mount's
    // read-only flag; either way nothing is written.
    assert!(
        stderr(&out).contains("Read-only file system")
            || stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("new").exists());
}

#[test]
fn runsc_runs_without_host_privilege_as_root_and_nobody() {
    if !have_runsc("runsc_without_host_privilege") {
        return;
    }
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("runsc_without_host_privilege", who) {
            continue;
        }
        let out = untrusted_as(who, &["--json", "--", "/bin/true"]);
        assert_code(&out, 0);
        let r = json(&out);
        let gvisor = &r["enforced"]["gvisor"];
        assert_eq!(gvisor["host_userns"], true, "{r}");
        assert_eq!(gvisor["ignore_cgroups"], true, "{r}");
        let map = r["enforced"]["uid_map"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let host_root = map.split(':').nth(1).unwrap_or_default().to_owned();
        assert_ne!(host_root, "0", "the sandbox's root is host root: {r}");
        assert_eq!(r["enforced"]["landlock"]["status"], "replaced_by_gvisor");
        assert!(r["enforced"]["masked_paths"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "/etc/shadow")));
    }
}

#[test]
fn killed_runner_leaves_nothing_running_and_the_next_run_cleans_up() {
    let test = "killed_runner_leaves_nothing";
    if !have_runsc(test) || !can_run_as(test, As::Nobody) {
        return;
    }
    // As nobody, with a TMPDIR of its own: the run directories are then
    // below it, out of reach of the sweeps of runs that other tests start
    // meanwhile.
    let tmp = TempDir::new("killed-runner");
    set_mode(tmp.path(), 0o777);
    let runs = tmp.path().join("nucleus-65534/gvisor");
    let left = |pid: u32| left_in(&runs, pid);
    let start = |args: &[&str]| {
        let mut all = vec!["--trust-level", "untrusted"];
        all.extend(args);
        let mut cmd = command(As::Nobody, &all);
        cmd.env("TMPDIR", tmp.path());
        cmd
    };
    let mut child = start(&["--", "/bin/sleep", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let marker = format!("nucleus-{pid}-");
    // Wait until runsc's sandbox runs (bounded), then kill the runner.
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&marker).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!processes_with(&marker).is_empty(), "runsc never started");
    child.kill().unwrap();
    child.wait().unwrap();
    // The init dies with the runner and takes its PID namespace along.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "runsc outlived the runner"
    );
    assert_eq!(left(pid).len(), 1, "the killed run left no directory?");
    let out = start(&["--json", "--", "/bin/true"]).output().unwrap();
    assert_code(&out, 0);
    check_printed_result(&out);
    assert!(left(pid).is_empty(), "the next run did not clean up");
    assert!(
        stderr(&out).contains("left behind by an earlier run that was killed"),
        "{}",
        stderr(&out)
    );
    let cleaned = json(&out)["cleaned"].to_string();
    assert!(cleaned.contains(&marker), "{cleaned}");
}

#[test]
fn gvisor_memory_limit_reports_the_kill() {
    if !have_runsc("gvisor_memory_limit") {
        return;
    }
    let out = untrusted(&[
        "--memory",
        "64M",
        "--json",
        "--",
        "/usr/bin/python3",
        "-c",
        "x = bytearray(512 << 20)",
    ]);
    assert_code(&out, 137);
    let r = json(&out);
    assert_eq!(r["killed_by"], "memory", "{r}");
    assert!(
        r["enforced"]["limits"]["usage"]["oom_killed"] == true,
        "{r}"
    );
}

#[test]
fn gvisor_timeout_kills_quickly() {
    if !have_runsc("gvisor_timeout") {
        return;
    }
    let started = Instant::now();
    let out = untrusted(&["--timeout", "1s", "--json", "--", "/bin/sleep", "30"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_code(&out, 124);
    assert_eq!(json(&out)["killed_by"], "timeout");
}

#[test]
fn trusted_can_ask_for_gvisor_and_bad_runsc_input_is_refused() {
    if !have_runsc("trusted_can_ask_for_gvisor") {
        return;
    }
    let out = run(
        As::Caller,
        &["--runtime", "gvisor", "--json", "--", "/bin/true"],
    );
    assert_code(&out, 0);
    assert_eq!(json(&out)["enforced"]["runtime"], "gvisor");
    let out = run(
        As::Caller,
        &[
            "--runtime",
            "gvisor",
            "--runsc",
            "/bin/true",
            "--",
            "/bin/true",
        ],
    );
    assert_code(&out, 125);
    assert!(stderr(&out).contains("is not runsc"), "{}", stderr(&out));
    let out = run(
        As::Caller,
        &[
            "--runtime",
            "gvisor",
            "--gvisor-platform",
            "warp-drive",
            "--",
            "/bin/true",
        ],
    );
    assert_code(&out, 125);
    assert!(stderr(&out).contains("warp-drive"), "{}", stderr(&out));
}

#[test]
fn untrusted_without_runsc_is_refused_unless_degraded_is_allowed() {
    let missing = [
        "--trust-level",
        "untrusted",
        "--runsc",
        "/nonexistent/runsc",
    ];
    let out = run(As::Caller, &[&missing[..], &["--", "/bin/true"]].concat());
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("refusing to run an untrusted workload natively"),
        "{}",
        stderr(&out)
    );
    // An environment variable alone never lowers security.
    let out = command(As::Caller, &[&missing[..], &["--", "/bin/true"]].concat())
        .env("NUCLEUS_ALLOW_DEGRADED_SECURITY", "1")
        .output()
        .unwrap();
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("NUCLEUS_ALLOW_DEGRADED_SECURITY is ignored"),
        "{}",
        stderr(&out)
    );
    let out = run(
        As::Caller,
        &[
            &missing[..],
            &["--allow-degraded-security", "--json", "--", "/bin/true"],
        ]
        .concat(),
    );
    assert_code(&out, 0);
    assert_eq!(json(&out)["enforced"]["runtime"], "native-degraded");
}

#[test]
fn untrusted_never_gets_the_host_network() {
    let args = [
        "--trust-level",
        "untrusted",
        "--allow-degraded-security",
        "--network",
        "host",
        "--allow-host-network",
        "--",
        "/bin/true",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("never get host networking"),
        "{}",
        stderr(&out)
    );
}

/// The active lockdown mode, read from a private securityfs mount.
fn active_lockdown() -> Option<String> {
    let script = "mount --make-rprivate / && mount -t securityfs securityfs /sys/kernel/security && cat /sys/kernel/security/lockdown";
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find('[')?;
    let end = text.find(']')?;
    Some(text[start + 1..end].to_owned())
}

#[test]
fn kernel_lockdown_requirement_follows_the_active_mode() {
    if !is_root() {
        return skip(
            "kernel_lockdown_requirement",
            "reading the lockdown state needs root",
        );
    }
    let Some(active) = active_lockdown() else {
        return skip(
            "kernel_lockdown_requirement",
            "this kernel has no lockdown LSM",
        );
    };
    let rank = |m: &str| {
        ["none", "integrity", "confidentiality"]
            .iter()
            .position(|x| *x == m)
            .unwrap()
    };
    let mounts = host_mounts();
    for required in ["integrity", "confidentiality"] {
        let out = run(
            As::Caller,
            &["--require-kernel-lockdown", required, "--", "/bin/true"],
        );
        if rank(&active) >= rank(required) {
            assert_code(&out, 0);
        } else {
            assert_code(&out, 125);
            let want = format!("kernel lockdown is {active} but {required} is required");
            assert!(stderr(&out).contains(&want), "{}", stderr(&out));
        }
    }
    let out = run(
        As::Caller,
        &["--require-kernel-lockdown", "paranoid", "--", "/bin/true"],
    );
    assert_code(&out, 125);
    assert_eq!(
        host_mounts(),
        mounts,
        "reading the lockdown state left a mount"
    );
    assert!(!Path::new("/sys/kernel/security/lockdown").exists() || active_lockdown().is_some());
}

//! End to end: cgroup limits, rlimits and the result contract, run through
//! `nucleus-run`.
//!
//! Limits need root on the test machine (a cgroup v1 hybrid); as `nobody`
//! required limits fail and best-effort ones are reported as not applied.
//! Where a cgroup v2 subtree is delegated to `nobody`
//! (`NUCLEUS_TEST_NOBODY_CGROUP`, the VM of `cargo xtask ci`), the limit
//! tests run as `nobody` too, making sandboxes below it.
//! Every run goes through [`run_checked`], which proves afterwards that the
//! runner removed each cgroup directory it created (`nucleus-<runner pid>-*`
//! below this process's cgroup in every hierarchy), so parallel tests and
//! other test binaries never confuse each other's directories.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::Value;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const PYTHON: &str = "/usr/bin/python3";

/// Who can set limits here: root, and `nobody` where a subtree is
/// delegated to it; prints the skip line when the tests do not run as root.
fn limit_users(test: &str) -> Vec<As> {
    if !root(test) {
        return Vec::new();
    }
    let mut users = vec![As::Caller];
    if nobody_cgroup().is_some() {
        users.push(As::Nobody);
    }
    users
}

/// Limits are set by root here; prints the skip line otherwise.
fn root(test: &str) -> bool {
    if !is_root() {
        skip(test, "cgroup limits need root on this machine");
        return false;
    }
    true
}

/// Root, plus the python the workloads are written in.
fn root_and_python(test: &str) -> bool {
    if !root(test) {
        return false;
    }
    if !Path::new(PYTHON).exists() {
        skip(test, "needs /usr/bin/python3 for the workload");
        return false;
    }
    true
}

/// A number unique to this process and `n`, usable as a `sleep` argument,
/// to find the sandbox's processes on the host afterwards.
fn marker(n: u32) -> String {
    format!("{}.{n:04}", 6000 + std::process::id() % 3000)
}

/// Every cgroup directory the runner with pid `runner` created and still
/// has: the children named `nucleus-<runner>-*` of this process's cgroup in
/// each hierarchy (the runner creates below its own cgroup, which is ours),
/// and of the `sandboxes/` cgroup delegated to nobody.
fn cgroups_of(runner: u32) -> Vec<PathBuf> {
    let prefix = format!("nucleus-{runner}-");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let sys = Path::new("/sys/fs/cgroup");
    let mut found = Vec::new();
    if let Some(cg) = nobody_cgroup() {
        for entry in std::fs::read_dir(cg.join("sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
    }
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, ctrls, path) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(path)) = (ctrls, path) else {
            continue;
        };
        let mount = match ctrls {
            "" if sys.join("cgroup.controllers").exists() => sys.to_path_buf(),
            "" => sys.join("unified"),
            named => sys.join(named.strip_prefix("name=").unwrap_or(named)),
        };
        let dir = mount.join(path.trim_start_matches('/'));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// The pids listed in a cgroup directory.
fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Waits for a spawned runner and asserts it removed every cgroup directory
/// it created: it removes them before it exits, so none may remain.
fn finish(child: Child) -> Output {
    let runner = child.id();
    let out = child.wait_with_output().unwrap();
    check_printed_result(&out);
    let left = cgroups_of(runner);
    assert!(
        left.is_empty(),
        "runner {runner} left cgroups {left:?}\nstderr: {}",
        stderr(&out)
    );
    out
}

/// Runs `nucleus-run ARGS` as `who`, then checks no cgroup was left.
fn run_checked(who: As, args: &[&str]) -> Output {
    let child = command(who, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

/// `nucleus-run` arguments: whitespace-separated flags, `--`, the command.
fn argv<'a>(flags: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = flags.split_whitespace().collect();
    v.push("--");
    v.extend_from_slice(cmd);
    v
}

/// `enforced.limits` of a result, which must be present.
fn limits(json: &Value) -> &Value {
    let l = &json["enforced"]["limits"];
    assert!(l.is_object(), "no limits in {json}");
    l
}

fn assert_no_survivor(marker: &str) {
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        processes_with(marker),
        Vec::<u32>::new(),
        "a sandbox process survived"
    );
}

/// The host still starts programs.
fn assert_host_works() {
    let ok = std::process::Command::new("/bin/true").status().unwrap();
    assert!(ok.success());
}

#[test]
fn memory_hog_is_killed_by_the_memory_limit() {
    if !root_and_python("memory_hog_killed") {
        return;
    }
    for who in limit_users("memory_hog_killed") {
        memory_hog_as(who);
    }
}

fn memory_hog_as(who: As) {
    let hog = "b = b'x' * (300 << 20); print('survived')";
    let out = run_checked(who, &argv("--memory 64M --json", &[PYTHON, "-c", hog]));
    assert_code(&out, 137);
    assert!(!stdout(&out).contains("survived"));
    let json = result(&out);
    assert_eq!(json["signal"], libc::SIGKILL);
    assert_eq!(json["killed_by"], "memory");
    let limits = limits(&json);
    assert_eq!(limits["applied"]["applied"], serde_json::json!(["memory"]));
    assert_eq!(limits["usage"]["oom_killed"], true);
    let cg_peak = limits["usage"]["memory_peak"].as_u64().unwrap();
    assert!(cg_peak <= 64 * MIB + MIB, "cgroup peak {cg_peak}");
    // The top-level peak is the larger of the cgroup's and the largest RSS,
    // which counts file pages charged elsewhere: loose bounds.
    let peak = json["peak_memory_bytes"].as_u64().unwrap();
    assert!((32 * MIB..=96 * MIB).contains(&peak), "peak {peak}");
    assert_host_works();
    assert_code(&run_checked(who, &["--", "/bin/true"]), 0);
}

#[test]
fn an_oom_killed_child_does_not_end_the_sandbox() {
    if !root_and_python("oom_child") {
        return;
    }
    let script = format!("{PYTHON} -c \"b = b'x' * (300 << 20)\"; echo hog $?");
    let out = run_checked(
        As::Caller,
        &argv("--memory 64M --json", &["/bin/sh", "-c", &script]),
    );
    assert_code(&out, 0);
    assert!(stdout(&out).starts_with("hog 137\n"), "{}", stdout(&out));
    let json = result(&out);
    assert_eq!(json["signal"], Value::Null);
    assert_eq!(limits(&json)["usage"]["oom_killed"], true);
    // `killed_by` is not checked: the runner reports "memory" here although
    // the sandbox ended on its own with 0.
}

#[test]
fn fork_loop_stops_at_the_pids_cap() {
    if !root_and_python("fork_loop_pids") {
        return;
    }
    for (i, who) in limit_users("fork_loop_pids").into_iter().enumerate() {
        fork_loop_as(who, marker(10 + i as u32));
    }
}

fn fork_loop_as(who: As, mark: String) {
    let script = format!(
        "import os, sys, time\n\
         n = 0\n\
         while True:\n\
         \x20   try:\n\
         \x20       pid = os.fork()\n\
         \x20   except OSError as e:\n\
         \x20       print(e.errno, n, flush=True)\n\
         \x20       sys.exit(3)\n\
         \x20   if pid == 0:\n\
         \x20       time.sleep(60)  # {mark}\n\
         \x20       os._exit(0)\n\
         \x20   n += 1\n"
    );
    let flags = "--pids 32 --timeout 20s --json";
    let out = run_checked(who, &argv(flags, &[PYTHON, "-c", &script]));
    assert_code(&out, 3);
    let text = stdout(&out);
    let first: Vec<u32> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(first.first(), Some(&(libc::EAGAIN as u32)), "{text}");
    // The init and python count too.
    assert!((1..=30).contains(&first[1]), "forked {}", first[1]);
    let json = result(&out);
    assert_eq!(json["killed_by"], "pids");
    let usage = &limits(&json)["usage"];
    assert_eq!(usage["pids_limit_hit"], true);
    if let Some(peak) = usage["pids_peak"].as_u64() {
        assert!(peak <= 32, "pids peak {peak}");
    }
    // The sleeping children died with the sandbox.
    assert_no_survivor(&mark);
    assert_host_works();
}

#[test]
fn fork_bomb_is_contained_and_ended_by_the_timeout() {
    for (i, who) in limit_users("fork_bomb").into_iter().enumerate() {
        fork_bomb_as(who, marker(20 + i as u32));
    }
}

fn fork_bomb_as(who: As, mark: String) {
    let bomb = format!("f() {{ f | f & }}; f; /bin/sleep {mark}");
    let started = Instant::now();
    let flags = "--pids 32 --timeout 2s --json";
    let out = run_checked(who, &argv(flags, &["/bin/sh", "-c", &bomb]));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_code(&out, 124);
    assert!(stderr(&out).contains("fork"), "{}", stderr(&out));
    let json = result(&out);
    assert_eq!(json["killed_by"], "timeout");
    let usage = &limits(&json)["usage"];
    assert_eq!(usage["pids_limit_hit"], true);
    if let Some(peak) = usage["pids_peak"].as_u64() {
        assert!(peak <= 32, "pids peak {peak}");
    }
    assert_no_survivor(&mark);
    assert_host_works();
}

#[test]
fn timeout_kills_a_setsid_grandchild_through_the_cgroup() {
    for (i, who) in limit_users("timeout_cgroup_kill").into_iter().enumerate() {
        timeout_cgroup_kill_as(who, marker(30 + i as u32));
    }
}

fn timeout_cgroup_kill_as(who: As, mark: String) {
    let script = format!("(setsid /bin/sleep {mark} &); /bin/sleep {mark}");
    let args = argv(
        "--memory 256M --timeout 2s --json",
        &["/bin/sh", "-c", &script],
    );
    let started = Instant::now();
    let child = command(who, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs, its cgroups exist and hold the sandbox (init, shell,
    // both sleepers): the check after the run is not vacuous.
    let runner = child.id();
    let mut seen = (Vec::new(), 0);
    let mut memory_seen = false;
    // Until the sandbox is seen whole, or has ended (a slow machine, such
    // as the emulated VM of `cargo xtask ci`, may take a while to start it).
    let mut child = child;
    while started.elapsed() < Duration::from_secs(20) && child.try_wait().unwrap().is_none() {
        let dirs = cgroups_of(runner);
        let most = dirs.iter().map(|d| procs(d).len()).max().unwrap_or(0);
        // v1: a directory of the memory hierarchy; v2: one with memory.max.
        memory_seen |= dirs
            .iter()
            .any(|d| d.starts_with("/sys/fs/cgroup/memory") || d.join("memory.max").exists());
        seen = (dirs, most);
        if seen.1 >= 3 && memory_seen {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = finish(child);
    assert!(memory_seen, "no memory cgroup seen: {seen:?}");
    assert!(seen.1 >= 3, "the sandbox was not in its cgroups: {seen:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_code(&out, 124);
    let json = result(&out);
    assert_eq!(json["killed_by"], "timeout");
    let method = &limits(&json)["applied"]["kill_method"];
    assert_ne!(method, "none");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // cgroup v2 with cgroup.kill (Linux 5.14+): one atomic write; the
        // sandbox started inside its cgroup.
        assert_eq!(method, "cgroup-kill", "{json}");
        assert_eq!(limits(&json)["clone_into_cgroup"], true, "{json}");
    }
    assert_no_survivor(&mark);
}

#[test]
fn half_a_cpu_gets_about_half_a_core() {
    if !root_and_python("cpus_half") {
        return;
    }
    for who in limit_users("cpus_half") {
        half_a_cpu_as(who);
    }
}

fn half_a_cpu_as(who: As) {
    // The spin ends by itself after 2 s of wall time, so the init reaps it
    // and the runner's rusage holds its CPU time.
    let spin = "import time\n\
                end = time.monotonic() + 2\n\
                while time.monotonic() < end:\n\
                \x20   pass\n";
    let flags = "--cpus 0.5 --timeout 30s --json";
    let out = run_checked(who, &argv(flags, &[PYTHON, "-c", spin]));
    assert_code(&out, 0);
    let json = result(&out);
    let wall = json["wall_time_ms"].as_f64().unwrap();
    let cpu = json["user_cpu_ms"].as_f64().unwrap() + json["system_cpu_ms"].as_f64().unwrap();
    assert!(
        (0.3..=0.7).contains(&(cpu / wall)),
        "cpu {cpu} ms in {wall} ms"
    );
    let limits = limits(&json);
    assert_eq!(limits["applied"]["applied"], serde_json::json!(["cpus"]));
    let cg_cpu = limits["usage"]["cpu_usage_usec"].as_f64().unwrap() / 1000.0;
    assert!(
        (0.3..=0.7).contains(&(cg_cpu / wall)),
        "cgroup: {cg_cpu} ms"
    );
    let throttled = limits["usage"]["cpu_throttled_periods"].as_u64();
    assert!(throttled.unwrap_or(0) > 0, "never throttled: {limits}");
}

#[test]
fn nofile_rlimit_caps_open_files() {
    if !root_and_python("rlimit_nofile") {
        return;
    }
    let script = "import os\n\
                  fds = []\n\
                  try:\n\
                  \x20   while True:\n\
                  \x20       fds.append(os.open('/dev/null', os.O_RDONLY))\n\
                  except OSError as e:\n\
                  \x20   print(e.errno, max(fds))\n";
    let flags = "--rlimit nofile=16 --json";
    let out = run_checked(As::Caller, &argv(flags, &[PYTHON, "-c", script]));
    assert_code(&out, 0);
    // fds 0..=15 open, the 17th fails.
    let want = format!("{} 15\n", libc::EMFILE);
    assert!(stdout(&out).starts_with(&want), "{}", stdout(&out));
    let rlimits = &result(&out)["enforced"]["rlimits"];
    let nofile = serde_json::json!({"resource": "nofile", "soft": 16, "hard": 16});
    assert!(rlimits.as_array().unwrap().contains(&nofile), "{rlimits}");
}

#[test]
fn default_rlimits_forbid_core_dumps() {
    let script = "ulimit -c; ulimit -Hc";
    let out = run_checked(As::Caller, &argv("--json", &["/bin/sh", "-c", script]));
    assert_code(&out, 0);
    assert!(stdout(&out).starts_with("0\n0\n"), "{}", stdout(&out));
    let rlimits = &result(&out)["enforced"]["rlimits"];
    let core = serde_json::json!({"resource": "core", "soft": 0, "hard": 0});
    assert!(rlimits.as_array().unwrap().contains(&core), "{rlimits}");
}

#[test]
fn cpu_time_limit_kills_a_spin() {
    let started = Instant::now();
    let flags = "--cpu-time 1s --timeout 30s --json";
    let out = run_checked(
        As::Caller,
        &argv(flags, &["/bin/sh", "-c", "while :; do :; done"]),
    );
    assert!(started.elapsed() < Duration::from_secs(25));
    let json = result(&out);
    // SIGXCPU at the soft limit; SIGKILL at the hard one if it was caught.
    let (code, signal) = (out.status.code(), json["signal"].as_i64());
    assert!(
        matches!((code, signal), (Some(152), Some(24)) | (Some(137), Some(9))),
        "exit {code:?} signal {signal:?}"
    );
    assert_eq!(json["killed_by"], Value::Null);
    let cpu = serde_json::json!({"resource": "cpu", "soft": 1, "hard": 2});
    let rlimits = json["enforced"]["rlimits"].as_array().unwrap();
    assert!(rlimits.contains(&cpu), "{rlimits:?}");
}

#[test]
fn bad_limit_values_are_rejected_before_anything_runs() {
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "12Q"], "unknown unit"),
        (&["--memory", "0"], "greater than zero"),
        (&["--memory=-5M"], "must not be negative"),
        (&["--memory", "-5M"], "must not be negative"),
        (&["--memory", "64M", "--memory-swap", "32M"], "memory-swap"),
        (&["--pids", "0"], "greater than zero"),
        (&["--cpus", "0"], "greater than zero"),
        (&["--cpus", "999"], "online"),
        (&["--io-max", "bogus"], "MAJ:MIN"),
        (&["--rlimit", "bogus=1"], "unknown rlimit"),
        (&["--rlimit", "nofile=32:16"], "above hard"),
    ];
    for (flags, message) in cases {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/echo", "workload-ran"]);
        let out = run_checked(As::Caller, &args);
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(err.contains(message), "{flags:?}: no {message:?} in {err}");
        assert!(!stdout(&out).contains("workload-ran"), "{flags:?}");
    }
}

#[test]
fn required_limits_fail_as_nobody_and_best_effort_runs() {
    if !can_run_as("limits_as_nobody", As::Nobody) {
        return;
    }
    if nobody_cgroup().is_some() {
        // A delegated subtree: nobody's limits are set (the tests above
        // run as nobody too).
        let out = run_checked(As::Nobody, &argv("--memory 64M --json", &["/bin/true"]));
        assert_code(&out, 0);
        let json = result(&out);
        let applied = &limits(&json)["applied"];
        assert_eq!(
            applied["applied"],
            serde_json::json!(["memory"]),
            "{applied}"
        );
        return;
    }
    let out = run_checked(As::Nobody, &argv("--memory 64M", &["/bin/true"]));
    assert_code(&out, 125);
    let err = stderr(&out);
    assert!(err.contains("memory limit"), "{err}");
    assert!(err.contains("--best-effort-limits"), "{err}");

    let flags = "--memory 64M --best-effort-limits --json";
    let out = run_checked(As::Nobody, &argv(flags, &["/bin/echo", "ran"]));
    assert_code(&out, 0);
    assert!(stdout(&out).starts_with("ran\n"));
    // Nobody may create no cgroup at all: the limits object is there, with
    // nothing applied.
    let json = result(&out);
    let applied = &limits(&json)["applied"];
    assert_eq!(applied["applied"], serde_json::json!([]));
    let not = applied["not_applied"].as_array().unwrap();
    assert_eq!(not.len(), 1, "{applied}");
    assert_eq!(not[0]["limit"], "memory");
    assert_eq!(not[0]["reason"], "no-cgroup");
}

#[test]
fn a_limit_the_kernel_refuses_fails_closed_unless_best_effort() {
    if !root("io_max_absent_device") {
        return;
    }
    // A block device of a major no driver claims (so none is made on
    // demand, as loop's are): blkio/io.max refuse it (ENODEV).
    let devices = std::fs::read_to_string("/proc/devices").unwrap();
    let block = devices.split("Block devices:").nth(1).unwrap_or_default();
    let claimed: Vec<u32> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let major = (240..=254).find(|m| !claimed.contains(m)).unwrap();
    let device = format!("{major}:0");
    let spec = format!("{device} rbps=1M");
    let mut args = vec!["--io-max", &spec];
    args.extend(argv("", &["/bin/true"]));
    let out = run_checked(As::Caller, &args);
    assert_code(&out, 125);
    let err = stderr(&out);
    assert!(err.contains("io-max"), "{err}");
    assert!(err.contains("--best-effort-limits"), "{err}");

    let mut args = vec!["--io-max", &spec];
    args.extend(argv(
        "--memory 64M --best-effort-limits --json",
        &["/bin/true"],
    ));
    let out = run_checked(As::Caller, &args);
    assert_code(&out, 0);
    let json = result(&out);
    let applied = &limits(&json)["applied"];
    assert_eq!(applied["applied"], serde_json::json!(["memory"]));
    assert_eq!(applied["not_applied"][0]["limit"], "io-max", "{applied}");
}

#[test]
fn a_forwarded_signal_under_limits_cleans_up() {
    if !root("signal_under_limits") {
        return;
    }
    let mark = marker(4);
    let script = format!("echo ready; exec /bin/sleep {mark}");
    let mut child = command(
        As::Caller,
        &argv("--memory 64M --json", &["/bin/sh", "-c", &script]),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut ready = [0u8; 6];
    let pipe = child.stdout.as_mut().unwrap();
    pipe.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    sys::kill(child.id(), libc::SIGTERM);
    let out = finish(child);
    assert_code(&out, 128 + libc::SIGTERM);
    assert_eq!(result(&out)["signal"], libc::SIGTERM);
    assert_no_survivor(&mark);
}

#[test]
fn result_fd_carries_the_json_and_stdout_only_the_workload() {
    let limited = is_root();
    // The workload tries to forge a result: the runner closed fd 3 for it.
    let forge = "echo hello; echo '{\"exit_code\":0}' >&3";
    let flags = match limited {
        true => "--result-fd 3 --memory 64M",
        false => "--result-fd 3",
    };
    for json_too in [false, true] {
        let mut args = argv(flags, &["/bin/sh", "-c", forge]);
        if json_too {
            args.insert(0, "--json");
        }
        let (read, write) = sys::pipe();
        let mut cmd = command(As::Caller, &args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        sys::give_as_fd3(&mut cmd, write.as_raw_fd());
        let child = cmd.spawn().unwrap();
        drop(write);
        let out = finish(child);
        let mut text = String::new();
        std::fs::File::from(read).read_to_string(&mut text).unwrap();

        assert_eq!(stdout(&out), "hello\n", "stdout has only the workload's");
        let err = stderr(&out);
        assert!(err.contains("Bad file descriptor"), "{err}");
        // The shell fails its redirection, so it exits 2.
        assert_code(&out, 2);
        assert_eq!(text.lines().count(), 1, "one result line: {text}");
        let json = parse_result(&text);
        assert_eq!(json["exit_code"], 2);
        assert!(json.get("wall_time_ms").is_some(), "{json}");
        if limited {
            let applied = &limits(&json)["applied"]["applied"];
            assert_eq!(applied, &serde_json::json!(["memory"]));
        }
    }
}

/// The only `unsafe` of these tests: a pipe, handing its end to the runner
/// as fd 3, and a signal.
mod sys {
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// A close-on-exec pipe: (read, write).
    pub fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
        // SAFETY: pipe2 just returned these fds, and nothing else owns them.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// Makes `fd` the spawned command's fd 3 (without close-on-exec).
    pub fn give_as_fd3(cmd: &mut Command, fd: RawFd) {
        let hook = move || {
            // SAFETY: dup2 and fcntl are async-signal-safe and only touch
            // fds of the forked child.
            unsafe {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // dup2 onto itself keeps close-on-exec: clear it.
                if fd == 3 && libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the hook runs between fork and exec and only makes the
        // async-signal-safe calls above; it allocates nothing.
        unsafe { cmd.pre_exec(hook) };
    }

    /// Sends `sig` to our child `pid`.
    pub fn kill(pid: u32, sig: i32) {
        // SAFETY: plain kill of a child we spawned and have not reaped.
        unsafe { libc::kill(pid as i32, sig) };
    }
}

/// Without a PID namespace, the cgroup ends what the workload left behind
/// (a `setsid` daemon) when the run ends.
#[test]
fn without_a_pid_namespace_the_cgroup_ends_leftovers() {
    if !root("without_a_pid_namespace_the_cgroup_ends_leftovers") {
        return;
    }
    let mark = marker(7);
    let script = format!("setsid sleep {mark} </dev/null >/dev/null 2>&1 & exit 0");
    let out = run_checked(
        As::Caller,
        &argv("--ns default,-pid --pids 1024", &["/bin/sh", "-c", &script]),
    );
    assert_code(&out, 0);
    assert_no_survivor(&mark);
}

//! End to end: the seccomp layer through `nucleus-run`. The default agent
//! profile denies from inside (checked against `--seccomp off`, so an errno
//! that dropped capabilities would give anyway proves nothing), custom OCI
//! profiles (kill and errno actions, podman's), pinning, bad profiles,
//! `--seccomp-log-denied`, and `seccomp record`.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WHO: [As; 2] = [As::Caller, As::Nobody];
const PYTHON: &str = "/usr/bin/python3";
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Runs `python3 -c script` under `flags`.
fn python(who: As, flags: &[&str], script: &str) -> Output {
    let mut args = flags.to_vec();
    args.extend(["--", PYTHON, "-c", script]);
    run(who, &args)
}

/// The `name=value` lines a probe script printed.
fn results(out: &Output) -> BTreeMap<String, String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The probe result `name` as an errno (0: the call succeeded).
fn errno(res: &BTreeMap<String, String>, name: &str) -> i32 {
    res.get(name)
        .unwrap_or_else(|| panic!("no {name} in {res:?}"))
        .parse()
        .unwrap()
}

fn write_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    set_mode(&path, 0o644);
    path
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// The file names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum failed");
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

/// Asserts a refusal before anything ran: 125, `message` on stderr.
fn assert_refused(out: &Output, message: &str) {
    assert_code(out, 125);
    let err = stderr(out);
    assert!(err.contains(message), "expected {message:?} in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(out), "", "the workload ran");
}

/// A profile that allows everything but `rules` (OCI `syscalls` entries).
fn allow_all_but(rules: &str) -> String {
    format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{rules}]}}"#)
}

#[test]
fn fork_threads_and_ordinary_sockets_work_under_the_default_profile() {
    let script = r#"
import os, socket, threading
def show(k, v): print(f"{k}={v}", flush=True)
def sock(fam, ty, proto=0):
    try:
        socket.socket(fam, ty, proto).close(); return 0
    except OSError as e: return e.errno
pid = os.fork()
if pid == 0: os._exit(7)
show("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
seen = []
t = threading.Thread(target=lambda: seen.append(threading.get_native_id())); t.start(); t.join()
show("thread", int(seen[0] != threading.get_native_id()))
show("inet_stream", sock(socket.AF_INET, socket.SOCK_STREAM))
show("inet_dgram", sock(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC))
show("unix", sock(socket.AF_UNIX, socket.SOCK_STREAM))
show("netlink_route", sock(socket.AF_NETLINK, socket.SOCK_RAW, 0))
a, b = socket.socketpair(); a.sendall(b"x"); show("socketpair", b.recv(1).decode())
"#;
    for who in WHO {
        if !can_run_as("fork_threads_and_sockets", who) {
            continue;
        }
        let out = python(who, &[], script);
        assert_code(&out, 0);
        let res = results(&out);
        assert_eq!(errno(&res, "fork"), 7, "{res:?}");
        assert_eq!(errno(&res, "thread"), 1, "{res:?}");
        for ok in ["inet_stream", "inet_dgram", "unix", "netlink_route"] {
            assert_eq!(errno(&res, ok), 0, "{ok} failed: {res:?}");
        }
        assert_eq!(res["socketpair"], "x");
    }
}

#[test]
fn the_filter_covers_the_init_and_the_workload() {
    for who in WHO {
        if !can_run_as("filter_covers_init", who) {
            continue;
        }
        let grep = [
            "/bin/grep",
            "-h",
            "^Seccomp",
            "/proc/1/status",
            "/proc/self/status",
        ];
        let mut args = vec!["--"];
        args.extend(grep);
        let out = run(who, &args);
        assert_code(&out, 0);
        // Mode 2 (filter), one filter: the init's, inherited by the workload.
        assert_eq!(
            stdout(&out),
            "Seccomp:\t2\nSeccomp_filters:\t1\n".repeat(2),
            "{}",
            stdout(&out)
        );
        let mut args = vec!["--seccomp", "off", "--"];
        args.extend(grep);
        let out = run(who, &args);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "Seccomp:\t0\nSeccomp_filters:\t0\n".repeat(2));
    }
}

#[test]
fn json_reports_the_filter_and_null_when_off() {
    for who in WHO {
        if !can_run_as("json_reports_the_filter", who) {
            continue;
        }
        let out = run(who, &["--json", "--", "/bin/true"]);
        assert_code(&out, 0);
        let sc = &result(&out)["enforced"]["seccomp"];
        assert_eq!(sc["default_action"], "errno(1)", "{sc}");
        assert_eq!(sc["log_denied"], false, "{sc}");
        assert_eq!(sc["arch"], std::env::consts::ARCH, "{sc}");
        assert_eq!(sc["skipped_syscalls"], serde_json::json!([]), "{sc}");
        assert!(sc["rules"].as_u64().unwrap() > 0, "{sc}");
        let insns = sc["instructions"].as_u64().unwrap();
        assert!(insns > 0 && insns <= 4096, "{sc}");
        let sha = sc["profile_sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{sc}"
        );
        let out = run(who, &["--seccomp", "off", "--json", "--", "/bin/true"]);
        assert_code(&out, 0);
        assert_eq!(result(&out)["enforced"]["seccomp"], Value::Null);
    }
}

#[test]
fn the_printed_default_profile_is_the_default_profile() {
    let out = run(As::Caller, &["seccomp", "default"]);
    assert_code(&out, 0);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO", "{json}");
    assert_eq!(json["defaultErrnoRet"], libc::EPERM, "{json}");
    let dir = TempDir::new("seccomp-default");
    let file = write_file(&dir, "default.json", &stdout(&out));
    let sha = |extra: &[&str]| {
        let mut args = vec!["--json"];
        args.extend(extra);
        args.extend(["--", "/bin/true"]);
        let out = run(As::Caller, &args);
        assert_code(&out, 0);
        result(&out)["enforced"]["seccomp"]["profile_sha256"].clone()
    };
    // Printed and read back, it is the same profile, rule for rule.
    assert_eq!(sha(&[]), sha(&["--seccomp-profile", &arg(&file)]));
}

#[test]
fn a_kill_process_rule_ends_the_workload_with_sigsys() {
    let dir = TempDir::new("seccomp-kill");
    let rule = r#"{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}"#;
    let profile = write_file(&dir, "kill.json", &allow_all_but(rule));
    let script = "import os\nprint('before', flush=True)\nos.getppid()\nprint('after')";
    for who in WHO {
        if !can_run_as("kill_process_rule", who) {
            continue;
        }
        let out = python(
            who,
            &["--json", "--seccomp-profile", &arg(&profile)],
            script,
        );
        assert_code(&out, 128 + libc::SIGSYS);
        let json = result(&out);
        assert_eq!(json["signal"], libc::SIGSYS, "{json}");
        assert_eq!(json["enforced"]["seccomp"]["default_action"], "allow");
        assert!(stdout(&out).starts_with("before\n{"), "{}", stdout(&out));
    }
}

#[test]
fn an_errno_rule_returns_its_errno() {
    let dir = TempDir::new("seccomp-errno");
    let rule = r#"{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}"#;
    let profile = write_file(&dir, "errno.json", &allow_all_but(rule));
    let script = "import os\ntry:\n os.getcwd()\nexcept OSError as e:\n print(e.errno)";
    for who in WHO {
        if !can_run_as("errno_rule", who) {
            continue;
        }
        let out = python(who, &["--seccomp-profile", &arg(&profile)], script);
        assert_code(&out, 0);
        assert_eq!(stdout(&out).trim(), libc::EACCES.to_string());
    }
}

#[test]
fn podmans_profile_runs_a_shell() {
    if !Path::new(PODMAN_PROFILE).exists() {
        return skip(
            "podmans_profile_runs_a_shell",
            "no /usr/share/containers/seccomp.json (golang-github-containers-common)",
        );
    }
    for who in WHO {
        if !can_run_as("podmans_profile_runs_a_shell", who) {
            continue;
        }
        let args = [
            "--json",
            "--seccomp-profile",
            PODMAN_PROFILE,
            "--",
            "/bin/sh",
            "-c",
            "ls /; echo ok",
        ];
        let out = run(who, &args);
        assert_code(&out, 0);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"usr"), "{text}");
        assert_eq!(lines[lines.len() - 2], "ok", "{text}");
        let sc = &result(&out)["enforced"]["seccomp"];
        // podman answers ENOSYS for what it does not know.
        assert_eq!(sc["default_action"], "errno(38)", "{sc}");
    }
}

#[test]
fn a_pinned_profile_runs_only_with_its_hash() {
    let dir = TempDir::new("seccomp-pin");
    let profile = write_file(&dir, "p.json", &allow_all_but(""));
    let path = arg(&profile);
    let sha = sha256_of(&profile);
    let pinned = |pin: &str| {
        let args = [
            "--seccomp-profile",
            &path,
            "--seccomp-profile-sha256",
            pin,
            "--",
            "/bin/echo",
            "ran",
        ];
        run(As::Caller, &args)
    };
    for pin in [sha.clone(), format!("sha256:{sha}"), sha.to_uppercase()] {
        let out = pinned(&pin);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "ran\n");
    }
    let wrong = "0".repeat(64);
    let out = pinned(&wrong);
    assert_refused(&out, &format!("{path} does not match its pin"));
    assert_refused(&out, &format!("expected sha256 {wrong}, file has {sha}"));
    // One byte more and the pin no longer holds.
    std::fs::write(&profile, allow_all_but("") + "\n").unwrap();
    assert_refused(&pinned(&sha), "does not match its pin");
    assert_refused(&pinned("xyz"), "invalid sha256 pin \"xyz\"");
    let pin_alone = ["--seccomp-profile-sha256", &sha, "--", "/bin/echo", "ran"];
    assert_refused(&run(As::Caller, &pin_alone), "--seccomp-profile-sha256");
}

#[test]
fn bad_profiles_fail_with_125_naming_the_problem() {
    let dir = TempDir::new("seccomp-bad");
    let cases = [
        (
            "malformed.json",
            r#"{"defaultAction": "#.to_owned(),
            "malformed seccomp profile JSON: EOF while parsing a value at line 1",
        ),
        (
            "unknown-syscall.json",
            allow_all_but(r#"{"names": ["getpid", "frobnicate_me"], "action": "SCMP_ACT_ERRNO"}"#),
            "unknown syscall names: frobnicate_me",
        ),
        (
            "unknown-default.json",
            r#"{"defaultAction": "SCMP_ACT_PERHAPS"}"#.to_owned(),
            "unknown seccomp action \"SCMP_ACT_PERHAPS\"",
        ),
        (
            "unknown-action.json",
            allow_all_but(r#"{"names": ["getpid"], "action": "SCMP_ACT_MAYBE"}"#),
            "unknown seccomp action \"SCMP_ACT_MAYBE\"",
        ),
        (
            "unknown-field.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}"#.to_owned(),
            "unknown field `sycalls`",
        ),
        (
            "flag.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#
                .to_owned(),
            "unsupported seccomp flag \"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"",
        ),
    ];
    for (name, text, message) in cases {
        let path = write_file(&dir, name, &text);
        let path = arg(&path);
        let out = run(
            As::Caller,
            &["--seccomp-profile", &path, "--", "/bin/echo", "ran"],
        );
        assert_refused(&out, message);
    }
    let missing = arg(&dir.path().join("missing.json"));
    let out = run(
        As::Caller,
        &["--seccomp-profile", &missing, "--", "/bin/echo", "ran"],
    );
    assert_refused(&out, &format!("failed to read seccomp profile {missing}"));
    let out = run(
        As::Caller,
        &["--seccomp", "strict", "--", "/bin/echo", "ran"],
    );
    assert_refused(&out, "invalid value 'strict' for '--seccomp <MODE>'");
    assert_refused(&out, "[possible values: default, off]");
}

#[test]
fn common_programs_run_under_the_default_profile() {
    let shell = "printf 'b\\na\\nc\\n' | sort | cat; ls -d /usr /etc; \
                 echo data > /tmp/f && cat /tmp/f | wc -c; \
                 find /usr/lib -maxdepth 1 -name 'os-release' | head -1; \
                 dd if=/dev/zero bs=1k count=4 2>/dev/null | sha256sum | cut -c1-8";
    let script = r#"
import concurrent.futures as cf, subprocess, threading
with cf.ThreadPoolExecutor(4) as ex: print(sum(ex.map(lambda x: x * x, range(10))))
print(subprocess.run(["/bin/echo", "child"], capture_output=True, text=True).stdout.strip())
print(subprocess.check_output("echo $((6*7))", shell=True, text=True).strip())
"#;
    let git = Path::new("/usr/bin/git").exists();
    if !git {
        skip("common_programs_run/git", "no /usr/bin/git");
    }
    let git_flow = "cd /tmp && git init -q r && cd r && echo hi > f && git add f && \
                    git -c user.name=a -c user.email=a@b commit -qm first && \
                    git log --format=%s && git --version | cut -d' ' -f1-2";
    for who in WHO {
        if !can_run_as("common_programs_run", who) {
            continue;
        }
        let out = run(who, &["--", "/bin/sh", "-c", shell]);
        assert_code(&out, 0);
        assert_eq!(
            stdout(&out),
            "a\nb\nc\n/etc\n/usr\n5\n/usr/lib/os-release\nad7facb2\n"
        );
        let out = python(who, &[], script);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "285\nchild\n42\n");
        if git {
            let out = run(
                who,
                &["--env", "HOME=/tmp", "--", "/bin/sh", "-c", git_flow],
            );
            assert_code(&out, 0);
            assert_eq!(stdout(&out), "first\ngit version\n");
        }
    }
}

#[test]
fn log_denied_is_reported_and_the_call_is_still_denied() {
    let script =
        "import socket\ntry:\n socket.socket(17, 3, 0)\nexcept OSError as e:\n print(e.errno)";
    for who in WHO {
        if !can_run_as("log_denied", who) {
            continue;
        }
        let out = python(who, &["--json", "--seccomp-log-denied"], script);
        assert_code(&out, 0);
        assert!(stdout(&out).starts_with("1\n"), "{}", stdout(&out));
        let sc = &result(&out)["enforced"]["seccomp"];
        assert_eq!(sc["log_denied"], true, "{sc}");
        assert_eq!(sc["default_action"], "errno(1)", "{sc}");
    }
}

/// A profile recorded by `nucleus-run seccomp record`, in a directory
/// `who` can write.
struct Recorded {
    dir: TempDir,
    profile: PathBuf,
}

fn record(who: As, tag: &str, cmd: &[&str]) -> (Recorded, Output) {
    let dir = TempDir::new(tag);
    set_mode(dir.path(), 0o777);
    let profile = dir.path().join("profile.json");
    let path = arg(&profile);
    let mut args = vec!["seccomp", "record", "-o", &path, "--"];
    args.extend(cmd);
    let out = run(who, &args);
    (Recorded { dir, profile }, out)
}

#[test]
fn a_recorded_profile_replays_the_run() {
    for who in WHO {
        if !can_run_as("recorded_profile_replays", who) {
            continue;
        }
        let (rec, out) = record(who, "record-ls", &["/bin/ls", "/"]);
        assert_code(&out, 0);
        let listing = stdout(&out);
        assert!(listing.contains("usr\n"), "{listing}");
        // Written whole, by rename: no temporary file is left beside it.
        assert_eq!(entries(rec.dir.path()), ["profile.json"]);
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(&rec.profile).unwrap()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO", "{json}");
        let names: Vec<&str> = json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["names"].as_array().unwrap())
            .map(|n| n.as_str().unwrap())
            .collect();
        for needed in ["execve", "exit_group", "getdents64", "write"] {
            assert!(names.contains(&needed), "{needed} not recorded: {names:?}");
        }
        for never in ["ptrace", "bpf", "mount", "socketpair"] {
            assert!(!names.contains(&never), "{never} recorded: {names:?}");
        }
        let out = run(
            who,
            &[
                "--seccomp-profile",
                &arg(&rec.profile),
                "--",
                "/bin/ls",
                "/",
            ],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), listing);
    }
}

#[test]
fn a_recorded_profile_denies_what_the_run_never_did() {
    // Not sockets: python3 itself opens one at start (glibc asks nscd for
    // the user's home through an AF_UNIX socket), so socket is recorded.
    let probe = r#"
import os
def show(k, f):
    try:
        f(); print(f"{k}=0")
    except OSError as e: print(f"{k}={e.errno}")
show("pipe", os.pipe)
show("mkdir", lambda: os.mkdir("/tmp/d"))
"#;
    for who in WHO {
        if !can_run_as("recorded_profile_denies", who) {
            continue;
        }
        let (rec, out) = record(who, "record-py", &[PYTHON, "-c", "print(1)"]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "1\n");
        let out = python(who, &["--seccomp-profile", &arg(&rec.profile)], "print(1)");
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "1\n");
        let out = python(who, &["--seccomp-profile", &arg(&rec.profile)], probe);
        assert_code(&out, 0);
        let res = results(&out);
        assert_eq!(errno(&res, "pipe"), libc::EPERM, "{res:?}");
        assert_eq!(errno(&res, "mkdir"), libc::EPERM, "{res:?}");
        // The same probe runs under the default profile.
        let res = results(&python(who, &[], probe));
        assert_eq!(
            (errno(&res, "pipe"), errno(&res, "mkdir")),
            (0, 0),
            "{res:?}"
        );
    }
}

#[test]
fn recording_replaces_the_output_atomically_and_keeps_the_exit_code() {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("record-atomic");
    let profile = write_file(&dir, "profile.json", "old contents");
    let inode = std::fs::metadata(&profile).unwrap().ino();
    let mut old = std::fs::File::open(&profile).unwrap();
    let path = arg(&profile);
    let args = [
        "seccomp", "record", "-o", &path, "--", "/bin/sh", "-c", "exit 3",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 3);
    // A new file was renamed over the old one: a reader of the old one
    // never saw a half-written profile.
    assert_ne!(std::fs::metadata(&profile).unwrap().ino(), inode);
    let mut text = String::new();
    old.read_to_string(&mut text).unwrap();
    assert_eq!(text, "old contents");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(entries(dir.path()), ["profile.json"]);
    // An output that cannot be replaced: 125, and nothing left behind.
    let target = dir.path().join("a-directory");
    std::fs::create_dir(&target).unwrap();
    let out = run(
        As::Caller,
        &["seccomp", "record", "-o", &arg(&target), "--", "/bin/true"],
    );
    assert_code(&out, 125);
    assert!(stderr(&out).contains(&arg(&target)), "{}", stderr(&out));
    assert_eq!(entries(dir.path()), ["a-directory", "profile.json"]);
    assert_eq!(entries(&target), Vec::<String>::new());
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    //! Probes that call syscalls by their x86_64 numbers.

    use super::*;
    use std::time::{Duration, Instant};

    /// `call(nr, args...)` gives 0 on success, else the errno.
    const PRELUDE: &str = r#"
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return 0 if r >= 0 else ctypes.get_errno()
def show(k, v): print(f"{k}={v}", flush=True)
def clone(flags):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(56), ctypes.c_long(flags), *[ctypes.c_long(0)] * 4)
    if r == 0: os._exit(0)
    if r > 0: os.waitpid(r, 0); return 0
    return ctypes.get_errno()
def sock(fam, ty, proto=0):
    try:
        socket.socket(fam, ty, proto).close(); return 0
    except OSError as e: return e.errno
"#;

    const CLONE_NEWUSER: u64 = 0x1000_0000;
    const CLONE_NEWNS: u64 = 0x0002_0000;
    const READ_IMPLIES_EXEC: u64 = 0x0040_0000;

    /// Syscalls the default profile leaves out, with harmless arguments.
    #[rustfmt::skip]
    const DENIED: &[(&str, u32)] = &[
        ("ptrace", 101), ("bpf", 321), ("keyctl", 250), ("add_key", 248), ("request_key", 249),
        ("perf_event_open", 298), ("userfaultfd", 323), ("io_uring_setup", 425),
        ("io_uring_enter", 426), ("io_uring_register", 427), ("mount", 165), ("umount2", 166),
        ("pivot_root", 155), ("chroot", 161), ("setns", 308), ("kexec_load", 246),
        ("kexec_file_load", 320), ("init_module", 175), ("finit_module", 313),
        ("delete_module", 176), ("reboot", 169), ("swapon", 167), ("swapoff", 168),
        ("acct", 163), ("settimeofday", 164), ("clock_settime", 227), ("adjtimex", 159),
        ("sethostname", 170), ("syslog", 103), ("process_vm_readv", 310),
        ("process_vm_writev", 311), ("pidfd_getfd", 438), ("kcmp", 312),
        ("open_by_handle_at", 304), ("name_to_handle_at", 303), ("fsopen", 430),
        ("fsmount", 432), ("move_mount", 429), ("open_tree", 428), ("mount_setattr", 442),
        ("fanotify_init", 300), ("modify_ldt", 154), ("iopl", 172), ("ioperm", 173),
        ("quotactl", 179), ("uselib", 134), ("ustat", 136), ("sysfs", 139), ("vhangup", 153),
        ("memfd_secret", 447),
    ];

    fn probe(who: As, flags: &[&str], body: &str) -> BTreeMap<String, String> {
        let out = python(who, flags, &format!("{PRELUDE}{body}"));
        assert_code(&out, 0);
        results(&out)
    }

    /// The namespace, clone3 and argument probes, printed as `name=errno`.
    fn escape_body() -> String {
        format!(
            r#"
show("clone_newns", clone({flags} | 17))
# Last of the namespace probes: it leaves this process in an unmapped user namespace.
ctypes.set_errno(0); libc.unshare({CLONE_NEWUSER}); show("unshare_newuser", ctypes.get_errno())
show("unshare_newtime", call(272, 0x80))
show("unshare_files", call(272, 0x400))
show("clone3", call(435, 0, 0))
show("personality_query", call(135, 0xffffffff))
show("personality_exec", call(135, {READ_IMPLIES_EXEC}))
show("packet", sock(17, socket.SOCK_RAW))
show("packet_high_bits", call(41, (1 << 32) | 17, 3, 0))
show("inet_raw", sock(socket.AF_INET, socket.SOCK_RAW, 1))
show("netlink_audit", sock(socket.AF_NETLINK, socket.SOCK_RAW, 9))
"#,
            flags = CLONE_NEWUSER | CLONE_NEWNS,
        )
    }

    #[test]
    fn escape_syscalls_are_eperm_under_the_default_profile() {
        let mut body = escape_body();
        for (name, nr) in DENIED {
            body.push_str(&format!("show({name:?}, call({nr}, 0, 0, 0, 0, 0))\n"));
        }
        for who in WHO {
            if !can_run_as("escape_syscalls_are_eperm", who) {
                continue;
            }
            let res = probe(who, &[], &body);
            for (name, _) in DENIED {
                assert_eq!(errno(&res, name), libc::EPERM, "{name}: {res:?}");
            }
            for name in [
                "unshare_newuser",
                "unshare_newtime",
                "clone_newns",
                "personality_exec",
                "packet",
                "packet_high_bits",
                "inet_raw",
                "netlink_audit",
            ] {
                assert_eq!(errno(&res, name), libc::EPERM, "{name}: {res:?}");
            }
            // libc falls back from clone3 to clone, whose flags are visible.
            assert_eq!(errno(&res, "clone3"), libc::ENOSYS, "{res:?}");
            assert_eq!(errno(&res, "unshare_files"), 0, "{res:?}");
            assert_eq!(errno(&res, "personality_query"), 0, "{res:?}");
        }
    }

    #[test]
    fn without_the_filter_the_same_calls_get_past_seccomp() {
        for who in WHO {
            if !can_run_as("without_the_filter", who) {
                continue;
            }
            let res = probe(who, &["--seccomp", "off"], &escape_body());
            // A nested user namespace needs no capability: only seccomp
            // stood in the way.
            assert_eq!(errno(&res, "unshare_newuser"), 0, "{res:?}");
            assert_eq!(errno(&res, "clone_newns"), 0, "{res:?}");
            assert_eq!(errno(&res, "personality_exec"), 0, "{res:?}");
            assert_ne!(errno(&res, "clone3"), libc::ENOSYS, "{res:?}");
            let res = probe(
                who,
                &["--seccomp", "off"],
                "show('ptrace', call(101, 16, 999999, 0, 0))",
            );
            assert_eq!(errno(&res, "ptrace"), libc::ESRCH, "{res:?}");
        }
    }

    #[test]
    fn a_raw_socket_stays_denied_with_cap_net_raw() {
        let body = "show('packet', sock(17, socket.SOCK_RAW))";
        for who in WHO {
            if !can_run_as("raw_socket_with_cap_net_raw", who) {
                continue;
            }
            let keep = ["--cap-keep", "CAP_NET_RAW"];
            let res = probe(who, &[&keep[..], &["--seccomp", "off"]].concat(), body);
            assert_eq!(
                errno(&res, "packet"),
                0,
                "the capability allows it: {res:?}"
            );
            let res = probe(who, &keep, body);
            assert_eq!(errno(&res, "packet"), libc::EPERM, "{res:?}");
        }
    }

    #[test]
    fn tiocsti_and_tioclinux_are_eperm_on_the_controlling_terminal() {
        // On its own controlling terminal TIOCSTI is allowed by the kernel
        // (with dev.tty.legacy_tiocsti) or EIO; only seccomp says EPERM.
        let body = r#"
import fcntl, termios
m, s = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    def ioctl(cmd):
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(16), ctypes.c_long(s), ctypes.c_long(cmd), ctypes.c_char_p(b"x"))
        return 0 if r >= 0 else ctypes.get_errno()
    show("tiocsti", ioctl(termios.TIOCSTI))
    show("tiocsti_high_bits", ioctl((1 << 32) | termios.TIOCSTI))
    show("tioclinux", ioctl(0x541c))
    show("tcgets", ioctl(termios.TCGETS))
    os._exit(0)
os.waitpid(pid, 0)
"#;
        for who in WHO {
            if !can_run_as("tiocsti", who) {
                continue;
            }
            let res = probe(who, &[], body);
            for name in ["tiocsti", "tiocsti_high_bits", "tioclinux"] {
                assert_eq!(errno(&res, name), libc::EPERM, "{name}: {res:?}");
            }
            assert_eq!(errno(&res, "tcgets"), 0, "{res:?}");
            let res = probe(who, &["--seccomp", "off"], body);
            for name in ["tiocsti", "tiocsti_high_bits"] {
                assert_ne!(errno(&res, name), libc::EPERM, "{name}: {res:?}");
            }
        }
    }

    /// `mov eax, 20 (i386 getpid); int 0x80; ret`, run from an executable page.
    const INT80: &str = r#"
import mmap
buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3]))
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
print("before", flush=True)
print("pid", ctypes.CFUNCTYPE(ctypes.c_int)(addr)(), flush=True)
"#;

    #[test]
    fn other_calling_conventions_are_killed() {
        let x32 = "print('before', flush=True)\nprint('x32', call(0x40000000 | 39))";
        for who in WHO {
            if !can_run_as("other_calling_conventions", who) {
                continue;
            }
            for (name, body) in [("x32", x32), ("i386", INT80)] {
                let off = python(who, &["--seccomp", "off"], &format!("{PRELUDE}{body}"));
                if name == "i386" && !stdout(&off).contains("pid 2") {
                    skip(
                        "other_calling_conventions/i386",
                        "int 0x80 does not work here (no IA32 emulation)",
                    );
                    continue;
                }
                assert_code(&off, 0);
                let out = python(who, &["--json"], &format!("{PRELUDE}{body}"));
                assert_code(&out, 128 + libc::SIGSYS);
                assert!(
                    stdout(&out).starts_with("before\n{"),
                    "{name}: {}",
                    stdout(&out)
                );
                assert_eq!(result(&out)["signal"], libc::SIGSYS);
            }
        }
    }

    #[test]
    fn podmans_profile_follows_the_kept_capabilities() {
        if !Path::new(PODMAN_PROFILE).exists() {
            return skip(
                "podmans_profile_follows_caps",
                "no /usr/share/containers/seccomp.json (golang-github-containers-common)",
            );
        }
        let dir = TempDir::new("seccomp-podman-caps");
        let caps = write_file(
            &dir,
            "caps.toml",
            "keep = [\"CAP_SYS_PTRACE\"]\nallow_namespace_caps = true\n",
        );
        let body = "p = os.getpid()\nshow('kcmp', call(312, p, p, 0, 0, 0))\n\
                    show('io_uring_setup', call(425, 1, 0))\nshow('bpf', call(321, 0, 0, 0))";
        for who in WHO {
            if !can_run_as("podmans_profile_follows_caps", who) {
                continue;
            }
            let flags = ["--seccomp-profile", PODMAN_PROFILE];
            let res = probe(who, &flags, body);
            // kcmp is CAP_SYS_PTRACE's; unlisted io_uring gets podman's ENOSYS.
            assert_eq!(errno(&res, "kcmp"), libc::EPERM, "{res:?}");
            assert_eq!(errno(&res, "io_uring_setup"), libc::ENOSYS, "{res:?}");
            assert_eq!(errno(&res, "bpf"), libc::EPERM, "{res:?}");
            let res = probe(
                who,
                &[&flags[..], &["--caps-policy", &arg(&caps)]].concat(),
                body,
            );
            assert_eq!(errno(&res, "kcmp"), 0, "{res:?}");
        }
    }

    /// Audit records of seccomp denials (`type=1326`) of syscall `nr`.
    fn logged_denials(nr: u32) -> Option<usize> {
        let out = Command::new("dmesg").output().ok()?;
        out.status.success().then_some(())?;
        let needle = format!(" syscall={nr} ");
        Some(
            stdout(&out)
                .lines()
                .filter(|l| l.contains("type=1326") && l.contains(&needle))
                .filter(|l| l.contains("exe=\"/usr/bin/python3"))
                .count(),
        )
    }

    fn auditd_running() -> bool {
        processes_with("auditd").into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "auditd")
        })
    }

    #[test]
    fn log_denied_writes_an_audit_record_and_plain_denials_do_not() {
        let test = "log_denied_writes_an_audit_record";
        let logged =
            std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
        if !is_root() || !logged.split_whitespace().any(|a| a == "errno") {
            return skip(
                test,
                "needs root and errno in kernel.seccomp.actions_logged",
            );
        }
        if auditd_running() || logged_denials(0).is_none() {
            return skip(test, "audit records go to auditd, or dmesg is unreadable");
        }
        // acct and swapoff: denied by the profile, called by nothing else here.
        let (acct, swapoff) = (163, 168);
        let before = (
            logged_denials(acct).unwrap(),
            logged_denials(swapoff).unwrap(),
        );
        let res = probe(
            As::Caller,
            &[],
            &format!("show('swapoff', call({swapoff}, 0))"),
        );
        assert_eq!(errno(&res, "swapoff"), libc::EPERM);
        // kauditd prints asynchronously and through printk's rate limit
        // (5 s windows): wait, and try again in a later window.
        let logged = (0..3).any(|_| {
            let flags = ["--seccomp-log-denied"];
            let res = probe(
                As::Caller,
                &flags,
                &format!("show('acct', call({acct}, 0))"),
            );
            assert_eq!(errno(&res, "acct"), libc::EPERM);
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline {
                if logged_denials(acct).unwrap() > before.0 {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert!(logged, "no audit record of the denied acct");
        assert_eq!(
            logged_denials(swapoff).unwrap(),
            before.1,
            "logged without the flag"
        );
    }
}

// The init runs under the workload's filter: a custom profile that takes
// from it the syscalls it needs to report is refused before anything runs.

#[test]
fn a_profile_denying_write_cannot_turn_a_failure_into_success() {
    let dir = TempDir::new("seccomp-nowrite");
    let rule = r#"{"names": ["write"], "action": "SCMP_ACT_ERRNO"}"#;
    let profile = write_file(&dir, "nowrite.json", &allow_all_but(rule));
    let args = [
        "--seccomp-profile",
        &arg(&profile),
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 125);
    assert!(stderr(&out).contains("init needs"), "{}", stderr(&out));
}

#[test]
fn a_profile_denying_wait4_fails_instead_of_hanging() {
    let dir = TempDir::new("seccomp-nowait");
    let rule = r#"{"names": ["wait4"], "action": "SCMP_ACT_ERRNO"}"#;
    let profile = write_file(&dir, "nowait.json", &allow_all_but(rule));
    // The timeout only keeps a regression from hanging the test.
    let args = [
        "--timeout",
        "5s",
        "--seccomp-profile",
        &arg(&profile),
        "--",
        "/bin/true",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 125);
}

#[test]
fn a_workload_that_traces_itself_is_not_reported_as_exited_when_it_stops() {
    // With --seccomp off, PTRACE_TRACEME makes the init the tracer; the
    // workload's next signal is a ptrace stop that waitpid reports.
    let script = "import ctypes, os, signal\nctypes.CDLL(None).ptrace(0, 0, 0, 0)\n\
                  os.kill(os.getpid(), signal.SIGUSR1)\nprint('unreachable')";
    let out = python(
        As::Caller,
        &["--timeout", "10s", "--json", "--seccomp", "off"],
        script,
    );
    assert_code(&out, 128 + libc::SIGUSR1);
}

/// A link planted at the output path (by a user who can write its
/// directory) is replaced, never written through: the file it points at
/// stays as it was, and nothing is written through the temporary name
/// either (it is created new, with a name nobody can guess).
#[test]
fn recording_never_writes_through_a_planted_link() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("record-link");
    set_mode(dir.path(), 0o777);
    let victim = write_file(&dir, "victim", "precious");
    set_mode(&victim, 0o600);
    let out_path = dir.path().join("profile.json");
    std::os::unix::fs::symlink(&victim, &out_path).unwrap();
    let args = [
        "seccomp",
        "record",
        "-o",
        &arg(&out_path),
        "--",
        "/bin/true",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&out_path).unwrap();
    assert!(meta.is_file(), "the link was written through, not replaced");
    assert_eq!(meta.uid(), caller_uid());
    assert_eq!(entries(dir.path()), ["profile.json", "victim"]);
}

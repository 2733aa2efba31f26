//! Common programs under real profiles: the default agent profile and podman's.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{output_under, skip, which};
use nucleus_seccomp::{OciContext, Profile};

const PODMAN: &str = "/usr/share/containers/seccomp.json";

fn agent(cmd: &mut Command) -> Output {
    output_under(cmd, Profile::default_agent().compile().expect("compile"))
}

fn assert_ran(out: &Output, want: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(want),
        "status {:?}\nstdout {stdout}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn podman_profile_runs_sh() {
    if !Path::new(PODMAN).exists() {
        return skip(
            "podman_profile_runs_sh",
            "no /usr/share/containers/seccomp.json (golang-github-containers-common)",
        );
    }
    let ctx = OciContext::native(Vec::new());
    let profile = Profile::from_file(Path::new(PODMAN), None, &ctx).expect("podman profile");
    let out = output_under(
        Command::new("/bin/sh").args(["-c", "ls /; echo ok"]),
        profile.compile().expect("compile"),
    );
    assert_ran(&out, "ok");
    assert!(String::from_utf8_lossy(&out.stdout).contains("usr"));
}

#[test]
fn agent_profile_runs_sh_and_coreutils() {
    let script = "set -e; echo hi | cat; ls / >/dev/null; x=$(date +%s); test -n \"$x\"; \
                  d=$(mktemp -d); echo data > $d/f; sort $d/f | wc -l; cp $d/f $d/g; rm -r $d; \
                  id -u; env | grep -q PATH; sleep 0.01 & wait; echo done";
    let out = agent(Command::new("/bin/sh").args(["-c", script]));
    assert_ran(&out, "done");
}

#[test]
fn agent_profile_runs_python() {
    let Some(python) = which("python3") else {
        return skip("agent_profile_runs_python", "python3 not installed");
    };
    let code = "import threading, socket, subprocess, tempfile, os\n\
                t = threading.Thread(target=lambda: None); t.start(); t.join()\n\
                s = socket.socket(); s.close()\n\
                print(subprocess.run(['echo', 'sub'], capture_output=True).stdout.decode().strip())\n\
                with tempfile.TemporaryDirectory() as d: open(os.path.join(d, 'x'), 'w').write('y')\n\
                try:\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nexcept PermissionError: print('packet denied')\n\
                import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n\
                if libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1: print('unshare denied')\n\
                print('py ok')";
    let out = agent(Command::new(python).args(["-c", code]));
    assert_ran(&out, "py ok");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sub")
            && stdout.contains("packet denied")
            && stdout.contains("unshare denied"),
        "{stdout}"
    );
}

#[test]
fn agent_profile_runs_git() {
    let Some(git) = which("git") else {
        return skip("agent_profile_runs_git", "git not installed");
    };
    let out = agent(Command::new(git).arg("--version"));
    assert_ran(&out, "git version");
}

#[test]
fn agent_profile_runs_a_threaded_rust_program() {
    // This test binary itself, re-run with a filter, as the threaded Rust program.
    let me = std::env::current_exe().expect("current_exe");
    let out = agent(Command::new(me).args([
        "--exact",
        "threaded_rust_workload",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ]));
    assert_ran(&out, "workload ok");
}

/// Not a check by itself: the workload the test above runs under the filter.
#[test]
#[ignore = "the workload of agent_profile_runs_a_threaded_rust_program"]
fn threaded_rust_workload() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..4u64)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let v: u64 = (0..10_000u64).map(|x| x * i).sum();
                std::fs::metadata("/").expect("stat /");
                tx.send(v).expect("send");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    drop(tx);
    let total: u64 = rx.iter().sum();
    let dir = std::env::temp_dir().join(format!("nucleus-seccomp-wl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("f"), total.to_string()).expect("write");
    std::fs::remove_dir_all(&dir).expect("rm");
    println!("workload ok {total}");
}

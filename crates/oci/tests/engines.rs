//! nucleus-oci under real container engines, started by the test itself:
//! podman (through conmon) and containerd (its runc shim, started on private
//! directories; `ctr run --runc-binary` is the path a Kubernetes
//! RuntimeClass takes). Each session runs in its own mount and PID
//! namespaces: whatever the engines start ends with it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{oci_bin, ready};
use nucleus_test_support::{skip, which, TempDir};

/// What each step printed and its exit status.
struct Steps(BTreeMap<String, (String, i32)>);

impl Steps {
    fn get(&self, name: &str) -> (&str, i32) {
        let (out, rc) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("step {name} did not run"));
        (out.as_str(), *rc)
    }

    fn assert(&self, name: &str, rc: i32, out: &str) {
        let (got, got_rc) = self.get(name);
        assert_eq!((got, got_rc), (out, rc), "step {name}");
    }

    fn assert_contains(&self, name: &str, rc: i32, part: &str) {
        let (got, got_rc) = self.get(name);
        assert!(
            got_rc == rc && got.contains(part),
            "step {name}: rc {got_rc}, output {got:?}; wanted rc {rc} and {part:?}"
        );
    }
}

fn parse(text: &str) -> Steps {
    let mut steps = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            match (rest.rsplit_once(" rc="), current.take()) {
                (Some((name, rc)), Some((open, out))) if name == open => {
                    steps.insert(open, (out, rc.parse().unwrap_or(-1)));
                }
                (_, _) => current = Some((rest.to_owned(), String::new())),
            }
            continue;
        }
        if let Some((_, out)) = current.as_mut() {
            out.push_str(line.trim_end_matches('\r'));
            out.push('\n');
        }
    }
    Steps(steps)
}

/// The runtime the engines call: nucleus-oci, told to put the engines'
/// absolute cgroup paths below this process's cgroup where that is not the
/// hierarchy's root (the tests make cgroups only there). A wrapper, since
/// what an engine passes on of its environment is its own business.
fn runtime(work: &TempDir) -> std::path::PathBuf {
    if !common::nest_cgroups() {
        return oci_bin().to_path_buf();
    }
    let path = work.path().join("nucleus-oci-nested");
    let script = format!(
        "#!/bin/sh\nNUCLEUS_OCI_NEST_CGROUPS=1 exec '{}' \"$@\"\n",
        oci_bin().display()
    );
    std::fs::write(&path, script).expect("write the wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the wrapper");
    path
}

/// Runs `script` (in tests/engines) in new mount and PID namespaces; its steps.
fn session(script: &str, limit: Duration) -> Steps {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines");
    let work = TempDir::new("oci-engine");
    let mut child = Command::new("unshare")
        .args([
            "-m",
            "-p",
            "-f",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "bash",
        ])
        .arg(dir.join(script))
        .env("HARNESS", dir.join("harness.sh"))
        .env("OCI", runtime(&work))
        .env("WORK", work.path())
        // conmon leaves files (an `oom` marker) in its working directory.
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    assert!(status.success(), "{script}: {status}\n{text}");
    parse(&text)
}

fn engines_ready(test: &str, tools: &[&str]) -> bool {
    if !ready(test) {
        return false;
    }
    for tool in tools {
        if which(tool).is_none() {
            skip(
                test,
                &format!("{tool} is not installed (apt-get install podman containerd)"),
            );
            return false;
        }
    }
    true
}

#[test]
fn podman_runs_containers_through_nucleus_oci() {
    if !engines_ready(
        "podman_runs_containers",
        &["podman", "conmon", "unshare", "script"],
    ) {
        return;
    }
    let s = session("podman.sh", Duration::from_secs(240));
    s.assert("run-true", 0, "");
    s.assert("run-exit", 3, "hi\nerr\n");
    s.assert("exec-id", 0, "0\n");
    s.assert("exec-exit", 7, "");
    s.assert_contains("exec-missing", 127, "no such file or directory");
    s.assert("exec-user", 0, "1000\n/tmp\nbar\n");
    s.assert_contains("stop", 0, "");
    s.assert_contains("rm", 0, "");
    s.assert("limits", 0, "67108864\n50\n");
    s.assert("oom", 137, "");
    s.assert_contains("pids", 2, "can't fork: Resource temporarily unavailable");
    s.assert(
        "read-only",
        0,
        "touch: /x: Read-only file system\ntmp-writable\n",
    );
    s.assert(
        "user",
        0,
        "uid=1000(user) gid=1000(user) groups=1000(user)\n",
    );
    s.assert("cap-drop", 0, "CapEff:\t0000000000000000\n");
    s.assert(
        "no-caps-no-mount",
        1,
        "mount: permission denied (are you root?)\n",
    );
    s.assert("tty", 0, "/dev/pts/0\n");
    s.assert("gvisor", 0, "Starting gVisor...\n");
    s.assert("leftovers", 0, "");
}

#[test]
fn containerd_runs_containers_through_nucleus_oci() {
    if !engines_ready(
        "containerd_runs_containers",
        &["containerd", "ctr", "containerd-shim-runc-v2", "unshare"],
    ) {
        return;
    }
    let s = session("containerd.sh", Duration::from_secs(180));
    s.assert("run-rm", 4, "hi\n");
    s.assert("run-d", 0, "");
    s.assert("exec", 6, "0\n");
    s.assert("pause", 0, "");
    s.assert("paused", 0, "PAUSED\n");
    s.assert("resume", 0, "");
    s.assert("kill", 0, "");
    s.assert_contains("delete", 0, "");
    s.assert("rm", 0, "");
    s.assert("oom", 137, "");
    s.assert("gvisor", 0, "Starting gVisor...\n");
    s.assert("leftovers", 0, "");
}

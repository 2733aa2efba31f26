//! Tests with the real `runsc`: each starts a gVisor sandbox (a few hundred
//! milliseconds each), so there are few of them and they run one at a time.
//! Every run uses the `ptrace` platform; `kvm` is never tried.
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nucleus_gvisor::{
    BundleSpec, GvisorError, Platform, RunOptions, RunOutcome, Runsc, SeccompStatus, StdioMode,
};
use nucleus_rootfs::{MountKind, MountSpec};
use nucleus_test_support::{require_root, skip};

/// One sandbox at a time: the machine has two cores. The mutex serializes
/// `cargo test`'s threads, the lock file nextest's processes.
static SERIAL: Mutex<()> = Mutex::new(());

/// Held while a test runs a sandbox.
struct Serial {
    _thread: MutexGuard<'static, ()>,
    _process: fs::File,
}

fn serial() -> Serial {
    let thread = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join("nucleus-gvisor-tests.lock");
    let file = fs::File::create(path).unwrap();
    // SAFETY: flock on a descriptor this function owns; released on close.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    Serial {
        _thread: thread,
        _process: file,
    }
}

/// The serial lock and `runsc`, or `None` after reporting the skip.
fn runsc_for(test: &str) -> Option<(Serial, Runsc)> {
    if !require_root(test, "runsc runs sandboxes as root here; not root") {
        return None;
    }
    match Runsc::discover(None) {
        Ok(r) => Some((serial(), r)),
        Err(e) => {
            skip(test, &format!("no runsc: {e}"));
            None
        }
    }
}

/// A private scratch directory for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("nucleus-gvisor-test-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("work")).unwrap();
        Scratch(dir)
    }
    fn work(&self) -> PathBuf {
        self.0.join("work")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn options(runsc: &Runsc, scratch: &Scratch) -> RunOptions {
    let mut opts = RunOptions::new(runsc.choose_platform(None).unwrap());
    opts.stdio = StdioMode::Capture;
    opts.timeout = Some(Duration::from_secs(60));
    opts.work_dir = Some(scratch.work());
    opts
}

fn shell(script: &str) -> BundleSpec {
    BundleSpec {
        env: vec!["PATH=/usr/bin:/bin:/usr/sbin:/sbin".into()],
        ..BundleSpec::new(["/bin/sh", "-c", script])
    }
}

fn stdout(o: &RunOutcome) -> String {
    String::from_utf8_lossy(&o.output.as_ref().unwrap().stdout).into_owned()
}

fn stderr(o: &RunOutcome) -> String {
    String::from_utf8_lossy(&o.output.as_ref().unwrap().stderr).into_owned()
}

/// Nothing of the container is left: no bundle or state directory, no
/// process mentioning its id.
fn assert_clean(scratch: &Scratch, id: &str) {
    let left: Vec<_> = fs::read_dir(scratch.work())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!text.contains(id), "process still running: {text}");
    }
}

#[test]
fn output_and_exit_code_come_back() {
    let Some((_g, runsc)) = runsc_for("output_and_exit_code_come_back") else {
        return;
    };
    let scratch = Scratch::new("exit");
    // A writable root over the host view keeps its writes in memory.
    let spec = BundleSpec {
        readonly_root: false,
        ..shell("echo hello from gvisor > /greeting && cat /greeting; echo oops >&2; exit 7")
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.exit_code, 7, "stderr: {}", stderr(&out));
    assert_eq!(out.signal, None);
    assert!(!out.timed_out);
    assert_eq!(stdout(&out), "hello from gvisor\n");
    assert!(stderr(&out).contains("oops"), "{}", stderr(&out));
    assert_eq!(out.platform, Platform::Ptrace);
    assert_eq!(out.seccomp, SeccompStatus::NotRequested);
    eprintln!("runsc run of sh -c: {:?}", out.wall);
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn kernel_is_gvisor() {
    let Some((_g, runsc)) = runsc_for("kernel_is_gvisor") else {
        return;
    };
    let scratch = Scratch::new("kernel");
    let spec = BundleSpec {
        capabilities: vec!["CAP_NET_BIND_SERVICE".into()],
        ..shell(
            "cat /proc/version; dmesg; grep -E '^(CapEff|CapBnd|CapPrm|CapInh)' /proc/self/status",
        )
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.exit_code, 0, "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Starting gVisor"), "{text}");
    // Only the kept capability (bit 10), in every set but inheritable.
    for set in ["CapEff", "CapBnd", "CapPrm"] {
        assert!(
            text.contains(&format!("{set}:\t0000000000000400")),
            "{set}: {text}"
        );
    }
    assert!(text.contains("CapInh:\t0000000000000000"), "{text}");
    let host = fs::read_to_string("/proc/version").unwrap();
    assert!(!text.contains(host.trim()), "saw the host kernel: {text}");
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn read_only_bind_is_read_only() {
    let Some((_g, runsc)) = runsc_for("read_only_bind_is_read_only") else {
        return;
    };
    let scratch = Scratch::new("robind");
    let (data, out_dir) = (scratch.0.join("data"), scratch.0.join("out"));
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(data.join("in"), "host data\n").unwrap();
    let spec = BundleSpec {
        mounts: vec![
            MountSpec {
                source: Some(data.clone()),
                destination: "/data".into(),
                kind: MountKind::RoBind,
                exec: false,
            },
            MountSpec {
                source: Some(out_dir.clone()),
                destination: "/out".into(),
                kind: MountKind::Bind,
                exec: false,
            },
        ],
        ..shell("cat /data/in; echo x > /data/f; echo ro=$?; echo y > /usr/f; echo usr=$?; echo w > /f; echo root=$?; echo z > /out/f")
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.exit_code, 0, "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "host data\nro=2\nusr=2\nroot=2\n");
    assert!(
        stderr(&out).contains("/data/f: Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("f").exists());
    assert_eq!(fs::read_to_string(out_dir.join("f")).unwrap(), "z\n");
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn only_passed_env_and_only_loopback() {
    let Some((_g, runsc)) = runsc_for("only_passed_env_and_only_loopback") else {
        return;
    };
    let scratch = Scratch::new("envnet");
    let spec = BundleSpec {
        env: vec!["PATH=/usr/bin:/bin".into(), "PASSED=yes".into()],
        uid: 65534,
        gid: 65534,
        cwd: "/tmp".into(),
        hostname: Some("nucleus-box".into()),
        rlimits: vec![nucleus_gvisor::RlimitSpec {
            resource: "nofile".into(),
            soft: 100,
            hard: 200,
        }],
        ..BundleSpec::new([
            "/bin/sh",
            "-c",
            "echo $(id -u) $(id -g) $(pwd) $(hostname) $(ulimit -n); env; echo ---; cat /proc/net/dev",
        ])
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.exit_code, 0, "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let (who, text) = text.split_once('\n').unwrap();
    assert_eq!(who, "65534 65534 /tmp nucleus-box 100");
    let (env, net) = text.split_once("---\n").unwrap();
    let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    // HOME is runsc's (from the sandbox's /etc/passwd, as OCI runtimes do),
    // PWD the shell's; everything else must be what was passed.
    assert_eq!(names, ["HOME", "PASSED", "PATH", "PWD"], "{env}");
    let ours = std::env::vars().map(|(k, _)| k);
    for leaked in ours.filter(|k| !["HOME", "PATH", "PWD"].contains(&k.as_str())) {
        assert!(
            !names.contains(&leaked.as_str()),
            "{leaked} leaked in: {env}"
        );
    }
    let ifaces: Vec<&str> = net
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{net}");
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn timeout_kills_quickly() {
    let Some((_g, runsc)) = runsc_for("timeout_kills_quickly") else {
        return;
    };
    let scratch = Scratch::new("timeout");
    let mut opts = options(&runsc, &scratch);
    opts.timeout = Some(Duration::from_secs(1));
    let start = Instant::now();
    let out = runsc
        .run(&BundleSpec::new(["/bin/sleep", "30"]), &opts)
        .unwrap();
    let took = start.elapsed();
    assert!(out.timed_out);
    assert_eq!((out.exit_code, out.signal), (137, Some(libc::SIGKILL)));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(out.wall >= Duration::from_secs(1));
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn seccomp_profile_is_enforced() {
    let Some((_g, runsc)) = runsc_for("seccomp_profile_is_enforced") else {
        return;
    };
    if !runsc.features.oci_seccomp {
        skip(
            "seccomp_profile_is_enforced",
            "this runsc lacks --oci-seccomp",
        );
        return;
    }
    let scratch = Scratch::new("seccomp");
    let profile = nucleus_seccomp::Profile::default_agent()
        .to_oci_json()
        .unwrap();
    // The default agent profile denies user namespaces, which gVisor
    // itself would grant.
    let spec = BundleSpec {
        seccomp: Some(serde_json::from_str(&profile).unwrap()),
        ..shell("echo ok; unshare -U true; echo unshare=$?")
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.seccomp, SeccompStatus::Enforced);
    assert_eq!(out.exit_code, 0, "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "ok\nunshare=1\n");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    assert_clean(&scratch, &out.container_id);
}

#[test]
fn memory_limit_reaches_the_sandbox() {
    let Some((_g, runsc)) = runsc_for("memory_limit_reaches_the_sandbox") else {
        return;
    };
    let scratch = Scratch::new("memory");
    let spec = BundleSpec {
        memory_limit: Some(256 << 20),
        ..shell("head -1 /proc/meminfo")
    };
    let out = runsc.run(&spec, &options(&runsc, &scratch)).unwrap();
    assert_eq!(out.exit_code, 0, "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["MemTotal:", "262144", "kB"]
    );
    let cg = out.cgroup_path.clone().unwrap();
    assert!(cg.starts_with("nucleus-gvisor-"), "{cg}");
    let leftover: Vec<_> = fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path())
        .filter(|h| find_dir(h, &cg, 6))
        .collect();
    assert!(leftover.is_empty(), "cgroup {cg} left in {leftover:?}");
    assert_clean(&scratch, &out.container_id);
}

/// Whether a directory named `name` exists below `dir` (to `depth` levels).
fn find_dir(dir: &Path, name: &str, depth: u32) -> bool {
    if depth == 0 {
        return false;
    }
    fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let p = e.path();
        e.file_type().is_ok_and(|t| t.is_dir())
            && (e.file_name() == name || find_dir(&p, name, depth - 1))
    })
}

#[test]
fn runsc_failure_is_an_error_and_cleaned_up() {
    let Some((_g, runsc)) = runsc_for("runsc_failure_is_an_error_and_cleaned_up") else {
        return;
    };
    let scratch = Scratch::new("fail");
    let err = runsc
        .run(
            &BundleSpec::new(["/nonexistent/cmd"]),
            &options(&runsc, &scratch),
        )
        .unwrap_err();
    let GvisorError::RunscFailed { id, code, message } = &err else {
        panic!("expected RunscFailed, got {err:?}");
    };
    assert_eq!(*code, 128);
    assert!(message.contains("/nonexistent/cmd"), "{message}");
    assert_clean(&scratch, id);
}

#[test]
fn a_path_that_is_not_runsc_is_refused() {
    let err = Runsc::discover(Some(Path::new("/bin/true"))).unwrap_err();
    assert!(matches!(err, GvisorError::NotRunsc { .. }), "{err:?}");
    assert!(err.to_string().contains("/bin/true is not runsc"), "{err}");
}

#[test]
fn unknown_platform_is_refused_before_anything_runs() {
    let Some((_g, runsc)) = runsc_for("unknown_platform_is_refused_before_anything_runs") else {
        return;
    };
    if runsc.platforms.contains(&Platform::Systrap) {
        skip(
            "unknown_platform_is_refused_before_anything_runs",
            "this runsc knows systrap",
        );
        return;
    }
    let err = runsc.choose_platform(Some(Platform::Systrap)).unwrap_err();
    assert!(
        matches!(err, GvisorError::PlatformUnsupported { .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("does not support platform systrap"));
    let scratch = Scratch::new("systrap");
    let mut opts = options(&runsc, &scratch);
    opts.platform = Platform::Systrap;
    let err = runsc
        .run(&BundleSpec::new(["/bin/true"]), &opts)
        .unwrap_err();
    assert!(
        matches!(err, GvisorError::PlatformUnsupported { .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(scratch.work()).unwrap().count(), 0);
}

#[test]
fn probe_reports_runsc() {
    let Some((_g, runsc)) = runsc_for("probe_reports_runsc") else {
        return;
    };
    let probe = nucleus_gvisor::probe();
    assert!(probe.found, "{probe:?}");
    assert_eq!(probe.version.as_deref(), Some(runsc.version.as_str()));
    assert!(probe.platforms.contains(&Platform::Ptrace));
    assert_eq!(probe.chosen_platform, Some(Platform::Ptrace));
    assert!(serde_json::to_string(&probe)
        .unwrap()
        .contains("\"ptrace\""));
}

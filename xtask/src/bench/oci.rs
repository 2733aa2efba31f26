//! nucleus-oci beside runc and crun, as ratios in one run: the bare
//! cycle (`run`: create, start, wait, delete) of a busybox bundle running
//! `true`, and `podman run --rm IMG true` with each as podman's runtime.
//! Measured in a private mount namespace (`unshare -m`) where the cgroup v2
//! mount is hidden (crun refuses a hybrid machine otherwise) and podman's
//! state lives on a private /run (crates/oci/tests/engines/harness.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{is_root, measure_n, median, strings, which, workspace_root, Case};

/// Builds nucleus-oci in release and runs [`inner`] in a new mount namespace.
pub(super) fn oci(runs: usize) -> Result<(), String> {
    if !is_root() {
        eprintln!("bench: the OCI runtimes need root; skipped");
        return Ok(());
    }
    let (Some(_), Some(_), Some(_)) = (which("runc"), which("crun"), which("podman")) else {
        eprintln!("bench: runc, crun and podman are needed (apt-get install runc crun podman); OCI skipped");
        return Ok(());
    };
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "nucleus-oci",
        "--bin",
        "nucleus-oci",
    ])?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "--"])
        .arg(exe)
        .args(["bench", "--oci-inner", &runs.to_string()])
        // Podman's absolute cgroup paths below this process's cgroup, where
        // the bench may make cgroups (the same place at a hierarchy's root).
        .env("NUCLEUS_OCI_NEST_CGROUPS", "1")
        .status()
        .map_err(|e| format!("unshare: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the OCI bench failed ({status})"))
    }
}

fn harness() -> PathBuf {
    workspace_root().join("crates/oci/tests/engines/harness.sh")
}

/// `bash -c '. harness.sh; SCRIPT'` with `env`.
fn bash(script: &str, env: &[(&str, &str)]) -> Result<(), String> {
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(". {}; {script}", harness().display()))
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("bash: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{script}: {status}"))
    }
}

/// In the private mount namespace: set up, measure, report, clean up.
pub(super) fn inner(runs: usize) -> Result<(), String> {
    bash("private_run", &[("HIDE_UNIFIED", "1")])?;
    let work = std::env::temp_dir().join(format!("nucleus-bench-oci-{}", std::process::id()));
    let result = measure_all(&work, runs);
    let pm = work.join("pm");
    let _ = bash(
        &format!("podman_env {0} >/dev/null; podman_cleanup", pm.display()),
        &[],
    );
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure_all(work: &Path, runs: usize) -> Result<(), String> {
    let bundle = work.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&bundle).map_err(|e| e.to_string())?;
    bash(
        &format!(
            "build_busybox_rootfs {} && cd {} && runc spec",
            rootfs.display(),
            bundle.display()
        ),
        &[],
    )?;
    let config = bundle.join("config.json");
    let text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
    let text = text
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace("\"sh\"", "\"true\"");
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let ours = workspace_root()
        .join("target/release/nucleus-oci")
        .display()
        .to_string();
    let runtimes = [
        ("runc", which("runc").unwrap_or_default()),
        ("crun", which("crun").unwrap_or_default()),
        ("nucleus-oci", ours),
    ];
    let b = bundle.display().to_string();
    let cycle: Vec<Case> = runtimes
        .iter()
        .map(|(name, bin)| {
            let state = work.join(format!("state-{name}")).display().to_string();
            Case {
                name,
                argv: strings(&[bin, "--root", &state, "run", "--bundle", &b, "bench"]),
                reset: None,
            }
        })
        .collect();
    let s = measure_n(&cycle, runs, 3)?;
    print_ratios(&format!("OCI runtimes: `run` (create, start, wait, delete) of a busybox `true`, median of {runs}"), &cycle, &s.wall);
    let pm = work.join("pm").display().to_string();
    bash(
        &format!(
            "podman_env {pm} >/dev/null && podman_import_image {}",
            rootfs.display()
        ),
        &[],
    )?;
    let podman: Vec<Case> = runtimes
        .iter()
        .map(|(name, bin)| {
            let script = format!(
                ". {}; RUNTIME={bin} podman_env {pm} >/dev/null; pmrun --rm localhost/bb:latest true",
                harness().display()
            );
            Case { name, argv: strings(&["bash", "-c", &script]), reset: None }
        })
        .collect();
    let podman_runs = (runs / 10).max(10);
    let s = measure_n(&podman, podman_runs, 2)?;
    print_ratios(
        &format!("podman run --rm IMG true with each runtime, median of {podman_runs}"),
        &podman,
        &s.wall,
    );
    Ok(())
}

fn print_ratios(title: &str, cases: &[Case], wall: &[Vec<std::time::Duration>]) {
    let medians: Vec<f64> = wall.iter().map(|w| median(w).as_secs_f64()).collect();
    let crun = cases
        .iter()
        .position(|c| c.name == "crun")
        .map_or(1.0, |i| medians[i]);
    println!();
    println!("{title}");
    for (case, m) in cases.iter().zip(&medians) {
        println!(
            "{:<14} {:>9.2}ms {:>6.2}x crun",
            case.name,
            m * 1e3,
            m / crun
        );
    }
}

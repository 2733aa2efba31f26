//! The Python client (`clients/python`) against a real server: its own
//! unittest suite, run with this build's `nucleus-run`. It starts and
//! stops its servers itself.

mod common;
use common::*;

#[test]
fn the_python_clients_suite_passes() {
    let test = "python_client";
    let Some(python) = which("python3") else {
        return skip(test, "python3 is not installed");
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python");
    let out = std::process::Command::new(python)
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root.join("tests"))
        .env("NUCLEUS_RUN", nucleus())
        .current_dir(&root)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    // Every test ran; none was skipped where it can run.
    let report = stderr(&out);
    let skipped = report.lines().filter(|l| l.contains("skipped")).count();
    if is_root() && which("runsc").is_some() {
        assert_eq!(skipped, 0, "{report}");
    }
}

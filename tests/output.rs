//! End to end: the workload's output is never lost, whatever stdout is (a
//! file opened for append or shared with stderr, a large file, a pipe whose
//! reader goes away, /dev/null, a terminal, nothing at all), under both
//! runtimes.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::process::{Output, Stdio};
use std::time::Duration;

const BOTH: [As; 2] = [As::Caller, As::Nobody];
const ROOT: [As; 1] = [As::Caller];
const GUARD: Duration = Duration::from_secs(60);

/// Runs a bash script (with `$NUCLEUS`) as `who`, failing the test when it
/// outlives the guard timeout.
fn sh(what: &str, runtime: Runtime, who: As, script: &str) -> Output {
    output_within(shell(who, script), GUARD).unwrap_or_else(|| {
        panic!("{what}, runtime {runtime:?}, user {who:?}: still running after {GUARD:?}")
    })
}

/// `"$NUCLEUS" --trust-level LEVEL`, for scripts.
fn nucleus_for(runtime: Runtime) -> String {
    format!("\"$NUCLEUS\" --trust-level {}", runtime.trust_level())
}

#[test]
fn output_appends_to_what_the_shell_wrote() {
    for (runtime, who) in combinations("append", &BOTH) {
        let dir = world_writable("append");
        let file = dir.path().join("out");
        let script = format!(
            "(echo a; {} -- /bin/echo b) > {}",
            nucleus_for(runtime),
            file.display()
        );
        let out = sh("append", runtime, who, &script);
        assert_code(&out, 0);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "a\nb\n",
            "append, runtime {runtime:?}, user {who:?}; stderr: {}",
            stderr(&out)
        );
    }
}

#[test]
fn stdout_and_stderr_share_one_file_without_overwriting() {
    for (runtime, who) in combinations("shared_file", &BOTH) {
        let dir = world_writable("shared");
        let file = dir.path().join("out");
        let script = format!(
            "{} -- /bin/sh -c 'echo to-stdout; echo to-stderr >&2' > {} 2>&1",
            nucleus_for(runtime),
            file.display()
        );
        let out = sh("shared_file", runtime, who, &script);
        assert_code(&out, 0);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            (lines, text.len()),
            (vec!["to-stderr", "to-stdout"], 20),
            "shared_file, runtime {runtime:?}, user {who:?}: {text:?}"
        );
    }
}

#[test]
fn a_hundred_megabytes_reach_the_file_in_order() {
    const LINES: usize = 10_000_000;
    let writer = "import sys\n\
                  w = sys.stdout.buffer.write\n\
                  for s in range(0, 10_000_000, 100_000):\n    \
                  w(b''.join(b'%09d\\n' % i for i in range(s, s + 100_000)))\n";
    for (runtime, who) in combinations("large", &ROOT) {
        let dir = world_writable("large");
        let file = dir.path().join("out");
        let script = format!(
            "{} -- /usr/bin/python3 -c \"$WRITER\" > {}",
            nucleus_for(runtime),
            file.display()
        );
        let mut cmd = shell(who, &script);
        cmd.env("WRITER", writer);
        let out = output_within(cmd, Duration::from_secs(300))
            .unwrap_or_else(|| panic!("large, runtime {runtime:?}: still running after 300 s"));
        assert_code(&out, 0);
        let data = std::fs::read(&file).unwrap();
        assert_eq!(
            data.len(),
            LINES * 10,
            "large, runtime {runtime:?}, user {who:?}: wrong size"
        );
        // Every 9973rd line, and the first, middle and last.
        let spots = (0..LINES).step_by(9973).chain([0, LINES / 2, LINES - 1]);
        for i in spots {
            let got = &data[i * 10..i * 10 + 10];
            assert_eq!(
                got,
                format!("{i:09}\n").as_bytes(),
                "large, runtime {runtime:?}, user {who:?}: line {i}"
            );
        }
    }
}

#[test]
fn a_closed_pipe_ends_the_run_with_sigpipe() {
    let mut failures = Vec::new();
    for (runtime, who) in combinations("early_close", &BOTH) {
        let script = format!(
            "{} -- /usr/bin/yes | head -n 1; echo \"rc=${{PIPESTATUS[0]}}\"",
            nucleus_for(runtime)
        );
        let out = sh("early_close", runtime, who, &script);
        if stdout(&out) != "y\nrc=141\n" {
            failures.push(format!(
                "early_close, runtime {runtime:?}, user {who:?}: expected \"y\\nrc=141\\n\", \
                 got {:?}; stderr: {:?}",
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn stdout_can_be_dev_null() {
    for (runtime, who) in combinations("dev_null", &BOTH) {
        let status = command_on(runtime, who, &["--", "/bin/echo", "x"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "dev_null, runtime {runtime:?}, user {who:?}"
        );
    }
}

#[test]
fn a_terminal_stays_a_terminal() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        return skip("pty", "script (util-linux) is not installed");
    }
    let mut failures = Vec::new();
    for (runtime, who) in combinations("pty", &BOTH) {
        let script = format!(
            "script -qec \"{} -- /bin/sh -c 'test -t 1 && echo TTY'\" /dev/null",
            nucleus_for(runtime).replace('"', "\\\"")
        );
        let out = sh("pty", runtime, who, &script);
        if !stdout(&out).contains("TTY") {
            failures.push(format!(
                "pty, runtime {runtime:?}, user {who:?}: expected TTY, got stdout {:?}, stderr {:?}",
                stdout(&out),
                stderr(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_closed_stdout_neither_hangs_nor_crashes() {
    for (runtime, who) in combinations("closed_stdout", &BOTH) {
        let script = format!("{} -- /bin/echo x >&-; echo rc=$?", nucleus_for(runtime));
        let out = sh("closed_stdout", runtime, who, &script);
        let text = stdout(&out);
        eprintln!(
            "closed_stdout, runtime {runtime:?}, user {who:?}: {}",
            text.trim()
        );
        let rc: Option<u8> = text
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("rc="))
            .and_then(|n| n.parse().ok());
        assert!(
            rc.is_some(),
            "closed_stdout, runtime {runtime:?}, user {who:?}: {text:?}"
        );
        assert!(
            !stderr(&out).contains("panicked"),
            "closed_stdout, runtime {runtime:?}, user {who:?}: {}",
            stderr(&out)
        );
    }
}

/// `--capture`: the workload's stdout and stderr travel in the one JSON
/// result, which is all stdout carries (a result line the workload prints
/// cannot pass for ours); a stream past the limit is cut and says so.
#[test]
fn captured_output_travels_in_the_result_only() {
    let test = "captured_output";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let script = "echo out; echo err >&2; echo '{\"exit_code\":0,\"forged\":true}'; exit 3";
        let out = run_on(runtime, who, &["--capture", "--", "/bin/sh", "-c", script]);
        assert_code(&out, 3);
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{runtime:?} {who:?}: {text}");
        let r = parse_result(&text);
        let captured = &r["captured"];
        assert_eq!(
            captured["stdout"], "out\n{\"exit_code\":0,\"forged\":true}\n",
            "{runtime:?} {who:?}"
        );
        assert_eq!(captured["stderr"], "err\n");
        assert_eq!(captured["truncated"], false);
        assert_eq!(r["exit_code"], 3);
        let out = run_on(
            runtime,
            who,
            &[
                "--capture-limit",
                "10",
                "--",
                "/usr/bin/head",
                "-c",
                "100",
                "/dev/zero",
            ],
        );
        assert_code(&out, 0);
        let r = parse_result(&stdout(&out));
        assert_eq!(r["captured"]["stdout_bytes"], 100, "{runtime:?} {who:?}");
        assert_eq!(r["captured"]["stdout"].as_str().map(str::len), Some(10));
        assert_eq!(r["captured"]["truncated"], true);
    }
}

//! The runner's log: nothing but the workload's output by default; at
//! debug level each launch step with its time, parent side as spans and
//! child side from the channel's records, as text or JSON lines. Under
//! both runtimes, as root and as `nobody`.

mod common;

use common::{assert_code, combinations, command_on, stderr, stdout, As};
use std::process::Output;

/// The parent's steps every native launch logs, in order.
const PARENT_STEPS: [&str; 7] = [
    "validate",
    "guard",
    "prepare",
    "cgroup",
    "clone",
    "admit",
    "supervise",
];
/// Child stages every default launch goes through (under gVisor, the
/// native envelope around `runsc` has no seccomp filter: the sentry
/// enforces the profile).
const CHILD_STAGES: [&str; 9] = [
    "sync",
    "mount",
    "session",
    "user",
    "capabilities",
    "no_new_privs",
    "seccomp",
    "fork",
    "exec",
];

fn run_logged(runtime: common::Runtime, who: As, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = command_on(runtime, who, args);
    cmd.env_remove("NUCLEUS_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn nucleus-run")
}

#[test]
fn without_a_level_nothing_but_the_workload_is_printed() {
    for (runtime, who) in combinations("logging quiet", &[As::Caller, As::Nobody]) {
        let out = run_logged(
            runtime,
            who,
            &[],
            &["--", "/bin/sh", "-c", "echo out; echo err >&2"],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "out\n", "{runtime:?} {who:?}");
        assert_eq!(stderr(&out), "err\n", "{runtime:?} {who:?}");
    }
}

#[test]
fn debug_logs_each_step_with_its_time() {
    for (runtime, who) in combinations("logging debug", &[As::Caller, As::Nobody]) {
        let out = run_logged(
            runtime,
            who,
            &[("NUCLEUS_LOG", "debug")],
            &["--", "/bin/echo", "hi"],
        );
        assert_code(&out, 0);
        assert_eq!(
            stdout(&out),
            "hi\n",
            "the log went to stdout ({runtime:?} {who:?})"
        );
        let err = stderr(&out);
        let closed = |step: &str| {
            err.lines()
                .any(|l| l.contains(&format!(":{step}: ")) && l.contains("close time.busy="))
        };
        let parent: &[&str] = match runtime {
            common::Runtime::Native => &PARENT_STEPS,
            common::Runtime::Gvisor => &[
                "validate",
                "guard",
                "runsc",
                "bundle",
                "clone",
                "supervise",
                "finish",
            ],
        };
        for step in parent {
            assert!(
                closed(step),
                "no timed `{step}` step ({runtime:?} {who:?}):\n{err}"
            );
        }
        let gvisor = runtime == common::Runtime::Gvisor;
        for stage in CHILD_STAGES
            .into_iter()
            .filter(|s| !(gvisor && *s == "seccomp"))
        {
            let logged = err.lines().any(|l| {
                l.contains("child step")
                    && l.contains(&format!("stage=\"{stage}\""))
                    && l.contains(" time=")
            });
            assert!(
                logged,
                "child stage {stage} not logged ({runtime:?} {who:?}):\n{err}"
            );
        }
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    for (runtime, who) in combinations("logging json", &[As::Caller, As::Nobody]) {
        let out = run_logged(
            runtime,
            who,
            &[],
            &[
                "--log-level",
                "debug",
                "--log-format",
                "json",
                "--",
                "/bin/true",
            ],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "", "{runtime:?} {who:?}");
        let lines: Vec<serde_json::Value> = stderr(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let clone = lines
            .iter()
            .find(|v| v["span"]["name"] == "clone" && v["fields"]["message"] == "close");
        let busy = clone.and_then(|v| v["fields"]["time.busy"].as_str());
        assert!(
            busy.is_some(),
            "no timed clone span ({runtime:?} {who:?}): {lines:?}"
        );
        let exec = lines
            .iter()
            .find(|v| v["fields"]["message"] == "child step" && v["fields"]["stage"] == "exec");
        assert!(
            exec.is_some_and(|v| v["fields"]["time"].is_string()),
            "{lines:?}"
        );
    }
}

#[test]
fn a_log_level_that_is_no_level_is_warned_about_and_the_run_goes_on() {
    for (runtime, who) in combinations("logging bad level", &[As::Caller]) {
        let out = run_logged(
            runtime,
            who,
            &[("NUCLEUS_LOG", "loud")],
            &["--", "/bin/echo", "ran"],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "ran\n");
        assert_eq!(
            stderr(&out),
            "nucleus-run: warning: NUCLEUS_LOG=\"loud\" is not a level (error, warn, info, debug, trace, off); not logging\n"
        );
        // The flag is checked by the parser: a clear error, exit 125.
        let out = run_logged(
            runtime,
            who,
            &[],
            &["--log-level", "loud", "--", "/bin/true"],
        );
        assert_code(&out, 125);
        assert!(
            stderr(&out).contains("invalid value 'loud' for '--log-level <LEVEL>'"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn only_the_runners_steps_are_logged_not_a_librarys() {
    // wasmtime-wasi traces each host call of a wasm workload; none of it
    // may reach the log (it would be written from inside the sandbox).
    let hello = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm/tests/fixtures/hello.wat")
        .display()
        .to_string();
    let cache = nucleus_test_support::TempDir::new("logging-wasm-cache");
    let out = run_logged(
        common::Runtime::Native,
        As::Caller,
        &[("NUCLEUS_LOG", "trace")],
        &["--wasm-cache", &cache.arg(), "--wasm", &hello],
    );
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("child step"), "{err}");
    let foreign: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains(" nucleus_runner::"))
        .collect();
    assert!(foreign.is_empty(), "lines from other crates: {foreign:?}");
}

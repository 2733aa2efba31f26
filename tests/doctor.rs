//! End to end: `nucleus-run doctor`. Real runs on this machine (as the
//! caller and as `nobody`), degraded setups made by the test (no
//! `newuidmap` or `runsc` on `PATH`, a missing `--runsc`, a runsc whose
//! sandboxes hang), and saved reports with faked probe data judged through
//! the hidden `--from-json` (tests/fixtures/doctor/*.json) against text
//! snapshots (*.txt, rewritten with NUCLEUS_UPDATE_SNAPSHOTS=1).

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Exit status when the default launch cannot run here.
const CANNOT_RUN: i32 = 125;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/doctor")
}

/// The JSON Schema of `doctor --json`.
fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/doctor.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid draft 2020-12 schema")
}

/// Parses `doctor --json` output and validates it against the schema.
fn valid_json(out: &Output) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout: {}\nstderr: {}", stdout(out), stderr(out)));
    let errors: Vec<String> = validator()
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(report["schema_version"], 1);
    report
}

/// The line of `item` in the text (status, item, detail), or a panic.
fn line_of<'a>(text: &'a str, item: &str) -> &'a str {
    let prefix = format!("{item} ");
    text.lines()
        .find(|l| l.len() > 9 && l[9..].starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {item:?} in:\n{text}"))
}

/// Asserts that each of `lines` is a whole line of `text`.
fn has_lines(text: &str, lines: &[&str]) {
    for want in lines {
        assert!(
            text.lines().any(|l| l == *want),
            "missing line {want:?} in:\n{text}"
        );
    }
}

/// `nucleus-run doctor ARGS` as `who` with `PATH` set to `path`, the
/// binary and setpriv called by absolute path.
fn doctor_with_path(who: As, path: &str, args: &[&str]) -> Output {
    let mut cmd = match who {
        As::Caller => Command::new(nucleus()),
        As::Nobody => {
            let mut c = Command::new(which("setpriv").expect("setpriv is installed"));
            c.args(setpriv_args(NOBODY)).arg("--").arg(nucleus());
            c
        }
    };
    cmd.arg("doctor")
        .args(args)
        .env("PATH", path)
        .env_remove("NUCLEUS_LOG")
        .stdin(Stdio::null())
        .current_dir("/");
    cmd.output().unwrap()
}

#[test]
fn real_runs_give_a_verdict_per_capability_and_json_that_validates() {
    let runsc = which("runsc").is_some();
    if !runsc {
        skip(
            "doctor_real_runs",
            "runsc is not installed: the gVisor verdicts are not checked",
        );
    }
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("doctor_real_runs", who) {
            continue;
        }
        let json_out = run(who, &["doctor", "--json"]);
        let report = valid_json(&json_out);
        let runs = report["summary"]["default_launch"]["runs"]
            .as_bool()
            .unwrap();
        assert_code(&json_out, if runs { 0 } else { CANNOT_RUN });
        // Tried, not guessed: the native envelope and every platform runsc lists.
        let launches = report["launches"].as_array().unwrap();
        assert!(
            launches.iter().any(|l| l["runtime"] == "native"),
            "{launches:?}"
        );
        for platform in report["gvisor"]["platforms"].as_array().unwrap() {
            assert!(
                launches.iter().any(|l| l["platform"] == *platform),
                "{platform} was not tried: {launches:?}"
            );
        }
        let text_out = run(who, &["doctor"]);
        assert_code(&text_out, if runs { 0 } else { CANNOT_RUN });
        let text = stdout(&text_out);
        // Every check has its line, with the status the JSON gives it.
        for check in report["checks"].as_array().unwrap() {
            let item = check["item"].as_str().unwrap();
            let status = check["status"].as_str().unwrap();
            let line = line_of(&text, item);
            assert!(
                line.starts_with(&format!("{status:<9}")),
                "{line:?} vs {check}"
            );
        }
        let native = line_of(&text, "trusted (native)");
        assert!(native.contains("tried: /bin/true ran"), "{native}\n{text}");
        has_lines(
            &text,
            &["ok       seccomp notify       user notification: seccomp record works"],
        );
        if who == As::Nobody || !is_root() {
            has_lines(
                &text,
                &["ok       idmapped mounts      not needed: rootless, your own id is the sandbox's root"],
            );
        }
        if runsc {
            assert_code(&text_out, 0);
            let chosen = report["gvisor"]["chosen_platform"].as_str().unwrap();
            let platforms = line_of(&text, "gVisor platforms");
            assert!(
                platforms.contains(&format!("{chosen}: works (default)")),
                "{platforms}"
            );
            let last = text.lines().rev().nth(1).unwrap();
            assert_eq!(
                last,
                format!("the default launch (untrusted: gVisor, {chosen}) runs here")
            );
        }
    }
}

#[test]
fn without_newuidmap_and_runsc_on_path_nobody_is_told_the_packages() {
    if !can_run_as("doctor_without_path", As::Nobody) {
        return;
    }
    let out = doctor_with_path(As::Nobody, "/nonexistent", &[]);
    assert_code(&out, CANNOT_RUN);
    let text = stdout(&out);
    let idmap = line_of(&text, "id mapping");
    assert!(
        idmap.starts_with(
            "limited  id mapping           rootless, one id (0:65534:1): no newuidmap/newgidmap on PATH"
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("         fix: apt-get install uidmap")),
        "{text}"
    );
    has_lines(
        &text,
        &[
            "missing  gVisor               runsc not found on PATH (/nonexistent); install gVisor or give the path of runsc",
            "         -> untrusted workloads (the default) are refused; --allow-degraded-security runs them natively",
            "         fix: apt-get install runsc (gVisor's apt repository: https://gvisor.dev/docs/user_guide/install/), or --runsc PATH",
            "missing  untrusted (gVisor)   no usable runsc",
            "the default launch (untrusted) is refused here: no usable runsc; install gVisor, or pass --trust-level trusted or --allow-degraded-security",
        ],
    );
    assert!(!text.contains("gVisor platforms"), "nothing to try: {text}");
    valid_json(&doctor_with_path(As::Nobody, "/nonexistent", &["--json"]));
}

#[test]
fn a_missing_runsc_given_with_the_flag_is_missing() {
    let out = run(As::Caller, &["doctor", "--runsc", "/nonexistent/runsc"]);
    assert_code(&out, CANNOT_RUN);
    has_lines(
        &stdout(&out),
        &[
            "missing  gVisor               /nonexistent/runsc is not an executable file: No such file or directory (os error 2)",
            "missing  untrusted (gVisor)   no usable runsc",
        ],
    );
}

#[test]
fn a_runsc_whose_sandboxes_hang_is_tried_and_fails_within_the_deadline() {
    let dir = TempDir::new("doctor-hang");
    let fake = dir.path().join("runsc");
    // Answers like runsc 2022 but never starts a sandbox: it blocks, as
    // `tail -f` of itself (whose command line names it).
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$*\" in\n\
         --version) printf 'runsc version 0.0~20221219.0\\nspec: 1.0.2-dev\\n' ;;\n\
         'help platforms') printf 'kvm\\nptrace\\n' ;;\n\
         flags) printf '  -ignore-cgroups\\n  -oci-seccomp\\n  -overlay2 value\\n  -platform string\\n    \\tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\\n' ;;\n\
         *) exec tail -f \"$0\" ;;\nesac\n",
    )
    .unwrap();
    set_mode(&fake, 0o755);
    set_mode(dir.path(), 0o755);
    let start = Instant::now();
    let out = run(As::Caller, &["doctor", "--runsc", fake.to_str().unwrap()]);
    let took = start.elapsed();
    assert_code(&out, CANNOT_RUN);
    has_lines(
        &stdout(&out),
        &[
            "missing  gVisor platforms     ptrace: fails (default), kvm: fails",
            "         -> untrusted workloads cannot run here: ptrace fails: hangs: killed after 4s (--timeout)",
        ],
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        processes_with(fake.to_str().unwrap()).is_empty(),
        "a fake runsc outlived the doctor"
    );
}

/// The fixtures, each with its exit status and the verdict lines it is for.
const FIXTURES: &[(&str, i32, &[&str])] = &[
    (
        "healthy-root",
        0,
        &["the default launch (untrusted: gVisor, ptrace) runs here"],
    ),
    (
        "landlock-missing",
        0,
        &[
            "missing  Landlock             built in, not enabled at boot",
            "         fix: add landlock to the lsm= kernel parameter (the current list: /sys/kernel/security/lsm) and reboot",
            "ok       untrusted (gVisor)   ptrace, tried: /bin/true ran",
            "missing  trusted (native)     needs Landlock",
            "missing  wasm                 runs in the native envelope, which cannot start",
        ],
    ),
    (
        "cgroup-v1-landlock-abi3-lockdown",
        0,
        &[
            "limited  Landlock             ABI 3: 15 file rights (vetted: ABI 7)",
            "         fix: a kernel with Landlock ABI 7 (Linux 6.15+)",
            "limited  cgroups              v1: nothing writable by nobody",
            "         -> --memory, --cpus, --pids, --io-max refused (--best-effort-limits runs without)",
            "ok       kernel lockdown      confidentiality",
            "limited  trusted (native)     tried: /bin/true ran; limited by: Landlock, cgroups",
        ],
    ),
    (
        "no-userns",
        CANNOT_RUN,
        &[
            "missing  user namespaces      user.max_user_namespaces is 0",
            "         fix: sysctl -w user.max_user_namespaces=15000 (and a file in /etc/sysctl.d/ to keep it)",
            "missing  trusted (native)     needs user namespaces",
            "missing  untrusted (degraded) the native envelope cannot start either",
        ],
    ),
    (
        "no-runsc-no-uidmap",
        CANNOT_RUN,
        &[
            "limited  id mapping           rootless, one id (0:65534:1): no newuidmap/newgidmap on PATH, no subuid/subgid range for nobody",
            "         fix: apt-get install uidmap; then usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody",
            "missing  untrusted (gVisor)   no usable runsc",
            "limited  untrusted (degraded) with --allow-degraded-security: the native envelope, the result says degraded",
        ],
    ),
    (
        "ptrace-fails-kvm-works",
        CANNOT_RUN,
        &[
            "limited  gVisor platforms     ptrace: fails (default), kvm: works",
            "         fix: --gvisor-platform kvm",
            "the default launch (untrusted: gVisor, ptrace) fails here: gvisor: operation not permitted; pass --gvisor-platform kvm",
        ],
    ),
];

/// Compares `text` with the snapshot `name`, or rewrites it when asked.
fn snapshot(name: &str, text: &str) {
    let path = fixtures().join(name);
    if std::env::var("NUCLEUS_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (NUCLEUS_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    if text != want {
        let (got, was) = text
            .lines()
            .zip(want.lines())
            .find(|(a, b)| a != b)
            .unwrap_or(("(line count)", "(line count)"));
        panic!(
            "{name} differs (NUCLEUS_UPDATE_SNAPSHOTS=1 rewrites it)\n\
             first difference:\n  now: {got}\n  was: {was}\n\nthe whole text now:\n{text}"
        );
    }
}

#[test]
fn saved_reports_are_judged_to_their_snapshots() {
    for (name, code, lines) in FIXTURES {
        let input = fixtures().join(format!("{name}.json"));
        let input = input.to_str().unwrap();
        let out = run(As::Caller, &["doctor", "--from-json", input]);
        assert_code(&out, *code);
        let text = stdout(&out);
        has_lines(&text, lines);
        snapshot(&format!("{name}.txt"), &text);
        // The verdicts in JSON, over the same data, validate.
        let json = run(As::Caller, &["doctor", "--from-json", input, "--json"]);
        assert_code(&json, *code);
        let report = valid_json(&json);
        assert_eq!(report["summary"]["default_launch"]["runs"], *code == 0);
    }
    let verbose = fixtures().join("ptrace-fails-kvm-works.json");
    let out = run(
        As::Caller,
        &[
            "doctor",
            "--verbose",
            "--from-json",
            verbose.to_str().unwrap(),
        ],
    );
    snapshot("ptrace-fails-kvm-works.verbose.txt", &stdout(&out));
}

#[test]
fn an_empty_report_is_all_missing_and_a_bad_one_is_an_error() {
    let dir = TempDir::new("doctor-empty");
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let out = run(
        As::Caller,
        &["doctor", "--from-json", empty.to_str().unwrap()],
    );
    assert_code(&out, CANNOT_RUN);
    let text = stdout(&out);
    for item in [
        "user namespaces",
        "Landlock",
        "seccomp",
        "gVisor",
        "WASI JIT",
    ] {
        assert!(
            line_of(&text, item).starts_with("missing  "),
            "{item}:\n{text}"
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    let out = run(
        As::Caller,
        &["doctor", "--from-json", bad.to_str().unwrap()],
    );
    assert_code(&out, CANNOT_RUN);
    assert_eq!(
        stderr(&out).trim(),
        "nucleus-run: doctor: the report is not a JSON object"
    );
}

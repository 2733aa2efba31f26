//! End to end: exit codes, signals, the timeout, reaping, and the JSON result.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

const WHO: [As; 2] = [As::Caller, As::Nobody];

#[test]
fn exit_codes_and_signals_propagate() {
    for who in WHO {
        if !can_run_as("exit_codes", who) {
            continue;
        }
        assert_code(&run(who, &["--", "/bin/sh", "-c", "exit 7"]), 7);
        assert_code(&run(who, &["--", "/bin/true"]), 0);
        let out = run(who, &["--json", "--", "/bin/sh", "-c", "kill -TERM $$"]);
        assert_code(&out, 128 + libc::SIGTERM);
        let json = parse_result(&stdout(&out));
        assert_eq!(json["signal"], libc::SIGTERM);
        assert_eq!(json["exit_code"], 143);
        assert_eq!(json["killed_by"], serde_json::Value::Null);
    }
}

#[test]
fn timeout_kills_the_whole_tree_including_a_double_forked_grandchild() {
    for who in WHO {
        if !can_run_as("timeout_kills_tree", who) {
            continue;
        }
        let marker = format!("{}.{}", 4000 + std::process::id() % 1000, who as u8);
        let script = format!("(setsid /bin/sleep {marker} &) ; /bin/sleep {marker}");
        let started = Instant::now();
        let out = run(
            who,
            &["--timeout", "1s", "--json", "--", "/bin/sh", "-c", &script],
        );
        let took = started.elapsed();
        assert_code(&out, 124);
        assert!(took < Duration::from_secs(10), "took {took:?}");
        let json = parse_result(&stdout(&out));
        assert_eq!(json["killed_by"], "timeout");
        // The pid namespace died with its init: no sleeper survives.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            processes_with(&marker),
            Vec::<u32>::new(),
            "a sandbox process survived"
        );
    }
}

#[test]
fn zombies_are_reaped_by_the_init() {
    for who in WHO {
        if !can_run_as("zombies_reaped", who) {
            continue;
        }
        // The inner shell exits at once, orphaning its sleep to PID 1; when
        // that sleep ends, only the init can reap it.
        let script = "/bin/sh -c '/bin/sleep 0.1 &'; /bin/sleep 0.6; cat /proc/[0-9]*/stat";
        let out = run(who, &["--", "/bin/sh", "-c", script]);
        assert_code(&out, 0);
        let text = stdout(&out);
        let zombies: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .collect();
        assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    }
}

#[test]
fn signals_sent_to_the_runner_reach_the_workload() {
    // Under gVisor too: runsc run forwards none, the init has runsc deliver it.
    for (runtime, who) in combinations("signals_forwarded", &WHO) {
        let script = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done";
        let mut child = command_on(runtime, who, &["--", "/bin/sh", "-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        // setpriv execs nucleus-run, so the child pid is the runner's.
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert_eq!(
            rest, "got-term\n",
            "{runtime:?} {who:?}: the trap did not run"
        );
        assert_eq!(status.code(), Some(3), "{runtime:?} {who:?}");
    }
}

#[test]
fn json_result_has_the_documented_fields() {
    let out = run(As::Caller, &["--json", "--", "/bin/true"]);
    assert_code(&out, 0);
    let json = parse_result(&stdout(&out));
    for key in [
        "exit_code",
        "signal",
        "killed_by",
        "wall_time_ms",
        "user_cpu_ms",
        "system_cpu_ms",
        "peak_memory_bytes",
        "enforced",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["enforced"]["capabilities"], serde_json::json!([]));
    assert_eq!(json["enforced"]["no_new_privs"], true);
    // The contract's version comes first, for a reader that looks no further.
    let first = format!(
        "{{\"schema_version\":{},",
        nucleus_runner::RESULT_SCHEMA_VERSION
    );
    assert!(stdout(&out).starts_with(&first), "{}", stdout(&out));
    assert_eq!(json["schema_version"], 1);
}

/// `schema/result.schema.json` is a valid draft 2020-12 schema whose
/// `schema_version` is the runner's, and it is exact: every object lists
/// all its fields as required and forbids others.
#[test]
fn the_result_schema_is_valid_and_exact() {
    let schema: serde_json::Value = serde_json::from_str(RESULT_SCHEMA).unwrap();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("schema/result.schema.json is not valid draft 2020-12: {e}");
    }
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let _ = result_validator();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        nucleus_runner::RESULT_SCHEMA_VERSION
    );
    assert_eq!(nucleus_runner::RESULT_SCHEMA_VERSION, 1);
    fn exact(at: &str, node: &serde_json::Value, objects: &mut usize) {
        if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
            *objects += 1;
            assert_eq!(
                node["additionalProperties"], false,
                "{at} admits other fields"
            );
            let mut required: Vec<&str> = node["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{at} has no required list"))
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let mut listed: Vec<&str> = props.keys().map(String::as_str).collect();
            required.sort_unstable();
            listed.sort_unstable();
            assert_eq!(required, listed, "{at}: every field is always present");
        }
        match node {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    exact(&format!("{at}/{key}"), child, objects);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    exact(&format!("{at}/{i}"), child, objects);
                }
            }
            _ => {}
        }
    }
    let mut objects = 0;
    exact("#", &schema, &mut objects);
    assert!(objects > 10, "only {objects} objects described");
}

/// The schema can fail: a real result passes, and the same result with an
/// unknown field (at the top or nested), a wrong type, an unknown enum
/// value, a missing field or another version is rejected.
#[test]
fn the_result_schema_rejects_what_the_runner_does_not_produce() {
    let out = run(As::Caller, &["--json", "--", "/bin/true"]);
    assert_code(&out, 0);
    let good = parse_result(&stdout(&out));
    type Change = fn(&mut serde_json::Value);
    let changes: [(&str, Change); 9] = [
        ("an unknown top-level field", |j| j["forged"] = true.into()),
        ("an unknown field in enforced", |j| {
            j["enforced"]["extra"] = 1.into()
        }),
        ("an unknown field in enforced.landlock", |j| {
            j["enforced"]["landlock"]["extra"] = 1.into()
        }),
        ("exit_code as a string", |j| j["exit_code"] = "0".into()),
        ("a negative peak", |j| j["peak_memory_bytes"] = (-1).into()),
        ("an unknown killed_by", |j| j["killed_by"] = "bored".into()),
        ("a null enforced", |j| {
            j["enforced"] = serde_json::Value::Null
        }),
        ("no exit_code", |j| {
            j.as_object_mut().unwrap().remove("exit_code");
        }),
        ("another schema_version", |j| j["schema_version"] = 2.into()),
    ];
    for (what, change) in changes {
        let mut bad = good.clone();
        change(&mut bad);
        assert!(
            !result_violations(&bad).is_empty(),
            "the schema accepts {what}: {bad}"
        );
    }
}

/// Without a PID namespace and without a cgroup, a `setsid` daemon the
/// workload leaves is ended when the run ends (the runner collects it as
/// its subreaper); also when the run's output is captured, whose pipe the
/// daemon holds. Under gVisor the sandbox's own kernel has a PID namespace
/// of its own either way.
#[test]
fn without_a_pid_namespace_leftovers_end_with_the_run() {
    for (runtime, who) in combinations("pidns_leftovers", &WHO) {
        for capture in [false, true] {
            let marker = format!(
                "{}.{}{}",
                5000 + std::process::id() % 1000,
                who as u8,
                capture as u8
            );
            let script = format!("setsid /bin/sleep {marker} & exit 0");
            let mut args = vec!["--ns", "default,-pid", "--json"];
            if capture {
                args.push("--capture");
            }
            args.extend(["--", "/bin/sh", "-c", &script]);
            let mut cmd = command_on(runtime, who, &args);
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            // A survivor holding the output pipe would keep the run open.
            let out = output_within(cmd, Duration::from_secs(20));
            let survivors = processes_with(&marker);
            for pid in &survivors {
                // SAFETY: plain kill of the leftover this test caused.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            let what = format!("{runtime:?} {who:?} capture={capture}");
            let out = out.unwrap_or_else(|| panic!("{what}: the run waited for its leftover"));
            assert_code(&out, 0);
            assert_eq!(
                survivors,
                Vec::<u32>::new(),
                "{what}: a process survived the run"
            );
        }
    }
}

/// A runner SIGKILLed while its sandbox runs takes the sandbox along (its
/// init dies with it) but cannot remove its cgroups; the next run that
/// makes a cgroup removes them, in every hierarchy, and says so.
#[test]
fn a_killed_runners_cgroups_are_removed_by_the_next_run() {
    let test = "killed_runner_cgroups";
    if !is_root() {
        skip(test, "cgroup limits need root on this machine");
        return;
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // v2 alone: the runners' cgroup could not hold sandboxes beside them
        // (no internal processes); the hybrid host runs this test.
        skip(test, "needs a cgroup v1 hybrid");
        return;
    }
    // The runners run in a cgroup of this test's, below ours in each
    // hierarchy: their sandboxes' cgroups are made there, out of reach of
    // the sweeps of runs that other tests start meanwhile.
    let own = TestCgroup::new(&format!("killed-runner-{}", std::process::id()));
    let start = |args: &[&str]| {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args([
            "-c",
            r#"for d in $0; do echo $$ > "$d/cgroup.procs"; done; exec "$@""#,
        ])
        .arg(own.list())
        .arg(nucleus())
        .args(["--trust-level", "trusted"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .current_dir("/");
        cmd
    };
    let marker = format!("{}.77", 4000 + std::process::id() % 1000);
    let mut runner = start(&[
        "--memory",
        "64M",
        "--pids",
        "64",
        "--",
        "/bin/sleep",
        &marker,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // The marker is in the runner's command line too: wait for the workload.
    let workload = || -> Vec<u32> {
        processes_with(&marker)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while workload().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!workload().is_empty(), "the workload never started");
    runner.kill().unwrap();
    runner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !workload().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        workload(),
        Vec::<u32>::new(),
        "the sandbox outlived its runner"
    );
    let left = own.sandboxes();
    // memory, pids, freezer, cpuacct, and the v2 one to kill with.
    assert!(left.len() >= 4, "the killed run left {left:?}");
    let out = start(&["--memory", "64M", "--json", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    check_printed_result(&out);
    assert_eq!(
        own.sandboxes(),
        Vec::<std::path::PathBuf>::new(),
        "not removed"
    );
    let err = stderr(&out);
    for dir in &left {
        let line = format!(
            "removed {}, left behind by an earlier run that was killed",
            dir.display()
        );
        assert!(err.contains(&line), "no {line:?} in {err}");
    }
}

/// A cgroup named `name` below this process's own in each hierarchy
/// nucleus uses; removed when dropped (its runners must be gone).
struct TestCgroup(Vec<std::path::PathBuf>);

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let sys = std::path::Path::new("/sys/fs/cgroup");
        let mut dirs = Vec::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let mount = match ctrls {
                "" if sys.join("cgroup.controllers").exists() => sys.to_path_buf(),
                "" => sys.join("unified"),
                c if ["memory", "pids", "freezer", "cpuacct", "cpu", "blkio"]
                    .iter()
                    .any(|u| c.split(',').any(|x| x == *u)) =>
                {
                    sys.join(c)
                }
                _ => continue,
            };
            let dir = mount.join(path.trim_start_matches('/')).join(name);
            if mount.is_dir() && std::fs::create_dir(&dir).is_ok() {
                dirs.push(dir);
            }
        }
        TestCgroup(dirs)
    }

    /// The directories, space-separated, for the shell that joins them.
    fn list(&self) -> String {
        let all: Vec<String> = self.0.iter().map(|d| d.display().to_string()).collect();
        all.join(" ")
    }

    /// The sandbox cgroups in it.
    fn sandboxes(&self) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for dir in &self.0 {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with("nucleus-") {
                    found.push(entry.path());
                }
            }
        }
        found
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for dir in &self.0 {
            for sandbox in self.sandboxes() {
                let _ = std::fs::remove_dir(sandbox);
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

//! The runtime's commands on real containers: create waits for start,
//! state follows the process, run returns the exit status, exec joins,
//! pause/resume/ps/update/events act on the cgroup, delete leaves nothing.
//! As root and as nobody (a rootless bundle), from the same cases.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{err, out, ready, Bundle, Who};
use serde_json::Value;

fn state(b: &Bundle, who: Who, id: &str) -> Value {
    let o = b.oci(who, &["state", id]);
    assert!(o.status.success(), "state: {}", err(&o));
    serde_json::from_slice(&o.stdout).expect("state is JSON")
}

fn wait_status(b: &Bundle, who: Who, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = b.oci(who, &["state", id]);
        let s: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if s["status"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who:?} {id}: status stayed {}, wanted {want} ({})",
            s["status"],
            err(&o)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn both(test: &str, f: impl Fn(Who)) {
    if !ready(test) {
        return;
    }
    f(Who::Root);
    f(Who::Nobody);
}

#[test]
fn run_returns_the_exit_status_and_output_and_leaves_nothing() {
    both("run_returns_the_exit_status", |who| {
        let b = Bundle::new(who, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let o = b.oci(who, &["run", "c1"]);
        assert_eq!(o.status.code(), Some(3), "{who:?}: {}", err(&o));
        assert_eq!(out(&o), "out\n");
        assert_eq!(err(&o), "err\n");
        b.assert_clean();
        let b = Bundle::new(who, &["sleep", "30"]);
        // `command` writes no config.json: without this, `run` raced the
        // first `state` of `wait_status` (which writes it) and could find none.
        b.write();
        let run = b
            .command(who, &["run", "c2"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run");
        wait_status(&b, who, "c2", "running");
        assert!(b.oci(who, &["kill", "c2", "9"]).status.success());
        let status = run.wait_with_output().expect("run ends").status;
        assert_eq!(status.code(), Some(137), "{who:?}: killed by a signal");
        b.assert_clean();
    });
}

#[test]
fn create_waits_for_start_and_state_follows_the_process() {
    both("create_waits_for_start", |who| {
        let b = Bundle::new(who, &["sh", "-c", "touch /tmp/started; sleep 30"]);
        let marker = b.path().join("rootfs/tmp/started");
        let pid_file = b.path().join("pid");
        let o = b.oci_detached(
            who,
            &[
                "create",
                "--pid-file",
                pid_file.to_str().expect("utf8"),
                "c1",
            ],
        );
        assert!(o.status.success(), "{who:?} create: {}", err(&o));
        let s = state(&b, who, "c1");
        assert_eq!(s["status"], "created");
        assert_eq!(s["id"], "c1");
        assert_eq!(s["bundle"].as_str(), b.path().to_str());
        let pid = s["pid"].as_i64().expect("pid");
        assert_eq!(
            fs::read_to_string(&pid_file).expect("pid file"),
            pid.to_string()
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists(), "the process ran before start");
        let o = b.oci(who, &["start", "c1"]);
        assert!(o.status.success(), "start: {}", err(&o));
        wait_status(&b, who, "c1", "running");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "the process did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let o = b.oci(who, &["start", "c1"]);
        assert_eq!(o.status.code(), Some(1), "a second start");
        assert!(err(&o).contains("is running"), "{}", err(&o));
        let o = b.oci(who, &["delete", "c1"]);
        assert_eq!(o.status.code(), Some(1), "delete of a running container");
        assert!(err(&o).contains("not stopped"), "{}", err(&o));
        assert!(b.oci(who, &["kill", "c1", "KILL"]).status.success());
        wait_status(&b, who, "c1", "stopped");
        assert_eq!(state(&b, who, "c1")["pid"], 0);
        let o = b.oci(who, &["kill", "c1"]);
        assert_eq!(o.status.code(), Some(1), "kill of a stopped container");
        assert!(b.oci(who, &["delete", "c1"]).status.success());
        let o = b.oci(who, &["state", "c1"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(err(&o).contains("does not exist"), "{}", err(&o));
        b.assert_clean();
    });
}

#[test]
fn exec_joins_the_running_container() {
    both("exec_joins_the_running_container", |who| {
        let b = Bundle::new(who, &["sleep", "30"]);
        assert!(b
            .oci_detached(who, &["run", "--detach", "c1"])
            .status
            .success());
        let o = b.oci(
            who,
            &[
                "exec",
                "c1",
                "sh",
                "-c",
                "hostname; cat /proc/1/cmdline | tr '\\0' ' '; exit 5",
            ],
        );
        assert_eq!(o.status.code(), Some(5), "{who:?}: {}", err(&o));
        assert_eq!(
            out(&o),
            "nucleus-oci-test\nsleep 30 ",
            "the container's UTS and PID namespaces"
        );
        let process = serde_json::json!({
            "args": ["sh", "-c", "echo $FOO; pwd; id -u"],
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/tmp",
            "user": {"uid": 0, "gid": 0}
        });
        let pf = b.path().join("process.json");
        fs::write(&pf, process.to_string()).expect("process.json");
        let o = b.oci(
            who,
            &["exec", "--process", pf.to_str().expect("utf8"), "c1"],
        );
        assert!(o.status.success(), "{}", err(&o));
        assert_eq!(out(&o), "bar\n/tmp\n0\n");
        let o = b.oci(who, &["exec", "c1", "/nonexistent"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(err(&o).contains("no such file or directory"), "{}", err(&o));
        let o = b.oci(who, &["exec", "c1", "/nonexistent"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(err(&o).contains("no such file or directory"), "{}", err(&o));
        let pid_file = b.path().join("exec.pid");
        let o = b.oci_detached(
            who,
            &[
                "exec",
                "--detach",
                "--pid-file",
                pid_file.to_str().expect("utf8"),
                "c1",
                "sleep",
                "20",
            ],
        );
        assert!(o.status.success(), "{}", err(&o));
        let pid: i32 = fs::read_to_string(&pid_file)
            .expect("pid")
            .parse()
            .expect("number");
        let o = b.oci(who, &["ps", "--format", "json", "c1"]);
        let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if who == Who::Root {
            assert!(
                pids.contains(&pid),
                "ps lists the exec'd process: {pids:?} {pid}"
            );
        }
        assert!(b.oci(who, &["delete", "--force", "c1"]).status.success());
        // SAFETY: kill(pid, 0) only checks existence.
        let gone = || unsafe { libc::kill(pid, 0) } != 0 || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone() {
            assert!(
                Instant::now() < deadline,
                "the exec'd process outlived delete --force"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        b.assert_clean();
    });
}

#[test]
fn pause_resume_update_and_events_act_on_the_cgroup() {
    if !ready("pause_resume_update") {
        return;
    }
    let who = Who::Root;
    let b = Bundle::new(who, &["sleep", "30"]);
    assert!(b.oci_detached(who, &["run", "-d", "c1"]).status.success());
    assert!(b.oci(who, &["pause", "c1"]).status.success());
    wait_status(&b, who, "c1", "paused");
    assert!(b.oci(who, &["resume", "c1"]).status.success());
    wait_status(&b, who, "c1", "running");
    let o = b.oci(
        who,
        &["update", "--pids-limit", "42", "--memory", "96M", "c1"],
    );
    assert!(o.status.success(), "update: {}", err(&o));
    let dirs = common::cgroup_dirs(&b.cgroup());
    let read = |file: &str| {
        dirs.iter()
            .find_map(|d| fs::read_to_string(d.join(file)).ok())
            .map(|s| s.trim().to_owned())
    };
    assert_eq!(read("pids.max").as_deref(), Some("42"));
    let mem = read("memory.limit_in_bytes").or_else(|| read("memory.max"));
    assert_eq!(mem.as_deref(), Some("100663296"));
    let res = b.path().join("res.json");
    fs::write(&res, r#"{"pids": {"limit": 17}}"#).expect("resources");
    assert!(b
        .oci(
            who,
            &["update", "--resources", res.to_str().expect("utf8"), "c1"]
        )
        .status
        .success());
    assert_eq!(read("pids.max").as_deref(), Some("17"));
    let o = b.oci(who, &["events", "--stats", "c1"]);
    let ev: Value = serde_json::from_slice(&o.stdout).expect("an event");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], "c1");
    let o = b.oci(who, &["update", "--resources", "/nonexistent", "c1"]);
    assert_eq!(o.status.code(), Some(1));
    let list = out(&b.oci(who, &["list", "--format", "json"]));
    assert!(list.contains("\"c1\""), "{list}");
    assert!(b
        .oci(who, &["kill", "--all", "c1", "KILL"])
        .status
        .success());
    wait_status(&b, who, "c1", "stopped");
    assert!(b.oci(who, &["delete", "c1"]).status.success());
    b.assert_clean();
}

#[test]
fn features_lists_what_is_supported() {
    if !ready("features_lists_what_is_supported") {
        return;
    }
    let b = Bundle::new(Who::Root, &["true"]);
    let o = b.oci(Who::Root, &["features"]);
    let f: Value = serde_json::from_slice(&o.stdout).expect("features JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"].as_array().is_some_and(|h| h.len() == 6));
    assert!(f["mountOptions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|o| o == "tmpcopyup")));
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a == "SCMP_ACT_NOTIFY")));
    assert!(f["linux"]["capabilities"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_ADMIN")));
}

#[test]
fn hooks_run_in_their_phases_with_the_state_on_stdin() {
    if !ready("hooks_run_in_their_phases") {
        return;
    }
    let who = Who::Root;
    let mut b = Bundle::new(who, &["true"]);
    let log = b.path().join("hooks.log");
    let hook = |phase: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{phase} $s\" >> {}", log.display())]});
    b.config["hooks"] = serde_json::json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let o = b.oci(who, &["run", "c1"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = fs::read_to_string(&log).expect("hooks ran");
    let phases: Vec<&str> = text
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        phases,
        ["prestart", "createRuntime", "poststart", "poststop"]
    );
    assert!(text.contains("\"id\":\"c1\""), "{text}");
    let mut b = Bundle::new(who, &["true"]);
    b.config["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]});
    let o = b.oci(who, &["run", "c2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("createRuntime hook /bin/false"),
        "{}",
        err(&o)
    );
    b.assert_clean();
    // A failing poststart or poststop hook is a warning: the next hooks
    // run and the container runs on to its own exit status.
    let mut b = Bundle::new(who, &["sh", "-c", "exit 5"]);
    let log = b.path().join("hooks.log");
    let hook = |phase: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {phase} >> {}", log.display())]});
    let fails = serde_json::json!({"path": "/bin/false"});
    b.config["hooks"] = serde_json::json!({
        "poststart": [fails.clone(), hook("poststart")],
        "poststop": [fails, hook("poststop")],
    });
    let o = b.oci(who, &["run", "c3"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_eq!(
        fs::read_to_string(&log).expect("the second hooks ran"),
        "poststart\npoststop\n"
    );
    for phase in ["poststart", "poststop"] {
        assert!(
            err(&o).contains(&format!("warning: {phase} hook /bin/false")),
            "{}",
            err(&o)
        );
    }
    b.assert_clean();
}

#[test]
fn a_create_killed_half_way_is_cleared_by_delete_force() {
    if !ready("a_create_killed_half_way") {
        return;
    }
    let who = Who::Root;
    let mut b = Bundle::new(who, &["true"]);
    b.config["hooks"] =
        serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "2"]}]});
    b.write();
    let mut child = b
        .command(who, &["create", "c1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("create");
    let cgroups = common::cgroup_dirs(&b.cgroup());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cgroups.iter().any(|d| d.exists()) {
        assert!(Instant::now() < deadline, "create made no cgroup");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill create");
    child.wait().expect("reap create");
    let o = b.oci(who, &["delete", "--force", "c1"]);
    assert!(o.status.success(), "{}", err(&o));
    b.assert_clean();
}

#[test]
fn an_untrusted_container_runs_under_gvisor_through_the_same_commands() {
    if !ready("an_untrusted_container_runs_under_gvisor") || !common::has_runsc("gvisor lifecycle")
    {
        return;
    }
    let untrusted = serde_json::json!({"org.nucleus.trust-level": "untrusted"});
    let mut b = Bundle::new(
        Who::Root,
        &["sh", "-c", "dmesg | head -1 | sed 's/^[^]]*] //'; exit 3"],
    );
    b.config["annotations"] = untrusted.clone();
    let o = b.oci(Who::Root, &["run", "g1"]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(3), "Starting gVisor...\n".to_owned()),
        "{}",
        err(&o)
    );
    b.assert_clean();
    let mut b = Bundle::new(Who::Root, &["sleep", "30"]);
    b.config["annotations"] = untrusted.clone();
    let o = b.oci_detached(Who::Root, &["create", "g2"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(state(&b, Who::Root, "g2")["status"], "created");
    let listed = |b: &Bundle| -> Value {
        let all: Value =
            serde_json::from_str(&out(&b.oci(Who::Root, &["list", "--format", "json"])))
                .expect("list prints JSON");
        all.as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == "g2"))
            .map_or(Value::Null, |c| c["status"].clone())
    };
    assert_eq!(listed(&b), "created", "list agrees with runsc");
    assert!(b.oci(Who::Root, &["start", "g2"]).status.success());
    wait_status(&b, Who::Root, "g2", "running");
    assert_eq!(listed(&b), "running");
    let o = b.oci(
        Who::Root,
        &[
            "exec",
            "g2",
            "sh",
            "-c",
            "dmesg | head -1 | sed 's/^[^]]*] //'; exit 4",
        ],
    );
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(4), "Starting gVisor...\n".to_owned()),
        "{}",
        err(&o)
    );
    assert!(b.oci(Who::Root, &["kill", "g2", "KILL"]).status.success());
    wait_status(&b, Who::Root, "g2", "stopped");
    assert!(b.oci(Who::Root, &["delete", "g2"]).status.success());
    b.assert_clean();
    // The trust level is checked; rootless gVisor is nucleus-run's, not this runtime's.
    let mut b = Bundle::new(Who::Root, &["true"]);
    b.config["annotations"] = serde_json::json!({"org.nucleus.trust-level": "maybe"});
    let o = b.oci_detached(Who::Root, &["create", "g3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("\"maybe\" is neither \"trusted\" nor \"untrusted\""),
        "{}",
        err(&o)
    );
    let mut b = Bundle::new(Who::Nobody, &["true"]);
    b.config["annotations"] = untrusted;
    let o = b.oci(Who::Nobody, &["run", "g4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("an untrusted container needs root"),
        "{}",
        err(&o)
    );
    b.assert_clean();
}

#[test]
fn an_exec_is_held_by_the_containers_landlock_policy() {
    both("an_exec_is_held_by_landlock", |who| {
        let mut b = Bundle::new(who, &["sleep", "30"]);
        b.config["annotations"] = serde_json::json!({"org.nucleus.landlock": "default"});
        assert!(b.oci_detached(who, &["run", "-d", "c1"]).status.success());
        let o = b.oci(
            who,
            &["exec", "c1", "sh", "-c", "touch /tmp/ok && touch /root/x"],
        );
        assert_eq!(
            (o.status.code(), err(&o)),
            (Some(1), "touch: /root/x: Permission denied\n".to_owned()),
            "{who:?}"
        );
        assert!(b.oci(who, &["delete", "--force", "c1"]).status.success());
        b.assert_clean();
    });
}

/// Waits (20 s at most) until `fd` is readable.
fn wait_readable(fd: RawFd, what: &str) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one live pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    assert_eq!(n, 1, "{what}: nothing within 20 s");
}

/// The seccomp agent's side of `linux.seccomp.listenerPath`: one
/// connection, the listener received with `recvmsg` (`SCM_RIGHTS`) and the
/// container process state read to the end (the runtime closes it).
fn accept_listener(agent: &UnixListener) -> (Value, OwnedFd) {
    wait_readable(agent.as_raw_fd(), "no connection to the agent");
    let (mut conn, _) = agent.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    wait_readable(conn.as_raw_fd(), "no container process state");
    let (mut buf, listener) = nucleus_test_support::recv_fd(conn.as_raw_fd());
    conn.read_to_end(&mut buf)
        .expect("the runtime closes the connection");
    let state = serde_json::from_slice(&buf).expect("the state is JSON");
    (state, listener)
}

/// Answers the next notification on `listener` with the error `errno`; the
/// syscall's number.
fn answer_next(listener: &OwnedFd, errno: i32) -> i64 {
    wait_readable(listener.as_raw_fd(), "no notification");
    // SAFETY: an all-zero seccomp_notif, as NOTIF_RECV requires.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one seccomp_notif into `req`.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -errno,
        flags: 0,
    };
    // SAFETY: the kernel reads one seccomp_notif_resp.
    let rc = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    i64::from(req.data.nr)
}

/// Checks the container process state an agent got.
fn assert_process_state(got: &Value, id: &str, status: &str, b: &Bundle) {
    assert_eq!(got["ociVersion"], "1.0.2", "{got}");
    assert_eq!(got["fds"], serde_json::json!(["seccompFd"]), "{got}");
    assert!(got["pid"].as_i64().is_some_and(|p| p > 0), "{got}");
    assert_eq!(got["metadata"], "probe-meta", "{got}");
    assert_eq!(got["state"]["id"], id, "{got}");
    assert_eq!(got["state"]["status"], status, "{got}");
    assert_eq!(got["state"]["bundle"].as_str(), b.path().to_str(), "{got}");
}

#[test]
fn seccomp_notify_hands_the_listener_to_the_agent() {
    both("seccomp_notify_hands_the_listener", |who| {
        let mkdir = |dir: &str| format!("mkdir {dir}; echo rc=$?");
        let mut b = Bundle::new(who, &["sh", "-c", &mkdir("/tmp/x")]);
        let path = b.path().join("agent.sock");
        let agent = UnixListener::bind(&path).expect("bind the agent's socket");
        if who == Who::Nobody {
            let nobody = nucleus_test_support::NOBODY;
            std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).expect("chown");
        }
        b.config["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": "probe-meta",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
        let mkdirs = [libc::SYS_mkdir, libc::SYS_mkdirat];
        // The container's process: its mkdir gets the agent's answer.
        let (o, (state, nr)) = std::thread::scope(|s| {
            let answered = s.spawn(|| {
                let (state, listener) = accept_listener(&agent);
                (state, answer_next(&listener, libc::EXDEV))
            });
            let o = b.oci(who, &["run", "n1"]);
            (o, answered.join().expect("the agent"))
        });
        assert_eq!(o.status.code(), Some(0), "{who:?}: {}", err(&o));
        assert_eq!(
            (out(&o), err(&o)),
            (
                "rc=1\n".to_owned(),
                "mkdir: can't create directory '/tmp/x': Invalid cross-device link\n".to_owned()
            ),
            "{who:?}"
        );
        assert!(mkdirs.contains(&nr), "{who:?}: syscall {nr} notified");
        assert_process_state(&state, "n1", "creating", &b);
        assert_eq!(state["pid"], state["state"]["pid"]);
        assert!(!b.path().join("rootfs/tmp/x").exists());
        b.assert_clean();
        // An exec'd process has the container's filter and its own
        // listener; this time the container's init applies it before it
        // drops its privileges (no noNewPrivileges).
        b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
        b.config["process"]["noNewPrivileges"] = serde_json::json!(false);
        let (o, (init_state, _init_listener)) = std::thread::scope(|s| {
            let answered = s.spawn(|| accept_listener(&agent));
            let o = b.oci_detached(who, &["run", "-d", "n2"]);
            (o, answered.join().expect("the agent"))
        });
        assert!(o.status.success(), "{who:?}: {}", err(&o));
        assert_process_state(&init_state, "n2", "creating", &b);
        let pid_file = b.path().join("exec.pid");
        let (o, (state, nr)) = std::thread::scope(|s| {
            let answered = s.spawn(|| {
                let (state, listener) = accept_listener(&agent);
                (state, answer_next(&listener, libc::EXDEV))
            });
            let pf = pid_file.to_str().expect("utf8");
            let o = b.oci(
                who,
                &["exec", "--pid-file", pf, "n2", "sh", "-c", &mkdir("/tmp/y")],
            );
            (o, answered.join().expect("the agent"))
        });
        assert_eq!(o.status.code(), Some(0), "{who:?}: {}", err(&o));
        assert_eq!(out(&o), "rc=1\n", "{who:?}");
        assert!(
            err(&o).contains("'/tmp/y': Invalid cross-device link"),
            "{}",
            err(&o)
        );
        assert!(mkdirs.contains(&nr), "{who:?}: syscall {nr} notified");
        assert_process_state(&state, "n2", "running", &b);
        let exec_pid = fs::read_to_string(&pid_file).expect("pid file");
        assert_eq!(
            state["pid"].to_string(),
            exec_pid,
            "the exec'd process's pid"
        );
        assert_eq!(state["state"]["pid"], init_state["pid"], "the container's");
        assert!(b.oci(who, &["delete", "--force", "n2"]).status.success());
        b.assert_clean();
    });
}

/// The runtime's own last steps before `execve` (closing inherited fds)
/// come before the container's seccomp filter: a profile that denies
/// `close_range` (as runtime-tools' default one does, by not listing it)
/// still starts its process, in the container and through `exec`.
#[test]
fn a_profile_without_close_range_still_starts_the_process() {
    both("a_profile_without_close_range", |who| {
        let mut b = Bundle::new(who, &["sh", "-c", "echo started"]);
        b.config["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
        });
        let o = b.oci(who, &["run", "s1"]);
        assert_eq!(
            (o.status.code(), out(&o), err(&o)),
            (Some(0), "started\n".to_owned(), String::new()),
            "{who:?}"
        );
        b.assert_clean();
        b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
        assert!(b.oci_detached(who, &["run", "-d", "s2"]).status.success());
        let o = b.oci(who, &["exec", "s2", "sh", "-c", "echo execd"]);
        assert_eq!(
            (o.status.code(), out(&o)),
            (Some(0), "execd\n".to_owned()),
            "{who:?}: {}",
            err(&o)
        );
        assert!(b.oci(who, &["delete", "--force", "s2"]).status.success());
        b.assert_clean();
    });
}

/// Root starting a container in a user namespace whose maps do not name
/// host root (`podman --userns=auto`'s shape): the container's root is the
/// mapped uid 100000, with its capabilities inside, so the mounts are made
/// and the process runs as 0 there.
#[test]
fn root_runs_a_container_in_a_mapped_user_namespace() {
    if !ready("root_runs_a_container_in_a_mapped_user_namespace")
        || !nucleus_test_support::require_root("mapped user namespace", "maps host ids")
    {
        return;
    }
    let mut b = Bundle::new(
        Who::Root,
        &["sh", "-c", "id -u; id -g; tr -s ' ' < /proc/self/uid_map"],
    );
    let mut config = common::rootless_config(&[], 0);
    config["process"] = b.config["process"].clone();
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
    b.config = config;
    // The mapped root reaches the rootfs as "other".
    fs::set_permissions(
        b.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let o = b.oci(Who::Root, &["run", "u1"]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), "0\n0\n 0 100000 65536\n".to_owned()),
        "{}",
        err(&o)
    );
    b.assert_clean();
}

/// The optional fields of the container's `/` in its mountinfo
/// (`shared:N`, `master:N`, `unbindable`), without their numbers.
fn root_propagation_tags(mountinfo: &str) -> Vec<String> {
    let line = mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in {mountinfo}"));
    line.split(' ')
        .skip(6)
        .take_while(|f| *f != "-")
        .map(|f| f.split(':').next().unwrap_or(f).to_owned())
        .collect()
}

/// Whether the host mount holding `path` is shared (systemd makes `/`
/// shared; a plain init leaves it private).
fn host_mount_is_shared(path: &std::path::Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let point = *fields.get(4)?;
            path.starts_with(point).then(|| {
                let tags = fields[6..].iter().take_while(|f| **f != "-");
                (point.len(), tags.clone().any(|t| t.starts_with("shared:")))
            })
        })
        .max_by_key(|(len, _)| *len)
        .is_some_and(|(_, shared)| shared)
}

/// `linux.rootfsPropagation` is the container's `/`'s, every value of it
/// (`shared` and `unbindable` too, which `pivot_root` and the root's bind
/// would refuse were they applied before the switch); without one, `/` is a
/// slave of the host, never shared with it.
#[test]
fn rootfs_propagation_is_the_roots() {
    both("rootfs_propagation_is_the_roots", |who| {
        // A slave of a private mount is private: "master" only where the
        // host's mount is shared.
        let probe = Bundle::new(who, &["true"]);
        let slave: &[&str] = if host_mount_is_shared(probe.path()) {
            &["master"]
        } else {
            &[]
        };
        for (value, want) in [
            (None, slave),
            (Some("slave"), slave),
            (Some("private"), &[][..]),
            (Some("rprivate"), &[][..]),
            (Some("shared"), &[&["shared"][..], slave].concat()[..]),
            (Some("rshared"), &[&["shared"][..], slave].concat()[..]),
            (Some("unbindable"), &["unbindable"][..]),
            (Some("runbindable"), &["unbindable"][..]),
        ] {
            let mut b = Bundle::new(who, &["cat", "/proc/self/mountinfo"]);
            if let Some(v) = value {
                b.config["linux"]["rootfsPropagation"] = serde_json::json!(v);
            }
            let o = b.oci(who, &["run", "p1"]);
            assert_eq!(o.status.code(), Some(0), "{who:?} {value:?}: {}", err(&o));
            let mut tags = root_propagation_tags(&out(&o));
            tags.sort();
            let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(tags, want, "{who:?} {value:?}");
            b.assert_clean();
        }
    });
}

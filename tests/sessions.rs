//! End to end: sessions of a `nucleus-run serve` (`nucleus-run session
//! create|exec|ls|rm`), under both runtimes where a property is the
//! runtime's. The containment probes run as session commands too
//! (tests/containment.rs); here: what a session keeps and shares, how
//! each command ends, and how a session ends.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The users a session test runs as (nobody where unprivileged user
/// namespaces work).
fn users(test: &str) -> Vec<As> {
    [As::Caller, As::Nobody]
        .into_iter()
        .filter(|who| can_run_as(test, *who))
        .collect()
}

/// The name the result gives `runtime`.
fn runtime_name(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Native => "native",
        Runtime::Gvisor => "gvisor",
    }
}

/// Whether a process of session `name` runs `args` (as `ps` inside the
/// session shows it: gVisor's processes are not the host's).
fn runs_inside(server: &Server, who: As, name: &str, args: &str) -> bool {
    let out = server.exec(who, name, &["ps", "-eo", "args"]);
    stdout(&out).lines().any(|l| l.trim() == args)
}

/// The host pids whose command line is exactly `argv`.
fn pids_of(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Files written by one command are there for the next (the same view and
/// writable state); after `session rm` and a new session of the same name,
/// they are gone. Both runtimes, root and nobody.
#[test]
fn a_session_keeps_files_between_commands_and_loses_them_after_rm() {
    for (runtime, who) in combinations("session_files", &[As::Caller, As::Nobody]) {
        let who_ = format!("{runtime:?} {who:?}");
        let server = Server::start(who, &[]);
        server.create_session_on(runtime, who, "work", &[]);
        let out = server.exec(who, "work", &["sh", "-c", "echo kept > /tmp/note; cd /tmp"]);
        assert_eq!(out.status.code(), Some(0), "{who_}: {}", stderr(&out));
        let out = server.exec(who, "work", &["cat", "/tmp/note"]);
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "kept\n"),
            "{who_}"
        );
        // Each command starts in the session's workdir, not where the last one went.
        let out = server.exec(who, "work", &["pwd"]);
        assert_eq!(stdout(&out), "/\n", "{who_}");
        let out = server.session(who, &["ls"]);
        assert!(
            stdout(&out).starts_with("work\t"),
            "{who_}: {}",
            stdout(&out)
        );
        let out = server.session(who, &["rm", "work"]);
        assert_eq!(out.status.code(), Some(0), "{who_}: {}", stderr(&out));
        let out = server.exec(who, "work", &["true"]);
        assert_eq!(out.status.code(), Some(125), "{who_}");
        assert!(
            stderr(&out).contains("no session is named \"work\""),
            "{}",
            stderr(&out)
        );
        server.create_session_on(runtime, who, "work", &[]);
        let out = server.exec(who, "work", &["cat", "/tmp/note"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{who_}: the file outlived its session"
        );
        assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
        assert!(stdout(&server.session(who, &["ls"])).starts_with("work\t"));
    }
}

/// Each command has its own result: its exit code, its signal, its
/// captured output, a program that is not there, its own environment and
/// directory; and the session's rlimits and `no_new_privs`. Both runtimes.
#[test]
fn each_command_gets_its_own_result() {
    let test = "session_results";
    for (runtime, who) in combinations(test, &users(test)[..1]) {
        results_of_one_session(runtime, who);
    }
}

fn results_of_one_session(runtime: Runtime, who: As) {
    let server = Server::start(who, &[]);
    server.create_session_on(runtime, who, "r", &["--rlimit", "nofile=77:88"]);
    // The session's rlimits are each command's (under gVisor, the
    // container's, which runsc exec gives what it starts).
    let out = server.exec(who, "r", &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!(stdout(&out), "77\n88\n", "{runtime:?}: {}", stderr(&out));
    assert_eq!(
        server.exec(who, "r", &["sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    let out = server.exec(who, "r", &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    let out = server.exec(who, "r", &["no-such-program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("command not found"),
        "{}",
        stderr(&out)
    );
    let out = server.session(
        who,
        &[
            "exec",
            "r",
            "--capture",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "--",
            "sh",
            "-c",
            "echo $X; pwd; echo e >&2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["captured"]["stdout"], "1\n/tmp\n");
    assert_eq!(result["captured"]["stderr"], "e\n");
    assert_eq!(result["enforced"]["runtime"], runtime_name(runtime));
    assert_eq!(result["enforced"]["no_new_privs"], true);
    assert!(result["enforced"]["seccomp"].is_object(), "{result}");
    // What the result says, the command has (PR_GET_NO_NEW_PRIVS is 39).
    let nnp = "import ctypes; print(ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))";
    let out = server.exec(who, "r", &["python3", "-c", nnp]);
    assert_eq!(stdout(&out), "1\n", "{runtime:?}: {}", stderr(&out));
}

/// A session's limits cover all its commands together: with `--pids 6`,
/// three sleeps a first command left running (and the init) leave the
/// next command too few pids to fork three more.
#[test]
fn a_sessions_limits_cover_all_its_commands() {
    let test = "session_limits";
    if !is_root() {
        return skip(test, "cgroup limits need root here");
    }
    let server = Server::start(As::Caller, &[]);
    server.create_session(As::Caller, "lim", &["--pids", "6"]);
    let start = "for i in 1 2 3; do sleep 1000 >/dev/null 2>&1 & done";
    let out = server.exec(As::Caller, "lim", &["sh", "-c", start]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = server.exec(
        As::Caller,
        "lim",
        &["sh", "-c", "sleep 1 & sleep 1 & sleep 1 & wait"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Cannot fork"), "{}", stderr(&out));
    // Within the limit again once the sleeps are gone.
    let out = server.exec(
        As::Caller,
        "lim",
        &["sh", "-c", "kill $(pidof sleep); sleep 0"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A command's timeout kills it and its process group (a background job
/// of it too), and only it: the session and what an earlier command left
/// running live on. A job that left the group (its own session) survives,
/// as a daemon should.
#[test]
fn a_commands_timeout_kills_its_group_not_the_session() {
    let test = "session_timeout";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let server = Server::start(who, &[]);
        server.create_session_on(runtime, who, "t", &[]);
        let daemon = "setsid sleep 1001 >/dev/null 2>&1 < /dev/null &";
        assert_eq!(
            server.exec(who, "t", &["sh", "-c", daemon]).status.code(),
            Some(0)
        );
        let started = Instant::now();
        let out = server.session(
            who,
            &[
                "exec",
                "t",
                "--timeout",
                "1s",
                "--",
                "sh",
                "-c",
                "sleep 1002 & sleep 1003",
            ],
        );
        assert_eq!(out.status.code(), Some(124), "{who:?}: {}", stderr(&out));
        assert!(started.elapsed() < Duration::from_secs(10));
        let out = server.exec(who, "t", &["ps", "-eo", "args"]);
        let ps = stdout(&out);
        assert!(ps.contains("sleep 1001"), "{who:?}: the daemon died: {ps}");
        assert!(
            !ps.contains("sleep 1002") && !ps.contains("sleep 1003"),
            "{who:?}: {ps}"
        );
    }
}

/// A client that dies mid-command takes that command with it; the session
/// lives on. Both runtimes.
#[test]
fn a_client_that_dies_kills_its_command_not_the_session() {
    let test = "session_client_dies";
    for (runtime, who) in combinations(test, &users(test)[..1]) {
        a_dying_client(runtime, who);
    }
}

fn a_dying_client(runtime: Runtime, who: As) {
    let server = Server::start(who, &[]);
    server.create_session_on(runtime, who, "c", &[]);
    let mut client = command(
        who,
        &[
            "session",
            "exec",
            "c",
            "--server",
            &server.arg(),
            "--",
            "sh",
            "-c",
            "sleep 1007 & sleep 1004",
        ],
    )
    .spawn()
    .unwrap();
    // Natively the host sees the session's processes; under gVisor they
    // are inside its kernel, and `ps` in the session sees them.
    let runs = |args: &str| match runtime {
        Runtime::Native => !pids_of(&args.split(' ').collect::<Vec<_>>()).is_empty(),
        Runtime::Gvisor => runs_inside(&server, who, "c", args),
    };
    assert!(eventually(Duration::from_secs(20), || runs("sleep 1004")));
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || !runs("sleep 1004")),
        "{runtime:?}: the command outlived its client"
    );
    // Killed together, but a process's end takes a moment to show.
    assert!(
        eventually(Duration::from_secs(20), || !runs("sleep 1007")),
        "{runtime:?}: its job did"
    );
    assert_eq!(server.exec(who, "c", &["true"]).status.code(), Some(0));
}

/// Commands of one session run at once, each with its own result.
#[test]
fn commands_of_a_session_run_concurrently() {
    let test = "session_concurrent";
    let who = users(test)[0];
    let server = Server::start(who, &[]);
    server.create_session(who, "many", &[]);
    let started = Instant::now();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let socket = server.arg();
            std::thread::spawn(move || {
                let code = format!("sleep 1; echo {i} > /tmp/{i}; exit {i}");
                command(
                    who,
                    &[
                        "session", "exec", "many", "--server", &socket, "--", "sh", "-c", &code,
                    ],
                )
                .output()
                .unwrap()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert_eq!(out.status.code(), Some(i as i32), "{}", stderr(&out));
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let out = server.exec(who, "many", &["sh", "-c", "cat /tmp/0 /tmp/9"]);
    assert_eq!(stdout(&out), "0\n9\n");
}

/// A session with no command for its idle timeout is removed, and with it
/// its processes.
#[test]
fn an_idle_session_is_removed() {
    let test = "session_idle";
    let who = users(test)[0];
    let server = Server::start(who, &[]);
    server.create_session(who, "idle", &["--idle-timeout", "1s"]);
    let bg = "sleep 1005 >/dev/null 2>&1 &";
    assert_eq!(
        server.exec(who, "idle", &["sh", "-c", bg]).status.code(),
        Some(0)
    );
    // A command running keeps it: the clock starts when the last one ends.
    assert_eq!(
        server.exec(who, "idle", &["sleep", "2"]).status.code(),
        Some(0)
    );
    assert!(!pids_of(&["sleep", "1005"]).is_empty());
    // (Asking with a command would keep it: `ls` does not.)
    let listed = || stdout(&server.session(who, &["ls"]));
    assert!(
        eventually(Duration::from_secs(10), || listed().is_empty()),
        "{}",
        listed()
    );
    assert!(pids_of(&["sleep", "1005"]).is_empty());
    assert_eq!(server.exec(who, "idle", &["true"]).status.code(), Some(125));
}

/// Stopping the server ends every session: no process of theirs is left,
/// and the server exits 0.
#[test]
fn stopping_the_server_ends_its_sessions() {
    let test = "session_stop";
    for who in users(test) {
        let mut server = Server::start(who, &[]);
        for name in ["one", "two"] {
            server.create_session(who, name, &["--idle-timeout", "1h"]);
            let bg = "sleep 1006 >/dev/null 2>&1 &";
            assert_eq!(
                server.exec(who, name, &["sh", "-c", bg]).status.code(),
                Some(0)
            );
        }
        assert_eq!(pids_of(&["sleep", "1006"]).len(), 2);
        let status = server.stop();
        assert_eq!(status.code(), Some(0), "{}", server.log());
        assert!(
            eventually(Duration::from_secs(5), || pids_of(&["sleep", "1006"])
                .is_empty()),
            "{who:?}: a session's process outlived the server"
        );
    }
}

/// Wrong use gets a clear error and changes nothing: a bad or taken name,
/// a command given to `create`, no server, `--rootfs` under gVisor.
#[test]
fn wrong_use_is_refused_by_name() {
    let test = "session_refusals";
    let who = users(test)[0];
    let server = Server::start(who, &[]);
    let out = server.session(
        who,
        &["create", "--name", "../x", "--trust-level", "trusted"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("is not valid"), "{}", stderr(&out));
    server.create_session(who, "taken", &[]);
    let out = server.session(
        who,
        &["create", "--name", "taken", "--trust-level", "trusted"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    let out = server.session(who, &["create", "--name", "c", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("session exec c"), "{}", stderr(&out));
    let out = command(who, &["session", "exec", "taken", "--", "true"])
        .env_remove("NUCLEUS_SERVER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sessions live in a server"),
        "{}",
        stderr(&out)
    );
    if runsc_present(test) {
        // Its helper runs on the host's libraries.
        let gvisor = ["--trust-level", "untrusted", "--rootfs", "/usr"];
        let out = server.session(who, &[&["create", "--name", "g"][..], &gvisor].concat());
        assert_eq!(out.status.code(), Some(125));
        assert!(stderr(&out).contains("drop --rootfs"), "{}", stderr(&out));
    }
    let listed = stdout(&server.session(who, &["ls"]));
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["taken"]);
}

/// A gVisor session's container lives in the holder's envelope: `session
/// rm` and the server's stop leave no process (runsc's sandbox, gofer and
/// the commands' jobs) and no run directory.
#[test]
fn a_gvisor_session_leaves_nothing_behind() {
    let test = "session_gvisor_cleanup";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        if runtime != Runtime::Gvisor {
            continue;
        }
        let mut server = Server::start(who, &[]);
        let server_pid = server.child.id();
        let bg = "sleep 1008 >/dev/null 2>&1 &";
        let mut made = Vec::new();
        for name in ["rm", "stop"] {
            server.create_session_on(runtime, who, name, &[]);
            let out = server.exec(who, name, &["sh", "-c", bg]);
            assert_eq!(out.status.code(), Some(0), "{who:?}: {}", stderr(&out));
            // The processes this session added: its holder and runsc's.
            let all = descendants(server_pid);
            let before: Vec<u32> = made.iter().flatten().copied().collect();
            made.push(
                all.into_iter()
                    .filter(|p| !before.contains(p))
                    .collect::<Vec<_>>(),
            );
        }
        let alive = |pids: &[u32]| -> Vec<u32> {
            pids.iter()
                .copied()
                .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
                .collect()
        };
        let below: Vec<u32> = made.concat();
        assert_eq!(gvisor_run_dirs(&below).len(), 2, "{who:?}");
        let out = server.session(who, &["rm", "rm"]);
        assert_eq!(out.status.code(), Some(0), "{who:?}: {}", stderr(&out));
        assert!(
            alive(&made[0]).is_empty() && gvisor_run_dirs(&made[0]).is_empty(),
            "{who:?}: rm left {:?} of {:?}",
            alive(&made[0]),
            made[0]
        );
        assert!(
            !alive(&made[1]).is_empty(),
            "{who:?}: rm took the other session"
        );
        assert_eq!(server.stop().code(), Some(0), "{}", server.log());
        assert!(
            alive(&below).is_empty(),
            "{who:?}: {:?} outlived the server",
            alive(&below)
        );
        assert!(gvisor_run_dirs(&below).is_empty(), "{who:?}");
    }
}

/// The gVisor run directories (`nucleus-PID-…`) of the processes `pids`.
fn gvisor_run_dirs(pids: &[u32]) -> Vec<std::path::PathBuf> {
    let roots = [
        std::path::PathBuf::from("/run/nucleus/gvisor"),
        std::env::temp_dir().join(format!("nucleus-{NOBODY}/gvisor")),
    ];
    roots
        .iter()
        .filter_map(|root| std::fs::read_dir(root).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|p| pids.contains(&p))
        })
        .collect()
}

/// A gVisor session needs `nucleus-gvisor-exec` beside `nucleus-run`: a
/// `nucleus-run` without it refuses the session by name (and says how to
/// get it), and the server lives on.
#[test]
fn a_gvisor_session_without_its_helper_is_refused_by_name() {
    let test = "session_no_helper";
    if !runsc_present(test) {
        return;
    }
    // A hard link: the binary's own path (/proc/self/exe) is then this
    // directory, which holds no helper.
    let dir = world_writable("nohelper");
    let lone = dir.path().join("nucleus-run");
    std::fs::hard_link(nucleus(), &lone).unwrap();
    let socket = dir.path().join("s.sock");
    let mut server = std::process::Command::new(&lone)
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || socket.exists()));
    let session = |args: &[&str]| {
        std::process::Command::new(&lone)
            .arg("session")
            .args(args)
            .arg("--server")
            .arg(&socket)
            .output()
            .unwrap()
    };
    let out = session(&["create", "--name", "g", "--trust-level", "untrusted"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("nucleus-gvisor-exec") && text.contains("cargo install"),
        "{text}"
    );
    assert_eq!(stdout(&session(&["ls"])), "");
    // SAFETY: kill has no memory effects; the pid is our child's.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

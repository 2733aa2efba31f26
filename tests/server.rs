//! End to end: `nucleus-run serve` and `--server`. The containment probes
//! run through a server too (tests/containment.rs); here: what the server
//! adds. Output through passed fds, the peer check, a client's death, many
//! clients at once, stopping, hostile requests, the fallback.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use nucleus_runner::protocol::{self, ErrorKind};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Sends raw bytes as a request and reads the reply frame.
fn raw_exchange(server: &Server, bytes: &[u8]) -> protocol::Reply {
    let mut conn = UnixStream::connect(&server.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(bytes).unwrap();
    read_reply(&mut conn)
}

fn read_reply(conn: &mut UnixStream) -> protocol::Reply {
    let mut header = [0u8; 4];
    conn.read_exact(&mut header).unwrap();
    let len = protocol::frame_len(header, protocol::MAX_REPLY).unwrap();
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).unwrap();
    protocol::decode_reply(&body).unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The workload's stdout and stderr are the client's own fds: the files
/// the client redirected them to get every line, in order, under both
/// runtimes and both users. (Each stream to a file of its own: under gVisor
/// the runner relays the two streams, as a direct run does, and two
/// streams into one file keep each one's order, not their interleaving.)
#[test]
fn output_goes_straight_to_the_clients_files() {
    let test = "server_output";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let server = Server::start(who, &[]);
        let out_dir = world_writable("serve-out");
        let (out_file, err_file) = (out_dir.path().join("out"), out_dir.path().join("err"));
        let script = format!(
            "\"$NUCLEUS\" --server {} --trust-level {} -- /bin/sh -c \
             'for i in 1 2 3; do echo line$i; echo err$i >&2; done; exit 7' \
             > {} 2> {}",
            server.arg(),
            runtime.trust_level(),
            out_file.display(),
            err_file.display()
        );
        let out = shell(who, &script).output().unwrap();
        let text = std::fs::read_to_string(&out_file).unwrap();
        let errors = std::fs::read_to_string(&err_file).unwrap();
        assert_eq!(
            out.status.code(),
            Some(7),
            "{runtime:?} {who:?}: {text} {errors}"
        );
        assert_eq!(
            (text.as_str(), errors.as_str()),
            ("line1\nline2\nline3\n", "err1\nerr2\nerr3\n"),
            "{runtime:?} {who:?}; server log: {}",
            server.log()
        );
    }
}

/// `--json` and `--capture` through the server print what a direct run
/// prints: the same result object (schema-checked by `run_on`).
#[test]
fn the_result_is_the_direct_runs() {
    let server = Server::start(As::Caller, &[]);
    let out = run_via(
        &server,
        Runtime::Native,
        As::Caller,
        &[
            "--capture",
            "--",
            "/bin/sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_code(&out, 3);
    let result = result(&out);
    assert_eq!(result["captured"]["stdout"], "out\n");
    assert_eq!(result["captured"]["stderr"], "err\n");
    assert_eq!(result["exit_code"], 3);
    assert!(
        stdout(&out).starts_with("{\"schema_version\":1,"),
        "{}",
        stdout(&out)
    );
    // The client's directory and environment are the run's.
    let out = command(
        As::Caller,
        &[
            "--server",
            &server.arg(),
            "--env-keep",
            "NUCLEUS_T",
            "-w",
            "/tmp",
            "--",
            "/bin/sh",
            "-c",
            "echo $NUCLEUS_T; pwd",
        ],
    )
    .env("NUCLEUS_T", "from-client")
    .output()
    .unwrap();
    assert_eq!(stdout(&out), "from-client\n/tmp\n", "{}", stderr(&out));
    // A setup failure reads as a direct run's: code 125, the same sentence.
    let direct = run(As::Caller, &["--", "/nonexistent/program"]);
    let served = run_via(
        &server,
        Runtime::Native,
        As::Caller,
        &["--", "/nonexistent/program"],
    );
    assert_eq!(direct.status.code(), served.status.code());
    assert_eq!(stderr(&direct), stderr(&served));
}

/// Only the server's own uid and root may use it: a `nobody` client of
/// root's server (socket opened to everyone for the test) is refused by
/// `SO_PEERCRED`, and nothing runs.
#[test]
fn a_request_from_another_uid_is_refused() {
    let test = "server_refuses_other_uids";
    if !can_run_as(test, As::Nobody) {
        return;
    }
    let server = Server::start(As::Caller, &[]);
    let meta = std::fs::metadata(&server.socket).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // With the mode as made, nobody cannot even connect.
    let out = command(As::Nobody, &["--server", &server.arg(), "--", "/bin/true"])
        .output()
        .unwrap();
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    set_mode(&server.socket, 0o666);
    let marker = unique_marker("refused");
    let out = command(
        As::Nobody,
        &[
            "--server",
            &server.arg(),
            "--",
            "/bin/sh",
            "-c",
            &format!("touch /tmp/{marker}"),
        ],
    )
    .output()
    .unwrap();
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("refused") && stderr(&out).contains("uid 65534"),
        "{}",
        stderr(&out)
    );
    // nobody's own server lets root in.
    let nobodys = Server::start(As::Nobody, &[]);
    let out = run_via(&nobodys, Runtime::Native, As::Caller, &["--", "/bin/true"]);
    assert_code(&out, 0);
}

fn unique_marker(tag: &str) -> String {
    nucleus_test_support::unique_name(tag)
}

/// A client that dies mid-run takes its sandbox with it, under both
/// runtimes and both users; the server goes on serving.
#[test]
fn a_client_that_dies_gets_its_sandbox_killed() {
    let test = "server_client_dies";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let server = Server::start(who, &[]);
        let (flag_dir, mut client) = start_sleeper(&server, runtime, who);
        client.kill().unwrap();
        client.wait().unwrap();
        // The worker killed the sandbox, removed what it made and exited.
        assert!(
            eventually(Duration::from_secs(20), || descendants(server.child.id())
                .is_empty()),
            "{runtime:?} {who:?}: the sandbox outlived its client: {:?}",
            descendants(server.child.id())
        );
        drop(flag_dir);
        let out = run_via(&server, runtime, who, &["--", "/bin/echo", "still-serving"]);
        assert_eq!(stdout(&out), "still-serving\n", "{runtime:?} {who:?}");
    }
}

/// A client of `server` whose sandbox runs a long sleep, once it started
/// (it touches a file through a bind first; under gVisor the sleep is no
/// host process to look for).
fn start_sleeper(server: &Server, runtime: Runtime, who: As) -> (TempDir, std::process::Child) {
    let dir = world_writable("serve-flag");
    let client = sleeper_on(server, runtime, who, &dir, Duration::from_secs(30));
    (dir, client)
}

/// [`start_sleeper`] with `dir` bound at `/flag`, started within `limit`.
fn sleeper_on(
    server: &Server,
    runtime: Runtime,
    who: As,
    dir: &TempDir,
    limit: Duration,
) -> std::process::Child {
    let bind = format!("{}:/flag", dir.path().display());
    let client = command_on(
        runtime,
        who,
        &[
            "--server",
            &server.arg(),
            "--bind",
            &bind,
            "--",
            "/bin/sh",
            "-c",
            "touch /flag/started; exec /bin/sleep 600",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    assert!(
        eventually(limit, || dir.path().join("started").exists()),
        "{runtime:?} {who:?}: the sandbox never started; server log: {}",
        server.log()
    );
    client
}

/// 50 clients at once: every one gets its own output and its own result.
#[test]
fn fifty_concurrent_clients() {
    let server = Server::start(As::Caller, &[]);
    let children: Vec<_> = (0..50)
        .map(|i| {
            command(
                As::Caller,
                &[
                    "--server",
                    &server.arg(),
                    "--",
                    "/bin/sh",
                    "-c",
                    &format!("echo client-{i}; exit {}", i % 5),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(i as i32 % 5),
            "client {i}: {}",
            stderr(&out)
        );
        assert_eq!(
            stdout(&out),
            format!("client-{i}\n"),
            "client {i}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("running directly"),
            "{}",
            stderr(&out)
        );
    }
}

/// `--max-sandboxes N`: request N+1 gets a `busy` reply while N run.
#[test]
fn a_full_server_answers_busy() {
    let server = Server::start(As::Caller, &["--max-sandboxes", "1"]);
    let (_flag, mut first) = start_sleeper(&server, Runtime::Native, As::Caller);
    let out = command(As::Caller, &["--server", &server.arg(), "--", "/bin/true"])
        .output()
        .unwrap();
    assert_code(&out, 125);
    assert!(stderr(&out).contains("(busy)"), "{}", stderr(&out));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(eventually(Duration::from_secs(20), || {
        command(As::Caller, &["--server", &server.arg(), "--", "/bin/true"])
            .output()
            .unwrap()
            .status
            .success()
    }));
}

/// `SIGTERM` ends the server: its running sandboxes are killed, their
/// clients told, its socket removed, and it exits 0.
#[test]
fn sigterm_ends_the_server_and_its_sandboxes() {
    let test = "server_sigterm";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let mut server = Server::start(who, &[]);
        let (_flag, client) = start_sleeper(&server, runtime, who);
        let pid = server.child.id();
        let status = server.stop();
        assert!(status.success(), "{status}: {}", server.log());
        assert!(
            descendants(pid).is_empty(),
            "{runtime:?} {who:?}: the sandbox outlived the server"
        );
        assert!(!server.socket.exists());
        let out = client.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{runtime:?} {who:?}");
    }
}

/// Hostile and broken requests each get an error reply naming what is
/// wrong; the server survives every one and serves the next.
#[test]
fn bad_requests_get_an_error_and_the_server_goes_on() {
    let server = Server::start(As::Caller, &[]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        ((u32::MAX).to_be_bytes().to_vec(), "larger than the limit"),
        (frame(b"{"), "malformed"),
        (frame(b"[]"), "malformed"),
        (frame(br#"{"version":2,"envelope":{}}"#), "version 2"),
        (frame(br#"{"version":1,"envelope":{},"bogus":1}"#), "bogus"),
        (
            frame(br#"{"version":1,"envelope":{"command":["/bin/true"],"timeout":"forever"}}"#),
            "malformed",
        ),
        (
            frame(br#"{"version":1,"envelope":{"command":["/bin/true"]}}garbage"#),
            "malformed",
        ),
    ];
    for (bytes, want) in cases {
        let reply = raw_exchange(&server, &bytes);
        let error = reply.error.unwrap();
        assert_eq!(error.kind, ErrorKind::BadRequest, "{want}");
        assert!(error.message.contains(want), "{want}: {}", error.message);
    }
    // Bytes after the frame.
    let mut bytes = frame(br#"{"version":1,"envelope":{"command":["/bin/true"]}}"#);
    bytes.extend_from_slice(b"extra");
    let reply = raw_exchange(&server, &bytes);
    assert!(reply.error.unwrap().message.contains("one request"));
    // Four fds.
    let mut conn = UnixStream::connect(&server.socket).unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let fds = [null.as_raw_fd(); 4];
    nucleus_test_support::send_fds(
        conn.as_raw_fd(),
        &frame(br#"{"version":1,"envelope":{}}"#),
        &fds,
    );
    let reply = read_reply(&mut conn);
    assert!(reply.error.unwrap().message.contains("at most 3"));
    // A valid request that fails its setup: a setup error, not a crash.
    let reply = raw_exchange(
        &server,
        &frame(br#"{"version":1,"envelope":{"command":[]}}"#),
    );
    let error = reply.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Setup);
    assert!(error.message.contains("no command"), "{}", error.message);
    // A client that connects and leaves, or sends half a frame and leaves.
    drop(UnixStream::connect(&server.socket).unwrap());
    let mut half = UnixStream::connect(&server.socket).unwrap();
    half.write_all(&[0, 0, 1]).unwrap();
    drop(half);
    let out = run_via(
        &server,
        Runtime::Native,
        As::Caller,
        &["--", "/bin/echo", "ok"],
    );
    assert_eq!(stdout(&out), "ok\n");
}

/// A request slower than the server's timeout gets an error, and a
/// connection that sends nothing does not hold the server.
#[test]
fn a_stalled_request_times_out() {
    let server = Server::start(As::Caller, &["--request-timeout", "1s"]);
    let mut stalled = UnixStream::connect(&server.socket).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stalled.write_all(&[0, 0]).unwrap();
    let reply = read_reply(&mut stalled);
    assert!(reply.error.unwrap().message.contains("no whole request"));
}

/// Without a server at the path, the run happens directly, with a warning.
#[test]
fn no_server_falls_back_to_a_direct_run() {
    let dir = TempDir::new("no-server");
    let socket = dir.path().join("none.sock");
    let out = run(
        As::Caller,
        &[
            "--server",
            &socket.display().to_string(),
            "--",
            "/bin/echo",
            "direct",
        ],
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "direct\n");
    assert!(
        stderr(&out).contains("no server listens"),
        "{}",
        stderr(&out)
    );
    // NUCLEUS_SERVER is the default of --server.
    let out = command(As::Caller, &["--", "/bin/true"])
        .env("NUCLEUS_SERVER", &socket)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("no server listens"),
        "{}",
        stderr(&out)
    );
}

/// A second server never takes a live server's socket; a dead one's is
/// replaced; a path that is not a socket is never removed.
#[test]
fn the_socket_is_never_taken_from_a_live_server() {
    let server = Server::start(As::Caller, &[]);
    let out = command(As::Caller, &["serve", "--socket", &server.arg()])
        .output()
        .unwrap();
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("a server listens there"),
        "{}",
        stderr(&out)
    );
    let dir = TempDir::new("serve-stale");
    let file = dir.path().join("regular");
    std::fs::write(&file, "keep").unwrap();
    let out = command(
        As::Caller,
        &["serve", "--socket", &file.display().to_string()],
    )
    .output()
    .unwrap();
    assert_code(&out, 125);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    // A stale socket: bound, never listened on, its owner gone.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut again = Server::start_at(As::Caller, &stale);
    let out = run_via(
        &again,
        Runtime::Native,
        As::Caller,
        &["--", "/bin/echo", "fresh"],
    );
    assert_eq!(stdout(&out), "fresh\n");
    assert!(again.stop().success());
    assert!(!stale.exists());
}

/// Every sandbox gets a network namespace of its own, never the host's nor
/// another sandbox's, with `lo` up: one a root server made ahead (its
/// pool), or one the clone made. A kept network capability still works in
/// it (such a sandbox makes its own, as without a server).
#[test]
fn each_sandbox_has_a_network_namespace_of_its_own() {
    let test = "server_netns";
    let script = "import os, socket\n\
                  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                  socket.create_connection(s.getsockname()).close()\n\
                  print(os.readlink('/proc/self/ns/net'), flush=True)\n\
                  import time; time.sleep(0.5)";
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    for who in [As::Caller, As::Nobody] {
        if !can_run_as(test, who) {
            continue;
        }
        let server = Server::start(who, &["--netns-pool", "2"]);
        // More than the pool holds, at once (each sandbox lives 0.5 s, so
        // a round's four overlap; a freed namespace's number may come back
        // in a later round): the pool runs dry and refills while idle.
        for round in 0..3 {
            let mut seen = std::collections::HashSet::new();
            let children: Vec<_> = (0..4)
                .map(|_| {
                    command(
                        who,
                        &[
                            "--server",
                            &server.arg(),
                            "--",
                            "/usr/bin/python3",
                            "-c",
                            script,
                        ],
                    )
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
                })
                .collect();
            for child in children {
                let out = child.wait_with_output().unwrap();
                assert_code(&out, 0);
                let ns = stdout(&out).trim().to_owned();
                assert!(
                    ns.starts_with("net:["),
                    "{who:?} round {round}: {ns}; {}",
                    stderr(&out)
                );
                assert_ne!(
                    Path::new(&ns),
                    host.as_path(),
                    "{who:?}: the host's namespace"
                );
                assert!(seen.insert(ns.clone()), "{who:?}: {ns} given twice");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if !is_root() {
        return;
    }
    let server = Server::start(As::Caller, &[]);
    let bind80 = "import socket\nsocket.socket().bind(('127.0.0.1', 80))\nprint('bound')";
    let args = [
        "--cap-keep",
        "net_bind_service",
        "--",
        "/usr/bin/python3",
        "-c",
        bind80,
    ];
    let direct = run(As::Caller, &args);
    let served = run_via(&server, Runtime::Native, As::Caller, &args);
    assert_eq!(stdout(&direct), "bound\n", "{}", stderr(&direct));
    assert_eq!(stdout(&served), "bound\n", "{}", stderr(&served));
}

/// A pinned seccomp profile is compiled by the server once and found by
/// every worker, but its file is still checked each run: a file changed
/// after its pin fails through the server as it fails directly.
#[test]
fn a_pinned_profile_is_still_checked_each_run() {
    let dir = TempDir::new("serve-pin");
    let profile = dir.path().join("profile.json");
    let out = run(As::Caller, &["seccomp", "default"]);
    std::fs::write(&profile, &out.stdout).unwrap();
    use sha2::Digest;
    let pin: String = sha2::Sha256::digest(&out.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = Server::start(As::Caller, &[]);
    let path = profile.display().to_string();
    let args = [
        "--seccomp-profile",
        &path,
        "--seccomp-profile-sha256",
        &pin,
        "--",
        "/bin/echo",
        "pinned",
    ];
    for _ in 0..3 {
        let out = run_via(&server, Runtime::Native, As::Caller, &args);
        assert_eq!(stdout(&out), "pinned\n", "{}", stderr(&out));
    }
    std::fs::write(&profile, b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}").unwrap();
    let direct = run(As::Caller, &args);
    let served = run_via(&server, Runtime::Native, As::Caller, &args);
    assert_code(&direct, 125);
    assert_code(&served, 125);
    assert_eq!(stderr(&direct), stderr(&served));
    assert!(stderr(&served).contains("sha256"), "{}", stderr(&served));
}

/// The server's own flags refuse what makes no sense, by name, before any
/// socket is made.
#[test]
fn bad_serve_flags_are_refused() {
    let dir = TempDir::new("serve-flags");
    let socket = dir.path().join("s.sock").display().to_string();
    for (flag, value) in [
        ("--max-sandboxes", "0"),
        ("--max-sandboxes", "many"),
        ("--netns-pool", "-1"),
        ("--spares", "17"),
        ("--spares", "-1"),
        ("--request-timeout", "forever"),
    ] {
        let arg = format!("{flag}={value}");
        let out = command(As::Caller, &["serve", "--socket", &socket, &arg])
            .output()
            .unwrap();
        assert_code(&out, 125);
        assert!(
            stderr(&out).contains(flag),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(!dir.path().join("s.sock").exists());
    }
}

/// A result larger than the socket's buffer (4 MB of captured output)
/// arrives whole, from a run and from a session's command, root and nobody:
/// the server reads requests without blocking, and its workers must send
/// replies blocking.
#[test]
fn a_result_larger_than_the_socket_buffer_arrives_whole() {
    let test = "server_large_result";
    let script = "head -c 4000000 /dev/zero | tr '\\0' a";
    let capture = [
        "--capture",
        "--capture-limit",
        "8M",
        "--",
        "sh",
        "-c",
        script,
    ];
    for who in [As::Caller, As::Nobody] {
        if !can_run_as(test, who) {
            continue;
        }
        let server = Server::start(who, &[]);
        let run = run_via(&server, Runtime::Native, who, &capture);
        server.create_session(who, "big", &[]);
        let mut exec = vec!["exec", "big"];
        exec.extend(capture);
        let session = server.session(who, &exec);
        for (via, out) in [("run", run), ("session", session)] {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{who:?} {via}: {}",
                stderr(&out)
            );
            let result: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            let captured = &result["captured"];
            assert_eq!(captured["stdout_bytes"], 4_000_000, "{who:?} {via}");
            assert_eq!(captured["truncated"], false, "{who:?} {via}");
            let text = captured["stdout"].as_str().unwrap();
            assert!(text.len() == 4_000_000 && text.bytes().all(|b| b == b'a'));
        }
    }
}

/// With `--spares`, a request of a shape seen before runs in a sandbox the
/// server built ahead (its PID 1 started well before the command), still
/// one of its own: nothing of the run before is there, and the exit code
/// and output are the request's. A client that dies takes its spare's
/// sandbox with it; stopping the server ends the idle spares. Natively
/// (spares are native only), as root and as nobody.
#[test]
fn spares_are_built_ahead_and_each_used_once() {
    // PID 1's start and the shell's, in clock ticks; exit 9 if the file
    // of the run before is there.
    let script = "test ! -e /tmp/left || exit 9; echo x > /tmp/left; \
        read -r a < /proc/1/stat; read -r b < /proc/self/stat; \
        set -- $a; s1=${22}; set -- $b; echo $(( ${22} - s1 )); exit 4";
    let ticks = |out: &std::process::Output| stdout(out).trim().parse::<i64>().unwrap_or(-1);
    for who in [As::Caller, As::Nobody] {
        let mut server = Server::start(who, &["--spares", "2"]);
        let flag = world_writable("spare-flag");
        let bind = format!("{}:/flag", flag.path().display());
        let run = |script: &str| {
            let args = ["--bind", &bind, "--", "/bin/sh", "-c", script];
            run_via(&server, Runtime::Native, who, &args)
        };
        // The first of its shape is cold: PID 1 and the shell start together.
        let out = run(script);
        assert_code(&out, 4);
        assert!(ticks(&out) < 10, "{who:?}: {}", stdout(&out));
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(500));
            let out = run(script);
            assert_code(&out, 4);
            assert!(ticks(&out) >= 20, "{who:?}: not a spare: {}", stdout(&out));
        }
        // The result is the command's: its code, output and CPU time; a
        // process it leaves behind ends with the sandbox, as in any run.
        std::thread::sleep(Duration::from_millis(300));
        let out = run("echo out");
        assert_eq!(stdout(&out), "out\n", "{who:?}");
        let args = [
            "--json",
            "--bind",
            &bind,
            "--",
            "/bin/sh",
            "-c",
            "(sleep 0.3; echo late) & echo now",
        ];
        std::thread::sleep(Duration::from_millis(300));
        let out = run_via(&server, Runtime::Native, who, &args);
        assert_code(&out, 0);
        let text = stdout(&out);
        let (first, json) = text.split_once('\n').unwrap();
        assert_eq!(first, "now", "{who:?}: {text}");
        let result: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert!(result["wall_time_ms"].as_f64().unwrap() > 0.0, "{result}");
        assert!(result["user_cpu_ms"].as_f64().is_some(), "{result}");
        // A spare's client dies: its sleep goes with it.
        std::thread::sleep(Duration::from_millis(500));
        let limit = Duration::from_secs(20);
        let mut client = sleeper_on(&server, Runtime::Native, who, &flag, limit);
        let sleeps = |pid: u32| {
            descendants(pid).into_iter().any(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"/bin/sleep"))
            })
        };
        assert!(
            sleeps(server.child.id()),
            "{who:?}: the sleep is not below the server"
        );
        client.kill().unwrap();
        client.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(20), || !sleeps(server.child.id())),
            "{who:?}: the spare's sandbox outlived its client"
        );
        // Idle spares end with the server.
        let pid = server.child.id();
        assert!(!descendants(pid).is_empty(), "{who:?}: no spare was kept");
        let status = server.stop();
        assert!(status.success(), "{status}: {}", server.log());
        assert!(
            descendants(pid).is_empty(),
            "{who:?}: a spare outlived the server"
        );
    }
}

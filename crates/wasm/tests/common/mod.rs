//! Helpers of the WASI host's tests: every run happens in a forked child (it redirects stdio
//! and may install seccomp), never in the test process. What other suites share too (forks,
//! temporary directories) is in `nucleus-test-support`; all the tests' `unsafe` is here or
//! there.
#![allow(dead_code, clippy::unwrap_used)]

use nucleus_test_support::{exit, fork, fork_lock, pipe, wait, Exit, TempDir};
use nucleus_wasm::{CacheMode, PreparedWasm, WasmOutcome, WasmPolicy};
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

/// Held across compile, fork and drop: wasmtime's global code registry has locks that a
/// fork must not catch held by another test thread.
pub fn lock() -> MutexGuard<'static, ()> {
    fork_lock()
}

/// A fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory for one test, removed when dropped.
pub fn tempdir(name: &str) -> TempDir {
    TempDir::new(&format!("wasm-t-{name}"))
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
    let dir = tempdir("io");
    let (inp, out, err) = (dir.join("in"), dir.join("out"), dir.join("err"));
    fs::write(&inp, stdin).unwrap();
    let files = [
        fs::File::open(&inp).unwrap(),
        fs::File::create(&out).unwrap(),
        fs::File::create(&err).unwrap(),
    ];
    let (read_end, write_end) = pipe();
    let pid = fork();
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
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
        Exit::Code(0),
        "child status; reply {}",
        String::from_utf8_lossy(&reply)
    );
    let outcome = serde_json::from_slice(&reply)
        .unwrap_or_else(|_| panic!("run failed: {}", String::from_utf8_lossy(&reply)));
    let stdout_bytes = fs::read(&out).unwrap();
    Ran {
        outcome,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&fs::read(&err).unwrap()).into_owned(),
    }
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

/// `dup2(from, to)`.
pub fn dup2(from: i32, to: i32) {
    // SAFETY: plain integers; `from` is open.
    assert!(unsafe { libc::dup2(from, to) } >= 0);
}

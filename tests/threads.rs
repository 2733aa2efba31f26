//! End to end: multi-threaded and multi-process programs run under both
//! runtimes, as root and as nobody: Python threads and a fork pool, Node
//! (whose runtime starts threads) with a worker, and a Rust program.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::Path;

const BOTH: [As; 2] = [As::Caller, As::Nobody];

/// Runs `args` under every runtime and user; collects every combination
/// whose exit code is not 0 or whose stdout is not `want`.
fn expect_everywhere(test: &str, extra: &[&str], args: &[&str], want: &str) {
    let mut failures = Vec::new();
    for (runtime, who) in combinations(test, &BOTH) {
        let mut all: Vec<&str> = extra.to_vec();
        all.push("--");
        all.extend(args);
        let out = run_on(runtime, who, &all);
        if out.status.code() != Some(0) || stdout(&out) != want {
            failures.push(format!(
                "{test}, runtime {runtime:?}, user {who:?}: expected {want:?}, got {:?} \
                 (exit {:?}; stderr: {})",
                stdout(&out),
                out.status.code(),
                stderr(&out).trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn python_threads() {
    let script = "import threading\n\
                  done = []\n\
                  ts = [threading.Thread(target=done.append, args=(i,)) for i in range(8)]\n\
                  [t.start() for t in ts]\n\
                  [t.join() for t in ts]\n\
                  print('OK' if sorted(done) == list(range(8)) else done)";
    expect_everywhere(
        "python_threads",
        &[],
        &["/usr/bin/python3", "-c", script],
        "OK\n",
    );
}

#[test]
fn python_multiprocessing_fork_pool() {
    let script = "import multiprocessing\n\
                  with multiprocessing.get_context('fork').Pool(2) as pool:\n    \
                  print(pool.map(abs, [-1, -2]))";
    expect_everywhere(
        "python_multiprocessing",
        &[],
        &["/usr/bin/python3", "-c", script],
        "[1, 2]\n",
    );
}

#[test]
fn node_worker_thread() {
    if !Path::new("/usr/bin/node").exists() {
        return skip("node_worker_thread", "node is not installed on the host");
    }
    let script = "const { Worker } = require('worker_threads');\n\
                  new Worker('require(\"worker_threads\").parentPort.postMessage(6 * 7)', { eval: true })\n\
                  .on('message', (m) => console.log(m));";
    expect_everywhere(
        "node_worker_thread",
        &[],
        &["/usr/bin/node", "-e", script],
        "42\n",
    );
}

#[test]
fn rust_threads() {
    let test = "rust_threads";
    let rustc = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("rustc"))
            .find(|f| f.is_file())
    });
    let Some(rustc) = rustc else {
        return skip(test, "rustc is not on PATH");
    };
    let dir = TempDir::new("rust-threads");
    let src = dir.path().join("threads.rs");
    std::fs::write(
        &src,
        "fn main(){ let h: Vec<_> = (0..4).map(|i| std::thread::spawn(move || i*2)).collect(); \
         let s: i32 = h.into_iter().map(|h| h.join().unwrap()).sum(); println!(\"{s}\"); }\n",
    )
    .unwrap();
    let bin = dir.path().join("threads");
    let built = std::process::Command::new(rustc)
        .arg("-O")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "rustc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    set_mode(&bin, 0o755);
    // Read-only binds allow exec.
    let bind = format!("{}:/t", dir.arg());
    expect_everywhere(test, &["--ro-bind", &bind], &["/t/threads"], "12\n");
}

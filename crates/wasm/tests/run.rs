//! What a guest can and cannot do: stdio, args, env, preopens, exit codes, traps, limits.

mod common;

use common::{fixture, run, tempdir, tool};
use nucleus_test_support::{in_child, pipe, Exit};
use nucleus_wasm::{CacheMode, TrapKind, WasmPolicy, DEADLINE_EXIT_CODE, TRAP_EXIT_CODE};
use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// WASI errnos (preview 1).
const ERRNO_NOENT: i32 = 44;
const ERRNO_PERM: i32 = 63;
const ERRNO_LOOP: i32 = 32;

#[test]
fn hello_world() {
    let mut p = WasmPolicy::new(fixture("hello.wat"));
    p.cache = CacheMode::Off;
    let ran = run(&p, b"");
    assert_eq!(ran.stdout, "hello, world\n");
    assert_eq!(ran.outcome.exit_code, 0);
    assert_eq!(ran.outcome.trap, None);
}

#[test]
fn args_and_only_the_given_env() {
    let mut p = tool(&["a", "two words", ""]);
    p.env = vec![("A".into(), "1".into()), ("B".into(), "x=y".into())];
    let ran = run(&p, b"");
    assert_eq!(ran.outcome.exit_code, 0, "{:?}", ran);
    assert_eq!(ran.stdout, "tool\na\ntwo words\n\nA=1\nB=x=y\n");
    // Nothing of the host's environment (PATH, HOME, ...) leaks in.
    let bare = run(&tool(&["a"]), b"");
    assert_eq!(bare.stdout, "tool\na\n");
}

#[test]
fn stdin_to_stdout() {
    let input: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let ran = run(&tool(&["p"]), &input);
    assert_eq!(ran.outcome.exit_code, 0);
    assert_eq!(ran.stdout_bytes, input);
}

#[test]
fn exit_codes_propagate() {
    for code in [0, 1, 42, 125] {
        let ran = run(&tool(&["x", &code.to_string()]), b"");
        assert_eq!(ran.outcome.exit_code, code);
        assert_eq!(ran.outcome.trap, None);
    }
    // WASI preview 1 allows 0..126; wasmtime-wasi fails the call beyond.
    let o = run(&tool(&["x", "200"]), b"").outcome;
    assert_eq!(
        (o.exit_code, o.trap),
        (TRAP_EXIT_CODE, Some(TrapKind::Host)),
        "{o:?}"
    );
    assert!(o.trap_message.unwrap_or_default().contains("exit status"));
}

#[test]
fn clocks_and_random() {
    assert_eq!(run(&tool(&["c"]), b"").outcome.exit_code, 0);
}

#[test]
fn read_and_write_a_preopen() {
    let dir = tempdir("rw");
    fs::write(dir.join("in.txt"), "from the host\n").unwrap();
    let preopen = format!("{}:/data", dir.display());
    let mut p = tool(&["r", "in.txt"]);
    p.preopens = vec![preopen.parse().unwrap()];
    let ran = run(&p, b"");
    assert_eq!(
        (ran.outcome.exit_code, ran.stdout.as_str()),
        (0, "from the host\n")
    );

    let mut p = tool(&["w", "sub/out.txt"]);
    p.preopens = vec![preopen.parse().unwrap()];
    assert_eq!(run(&p, b"").outcome.exit_code, ERRNO_NOENT);
    let mut p = tool(&["m", "sub"]);
    p.preopens = vec![preopen.parse().unwrap()];
    assert_eq!(run(&p, b"").outcome.exit_code, 0);
    let mut p = tool(&["w", "sub/out.txt"]);
    p.preopens = vec![preopen.parse().unwrap()];
    assert_eq!(run(&p, b"written by the guest").outcome.exit_code, 0);
    assert_eq!(
        fs::read_to_string(dir.join("sub/out.txt")).unwrap(),
        "written by the guest"
    );
    let mut p = tool(&["u", "sub/out.txt"]);
    p.preopens = vec![preopen.parse().unwrap()];
    assert_eq!(run(&p, b"").outcome.exit_code, 0);
    assert!(!dir.join("sub/out.txt").exists());
}

#[test]
fn read_only_preopen_allows_no_write() {
    let dir = tempdir("ro");
    fs::write(dir.join("keep.txt"), "original").unwrap();
    let preopen = format!("{}:/data:ro", dir.display());
    let attempt = |args: &[&str]| {
        let mut p = tool(args);
        p.preopens = vec![preopen.parse().unwrap()];
        run(&p, b"overwritten").outcome.exit_code
    };
    assert_eq!(attempt(&["r", "keep.txt"]), 0, "reading is allowed");
    assert_eq!(attempt(&["w", "new.txt"]), ERRNO_PERM, "create");
    assert_eq!(attempt(&["w", "keep.txt"]), ERRNO_PERM, "truncate");
    assert_eq!(attempt(&["o", "keep.txt"]), ERRNO_PERM, "open for writing");
    assert_eq!(attempt(&["m", "d"]), ERRNO_PERM, "mkdir");
    assert_eq!(attempt(&["u", "keep.txt"]), ERRNO_PERM, "unlink");
    assert_eq!(
        fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "original"
    );
    assert!(!dir.join("new.txt").exists() && !dir.join("d").exists());
}

#[test]
fn nothing_outside_the_preopens() {
    let root = tempdir("escape");
    let inner = root.join("inner");
    fs::create_dir_all(inner.join("sub")).unwrap();
    fs::write(root.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), inner.join("link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", inner.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("sub", inner.join("ok-link")).unwrap();
    fs::write(inner.join("sub/inside.txt"), "inside").unwrap();
    let attempt_with = |op: &str, path: &str| {
        let mut p = tool(&[op, path]);
        p.preopens = vec![format!("{}:/data", inner.display()).parse().unwrap()];
        let ran = run(&p, b"");
        assert!(!ran.stdout.contains("secret"), "{path}: {ran:?}");
        ran.outcome.exit_code
    };
    let attempt = |path: &str| attempt_with("r", path);
    for path in ["../secret.txt", "./../secret.txt", "sub/../../secret.txt"] {
        assert_eq!(attempt(path), ERRNO_PERM, "{path}");
    }
    // Symlinks: not followed without the lookup flag (ELOOP); followed, they stay inside.
    assert_eq!(attempt("link"), ERRNO_LOOP, "link");
    assert_eq!(attempt_with("R", "ok-link/inside.txt"), 0);
    assert_eq!(attempt_with("R", "link"), ERRNO_PERM, "absolute symlink");
    assert_eq!(
        attempt_with("R", "rel-link"),
        ERRNO_PERM,
        "relative symlink"
    );
    assert_eq!(attempt("/etc/passwd"), ERRNO_PERM);
    assert_eq!(
        attempt(root.join("secret.txt").to_str().unwrap()),
        ERRNO_PERM
    );
    // No preopen at all: fd 3 is not a directory the guest holds.
    let ran = run(&tool(&["r", "secret.txt"]), b"");
    assert_eq!(ran.outcome.exit_code, 8, "EBADF");
}

fn trap(args: &[&str]) -> nucleus_wasm::WasmOutcome {
    run(&tool(args), b"").outcome
}

#[test]
fn traps_have_a_kind_and_a_distinct_code() {
    for (op, kind) in [
        ("U", TrapKind::Unreachable),
        ("O", TrapKind::MemoryOutOfBounds),
        ("D", TrapKind::IntegerDivisionByZero),
        ("S", TrapKind::StackOverflow),
    ] {
        let o = trap(&[op]);
        assert_eq!(o.trap, Some(kind), "{op}: {o:?}");
        assert_eq!(o.exit_code, TRAP_EXIT_CODE);
        assert!(
            o.trap_message
                .as_deref()
                .unwrap_or("")
                .contains("wasm trap"),
            "{o:?}"
        );
    }
}

#[test]
fn deadline_stops_an_infinite_loop() {
    let mut p = tool(&["L"]);
    p.deadline = Some(Duration::from_millis(300));
    let start = Instant::now();
    let o = run(&p, b"").outcome;
    assert_eq!(o.trap, Some(TrapKind::Deadline), "{o:?}");
    assert_eq!(o.exit_code, DEADLINE_EXIT_CODE);
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn deadline_stops_a_guest_blocked_on_stdin() {
    // stdin is a pipe nobody writes to: the guest waits in a host call.
    let mut p = tool(&["p"]);
    p.deadline = Some(Duration::from_millis(300));
    let _guard = common::lock();
    let prepared = p.prepare().unwrap();
    let status = in_child(|| {
        // The write end stays open in this child: reads block.
        let (read_end, _write_end) = pipe();
        common::dup2(read_end.as_raw_fd(), 0);
        match prepared.run() {
            Ok(o) if o.trap == Some(TrapKind::Deadline) => 0,
            Ok(o) => {
                eprintln!("{o:?}");
                1
            }
            Err(_) => 2,
        }
    });
    assert_eq!(status, Exit::Code(0));
}

#[test]
fn fuel_stops_an_infinite_loop() {
    let mut p = tool(&["L"]);
    p.fuel = Some(1_000_000);
    let o = run(&p, b"").outcome;
    assert_eq!(o.trap, Some(TrapKind::OutOfFuel), "{o:?}");
    assert_eq!(o.exit_code, TRAP_EXIT_CODE);
    assert_eq!(o.fuel_consumed, Some(1_000_000));
    let mut p = tool(&["x", "0"]);
    p.fuel = Some(1_000_000);
    let o = run(&p, b"").outcome;
    assert_eq!(o.exit_code, 0);
    let used = o.fuel_consumed.unwrap();
    assert!(used > 0 && used < 10_000, "{used}");
}

#[test]
fn memory_grow_beyond_the_cap_fails() {
    let mut p = tool(&["G", "10"]);
    p.max_memory = Some(1 << 20); // 16 pages; the module has 1.
    let o = run(&p, b"").outcome;
    assert_eq!((o.exit_code, o.memory_limit_hit), (0, false), "{o:?}");
    let mut p = tool(&["G", "16"]);
    p.max_memory = Some(1 << 20);
    let o = run(&p, b"").outcome;
    assert_eq!(
        (o.exit_code, o.memory_limit_hit),
        (1, true),
        "grow refused: {o:?}"
    );
    let mut p = tool(&["G", "16"]);
    p.max_memory = None;
    assert_eq!(run(&p, b"").outcome.exit_code, 0);
}

#[test]
fn initial_memory_beyond_the_cap_does_not_start() {
    let mut p = WasmPolicy::new(fixture("big_memory.wat"));
    p.cache = CacheMode::Off;
    p.max_memory = Some(16 << 20);
    let o = run(&p, b"").outcome;
    assert_eq!(o.trap, Some(TrapKind::MemoryLimit), "{o:?}");
    assert_eq!(o.exit_code, TRAP_EXIT_CODE);
}

#[test]
fn component_run_result() {
    let mut p = WasmPolicy::new(fixture("run_result.wat"));
    p.cache = CacheMode::Off;
    let o = run(&p, b"").outcome;
    assert_eq!((o.exit_code, o.trap), (1, None), "{o:?}");
}

//! The parent's half: bad input named, the cache, and no thread or fd left behind.

mod common;

use common::{fixture, lock, tempdir, threads, tool};
use nucleus_test_support::{in_child, Exit};
use nucleus_wasm::{CacheMode, CacheStatus, CompileHelper, ModuleKind, WasmError, WasmPolicy};
use std::fs;
use std::path::PathBuf;

fn prepare_err(p: &WasmPolicy) -> WasmError {
    let _guard = lock();
    p.prepare().expect_err("prepare must fail")
}

#[test]
fn missing_module() {
    let p = tool(&[]);
    let mut p = WasmPolicy {
        module: PathBuf::from("/nonexistent/m.wasm"),
        ..p
    };
    p.cache = CacheMode::Off;
    let e = prepare_err(&p);
    assert!(matches!(e, WasmError::ReadModule { .. }), "{e:?}");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    assert!(e.to_string().contains("/nonexistent/m.wasm"));
}

#[test]
fn not_wasm() {
    let dir = tempdir("notwasm");
    let elf = dir.join("prog.wasm");
    fs::write(&elf, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
    let mut p = WasmPolicy::new(&elf);
    p.cache = CacheMode::Off;
    assert!(matches!(prepare_err(&p), WasmError::NotWasm { .. }));
    // A wasm header with garbage after it is a compile error.
    fs::write(&elf, b"\0asm\x01\0\0\0\xff\xff").unwrap();
    assert!(matches!(prepare_err(&p), WasmError::Compile { .. }));
    // Broken text names the line.
    let wat = dir.join("bad.wat");
    fs::write(&wat, "(module\n  (func (bogus)))\n").unwrap();
    p.module = wat;
    let e = prepare_err(&p);
    assert!(matches!(e, WasmError::ParseWat { .. }), "{e:?}");
    let chain = format!("{}", std::error::Error::source(&e).unwrap());
    assert!(chain.contains("bad.wat:2"), "{chain}");
}

#[test]
fn missing_import_is_named() {
    let mut p = WasmPolicy::new(fixture("missing_import.wat"));
    p.cache = CacheMode::Off;
    match prepare_err(&p) {
        WasmError::MissingImport { module, name, .. } => {
            assert_eq!((module.as_str(), name.as_str()), ("env", "launch_missiles"));
        }
        e => panic!("{e:?}"),
    }
    let e = prepare_err(&p);
    assert!(e.to_string().contains("env::launch_missiles"), "{e}");
}

#[test]
fn not_a_command() {
    let mut p = WasmPolicy::new(fixture("reactor.wat"));
    p.cache = CacheMode::Off;
    assert!(matches!(prepare_err(&p), WasmError::NoStart { .. }));
}

#[test]
fn preopen_must_exist() {
    let mut p = tool(&["r", "x"]);
    p.preopens = vec!["/nonexistent-preopen:/data".parse().unwrap()];
    let e = prepare_err(&p);
    assert!(matches!(e, WasmError::PreopenMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent-preopen"), "{e}");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    p.preopens = vec![fixture("hello.wat").to_str().unwrap().parse().unwrap()];
    assert!(matches!(
        prepare_err(&p),
        WasmError::PreopenNotDirectory { .. }
    ));
}

#[test]
fn warm_run_uses_the_cache_and_a_corrupt_file_is_replaced() {
    let dir = tempdir("cache");
    let cache = dir.join("c");
    let mut p = tool(&["x", "7"]);
    p.cache = CacheMode::Dir(cache.clone());
    let _guard = lock();
    let cold = p.prepare().unwrap();
    assert_eq!(cold.report().cache, CacheStatus::Stored);
    assert!(!cold.cache_hit());
    assert_eq!(cold.report().kind, ModuleKind::Core);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let entries = || -> Vec<PathBuf> {
        fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect()
    };
    let files = entries();
    assert_eq!(files.len(), 1, "{files:?}");
    // Beside the entries: the key that authenticates them, 0600.
    assert_eq!(
        fs::metadata(cache.join("cache.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let file = &files[0];
    assert!(file
        .to_str()
        .unwrap()
        .contains(&cold.report().module_sha256));

    let warm = p.prepare().unwrap();
    assert!(warm.cache_hit(), "{:?}", warm.report());
    assert_eq!(warm.report().compile_ms, 0.0);
    assert_eq!(
        common::run_prepared(&warm, b"", |_| {}).outcome.exit_code,
        7
    );

    // Flip a byte of the payload: rejected, recompiled, replaced.
    let mut bytes = fs::read(file).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0x55;
    fs::write(file, &bytes).unwrap();
    let again = p.prepare().unwrap();
    assert_eq!(
        again.report().cache,
        CacheStatus::Replaced,
        "{:?}",
        again.report()
    );
    assert!(again
        .report()
        .cache_note
        .as_deref()
        .unwrap()
        .contains("authentication tag"));
    assert_eq!(
        common::run_prepared(&again, b"", |_| {}).outcome.exit_code,
        7
    );
    assert!(p.prepare().unwrap().cache_hit());

    // A foreign file (no header) in its place: rejected too.
    fs::write(file, b"\0asm\x01\0\0\0").unwrap();
    assert_eq!(p.prepare().unwrap().report().cache, CacheStatus::Replaced);

    // Other engine settings (fuel on) are another key: a second file.
    p.fuel = Some(1000);
    assert_eq!(p.prepare().unwrap().report().cache, CacheStatus::Stored);
    assert_eq!(entries().len(), 2);
}

#[test]
fn explicit_cache_dir_writable_by_others_is_refused() {
    let dir = tempdir("opencache");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let mut p = tool(&["x", "0"]);
    p.cache = CacheMode::Dir(dir.to_path_buf());
    assert!(matches!(prepare_err(&p), WasmError::CacheDirUnsafe { .. }));
}

#[test]
fn default_cache_dir_under_xdg_cache_home() {
    let dir = tempdir("xdg");
    let mut p = tool(&["x", "0"]);
    p.cache = CacheMode::Default;
    let _guard = lock();
    let status = in_child(|| {
        std::env::set_var("XDG_CACHE_HOME", dir.path());
        let first = p.prepare().unwrap().report().cache;
        let second = p.prepare().unwrap().report().cache;
        let made = dir.join("nucleus/wasm").is_dir();
        i32::from(!(first == CacheStatus::Stored && second == CacheStatus::Hit && made))
    });
    assert_eq!(status, Exit::Code(0));
}

/// The runner checks that it is single-threaded right before `clone3`: `prepare` (engine,
/// compile, cache) must leave no thread and no file descriptor behind.
#[test]
fn prepare_leaves_one_thread_and_no_fd() {
    let dir = tempdir("threads");
    let _guard = lock();
    for cache in [
        CacheMode::Off,
        CacheMode::Dir(dir.join("c")),
        CacheMode::Dir(dir.join("c")),
    ] {
        let mut p = tool(&["x", "0"]);
        p.cache = cache;
        p.fuel = Some(10);
        p.deadline = Some(std::time::Duration::from_secs(1));
        let status = in_child(|| {
            let fds = common::open_fds();
            let prepared = p.prepare().unwrap();
            let _ = nucleus_wasm::probe();
            let ok = threads() == 1 && common::open_fds() == fds;
            if !ok {
                eprintln!(
                    "threads {} fds {} -> {}",
                    threads(),
                    fds,
                    common::open_fds()
                );
            }
            drop(prepared);
            i32::from(!ok)
        });
        assert_eq!(status, Exit::Code(0));
    }
}

#[test]
fn probe_reports_a_working_jit() {
    let _guard = lock();
    let probe = nucleus_wasm::probe();
    assert!(probe.jit, "{probe:?}");
    let json = serde_json::to_value(&probe).unwrap();
    assert_eq!(json["wasi"][0], "preview1");
}

/// A WAT module whose one function holds `n` additions (slow to compile).
fn big_module(dir: &std::path::Path, n: usize) -> PathBuf {
    let path = dir.join(format!("big-{n}.wat"));
    let mut text = String::from("(module (func $f (param i32) (result i32) local.get 0\n");
    for i in 0..n {
        text.push_str(&format!("i32.const {i} i32.add\n"));
    }
    text.push_str(") (func (export \"_start\") i32.const 0 call $f drop))\n");
    fs::write(&path, text).expect("write the big module");
    path
}

/// `prepare_in_helper`: the compile in a forked helper, its cost reported and taken from the
/// deadline; errors named as in process; the admission called with the helper's pid and its
/// error carried; the timeout kills; no thread or fd left behind.
#[test]
fn the_compile_helper() {
    let dir = tempdir("helper");
    let big = big_module(&dir, 100_000);
    let bad = dir.join("bad.wat");
    fs::write(&bad, "(module\n  (func (bogus)))\n").unwrap();
    let _guard = lock();
    let status = in_child(|| {
        let mut failures = Vec::new();
        let mut check = |ok: bool, what: &str| {
            if !ok {
                failures.push(what.to_owned());
            }
        };
        let fds = common::open_fds();
        let mut p = tool(&["x", "3"]);
        p.cache = CacheMode::Off;
        p.deadline = Some(std::time::Duration::from_secs(10));
        let admitted = std::cell::Cell::new(0);
        let admit = |pid: i32| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            admitted.set(pid);
            Ok(())
        };
        let helper =
            CompileHelper::new(Some(std::time::Duration::from_secs(60))).with_admit(&admit);
        match p.prepare_in_helper(&helper) {
            Ok(prepared) => {
                let r = prepared.report();
                check(r.compile_ms > 0.0, "compile_ms");
                check(r.compile_peak_memory_bytes > 0, "peak");
                check(admitted.get() > 0, "admitted");
                let left = prepared.policy().deadline.unwrap_or_default();
                check(
                    left < std::time::Duration::from_secs(10),
                    "deadline charged",
                );
                check(
                    common::run_prepared(&prepared, b"", |_| {})
                        .outcome
                        .exit_code
                        == 3,
                    "runs",
                );
            }
            Err(e) => check(false, &format!("prepare: {e}")),
        }
        check(
            threads() == 1 && common::open_fds() == fds,
            "threads and fds",
        );
        // A parse error is the parser's own, with the line.
        p.module = bad.clone();
        match p.prepare_in_helper(&helper) {
            Err(e @ WasmError::ParseWat { .. }) => {
                let chain = format!("{}", std::error::Error::source(&e).unwrap());
                check(chain.contains("bad.wat:2"), "parse error line");
            }
            other => check(false, &format!("parse error: {other:?}")),
        }
        // A refused admission kills the helper and is carried.
        let refuse = |_: i32| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Err("no cgroup for you".into())
        };
        p.module = big.clone();
        let refusing = CompileHelper::new(None).with_admit(&refuse);
        match p.prepare_in_helper(&refusing) {
            Err(WasmError::CompileAdmit { source, .. }) => {
                check(source.to_string() == "no cgroup for you", "admit error")
            }
            other => check(false, &format!("admit: {other:?}")),
        }
        // The timeout kills the compile.
        let quick = CompileHelper::new(Some(std::time::Duration::from_millis(100)));
        match p.prepare_in_helper(&quick) {
            Err(WasmError::CompileKilled {
                timed_out: true,
                elapsed,
                module_sha256,
                ..
            }) => {
                check(
                    elapsed < std::time::Duration::from_secs(2),
                    "killed at the timeout",
                );
                check(module_sha256.len() == 64, "module hash");
            }
            other => check(false, &format!("timeout: {other:?}")),
        }
        check(
            threads() == 1 && common::open_fds() == fds,
            "threads and fds at the end",
        );
        if !failures.is_empty() {
            eprintln!("failed: {failures:?}");
        }
        i32::from(!failures.is_empty())
    });
    assert_eq!(status, Exit::Code(0));
}

#[test]
fn the_proposals_current_toolchains_emit_load_and_run() {
    let mut p = WasmPolicy::new(fixture("proposals.wat"));
    p.cache = CacheMode::Off;
    let ran = common::run(&p, b"");
    assert_eq!(ran.outcome.exit_code, 42, "{ran:?}");
    for name in [
        "exceptions",
        "tail-call",
        "gc",
        "function-references",
        "multi-memory",
    ] {
        assert!(nucleus_wasm::proposals().contains(&name), "{name}");
    }
}

#[test]
fn a_proposal_that_is_not_enabled_is_named() {
    let mut p = WasmPolicy::new(fixture("wide_arithmetic.wat"));
    p.cache = CacheMode::Off;
    let e = prepare_err(&p);
    assert!(matches!(e, WasmError::Compile { .. }), "{e:?}");
    let chain = nucleus_test_support::error_chain(&e);
    assert!(chain.contains("wide arithmetic"), "{chain}");
    assert!(!nucleus_wasm::proposals().contains(&"wide-arithmetic"));
}

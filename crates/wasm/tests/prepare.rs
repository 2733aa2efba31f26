//! The parent's half: bad input named, the cache, and no thread or fd left behind.

mod common;

use common::{fixture, in_child, lock, tempdir, threads, tool};
use nucleus_wasm::{CacheMode, CacheStatus, ModuleKind, WasmError, WasmPolicy};
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
    fs::remove_dir_all(&dir).unwrap();
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
    let files: Vec<PathBuf> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
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
        .contains("hash"));
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
    assert_eq!(fs::read_dir(&cache).unwrap().count(), 2);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explicit_cache_dir_writable_by_others_is_refused() {
    let dir = tempdir("opencache");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let mut p = tool(&["x", "0"]);
    p.cache = CacheMode::Dir(dir.clone());
    assert!(matches!(prepare_err(&p), WasmError::CacheDirUnsafe { .. }));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn default_cache_dir_under_xdg_cache_home() {
    let dir = tempdir("xdg");
    let mut p = tool(&["x", "0"]);
    p.cache = CacheMode::Default;
    let _guard = lock();
    let status = in_child(|| {
        std::env::set_var("XDG_CACHE_HOME", &dir);
        let first = p.prepare().unwrap().report().cache;
        let second = p.prepare().unwrap().report().cache;
        let made = dir.join("nucleus/wasm").is_dir();
        i32::from(!(first == CacheStatus::Stored && second == CacheStatus::Hit && made))
    });
    assert_eq!(status, 0);
    fs::remove_dir_all(&dir).unwrap();
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
        assert_eq!(status, 0);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn probe_reports_a_working_jit() {
    let _guard = lock();
    let probe = nucleus_wasm::probe();
    assert!(probe.jit, "{probe:?}");
    let json = serde_json::to_value(&probe).unwrap();
    assert_eq!(json["wasi"][0], "preview1");
}

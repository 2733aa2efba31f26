//! The host runs under the profile the runner gives it: the default agent profile with
//! `execve` denied, installed (with `no_new_privs`) before `run`.

mod common;

use common::{fixture, lock, run_prepared, tempdir, tool};
use nucleus_seccomp::Profile;
use nucleus_test_support::no_new_privs;
use nucleus_wasm::{CacheMode, PreparedWasm, TrapKind, WasmPolicy};
use std::ffi::CString;
use std::fs;
use std::time::Duration;

/// Installs the wasm host's filter and checks that it holds: `execve` fails with `EPERM`.
fn confine(_: &PreparedWasm) {
    no_new_privs();
    let filter = Profile::default_agent()
        .deny_exec()
        .compile()
        .expect("compile");
    filter.apply().expect("apply");
    let path = CString::new("/bin/true").expect("path");
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: NUL-terminated arrays of valid C strings; if it succeeds the reply never comes.
    let r = unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!((r, errno), (-1, Some(libc::EPERM)));
}

#[test]
fn runs_under_the_agent_profile_without_exec() {
    let dir = tempdir("seccomp");
    fs::write(dir.join("in.txt"), "data\n").unwrap();
    let _guard = lock();
    let mut hello = WasmPolicy::new(fixture("hello.wat"));
    hello.cache = CacheMode::Off;
    let ran = run_prepared(&hello.prepare().unwrap(), b"", confine);
    assert_eq!(
        (ran.outcome.exit_code, ran.stdout.as_str()),
        (0, "hello, world\n")
    );

    // Files through a preopen, stdin, and the deadline's thread.
    let preopen = format!("{}:/d", dir.display());
    let mut write = tool(&["w", "out.txt"]);
    write.preopens = vec![preopen.parse().unwrap()];
    write.deadline = Some(Duration::from_secs(30));
    let ran = run_prepared(&write.prepare().unwrap(), b"through seccomp", confine);
    assert_eq!(ran.outcome.exit_code, 0, "{ran:?}");
    assert_eq!(
        fs::read_to_string(dir.join("out.txt")).unwrap(),
        "through seccomp"
    );
    let mut read = tool(&["r", "in.txt"]);
    read.preopens = vec![preopen.parse().unwrap()];
    let ran = run_prepared(&read.prepare().unwrap(), b"", confine);
    assert_eq!(ran.stdout, "data\n");

    // Traps still work (signal handlers, alternate stack), and so do the deadline and fuel.
    for (op, kind) in [
        ("O", TrapKind::MemoryOutOfBounds),
        ("S", TrapKind::StackOverflow),
    ] {
        let ran = run_prepared(&tool(&[op]).prepare().unwrap(), b"", confine);
        assert_eq!(ran.outcome.trap, Some(kind));
    }
    let mut spin = tool(&["L"]);
    spin.deadline = Some(Duration::from_millis(200));
    let ran = run_prepared(&spin.prepare().unwrap(), b"", confine);
    assert_eq!(ran.outcome.trap, Some(TrapKind::Deadline));
    let mut spin = tool(&["L"]);
    spin.fuel = Some(10_000);
    let ran = run_prepared(&spin.prepare().unwrap(), b"", confine);
    assert_eq!(ran.outcome.trap, Some(TrapKind::OutOfFuel));
}

//! Record-to-profile: record a program, then run it again under the recorded profile.

mod common;

use std::ffi::CString;
use std::process::Command;

use common::{expect_errno, in_child, no_new_privs, output_under, syscall, Exit};
use nucleus_seccomp::record::{take_listener, RecordEnd, Recorder};
use nucleus_seccomp::Profile;

/// Record `argv` the way the runner does: the child installs the record filter, reports the
/// listener fd over a pipe, and execs; the parent supervises.
fn record(argv: &[&str]) -> (Recorder, Exit) {
    let argv: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(*a).expect("argv"))
        .collect();
    let argv = common::argv_ptrs(&argv);
    let (report_r, report_w) = common::pipe();
    let report_fd = common::raw(&report_w);
    let filter = Profile::record_filter(report_fd)
        .compile()
        .expect("compile");
    let devnull = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let pid = common::fork();
    if pid == 0 {
        use std::os::fd::AsRawFd;
        common::dup2(devnull.as_raw_fd(), 1);
        no_new_privs();
        let Ok(listener) = filter.apply_with_listener() else {
            common::exit(99);
        };
        common::write(report_fd, &listener.to_ne_bytes());
        common::execv(&argv);
        common::exit(127);
    }
    drop(report_w);
    let mut buf = [0u8; 4];
    let n = std::io::Read::read(&mut std::fs::File::from(report_r), &mut buf).expect("read report");
    assert_eq!(n, 4, "child did not report its listener");
    let listener = take_listener(pid, i32::from_ne_bytes(buf)).expect("take listener");
    let mut recorder = Recorder::new(listener);
    let end = recorder.run(None).expect("record");
    assert_eq!(end, RecordEnd::TargetsGone);
    (recorder, common::wait(pid))
}

#[test]
fn a_recorded_profile_runs_the_program_again() {
    let (recorder, exit) = record(&["/bin/ls", "/"]);
    assert_eq!(exit, Exit::Code(0));
    let seen = recorder.syscalls();
    assert!(seen.iter().any(|s| s == "execve"), "{seen:?}");
    assert!(!seen.iter().any(|s| s == "socket"), "{seen:?}");
    let profile = recorder.into_profile();
    let json = profile.to_oci_json().expect("json");
    let ctx = nucleus_seccomp::OciContext::native(Vec::new());
    let reloaded = Profile::from_oci_json(&json, &ctx).expect("reload");
    assert_eq!(reloaded, profile);

    let bare = Command::new("/bin/ls").arg("/").output().expect("ls");
    let filter = reloaded.compile().expect("compile");
    let again = output_under(Command::new("/bin/ls").arg("/"), filter.clone());
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, bare.stdout);

    let exit = in_child(|| {
        no_new_privs();
        if filter.apply().is_err() {
            return 99;
        }
        let r = syscall(
            libc::SYS_socket,
            [libc::AF_INET as _, libc::SOCK_STREAM as _, 0, 0, 0],
        );
        if let Err(step) = expect_errno(1, r, libc::EPERM) {
            return step;
        }
        // ls wrote, so write is allowed: it runs (and fails on a bad fd).
        match expect_errno(2, syscall(libc::SYS_write, [-1, 0, 0, 0, 0]), libc::EBADF) {
            Ok(()) => 0,
            Err(step) => step,
        }
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn recording_true_gives_a_tiny_allowlist() {
    let (recorder, exit) = record(&["/bin/true"]);
    assert_eq!(exit, Exit::Code(0));
    assert!(recorder.notifications() > 5);
    let profile = recorder.into_profile();
    let names = &profile.rules[0].names;
    assert!(names.len() < 40, "{names:?}");
    let out = output_under(
        &mut Command::new("/bin/true"),
        profile.compile().expect("compile"),
    );
    assert!(out.status.success());
}

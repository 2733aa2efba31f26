//! cgroup v2 paths for real: `CLONE_INTO_CGROUP` and `cgroup.kill` (any v2
//! hierarchy, including the controller-less `unified` one of a hybrid
//! machine), and v2 limit files (only where a v2 hierarchy has the
//! controllers; elsewhere "NOT APPLICABLE", see `common::not_applicable`).

mod common;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, is_dead, leftovers, not_applicable, raw, write_i32};
use nucleus_cgroup::{
    Cgroup, CgroupVersion, DeviceAccess, DeviceKind, DeviceRule, KillMethod, LimitMode, Limits,
};

/// A fork straight into the cgroup (`CLONE_INTO_CGROUP`, through
/// `nucleus_ns::fork_into` with no new namespace); the child runs
/// `child(out)` and never returns.
fn clone_into(cgroup_fd: BorrowedFd<'_>, out: i32, child: fn(i32) -> !) -> i32 {
    let none: nucleus_ns::NamespaceSet = "none".parse().expect("the empty set");
    // SAFETY: the child gets a copy of the calling thread only, and makes
    // only async-signal-safe calls before _exit.
    match unsafe { nucleus_ns::fork_into(none, Some(cgroup_fd)) }.expect("clone3 into the cgroup") {
        nucleus_ns::Forked::Child => child(out),
        nucleus_ns::Forked::Parent(c) => c.pid,
    }
}

/// Starts `child` straight in the cgroup (see [`clone_into`]) with the
/// write end of a pipe; its pid and the `n` ints it reported.
fn clone_and_read(cgroup_fd: BorrowedFd<'_>, child: fn(i32) -> !, n: usize) -> (i32, Vec<i32>) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let pid = clone_into(cgroup_fd, fds[1], child);
    // SAFETY: closes our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // The child writes each int on its own: a read may return one.
    let mut buf = vec![0u8; 4 * n];
    let mut got = 0;
    while got < buf.len() {
        let rest = &mut buf[got..];
        // SAFETY: reads at most rest.len() bytes into rest.
        let r = unsafe { libc::read(fds[0], rest.as_mut_ptr().cast(), rest.len()) };
        assert!(r > 0, "the child reported {got} of {} bytes", 4 * n);
        got += r as usize;
    }
    // SAFETY: closes our read end.
    unsafe { libc::close(fds[0]) };
    let ints = buf
        .chunks(4)
        .map(|c| i32::from_ne_bytes(c.try_into().expect("4 bytes")))
        .collect();
    (pid, ints)
}

/// A cgroup of the test's with a v2 directory, or `None` (said) where
/// there is none.
fn v2_cgroup(test: &str) -> Option<(nucleus_cgroup::CgroupConfig, Cgroup)> {
    if !common::require_root(test) {
        return None;
    }
    let cfg = common::config(test, LimitMode::Required);
    let cg = Cgroup::create(&Limits::default(), &cfg).expect("a cgroup");
    if cg.clone_into_fd().is_none() {
        not_applicable(
            test,
            "no v2 hierarchy where this process may create cgroups",
        );
        return None;
    }
    Some((cfg, cg))
}

/// Starts a daemon in a new session, reports its pid, and sleeps.
fn workload(out: i32) -> ! {
    if bare_fork() == 0 {
        raw::setsid();
        write_i32(out, raw::getpid());
        raw::pause_forever();
    }
    raw::pause_forever()
}

/// fork(2) as a bare system call. The caller was made by a raw clone3 in
/// a multi-threaded test process, so glibc's `fork`, which takes the malloc
/// and stdio locks for its fork handlers, could wait forever on a lock that
/// another test thread held at the moment of the clone.
fn bare_fork() -> i32 {
    // SAFETY: clone with SIGCHLD alone and no new stack is fork(2); the new
    // child only makes async-signal-safe calls.
    unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) as i32 }
}

#[test]
fn clone_into_cgroup_then_cgroup_kill() {
    let Some((cfg, cg)) = v2_cgroup("clone_into_cgroup_then_cgroup_kill") else {
        return;
    };
    let created: Vec<PathBuf> = cg.paths().into_iter().map(PathBuf::from).collect();
    let v2_dir = created[0].clone();
    let fd = cg.clone_into_fd().expect("a v2 directory");
    let (pid, ints) = clone_and_read(fd, workload, 1);
    let daemon = ints[0];

    // The child started inside: its v2 line names our directory, no attach.
    let member = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let name = v2_dir.file_name().unwrap().to_str().unwrap();
    assert!(
        member
            .lines()
            .any(|l| l.starts_with("0::") && l.ends_with(name)),
        "{member}"
    );
    assert!(
        common::procs(&v2_dir).contains(&daemon),
        "daemon inherited the cgroup"
    );
    let has_kill = v2_dir.join("cgroup.kill").exists();
    if has_kill {
        assert_eq!(cg.applied().kill_method, KillMethod::CgroupKill);
    }
    cg.kill_all().unwrap();
    assert!(
        eventually(Duration::from_secs(2), || is_dead(daemon)),
        "daemon survived"
    );
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    cg.remove().unwrap();
    for p in &created {
        assert!(!p.exists(), "{} remains", p.display());
    }
    assert!(leftovers(&cfg).is_empty());
}

#[test]
fn v2_limit_files_are_written() {
    let test = "v2_limit_files_are_written";
    let cfg = common::config(test, LimitMode::Required);
    let probe = nucleus_cgroup::probe_with(&cfg);
    let needed = ["memory", "pids", "cpu"];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !probe.v2_controllers.iter().any(|v| v == c))
        .collect();
    if probe.version != CgroupVersion::V2 && !missing.is_empty() {
        not_applicable(
            test,
            &format!(
                "no v2 hierarchy with {missing:?} controllers (layout {:?})",
                probe.version
            ),
        );
        return;
    }
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(32),
        cpus: Some(0.5),
        cpu_weight: Some(50),
        ..Limits::default()
    };
    let Some(cg) = common::create_or_skip(test, &limits, &cfg) else {
        return;
    };
    let dir = PathBuf::from(cg.paths()[0]);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "32");
    assert_eq!(read("cpu.max"), "50000 100000");
    assert_eq!(read("cpu.weight"), "50");
    assert!(cg.applied().is_complete());
    cg.remove().unwrap();
    assert!(!dir.exists());
    assert!(leftovers(&cfg).is_empty());
}

/// Opens /dev/null read-write and /dev/zero read-only; reports each open's
/// errno (0: opened).
fn open_devices(out: i32) -> ! {
    for path in [c"/dev/null", c"/dev/zero"] {
        // SAFETY: open of a NUL-terminated path; the fd is left to _exit.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
        write_i32(out, if fd >= 0 { 0 } else { common::errno() });
    }
    raw::exit(0)
}

#[test]
fn device_program_allows_only_its_rules() {
    let Some((cfg, cg)) = v2_cgroup("device_program_allows_only_its_rules") else {
        return;
    };
    let null = DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major: Some(1),
        minor: Some(3),
        access: DeviceAccess::parse("rw").unwrap(),
    };
    cg.restrict_devices(&[null]).unwrap();
    let fd = cg.clone_into_fd().expect("a v2 directory");
    let (pid, ints) = clone_and_read(fd, open_devices, 2);
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let (null_errno, zero_errno) = (ints[0], ints[1]);
    assert_eq!(null_errno, 0, "/dev/null is allowed");
    assert_eq!(zero_errno, libc::EPERM, "/dev/zero is not");
    cg.remove().unwrap();
    assert!(leftovers(&cfg).is_empty());
}

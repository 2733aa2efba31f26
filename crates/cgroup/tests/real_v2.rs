//! cgroup v2 paths for real: `CLONE_INTO_CGROUP` and `cgroup.kill` (any v2
//! hierarchy, including the controller-less `unified` one of a hybrid
//! machine), and v2 limit files (only where a v2 hierarchy has the
//! controllers; elsewhere "NOT APPLICABLE", see `common::not_applicable`).

mod common;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, is_dead, leftovers, not_applicable, raw, write_i32};
use nucleus_cgroup::{Cgroup, CgroupVersion, KillMethod, LimitMode, Limits};

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
    let test = "clone_into_cgroup_then_cgroup_kill";
    if !common::require_root(test) {
        return;
    }
    let cfg = common::config(test, LimitMode::Required);
    let cg = Cgroup::create(&Limits::default(), &cfg).unwrap();
    let Some(fd) = cg.clone_into_fd() else {
        not_applicable(
            test,
            "no v2 hierarchy where this process may create cgroups",
        );
        return;
    };
    let created: Vec<PathBuf> = cg.paths().into_iter().map(PathBuf::from).collect();
    let v2_dir = created[0].clone();
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let pid = clone_into(fd, fds[1], workload);
    // SAFETY: closes our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut buf = [0u8; 4];
    // SAFETY: reads 4 bytes into buf.
    assert_eq!(unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), 4) }, 4);
    // SAFETY: closes our read end.
    unsafe { libc::close(fds[0]) };
    let daemon = i32::from_ne_bytes(buf);

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

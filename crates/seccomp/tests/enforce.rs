//! Real filters on real (forked) processes: the forbidden thing is attempted and must fail with
//! the exact errno.
// libc's constants change type across targets: casts stay portable.
#![allow(clippy::unnecessary_cast)]

mod common;

use common::{expect_errno, expect_ok, in_child, no_new_privs, syscall, Exit};
use nucleus_seccomp::{Action, CompiledFilter, Profile, Rule};

fn agent() -> CompiledFilter {
    Profile::default_agent().compile().expect("compile")
}

/// In a child: no_new_privs, the filter, then `checks`; exits with the failing step or 0.
fn under(filter: &CompiledFilter, checks: impl FnOnce() -> Result<(), i32>) -> Exit {
    in_child(|| {
        no_new_privs();
        if filter.apply().is_err() {
            return 99;
        }
        match checks() {
            Ok(()) => 0,
            Err(step) => step,
        }
    })
}

#[test]
fn denied_syscalls_fail_with_eperm() {
    let filter = agent();
    let exit = under(&filter, || {
        expect_errno(
            1,
            syscall(libc::SYS_ptrace, [libc::PTRACE_TRACEME as _, 0, 0, 0, 0]),
            libc::EPERM,
        )?;
        expect_errno(2, syscall(libc::SYS_setns, [-1, 0, 0, 0, 0]), libc::EPERM)?;
        expect_errno(
            3,
            syscall(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0]),
            libc::EPERM,
        )?;
        expect_errno(
            4,
            syscall(libc::SYS_userfaultfd, [0, 0, 0, 0, 0]),
            libc::EPERM,
        )?;
        expect_errno(5, syscall(libc::SYS_acct, [0, 0, 0, 0, 0]), libc::EPERM)?;
        expect_errno(6, syscall(libc::SYS_bpf, [0, 0, 0, 0, 0]), libc::EPERM)?;
        expect_errno(7, syscall(libc::SYS_umount2, [0, 0, 0, 0, 0]), libc::EPERM)?;
        expect_errno(8, syscall(libc::SYS_clone3, [0, 0, 0, 0, 0]), libc::ENOSYS)?;
        expect_ok(9, syscall(libc::SYS_getppid, [0; 5]))
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn namespaces_are_refused_while_fork_and_threads_work() {
    let filter = agent();
    let exit = under(&filter, || {
        let newuser = libc::CLONE_NEWUSER as libc::c_long;
        expect_errno(
            1,
            syscall(libc::SYS_unshare, [newuser, 0, 0, 0, 0]),
            libc::EPERM,
        )?;
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_long;
        match syscall(libc::SYS_clone, [newns, 0, 0, 0, 0]) {
            Ok(0) => common::exit(0),
            r => expect_errno(2, r, libc::EPERM)?,
        }
        expect_ok(
            3,
            syscall(
                libc::SYS_unshare,
                [libc::CLONE_FS as libc::c_long, 0, 0, 0, 0],
            ),
        )?;
        match common::fork() {
            0 => common::exit(7),
            pid if pid > 0 => (common::wait(pid) == Exit::Code(7))
                .then_some(())
                .ok_or(4)?,
            _ => return Err(5),
        }
        let t = std::thread::spawn(|| 6 * 7).join().map_err(|_| 6)?;
        (t == 42).then_some(()).ok_or(7)
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn tiocsti_is_refused_on_a_pty() {
    let (_master, slave) = common::openpty();
    let fd = common::raw(&slave);
    let filter = agent();
    let exit = under(&filter, || {
        let mut c = b'x';
        expect_errno(
            1,
            common::ioctl(fd, libc::TIOCSTI, (&mut c as *mut u8).cast()),
            libc::EPERM,
        )?;
        expect_errno(
            2,
            common::ioctl(fd, libc::TIOCLINUX, (&mut c as *mut u8).cast()),
            libc::EPERM,
        )?;
        let mut termios = [0u8; 64];
        expect_ok(
            3,
            common::ioctl(fd, libc::TCGETS, termios.as_mut_ptr().cast()),
        )
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn packet_sockets_fail_while_inet_and_unix_work() {
    let filter = agent();
    let exit = under(&filter, || {
        let sock =
            |f: i32, t: i32, p: i32| syscall(libc::SYS_socket, [f as _, t as _, p as _, 0, 0]);
        let all = (libc::ETH_P_ALL as u16).to_be() as i32;
        expect_errno(1, sock(libc::AF_PACKET, libc::SOCK_RAW, all), libc::EPERM)?;
        expect_errno(
            2,
            sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            libc::EPERM,
        )?;
        expect_errno(
            3,
            sock(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT),
            libc::EPERM,
        )?;
        expect_ok(
            4,
            sock(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
        )?;
        expect_ok(5, sock(libc::AF_INET6, libc::SOCK_DGRAM, 0))?;
        expect_ok(6, sock(libc::AF_UNIX, libc::SOCK_STREAM, 0))?;
        expect_ok(
            7,
            sock(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
        )
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn a_kill_rule_kills_with_sigsys() {
    let mut profile = Profile::default_agent();
    profile
        .rules
        .push(Rule::new(["getppid"], Action::KillProcess));
    let filter = profile.compile().expect("compile");
    let exit = under(&filter, || {
        let _ = syscall(libc::SYS_getppid, [0; 5]);
        Err(1)
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn kill_as_deny_action_kills_on_denied_syscalls() {
    let filter = Profile::default_agent()
        .with_deny_action(Action::KillProcess)
        .compile()
        .expect("compile");
    let exit = under(&filter, || {
        expect_errno(1, syscall(libc::SYS_clone3, [0, 0, 0, 0, 0]), libc::ENOSYS)?;
        let _ = syscall(libc::SYS_bpf, [0, 0, 0, 0, 0]);
        Err(2)
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn deny_exec_refuses_execve() {
    let filter = Profile::default_agent()
        .deny_exec()
        .compile()
        .expect("compile");
    let exit = under(&filter, || {
        let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
        let r = syscall(
            libc::SYS_execve,
            [argv[0] as _, argv.as_ptr() as _, 0, 0, 0],
        );
        expect_errno(1, r, libc::EPERM)
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn apply_without_no_new_privs_is_refused_for_the_unprivileged() {
    let filter = agent();
    let exit = in_child(|| {
        // As nobody, without CAP_SYS_ADMIN, the kernel requires no_new_privs.
        let root = syscall(libc::SYS_geteuid, [0; 5]) == Ok(0);
        if root && syscall(libc::SYS_setresuid, [65534, 65534, 65534, 0, 0]).is_err() {
            return 98;
        }
        match filter.apply() {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => 0,
            _ => 1,
        }
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn the_log_flag_keeps_denials_enforced() {
    let filter = Profile::default_agent()
        .with_log_denied()
        .compile()
        .expect("compile");
    assert_eq!(filter.flags(), libc::SECCOMP_FILTER_FLAG_LOG);
    assert!(filter.report().log_denied);
    let exit = under(&filter, || {
        expect_errno(1, syscall(libc::SYS_acct, [0; 5]), libc::EPERM)
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn probe_sees_this_kernel() {
    let p = nucleus_seccomp::probe();
    assert!(p.available && p.filter, "{p:?}");
    assert!(p.kill_process && p.log && p.user_notif, "{p:?}");
    assert!(p.actions_avail.iter().any(|a| a == "user_notif"), "{p:?}");
}

#[test]
fn logged_denials_reach_the_kernel_log() {
    let Ok(mut kmsg) = std::fs::File::open("/dev/kmsg") else {
        return common::skip(
            "logged_denials_reach_the_kernel_log",
            "/dev/kmsg not readable",
        );
    };
    common::kmsg_drain(&mut kmsg);
    let filter = Profile::default_agent()
        .with_log_denied()
        .compile()
        .expect("compile");
    // The kernel prints audit records from a thread, later, and under printk's rate limit
    // (shared with every other test): look for a while, and try again if one was dropped.
    for _attempt in 0..5 {
        let pid = common::fork();
        if pid == 0 {
            no_new_privs();
            if filter.apply().is_err() {
                common::exit(99);
            }
            let r = syscall(libc::SYS_acct, [0; 5]);
            common::exit(if r == Err(libc::EPERM) { 0 } else { 1 });
        }
        assert_eq!(common::wait(pid), Exit::Code(0));
        let (want, nr) = (
            format!("pid={pid} "),
            format!("syscall={} ", libc::SYS_acct),
        );
        for _ in 0..20 {
            let lines = common::kmsg_drain(&mut kmsg);
            if lines
                .iter()
                .any(|l| l.contains("type=1326") && l.contains(&want) && l.contains(&nr))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    panic!("no audit record (type=1326) for the denied acct() in /dev/kmsg");
}

/// A program that travelled as text (`program_to_hex`) and is installed
/// with `apply_program` enforces what the compiled filter does.
#[test]
fn a_program_sent_as_text_enforces_the_same() {
    let filter = agent();
    let text = nucleus_seccomp::program_to_hex(filter.program());
    let program = nucleus_seccomp::program_from_hex(&text).expect("decode");
    assert_eq!(program, filter.program());
    let exit = in_child(|| {
        no_new_privs();
        if nucleus_seccomp::apply_program(&program).is_err() {
            return 99;
        }
        let ptrace = syscall(libc::SYS_ptrace, [libc::PTRACE_TRACEME as _, 0, 0, 0, 0]);
        let pid = syscall(libc::SYS_getpid, [0; 5]);
        match expect_errno(1, ptrace, libc::EPERM).and(expect_ok(2, pid)) {
            Ok(()) => 0,
            Err(step) => step,
        }
    });
    assert_eq!(exit, Exit::Code(0));
    assert!(nucleus_seccomp::program_from_hex(&text[1..]).is_none());
    assert!(nucleus_seccomp::program_from_hex("").is_none());
}

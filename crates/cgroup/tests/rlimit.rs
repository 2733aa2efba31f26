//! rlimits applied in a forked child (never in the test process).

mod common;

use common::{raw, spawn_held, Exit};
use nucleus_cgroup::rlimit::{Resource, Rlimit, RlimitPolicy, INFINITY};

/// Runs `check` in a forked child after applying `policy` there.
fn in_child(check: fn(i32) -> i32) -> Exit {
    let mut child = spawn_held(check);
    child.release();
    child.wait()
}

fn nofile_16(_out: i32) -> i32 {
    let policy = RlimitPolicy {
        limits: vec![Rlimit::fixed(Resource::Nofile, 16)],
    };
    if policy.apply().is_err() {
        return 10;
    }
    // Open until the table is full: fds 0..=15 may exist, the 17th fails.
    let mut highest = -1;
    loop {
        let fd = raw::open_devnull();
        if fd < 0 {
            break;
        }
        highest = fd;
    }
    match (common::errno(), highest) {
        (libc::EMFILE, 15) => 0,
        (libc::EMFILE, _) => 11,
        _ => 12,
    }
}

#[test]
fn nofile_16_then_emfile() {
    assert_eq!(in_child(nofile_16), Exit::Code(0));
}

fn defaults(_out: i32) -> i32 {
    let before = raw::getrlimit(libc::RLIMIT_NOFILE);
    if RlimitPolicy::default().apply().is_err() {
        return 10;
    }
    if raw::getrlimit(libc::RLIMIT_CORE) != (0, 0) {
        return 11;
    }
    let (soft, hard) = raw::getrlimit(libc::RLIMIT_NOFILE);
    if soft != 1024.min(before.1) || hard != 65536.min(before.1) {
        return 12;
    }
    0
}

#[test]
fn defaults_disable_core_dumps() {
    assert_eq!(in_child(defaults), Exit::Code(0));
}

fn raise_is_clamped(_out: i32) -> i32 {
    let (_, hard) = raw::getrlimit(libc::RLIMIT_NOFILE);
    // Lower the hard limit first so a raise would need privilege.
    let lower = RlimitPolicy {
        limits: vec![Rlimit::fixed(Resource::Nofile, 64)],
    };
    if lower.apply().is_err() || hard < 64 {
        return 10;
    }
    let raise = RlimitPolicy {
        limits: vec![Rlimit {
            resource: Resource::Nofile,
            soft: 128,
            hard: INFINITY,
        }],
    };
    if raise.apply().is_err() {
        return 11;
    }
    if raw::getrlimit(libc::RLIMIT_NOFILE) != (64, 64) {
        return 12;
    }
    0
}

#[test]
fn hard_limits_never_rise() {
    assert_eq!(in_child(raise_is_clamped), Exit::Code(0));
}

fn cpu_time_kills(_out: i32) -> i32 {
    let policy = RlimitPolicy {
        limits: vec![nucleus_cgroup::rlimit::cpu_time(1)],
    };
    if policy.apply().is_err() {
        return 10;
    }
    loop {
        std::hint::spin_loop();
    }
}

#[test]
fn cpu_time_limit_signals_the_spinner() {
    // SIGXCPU at 1 s of CPU (its default action ends the process).
    assert_eq!(in_child(cpu_time_kills), Exit::Signal(libc::SIGXCPU));
}

#[test]
fn effective_matches_what_the_child_gets() {
    let eff = RlimitPolicy::default().effective().unwrap();
    let (_, hard) = raw::getrlimit(libc::RLIMIT_NOFILE);
    assert_eq!(eff[0], Rlimit::fixed(Resource::Core, 0));
    assert_eq!(eff[1].hard, 65536.min(hard));
}

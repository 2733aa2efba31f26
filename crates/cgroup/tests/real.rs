//! Real enforcement on this machine's cgroups (v1 here, v2 where that is the
//! layout): memory kill, pids cap, CPU quota, total kill, cleanup. Needs root.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{
    create_or_skip, eventually, is_dead, leftovers, procs, raw, spawn_held, write_i32, Exit,
};
use nucleus_cgroup::{Cgroup, CgroupError, IoMax, LimitKind, LimitMode, Limits, NotAppliedReason};

fn paths(cg: &Cgroup) -> Vec<PathBuf> {
    cg.paths().into_iter().map(PathBuf::from).collect()
}

fn assert_gone(test: &str, cfg: &nucleus_cgroup::CgroupConfig, created: &[PathBuf]) {
    for p in created {
        assert!(!p.exists(), "{test}: {} still exists", p.display());
    }
    assert!(
        leftovers(cfg).is_empty(),
        "{test}: left behind {:?}",
        leftovers(cfg)
    );
}

/// Allocates and touches 200 MiB; exits 0 only if that succeeded.
fn hog(_out: i32) -> i32 {
    if raw::touch_anon(200 << 20) {
        0
    } else {
        3
    }
}

#[test]
fn memory_hog_is_oom_killed() {
    let test = "memory_hog_is_oom_killed";
    let cfg = common::config(test, LimitMode::Required);
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    let Some(cg) = create_or_skip(test, &limits, &cfg) else {
        return;
    };
    let created = paths(&cg);
    let mut child = spawn_held(hog);
    cg.attach(child.pid).unwrap();
    child.release();
    let exit = child.wait();
    let usage = cg.usage();
    assert_eq!(exit, Exit::Signal(libc::SIGKILL), "{usage:?}");
    assert!(usage.oom_killed, "{usage:?}");
    assert!(usage.oom_kills.unwrap_or(1) >= 1, "{usage:?}");
    let peak = usage.memory_peak.expect("peak memory");
    assert!(
        peak <= (64 << 20) + (1 << 20),
        "peak {peak} above the limit"
    );
    assert!(peak >= 32 << 20, "peak {peak}: the hog never got going");
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

/// A real fork bomb: every process forks forever. The first process reports
/// the errno of its first failed fork.
fn fork_bomb(out: i32) -> i32 {
    let mut reported = false;
    loop {
        if raw::fork() < 0 && !reported {
            write_i32(out, common::errno());
            reported = true;
        }
        if raw::getpid() < 0 {
            return 0;
        }
    }
}

#[test]
fn fork_bomb_stops_at_pids_cap() {
    let test = "fork_bomb_stops_at_pids_cap";
    let cfg = common::config(test, LimitMode::Required);
    let limits = Limits {
        pids: Some(32),
        cpus: Some(0.5),
        ..Limits::default()
    };
    let Some(cg) = create_or_skip(test, &limits, &cfg) else {
        return;
    };
    let created = paths(&cg);
    let mut child = spawn_held(fork_bomb);
    cg.attach(child.pid).unwrap();
    child.release();
    let errno = child.read_i32s(1)[0];
    assert_eq!(errno, libc::EAGAIN, "fork must fail with EAGAIN at the cap");
    // The host keeps working: we can still start programs.
    let status = std::process::Command::new("true").status().unwrap();
    assert!(status.success());
    let usage = cg.usage();
    assert!(usage.pids_limit_hit, "{usage:?}");
    assert!(usage.pids_current.unwrap() <= 32, "{usage:?}");
    if let Some(peak) = usage.pids_peak {
        assert!(peak <= 32, "{usage:?}");
    }
    let t = Instant::now();
    cg.kill_all().unwrap();
    eprintln!("{test}: kill_all took {:?}", t.elapsed());
    for p in &created {
        assert!(procs(p).is_empty(), "{} not empty", p.display());
    }
    assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

/// Leaves two daemons behind: one double-forked (its parent exited) and one
/// in a new session; reports both pids, then exits.
fn daemonize(out: i32) -> i32 {
    let a = raw::fork();
    if a == 0 {
        raw::setsid();
        let b = raw::fork();
        if b == 0 {
            raw::setsid();
            write_i32(out, raw::getpid());
            raw::pause_forever();
        }
        raw::exit(0);
    }
    let c = raw::fork();
    if c == 0 {
        raw::setsid();
        write_i32(out, raw::getpid());
        raw::pause_forever();
    }
    0
}

#[test]
fn double_forked_and_setsid_processes_are_killed() {
    let test = "double_forked_and_setsid_processes_are_killed";
    let cfg = common::config(test, LimitMode::Required);
    let limits = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    let Some(cg) = create_or_skip(test, &limits, &cfg) else {
        return;
    };
    let created = paths(&cg);
    let mut child = spawn_held(daemonize);
    cg.attach(child.pid).unwrap();
    child.release();
    let daemons = child.read_i32s(2);
    assert_eq!(child.wait(), Exit::Code(0));
    for &pid in &daemons {
        assert!(!is_dead(pid), "daemon {pid} should be running");
        assert!(
            created.iter().any(|p| procs(p).contains(&pid)),
            "daemon {pid} not in the cgroup"
        );
    }
    cg.kill_all().unwrap();
    for &pid in &daemons {
        assert!(
            eventually(Duration::from_secs(2), || is_dead(pid)),
            "daemon {pid} survived"
        );
    }
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

/// Spins on the CPU for two seconds of wall-clock time.
fn spin(_out: i32) -> i32 {
    let end = raw::now_ns() + 2_000_000_000;
    while raw::now_ns() < end {}
    0
}

#[test]
fn cpu_quota_gives_about_half_a_core() {
    let test = "cpu_quota_gives_about_half_a_core";
    let cfg = common::config(test, LimitMode::Required);
    let limits = Limits {
        cpus: Some(0.5),
        ..Limits::default()
    };
    let Some(cg) = create_or_skip(test, &limits, &cfg) else {
        return;
    };
    let created = paths(&cg);
    let mut child = spawn_held(spin);
    cg.attach(child.pid).unwrap();
    let start = Instant::now();
    child.release();
    assert_eq!(child.wait(), Exit::Code(0));
    let wall = start.elapsed().as_secs_f64();
    let usage = cg.usage();
    let cpu = usage.cpu_usage_usec.expect("cpu usage") as f64 / 1e6;
    let share = cpu / wall;
    eprintln!("{test}: {cpu:.2}s cpu over {wall:.2}s wall = {share:.2} of a core; {usage:?}");
    assert!(
        (0.3..=0.7).contains(&share),
        "share {share:.2} not about 0.5"
    );
    assert!(usage.cpu_throttled_periods.unwrap_or(1) > 0, "{usage:?}");
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

fn sleeper(_out: i32) -> i32 {
    raw::pause_forever()
}

#[test]
fn drop_kills_and_removes() {
    let test = "drop_kills_and_removes";
    let cfg = common::config(test, LimitMode::Required);
    let Some(cg) = create_or_skip(test, &Limits::default(), &cfg) else {
        return;
    };
    let created = paths(&cg);
    assert!(!created.is_empty());
    let mut child = spawn_held(sleeper);
    cg.attach(child.pid).unwrap();
    child.release();
    drop(cg);
    assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
    assert_gone(test, &cfg, &created);
}

#[test]
fn required_mode_fails_closed_and_best_effort_reports() {
    let test = "required_mode_fails_closed_and_best_effort_reports";
    if !common::require_root(test) {
        return;
    }
    // No block device 0:0 exists, so the kernel refuses the io limit.
    let limits = Limits {
        memory: Some(256 << 20),
        io_max: vec![IoMax {
            major: 0,
            minor: 0,
            rbps: Some(1 << 20),
            ..IoMax::default()
        }],
        ..Limits::default()
    };
    let cfg = common::config(test, LimitMode::Required);
    match Cgroup::create(&limits, &cfg) {
        Err(CgroupError::LimitNotApplied {
            limit: LimitKind::IoMax,
            reason,
        }) => {
            eprintln!("{test}: {reason}");
        }
        other => panic!("expected an io-max failure, got {other:?}"),
    }
    assert!(
        leftovers(&cfg).is_empty(),
        "required failure left {:?}",
        leftovers(&cfg)
    );

    let cfg = common::config(test, LimitMode::BestEffort);
    let cg = Cgroup::create(&limits, &cfg).unwrap();
    let a = cg.applied().clone();
    assert_eq!(a.applied, vec![LimitKind::Memory]);
    assert_eq!(a.not_applied.len(), 1);
    assert_eq!(a.not_applied[0].limit, LimitKind::IoMax);
    assert!(
        matches!(
            a.not_applied[0].reason,
            NotAppliedReason::WriteFailed { .. } | NotAppliedReason::ControllerAbsent { .. }
        ),
        "{a:?}"
    );
    let created = paths(&cg);
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

#[test]
fn invalid_limits_create_nothing() {
    let test = "invalid_limits_create_nothing";
    let cfg = common::config(test, LimitMode::Required);
    let too_many = Limits {
        cpus: Some(nucleus_cgroup::online_cpus() as f64 + 1.0),
        ..Limits::default()
    };
    assert!(matches!(
        Cgroup::create(&too_many, &cfg),
        Err(CgroupError::CpusAboveOnline { .. })
    ));
    let zero = Limits {
        pids: Some(0),
        ..Limits::default()
    };
    assert!(matches!(
        Cgroup::create(&zero, &cfg),
        Err(CgroupError::InvalidLimit { .. })
    ));
    assert!(leftovers(&cfg).is_empty());
}

/// The freezer path (v1 `freezer.state`, or v2 `cgroup.freeze`), without the
/// hybrid machine's v2 `cgroup.kill`.
#[test]
fn freezer_kill_ends_fork_bomb_and_daemons() {
    let test = "freezer_kill_ends_fork_bomb_and_daemons";
    let cfg = nucleus_cgroup::CgroupConfig {
        use_unified: false,
        ..common::config(test, LimitMode::Required)
    };
    let limits = Limits {
        pids: Some(32),
        cpus: Some(0.5),
        ..Limits::default()
    };
    let Some(cg) = create_or_skip(test, &limits, &cfg) else {
        return;
    };
    if cg.applied().kill_method != nucleus_cgroup::KillMethod::Freezer {
        common::not_applicable(
            test,
            &format!("kill method here is {:?}", cg.applied().kill_method),
        );
        return;
    }
    let created = paths(&cg);
    let mut daemons = spawn_held(daemonize);
    cg.attach(daemons.pid).unwrap();
    daemons.release();
    let pids = daemons.read_i32s(2);
    assert_eq!(daemons.wait(), Exit::Code(0));
    let mut bomb = spawn_held(fork_bomb);
    cg.attach(bomb.pid).unwrap();
    bomb.release();
    assert_eq!(bomb.read_i32s(1)[0], libc::EAGAIN);
    cg.kill_all().unwrap();
    for p in &created {
        assert!(procs(p).is_empty(), "{} not empty", p.display());
    }
    for &pid in &pids {
        assert!(
            eventually(Duration::from_secs(2), || is_dead(pid)),
            "daemon {pid} survived"
        );
    }
    assert_eq!(bomb.wait(), Exit::Signal(libc::SIGKILL));
    cg.remove().unwrap();
    assert_gone(test, &cfg, &created);
}

//! Tests of the file-writing logic against fake cgroupfs trees in a temp
//! dir (regular files stand in for the kernel's; writes create them).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::applied::KillMethod;
use crate::cgroup::Cgroup;
use crate::discover::{discover, CgroupConfig, CgroupVersion};
use crate::fs::FsMode;
use crate::limits::{LimitMode, Limits};
use crate::types::{LimitKind, NotAppliedReason};
use crate::CgroupError;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "nucleus-cgroup-fake-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A v2 tree: the caller sits in /sandbox.slice, whose parent offers
/// `available` and has `enabled` on in subtree_control.
fn v2_tree(available: &str, enabled: &str) -> (TempDir, CgroupConfig, PathBuf) {
    let t = TempDir::new();
    let sys = t.0.join("cgroup");
    put(
        &sys.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc",
    );
    let own = sys.join("sandbox.slice");
    put(&own.join("cgroup.controllers"), available);
    put(&own.join("cgroup.subtree_control"), enabled);
    put(&t.0.join("self_cgroup"), "0::/sandbox.slice\n");
    let cfg = CgroupConfig {
        sys_root: sys,
        proc_self_cgroup: t.0.join("self_cgroup"),
        ..CgroupConfig::default()
    };
    (t, cfg, own)
}

fn all_limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: Some(64 << 20),
        cpus: Some(0.5),
        cpu_weight: Some(200),
        pids: Some(32),
        io_max: vec!["8:0 rbps=1M".parse().unwrap()],
    }
}

fn create(limits: &Limits, cfg: &CgroupConfig) -> Result<Cgroup, CgroupError> {
    let layout = discover(cfg)?;
    Cgroup::create_in(limits, cfg, &layout, FsMode::Fake, None)
}

#[test]
fn v2_writes_every_limit_and_enables_controllers() {
    let (_t, cfg, own) = v2_tree("cpu io memory pids", "");
    let cg = create(&all_limits(), &cfg).unwrap();
    let dir = cg.paths()[0].to_path_buf();
    assert_eq!(dir.parent(), Some(own.as_path()));
    assert!(dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("nucleus-"));
    assert_eq!(read(&dir.join("memory.max")), "67108864");
    assert_eq!(read(&dir.join("memory.swap.max")), "0");
    assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(read(&dir.join("cpu.weight")), "200");
    assert_eq!(read(&dir.join("pids.max")), "32");
    assert_eq!(read(&dir.join("io.max")), "8:0 rbps=1048576");
    // One "+ctrl" write per controller (memory, cpu, pids, io); the fake
    // file keeps the last one.
    assert_eq!(read(&own.join("cgroup.subtree_control")), "+io");
    let applied = cg.applied();
    assert_eq!(applied.version, CgroupVersion::V2);
    assert!(applied.is_complete(), "{applied:?}");
    assert_eq!(applied.applied.len(), 6);
    assert!(cg.clone_into_fd().is_some());
    assert!(cg.clone_into_covers_all(), "v2 alone: clone-into is enough");
    cg.attach(4242).unwrap();
    assert_eq!(read(&dir.join("cgroup.procs")), "4242");
    std::fs::write(dir.join("cgroup.procs"), "").unwrap();
    cg.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v2_already_enabled_controllers_are_not_rewritten() {
    let (_t, cfg, own) = v2_tree("cpu memory pids", "cpu memory pids");
    let limits = Limits {
        memory: Some(1 << 30),
        pids: Some(10),
        ..Limits::default()
    };
    let cg = create(&limits, &cfg).unwrap();
    assert_eq!(read(&own.join("cgroup.subtree_control")), "cpu memory pids");
    assert!(cg.applied().is_complete());
}

#[test]
fn v2_required_fails_closed_and_leaves_nothing() {
    let (_t, cfg, own) = v2_tree("cpu memory", "");
    let err = create(&all_limits(), &cfg).unwrap_err();
    match &err {
        CgroupError::LimitNotApplied { limit, reason } => {
            assert_eq!(*limit, LimitKind::Pids);
            assert_eq!(
                *reason,
                NotAppliedReason::ControllerAbsent {
                    controller: "pids".into()
                }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("required pids limit"), "{text}");
    assert!(
        !text.contains("--"),
        "no command-line flag in a layer's error: {text}"
    );
    let left: Vec<_> = std::fs::read_dir(&own)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn v2_best_effort_reports_what_is_missing() {
    let (_t, cfg, _own) = v2_tree("cpu memory", "");
    let cfg = CgroupConfig {
        mode: LimitMode::BestEffort,
        ..cfg
    };
    let cg = create(&all_limits(), &cfg).unwrap();
    let a = cg.applied();
    let missing: Vec<LimitKind> = a.not_applied.iter().map(|n| n.limit).collect();
    assert_eq!(missing, vec![LimitKind::Pids, LimitKind::IoMax]);
    assert_eq!(
        a.applied,
        vec![
            LimitKind::Memory,
            LimitKind::MemorySwap,
            LimitKind::Cpus,
            LimitKind::CpuWeight
        ]
    );
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["not_applied"][0]["limit"], "pids");
    assert_eq!(json["not_applied"][0]["reason"], "controller-absent");
    assert_eq!(json["not_applied"][0]["controller"], "pids");
}

#[test]
fn v2_kill_writes_cgroup_kill() {
    let (_t, cfg, _own) = v2_tree("memory pids", "");
    let cg = create(&Limits::default(), &cfg).unwrap();
    std::fs::write(cg.paths()[0].join("cgroup.procs"), "").unwrap();
    // Empty: nothing to do, nothing written.
    cg.kill_all().unwrap();
    assert!(!cg.paths()[0].join("cgroup.kill").exists());
    // A pid that cannot be ours to kill (pid_max is below i32::MAX) stays
    // listed in the fake file, so kill_all writes cgroup.kill, then loops
    // with SIGKILL (ESRCH) until its deadline and reports the survivor.
    std::fs::write(cg.paths()[0].join("cgroup.procs"), "2147483647\n").unwrap();
    let err = cg.kill_all().unwrap_err();
    assert!(
        matches!(err, CgroupError::KillTimeout { remaining: 1, .. }),
        "{err}"
    );
    assert_eq!(read(&cg.paths()[0].join("cgroup.kill")), "1");
    std::fs::write(cg.paths()[0].join("cgroup.procs"), "").unwrap();
}

#[test]
fn kill_refuses_to_kill_the_caller() {
    let (_t, cfg, _own) = v2_tree("memory pids", "");
    let cg = create(&Limits::default(), &cfg).unwrap();
    std::fs::write(
        cg.paths()[0].join("cgroup.procs"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let err = cg.kill_all().unwrap_err();
    assert!(matches!(err, CgroupError::SelfInCgroup { .. }), "{err}");
    std::fs::write(cg.paths()[0].join("cgroup.procs"), "").unwrap();
}

#[test]
fn cgroup_parent_override_and_bad_names() {
    let (t, cfg, _own) = v2_tree("memory", "");
    let deleg = cfg.sys_root.join("user.slice/app");
    put(&deleg.join("cgroup.controllers"), "memory");
    put(&deleg.join("cgroup.subtree_control"), "memory");
    let cfg2 = CgroupConfig {
        root: Some("/user.slice/app".into()),
        ..cfg.clone()
    };
    let cg = create(
        &Limits {
            memory: Some(1 << 20),
            ..Limits::default()
        },
        &cfg2,
    )
    .unwrap();
    assert_eq!(cg.paths()[0].parent(), Some(deleg.as_path()));
    drop(cg);
    assert_eq!(
        std::fs::read_dir(&deleg)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .count(),
        0
    );
    let bad = CgroupConfig {
        root: Some("/../etc".into()),
        ..cfg.clone()
    };
    assert!(matches!(
        discover(&bad),
        Err(CgroupError::InvalidCgroupParent { .. })
    ));
    drop(t);
}

/// A v1 tree laid out like this machine: memory nested, the rest at root,
/// plus an empty unified v2 hierarchy.
fn v1_tree(unified: bool) -> (TempDir, CgroupConfig) {
    let t = TempDir::new();
    let sys = t.0.join("cgroup");
    for c in ["cpu", "cpuacct", "pids", "freezer", "blkio", "devices"] {
        std::fs::create_dir_all(sys.join(c)).unwrap();
    }
    let mem = sys.join("memory/process_api/abc");
    std::fs::create_dir_all(&mem).unwrap();
    if unified {
        put(&sys.join("unified/cgroup.controllers"), "hugetlb");
        put(&sys.join("unified/cgroup.subtree_control"), "");
    }
    put(
        &t.0.join("self_cgroup"),
        "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n",
    );
    let cfg = CgroupConfig {
        sys_root: sys,
        proc_self_cgroup: t.0.join("self_cgroup"),
        ..CgroupConfig::default()
    };
    (t, cfg)
}

#[test]
fn v1_writes_every_limit_in_its_hierarchy() {
    let (_t, cfg) = v1_tree(false);
    let cg = create(&all_limits(), &cfg).unwrap();
    assert_eq!(cg.applied().version, CgroupVersion::V1);
    assert!(cg.applied().is_complete(), "{:?}", cg.applied());
    assert_eq!(cg.applied().kill_method, KillMethod::Freezer);
    assert!(cg.clone_into_fd().is_none());
    assert!(!cg.clone_into_covers_all());
    let find = |c: &str| {
        cg.paths()
            .into_iter()
            .find(|p| p.starts_with(cfg.sys_root.join(c)))
            .unwrap()
            .to_path_buf()
    };
    let mem = find("memory");
    assert!(mem.starts_with(cfg.sys_root.join("memory/process_api/abc")));
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), "67108864");
    assert_eq!(read(&find("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&find("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&find("cpu").join("cpu.shares")), "2048");
    assert_eq!(read(&find("pids").join("pids.max")), "32");
    assert_eq!(
        read(&find("blkio").join("blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert!(find("freezer").exists() && find("cpuacct").exists());
    assert_eq!(cg.paths().len(), 6, "devices is never used");
    cg.attach(77).unwrap();
    for p in cg.paths() {
        assert_eq!(read(&p.join("cgroup.procs")), "77");
        std::fs::write(p.join("cgroup.procs"), "").unwrap();
    }
    let paths: Vec<PathBuf> = cg.paths().into_iter().map(Path::to_path_buf).collect();
    cg.remove().unwrap();
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn v1_accounting_only_when_no_limits() {
    let (_t, cfg) = v1_tree(true);
    let cg = create(&Limits::default(), &cfg).unwrap();
    assert_eq!(cg.applied().version, CgroupVersion::Hybrid);
    // memory, cpuacct, pids, freezer, plus the unified tracking cgroup.
    assert_eq!(cg.paths().len(), 5);
    assert!(cg.clone_into_fd().is_some());
    assert!(
        !cg.clone_into_covers_all(),
        "v1 still needs attach in hybrid"
    );
    let cfg = CgroupConfig {
        use_unified: false,
        ..cfg
    };
    let cg = create(&Limits::default(), &cfg).unwrap();
    assert_eq!(cg.paths().len(), 4);
}

#[test]
fn usage_reads_v1_and_v2_files() {
    let (_t, cfg) = v1_tree(false);
    let cg = create(
        &Limits {
            pids: Some(5),
            cpus: Some(1.0),
            ..Limits::default()
        },
        &cfg,
    )
    .unwrap();
    let find = |c: &str| {
        cg.paths()
            .into_iter()
            .find(|p| p.starts_with(cfg.sys_root.join(c)))
            .unwrap()
            .to_path_buf()
    };
    put(&find("memory").join("memory.max_usage_in_bytes"), "1000\n");
    put(&find("memory").join("memory.failcnt"), "3\n");
    put(
        &find("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    );
    put(&find("cpuacct").join("cpuacct.usage"), "5000000\n");
    put(&find("cpuacct").join("cpuacct.usage_user"), "4000000\n");
    put(&find("cpuacct").join("cpuacct.usage_sys"), "1000000\n");
    put(
        &find("cpu").join("cpu.stat"),
        "nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n",
    );
    put(&find("pids").join("pids.events"), "max 7\n");
    put(&find("pids").join("pids.peak"), "5\n");
    let u = cg.usage();
    assert_eq!(u.memory_peak, Some(1000));
    assert_eq!(u.oom_kills, Some(1));
    assert!(u.oom_killed);
    assert_eq!(
        (u.cpu_usage_usec, u.cpu_user_usec, u.cpu_system_usec),
        (Some(5000), Some(4000), Some(1000))
    );
    assert_eq!(
        (u.cpu_throttled_periods, u.cpu_throttled_usec),
        (Some(4), Some(2000))
    );
    assert_eq!(u.pids_peak, Some(5));
    assert!(u.pids_limit_hit);

    let (_t2, cfg2, _own) = v2_tree("memory pids", "memory pids");
    let cg2 = create(&Limits::default(), &cfg2).unwrap();
    let d = cg2.paths()[0].to_path_buf();
    put(&d.join("memory.peak"), "2048\n");
    put(
        &d.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 0\n",
    );
    put(
        &d.join("cpu.stat"),
        "usage_usec 30\nuser_usec 20\nsystem_usec 10\n",
    );
    put(&d.join("pids.events"), "max 0\n");
    let u = cg2.usage();
    assert_eq!(u.memory_peak, Some(2048));
    assert_eq!(u.memory_limit_hits, Some(9));
    assert!(!u.oom_killed, "oom_kill 0 means nothing was killed");
    assert_eq!(u.cpu_usage_usec, Some(30));
    assert!(!u.pids_limit_hit);
}

#[test]
fn v2_named_cgroup_gets_controllers_through_every_parent() {
    let (_t, cfg, own) = v2_tree("memory pids", "");
    // The kernel lists in a new child what its parent hands down; the fake
    // tree says so for the parents the named cgroup will go through.
    put(&own.join("engine/cgroup.controllers"), "memory pids");
    put(&own.join("engine/pod/cgroup.controllers"), "memory");
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(10),
        ..Limits::default()
    };
    let layout = discover(&cfg).unwrap();
    let err = Cgroup::create_in(
        &limits,
        &cfg,
        &layout,
        FsMode::Fake,
        Some(Path::new("engine/pod/ctr")),
    )
    .unwrap_err();
    // pids is enabled at the top and in engine, and is not offered in pod.
    assert!(
        matches!(
            err,
            CgroupError::LimitNotApplied {
                limit: LimitKind::Pids,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(read(&own.join("engine/cgroup.subtree_control")), "+pids");
    assert_eq!(
        read(&own.join("engine/pod/cgroup.subtree_control")),
        "+memory"
    );
}

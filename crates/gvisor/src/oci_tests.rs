//! Pure tests of the BundleSpec -> config.json translation.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxNamespaceType, LinuxSeccompAction, Mount, PosixRlimitType, Spec,
};

use nucleus_rootfs::{MountKind, MountSpec};

use crate::{
    to_oci_config, BundleSpec, CpuQuota, GvisorError, HostEntry, HostView, Network, RlimitSpec,
    RootSpec,
};

fn full_spec() -> BundleSpec {
    BundleSpec {
        args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
        cwd: "/work".into(),
        uid: 1000,
        gid: 1001,
        hostname: Some("sandbox".into()),
        root: RootSpec::HostReadOnly,
        mounts: vec![
            MountSpec {
                source: Some("/srv/data".into()),
                destination: "/data".into(),
                kind: MountKind::RoBind,
                exec: false,
            },
            MountSpec {
                source: Some("/srv/out".into()),
                destination: "/out".into(),
                kind: MountKind::Bind,
                exec: false,
            },
            MountSpec {
                source: None,
                destination: "/work".into(),
                kind: MountKind::Tmpfs,
                exec: false,
            },
        ],
        readonly_root: true,
        network: Network::None,
        rlimits: vec![
            RlimitSpec {
                resource: "RLIMIT_NOFILE".into(),
                soft: 256,
                hard: 512,
            },
            RlimitSpec {
                resource: "core".into(),
                soft: 0,
                hard: 0,
            },
        ],
        capabilities: vec!["CAP_NET_BIND_SERVICE".into(), "chown".into()],
        no_new_privileges: true,
        terminal: false,
        masked: Vec::new(),
        seccomp: Some(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
        })),
        cgroup_path: Some("nucleus/test".into()),
        memory_limit: Some(64 << 20),
        cpu_quota: Some(CpuQuota {
            quota: 50_000,
            period: 100_000,
        }),
        pids_limit: Some(64),
    }
}

/// Translates, writes config.json text, and parses it back with the OCI types.
fn round_trip(spec: &BundleSpec, host: &HostView) -> Spec {
    let config = to_oci_config(spec, host).unwrap();
    let json = config.to_json().unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, config.spec());
    back
}

fn find<'a>(mounts: &'a [Mount], dest: &str) -> &'a Mount {
    mounts
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

fn opts(m: &Mount) -> Vec<&str> {
    m.options()
        .as_ref()
        .map(|o| o.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn every_field_reaches_config_json() {
    let config = round_trip(&full_spec(), &HostView::merged_usr());
    assert_eq!(config.version(), "1.0.2");
    assert_eq!(config.hostname().as_deref(), Some("sandbox"));
    let root = config.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("rootfs"));
    assert_eq!(root.readonly(), Some(true));

    let p = config.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo hi"]);
    assert_eq!(
        p.env().as_ref().unwrap(),
        &["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    );
    assert_eq!(p.cwd(), Path::new("/work"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.terminal(), Some(false));
    let caps = p.capabilities().as_ref().unwrap();
    let kept = [Capability::NetBindService, Capability::Chown].into();
    assert_eq!(caps.bounding().as_ref(), Some(&kept));
    assert_eq!(caps.effective().as_ref(), Some(&kept));
    assert_eq!(caps.permitted().as_ref(), Some(&kept));
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    let rl = p.rlimits().as_ref().unwrap();
    assert_eq!(rl.len(), 2);
    assert_eq!(rl[0].typ(), PosixRlimitType::RlimitNofile);
    assert_eq!((rl[0].soft(), rl[0].hard()), (256, 512));
    assert_eq!(rl[1].typ(), PosixRlimitType::RlimitCore);

    let linux = config.linux().as_ref().unwrap();
    let ns: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network
        ]
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("nucleus/test"))
    );
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
    let sc = linux.seccomp().as_ref().unwrap();
    assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(sc.default_errno_ret(), Some(1));
    assert_eq!(sc.syscalls().as_ref().unwrap()[0].names().len(), 3);
}

#[test]
fn mounts_have_kinds_and_options() {
    let config = round_trip(&full_spec(), &HostView::merged_usr());
    let mounts = config.mounts().as_ref().unwrap();
    let dests: Vec<_> = mounts.iter().map(|m| m.destination().clone()).collect();
    let expected: Vec<PathBuf> = [
        "/proc", "/dev", "/dev/shm", "/sys", "/usr", "/etc", "/tmp", "/data", "/out", "/work",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(dests, expected, "symlinked host dirs are not mounts");
    let proc_ = find(mounts, "/proc");
    assert_eq!(proc_.typ().as_deref(), Some("proc"));
    let usr = find(mounts, "/usr");
    assert_eq!(usr.typ().as_deref(), Some("bind"));
    assert_eq!(usr.source().as_deref(), Some(Path::new("/usr")));
    assert_eq!(opts(usr), ["rbind", "ro", "nosuid", "nodev"]);
    assert_eq!(
        opts(find(mounts, "/data")),
        ["rbind", "ro", "nosuid", "nodev"]
    );
    assert_eq!(
        find(mounts, "/data").source().as_deref(),
        Some(Path::new("/srv/data"))
    );
    assert_eq!(
        opts(find(mounts, "/out")),
        ["rbind", "rw", "nosuid", "nodev", "noexec"]
    );
    let work = find(mounts, "/work");
    assert_eq!(work.typ().as_deref(), Some("tmpfs"));
    assert_eq!(opts(work), ["nosuid", "nodev", "noexec", "mode=1777"]);
    assert!(opts(find(mounts, "/sys")).contains(&"ro"));
}

#[test]
fn minimal_spec_is_locked_down() {
    let spec = BundleSpec::new(["/bin/true"]);
    let config = round_trip(&spec, &HostView::default());
    let p = config.process().as_ref().unwrap();
    assert_eq!(p.env().as_deref(), Some(&[][..]), "no default environment");
    assert_eq!(p.no_new_privileges(), Some(true));
    let caps = p.capabilities().as_ref().unwrap();
    assert!(caps.bounding().as_ref().unwrap().is_empty());
    assert!(caps.effective().as_ref().unwrap().is_empty());
    assert_eq!(config.root().as_ref().unwrap().readonly(), Some(true));
    let linux = config.linux().as_ref().unwrap();
    assert!(linux.resources().is_none() && linux.cgroups_path().is_none());
    assert!(linux.seccomp().is_none());
    assert!(config.hostname().is_none());
    let mounts = config.mounts().as_ref().unwrap();
    assert_eq!(find(mounts, "/tmp").typ().as_deref(), Some("tmpfs"));
}

#[test]
fn host_network_has_no_network_namespace() {
    let spec = BundleSpec {
        network: Network::Host,
        ..BundleSpec::new(["/bin/true"])
    };
    let config = round_trip(&spec, &HostView::default());
    let ns = config
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap();
    assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::Network));
    assert_eq!(ns.len(), 4);
}

#[test]
fn directory_root_binds_no_host_dirs() {
    let spec = BundleSpec {
        root: RootSpec::Directory("/srv/rootfs".into()),
        readonly_root: false,
        ..BundleSpec::new(["/bin/true"])
    };
    let config = round_trip(&spec, &HostView::merged_usr());
    let root = config.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/srv/rootfs"));
    assert_eq!(root.readonly(), Some(false));
    let mounts = config.mounts().as_ref().unwrap();
    assert!(mounts.iter().all(|m| m.typ().as_deref() != Some("bind")));
}

#[test]
fn host_view_entries() {
    let view = HostView::scan_dirs([Path::new("/etc"), Path::new("/nonexistent-dir")]);
    assert_eq!(view.entries, [HostEntry::Dir("/etc".into())]);
    let real = HostView::scan();
    assert!(real.entries.iter().any(|e| match e {
        HostEntry::Dir(p) | HostEntry::Symlink { path: p, .. } => p == Path::new("/usr"),
    }));
}

#[test]
fn limits_need_a_cgroup_path() {
    let spec = BundleSpec {
        pids_limit: Some(10),
        ..BundleSpec::new(["/bin/true"])
    };
    let err = to_oci_config(&spec, &HostView::default()).unwrap_err();
    assert!(
        matches!(
            err,
            GvisorError::InvalidSpec {
                field: "cgroup_path",
                ..
            }
        ),
        "{err}"
    );
}

fn field_of(spec: BundleSpec) -> &'static str {
    match to_oci_config(&spec, &HostView::default()) {
        Err(GvisorError::InvalidSpec { field, .. }) => field,
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn bad_specs_are_refused_with_the_field() {
    let base = || BundleSpec::new(["/bin/true"]);
    let mount = |src: Option<&str>, dst: &str, kind| MountSpec {
        source: src.map(PathBuf::from),
        destination: dst.into(),
        kind,
        exec: false,
    };
    let rl = |r: &str, soft, hard| RlimitSpec {
        resource: r.into(),
        soft,
        hard,
    };
    let cases: Vec<(BundleSpec, &str)> = vec![
        (BundleSpec::new(Vec::<String>::new()), "args"),
        (BundleSpec::new(["/bin/a\0b"]), "args"),
        (
            BundleSpec {
                env: vec!["NOEQUALS".into()],
                ..base()
            },
            "env",
        ),
        (
            BundleSpec {
                env: vec!["=v".into()],
                ..base()
            },
            "env",
        ),
        (
            BundleSpec {
                cwd: "work".into(),
                ..base()
            },
            "cwd",
        ),
        (
            BundleSpec {
                cwd: "/a/../b".into(),
                ..base()
            },
            "cwd",
        ),
        (
            BundleSpec {
                hostname: Some("bad host".into()),
                ..base()
            },
            "hostname",
        ),
        (
            BundleSpec {
                root: RootSpec::Directory("rel".into()),
                ..base()
            },
            "root",
        ),
        (
            BundleSpec {
                mounts: vec![mount(Some("/a"), "/proc/x", MountKind::Bind)],
                ..base()
            },
            "mounts.destination",
        ),
        (
            BundleSpec {
                mounts: vec![mount(Some("/a"), "/", MountKind::Bind)],
                ..base()
            },
            "mounts.destination",
        ),
        (
            BundleSpec {
                mounts: vec![mount(Some("/a"), "d", MountKind::Bind)],
                ..base()
            },
            "mounts.destination",
        ),
        (
            BundleSpec {
                mounts: vec![
                    mount(None, "/d", MountKind::Tmpfs),
                    mount(None, "/d", MountKind::Tmpfs),
                ],
                ..base()
            },
            "mounts.destination",
        ),
        (
            BundleSpec {
                mounts: vec![mount(Some("/a"), "/d", MountKind::Tmpfs)],
                ..base()
            },
            "mounts.source",
        ),
        (
            BundleSpec {
                mounts: vec![mount(None, "/d", MountKind::RoBind)],
                ..base()
            },
            "mounts.source",
        ),
        (
            BundleSpec {
                mounts: vec![mount(Some("a"), "/d", MountKind::Bind)],
                ..base()
            },
            "mounts.source",
        ),
        (
            BundleSpec {
                rlimits: vec![rl("RLIMIT_BOGUS", 1, 1)],
                ..base()
            },
            "rlimits",
        ),
        (
            BundleSpec {
                rlimits: vec![rl("nofile", 2, 1)],
                ..base()
            },
            "rlimits",
        ),
        (
            BundleSpec {
                capabilities: vec!["CAP_MAGIC".into()],
                ..base()
            },
            "capabilities",
        ),
        (
            BundleSpec {
                cgroup_path: Some("../escape".into()),
                ..base()
            },
            "cgroup_path",
        ),
        (
            BundleSpec {
                cgroup_path: Some(String::new()),
                ..base()
            },
            "cgroup_path",
        ),
        (
            BundleSpec {
                memory_limit: Some(0),
                cgroup_path: Some("c".into()),
                ..base()
            },
            "memory_limit",
        ),
        (
            BundleSpec {
                cpu_quota: Some(CpuQuota {
                    quota: 1000,
                    period: 10,
                }),
                cgroup_path: Some("c".into()),
                ..base()
            },
            "cpu_quota",
        ),
        (
            BundleSpec {
                pids_limit: Some(0),
                cgroup_path: Some("c".into()),
                ..base()
            },
            "pids_limit",
        ),
    ];
    for (spec, field) in cases {
        let got = field_of(spec.clone());
        assert_eq!(got, field, "for {spec:?}");
    }
}

#[test]
fn bad_seccomp_is_refused() {
    let spec = BundleSpec {
        seccomp: Some(serde_json::json!({"defaultAction": "SCMP_ACT_MAYBE"})),
        ..BundleSpec::new(["/bin/true"])
    };
    let err = to_oci_config(&spec, &HostView::default()).unwrap_err();
    assert!(matches!(err, GvisorError::InvalidSeccomp { .. }), "{err}");
}

#[test]
fn nucleus_seccomp_default_profile_translates() {
    let json = nucleus_seccomp::Profile::default_agent()
        .to_oci_json()
        .unwrap();
    let spec = BundleSpec {
        seccomp: Some(serde_json::from_str(&json).unwrap()),
        ..BundleSpec::new(["/bin/true"])
    };
    let config = round_trip(&spec, &HostView::default());
    let sc = config.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert!(!sc.syscalls().as_ref().unwrap().is_empty());
}

#[test]
fn spec_serde_defaults_and_strictness() {
    let spec: BundleSpec = serde_json::from_str(r#"{"args": ["/bin/true"]}"#).unwrap();
    assert_eq!(spec, BundleSpec::new(["/bin/true"]));
    let full = full_spec();
    let text = serde_json::to_string(&full).unwrap();
    assert_eq!(serde_json::from_str::<BundleSpec>(&text).unwrap(), full);
    let m: MountSpec = serde_json::from_str(r#"{"destination": "/t", "kind": "tmpfs"}"#).unwrap();
    assert_eq!(m.kind, MountKind::Tmpfs);
    let root: RootSpec = serde_json::from_str(r#"{"directory": "/srv/r"}"#).unwrap();
    assert_eq!(root, RootSpec::Directory("/srv/r".into()));
    assert!(serde_json::from_str::<BundleSpec>(r#"{"args": [], "argz": 1}"#).is_err());
    assert_eq!(
        serde_json::to_string(&MountKind::RoBind).unwrap(),
        "\"ro-bind\""
    );
    assert_eq!(
        serde_json::to_string(&RootSpec::HostReadOnly).unwrap(),
        "\"host-read-only\""
    );
}

#[test]
fn writable_mounts_are_noexec_and_masks_are_read_only() {
    let mut spec = full_spec();
    spec.masked = vec![
        crate::MaskedPath {
            path: "/etc/shadow".into(),
            is_dir: false,
        },
        crate::MaskedPath {
            path: "/etc/sudoers.d".into(),
            is_dir: true,
        },
    ];
    let host = HostView::merged_usr();
    assert!(
        to_oci_config(&spec, &host).is_err(),
        "a file mask needs an empty file"
    );
    let host = HostView {
        empty_file: Some("/run/x/masked-file".into()),
        ..HostView::merged_usr()
    };
    let config = to_oci_config(&spec, &host).unwrap();
    let mounts = config.spec().mounts().as_ref().unwrap();
    let opts = |dest: &str| {
        mounts
            .iter()
            .find(|m| m.destination() == std::path::Path::new(dest))
            .and_then(|m| m.options().clone())
            .unwrap_or_default()
    };
    for dest in ["/tmp", "/dev/shm", "/out", "/work"] {
        assert!(
            opts(dest).iter().any(|o| o == "noexec"),
            "{dest}: {:?}",
            opts(dest)
        );
    }
    assert!(!opts("/data").iter().any(|o| o == "rw"));
    for dest in ["/etc/shadow", "/etc/sudoers.d"] {
        assert!(
            opts(dest).iter().any(|o| o == "ro"),
            "{dest}: {:?}",
            opts(dest)
        );
    }
    let shadow = mounts
        .iter()
        .find(|m| m.destination() == std::path::Path::new("/etc/shadow"))
        .unwrap();
    assert_eq!(
        shadow.source().as_deref(),
        Some(std::path::Path::new("/run/x/masked-file"))
    );
}

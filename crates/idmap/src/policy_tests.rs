//! Tests of policy parsing and resolution.

use super::*;
use crate::error::MapProblem;
use std::fs;
use std::path::PathBuf;

struct Files {
    dir: PathBuf,
    paths: SubIdPaths,
}

impl Files {
    fn new(tag: &str, subuid: Option<&str>, subgid: Option<&str>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("nucleus-idmap-policy-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let paths = SubIdPaths::new(dir.join("subuid"), dir.join("subgid"));
        if let Some(text) = subuid {
            fs::write(&paths.subuid, text).unwrap();
        }
        if let Some(text) = subgid {
            fs::write(&paths.subgid, text).unwrap();
        }
        Self { dir, paths }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn m(inside: u32, outside: u32, count: u32) -> IdMapping {
    IdMapping::new(inside, outside, count)
}

fn root() -> Caller {
    Caller::new(0, 0, Some("root".into()))
}

fn alice() -> Caller {
    Caller::new(1000, 1001, Some("alice".into()))
}

fn mode(mode: UsernsMode) -> IdMapPolicy {
    IdMapPolicy {
        mode,
        ..Default::default()
    }
}

fn resolve(policy: &IdMapPolicy, caller: &Caller, files: &Files) -> ResolvedMaps {
    policy.resolve(caller, &files.paths).unwrap().unwrap()
}

fn helpers_available() -> bool {
    crate::write::find_helper("newuidmap").is_some()
        && crate::write::find_helper("newgidmap").is_some()
}

#[test]
fn mode_names_round_trip() {
    for mode in [
        UsernsMode::Auto,
        UsernsMode::Rootless,
        UsernsMode::KeepId,
        UsernsMode::RootRemapped,
        UsernsMode::Explicit,
        UsernsMode::Host,
    ] {
        assert_eq!(mode.as_str().parse::<UsernsMode>().unwrap(), mode);
        let json = serde_json::to_string(&mode).unwrap();
        assert_eq!(json, format!("\"{mode}\""));
        assert_eq!(serde_json::from_str::<UsernsMode>(&json).unwrap(), mode);
    }
    assert!(matches!(
        "keep_id".parse::<UsernsMode>(),
        Err(IdmapError::UnknownMode { .. })
    ));
}

#[test]
fn policy_from_toml() {
    let p: IdMapPolicy = toml::from_str(
        r#"
        mode = "explicit"
        uid_map = ["0:100000:1000", { inside = 1000, outside = 1000, count = 1 }]
        gid_map = ["0:100000:65536"]
        host_root = "deny"
        "#,
    )
    .unwrap();
    assert_eq!(p.uid_map, [m(0, 100000, 1000), m(1000, 1000, 1)]);
    p.validate().unwrap();
    let d: IdMapPolicy = toml::from_str("").unwrap();
    assert_eq!(d, IdMapPolicy::default());
    assert_eq!(d.mode, UsernsMode::Auto);
    assert_eq!(d.host_root, HostRoot::Deny);
    assert!(toml::from_str::<IdMapPolicy>("modes = \"auto\"").is_err());
    assert!(toml::from_str::<IdMapPolicy>("mode = \"keepid\"").is_err());
}

#[test]
fn validate_rejects_misplaced_or_missing_maps() {
    let stray = IdMapPolicy {
        uid_map: vec![m(0, 1000, 1)],
        ..Default::default()
    };
    assert!(matches!(
        stray.validate(),
        Err(IdmapError::MapsIgnored { .. })
    ));
    let mut explicit = mode(UsernsMode::Explicit);
    assert!(matches!(
        explicit.validate(),
        Err(IdmapError::ExplicitMapMissing { missing: "uid_map" })
    ));
    explicit.uid_map = vec![m(0, 1000, 1)];
    assert!(matches!(
        explicit.validate(),
        Err(IdmapError::ExplicitMapMissing { missing: "gid_map" })
    ));
    explicit.gid_map = vec![m(0, 0, 1)];
    match explicit.validate() {
        Err(IdmapError::InvalidMap {
            map: "gid_map",
            problem: MapProblem::HostRoot(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    explicit.host_root = HostRoot::Allow;
    explicit.validate().unwrap();
}

#[test]
fn host_is_none() {
    let files = Files::new("host", None, None);
    assert!(mode(UsernsMode::Host)
        .resolve(&alice(), &files.paths)
        .unwrap()
        .is_none());
}

#[test]
fn rootless_maps_root_to_caller() {
    let files = Files::new("rootless", None, None);
    for policy in [mode(UsernsMode::Rootless), mode(UsernsMode::Auto)] {
        let r = resolve(&policy, &alice(), &files);
        assert_eq!(r.uid, [m(0, 1000, 1)]);
        assert_eq!(r.gid, [m(0, 1001, 1)]);
        assert_eq!(r.writer, MapWriter::Direct);
        assert!(r.deny_setgroups);
        assert_eq!((r.default_uid, r.default_gid), (0, 0));
    }
    // A root caller would map host root: refused unless allowed.
    let err = mode(UsernsMode::Rootless)
        .resolve(&root(), &files.paths)
        .unwrap_err();
    assert!(matches!(err, IdmapError::InvalidMap { map: "uid_map", .. }));
}

#[test]
fn keep_id_maps_caller_to_itself() {
    let files = Files::new("keepid", None, None);
    let r = resolve(&mode(UsernsMode::KeepId), &alice(), &files);
    assert_eq!(r.uid, [m(1000, 1000, 1)]);
    assert_eq!(r.gid, [m(1001, 1001, 1)]);
    assert_eq!(r.writer, MapWriter::Direct);
    assert!(r.deny_setgroups);
    assert_eq!((r.default_uid, r.default_gid), (1000, 1001));
    let allow_root = IdMapPolicy {
        mode: UsernsMode::KeepId,
        host_root: HostRoot::Allow,
        ..Default::default()
    };
    let r = resolve(&allow_root, &root(), &files);
    assert_eq!(r.uid, [m(0, 0, 1)]);
    assert!(!r.deny_setgroups);
}

#[test]
fn root_remapped_uses_default_range_without_subuid() {
    let files = Files::new("remap-default", None, None);
    for policy in [mode(UsernsMode::RootRemapped), mode(UsernsMode::Auto)] {
        let r = resolve(&policy, &root(), &files);
        let range = m(0, DEFAULT_REMAP_START, DEFAULT_REMAP_COUNT);
        assert_eq!(
            (r.uid.as_slice(), r.gid.as_slice()),
            ([range].as_slice(), [range].as_slice())
        );
        assert_eq!(r.writer, MapWriter::Direct);
        assert!(!r.deny_setgroups);
        assert_eq!((r.default_uid, r.default_gid), (0, 0));
    }
}

#[test]
fn root_remapped_uses_subuid_by_name_or_uid() {
    let files = Files::new(
        "remap-root",
        Some("alice:1:2\nroot:200000:1000\n"),
        Some("0:300000:2000\n"),
    );
    let r = resolve(&mode(UsernsMode::RootRemapped), &root(), &files);
    assert_eq!(r.uid, [m(0, 200000, 1000)]);
    assert_eq!(r.gid, [m(0, 300000, 2000)]);
    assert_eq!(r.writer, MapWriter::Direct);
}

#[test]
fn root_remapped_refuses_subuid_range_with_host_root() {
    let files = Files::new("remap-zero", Some("root:0:1000\n"), None);
    let err = mode(UsernsMode::RootRemapped)
        .resolve(&root(), &files.paths)
        .unwrap_err();
    assert!(matches!(
        err,
        IdmapError::InvalidMap {
            problem: MapProblem::HostRoot(_),
            ..
        }
    ));
}

#[test]
fn root_remapped_for_non_root_needs_subuid_and_helpers() {
    let none = Files::new("remap-none", None, None);
    let err = mode(UsernsMode::RootRemapped)
        .resolve(&alice(), &none.paths)
        .unwrap_err();
    match &err {
        IdmapError::NoSubidRange { user, path } => {
            assert_eq!(user, "alice");
            assert_eq!(path, &none.paths.subuid);
        }
        other => panic!("{other:?}"),
    }
    let files = Files::new(
        "remap-alice",
        Some("alice:100000:65536\n"),
        Some("1000:165536:65536\n"),
    );
    match mode(UsernsMode::RootRemapped).resolve(&alice(), &files.paths) {
        Ok(Some(r)) => {
            assert!(helpers_available());
            assert_eq!(r.uid, [m(0, 100000, 65536)]);
            assert_eq!(r.gid, [m(0, 165536, 65536)]);
            assert!(matches!(r.writer, MapWriter::NewIdMap { .. }));
            assert!(!r.deny_setgroups);
        }
        Err(IdmapError::HelperNotFound { .. }) => assert!(!helpers_available()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_subuid_file_is_an_error() {
    let files = Files::new("remap-bad", Some("root:1\n"), None);
    let err = mode(UsernsMode::RootRemapped)
        .resolve(&root(), &files.paths)
        .unwrap_err();
    assert!(matches!(
        err,
        IdmapError::ParseSubid {
            line: 1,
            path: Some(_),
            ..
        }
    ));
}

fn explicit(uid_map: Vec<IdMapping>, gid_map: Vec<IdMapping>) -> IdMapPolicy {
    IdMapPolicy {
        mode: UsernsMode::Explicit,
        uid_map,
        gid_map,
        host_root: HostRoot::Deny,
    }
}

#[test]
fn explicit_root_caller_writes_directly() {
    let files = Files::new("explicit-root", None, None);
    let p = explicit(
        vec![m(0, 100000, 10), m(10, 200000, 5)],
        vec![m(5, 300000, 1)],
    );
    let r = resolve(&p, &root(), &files);
    assert_eq!(r.uid, p.uid_map);
    assert_eq!(r.writer, MapWriter::Direct);
    assert!(!r.deny_setgroups);
    // uid 0 is mapped; gid 0 is not, so the first inside gid is the default.
    assert_eq!((r.default_uid, r.default_gid), (0, 5));
}

#[test]
fn explicit_own_id_is_direct_for_non_root() {
    let files = Files::new("explicit-own", None, None);
    let p = explicit(vec![m(0, 1000, 1)], vec![m(7, 1001, 1)]);
    let r = resolve(&p, &alice(), &files);
    assert_eq!(r.writer, MapWriter::Direct);
    assert!(r.deny_setgroups);
    assert_eq!((r.default_uid, r.default_gid), (0, 7));
}

#[test]
fn explicit_other_ids_need_helpers_for_non_root() {
    let files = Files::new("explicit-helpers", None, None);
    for p in [
        explicit(vec![m(0, 1000, 1), m(1, 100000, 10)], vec![m(0, 1001, 1)]),
        explicit(vec![m(0, 1000, 1)], vec![m(0, 1002, 1)]),
        explicit(vec![m(0, 1000, 2)], vec![m(0, 1001, 1)]),
    ] {
        match p.resolve(&alice(), &files.paths) {
            Ok(Some(r)) => {
                assert!(matches!(r.writer, MapWriter::NewIdMap { .. }), "{p:?}");
                assert!(!r.deny_setgroups);
            }
            Err(e @ IdmapError::HelperNotFound { .. }) => {
                assert!(!helpers_available());
                assert!(e.to_string().contains("uidmap"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn explicit_maps_are_validated() {
    let files = Files::new("explicit-bad", None, None);
    let p = explicit(vec![m(0, 1000, 10), m(5, 2000, 1)], vec![m(0, 1001, 1)]);
    match p.resolve(&root(), &files.paths) {
        Err(IdmapError::InvalidMap {
            map: "uid_map",
            problem: MapProblem::OverlapInside(..),
        }) => {}
        other => panic!("{other:?}"),
    }
}

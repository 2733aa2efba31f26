//! Pure tests of the OCI JSON form.

use super::*;
use crate::action::ENOSYS;
use crate::syscalls::number_of;
use nucleus_test_support::{skip, TempDir};

const PODMAN: &str = "/usr/share/containers/seccomp.json";

fn ctx(caps: &[&str]) -> OciContext {
    OciContext {
        caps: caps.iter().map(|c| (*c).to_owned()).collect(),
        arch: Arch::X86_64,
        kernel: Some((6, 1)),
        unknown_syscalls: UnknownSyscalls::Error,
    }
}

fn err(json: &str) -> SeccompError {
    Profile::from_oci_json(json, &ctx(&[])).unwrap_err()
}

#[test]
fn agent_profile_round_trips_through_oci_json() {
    let p = Profile::default_agent().with_log_denied();
    let json = p.to_oci_json().unwrap();
    assert!(json.contains("SECCOMP_FILTER_FLAG_LOG"));
    assert!(json.contains("SCMP_CMP_MASKED_EQ"));
    let back = Profile::from_oci_json(&json, &ctx(&[])).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.sha256(), p.sha256());
}

#[test]
fn actions_and_defaults() {
    let json = r#"{"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
          {"name": "write", "action": "SCMP_ACT_TRACE", "errnoRet": 7},
          {"names": ["close"], "action": "SCMP_ACT_NOTIFY", "args": null},
          {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": [{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}]}
        ]}"#;
    let p = Profile::from_oci_json(json, &ctx(&[])).unwrap();
    assert_eq!(p.default_action, Action::KillThread);
    assert_eq!(p.architectures, [Arch::X86_64]);
    assert_eq!(p.rules[0].action, Action::Errno(EPERM));
    assert_eq!(p.rules[1].names, ["write"]);
    assert_eq!(p.rules[1].action, Action::Trace(7));
    assert_eq!(p.rules[2].action, Action::UserNotify);
    assert_eq!(p.rules[3].args, [ArgCond::new(1, CmpOp::Eq, 21522)]);
}

#[test]
fn notify_is_user_notification_and_the_listener_is_the_callers() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}"#;
    let p = Profile::from_oci_json(json, &ctx(&[])).unwrap();
    assert_eq!(p.rules[0].action, Action::UserNotify);
    let f = p.compile_for(Arch::X86_64).unwrap();
    let nr = |name| number_of(Arch::X86_64, name).unwrap();
    assert_eq!(f.evaluate(nr("mkdirat"), [0; 6]), Some(Action::UserNotify));
    assert_eq!(f.evaluate(nr("mkdir"), [0; 6]), Some(Action::UserNotify));
    assert_eq!(f.evaluate(nr("sendmsg"), [0; 6]), Some(Action::Allow));
    assert!(p.to_oci_json().unwrap().contains("\"SCMP_ACT_NOTIFY\""));
    let by_default = r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#;
    let p = Profile::from_oci_json(by_default, &ctx(&[])).unwrap();
    assert_eq!(p.default_action, Action::UserNotify);
    // The agent's socket is not the profile's: a runtime that sends the
    // listener (nucleus-oci) takes listenerPath out first.
    let e = err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#);
    assert!(
        matches!(&e, SeccompError::UnsupportedField { field } if field == "listenerPath"),
        "{e}"
    );
}

#[test]
fn includes_and_excludes_follow_caps_arch_and_kernel() {
    let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64le"]}},
        {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.16"}},
        {"names": ["mseal"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.10"}}
    ]}"#;
    let names = |c: &OciContext| -> Vec<String> {
        let p = Profile::from_oci_json(json, c).unwrap();
        p.rules
            .iter()
            .map(|r| format!("{}:{}", r.names[0], r.action))
            .collect()
    };
    assert_eq!(
        names(&ctx(&[])),
        ["bpf:errno(1)", "modify_ldt:allow", "futex_waitv:allow"]
    );
    assert_eq!(names(&ctx(&["sys_admin"]))[0], "bpf:allow");
    let arm = OciContext {
        arch: Arch::Aarch64,
        ..ctx(&[])
    };
    assert!(!names(&arm).iter().any(|n| n.starts_with("modify_ldt")));
}

#[test]
fn arch_map_keeps_the_native_entry() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}], "syscalls": []}"#;
    let p = Profile::from_oci_json(json, &ctx(&[])).unwrap();
    assert_eq!(p.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
}

#[test]
fn bad_input_gives_clear_errors() {
    let e = err("{\"defaultAction\": ");
    assert!(matches!(e, SeccompError::ParseJson { .. }), "{e}");
    let e = err(r#"{"defaultAction": "SCMP_ACT_MAYBE", "syscalls": []}"#);
    assert!(e.to_string().contains("SCMP_ACT_MAYBE"), "{e}");
    let e = err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    assert!(
        e.to_string().contains("unknown syscall names: frobnicate"),
        "{e}"
    );
    let e = err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        matches!(e, SeccompError::BadArgIndex { index: 6, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("read"), "{e}");
    let e = err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}"#,
    );
    assert!(matches!(e, SeccompError::UnknownOperator { .. }), "{e}");
    let e = err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#);
    assert!(matches!(e, SeccompError::UnknownArch { .. }), "{e}");
    let e =
        err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#);
    assert!(matches!(e, SeccompError::UnsupportedFlag { .. }), "{e}");
    let e = err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#);
    assert!(
        matches!(e, SeccompError::ErrnoOutOfRange { errno: 70000 }),
        "{e}"
    );
    let e = err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}"#);
    assert!(matches!(e, SeccompError::ParseJson { .. }), "{e}");
    let e = err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "six"}}]}"#,
    );
    assert!(matches!(e, SeccompError::InvalidMinKernel { .. }), "{e}");
}

#[test]
fn unknown_names_can_be_skipped() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}"#;
    let c = OciContext {
        unknown_syscalls: UnknownSyscalls::Skip,
        ..ctx(&[])
    };
    let p = Profile::from_oci_json(json, &c).unwrap();
    assert_eq!(
        p.compile_for(Arch::X86_64).unwrap().skipped(),
        ["frobnicate"]
    );
}

#[test]
fn file_pins_are_checked() {
    let dir = TempDir::new("seccomp-pin");
    let path = dir.join("p.json");
    let body = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": []}"#;
    std::fs::write(&path, body).unwrap();
    let good = hex(&Sha256::digest(body.as_bytes()));
    let p = Profile::from_file(
        &path,
        Some(&format!("sha256:{}", good.to_uppercase())),
        &ctx(&[]),
    )
    .unwrap();
    assert_eq!(p.default_action, Action::Errno(ENOSYS));
    let bad = "0".repeat(64);
    let e = Profile::from_file(&path, Some(&bad), &ctx(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&bad) && e.contains(&good), "{e}");
    let e = Profile::from_file(&path, Some("abc"), &ctx(&[])).unwrap_err();
    assert!(matches!(e, SeccompError::InvalidPin { .. }));
    let e = Profile::from_file(&dir.join("missing.json"), None, &ctx(&[])).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn podman_profile_loads_and_compiles() {
    if !Path::new(PODMAN).exists() {
        return skip(
            "podman_profile_loads_and_compiles",
            &format!("{PODMAN} absent"),
        );
    }
    let p = Profile::from_file(Path::new(PODMAN), None, &ctx(&[])).unwrap();
    let f = p.compile_for(Arch::X86_64).unwrap();
    let n = |name| number_of(Arch::X86_64, name).unwrap();
    assert_eq!(f.evaluate(n("read"), [0; 6]), Some(Action::Allow));
    assert_eq!(f.evaluate(n("bpf"), [0; 6]), Some(Action::Errno(EPERM)));
    assert_eq!(
        f.evaluate(n("kexec_load"), [0; 6]),
        Some(Action::Errno(EPERM))
    );
    assert_eq!(
        f.evaluate(n("personality"), [8, 0, 0, 0, 0, 0]),
        Some(Action::Allow)
    );
    assert_eq!(
        f.evaluate(n("personality"), [0x40000, 0, 0, 0, 0, 0]),
        Some(Action::Errno(ENOSYS))
    );
    assert_eq!(
        f.evaluate(n("socket"), [16, 3, 9, 0, 0, 0]),
        Some(Action::Errno(22))
    );
    assert_eq!(
        f.evaluate(n("socket"), [16, 3, 0, 0, 0, 0]),
        Some(Action::Allow)
    );
    assert_eq!(f.evaluate(n("modify_ldt"), [0; 6]), Some(Action::Allow));
    let admin = Profile::from_file(Path::new(PODMAN), None, &ctx(&["CAP_SYS_ADMIN"])).unwrap();
    let f = admin.compile_for(Arch::X86_64).unwrap();
    assert_eq!(f.evaluate(n("bpf"), [0; 6]), Some(Action::Allow));
    let json = p.to_oci_json().unwrap();
    assert_eq!(Profile::from_oci_json(&json, &ctx(&[])).unwrap(), p);
}

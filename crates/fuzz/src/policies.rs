//! The policy files: Landlock TOML, capability TOML, OCI seccomp JSON.

use crate::{strs, text, Target};
use nucleus_caps::CapsPolicy;
use nucleus_landlock_policy::{DefaultOptions, Policy};
use nucleus_seccomp::{Arch, OciContext, Profile, UnknownSyscalls};

/// `nucleus_landlock_policy::Policy::from_toml_str`; what parses prints back
/// (`to_toml_string`) to the same policy.
pub(crate) const LANDLOCK: Target = Target {
    name: "landlock",
    entry: "nucleus_landlock_policy::Policy::from_toml_str",
    run: landlock,
    seeds: landlock_seeds,
};

fn landlock(bytes: &[u8]) -> bool {
    let Ok(policy) = Policy::from_toml_str(&text(bytes)) else {
        return false;
    };
    let printed = policy.to_toml_string();
    // TOML holds every path that came from TOML text.
    let printed = printed.expect("a parsed policy prints as TOML");
    let again = Policy::from_toml_str(&printed).expect("a printed policy parses");
    assert_eq!(again, policy, "the policy changed through TOML:\n{printed}");
    let _ = policy.sha256();
    true
}

fn landlock_seeds() -> Vec<Vec<u8>> {
    let mut seeds = strs(&[
        "compat = \"best-effort\"\nscopes = [\"abstract-unix-socket\", \"signal\"]\n\
         handle-net = [\"bind-tcp\", \"connect-tcp\"]\n\n[[fs]]\npath = \"/usr\"\n\
         access = [\"read\", \"execute\"]\n\n[[fs]]\npath = \"/tmp\"\n\
         access = [\"read\", \"write\", \"create\", \"remove\"]\n",
        "compat = \"strict\"\n[[fs]]\npath = \"/usr\"\naccess = [\"read\"]\n",
        "min-abi = 4\nhandle-fs = [\"read\", \"write\"]\n[[net]]\nport = 443\n\
         access = [\"connect-tcp\"]\n[[fs]]\npath = \"/opt/x\"\naccess = [\"read-dir\"]\n\
         optional = true\n",
    ]);
    let opts = DefaultOptions::default();
    if let Ok(text) = Policy::default_container(&opts).to_toml_string() {
        seeds.push(text.into_bytes());
    }
    seeds
}

/// `nucleus_caps::CapsPolicy::from_toml_str`, then `validate` and `compile_for`; what
/// parses prints back to the same policy.
pub(crate) const CAPS: Target = Target {
    name: "caps",
    entry: "nucleus_caps::CapsPolicy::from_toml_str",
    run: caps,
    seeds: caps_seeds,
};

fn caps(bytes: &[u8]) -> bool {
    let Ok(policy) = CapsPolicy::from_toml_str(&text(bytes)) else {
        return false;
    };
    let printed = toml::to_string(&policy).expect("a parsed policy prints as TOML");
    let again = CapsPolicy::from_toml_str(&printed).expect("a printed policy parses");
    assert_eq!(again, policy, "the policy changed through TOML:\n{printed}");
    let _ = policy.validate();
    for last_cap in [37, 40, 63, 255] {
        let _ = policy.compile_for(last_cap);
    }
    true
}

fn caps_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "keep = [\"CAP_NET_BIND_SERVICE\"]\n",
        "keep = [\"net_bind_service\", \"chown\"]\nallow_namespace_caps = false\n",
        "keep = []\nbounding = [\"CAP_CHOWN\", \"CAP_KILL\"]\neffective = []\n\
         permitted = [\"CAP_CHOWN\"]\ninheritable = []\nambient = [\"CAP_CHOWN\"]\n",
        "keep = [\"CAP_SYS_ADMIN\"]\nallow_namespace_caps = true\n",
        "",
    ])
}

/// `nucleus_seccomp::Profile::from_oci_json` (x86_64, kernel 6.1, `CAP_SYS_ADMIN` kept),
/// then `compile_for` every architecture; what parses prints back (`to_oci_json`) to the
/// same profile.
pub(crate) const SECCOMP: Target = Target {
    name: "seccomp",
    entry: "nucleus_seccomp::Profile::from_oci_json",
    run: seccomp,
    seeds: seccomp_seeds,
};

fn context() -> OciContext {
    OciContext {
        caps: vec!["CAP_SYS_ADMIN".to_owned()],
        arch: Arch::X86_64,
        kernel: Some((6, 1)),
        unknown_syscalls: UnknownSyscalls::Skip,
    }
}

fn seccomp(bytes: &[u8]) -> bool {
    let ctx = context();
    let Ok(profile) = Profile::from_oci_json(&text(bytes), &ctx) else {
        return false;
    };
    let printed = profile
        .to_oci_json()
        .expect("a parsed profile prints as JSON");
    let again = Profile::from_oci_json(&printed, &ctx).expect("a printed profile parses");
    assert_eq!(
        again, profile,
        "the profile changed through JSON:\n{printed}"
    );
    for arch in [Arch::X86_64, Arch::X86, Arch::Aarch64] {
        let _ = profile.compile_for(arch);
    }
    true
}

fn seccomp_seeds() -> Vec<Vec<u8>> {
    let mut seeds = strs(&[
        include_str!("../seeds/podman-seccomp.json"),
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
          "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
          {"name": "write", "action": "SCMP_ACT_TRACE", "errnoRet": 7},
          {"names": ["close"], "action": "SCMP_ACT_NOTIFY", "args": null},
          {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": [{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}]},
          {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}"#,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.16"}}
        ]}"#,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}], "syscalls": []}"#,
    ]);
    if let Ok(json) = Profile::default_agent().to_oci_json() {
        seeds.push(json.into_bytes());
    }
    seeds
}

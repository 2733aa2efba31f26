//! CPU architectures, with their libseccomp, Go and audit names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A CPU architecture, as named by libseccomp (`SCMP_ARCH_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Arch {
    #[serde(rename = "x86")]
    X86,
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "x32")]
    X32,
    #[serde(rename = "arm")]
    Arm,
    #[serde(rename = "aarch64")]
    Aarch64,
    #[serde(rename = "mips")]
    Mips,
    #[serde(rename = "mips64")]
    Mips64,
    #[serde(rename = "mips64n32")]
    Mips64n32,
    #[serde(rename = "mipsel")]
    Mipsel,
    #[serde(rename = "mipsel64")]
    Mipsel64,
    #[serde(rename = "mipsel64n32")]
    Mipsel64n32,
    #[serde(rename = "ppc")]
    Ppc,
    #[serde(rename = "ppc64")]
    Ppc64,
    #[serde(rename = "ppc64le")]
    Ppc64le,
    #[serde(rename = "s390")]
    S390,
    #[serde(rename = "s390x")]
    S390x,
    #[serde(rename = "parisc")]
    Parisc,
    #[serde(rename = "parisc64")]
    Parisc64,
    #[serde(rename = "riscv64")]
    Riscv64,
    #[serde(rename = "loongarch64")]
    Loongarch64,
    #[serde(rename = "m68k")]
    M68k,
    #[serde(rename = "sh")]
    Sh,
    #[serde(rename = "sheb")]
    Sheb,
}

/// Every architecture with its `SCMP_ARCH_*` suffix and Go `GOARCH` name (used by the
/// `includes`/`excludes` of Docker and podman profiles).
const ARCH_NAMES: &[(Arch, &str, &str)] = &[
    (Arch::X86, "X86", "386"),
    (Arch::X86_64, "X86_64", "amd64"),
    (Arch::X32, "X32", "x32"),
    (Arch::Arm, "ARM", "arm"),
    (Arch::Aarch64, "AARCH64", "arm64"),
    (Arch::Mips, "MIPS", "mips"),
    (Arch::Mips64, "MIPS64", "mips64"),
    (Arch::Mips64n32, "MIPS64N32", "mips64n32"),
    (Arch::Mipsel, "MIPSEL", "mipsle"),
    (Arch::Mipsel64, "MIPSEL64", "mips64le"),
    (Arch::Mipsel64n32, "MIPSEL64N32", "mips64len32"),
    (Arch::Ppc, "PPC", "ppc"),
    (Arch::Ppc64, "PPC64", "ppc64"),
    (Arch::Ppc64le, "PPC64LE", "ppc64le"),
    (Arch::S390, "S390", "s390"),
    (Arch::S390x, "S390X", "s390x"),
    (Arch::Parisc, "PARISC", "parisc"),
    (Arch::Parisc64, "PARISC64", "parisc64"),
    (Arch::Riscv64, "RISCV64", "riscv64"),
    (Arch::Loongarch64, "LOONGARCH64", "loong64"),
    (Arch::M68k, "M68K", "m68k"),
    (Arch::Sh, "SH", "sh"),
    (Arch::Sheb, "SHEB", "sheb"),
];

impl Arch {
    /// The architecture this crate was compiled for, if it has a syscall table here.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    fn names(self) -> (&'static str, &'static str) {
        ARCH_NAMES
            .iter()
            .find(|(a, _, _)| *a == self)
            .map_or(("", ""), |(_, scmp, go)| (*scmp, *go))
    }

    /// The OCI/libseccomp name, e.g. `SCMP_ARCH_X86_64`.
    pub fn oci_name(self) -> String {
        format!("SCMP_ARCH_{}", self.names().0)
    }

    /// The Go name used by `includes.arches` in Docker/podman profiles, e.g. `amd64`.
    pub fn go_name(self) -> &'static str {
        self.names().1
    }

    /// Parse an OCI name (`SCMP_ARCH_AARCH64`).
    pub fn from_oci_name(name: &str) -> Option<Arch> {
        let suffix = name.strip_prefix("SCMP_ARCH_")?;
        ARCH_NAMES
            .iter()
            .find(|(_, scmp, _)| *scmp == suffix)
            .map(|(a, _, _)| *a)
    }

    /// The kernel's `AUDIT_ARCH_*` value, for the architectures we compile for.
    pub(crate) fn audit_arch(self) -> Option<u32> {
        match self {
            Arch::X86_64 => Some(0xc000_003e),
            Arch::Aarch64 => Some(0xc000_00b7),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&name)
    }
}

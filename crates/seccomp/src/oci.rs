//! OCI runtime-spec `linux.seccomp` JSON, with the Docker/podman extensions (`archMap`,
//! `includes`/`excludes` by capability, architecture and kernel version).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::action::{Action, EPERM};
use crate::arch::Arch;
use crate::error::SeccompError;
use crate::profile::{hex, ArgCond, CmpOp, Profile, Rule, UnknownSyscalls};

/// What a Docker/podman profile's `includes`/`excludes` are resolved against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciContext {
    /// Capabilities kept in the bounding set, e.g. `CAP_SYS_ADMIN` (case and the `CAP_` prefix
    /// do not matter).
    pub caps: Vec<String>,
    /// The architecture the profile will be compiled for.
    pub arch: Arch,
    /// The kernel's `(major, minor)`, for `minKernel`; `None` takes every `minKernel` as met.
    pub kernel: Option<(u32, u32)>,
    /// What to do with syscall names no known architecture has.
    pub unknown_syscalls: UnknownSyscalls,
}

impl OciContext {
    /// The native architecture and the running kernel's version, with these capabilities.
    pub fn native(caps: Vec<String>) -> OciContext {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_version(s.trim()));
        OciContext {
            caps,
            arch: Arch::native().unwrap_or(Arch::X86_64),
            kernel,
            unknown_syscalls: UnknownSyscalls::Error,
        }
    }

    fn has_cap(&self, cap: &str) -> bool {
        let norm = |c: &str| {
            let c = c.to_ascii_uppercase();
            c.strip_prefix("CAP_").map(str::to_owned).unwrap_or(c)
        };
        let want = norm(cap);
        self.caps.iter().any(|c| norm(c) == want)
    }

    fn has_arch(&self, name: &str) -> bool {
        let a = self.arch;
        name == a.go_name() || name == a.to_string() || Arch::from_oci_name(name) == Some(a)
    }
}

impl Default for OciContext {
    fn default() -> OciContext {
        OciContext::native(Vec::new())
    }
}

/// `"5.8"` (or `"6.18.44-fc"`) as `(5, 8)`.
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OciIn {
    default_action: String,
    default_errno_ret: Option<u64>,
    /// containers/common writes the errno's name next to its number; the number rules.
    #[allow(dead_code)]
    default_errno: Option<String>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMapIn>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    #[allow(dead_code)]
    listener_metadata: Option<String>,
    syscalls: Option<Vec<SyscallIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchMapIn {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SyscallIn {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u64>,
    #[allow(dead_code)]
    errno: Option<String>,
    args: Option<Vec<ArgIn>>,
    #[allow(dead_code)]
    comment: Option<String>,
    includes: Option<FilterIn>,
    excludes: Option<FilterIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArgIn {
    index: u64,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilterIn {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciOut {
    default_action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_errno_ret: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    architectures: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<&'static str>,
    syscalls: Vec<SyscallOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyscallOut {
    names: Vec<String>,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<ArgOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArgOut {
    index: u8,
    value: u64,
    value_two: u64,
    op: &'static str,
}

const FLAG_LOG: &str = "SECCOMP_FILTER_FLAG_LOG";

const OPS: &[(CmpOp, &str)] = &[
    (CmpOp::Eq, "SCMP_CMP_EQ"),
    (CmpOp::Ne, "SCMP_CMP_NE"),
    (CmpOp::Lt, "SCMP_CMP_LT"),
    (CmpOp::Le, "SCMP_CMP_LE"),
    (CmpOp::Gt, "SCMP_CMP_GT"),
    (CmpOp::Ge, "SCMP_CMP_GE"),
    (CmpOp::MaskedEq, "SCMP_CMP_MASKED_EQ"),
];

fn action_in(name: &str, ret: Option<u64>) -> Result<Action, SeccompError> {
    let data = |max: u64| {
        let v = ret.unwrap_or(u64::from(EPERM));
        if v > max {
            Err(SeccompError::ErrnoOutOfRange { errno: v })
        } else {
            Ok(v as u16)
        }
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(data(4095)?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(data(u64::from(u16::MAX))?),
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => Action::UserNotify,
        _ => {
            return Err(SeccompError::UnknownAction {
                action: name.to_owned(),
            })
        }
    })
}

fn action_out(action: Action) -> (&'static str, Option<u16>) {
    match action {
        Action::Allow => ("SCMP_ACT_ALLOW", None),
        Action::Errno(e) => ("SCMP_ACT_ERRNO", Some(e)),
        Action::KillProcess => ("SCMP_ACT_KILL_PROCESS", None),
        Action::KillThread => ("SCMP_ACT_KILL_THREAD", None),
        Action::Trap => ("SCMP_ACT_TRAP", None),
        Action::Log => ("SCMP_ACT_LOG", None),
        Action::UserNotify => ("SCMP_ACT_NOTIFY", None),
        Action::Trace(d) => ("SCMP_ACT_TRACE", Some(d)),
    }
}

fn arch_in(name: &str) -> Result<Arch, SeccompError> {
    Arch::from_oci_name(name).ok_or_else(|| SeccompError::UnknownArch {
        arch: name.to_owned(),
    })
}

/// Whether a Docker/podman rule applies in `ctx` (moby's semantics: any excluded cap or arch
/// excludes; every included cap, one of the included arches, and the kernel version must be
/// there).
fn applies(inc: &FilterIn, exc: &FilterIn, ctx: &OciContext) -> Result<bool, SeccompError> {
    let kernel_at_least = |v: &str| -> Result<bool, SeccompError> {
        let want = parse_version(v).ok_or_else(|| SeccompError::InvalidMinKernel {
            value: v.to_owned(),
        })?;
        Ok(ctx.kernel.is_none_or(|k| k >= want))
    };
    let list = |l: &Option<Vec<String>>| l.clone().unwrap_or_default();
    if list(&exc.arches).iter().any(|a| ctx.has_arch(a))
        || list(&exc.caps).iter().any(|c| ctx.has_cap(c))
    {
        return Ok(false);
    }
    if let Some(v) = &exc.min_kernel {
        if kernel_at_least(v)? {
            return Ok(false);
        }
    }
    let arches = list(&inc.arches);
    if !arches.is_empty() && !arches.iter().any(|a| ctx.has_arch(a)) {
        return Ok(false);
    }
    if !list(&inc.caps).iter().all(|c| ctx.has_cap(c)) {
        return Ok(false);
    }
    match &inc.min_kernel {
        Some(v) => kernel_at_least(v),
        None => Ok(true),
    }
}

fn rule_in(s: SyscallIn) -> Result<Rule, SeccompError> {
    let mut names = s.names.unwrap_or_default();
    names.extend(s.name);
    let first = names.first().cloned().unwrap_or_default();
    let args = s
        .args
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let op = OPS.iter().find(|(_, n)| *n == a.op).map(|(op, _)| *op);
            let op = op.ok_or_else(|| SeccompError::UnknownOperator { op: a.op.clone() })?;
            let index = u8::try_from(a.index)
                .ok()
                .filter(|i| *i <= 5)
                .ok_or_else(|| SeccompError::BadArgIndex {
                    syscall: first.clone(),
                    index: a.index,
                })?;
            Ok(ArgCond {
                index,
                op,
                value: a.value,
                value_two: a.value_two,
            })
        })
        .collect::<Result<_, SeccompError>>()?;
    Ok(Rule {
        names,
        action: action_in(&s.action, s.errno_ret)?,
        args,
    })
}

fn architectures_in(oci: &OciIn, ctx: &OciContext) -> Result<Vec<Arch>, SeccompError> {
    match (&oci.architectures, &oci.arch_map) {
        (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
            Err(SeccompError::ArchitecturesAndArchMap)
        }
        (Some(a), _) if !a.is_empty() => a.iter().map(|n| arch_in(n)).collect(),
        (_, Some(map)) => {
            let mut out = Vec::new();
            for entry in map {
                let arch = arch_in(&entry.architecture)?;
                let subs = entry.sub_architectures.iter().flatten();
                let subs = subs.map(|n| arch_in(n)).collect::<Result<Vec<_>, _>>()?;
                if arch == ctx.arch {
                    out.push(arch);
                    out.extend(subs);
                }
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

impl Profile {
    /// Read an OCI `linux.seccomp` profile (Docker's and podman's format included), resolving
    /// `includes`/`excludes` against `ctx`. Checks it ([`Profile::validate`]).
    ///
    /// ```
    /// use nucleus_seccomp::{Action, OciContext, Profile};
    /// let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    ///   "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#;
    /// let profile = Profile::from_oci_json(json, &OciContext::default())?;
    /// assert_eq!(profile.default_action, Action::Errno(38));
    /// # Ok::<(), nucleus_seccomp::SeccompError>(())
    /// ```
    pub fn from_oci_json(s: &str, ctx: &OciContext) -> Result<Profile, SeccompError> {
        Self::from_oci_slice(s.as_bytes(), ctx)
    }

    fn from_oci_slice(bytes: &[u8], ctx: &OciContext) -> Result<Profile, SeccompError> {
        let oci: OciIn =
            serde_json::from_slice(bytes).map_err(|source| SeccompError::ParseJson { source })?;
        // The seccomp agent's socket is the runtime's to use (nucleus-oci sends the listener
        // there and takes the field out before parsing): here it would be silently unused.
        if oci.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(SeccompError::UnsupportedField {
                field: "listenerPath".to_owned(),
            });
        }
        let mut log_denied = false;
        for flag in oci.flags.iter().flatten() {
            match flag.as_str() {
                FLAG_LOG => log_denied = true,
                _ => return Err(SeccompError::UnsupportedFlag { flag: flag.clone() }),
            }
        }
        let architectures = architectures_in(&oci, ctx)?;
        let mut rules = Vec::new();
        for s in oci.syscalls.unwrap_or_default() {
            let (inc, exc) = (s.includes.as_ref(), s.excludes.as_ref());
            let empty = FilterIn::default();
            let keep = applies(inc.unwrap_or(&empty), exc.unwrap_or(&empty), ctx)?;
            let rule = rule_in(s)?;
            if keep {
                rules.push(rule);
            }
        }
        let profile = Profile {
            default_action: action_in(&oci.default_action, oci.default_errno_ret)?,
            architectures,
            rules,
            unknown_syscalls: ctx.unknown_syscalls,
            log_denied,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// Read a profile file in OCI JSON. With `sha256_pin` (64 hex digits, optionally prefixed
    /// by `sha256:`), the file's bytes must hash to it, or nothing is parsed.
    pub fn from_file(
        path: &Path,
        sha256_pin: Option<&str>,
        ctx: &OciContext,
    ) -> Result<Profile, SeccompError> {
        let expected = sha256_pin.map(parse_pin).transpose()?;
        let bytes = std::fs::read(path).map_err(|source| SeccompError::ReadProfile {
            path: path.to_owned(),
            source,
        })?;
        if let Some(expected) = expected {
            let actual = hex(&Sha256::digest(&bytes));
            if actual != expected {
                return Err(SeccompError::HashMismatch {
                    path: path.to_owned(),
                    expected,
                    actual,
                });
            }
        }
        Self::from_oci_slice(&bytes, ctx)
    }

    /// The profile as OCI `linux.seccomp` JSON, readable by runc, crun, podman and by
    /// [`Profile::from_oci_json`]. (`unknown_syscalls` has no OCI form and is left out.)
    pub fn to_oci_json(&self) -> Result<String, SeccompError> {
        let (default_action, default_errno_ret) = action_out(self.default_action);
        let syscalls = self
            .rules
            .iter()
            .map(|r| {
                let (action, errno_ret) = action_out(r.action);
                let args = r.args.iter().map(|a| ArgOut {
                    index: a.index,
                    value: a.value,
                    value_two: a.value_two,
                    op: OPS
                        .iter()
                        .find(|(op, _)| *op == a.op)
                        .map_or("", |(_, n)| n),
                });
                SyscallOut {
                    names: r.names.clone(),
                    action,
                    errno_ret,
                    args: args.collect(),
                }
            })
            .collect();
        let out = OciOut {
            default_action,
            default_errno_ret,
            architectures: self.architectures.iter().map(|a| a.oci_name()).collect(),
            flags: if self.log_denied {
                vec![FLAG_LOG]
            } else {
                vec![]
            },
            syscalls,
        };
        serde_json::to_string_pretty(&out).map_err(|source| SeccompError::Serialize { source })
    }
}

fn parse_pin(pin: &str) -> Result<String, SeccompError> {
    let hex = pin
        .strip_prefix("sha256:")
        .unwrap_or(pin)
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(SeccompError::InvalidPin {
            pin: pin.to_owned(),
        })
    }
}

#[cfg(test)]
#[path = "oci_tests.rs"]
mod tests;

//! The profile as plain data: what each syscall gets.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::action::Action;
use crate::arch::Arch;
use crate::error::SeccompError;
use crate::syscalls;

/// A seccomp profile: a default action, and rules that give syscalls other actions.
///
/// Rule semantics: for one syscall, every rule that names it is considered; a rule matches when
/// all its argument conditions hold (a rule without conditions always matches). When several
/// rules match, the most restrictive action wins, in the kernel's own order
/// (kill-process, kill-thread, trap, errno, user-notify, trace, log, allow), so a deny rule
/// can never be shadowed by a broader allow; among equals, the earlier rule wins. When no rule
/// matches, the default action applies.
///
/// ```
/// use nucleus_seccomp::{Action, Profile, Rule};
///
/// let mut profile = Profile::default_agent();
/// profile.rules.push(Rule::new(["flock"], Action::Errno(libc::ENOLCK as u16)));
/// profile.validate()?;
/// let json = profile.to_oci_json()?;
/// assert!(json.contains("SCMP_ACT_ERRNO"));
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What a syscall that no rule matches gets.
    pub default_action: Action,
    /// The architectures the profile is written for; empty means the native one. Only the
    /// native architecture's syscalls pass the filter: others (i386 and x32 on x86_64, arm32 on
    /// aarch64) kill the process, because their numbers differ and are not filtered.
    #[serde(default)]
    pub architectures: Vec<Arch>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// What to do with syscall names no known architecture has.
    #[serde(default)]
    pub unknown_syscalls: UnknownSyscalls,
    /// Ask the kernel to log every action but allow (`SECCOMP_FILTER_FLAG_LOG`).
    #[serde(default)]
    pub log_denied: bool,
}

/// One rule: these syscalls, when these conditions hold, get this action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Syscall names, as in the kernel's tables (`openat`, `clone3`, ...).
    pub names: Vec<String>,
    /// The action when all conditions hold.
    pub action: Action,
    /// Conditions on the arguments, all of which must hold (empty: always).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCond>,
}

impl Rule {
    /// A rule without argument conditions.
    pub fn new<I, S>(names: I, action: Action) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rule {
            names: names.into_iter().map(Into::into).collect(),
            action,
            args: Vec::new(),
        }
    }

    /// The same rule with one more argument condition.
    pub fn with_arg(mut self, cond: ArgCond) -> Rule {
        self.args.push(cond);
        self
    }
}

/// A condition on one syscall argument, compared as an unsigned 64-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCond {
    /// The argument, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: CmpOp,
    /// The value compared with (the mask, for `masked-eq`).
    pub value: u64,
    /// For `masked-eq`: the value `arg & value` must equal. Unused otherwise.
    #[serde(default)]
    pub value_two: u64,
}

impl ArgCond {
    /// `arg[index] <op> value`.
    pub fn new(index: u8, op: CmpOp, value: u64) -> ArgCond {
        ArgCond {
            index,
            op,
            value,
            value_two: 0,
        }
    }

    /// `arg[index] & mask == value`.
    pub fn masked_eq(index: u8, mask: u64, value: u64) -> ArgCond {
        ArgCond {
            index,
            op: CmpOp::MaskedEq,
            value: mask,
            value_two: value,
        }
    }

    /// `arg[index] as u32 == value`: for `int`/`unsigned int` parameters, whose upper 32 bits
    /// the kernel ignores (so a 64-bit comparison could be dodged by setting them).
    pub fn eq32(index: u8, value: u32) -> ArgCond {
        ArgCond::masked_eq(index, 0xffff_ffff, u64::from(value))
    }
}

/// A comparison of an argument with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CmpOp {
    /// `arg == value`
    Eq,
    /// `arg != value`
    Ne,
    /// `arg < value`
    Lt,
    /// `arg <= value`
    Le,
    /// `arg > value`
    Gt,
    /// `arg >= value`
    Ge,
    /// `arg & value == value_two`
    MaskedEq,
}

impl CmpOp {
    /// Whether `arg <op> value` (with `value_two` for `masked-eq`).
    pub fn holds(self, arg: u64, value: u64, value_two: u64) -> bool {
        match self {
            CmpOp::Eq => arg == value,
            CmpOp::Ne => arg != value,
            CmpOp::Lt => arg < value,
            CmpOp::Le => arg <= value,
            CmpOp::Gt => arg > value,
            CmpOp::Ge => arg >= value,
            CmpOp::MaskedEq => arg & value == value_two,
        }
    }
}

/// What to do with syscall names that no architecture we know has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownSyscalls {
    /// Refuse the profile, naming them.
    #[default]
    Error,
    /// Leave them out, and report them ([`crate::CompiledFilter::skipped`]).
    Skip,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_action(action: Action) -> Result<(), SeccompError> {
    match action {
        Action::Errno(e) if e > 4095 => Err(SeccompError::ErrnoOutOfRange {
            errno: u64::from(e),
        }),
        _ => Ok(()),
    }
}

impl Profile {
    /// Check the profile: names well formed and known (unless `unknown_syscalls` is `skip`),
    /// argument indexes 0..=5, errno values 0..=4095. Runs in the parent; [`Profile::compile`]
    /// calls it.
    pub fn validate(&self) -> Result<(), SeccompError> {
        check_action(self.default_action)?;
        let mut unknown = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            check_action(rule.action)?;
            let Some(first) = rule.names.first() else {
                return Err(SeccompError::EmptyRule { rule: i });
            };
            for name in &rule.names {
                if !valid_name(name) {
                    return Err(SeccompError::InvalidSyscallName {
                        rule: i,
                        name: name.clone(),
                    });
                }
                if !syscalls::is_known(name) && !unknown.contains(name) {
                    unknown.push(name.clone());
                }
            }
            if let Some(bad) = rule.args.iter().find(|a| a.index > 5) {
                return Err(SeccompError::BadArgIndex {
                    syscall: first.clone(),
                    index: u64::from(bad.index),
                });
            }
        }
        if !unknown.is_empty() && self.unknown_syscalls == UnknownSyscalls::Error {
            return Err(SeccompError::UnknownSyscalls { names: unknown });
        }
        Ok(())
    }

    /// The SHA-256 of the profile's canonical JSON (this crate's own form), lowercase hex: the
    /// hash to report as what was enforced. (A file pin, `from_file`, hashes the file's bytes.)
    pub fn sha256(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&canonical))
    }

    /// The filter used to record a workload's syscalls: every syscall goes to the supervisor
    /// (user notification), except `write(report_fd, ...)`, so the child can report its
    /// listener fd number to the parent without waiting on a supervisor that does not have
    /// it yet. Apply it with [`crate::CompiledFilter::apply_with_listener`].
    pub fn record_filter(report_fd: i32) -> Profile {
        Profile {
            default_action: Action::UserNotify,
            architectures: Vec::new(),
            rules: vec![
                Rule::new(["write"], Action::Allow).with_arg(ArgCond::eq32(0, report_fd as u32))
            ],
            unknown_syscalls: UnknownSyscalls::Error,
            log_denied: false,
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::action::EPERM;

    /// A profile of `rules` that denies the rest with `EPERM`.
    pub(crate) fn profile(rules: Vec<Rule>) -> Profile {
        Profile {
            default_action: Action::Errno(EPERM),
            architectures: vec![],
            rules,
            unknown_syscalls: UnknownSyscalls::Error,
            log_denied: false,
        }
    }

    #[test]
    fn validate_names_unknown_syscalls() {
        let p = profile(vec![Rule::new(
            ["read", "frobnicate", "grok"],
            Action::Allow,
        )]);
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("frobnicate, grok"), "{err}");
        let skip = Profile {
            unknown_syscalls: UnknownSyscalls::Skip,
            ..p
        };
        skip.validate().unwrap();
    }

    #[test]
    fn validate_rejects_bad_index_errno_and_names() {
        let p = profile(vec![
            Rule::new(["read"], Action::Allow).with_arg(ArgCond::new(6, CmpOp::Eq, 0))
        ]);
        assert!(matches!(
            p.validate(),
            Err(SeccompError::BadArgIndex { index: 6, .. })
        ));
        let p = profile(vec![Rule::new(["read"], Action::Errno(5000))]);
        assert!(matches!(
            p.validate(),
            Err(SeccompError::ErrnoOutOfRange { errno: 5000 })
        ));
        let p = profile(vec![Rule::new(["Read"], Action::Allow)]);
        assert!(matches!(
            p.validate(),
            Err(SeccompError::InvalidSyscallName { .. })
        ));
        let p = profile(vec![Rule::new(Vec::<String>::new(), Action::Allow)]);
        assert!(matches!(
            p.validate(),
            Err(SeccompError::EmptyRule { rule: 0 })
        ));
    }

    #[test]
    fn serde_forms_are_kebab_case() {
        let p = profile(vec![
            Rule::new(["socket"], Action::Allow).with_arg(ArgCond::eq32(0, 1))
        ]);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""default_action":{"errno":1}"#), "{json}");
        assert!(json.contains(r#""op":"masked-eq""#), "{json}");
        let back: Profile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.sha256().len(), 64);
        assert_eq!(Arch::X86_64.to_string(), "x86_64");
        assert_eq!(
            Arch::from_oci_name("SCMP_ARCH_AARCH64"),
            Some(Arch::Aarch64)
        );
        assert_eq!(Arch::Aarch64.oci_name(), "SCMP_ARCH_AARCH64");
    }
}

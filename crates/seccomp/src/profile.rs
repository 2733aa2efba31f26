//! The profile as plain data: what each syscall gets.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SeccompError;
use crate::syscalls;

pub use crate::arch::Arch;

/// `EPERM`: what denials return by default, so programs see "operation not permitted" and
/// degrade instead of dying.
pub const EPERM: u16 = libc::EPERM as u16;
/// `ENOSYS`: "not implemented", which makes libc fall back (e.g. from `clone3` to `clone`).
pub const ENOSYS: u16 = libc::ENOSYS as u16;

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

/// What a syscall gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Run it.
    Allow,
    /// Fail it with this errno, without running it.
    Errno(u16),
    /// Kill the whole process (`SIGSYS`, core dump).
    KillProcess,
    /// Kill the calling thread only.
    KillThread,
    /// Send `SIGSYS` to the thread.
    Trap,
    /// Run it, and log it.
    Log,
    /// Ask the supervisor holding the listener fd (without one: `ENOSYS`).
    UserNotify,
    /// Notify a ptrace tracer with this message (without one: `ENOSYS`).
    Trace(u16),
}

impl Action {
    /// The kernel's `SECCOMP_RET_*` value.
    pub fn to_ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::UserNotify => libc::SECCOMP_RET_USER_NOTIF,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
        }
    }

    /// The action a `SECCOMP_RET_*` value stands for, if it is one.
    pub fn from_ret(ret: u32) -> Option<Action> {
        let data = (ret & libc::SECCOMP_RET_DATA) as u16;
        Some(match ret & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_ALLOW => Action::Allow,
            libc::SECCOMP_RET_ERRNO => Action::Errno(data),
            libc::SECCOMP_RET_KILL_PROCESS => Action::KillProcess,
            libc::SECCOMP_RET_KILL_THREAD => Action::KillThread,
            libc::SECCOMP_RET_TRAP => Action::Trap,
            libc::SECCOMP_RET_LOG => Action::Log,
            libc::SECCOMP_RET_USER_NOTIF => Action::UserNotify,
            libc::SECCOMP_RET_TRACE => Action::Trace(data),
            _ => return None,
        })
    }

    /// Rank in the kernel's precedence: lower is more restrictive and wins.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::KillThread => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::UserNotify => 4,
            Action::Trace(_) => 5,
            Action::Log => 6,
            Action::Allow => 7,
        }
    }

    /// Whether the syscall is refused (not run, or the caller killed).
    pub fn denies(self) -> bool {
        matches!(
            self,
            Action::Errno(_) | Action::KillProcess | Action::KillThread | Action::Trap
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(e) => write!(f, "errno({e})"),
            Action::KillProcess => f.write_str("kill-process"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap => f.write_str("trap"),
            Action::Log => f.write_str("log"),
            Action::UserNotify => f.write_str("user-notify"),
            Action::Trace(d) => write!(f, "trace({d})"),
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

    /// The same profile, with every action but allow logged by the kernel
    /// (`SECCOMP_FILTER_FLAG_LOG`). Denials are still enforced; the kernel writes an audit
    /// record (`type=1326`, to auditd or the kernel log) for each, subject to
    /// `/proc/sys/kernel/seccomp/actions_logged`. (`SECCOMP_RET_LOG` itself is not used for
    /// this: it would allow the syscall.)
    pub fn with_log_denied(mut self) -> Profile {
        self.log_denied = true;
        self
    }

    /// The same profile, with `execve` and `execveat` failing with `EPERM`: for a process that
    /// must never start a program (the WASI host).
    pub fn deny_exec(mut self) -> Profile {
        self.rules
            .insert(0, Rule::new(["execve", "execveat"], Action::Errno(EPERM)));
        self
    }

    /// The same profile, with `memfd_create` answering `ENOSYS` unless the
    /// caller asks for a sealed non-executable file (`MFD_NOEXEC_SEAL`):
    /// a program written to a memfd cannot be executed, where the kernel's
    /// `vm.memfd_noexec = 2` cannot be set. `ENOSYS` makes programs fall
    /// back to a temporary file, as they do on kernels without memfd.
    pub fn deny_exec_memfd(mut self) -> Profile {
        const MFD_NOEXEC_SEAL: u64 = 0x0008;
        self.rules.insert(
            0,
            Rule::new(["memfd_create"], Action::Errno(libc::ENOSYS as u16))
                .with_arg(ArgCond::masked_eq(1, MFD_NOEXEC_SEAL, 0)),
        );
        self
    }

    /// The same profile, with UDP sockets (`SOCK_DGRAM` of `AF_INET` and
    /// `AF_INET6`, any protocol) failing with `EPERM`: for a sandbox on a
    /// shared network whose TCP ports Landlock limits, which it cannot do
    /// for UDP. Datagram sockets of `AF_UNIX` stay allowed.
    ///
    /// ```
    /// let profile = nucleus_seccomp::Profile::default_agent().deny_udp();
    /// assert!(profile.compile().is_ok());
    /// ```
    pub fn deny_udp(mut self) -> Profile {
        const SOCK_DGRAM: u64 = libc::SOCK_DGRAM as u64;
        const SOCK_TYPE_MASK: u64 = 0xf;
        for family in [libc::AF_INET, libc::AF_INET6] {
            self.rules.insert(
                0,
                Rule::new(["socket"], Action::Errno(EPERM))
                    .with_arg(ArgCond::eq32(0, family as u32))
                    .with_arg(ArgCond::masked_eq(1, SOCK_TYPE_MASK, SOCK_DGRAM)),
            );
        }
        self
    }

    /// The same profile, with `symlink` and `symlinkat` failing with
    /// `EPERM`: for a process that creates links only on behalf of a guest
    /// whose link targets it cannot vouch for (the WASI host: wasmtime
    /// creates any target, and a link out of a preopen would be followed
    /// by whoever binds that directory later).
    pub fn deny_symlinks(mut self) -> Profile {
        self.rules
            .insert(0, Rule::new(["symlink", "symlinkat"], Action::Errno(EPERM)));
        self
    }

    /// The same profile, where files the sandbox writes land on the host as
    /// root's (idmapped writable binds of a root invoker): setting a
    /// setuid or setgid bit (`chmod` family, or the mode of `open`,
    /// `creat`, `mknod`) answers `EPERM`, and extended attributes, which
    /// would carry file capabilities valid on the host, cannot be set
    /// (`EOPNOTSUPP`, which `cp -a` and `tar` pass over); `openat2`, whose
    /// mode seccomp cannot read, answers `ENOSYS` (callers fall back to
    /// `openat`).
    pub fn deny_privileged_files(mut self) -> Profile {
        const SETID: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];
        let mode_at: [(&str, u8); 8] = [
            ("chmod", 1),
            ("fchmod", 1),
            ("fchmodat", 2),
            ("fchmodat2", 2),
            ("open", 2),
            ("creat", 1),
            ("openat", 3),
            ("mknod", 1),
        ];
        let mut rules: Vec<Rule> = mode_at
            .iter()
            .chain(&[("mknodat", 3)])
            .flat_map(|&(name, index)| {
                SETID.map(|bit| {
                    Rule::new([name], Action::Errno(EPERM))
                        .with_arg(ArgCond::masked_eq(index, bit, bit))
                })
            })
            .collect();
        rules.push(Rule::new(
            ["setxattr", "lsetxattr", "fsetxattr", "setxattrat"],
            Action::Errno(libc::EOPNOTSUPP as u16),
        ));
        rules.push(Rule::new(["openat2"], Action::Errno(ENOSYS)));
        rules.extend(std::mem::take(&mut self.rules));
        self.rules = rules;
        self
    }

    /// The same profile for a runtime whose seccomp answers every errno
    /// rule with `EPERM` (gVisor's sentry ignores OCI `errnoRet`): each
    /// errno rule says `EPERM`, so the report states what is enforced, and
    /// `clone3`'s `ENOSYS` rule becomes allow, because `EPERM` would stop
    /// libc from falling back to `clone` (no thread could start). That
    /// runtime is the kernel the workload talks to: its own `clone3`
    /// answers `ENOSYS` or checks namespace flags itself.
    pub fn for_eperm_only_runtime(mut self) -> Profile {
        for rule in &mut self.rules {
            if let Action::Errno(errno) = rule.action {
                rule.action = if rule.names.iter().any(|n| n == "clone3") && errno == ENOSYS {
                    Action::Allow
                } else {
                    Action::Errno(EPERM)
                };
            }
        }
        self
    }

    /// The same profile, with its denials turned into `action` (say [`Action::KillProcess`]):
    /// the default action when it denies, and every rule whose action is `errno(EPERM)`.
    /// Other errno rules (like `clone3`'s `ENOSYS`, which makes libc fall back) stay.
    pub fn with_deny_action(mut self, action: Action) -> Profile {
        if self.default_action.denies() {
            self.default_action = action;
        }
        for rule in &mut self.rules {
            if rule.action == Action::Errno(EPERM) {
                rule.action = action;
            }
        }
        self
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
mod tests {
    use super::*;

    fn profile(rules: Vec<Rule>) -> Profile {
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
    fn actions_round_trip_through_ret_values() {
        for a in [
            Action::Allow,
            Action::Errno(1),
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Log,
            Action::UserNotify,
            Action::Trace(7),
        ] {
            assert_eq!(Action::from_ret(a.to_ret()), Some(a));
        }
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

    #[test]
    fn deny_action_and_deny_exec() {
        let p = profile(vec![
            Rule::new(["clone3"], Action::Errno(ENOSYS)),
            Rule::new(["ioctl"], Action::Errno(EPERM)),
        ])
        .with_deny_action(Action::KillProcess)
        .deny_exec();
        assert_eq!(p.default_action, Action::KillProcess);
        assert_eq!(p.rules[0].names, ["execve", "execveat"]);
        assert_eq!(p.rules[1].action, Action::Errno(ENOSYS));
        assert_eq!(p.rules[2].action, Action::KillProcess);
    }
}

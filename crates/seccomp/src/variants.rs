//! Profiles derived from a profile: the same rules with one more restriction, or with their
//! denials answered another way. Each takes the profile by value and returns it, so they
//! chain: `Profile::default_agent().deny_exec().with_log_denied()`.

use crate::action::{Action, ENOSYS, EPERM};
use crate::profile::{ArgCond, Profile, Rule};

impl Profile {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::profile;

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

//! From policy to enforcement: negotiate in the parent, restrict in the child.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use landlock::{
    AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr,
};

use crate::access::{
    file_rights, fs_names, fs_supported, fs_union, net_names, net_union, scope_names, NET_ABI,
    SCOPE_ABI, VETTED_ABI,
};
use crate::error::LandlockError;
use crate::policy::{Compat, Policy};
use crate::report::LandlockReport;
use crate::{probe, sys};

/// A policy checked against this kernel, with its paths ready for `open(2)`.
///
/// Built by [`Policy::compile`] in the parent; [`CompiledPolicy::restrict_self`] runs in
/// the process to restrict.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    compat: Compat,
    kernel_abi: u8,
    handled_fs: BitFlags<AccessFs>,
    handled_net: BitFlags<AccessNet>,
    scopes: BitFlags<landlock::Scope>,
    fs_rules: Vec<FsRuleData>,
    net_rules: Vec<(u16, BitFlags<AccessNet>)>,
    dropped: Vec<String>,
}

#[derive(Clone, Debug)]
struct FsRuleData {
    path: PathBuf,
    c_path: CString,
    access: BitFlags<AccessFs>,
    optional: bool,
}

impl Policy {
    /// Validate the policy and negotiate it with this kernel's Landlock ABI: fails when
    /// the kernel is below `min-abi`, or, in strict mode, when a right or scope would be
    /// dropped. Runs in the parent, before `clone`, so configuration errors never reach
    /// the child. Paths are not opened here: they name the sandbox's view.
    pub fn compile(&self) -> Result<CompiledPolicy, LandlockError> {
        self.compile_for_abi(probe().abi.unwrap_or(0))
    }

    /// [`Policy::compile`] then [`CompiledPolicy::restrict_self`]: restrict the calling
    /// thread (and its future children) in one call, for a program sandboxing itself.
    ///
    /// ```no_run
    /// use nucleus_landlock_policy::{FsAccess, FsRule, Policy};
    /// let mut policy = Policy::default();
    /// policy.fs.push(FsRule::new("/usr", [FsAccess::Read, FsAccess::Execute]));
    /// let report = policy.restrict_self()?;
    /// println!("landlock abi {}: {:?}", report.abi, report.status);
    /// # Ok::<(), nucleus_landlock_policy::LandlockError>(())
    /// ```
    pub fn restrict_self(&self) -> Result<LandlockReport, LandlockError> {
        self.compile()?.restrict_self()
    }

    pub(crate) fn compile_for_abi(&self, kernel_abi: u8) -> Result<CompiledPolicy, LandlockError> {
        self.validate()?;
        if let Some(required) = self.min_abi {
            if kernel_abi < required {
                return Err(LandlockError::AbiTooOld {
                    required,
                    kernel: kernel_abi,
                });
            }
        }
        let mut handled_fs = match &self.handle_fs {
            Some(list) => fs_union(list),
            None => fs_supported(VETTED_ABI),
        };
        let mut handled_net = net_union(&self.handle_net);
        let scopes = self
            .scopes
            .iter()
            .fold(BitFlags::EMPTY, |acc, s| acc | s.flags());

        let fs_rules = self.fs_rule_data()?;
        handled_fs |= fs_rules
            .iter()
            .fold(BitFlags::EMPTY, |acc, r| acc | r.access);
        let net_rules: Vec<_> = self
            .net
            .iter()
            .map(|r| (r.port, net_union(&r.access)))
            .collect();
        handled_net |= net_rules
            .iter()
            .fold(BitFlags::EMPTY, |acc, (_, a)| acc | *a);

        let dropped = dropped_names(kernel_abi, handled_fs, handled_net, scopes);
        if self.compat == Compat::Strict && !dropped.is_empty() {
            return Err(LandlockError::Unsupported {
                kernel_abi,
                dropped,
            });
        }
        Ok(CompiledPolicy {
            compat: self.compat,
            kernel_abi,
            handled_fs,
            handled_net,
            scopes,
            fs_rules,
            net_rules,
            dropped,
        })
    }
}

impl Policy {
    /// The filesystem rules with their rights as flags and their paths as C
    /// strings, ready for the child.
    fn fs_rule_data(&self) -> Result<Vec<FsRuleData>, LandlockError> {
        self.fs
            .iter()
            .map(|rule| {
                let c_path = CString::new(rule.path.as_os_str().as_bytes()).map_err(|_| {
                    LandlockError::NulInPath {
                        path: rule.path.clone(),
                    }
                })?;
                Ok(FsRuleData {
                    path: rule.path.clone(),
                    c_path,
                    access: fs_union(&rule.access),
                    optional: rule.optional,
                })
            })
            .collect()
    }
}

/// Names of the handled rights and scopes a kernel of ABI `abi` cannot enforce.
fn dropped_names(
    abi: u8,
    fs: BitFlags<AccessFs>,
    net: BitFlags<AccessNet>,
    scopes: BitFlags<landlock::Scope>,
) -> Vec<String> {
    let mut dropped: Vec<String> = fs_names(fs & !fs_supported(abi))
        .map(String::from)
        .collect();
    if abi < NET_ABI {
        dropped.extend(net_names(net).map(String::from));
    }
    if abi < SCOPE_ABI {
        dropped.extend(scope_names(scopes).map(String::from));
    }
    dropped
}

impl CompiledPolicy {
    /// Rights and scopes this kernel cannot enforce (empty in strict mode).
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// The kernel ABI the policy was negotiated with.
    pub fn kernel_abi(&self) -> u8 {
        self.kernel_abi
    }

    /// Enforce the policy on the calling thread and everything it later starts.
    ///
    /// In the sandbox child this runs after the filesystem view is built (`pivot_root`:
    /// rule paths name the new view, and tmpfs mounted there is covered), after the uid
    /// switch and capability drop, and before the seccomp filter (which may forbid the
    /// Landlock system calls); the init calls it before forking the workload so both live
    /// in the domain. Also sets `no_new_privs`, as Landlock requires without
    /// `CAP_SYS_ADMIN`.
    ///
    /// Each rule path is opened `O_PATH | O_CLOEXEC` and closed once its rule is added. A
    /// missing path (`ENOENT`, `ENOTDIR`) is skipped and reported when the rule is
    /// optional or the policy best-effort, and is an error otherwise. Allocates a little
    /// (the report); makes no other change to the process before the final
    /// `landlock_restrict_self(2)`.
    pub fn restrict_self(&self) -> Result<LandlockReport, LandlockError> {
        let created = self.create_ruleset()?;
        let mut skipped_paths = Vec::new();
        let created = self.add_fs_rules(created, &mut skipped_paths)?;
        let created = self.add_net_rules(created)?;
        let status = created
            .restrict_self()
            .map_err(|source| LandlockError::RestrictSelf { source })?;
        Ok(LandlockReport {
            abi: self.kernel_abi,
            status: status.ruleset.into(),
            dropped: self.dropped.clone(),
            skipped_paths,
        })
    }

    fn create_ruleset(&self) -> Result<RulesetCreated, LandlockError> {
        let level = match self.compat {
            Compat::Strict => CompatLevel::HardRequirement,
            Compat::BestEffort => CompatLevel::BestEffort,
        };
        let wrap = |source| LandlockError::CreateRuleset { source };
        let mut ruleset = Ruleset::default().set_compatibility(level);
        if !self.handled_fs.is_empty() {
            ruleset = ruleset.handle_access(self.handled_fs).map_err(wrap)?;
        }
        if !self.handled_net.is_empty() {
            ruleset = ruleset.handle_access(self.handled_net).map_err(wrap)?;
        }
        if !self.scopes.is_empty() {
            ruleset = ruleset.scope(self.scopes).map_err(wrap)?;
        }
        ruleset.create().map_err(wrap)
    }

    fn add_fs_rules(
        &self,
        mut created: RulesetCreated,
        skipped: &mut Vec<PathBuf>,
    ) -> Result<RulesetCreated, LandlockError> {
        for rule in &self.fs_rules {
            let fd = match sys::open_path(&rule.c_path) {
                Ok(fd) => fd,
                Err(source) if is_missing(&source) => {
                    if rule.optional || self.compat == Compat::BestEffort {
                        skipped.push(rule.path.clone());
                        continue;
                    }
                    return Err(LandlockError::MissingPath {
                        path: rule.path.clone(),
                        source,
                    });
                }
                Err(source) => {
                    return Err(LandlockError::OpenPath {
                        path: rule.path.clone(),
                        source,
                    })
                }
            };
            let file = File::from(fd);
            let is_dir = file
                .metadata()
                .map_err(|source| LandlockError::OpenPath {
                    path: rule.path.clone(),
                    source,
                })?
                .is_dir();
            // Directory-only rights mean nothing on a file, and the kernel refuses them.
            let access = if is_dir {
                rule.access
            } else {
                rule.access & file_rights()
            };
            if access.is_empty() {
                continue;
            }
            created = created
                .add_rule(PathBeneath::new(file, access))
                .map_err(|source| LandlockError::AddFsRule {
                    path: rule.path.clone(),
                    source,
                })?;
        }
        Ok(created)
    }

    fn add_net_rules(&self, mut created: RulesetCreated) -> Result<RulesetCreated, LandlockError> {
        for &(port, access) in &self.net_rules {
            created = created
                .add_rule(NetPort::new(port, access))
                .map_err(|source| LandlockError::AddNetRule { port, source })?;
        }
        Ok(created)
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DefaultOptions, FsAccess, FsRule, NetAccess, NetRule, Scope};

    fn strict_default() -> Policy {
        Policy::default_container(&DefaultOptions {
            compat: Compat::Strict,
            shared_network: true,
            ..DefaultOptions::default()
        })
    }

    #[test]
    fn strict_fails_on_old_kernels_naming_what_is_missing() {
        let p = strict_default();
        assert!(p.compile_for_abi(7).unwrap().dropped().is_empty());
        match p.compile_for_abi(5).unwrap_err() {
            LandlockError::Unsupported {
                kernel_abi,
                dropped,
            } => {
                assert_eq!(kernel_abi, 5);
                assert_eq!(dropped, vec!["abstract-unix-socket", "signal"]);
            }
            e => panic!("{e}"),
        }
        match p.compile_for_abi(2).unwrap_err() {
            LandlockError::Unsupported { dropped, .. } => assert_eq!(
                dropped,
                vec![
                    "truncate",
                    "ioctl-dev",
                    "bind-tcp",
                    "connect-tcp",
                    "abstract-unix-socket",
                    "signal"
                ]
            ),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn best_effort_reports_what_is_dropped() {
        let mut p = strict_default();
        p.compat = Compat::BestEffort;
        let c = p.compile_for_abi(3).unwrap();
        assert_eq!(
            c.dropped(),
            [
                "ioctl-dev",
                "bind-tcp",
                "connect-tcp",
                "abstract-unix-socket",
                "signal"
            ]
        );
        let c = p.compile_for_abi(0).unwrap();
        assert!(c.dropped().contains(&"read-file".to_string()));
    }

    #[test]
    fn min_abi_applies_in_both_modes() {
        let mut p = Policy {
            min_abi: Some(8),
            ..Policy::default()
        };
        for compat in [Compat::Strict, Compat::BestEffort] {
            p.compat = compat;
            match p.compile_for_abi(7).unwrap_err() {
                LandlockError::AbiTooOld { required, kernel } => {
                    assert_eq!((required, kernel), (8, 7));
                }
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn handled_sets() {
        let p = Policy {
            handle_fs: Some(vec![FsAccess::Write]),
            fs: vec![FsRule::new("/tmp", [FsAccess::Read])],
            net: vec![NetRule::new(80, [NetAccess::ConnectTcp])],
            scopes: vec![Scope::Signal],
            ..Policy::default()
        };
        let c = p.compile_for_abi(7).unwrap();
        assert_eq!(
            c.handled_fs,
            AccessFs::WriteFile | AccessFs::Truncate | AccessFs::ReadFile | AccessFs::ReadDir
        );
        assert_eq!(c.handled_net, AccessNet::ConnectTcp);
        assert_eq!(c.scopes, landlock::Scope::Signal);

        let c = Policy::default().compile_for_abi(7).unwrap();
        assert_eq!(c.handled_fs, fs_supported(VETTED_ABI));
        assert!(!c.handled_fs.contains(AccessFs::ResolveUnix));
        assert!(c.handled_net.is_empty());
    }
}

//! The Landlock settings of an Envelope and their translation into a
//! [`Policy`]: the default container policy, or a pinned policy file.

use crate::RunError;
use nucleus_landlock_policy::{
    Compat, CompiledPolicy, DefaultOptions, Exec, FsAccess, FsRule, Policy,
};
use nucleus_rootfs::{MountKind, RootfsPolicy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which Landlock policy a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LandlockMode {
    /// The default container policy, derived from the filesystem view.
    #[default]
    Default,
    /// No Landlock at all (explicit opt-out; the result says so).
    Off,
}

/// The Landlock part of an Envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LandlockSettings {
    /// Default policy or none; ignored when `policy_file` is set.
    pub mode: LandlockMode,
    /// A TOML policy file used instead of the default (`--landlock-policy`).
    pub policy_file: Option<PathBuf>,
    /// The SHA-256 the policy file must have (`--landlock-policy-sha256`).
    pub policy_sha256: Option<String>,
    /// For the default policy: `strict` fails unless every right is
    /// enforced; `best-effort` (default) lets the kernel's ABI decide and
    /// reports what was dropped. Landlock itself must exist either way.
    pub compat: Compat,
    /// Destinations of writable binds where executing is allowed (`--bind-exec`).
    pub exec_binds: Vec<PathBuf>,
    /// TCP ports the sandbox may connect to, with a shared network.
    pub allow_tcp_connect: Vec<u16>,
    /// TCP ports the sandbox may bind, with a shared network.
    pub allow_tcp_bind: Vec<u16>,
    /// UDP, with a shared network (`--allow-udp`). Landlock limits TCP to
    /// ports but cannot limit UDP, so while it limits TCP the seccomp filter
    /// denies UDP sockets (`EPERM`) unless this allows all of it.
    pub allow_udp: bool,
}

impl Default for LandlockSettings {
    fn default() -> Self {
        Self {
            mode: LandlockMode::Default,
            policy_file: None,
            policy_sha256: None,
            compat: Compat::BestEffort,
            exec_binds: Vec::new(),
            allow_tcp_connect: Vec::new(),
            allow_tcp_bind: Vec::new(),
            allow_udp: false,
        }
    }
}

impl LandlockSettings {
    /// The policy to enforce, or `None` when Landlock is off.
    pub(crate) fn policy(
        &self,
        rootfs: &RootfsPolicy,
        shared_network: bool,
    ) -> Result<Option<Policy>, RunError> {
        self.check_consistent(shared_network)?;
        if let Some(path) = &self.policy_file {
            return Ok(Some(Policy::from_file(
                path,
                self.policy_sha256.as_deref(),
            )?));
        }
        if self.policy_sha256.is_some() {
            return Err(RunError::PinWithoutFile {
                what: "--landlock-policy-sha256",
            });
        }
        if self.mode == LandlockMode::Off {
            return Ok(None);
        }
        let mut opts = DefaultOptions::default();
        for spec in &rootfs.mounts {
            let dst = spec.destination.clone();
            match spec.kind {
                MountKind::RoBind => opts.readonly_binds.push(dst),
                MountKind::Bind | MountKind::Tmpfs => {
                    let exec = if self.exec_binds.contains(&dst) {
                        Exec::Exec
                    } else {
                        Exec::NoExec
                    };
                    opts.writable_binds.push((dst, exec));
                }
            }
        }
        opts.shared_network = shared_network;
        opts.tcp_connect.clone_from(&self.allow_tcp_connect);
        opts.tcp_bind.clone_from(&self.allow_tcp_bind);
        opts.compat = self.compat;
        let mut policy = Policy::default_container(&opts);
        if matches!(rootfs.base, nucleus_rootfs::Base::Directory(_)) {
            // A directory given as the root is what the workload is meant to
            // see: all of it readable (the mount keeps it read-only); execute
            // stays limited to the usual program directories.
            policy.fs.push(FsRule::new("/", vec![FsAccess::Read]));
        }
        // Landlock must exist at all; what a newer ABI adds may be negotiated.
        policy.min_abi = Some(policy.min_abi.unwrap_or(1).max(1));
        Ok(Some(policy))
    }
}

impl LandlockSettings {
    /// Refuses settings that would be silently ignored.
    fn check_consistent(&self, shared_network: bool) -> Result<(), RunError> {
        let conflict = |what: &'static str| Err(RunError::LandlockConflict { what });
        let ports = !self.allow_tcp_connect.is_empty() || !self.allow_tcp_bind.is_empty();
        if self.policy_file.is_some() {
            if self.mode == LandlockMode::Off {
                return conflict("--landlock off and --landlock-policy");
            }
            if !self.exec_binds.is_empty() {
                return conflict(
                    "--bind-exec with --landlock-policy (grant execute in the policy file)",
                );
            }
            if ports {
                return conflict(
                    "--allow-tcp-* with --landlock-policy (add net rules to the policy file)",
                );
            }
        }
        if ports && !shared_network {
            return conflict("--allow-tcp-* without a shared network (only with --network host)");
        }
        if self.allow_udp && !shared_network {
            return conflict("--allow-udp without a shared network (only with --network host)");
        }
        Ok(())
    }
}

/// The compiled policy and what the child needs to name a failing rule.
pub(crate) struct PreparedLandlock {
    pub(crate) compiled: CompiledPolicy,
    pub(crate) rule_paths: Vec<PathBuf>,
}

impl PreparedLandlock {
    pub(crate) fn new(policy: &Policy) -> Result<PreparedLandlock, RunError> {
        Ok(PreparedLandlock {
            compiled: policy.compile()?,
            rule_paths: policy.fs.iter().map(|r| r.path.clone()).collect(),
        })
    }
}

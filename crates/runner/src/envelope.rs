//! The Envelope: the whole description of one sandbox, as plain data.

use crate::duration::opt_serde;
use crate::guard::{Lockdown, Runtime, TrustLevel};
use crate::landlock::LandlockSettings;
use crate::seccomp::SeccompSettings;
use crate::RunError;
use nucleus_caps::CapsPolicy;
use nucleus_idmap::{IdMapPolicy, UsernsMode};
use nucleus_ns::{Namespace, NamespaceSet};
use nucleus_rootfs::RootfsPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether the sandbox has its own network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// A new network namespace with only `lo`, brought up.
    #[default]
    None,
    /// The host's network; refused unless `allow_host_network` is set.
    Host,
}

/// The uid and gid the workload runs as, inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The uid inside.
    pub uid: u32,
    /// The gid inside.
    pub gid: u32,
}

impl std::str::FromStr for UserSpec {
    type Err = RunError;

    /// `UID[:GID]`; the gid defaults to the uid.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RunError::InvalidUser { text: s.to_owned() };
        let (uid, gid) = s.split_once(':').unwrap_or((s, s));
        Ok(Self {
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
        })
    }
}

/// Everything that describes one sandbox. Built by the CLI, read from a
/// `--config` TOML/JSON file, or built with [`Builder`](crate::Builder); printed by
/// `--print-config` so what ran can be audited and replayed.
///
/// ```
/// let env = nucleus_runner::Envelope::builder(["/bin/echo", "hi"])
///     .ro_bind("/usr/share", "/data")
///     .env("LANG", "C.UTF-8")
///     .timeout(std::time::Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert_eq!(env.command[0], "/bin/echo");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Envelope {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The namespaces to create.
    pub namespaces: NamespaceSet,
    /// The network mode.
    pub network: NetworkMode,
    /// The explicit consent that `network = "host"` needs.
    pub allow_host_network: bool,
    /// How ids map between the sandbox and the host.
    pub userns: IdMapPolicy,
    /// The workload's uid/gid inside (default: the map's default, root
    /// inside for rootless and root-remapped).
    pub user: Option<UserSpec>,
    /// The filesystem view.
    pub rootfs: RootfsPolicy,
    /// The working directory inside.
    pub workdir: PathBuf,
    /// The hostname inside (default `nucleus` when the UTS namespace is new).
    pub hostname: Option<String>,
    /// Give the workload `PATH`, `HOME`, `HOSTNAME` (and `TERM` on a
    /// terminal) before `env_keep` and `env` (default: yes; see
    /// [`Envelope::environment`]).
    pub default_env: bool,
    /// Environment variables set for the workload, over the defaults;
    /// nothing else of the host is passed.
    pub env: BTreeMap<String, String>,
    /// Names of host environment variables passed through.
    pub env_keep: Vec<String>,
    /// Wall-clock limit; the whole sandbox is killed when it runs out.
    #[serde(with = "opt_serde")]
    pub timeout: Option<Duration>,
    /// The capabilities the workload keeps (default: none).
    pub caps: CapsPolicy,
    /// The Landlock policy (default: the container policy).
    pub landlock: LandlockSettings,
    /// The seccomp filter (default: the agent profile).
    pub seccomp: SeccompSettings,
    /// cgroup limits (memory, cpus, pids, io); none by default.
    pub limits: nucleus_cgroup::Limits,
    /// Whether a limit that cannot be set fails the launch (default) or is
    /// reported as not applied.
    pub limit_mode: nucleus_cgroup::LimitMode,
    /// The cgroup under which the sandbox's cgroup is made, relative to the
    /// hierarchy's root (`--cgroup-parent /user.slice/.../sandboxes`): one
    /// delegated to the caller that holds no process itself (cgroup v2
    /// enables controllers only for the children of such a cgroup). Unset:
    /// the runner's own cgroup.
    pub cgroup_parent: Option<PathBuf>,
    /// Resource limits of the workload (default: no core dumps, sane nofile).
    pub rlimits: nucleus_cgroup::rlimit::RlimitPolicy,
    /// Limits of the sandbox's own user namespace, `/proc/sys/user/NAME`
    /// (`--ulimit-ns NAME=N`; default [`DEFAULT_USERNS_LIMITS`]): what it
    /// may take of kernel resources charged to its creator host-wide.
    pub userns_limits: BTreeMap<String, u64>,
    /// How far the workload is trusted (default: untrusted).
    pub trust_level: TrustLevel,
    /// Which runtime runs it (default: decided by the trust level).
    pub runtime: Runtime,
    /// Consent to run an untrusted workload natively when gVisor cannot be
    /// used; the result then says `degraded`.
    pub allow_degraded_security: bool,
    /// Refuse to start unless the kernel's lockdown is at least this.
    pub require_kernel_lockdown: Option<Lockdown>,
    /// gVisor settings.
    pub gvisor: GvisorSettings,
    /// Keep the workload's stdout and stderr, up to this many bytes each,
    /// for the result instead of passing them through (`--capture`).
    pub capture: Option<u64>,
    /// Run this WASI module instead of a program (`--wasm`); `command` holds
    /// its arguments.
    pub wasm: Option<crate::WasmSettings>,
}

/// The per-user-namespace limits a sandbox gets by default: inotify
/// instances and watches are charged to the namespace's creator (host root
/// for a root-run sandbox), whose own `inotify_init` would fail once a
/// sandbox took them all (the kernel's default is 128 instances per user).
pub const DEFAULT_USERNS_LIMITS: [(&str, u64); 2] =
    [("max_inotify_instances", 16), ("max_inotify_watches", 8192)];

/// Where `runsc` is and which platform it uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct GvisorSettings {
    /// The `runsc` binary (default: found on `PATH`).
    pub runsc: Option<PathBuf>,
    /// The gVisor platform (default: one this `runsc` supports, `ptrace` first).
    pub platform: Option<String>,
    /// Write runsc's debug logs into this directory (`--gvisor-debug-log`);
    /// it must be writable by the sandbox's mapped root id.
    pub debug_log: Option<PathBuf>,
}

impl GvisorSettings {
    /// Whether a `runsc` binary can be found (without running it).
    pub fn runsc_present(&self) -> bool {
        match &self.runsc {
            Some(path) => path.is_file(),
            None => std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("runsc").is_file())),
        }
    }
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            namespaces: NamespaceSet::default(),
            network: NetworkMode::None,
            allow_host_network: false,
            userns: IdMapPolicy::default(),
            user: None,
            rootfs: RootfsPolicy::default(),
            workdir: PathBuf::from("/"),
            hostname: None,
            default_env: true,
            env: BTreeMap::new(),
            env_keep: Vec::new(),
            timeout: None,
            caps: CapsPolicy::default(),
            landlock: LandlockSettings::default(),
            seccomp: SeccompSettings::default(),
            limits: nucleus_cgroup::Limits::default(),
            limit_mode: nucleus_cgroup::LimitMode::Required,
            cgroup_parent: None,
            rlimits: nucleus_cgroup::rlimit::RlimitPolicy::default(),
            userns_limits: DEFAULT_USERNS_LIMITS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            trust_level: TrustLevel::Untrusted,
            runtime: Runtime::Auto,
            allow_degraded_security: false,
            require_kernel_lockdown: None,
            gvisor: GvisorSettings::default(),
            capture: None,
            wasm: None,
        }
    }
}

impl Envelope {
    /// Where and how the sandbox's cgroup is made.
    pub(crate) fn cgroup_config(&self) -> nucleus_cgroup::CgroupConfig {
        nucleus_cgroup::CgroupConfig {
            mode: self.limit_mode,
            root: self.cgroup_parent.clone(),
            ..nucleus_cgroup::CgroupConfig::default()
        }
    }

    /// Reads an Envelope from a TOML or JSON file (by extension; `.json` is
    /// JSON, anything else TOML).
    pub fn from_file(path: &Path) -> Result<Envelope, RunError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_config(&text, path)
    }

    /// Parses the text of a config file as [`Envelope::from_file`] does once it
    /// read it: JSON when `path` ends in `.json`, TOML otherwise. `path` only
    /// chooses the format and names the file in the error.
    ///
    /// ```
    /// use nucleus_runner::Envelope;
    /// use std::path::Path;
    /// let env = Envelope::parse_config("command = [\"/bin/true\"]", Path::new("a.toml"))?;
    /// assert_eq!(env.command, ["/bin/true"]);
    /// assert!(Envelope::parse_config("command = 1", Path::new("a.json")).is_err());
    /// # Ok::<(), nucleus_runner::RunError>(())
    /// ```
    pub fn parse_config(text: &str, path: &Path) -> Result<Envelope, RunError> {
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| RunError::ParseConfig {
            path: path.to_owned(),
            message,
        })
    }

    /// The namespaces actually created: the set, with the network namespace
    /// following [`NetworkMode`] and the user namespace following the userns
    /// mode.
    pub fn effective_namespaces(&self) -> NamespaceSet {
        let mut set = self.namespaces;
        set = match self.network {
            NetworkMode::None => set.with(Namespace::Network),
            NetworkMode::Host => set.without(Namespace::Network),
        };
        if self.userns.mode == UsernsMode::Host {
            set = set.without(Namespace::User);
        }
        set
    }

    /// Runs the guards (trust level, runtime, host network, kernel
    /// lockdown) and returns the runtime decision. Step one of every launch.
    pub fn guard(&self) -> Result<crate::guard::Decision, RunError> {
        if let Some(required) = self.require_kernel_lockdown {
            crate::guard::require_lockdown(required, Path::new("/sys/kernel/security/lockdown"))?;
        }
        if self.wasm.is_some() {
            return self.guard_wasm();
        }
        let needs_runsc =
            !(self.trust_level == TrustLevel::Trusted && self.runtime != Runtime::Gvisor);
        crate::guard::decide(&crate::guard::GuardInput {
            trust: self.trust_level,
            runtime: self.runtime,
            runsc_present: needs_runsc && self.gvisor.runsc_present(),
            host_network: self.network == NetworkMode::Host,
            allow_host_network: self.allow_host_network,
            allow_degraded: self.allow_degraded_security,
        })
    }

    /// A WASI module runs inside wasmtime inside the native envelope: that
    /// pair stands in for gVisor, whatever the trust level. Host networking
    /// follows the same rules as for programs.
    fn guard_wasm(&self) -> Result<crate::guard::Decision, RunError> {
        if self.runtime == Runtime::Gvisor {
            return Err(RunError::NotUnderGvisor {
                what: "--wasm (the module runs in wasmtime inside the native envelope)",
            });
        }
        if self.network == NetworkMode::Host {
            if !self.allow_host_network {
                return Err(RunError::HostNetworkRefused);
            }
            if self.trust_level == TrustLevel::Untrusted {
                return Err(RunError::UntrustedHostNetwork);
            }
        }
        Ok(crate::guard::Decision::Native)
    }

    /// Checks the Envelope, before anything is created.
    pub fn validate(&self) -> Result<(), RunError> {
        let no_program = self.command.is_empty() || self.command[0].is_empty();
        if no_program && self.wasm.is_none() {
            return Err(RunError::NoCommand);
        }
        if self.network == NetworkMode::None && !self.namespaces.contains(Namespace::Network) {
            return Err(RunError::NetworkNamespaceRequired);
        }
        let ns = self.effective_namespaces();
        if !ns.contains(Namespace::Mount) && self.rootfs != RootfsPolicy::default() {
            return Err(RunError::MountNamespaceRequired);
        }
        if let Some(name) = &self.hostname {
            nucleus_ns::validate_hostname(name)?;
            if !ns.contains(Namespace::Uts) {
                return Err(RunError::UtsNamespaceRequired);
            }
        }
        if !self.workdir.is_absolute() {
            return Err(RunError::RelativeWorkdir {
                path: self.workdir.clone(),
            });
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(RunError::InvalidEnv { name: key.clone() });
            }
        }
        if self.timeout.is_some() && !ns.contains(Namespace::Pid) && self.limits.is_empty() {
            // Killing is total only through a PID namespace or a cgroup.
            return Err(RunError::TimeoutNeedsContainment);
        }
        for name in self.userns_limits.keys() {
            let known = !name.is_empty()
                && !name.contains('/')
                && Path::new("/proc/sys/user").join(name).is_file();
            if !known {
                return Err(RunError::UnknownUsernsLimit { name: name.clone() });
            }
        }
        self.rootfs.validate()?;
        self.limits.validate()?;
        // The cgroup parent is checked even when no limit would use it.
        self.cgroup_config().validate()?;
        self.rlimits.validate()?;
        self.caps.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_network_needs_consent_and_trust() {
        let trusted = || {
            Envelope::builder(["true"])
                .host_network()
                .trust_level(TrustLevel::Trusted)
        };
        let env = trusted().build().unwrap();
        assert!(matches!(env.guard(), Err(RunError::HostNetworkRefused)));
        let env = Envelope::builder(["true"])
            .host_network()
            .allow_host_network()
            .build()
            .unwrap();
        assert!(matches!(env.guard(), Err(RunError::UntrustedHostNetwork)));
        let env = trusted().allow_host_network().build().unwrap();
        assert_eq!(env.guard().unwrap(), crate::guard::Decision::Native);
    }

    #[test]
    fn toml_round_trip() {
        let env = Envelope::builder(["/bin/sh", "-c", "echo hi"])
            .ro_bind("/usr", "/opt/usr")
            .env("A", "1")
            .timeout(Duration::from_millis(1500))
            .build()
            .unwrap();
        let text = toml::to_string(&env).unwrap();
        let back: Envelope = toml::from_str(&text).unwrap();
        assert_eq!(back, env);
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        assert!(toml::from_str::<Envelope>("commandd = [\"x\"]").is_err());
    }

    #[test]
    fn user_spec_parsing() {
        assert_eq!(
            "5:6".parse::<UserSpec>().unwrap(),
            UserSpec { uid: 5, gid: 6 }
        );
        assert_eq!(
            "7".parse::<UserSpec>().unwrap(),
            UserSpec { uid: 7, gid: 7 }
        );
        assert!("x".parse::<UserSpec>().is_err());
    }

    #[test]
    fn empty_command_is_refused() {
        assert!(matches!(
            Envelope::default().validate(),
            Err(RunError::NoCommand)
        ));
    }
}

//! [`Builder`]: an [`Envelope`] built from Rust, validated by `build`.

use crate::guard::{Runtime, TrustLevel};
use crate::{Envelope, LandlockSettings, NetworkMode, RunError, SeccompSettings, UserSpec};
use nucleus_caps::CapsPolicy;
use nucleus_idmap::UsernsMode;
use nucleus_ns::NamespaceSet;
use nucleus_rootfs::MountSpec;
use std::path::PathBuf;
use std::time::Duration;

impl Envelope {
    /// Starts a [`Builder`] for `command`.
    pub fn builder<I, S>(command: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Builder {
            env: Envelope {
                command: command.into_iter().map(Into::into).collect(),
                ..Envelope::default()
            },
        }
    }
}

/// Builds an [`Envelope`] from Rust; [`Builder::build`] validates it.
#[derive(Debug, Clone)]
pub struct Builder {
    env: Envelope,
}

impl Builder {
    /// The namespaces to create.
    pub fn namespaces(mut self, set: NamespaceSet) -> Self {
        self.env.namespaces = set;
        self
    }

    /// Shares the host network (needs [`Builder::allow_host_network`]).
    pub fn host_network(mut self) -> Self {
        self.env.network = NetworkMode::Host;
        self
    }

    /// Consents to host networking.
    pub fn allow_host_network(mut self) -> Self {
        self.env.allow_host_network = true;
        self
    }

    /// The user-namespace mode.
    pub fn userns(mut self, mode: UsernsMode) -> Self {
        self.env.userns.mode = mode;
        self
    }

    /// The uid/gid inside.
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.env.user = Some(UserSpec { uid, gid });
        self
    }

    /// A writable bind of a host path.
    pub fn bind(self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Self {
        self.mount(
            nucleus_rootfs::MountKind::Bind,
            Some(src.into()),
            dst.into(),
        )
    }

    /// A read-only bind of a host path.
    pub fn ro_bind(self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Self {
        self.mount(
            nucleus_rootfs::MountKind::RoBind,
            Some(src.into()),
            dst.into(),
        )
    }

    /// A tmpfs at `dst`.
    pub fn tmpfs(self, dst: impl Into<PathBuf>) -> Self {
        self.mount(nucleus_rootfs::MountKind::Tmpfs, None, dst.into())
    }

    fn mount(
        mut self,
        kind: nucleus_rootfs::MountKind,
        source: Option<PathBuf>,
        destination: PathBuf,
    ) -> Self {
        self.env.rootfs.mounts.push(MountSpec {
            kind,
            source,
            destination,
            exec: false,
        });
        self
    }

    /// The working directory inside.
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.env.workdir = dir.into();
        self
    }

    /// The hostname inside.
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.env.hostname = Some(name.into());
        self
    }

    /// Sets an environment variable for the workload.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.env.insert(key.into(), value.into());
        self
    }

    /// The wall-clock limit.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.env.timeout = Some(limit);
        self
    }

    /// The Landlock settings.
    pub fn landlock(mut self, settings: LandlockSettings) -> Self {
        self.env.landlock = settings;
        self
    }

    /// The seccomp settings.
    pub fn seccomp(mut self, settings: SeccompSettings) -> Self {
        self.env.seccomp = settings;
        self
    }

    /// cgroup limits.
    pub fn limits(mut self, limits: nucleus_cgroup::Limits) -> Self {
        self.env.limits = limits;
        self
    }

    /// The trust level.
    pub fn trust_level(mut self, level: TrustLevel) -> Self {
        self.env.trust_level = level;
        self
    }

    /// The runtime.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.env.runtime = runtime;
        self
    }

    /// Consent to run an untrusted workload natively when gVisor is missing.
    pub fn allow_degraded_security(mut self) -> Self {
        self.env.allow_degraded_security = true;
        self
    }

    /// The capability policy.
    pub fn caps(mut self, caps: CapsPolicy) -> Self {
        self.env.caps = caps;
        self
    }

    /// Validates and returns the Envelope.
    pub fn build(self) -> Result<Envelope, RunError> {
        self.env.validate()?;
        Ok(self.env)
    }
}

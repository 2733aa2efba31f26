//! The default policy of a nucleus container.

use std::path::PathBuf;

use nucleus_rootfs::{HOST_CONFIG_DIR, HOST_SYSTEM_DIRS};
use serde::{Deserialize, Serialize};

use crate::access::{FsAccess, NetAccess, Scope};
use crate::policy::{Compat, FsRule, NetRule, Policy};

/// Whether a writable bind may also run programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Exec {
    /// Read and write, no `execve(2)`: a program cannot drop a binary and run it.
    #[default]
    NoExec,
    /// Read, write and execute (`--bind-exec`).
    Exec,
}

/// What the default container policy needs to know about the sandbox.
///
/// ```
/// use nucleus_landlock_policy::{DefaultOptions, Exec};
/// let mut opts = DefaultOptions::default();
/// opts.writable_binds.push(("/work".into(), Exec::NoExec));
/// opts.shared_network = true;
/// opts.tcp_connect.push(443);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct DefaultOptions {
    /// Writable binds, by their path inside the sandbox: read, write, create, remove,
    /// refer; execute only with [`Exec::Exec`].
    pub writable_binds: Vec<(PathBuf, Exec)>,
    /// Read-only binds, by their path inside the sandbox: read and execute (nothing there
    /// can be written, so nothing can be dropped there to run).
    pub readonly_binds: Vec<PathBuf>,
    /// The sandbox shares the host's network namespace: TCP bind and connect are then
    /// denied except on the ports below.
    pub shared_network: bool,
    /// Ports the sandbox may connect to (`--allow-tcp-connect`), with a shared network.
    pub tcp_connect: Vec<u16>,
    /// Ports the sandbox may bind (`--allow-tcp-bind`), with a shared network.
    pub tcp_bind: Vec<u16>,
    /// Strict or best-effort.
    pub compat: Compat,
    /// More paths to read and execute (a toolchain mounted somewhere unusual).
    pub extra_exec: Vec<PathBuf>,
}

/// Character devices of the minimal `/dev` that programs write to.
const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
];

impl Policy {
    /// The policy of a nucleus container, for the filesystem view the runner builds.
    ///
    /// | path | rights |
    /// |---|---|
    /// | `/` | `read-dir` only: any directory in the view can be listed, no file read |
    /// | `/usr`, `/bin`, `/sbin` | read, execute |
    /// | `/lib`, `/lib32`, `/lib64`, `/libx32` | read, execute |
    /// | `/etc`, `/proc` | read |
    /// | `/dev` | read, `ioctl-dev` (terminals) |
    /// | `/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `ptmx` | + `write-file` |
    /// | `/dev/pts` | + `write-file` |
    /// | `/tmp`, `/dev/shm` | read, write, create, remove, refer; no execute |
    /// | writable binds | same as `/tmp`; + execute with [`Exec::Exec`] |
    /// | read-only binds, `extra_exec` | read, execute |
    ///
    /// Scopes: abstract unix sockets and signals stay inside the sandbox. TCP is handled
    /// only with [`DefaultOptions::shared_network`]: then bind and connect are denied except
    /// on the ports listed. All system paths are `optional` (a view without `/lib32` or
    /// `/sbin` must not fail a strict launch); `/` and the binds are not.
    ///
    /// Landlock does not restrict walking a path, so `/` needs no right for `/usr/bin/env`
    /// to be reached; `read-dir` there lets `ls /` and `getcwd`-style directory listings
    /// work without letting any file outside the rules be read. The library directories
    /// get `execute` because the kernel opens the ELF interpreter (`ld.so`) for execution.
    /// `/dev` itself cannot be written into: only the listed devices take `write-file`,
    /// and no rule there grants a `make-*` right.
    ///
    /// ```
    /// use nucleus_landlock_policy::{DefaultOptions, Policy};
    /// let policy = Policy::default_container(&DefaultOptions::default());
    /// assert!(policy.net.is_empty() && policy.handle_net.is_empty());
    /// assert_eq!(policy.scopes.len(), 2);
    /// ```
    pub fn default_container(opts: &DefaultOptions) -> Policy {
        use FsAccess::{Create, Execute, IoctlDev, Read, ReadDir, Refer, Remove, Write, WriteFile};
        let scratch = [Read, Write, Create, Remove, Refer];
        let mut fs = vec![FsRule::new("/", [ReadDir])];
        // The host's system directories, as the view shows them: programs and
        // libraries are read and run, configuration only read.
        for dir in HOST_SYSTEM_DIRS {
            let rule = match dir == HOST_CONFIG_DIR {
                true => FsRule::new(dir, [Read]),
                false => FsRule::new(dir, [Read, Execute]),
            };
            fs.push(rule.optional());
        }
        fs.push(FsRule::new("/proc", [Read]).optional());
        fs.push(FsRule::new("/dev", [Read, IoctlDev]).optional());
        for dev in WRITABLE_DEVICES.iter().chain(&["/dev/pts"]) {
            fs.push(FsRule::new(*dev, [WriteFile]).optional());
        }
        for dir in ["/tmp", "/dev/shm"] {
            fs.push(FsRule::new(dir, scratch).optional());
        }
        for (path, exec) in &opts.writable_binds {
            let mut rule = FsRule::new(path.clone(), scratch);
            if *exec == Exec::Exec {
                rule.access.push(Execute);
            }
            fs.push(rule);
        }
        for path in opts.readonly_binds.iter().chain(&opts.extra_exec) {
            fs.push(FsRule::new(path.clone(), [Read, Execute]));
        }

        let (handle_net, net) = if opts.shared_network {
            let mut net: Vec<NetRule> = Vec::new();
            add_ports(&mut net, &opts.tcp_connect, NetAccess::ConnectTcp);
            add_ports(&mut net, &opts.tcp_bind, NetAccess::BindTcp);
            (vec![NetAccess::BindTcp, NetAccess::ConnectTcp], net)
        } else {
            (Vec::new(), Vec::new())
        };

        Policy {
            compat: opts.compat,
            scopes: vec![Scope::AbstractUnixSocket, Scope::Signal],
            handle_net,
            fs,
            net,
            ..Policy::default()
        }
    }
}

/// Add `access` on each port, merging with a rule already there for the port.
fn add_ports(net: &mut Vec<NetRule>, ports: &[u16], access: NetAccess) {
    for &port in ports {
        match net.iter_mut().find(|r| r.port == port) {
            Some(rule) if rule.access.contains(&access) => {}
            Some(rule) => rule.access.push(access),
            None => net.push(NetRule::new(port, [access])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::fs_union;
    use landlock::AccessFs;

    fn rule<'a>(p: &'a Policy, path: &str) -> &'a FsRule {
        p.fs.iter()
            .find(|r| r.path == std::path::Path::new(path))
            .unwrap_or_else(|| panic!("no rule for {path}"))
    }

    #[test]
    fn system_paths() {
        let p = Policy::default_container(&DefaultOptions::default());
        p.validate().unwrap();
        assert_eq!(fs_union(&rule(&p, "/").access), AccessFs::ReadDir);
        assert!(!rule(&p, "/").optional);
        for dir in ["/usr", "/bin", "/sbin", "/lib64"] {
            let r = rule(&p, dir);
            assert!(r.optional);
            assert_eq!(
                fs_union(&r.access),
                AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute
            );
        }
        for dir in ["/etc", "/proc"] {
            assert_eq!(
                fs_union(&rule(&p, dir).access),
                AccessFs::ReadFile | AccessFs::ReadDir
            );
        }
        let dev = fs_union(&rule(&p, "/dev").access);
        assert!(dev.contains(AccessFs::IoctlDev));
        assert!(!dev.intersects(fs_union(&[FsAccess::Create]) | AccessFs::WriteFile));
        assert_eq!(fs_union(&rule(&p, "/dev/null").access), AccessFs::WriteFile);
        for dir in ["/tmp", "/dev/shm"] {
            let a = fs_union(&rule(&p, dir).access);
            assert!(a.contains(AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile));
            assert!(!a.contains(AccessFs::Execute));
        }
        assert!(p.net.is_empty() && p.handle_net.is_empty());
        assert_eq!(p.scopes, vec![Scope::AbstractUnixSocket, Scope::Signal]);
        assert_eq!(p.compat, Compat::BestEffort);
        assert!(p.handle_fs.is_none());
    }

    #[test]
    fn binds_and_exec() {
        let opts = DefaultOptions {
            writable_binds: vec![("/work".into(), Exec::NoExec), ("/out".into(), Exec::Exec)],
            readonly_binds: vec!["/src".into()],
            extra_exec: vec!["/opt/tool".into()],
            compat: Compat::Strict,
            ..DefaultOptions::default()
        };
        let p = Policy::default_container(&opts);
        assert_eq!(p.compat, Compat::Strict);
        let work = rule(&p, "/work");
        assert!(!work.optional);
        assert!(!fs_union(&work.access).contains(AccessFs::Execute));
        assert!(fs_union(&work.access).contains(AccessFs::WriteFile | AccessFs::Refer));
        assert!(fs_union(&rule(&p, "/out").access).contains(AccessFs::Execute));
        for path in ["/src", "/opt/tool"] {
            let a = fs_union(&rule(&p, path).access);
            assert_eq!(
                a,
                AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute
            );
        }
    }

    #[test]
    fn network_rules_only_when_shared() {
        let mut opts = DefaultOptions {
            tcp_connect: vec![443],
            ..DefaultOptions::default()
        };
        let p = Policy::default_container(&opts);
        assert!(p.net.is_empty() && p.handle_net.is_empty());

        opts.shared_network = true;
        opts.tcp_connect = vec![443, 80];
        opts.tcp_bind = vec![8080, 443];
        let p = Policy::default_container(&opts);
        assert_eq!(
            p.handle_net,
            vec![NetAccess::BindTcp, NetAccess::ConnectTcp]
        );
        assert_eq!(
            p.net,
            vec![
                NetRule::new(443, [NetAccess::ConnectTcp, NetAccess::BindTcp]),
                NetRule::new(80, [NetAccess::ConnectTcp]),
                NetRule::new(8080, [NetAccess::BindTcp]),
            ]
        );

        opts.tcp_connect.clear();
        opts.tcp_bind.clear();
        let p = Policy::default_container(&opts);
        assert!(p.net.is_empty());
        assert_eq!(
            p.handle_net.len(),
            2,
            "shared network with no port: deny all tcp"
        );
    }
}

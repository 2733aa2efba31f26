//! Parent, before clone: everything the child needs, prepared and checked,
//! so the child only makes system calls.

pub(crate) use crate::outcome::MemfdNoexec;
use crate::{Envelope, RunError};
use nucleus_caps::CompiledCaps;
use nucleus_idmap::{Caller, ResolvedMaps, SubIdPaths};
use nucleus_ns::{Namespace, NamespaceSet};
use nucleus_rootfs::{MountPlan, RootfsPolicy};
use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

use crate::environ::{DEFAULT_HOSTNAME, DEFAULT_PATH};

/// The command line and environment as C strings, plus the pointer arrays
/// `execve(2)` takes. The pointers point into the CStrings held alongside.
pub(crate) struct ExecPlan {
    /// Full paths to try in order (the `PATH` search, done in the sandbox view).
    pub(crate) candidates: Vec<CString>,
    /// The `PATH` the candidates were searched in.
    path: String,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const libc::c_char>,
    pub(crate) envp_ptrs: Vec<*const libc::c_char>,
}

/// Everything the sandbox child uses, prepared in the parent.
pub(crate) struct Prepared {
    pub(crate) namespaces: NamespaceSet,
    pub(crate) maps: Option<ResolvedMaps>,
    pub(crate) plan: Option<MountPlan>,
    pub(crate) workdir: CString,
    pub(crate) hostname: Option<CString>,
    pub(crate) loopback: bool,
    /// The runner joined a network namespace made ahead (a launch server's
    /// pool, lo up): the clone makes none.
    pub(crate) pooled_netns: bool,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) set_groups: bool,
    pub(crate) setup_as_root: bool,
    pub(crate) caps: CompiledCaps,
    pub(crate) keep_caps: bool,
    pub(crate) landlock: Option<crate::landlock::PreparedLandlock>,
    pub(crate) seccomp: Option<nucleus_seccomp::CompiledFilter>,
    pub(crate) seccomp_listener: bool,
    pub(crate) rlimit_policy: nucleus_cgroup::rlimit::RlimitPolicy,
    pub(crate) rlimits: Vec<nucleus_cgroup::rlimit::Rlimit>,
    pub(crate) workload: Workload,
    /// `dup2(from, to)` pairs for the init's stdio (pipes the runner
    /// relays), done before stray fds are closed.
    pub(crate) stdio_dups: Vec<(RawFd, RawFd)>,
    /// Of the dup targets, the one holding the sandbox's own terminal
    /// (`console.rs`), which the init makes the session's controlling
    /// terminal.
    pub(crate) ctty: Option<RawFd>,
    /// How fileless execution is closed.
    pub(crate) memfd_noexec: MemfdNoexec,
    /// Of stdin, stdout and stderr, those the runner found closed (held by
    /// `/dev/null` meanwhile): the workload gets them closed again.
    pub(crate) closed_stdio: Vec<RawFd>,
    /// What the init runs to deliver a signal the runner sends it, for a
    /// runtime whose own tool must deliver it (`runsc kill ID SIG`: runsc
    /// run forwards no signal, and its kernel raises no `SIGPIPE`);
    /// natively the init forwards signals as they come.
    pub(crate) signal_tool: Vec<(libc::c_int, ExecPlan)>,
    /// `/proc/sys/user/NAME` files and values the init writes for its own
    /// user namespace, while it still has every capability there.
    pub(crate) userns_limits: Vec<(CString, CString)>,
    /// The plan's detached bind sources are idmapped through the child's
    /// user namespace once its maps exist (root caller, `bind_mode =
    /// "idmap"`, a map that does not keep host root).
    pub(crate) idmap_binds: bool,
    /// The init sends a `Step` record at the end of each stage (when the
    /// runner logs at debug level): the parent logs the child's steps.
    pub(crate) step_times: bool,
    /// The init holds the sandbox for a session's commands instead of
    /// forking a workload (`session.rs`).
    pub(crate) hold: bool,
    /// The init of a spare takes its command here before it forks the
    /// workload (`spare.rs`).
    pub(crate) spare: Option<crate::slot::Slot>,
}

/// What the init's forked workload becomes.
pub(crate) enum Workload {
    /// A program, executed.
    Exec(ExecPlan),
    /// A WASI module, run in the workload process itself.
    Wasm(nucleus_wasm::PreparedWasm),
}

impl Prepared {
    /// The prepared module, when the workload is one.
    pub(crate) fn wasm(&self) -> Option<&nucleus_wasm::PreparedWasm> {
        match &self.workload {
            Workload::Wasm(w) => Some(w),
            Workload::Exec(_) => None,
        }
    }
}

pub(crate) fn cstring(s: impl Into<Vec<u8>>) -> Result<CString, RunError> {
    let bytes = s.into();
    CString::new(bytes.clone()).map_err(|_| RunError::NulByte {
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The compiled mount plan, when the sandbox has a mount namespace.
fn mount_plan(
    env: &Envelope,
    view: &RootfsPolicy,
    namespaces: NamespaceSet,
    caller: &Caller,
) -> Result<Option<MountPlan>, RunError> {
    if !namespaces.contains(Namespace::Mount) {
        return Ok(None);
    }
    let mut rootfs = view.clone();
    rootfs.fresh_proc &= namespaces.contains(Namespace::Pid);
    for m in &mut rootfs.mounts {
        m.exec |= env.landlock.exec_binds.contains(&m.destination);
    }
    // Root opens the bind sources itself, with root's rights; a rootless
    // caller's own id is the sandbox's root anyway.
    Ok(Some(if caller.uid == 0 {
        rootfs.compile_detached()?
    } else {
        rootfs.compile()?
    }))
}

/// The hostname to set: the Envelope's, else the default in a new UTS namespace.
fn hostname(env: &Envelope, namespaces: NamespaceSet) -> Result<Option<CString>, RunError> {
    Ok(match (&env.hostname, namespaces.contains(Namespace::Uts)) {
        (Some(name), _) => Some(cstring(name.as_str())?),
        (None, true) => Some(cstring(DEFAULT_HOSTNAME)?),
        (None, false) => None,
    })
}

/// The `/proc/sys/user` files and values the init writes in its own user namespace.
fn userns_limits(
    env: &Envelope,
    namespaces: NamespaceSet,
) -> Result<Vec<(CString, CString)>, RunError> {
    if !namespaces.contains(Namespace::User) {
        return Ok(Vec::new());
    }
    env.userns_limits
        .iter()
        .map(|(k, v)| {
            Ok((
                cstring(format!("/proc/sys/user/{k}"))?,
                cstring(v.to_string())?,
            ))
        })
        .collect()
}

impl Prepared {
    /// Checks the (validated) Envelope against this host and prepares the
    /// launch.
    pub(crate) fn new(env: &Envelope) -> Result<Prepared, RunError> {
        // First: the module, its imports and the preopens are what a wasm
        // user gets wrong, and the messages name them.
        let wasm = tracing::debug_span!("wasm")
            .in_scope(|| env.wasm.as_ref().map(|w| w.prepare(env)).transpose())?;
        let namespaces = env.effective_namespaces();
        let caller = Caller::current();
        let maps = match namespaces.contains(Namespace::User) {
            true => tracing::debug_span!("ids").in_scope(|| {
                env.userns
                    .resolve_leased(&caller, &SubIdPaths::default(), &Default::default())
            })?,
            false => None,
        };
        if maps.is_none() && caller.uid != 0 {
            return Err(RunError::HostUsernsNeedsRoot);
        }
        let (uid, gid) = workload_ids(env, maps.as_ref(), &caller)?;
        // A wasm host sees no host system directories, only its preopens.
        let mut view = match &env.wasm {
            Some(wasm) => wasm.rootfs(&env.rootfs),
            None => env.rootfs.clone(),
        };
        // The runner's own state is never shown through a bind (state.rs).
        view.hidden_dirs = crate::state::hidden_dirs(env, &view)?;
        let plan = tracing::debug_span!("view")
            .in_scope(|| mount_plan(env, &view, namespaces, &caller))?;
        let idmap_binds = idmaps_binds(&view, plan.as_ref(), maps.as_ref());
        let writes_as_root = idmap_binds
            && plan
                .as_ref()
                .is_some_and(|p| p.detached_trees().any(|(_, writable)| writable));
        let hostname = hostname(env, namespaces)?;
        let caps = env.caps.compile()?;
        let memfd_noexec = memfd_noexec(&caller, &namespaces, env.seccomp.mode_is_on());
        let shared_network = !namespaces.contains(Namespace::Network);
        let policy = env.landlock.policy(&view, shared_network)?;
        let deny_udp = udp_denied(env, shared_network, policy.as_ref())?;
        let landlock = tracing::debug_span!("landlock").in_scope(|| {
            policy
                .map(|policy| crate::landlock::PreparedLandlock::new(&policy))
                .transpose()
        })?;
        Ok(Prepared {
            namespaces,
            set_groups: maps.as_ref().is_none_or(|m| !m.deny_setgroups),
            setup_as_root: maps
                .as_ref()
                .is_some_and(|m| m.maps_uid(0) && m.maps_gid(0)),
            maps,
            plan,
            workdir: cstring(env.workdir.as_os_str().as_bytes())?,
            hostname,
            loopback: namespaces.contains(Namespace::Network),
            pooled_netns: false,
            uid,
            gid,
            keep_caps: uid != 0,
            caps,
            landlock,
            seccomp: tracing::debug_span!("seccomp").in_scope(|| {
                env.seccomp.compile(
                    env.caps.keep.iter().map(ToString::to_string).collect(),
                    crate::seccomp::Extra {
                        no_exec: env.wasm.is_some(),
                        deny_memfd_exec: memfd_noexec == MemfdNoexec::Seccomp,
                        deny_privileged_files: writes_as_root,
                        deny_udp,
                    },
                )
            })?,
            seccomp_listener: false,
            rlimit_policy: env.rlimits.clone(),
            rlimits: env.rlimits.effective()?,
            workload: match wasm {
                Some(w) => Workload::Wasm(w),
                None => Workload::Exec(ExecPlan::new(env, uid)?),
            },
            stdio_dups: Vec::new(),
            ctty: None,
            memfd_noexec,
            closed_stdio: Vec::new(),
            signal_tool: Vec::new(),
            userns_limits: userns_limits(env, namespaces)?,
            idmap_binds,
            step_times: false,
            hold: false,
            spare: None,
        })
    }

    /// The envelope of a runtime that builds the sandbox itself (`runsc`):
    /// the Envelope's user namespace (so the runtime has no host
    /// privilege: host files are reached with the mapped ids' rights, and
    /// files it creates land as them), new mount, PID, IPC and UTS
    /// namespaces (and network, unless host), the host's root with a fresh
    /// `/proc`, root inside with every capability of the new namespace
    /// (runsc needs them to build its own sandbox), `no_new_privs`, and
    /// `argv` as the program the init starts, with an empty environment.
    pub(crate) fn for_runtime(
        env: &Envelope,
        maps: Option<ResolvedMaps>,
        argv: &[OsString],
        view: MountPlan,
    ) -> Result<Prepared, RunError> {
        let mut namespaces = NamespaceSet::from_iter([
            Namespace::Mount,
            Namespace::Pid,
            Namespace::Ipc,
            Namespace::Uts,
        ]);
        if maps.is_some() {
            namespaces = namespaces.with(Namespace::User);
        }
        if env.network == crate::NetworkMode::None {
            namespaces = namespaces.with(Namespace::Network);
        }
        let all = nucleus_caps::CapsPolicy {
            keep: nucleus_caps::Capability::ALL
                .into_iter()
                .filter(|c| c.index() <= nucleus_caps::last_cap())
                .collect(),
            allow_namespace_caps: true,
            ..nucleus_caps::CapsPolicy::default()
        };
        Ok(Prepared {
            set_groups: maps.as_ref().is_none_or(|m| !m.deny_setgroups),
            setup_as_root: maps
                .as_ref()
                .is_some_and(|m| m.maps_uid(0) && m.maps_gid(0)),
            maps,
            namespaces,
            plan: Some(view),
            workdir: cstring("/")?,
            hostname: None,
            loopback: namespaces.contains(Namespace::Network),
            pooled_netns: false,
            uid: 0,
            gid: 0,
            caps: all.compile()?,
            keep_caps: false,
            landlock: None,
            seccomp: None,
            seccomp_listener: false,
            rlimit_policy: nucleus_cgroup::rlimit::RlimitPolicy::none(),
            rlimits: env.rlimits.effective()?,
            workload: Workload::Exec(ExecPlan::program(argv)?),
            stdio_dups: Vec::new(),
            ctty: None,
            memfd_noexec: MemfdNoexec::Off,
            closed_stdio: Vec::new(),
            signal_tool: Vec::new(),
            // runsc's own sandbox makes user namespaces and has its own
            // kernel for the workload's inotify.
            userns_limits: Vec::new(),
            idmap_binds: false,
            step_times: false,
            hold: false,
            spare: None,
        })
    }
}

/// Whether detached binds get idmapped: `idmap` mode, trees opened by the
/// (root) parent, and a user namespace whose root is not host root.
fn idmaps_binds(
    view: &nucleus_rootfs::RootfsPolicy,
    plan: Option<&MountPlan>,
    maps: Option<&ResolvedMaps>,
) -> bool {
    let has_trees = plan.is_some_and(|p| p.detached_trees().next().is_some());
    has_trees && idmap_wanted(view, maps)
}

/// Whether binds are idmapped, both runtimes: `idmap` mode and a map whose
/// root is not host root.
pub(crate) fn idmap_wanted(
    view: &nucleus_rootfs::RootfsPolicy,
    maps: Option<&ResolvedMaps>,
) -> bool {
    view.bind_mode == nucleus_rootfs::BindMode::Idmap
        && maps.is_some_and(|m| m.uid.iter().all(|l| l.to_outside(0) != Some(0)))
}

/// Whether UDP must be denied: Landlock limits TCP on the shared network,
/// cannot limit UDP, and UDP was not allowed. Without a seccomp filter to
/// deny it, the launch fails rather than leave UDP open.
fn udp_denied(
    env: &Envelope,
    shared_network: bool,
    policy: Option<&nucleus_landlock_policy::Policy>,
) -> Result<bool, RunError> {
    let limits_tcp = policy.is_some_and(|p| !p.handle_net.is_empty() || !p.net.is_empty());
    let deny = shared_network && limits_tcp && !env.landlock.allow_udp;
    if deny && !env.seccomp.mode_is_on() {
        return Err(RunError::SeccompConflict {
            what: "--seccomp off with Landlock's TCP rules: UDP cannot be denied \
                   without seccomp (add --allow-udp to allow it)",
        });
    }
    Ok(deny)
}

/// Whether the init can set the PID namespace's `vm.memfd_noexec`: the
/// file is writable only by the host's root id, which the init still has
/// before it switches to the mapped root; the kernel must have it (6.3+).
fn memfd_noexec(caller: &Caller, namespaces: &NamespaceSet, seccomp_on: bool) -> MemfdNoexec {
    let sysctl = caller.uid == 0
        && namespaces.contains(Namespace::Pid)
        && std::path::Path::new(MEMFD_NOEXEC_SYSCTL).exists();
    match (sysctl, seccomp_on) {
        (true, _) => MemfdNoexec::Sysctl,
        (false, true) => MemfdNoexec::Seccomp,
        (false, false) => MemfdNoexec::Off,
    }
}

/// The per-PID-namespace switch of fileless execution.
pub(crate) const MEMFD_NOEXEC_SYSCTL: &str = "/proc/sys/vm/memfd_noexec";

/// The uid/gid the workload takes: `--user`, else the map's default.
fn workload_ids(
    env: &Envelope,
    maps: Option<&ResolvedMaps>,
    caller: &Caller,
) -> Result<(u32, u32), RunError> {
    match (env.user, maps) {
        (Some(user), Some(maps)) => {
            if !maps.maps_uid(user.uid) || !maps.maps_gid(user.gid) {
                return Err(RunError::UserNotMapped {
                    uid: user.uid,
                    gid: user.gid,
                });
            }
            Ok((user.uid, user.gid))
        }
        (Some(user), None) => Ok((user.uid, user.gid)),
        (None, Some(maps)) => Ok((maps.default_uid, maps.default_gid)),
        (None, None) => Ok((caller.uid, caller.gid)),
    }
}

impl ExecPlan {
    /// The arguments, `argv[0]` first.
    pub(crate) fn argv(&self) -> &[CString] {
        &self._argv
    }

    /// The environment, `KEY=VALUE` each.
    pub(crate) fn envp(&self) -> &[CString] {
        &self._envp
    }

    /// A program given by path, with an empty environment.
    pub(crate) fn program(argv: &[OsString]) -> Result<ExecPlan, RunError> {
        let argv = argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let candidates = argv.first().cloned().into_iter().collect();
        Ok(ExecPlan::from_parts(
            candidates,
            argv,
            Vec::new(),
            String::new(),
        ))
    }

    /// The same environment with another command, searched in the same
    /// `PATH` (a spare's request: `spare.rs`).
    pub(crate) fn with_command(&self, command: &[String]) -> Result<ExecPlan, RunError> {
        let argv = command
            .iter()
            .map(|a| cstring(a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let first = command.first().ok_or(RunError::NoCommand)?;
        let candidates = search_candidates(first, &self.path)?;
        Ok(ExecPlan::from_parts(
            candidates,
            argv,
            self._envp.clone(),
            self.path.clone(),
        ))
    }

    /// The plan, with the pointer arrays `execve(2)` takes.
    fn from_parts(
        candidates: Vec<CString>,
        argv: Vec<CString>,
        envp: Vec<CString>,
        path: String,
    ) -> ExecPlan {
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        ExecPlan {
            candidates,
            path,
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            _argv: argv,
            _envp: envp,
        }
    }

    pub(crate) fn new(env: &Envelope, uid: u32) -> Result<ExecPlan, RunError> {
        let argv = env
            .command
            .iter()
            .map(|a| cstring(a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let vars = env.environment(uid);
        let envp = vars
            .iter()
            .map(|(k, v)| cstring(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        let path = vars
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        let candidates = search_candidates(&env.command[0], path)?;
        Ok(ExecPlan::from_parts(
            candidates,
            argv,
            envp,
            path.to_owned(),
        ))
    }
}

/// The paths `execvp(3)` would try, in order.
fn search_candidates(cmd: &str, path: &str) -> Result<Vec<CString>, RunError> {
    if cmd.contains('/') {
        return Ok(vec![cstring(cmd)?]);
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| cstring(format!("{}/{cmd}", dir.trim_end_matches('/'))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_follows_path_order() {
        let c = search_candidates("ls", "/a:/b/").unwrap();
        assert_eq!(
            c,
            vec![
                CString::new("/a/ls").unwrap(),
                CString::new("/b/ls").unwrap()
            ]
        );
        let c = search_candidates("./x", "/a").unwrap();
        assert_eq!(c, vec![CString::new("./x").unwrap()]);
    }
}

//! `create`: the bundle becomes a container whose init waits on the exec
//! fifo. In order: read and check the bundle; make the state directory and
//! the fifo; the cgroup (limits, device rules); resolve the id maps; clone
//! the init into its new namespaces (it re-executes this binary at once);
//! write its maps and put it in its cgroups; hand it its job; run the
//! runtime's hooks when it asks; save the state and the pid file.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nucleus_cgroup::Cgroup;
use nucleus_idmap::{Caller, IdMapPolicy, IdMapping, SubIdPaths, UsernsMode};
use nucleus_ns::{Forked, Namespace, NamespaceSet};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cli::CreateArgs;
use crate::error::OciError;
use crate::hooks;
use crate::listener::Listener;
use crate::proc;
use crate::resources::{self, DeviceCgroup};
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status, Store, FIFO};
use crate::sync::{self, Answer, CreateJob, Job, Report};

/// The namespace of an OCI namespace type.
pub fn ns_kind(t: LinuxNamespaceType) -> Namespace {
    match t {
        LinuxNamespaceType::Pid => Namespace::Pid,
        LinuxNamespaceType::Mount => Namespace::Mount,
        LinuxNamespaceType::Network => Namespace::Network,
        LinuxNamespaceType::Uts => Namespace::Uts,
        LinuxNamespaceType::Ipc => Namespace::Ipc,
        LinuxNamespaceType::Cgroup => Namespace::Cgroup,
        LinuxNamespaceType::User => Namespace::User,
        LinuxNamespaceType::Time => Namespace::Time,
    }
}

/// A created container whose init is this process's child.
pub struct Created {
    /// What was saved.
    pub record: Record,
    /// A pidfd of the init.
    pub pidfd: OwnedFd,
}

/// What `create` made so far, undone unless it finishes.
struct Undo<'a> {
    store: &'a Store,
    id: String,
    cgroup: Option<Cgroup>,
    devices: Option<DeviceCgroup>,
    child: Option<(i32, OwnedFd)>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some((pid, pidfd)) = self.child.take() {
            // SAFETY: signal and reap our own child through its pidfd and pid.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    0,
                    0,
                );
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        drop(self.cgroup.take());
        if let Some(d) = self.devices.take() {
            d.remove();
        }
        let _ = self.store.remove(&self.id);
    }
}

/// The state JSON the spec gives hooks on stdin.
pub fn hook_state(id: &str, status: &str, pid: i32, bundle: &Path, spec: &Spec) -> String {
    serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
}

/// Creates the container `args.id`; its init is left blocked on the fifo.
pub fn create(store: &Store, args: &CreateArgs) -> Result<Created, OciError> {
    state::check_id(&args.id)?;
    let bundle = spec::load(&args.bundle)?;
    create_from(store, args, &bundle)
}

/// [`create`] from a bundle already read.
pub fn create_from(store: &Store, args: &CreateArgs, bundle: &Bundle) -> Result<Created, OciError> {
    // `create_dir` checks the id.
    let dir = store.create_dir(&args.id)?;
    let mut undo = Undo {
        store,
        id: args.id.clone(),
        cgroup: None,
        devices: None,
        child: None,
    };
    let fifo = dir.join(FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| OciError::io("mkfifo exec.fifo", e.into()))?;
    // mkfifo applied the umask.
    let _ = std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622));
    let spec = &bundle.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| OciError::Init("no linux".into()))?;
    let (cgroup_name, cgroup_cfg) =
        resources::placement(linux.cgroups_path().as_deref(), &args.id)?;
    let resources = linux.resources().clone().unwrap_or_default();
    let limits = resources::limits(&resources)?;
    let rules = resources.devices().clone().unwrap_or_default();
    let root = proc::euid() == 0;
    // Rootless with nothing to limit: no cgroup, as runc. Device rules that
    // only deny are the kernel's own rule in a user namespace, where no
    // device node can be made or opened on a mount it made.
    let only_denies = rules.iter().all(|r| !r.allow());
    if root || !limits.is_empty() {
        let cg = Cgroup::create_named(&limits, &cgroup_cfg, &cgroup_name)
            .map_err(|e| OciError::layer(&e))?;
        undo.cgroup = Some(cg);
    }
    if root || !only_denies {
        let devices = linux.devices().clone().unwrap_or_default();
        undo.devices = DeviceCgroup::create(
            (&cgroup_name, &cgroup_cfg),
            &rules,
            &devices,
            undo.cgroup.as_ref(),
        )?;
    }
    // Saved now, so that `delete --force` finds the cgroups of a `create`
    // killed from here on.
    store.save(&record(
        bundle,
        &args.id,
        0,
        undo.cgroup.as_ref().map(Cgroup::saved),
        undo.devices.clone(),
    ))?;
    let set = new_namespaces(spec);
    let maps = id_maps(spec, set.contains(Namespace::User))?;
    let console = connect_console(args.console_socket.as_deref())?;
    let agent = crate::listener::connect(spec)?;
    join_pid_namespace(spec)?;
    let (ours, theirs) = sync::pair()?;
    let exe = InitExec::new(theirs.as_raw_fd())?.become_root(set.contains(Namespace::User));
    let into = undo.cgroup.as_ref().and_then(|c| c.clone_into_fd());
    // SAFETY: this process is single-threaded (no thread is ever started
    // before create), and the child only calls execve and _exit on data
    // prepared above.
    let forked = unsafe { nucleus_ns::fork_into(set, into) }.map_err(|e| OciError::layer(&e))?;
    let child = match forked {
        Forked::Child => exe.exec(),
        Forked::Parent(child) => child,
    };
    drop(theirs);
    let pid = child.pid;
    undo.child = Some((pid, child.pidfd));
    if let Some(m) = &maps {
        m.write(pid).map_err(|e| OciError::layer(&e))?;
    }
    admit(&undo, pid)?;
    InitExec::go(&ours)?;
    let state = hook_state(&args.id, "creating", pid, &bundle.dir, spec);
    // Made now, so that the agent's state and `state` agree (`created`).
    let mut record = record(bundle, &args.id, pid, None, None);
    let listener = agent
        .as_ref()
        .map(|s| Listener::new(s, spec, pid, record.state_json(Status::Creating)));
    let job = Job::Create(Box::new(CreateJob {
        spec: spec.clone(),
        rootfs: bundle.rootfs.clone(),
        no_pivot: args.no_pivot,
        fifo: fifo.clone(),
        console_fd: console.as_ref().map(|s| s.as_raw_fd()),
        state: state.clone(),
        new_userns: set.contains(Namespace::User),
        preserve_fds: args.preserve_fds,
        landlock: crate::landlock::policy(spec)?,
        listener,
    }));
    sync::send(ours.as_fd(), &job)?;
    drop(console);
    drop(agent);
    follow_setup(&ours, spec, &state)?;
    record.cgroup = undo.cgroup.take().map(Cgroup::save);
    record.devices = undo.devices.take();
    store.save(&record)?;
    if let Some(path) = &args.pid_file {
        state::write_atomic(&absolute(path), pid.to_string().as_bytes(), 0o644)?;
    }
    let (_, pidfd) = undo
        .child
        .take()
        .ok_or_else(|| OciError::Init("lost the init".into()))?;
    std::mem::forget(undo);
    Ok(Created { record, pidfd })
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// The namespaces to create by clone (those without a path). The cgroup
/// namespace is left to the init, which makes it once it is in its cgroups
/// (so that their root is the container's cgroup).
fn new_namespaces(spec: &Spec) -> NamespaceSet {
    let mut set = NamespaceSet::none();
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        if ns.path().is_none() && ns.typ() != LinuxNamespaceType::Cgroup {
            set = set.with(ns_kind(ns.typ()));
        }
    }
    set
}

/// The spec's id maps, checked by `nucleus-idmap` (host root never mapped).
fn id_maps(spec: &Spec, new_user: bool) -> Result<Option<nucleus_idmap::ResolvedMaps>, OciError> {
    if !new_user {
        return Ok(None);
    }
    let linux = spec.linux().as_ref();
    let conv = |v: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMapping> {
        v.into_iter()
            .flatten()
            .map(|m| IdMapping::new(m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let policy = IdMapPolicy {
        mode: UsernsMode::Explicit,
        uid_map: conv(linux.and_then(|l| l.uid_mappings().as_ref())),
        gid_map: conv(linux.and_then(|l| l.gid_mappings().as_ref())),
        ..IdMapPolicy::default()
    };
    policy
        .resolve(&Caller::current(), &SubIdPaths::default())
        .map_err(|e| OciError::layer(&e))
}

/// Connects to the console socket; the fd stays open across exec for the init.
pub(crate) fn connect_console(path: Option<&Path>) -> Result<Option<UnixStream>, OciError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let sock = UnixStream::connect(path)
        .map_err(|e| OciError::io(format!("connect to --console-socket {}", path.display()), e))?;
    crate::proc::set_cloexec(sock.as_raw_fd(), false)?;
    Ok(Some(sock))
}

/// A PID namespace given by path is joined here: it only applies to children.
fn join_pid_namespace(spec: &Spec) -> Result<(), OciError> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::Pid)
        .and_then(|n| n.path().clone());
    match path {
        Some(p) => nucleus_ns::join(&p, Namespace::Pid).map_err(|e| OciError::layer(&e)),
        None => Ok(()),
    }
}

/// Puts the init in every cgroup the clone did not place it in.
fn admit(undo: &Undo<'_>, pid: i32) -> Result<(), OciError> {
    if let Some(cg) = &undo.cgroup {
        if !(cg.clone_into_fd().is_some() && cg.clone_into_covers_all()) {
            cg.attach(pid).map_err(|e| OciError::layer(&e))?;
        }
    }
    if let Some(d) = &undo.devices {
        d.attach(pid)?;
    }
    Ok(())
}

/// Answers the init until it reports the container created.
pub fn follow_setup(sock: &OwnedFd, spec: &Spec, state: &str) -> Result<(), OciError> {
    loop {
        match sync::recv::<Report>(sock.as_fd())? {
            Some(Report::Hooks) => {
                let h = spec.hooks().as_ref();
                hooks::run("prestart", h.and_then(|h| h.prestart().as_ref()), state)?;
                hooks::run(
                    "createRuntime",
                    h.and_then(|h| h.create_runtime().as_ref()),
                    state,
                )?;
                sync::send(sock.as_fd(), &Answer::Continue)?;
            }
            Some(Report::Created) => return Ok(()),
            Some(Report::Error(text)) => return Err(OciError::Layer(text)),
            None => {
                return Err(OciError::Init(
                    "the container's init exited during setup".into(),
                ))
            }
        }
    }
}

fn record(
    bundle: &Bundle,
    id: &str,
    pid: i32,
    cgroup: Option<nucleus_cgroup::SavedCgroup>,
    devices: Option<DeviceCgroup>,
) -> Record {
    let mut r = Record::new(bundle, id);
    if pid > 0 {
        r.pid = pid;
        r.pid_start = proc::start_time(pid).unwrap_or(0);
    }
    r.cgroup = cgroup;
    r.devices = devices;
    r
}

/// `execve("/proc/self/exe", ["nucleus-oci", "init"], env + sync fd)`,
/// prepared before the clone.
pub struct InitExec {
    fd: i32,
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// In a new user namespace: become its root before the exec.
    become_root: bool,
}

impl InitExec {
    /// Prepares the exec with the init's end of the socket pair at `fd`.
    pub fn new(fd: i32) -> Result<InitExec, OciError> {
        crate::proc::set_cloexec(fd, false)?;
        let bad = |_| OciError::Layer("NUL in the environment".into());
        let mut strings = vec![
            CString::new("nucleus-oci").map_err(bad)?,
            CString::new("init").map_err(bad)?,
            CString::new(format!("{}={fd}", sync::ENV_FD)).map_err(bad)?,
        ];
        for (k, v) in std::env::vars_os() {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            if let Ok(c) = CString::new(kv) {
                strings.push(c);
            }
        }
        let argv = vec![strings[0].as_ptr(), strings[1].as_ptr(), std::ptr::null()];
        let mut envp: Vec<*const libc::c_char> = strings[2..].iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(InitExec {
            fd,
            path: CString::new("/proc/self/exe").map_err(bad)?,
            _strings: strings,
            argv,
            envp,
            become_root: false,
        })
    }

    /// The child is in a new user namespace: after the go (the maps are
    /// written) it takes the namespace's uid and gid 0, as runc's nsexec
    /// does, so that the exec keeps its capabilities there. Without this,
    /// a host root that the maps do not name (`0 100000 65536`) would be
    /// the overflow id inside and exec with no capability at all.
    pub fn become_root(mut self, yes: bool) -> Self {
        self.become_root = yes;
        self
    }

    /// In the cloned child: wait for the runtime's go (one byte: the id
    /// maps are written, so the exec keeps root's capabilities in a new
    /// user namespace), then exec the init; `_exit(127)` on failure.
    pub fn exec(&self) -> ! {
        let mut go = 0u8;
        // SAFETY: read, the raw id system calls, execve and _exit are
        // async-signal-safe; the arrays are NULL-terminated and point into
        // `_strings`, alive in this copy.
        unsafe {
            if libc::read(self.fd, (&mut go as *mut u8).cast(), 1) != 1 {
                libc::_exit(127);
            }
            if self.become_root {
                // Raw system calls: glibc's wrappers would signal threads
                // of the parent that this copy does not have. A map that
                // names no 0 leaves the ids as they are (the init's own
                // checks report what then fails); setgroups may be denied.
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setresgid, 0, 0, 0);
                libc::syscall(libc::SYS_setresuid, 0, 0, 0);
            }
            libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            libc::_exit(127)
        }
    }

    /// Lets the child exec (see [`InitExec::exec`]).
    pub fn go(sock: &OwnedFd) -> Result<(), OciError> {
        // SAFETY: send one byte from a live buffer.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                b"g".as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL,
            )
        };
        if n != 1 {
            return Err(OciError::io(
                "release the init",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

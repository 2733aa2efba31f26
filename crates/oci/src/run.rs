//! `run` (create, start, wait, delete) and `exec` (a process joining a
//! running container).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nucleus_cgroup::Cgroup;
use nucleus_ns::{Forked, NamespaceSet};
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::cli::{ExecArgs, RunArgs};
use crate::create::{self, InitExec};
use crate::error::OciError;
use crate::listener::Listener;
use crate::ops;
use crate::state::{self, Status, Store};
use crate::sync::{self, ExecJob, Job, Report};

/// Signals `run` and `exec` pass on to the process they wait for.
const FORWARDED: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// `run`: the container's exit status (128 + signal when killed).
pub fn run(store: &Store, args: &RunArgs, bundle: &crate::spec::Bundle) -> Result<i32, OciError> {
    let created = create::create_from(store, &args.create, bundle)?;
    let id = &args.create.id;
    if let Err(e) = ops::start(store, id) {
        let _ = ops::destroy(store, &created.record);
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.record.pid, &created.pidfd)?;
    if !args.keep {
        ops::destroy(store, &created.record)?;
    }
    Ok(code)
}

/// Waits for our child `pid`, passing on [`FORWARDED`] signals; its status.
fn wait_forwarding(pid: i32, pidfd: &OwnedFd) -> Result<i32, OciError> {
    // SAFETY: building and installing a signal mask of this process.
    let sfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if sfd < 0 {
        return Err(OciError::io("signalfd", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two live pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[1].revents & libc::POLLIN != 0 {
            // SAFETY: a zeroed siginfo read from our signalfd.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: read into a live struct of its size.
            while unsafe {
                libc::read(
                    sfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            } == size as isize
            {
                // SAFETY: signal our own child through its pidfd.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pidfd.as_raw_fd(),
                        info.ssi_signo as i32,
                        0,
                        0,
                    )
                };
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut status = 0;
            // SAFETY: reap our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Ok(if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            });
        }
    }
}

/// The process of an `exec`: `--process`, or the container's with the flags.
fn exec_process(args: &ExecArgs, base: &Process) -> Result<Process, OciError> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read(path).map_err(|e| OciError::io(format!("read {}", path.display()), e))?;
        return serde_json::from_slice(&text).map_err(|e| OciError::Config {
            path: path.clone(),
            reason: format!("not a valid process: {e}"),
        });
    }
    if args.command.is_empty() {
        return Err(OciError::Usage("exec needs a command or --process".into()));
    }
    let mut p = base.clone();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(u) = &args.user {
        let mut user = p.user().clone();
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| OciError::Usage(format!("--user {u:?}: numeric UID[:GID] only")))
        };
        user.set_uid(num(uid)?);
        user.set_gid(num(gid)?);
        if !args.additional_gids.is_empty() {
            user.set_additional_gids(Some(args.additional_gids.clone()));
        }
        p.set_user(user);
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut value = serde_json::to_value(&caps).unwrap_or_default();
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let list = value[set].as_array().cloned().unwrap_or_default();
            let mut list: Vec<serde_json::Value> = list;
            list.extend(
                args.cap
                    .iter()
                    .map(|c| serde_json::Value::String(c.to_ascii_uppercase())),
            );
            value[set] = serde_json::Value::Array(list);
        }
        caps = serde_json::from_value(value).map_err(|e| OciError::Usage(format!("--cap: {e}")))?;
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// `/proc/PID/ns/NAME` opened (left open across exec for the init), user first.
fn namespace_fds(pid: i32, spec: &oci_spec::runtime::Spec) -> Result<Vec<(String, i32)>, OciError> {
    let mut kinds: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| n.typ())
        .filter(|t| *t != LinuxNamespaceType::Pid)
        .collect();
    kinds.sort_by_key(|t| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    let mut out = Vec::new();
    for t in kinds {
        let name = create::ns_kind(t).proc_name();
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let ino = |p: &PathBuf| {
            std::fs::metadata(p)
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .ok()
        };
        if ino(&theirs).is_some() && ino(&theirs) == ino(&ours) {
            continue;
        }
        let f = std::fs::File::open(&theirs)
            .map_err(|e| OciError::io(format!("open {}", theirs.display()), e))?;
        let fd = std::os::fd::IntoRawFd::into_raw_fd(f);
        crate::proc::set_cloexec(fd, false)?;
        out.push((name.to_owned(), fd));
    }
    Ok(out)
}

/// `exec`: the exit status of the process, or 0 with `--detach`.
pub fn exec(store: &Store, args: &ExecArgs) -> Result<i32, OciError> {
    if args.apparmor.is_some() || args.process_label.is_some() {
        return Err(OciError::Usage(
            "AppArmor and SELinux labels are not supported by nucleus-oci".into(),
        ));
    }
    let r = store.load(&args.id)?;
    let status = store.status(&r);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(OciError::BadState {
            id: r.id.clone(),
            status: status.to_string(),
            what: "cannot exec in it",
        });
    }
    let base = r.config.process().clone().unwrap_or_default();
    let mut process = exec_process(args, &base)?;
    if args.tty {
        process.set_terminal(Some(true));
    }
    // Connected here, in the host's namespaces, as `create` does.
    let agent = crate::listener::connect(&r.config)?;
    let mut namespaces = namespace_fds(r.pid, &r.config)?;
    // Without privilege over the container's PID namespace, only its own
    // user namespace gives it: a rootless runtime joins that first (it
    // makes no cgroup write afterwards), and the init need not.
    if crate::proc::euid() != 0 {
        if let Some(pos) = namespaces.iter().position(|(k, _)| k == "user") {
            let (_, fd) = namespaces.remove(pos);
            // SAFETY: setns on an fd we opened; this process is single-threaded.
            let rc = unsafe { libc::setns(fd, libc::CLONE_NEWUSER) };
            let e = std::io::Error::last_os_error();
            // SAFETY: our fd, not used again.
            unsafe { libc::close(fd) };
            if rc != 0 {
                return Err(OciError::io("join the container's user namespace", e));
            }
        }
    }
    let pid_ns = format!("/proc/{}/ns/pid", r.pid);
    let pid_ns_differs =
        std::fs::read_link(&pid_ns).ok() != std::fs::read_link("/proc/self/ns/pid").ok();
    if pid_ns_differs {
        nucleus_ns::join(pid_ns.as_ref(), nucleus_ns::Namespace::Pid)
            .map_err(|e| OciError::layer(&e))?;
    }
    let console = create::connect_console(args.console_socket.as_deref())?;
    let (ours, theirs) = sync::pair()?;
    let exe = InitExec::new(theirs.as_raw_fd())?;
    // SAFETY: single-threaded; the child only calls execve/_exit on prepared data.
    let forked = unsafe { nucleus_ns::fork_into(NamespaceSet::none(), None) }
        .map_err(|e| OciError::layer(&e))?;
    let child = match forked {
        Forked::Child => exe.exec(),
        Forked::Parent(c) => c,
    };
    drop(theirs);
    for (_, fd) in &namespaces {
        // SAFETY: our copies of fds the child inherited.
        unsafe { libc::close(*fd) };
    }
    let kill = |e: OciError| {
        // SAFETY: our own child.
        unsafe {
            libc::kill(child.pid, libc::SIGKILL);
            libc::waitpid(child.pid, std::ptr::null_mut(), 0);
        }
        e
    };
    if let Some(saved) = &r.cgroup {
        Cgroup::restore(saved)
            .attach(child.pid)
            .map_err(|e| kill(OciError::layer(&e)))?;
    }
    if let Some(d) = &r.devices {
        d.attach(child.pid).map_err(kill)?;
    }
    InitExec::go(&ours).map_err(kill)?;
    let job = Job::Exec(Box::new(ExecJob {
        namespaces,
        process,
        spec: r.config.clone(),
        console_fd: console.as_ref().map(|s| s.as_raw_fd()),
        preserve_fds: args.preserve_fds,
        landlock: crate::landlock::policy(&r.config).map_err(kill)?,
        listener: agent
            .as_ref()
            .map(|s| Listener::new(s, &r.config, child.pid, r.state_json(status))),
    }));
    sync::send(ours.as_fd(), &job).map_err(kill)?;
    drop(console);
    drop(agent);
    match sync::recv::<Report>(ours.as_fd()).map_err(kill)? {
        Some(Report::Error(text)) => {
            let mut status = 0;
            // SAFETY: reap our own child, which reported its failure.
            unsafe { libc::waitpid(child.pid, &mut status, 0) };
            return Err(OciError::Layer(text));
        }
        Some(_) => return Err(kill(OciError::Init("unexpected message".into()))),
        None => {}
    }
    if let Some(path) = &args.pid_file {
        state::write_atomic(path, child.pid.to_string().as_bytes(), 0o644)?;
    }
    if args.detach {
        return Ok(0);
    }
    wait_forwarding(child.pid, &child.pidfd)
}

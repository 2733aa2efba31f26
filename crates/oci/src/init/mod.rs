//! The container's init: `nucleus-oci` re-executed in the new namespaces
//! (so nothing between clone and exec but `execve`). It reads its job from
//! the socket pair, builds the container and waits on the exec fifo for
//! `start`, or joins a running container for `exec`.

mod agent;
mod console;
mod devices;
pub mod mounts;
pub mod process;
mod scm;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::OciError;
use crate::hooks;
use crate::sync::{self, Answer, CreateJob, ExecJob, Job, Report};

/// The init's entry point; never returns.
pub fn main() -> ! {
    let fd = std::env::var(sync::ENV_FD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    let Some(fd) = fd else {
        eprintln!("nucleus-oci init: not started by nucleus-oci");
        std::process::exit(1);
    };
    std::env::remove_var(sync::ENV_FD);
    // SAFETY: the fd was left open for us by the runtime, which owns no copy now.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = crate::proc::set_cloexec(fd, true);
    let err = match run(&sock) {
        Ok(e) | Err(e) => e,
    };
    // The runtime shows the error while it listens; after `create` has
    // returned nobody does, so it goes to the container's stderr.
    if sync::send(sock.as_fd(), &Report::Error(err.to_string())).is_err() {
        let _ = writeln!(std::io::stderr(), "nucleus-oci: {err}");
    }
    std::process::exit(exit_code(&err));
}

/// 127 for a missing program, 126 for one that cannot run, else 1.
fn exit_code(e: &OciError) -> i32 {
    let text = e.to_string();
    if text.contains("not found") || text.contains("no such file") {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        1
    }
}

/// Returns only with the error that ended it (success ends in `execve`).
fn run(sock: &OwnedFd) -> Result<OciError, OciError> {
    let job: Job = sync::recv(sock.as_fd())?.ok_or_else(|| OciError::Init("no job".into()))?;
    match job {
        Job::Create(job) => create(sock, *job),
        Job::Exec(job) => exec(*job),
    }
}

fn has_new(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    namespaces(spec).any(|(t, p)| t == kind && p.is_none())
}

fn namespaces(spec: &Spec) -> impl Iterator<Item = (LinuxNamespaceType, Option<&Path>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| (n.typ(), n.path().as_deref()))
}

/// Joins the namespaces the spec names by path (user first), except PID,
/// which the runtime joined before the clone.
fn join_paths(spec: &Spec) -> Result<(), OciError> {
    let mut joins: Vec<(LinuxNamespaceType, &Path)> = namespaces(spec)
        .filter_map(|(t, p)| Some((t, p?)))
        .filter(|(t, _)| *t != LinuxNamespaceType::Pid)
        .collect();
    joins.sort_by_key(|(t, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for (kind, path) in joins {
        let ns = crate::create::ns_kind(kind);
        nucleus_ns::join(path, ns).map_err(|e| OciError::layer(&e))?;
    }
    Ok(())
}

fn create(sock: &OwnedFd, job: CreateJob) -> Result<OciError, OciError> {
    let spec = &job.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| OciError::Init("no linux section".into()))?;
    let agent = job.listener.map(agent::Agent::take).transpose()?;
    // The fifo is reached through this fd once the host's paths are gone.
    let fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&job.fifo)
        .map_err(|e| OciError::io("open the exec fifo", e))?;
    join_paths(spec)?;
    let new_cgroupns = has_new(spec, LinuxNamespaceType::Cgroup);
    if new_cgroupns {
        // SAFETY: unshare of the cgroup namespace; the runtime put us in our cgroups first.
        if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
            return Err(OciError::io(
                "unshare the cgroup namespace",
                std::io::Error::last_os_error(),
            ));
        }
    }
    // The container's root is made in its mount namespace, new or joined
    // by path (as runc does: a joined one is the container's to shape), so
    // the process never sees another filesystem than the bundle's root.
    // `spec::check` refused a spec without one.
    let root_propagation = mounts::root_propagation(linux.rootfs_propagation().as_deref())?;
    mounts::prepare_root(&job.rootfs)?;
    mounts::mount_all(spec, &job.rootfs, new_cgroupns)?;
    devices::create(spec, &job.rootfs, job.new_userns)?;
    if spec
        .hooks()
        .as_ref()
        .is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some())
    {
        sync::send(sock.as_fd(), &Report::Hooks)?;
        let answer: Option<Answer> = sync::recv(sock.as_fd())?;
        if answer.is_none() {
            return Err(OciError::Init(
                "the runtime went away during the hooks".into(),
            ));
        }
    }
    hooks::run(
        "createContainer",
        spec.hooks()
            .as_ref()
            .and_then(|h| h.create_container().as_ref()),
        &job.state,
    )?;
    mounts::switch_root(&job.rootfs, job.no_pivot)?;
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| OciError::io(format!("sysctl {key}"), e))?;
    }
    mounts::mask_paths(linux.masked_paths().as_deref().unwrap_or_default())?;
    mounts::readonly_paths(linux.readonly_paths().as_deref().unwrap_or_default())?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::readonly_root()?;
    }
    // Last of the mounts: an unbindable /dev could not give /dev/null to
    // the masks.
    mounts::apply_root_propagation(root_propagation)?;
    if has_new(spec, LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).map_err(|e| OciError::io("sethostname", e.into()))?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            // SAFETY: setdomainname reads `d.len()` bytes from a live string.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(OciError::io(
                    "setdomainname",
                    std::io::Error::last_os_error(),
                ));
            }
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| OciError::Init("no process".into()))?;
    if process.terminal().unwrap_or(false) {
        let fd = job
            .console_fd
            .ok_or_else(|| OciError::Usage("process.terminal needs --console-socket".into()))?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        console::setup(fd, size)?;
    }
    let ready = process::prepare(
        process,
        spec,
        setgroups_allowed(),
        job.landlock.as_ref(),
        agent,
    )?;
    sync::send(sock.as_fd(), &Report::Created)?;
    wait_for_start(fifo.as_fd())?;
    hooks::run(
        "startContainer",
        spec.hooks()
            .as_ref()
            .and_then(|h| h.start_container().as_ref()),
        &job.state,
    )?;
    // Before the settings: close_range is not the seccomp profile's to allow.
    close_inherited(job.preserve_fds)?;
    let exec = ready.apply()?;
    Ok(exec.exec())
}

/// Blocks until `start` opens the fifo for reading, then writes one byte.
fn wait_for_start(fifo: BorrowedFd<'_>) -> Result<(), OciError> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| OciError::io("open the exec fifo", e))?;
    f.write_all(&[0])
        .map_err(|e| OciError::io("write the exec fifo", e))
}

fn exec(job: ExecJob) -> Result<OciError, OciError> {
    let agent = job.listener.map(agent::Agent::take).transpose()?;
    for (kind, fd) in &job.namespaces {
        // SAFETY: setns on an fd the runtime left open for us.
        if unsafe { libc::setns(*fd, 0) } != 0 {
            return Err(OciError::io(
                format!("join the {kind} namespace"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: the fd is ours and not used again.
        unsafe { libc::close(*fd) };
    }
    if job.process.terminal().unwrap_or(false) {
        let fd = job
            .console_fd
            .ok_or_else(|| OciError::Usage("--tty needs --console-socket".into()))?;
        let size = job
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        console::setup(fd, size)?;
    }
    let ready = process::prepare(
        &job.process,
        &job.spec,
        setgroups_allowed(),
        job.landlock.as_ref(),
        agent,
    )?;
    close_inherited(job.preserve_fds)?;
    Ok(ready.apply()?.exec())
}

/// Whether this user namespace lets the process call `setgroups` (an
/// unprivileged map writer denies it).
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() == "allow")
}

/// Every fd above stdio and the preserved ones closes at exec: what the
/// engine, the runtime or its caller left open (an engine's own socket, a
/// lock) never reaches the container.
fn close_inherited(preserve: u32) -> Result<(), OciError> {
    let first = 3 + preserve;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(OciError::io("close_range", std::io::Error::last_os_error()));
    }
    Ok(())
}

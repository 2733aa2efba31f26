//! The sandbox side of the launch: the steps of the init (PID 1), in order,
//! then the workload. Runs between `clone` and `execve`: only system calls on
//! data prepared by the parent, and `_exit`, never a return into parent code.
//! `docs/ARCHITECTURE.md` lists the stages in this file's order (a test in
//! `stage.rs` keeps the two in step).

use crate::channel::{self, Detail, Message};
use crate::outcome::LandlockStatus;
use crate::prepare::{ExecPlan, MemfdNoexec, Prepared, Workload};
use crate::stage::Stage;
use crate::{exit, sys};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// A stage that failed: what the parent is told.
struct Failure {
    stage: Stage,
    errno: i32,
    detail: Detail,
}

/// The errno behind a layer's error (`EIO` when it has none), and what
/// else it names.
trait Errno {
    fn errno(&self) -> i32;
    fn detail(&self) -> Detail {
        Detail::None
    }
}

impl Errno for nucleus_rootfs::ApplyError {
    fn errno(&self) -> i32 {
        self.errno
    }
    fn detail(&self) -> Detail {
        Detail::MountStep(self.step)
    }
}

/// Landlock's failure: the errno and the rule whose path failed.
impl Errno for (i32, Option<u32>) {
    fn errno(&self) -> i32 {
        self.0
    }
    fn detail(&self) -> Detail {
        self.1.map_or(Detail::None, Detail::LandlockRule)
    }
}

impl Errno for i32 {
    fn errno(&self) -> i32 {
        *self
    }
}

macro_rules! errno_from_raw_os_error {
    ($($ty:ty),*) => {$(
        impl Errno for $ty {
            fn errno(&self) -> i32 {
                self.raw_os_error().unwrap_or(libc::EIO)
            }
        }
    )*};
}

errno_from_raw_os_error!(
    nucleus_ns::NsError,
    nucleus_cgroup::CgroupError,
    nucleus_caps::CapsError,
    nucleus_seccomp::SeccompError
);

/// The channel's fd while the parent asked for step times (-1: not asked).
/// Set by `run` in the child only; the parent's copy stays -1.
static STEP_FD: AtomicI32 = AtomicI32::new(-1);

/// Tells the parent that `stage` reached this point, with the time, when it
/// asked (no allocation: a clock read and one `write`).
fn mark(stage: Stage) {
    let fd = STEP_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let at_ns = sys::monotonic_ns();
        channel::send(fd, Message::Step { stage, at_ns });
    }
}

/// Names the stage of a step's error; a step that succeeded is marked
/// (`mark`), so the parent can log each stage's time.
trait At<T> {
    fn at(self, stage: Stage) -> Result<T, Failure>;
}

impl<T, E: Errno> At<T> for Result<T, E> {
    fn at(self, stage: Stage) -> Result<T, Failure> {
        match self {
            Ok(value) => {
                mark(stage);
                Ok(value)
            }
            Err(e) => Err(Failure {
                stage,
                errno: e.errno(),
                detail: e.detail(),
            }),
        }
    }
}

/// The init: its setup up to the workload's fork, then PID 1's loop. The
/// one place a failed stage is reported: a `Failed` message, then exit 125.
pub(crate) fn run(p: &Prepared, go_fd: RawFd, go_parent_fd: RawFd, msg_fd: RawFd) -> ! {
    if p.step_times {
        STEP_FD.store(msg_fd, Ordering::Relaxed);
    }
    match setup(p, go_fd, go_parent_fd, msg_fd) {
        Ok((workload, saved)) => init(p, msg_fd, workload, &saved),
        Err(f) => fail(msg_fd, &f),
    }
}

/// Reports a failed stage (a `Failed` message) and exits 125.
fn fail(msg_fd: RawFd, f: &Failure) -> ! {
    channel::send(
        msg_fd,
        Message::Failed {
            stage: f.stage,
            errno: f.errno,
            detail: f.detail,
        },
    );
    sys::exit(exit::SETUP_FAILED)
}

/// The init's setup, in launch order; each line says why it sits there
/// (the same order as the stage list of `docs/ARCHITECTURE.md`). Returns
/// the workload's pid and the signal mask from before the init blocked
/// every signal. Longer than the other functions on purpose: the child's
/// sequence reads top to bottom in one place, each step a line.
fn setup(
    p: &Prepared,
    go_fd: RawFd,
    go_parent_fd: RawFd,
    msg_fd: RawFd,
) -> Result<(libc::pid_t, libc::sigset_t), Failure> {
    // Our copy of the parent's end: without closing it, EOF never comes.
    sys::close(go_parent_fd);
    // Die with the runner: if it is gone, nobody would reap or limit us.
    sys::set_pdeathsig().at(Stage::Sync)?;
    // Wait until the parent wrote the id maps; EOF means the parent died.
    if sys::read_byte(go_fd).at(Stage::Sync)? == 0 {
        sys::exit(exit::SETUP_FAILED);
    }
    // Fileless execution closed for the whole PID namespace: the file is
    // writable only by the host's root id, which the init has until the
    // switch below.
    if p.memfd_noexec == MemfdNoexec::Sysctl {
        sys::write_file(c"/proc/sys/vm/memfd_noexec", b"2").at(Stage::MemfdNoexec)?;
    }
    // The namespace's share of what is charged to its creator host-wide,
    // while every capability of the namespace is still held.
    for (path, value) in &p.userns_limits {
        sys::write_file(path, value.as_bytes()).at(Stage::UsernsLimits)?;
    }
    // Root of the new user namespace builds the view: the creator's host id
    // may be unmapped there (root-remapped), and files it made would not be.
    if p.setup_as_root {
        sys::switch_user(0, 0, p.set_groups).at(Stage::User)?;
        // A credential change clears the parent-death signal: arm it again.
        sys::set_pdeathsig().at(Stage::User)?;
    }
    // The filesystem view first: every later path is resolved inside it.
    if let Some(plan) = &p.plan {
        plan.apply().at(Stage::Mount)?;
    }
    // The working directory, inside the new view.
    sys::chdir(&p.workdir).at(Stage::Workdir)?;
    // Hostname and loopback need CAP_SYS_ADMIN / CAP_NET_ADMIN: before the drop.
    if let Some(name) = &p.hostname {
        nucleus_ns::set_hostname(name).at(Stage::Hostname)?;
    }
    if p.loopback {
        nucleus_ns::loopback_up().at(Stage::Loopback)?;
    }
    // Rlimits, stdio, ids, capabilities, Landlock, seccomp: what a
    // session's command goes through too.
    restrict(p, &p.stdio_dups, p.ctty, msg_fd, true)?;
    // PID 1 takes every signal with sigwaitinfo: all blocked before the
    // fork, so none is lost and the init needs no handler.
    let saved = sys::sigmask(libc::SIG_BLOCK, &sys::full_sigset());
    // A session's init holds the sandbox for the commands that join it
    // (`session.rs`), and only reaps.
    if p.hold {
        channel::send(msg_fd, Message::Ready);
        return Ok((0, saved));
    }
    // A spare's init waits for its command and stdio (`spare.rs`); a
    // holder that closes the socket instead ends the spare unused.
    if let Some(slot) = &p.spare {
        channel::send(msg_fd, Message::Ready);
        let Some(command) = slot.take().at(Stage::Spare)? else {
            sys::exit(0)
        };
        // The workload starts on its own stack, without a copy of the
        // init's memory: it only executes.
        let start = SpareStart {
            command: &command,
            saved: &saved,
            msg_fd,
        };
        let arg = &start as *const SpareStart<'_> as *mut libc::c_void;
        let workload = sys::vfork_on(&mut slot.stack(), spare_entry, arg).at(Stage::Fork)?;
        return Ok((workload, saved));
    }
    let workload = sys::fork().at(Stage::Fork)?;
    if workload == 0 {
        start_workload(p, &saved, msg_fd);
    }
    Ok((workload, saved))
}

/// What confines the workload once the view is built, in launch order: the
/// init runs it before it forks the workload (`init`: it also becomes the
/// subreaper, hidden from the workload), a session's command before it
/// executes.
fn restrict(
    p: &Prepared,
    stdio_dups: &[(RawFd, RawFd)],
    ctty: Option<RawFd>,
    msg_fd: RawFd,
    init: bool,
) -> Result<(), Failure> {
    // Resource limits before anything of the workload runs.
    p.rlimit_policy.apply().at(Stage::Rlimits)?;
    // Relayed stdio in place, then no inherited fd may leak host files in;
    // a new session detaches the terminal.
    for &(from, to) in stdio_dups {
        sys::dup2(from, to).at(Stage::Session)?;
    }
    // (A spare's init keeps the socket its command comes on.)
    let keep = match &p.spare {
        Some(slot) if init => [msg_fd.min(slot.control), msg_fd.max(slot.control)],
        _ => [msg_fd, msg_fd],
    };
    sys::close_fds_except(&keep).at(Stage::Session)?;
    // (A session's command is in the group its parent made: a timeout
    // kills the group.)
    if init {
        sys::setsid().at(Stage::Session)?;
    }
    // The sandbox's own terminal (never the caller's) becomes the session's:
    // its ^C reaches the workload's foreground group.
    if let Some(fd) = ctty {
        sys::set_controlling_terminal(fd).at(Stage::Session)?;
    }
    // The workload's ids, then the capability drop (which needs the final uid).
    if p.keep_caps {
        nucleus_caps::set_keepcaps(true).at(Stage::User)?;
    }
    sys::switch_user(p.uid, p.gid, p.set_groups).at(Stage::User)?;
    sys::set_pdeathsig().at(Stage::User)?;
    p.caps.apply(p.uid == 0).at(Stage::Capabilities)?;
    // No exec may gain privileges back (setuid binaries, file capabilities).
    nucleus_caps::set_no_new_privs().at(Stage::NoNewPrivs)?;
    // Orphans of the workload come to the init even without a PID
    // namespace; and the workload must not reach the init's channel through
    // /proc/1/fd (execve makes the workload dumpable again).
    if init {
        sys::set_child_subreaper().at(Stage::NoNewPrivs)?;
        if !p.seccomp_listener {
            sys::set_not_dumpable().at(Stage::NoNewPrivs)?;
        }
    }
    // Landlock after the view is final (its tmpfs mounts are covered) and
    // before the init forks, so the init is inside the domain too.
    if let Some(landlock) = &p.landlock {
        restrict_landlock(landlock, msg_fd).at(Stage::Landlock)?;
    }
    // The filter last: every earlier step needed syscalls it may forbid. The
    // init installs it before forking, so the init is covered too.
    if let Some(filter) = &p.seccomp {
        if p.seccomp_listener {
            // Record mode: the listener stays open in the init until it exits,
            // so the parent can always take its copy.
            let fd = filter.apply_with_listener().at(Stage::Seccomp)?;
            channel::send(msg_fd, Message::Listener { fd });
            // Only now: the parent must take the listener first, and this
            // call waits for its answer, so it cannot come too early.
            sys::set_not_dumpable().at(Stage::Seccomp)?;
        } else {
            filter.apply().at(Stage::Seccomp)?;
        }
    }
    Ok(())
}

/// The parent of a session's command (`session.rs`), forked by its exec
/// worker: a new process group (a timeout kills the group), the session's
/// namespaces joined, the command forked into them (`run_exec`) and put in
/// the session's cgroup before it is released; then it reports the
/// command's status as an init reports the workload's. It stays outside
/// the session's PID namespace, whose init reaps the command's orphans.
pub(crate) fn run_command(p: &Prepared, cmd: &CommandPlan<'_>, msg_fd: RawFd) -> ! {
    let (go_r, go_w) = cmd.go;
    let started = (|| {
        sys::setsid().at(Stage::Sync)?;
        sys::set_pdeathsig().at(Stage::Sync)?;
        for &(nstype, fd) in cmd.namespaces {
            sys::setns(fd, nstype).at(Stage::Sync)?;
        }
        let pid = sys::fork().at(Stage::Fork)?;
        if pid == 0 {
            sys::close(go_w);
            run_exec(p, cmd, go_r, msg_fd);
        }
        let mut digits = [0u8; 12];
        let text = sys::format_pid(pid, &mut digits);
        for &fd in cmd.procs {
            if let Err(e) = sys::write_all(fd, text) {
                sys::kill(pid, libc::SIGKILL);
                return Err(e).at(Stage::Sync);
            }
        }
        sys::write_all(go_w, &[1]).at(Stage::Sync)?;
        Ok(pid)
    })();
    match started {
        Ok(pid) => {
            let status = sys::wait_status(pid);
            channel::send(msg_fd, Message::Exited { status });
            sys::exit(0)
        }
        Err(f) => fail(msg_fd, &f),
    }
}

/// What a session's command is run with, prepared by its exec worker
/// before the fork (`session.rs`).
pub(crate) struct CommandPlan<'a> {
    /// The session's namespaces, `(CLONE_NEW*, fd)`, the user namespace first.
    pub(crate) namespaces: &'a [(libc::c_int, RawFd)],
    /// `cgroup.procs` of the session's cgroups, open for writing.
    pub(crate) procs: &'a [RawFd],
    /// The program.
    pub(crate) exec: &'a ExecPlan,
    /// Where it starts, inside the view.
    pub(crate) workdir: &'a std::ffi::CStr,
    /// Its stdio onto the relay's pipes (`--capture`).
    pub(crate) stdio_dups: &'a [(RawFd, RawFd)],
    /// The release pipe: read by the command, written by its parent.
    pub(crate) go: (RawFd, RawFd),
}

/// A session's command, in the session's namespaces (in `/` of its view):
/// waits until its parent put it in the session's cgroup, enters its
/// directory, goes through what confines the init (`restrict`) and
/// executes; it is the workload itself.
fn run_exec(p: &Prepared, cmd: &CommandPlan<'_>, go_fd: RawFd, msg_fd: RawFd) -> ! {
    let ready = (|| {
        sys::set_pdeathsig().at(Stage::Sync)?;
        if sys::read_byte(go_fd).at(Stage::Sync)? == 0 {
            sys::exit(exit::SETUP_FAILED);
        }
        sys::chdir(cmd.workdir).at(Stage::Workdir)?;
        restrict(p, cmd.stdio_dups, None, msg_fd, false)
    })();
    if let Err(f) = ready {
        fail(msg_fd, &f);
    }
    workload_signals();
    mark(Stage::Exec);
    exec_plan(cmd.exec, msg_fd)
}

/// The forked workload: every signal unblocked, death with the init, the
/// stdio the runner found closed closed again, then the program or module.
fn start_workload(p: &Prepared, saved: &libc::sigset_t, msg_fd: RawFd) -> ! {
    sys::sigmask(libc::SIG_SETMASK, saved);
    workload_signals();
    for &fd in &p.closed_stdio {
        sys::close(fd);
    }
    match &p.workload {
        Workload::Exec(exec) => {
            mark(Stage::Exec);
            exec_plan(exec, msg_fd)
        }
        Workload::Wasm(wasm) => {
            mark(Stage::Wasm);
            crate::wasm_host::run_workload(wasm, msg_fd)
        }
    }
}

/// What a spare's workload starts with (`spare_entry`'s argument).
struct SpareStart<'a> {
    command: &'a crate::slot::Command<'a>,
    saved: &'a libc::sigset_t,
    msg_fd: RawFd,
}

/// The entry of a spare's workload (`sys::vfork_on`).
extern "C" fn spare_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the init's `SpareStart`, alive while the init waits
    // for this process to execute or exit (CLONE_VFORK).
    let start = unsafe { &*(arg as *const SpareStart<'_>) };
    start_spare_workload(start.command, start.saved, start.msg_fd)
}

/// A spare's workload: as `start_workload`, with the command its init
/// took (the runner found no stdio closed: a server's worker never does).
fn start_spare_workload(
    command: &crate::slot::Command<'_>,
    saved: &libc::sigset_t,
    msg_fd: RawFd,
) -> ! {
    sys::sigmask(libc::SIG_SETMASK, saved);
    workload_signals();
    mark(Stage::Exec);
    exec_workload(command.candidates(), command.argv(), command.envp(), msg_fd)
}

/// Enters the Landlock domain and reports its status; on failure returns
/// the errno and the index of the rule whose path failed.
fn restrict_landlock(
    landlock: &crate::landlock::PreparedLandlock,
    msg_fd: RawFd,
) -> Result<(), (i32, Option<u32>)> {
    use nucleus_landlock_policy::{Enforcement, LandlockError};
    match landlock.compiled.restrict_self() {
        Ok(report) => {
            let status = match report.status {
                Enforcement::FullyEnforced => LandlockStatus::FullyEnforced,
                Enforcement::PartiallyEnforced => LandlockStatus::PartiallyEnforced,
                _ => LandlockStatus::NotEnforced,
            };
            let skipped = report.skipped_paths.len() as u32;
            channel::send(msg_fd, Message::Landlock { status, skipped });
            Ok(())
        }
        Err(err) => {
            let rule = match &err {
                LandlockError::MissingPath { path, .. } | LandlockError::OpenPath { path, .. } => {
                    landlock
                        .rule_paths
                        .iter()
                        .position(|p| p == path)
                        .map(|i| i as u32)
                }
                _ => None,
            };
            Err((err.raw_os_error().unwrap_or(libc::EIO), rule))
        }
    }
}

/// PID 1: reaps every zombie, forwards signals, and reports the workload's
/// status when it ends. Signals stay blocked and are taken with
/// `sigwaitinfo`; `saved` is the mask a helper it forks runs with.
fn init(p: &Prepared, msg_fd: RawFd, workload: libc::pid_t, saved: &libc::sigset_t) -> ! {
    let all = sys::full_sigset();
    // Signals handed to the runtime's tool: (tool pid, signal), so that a
    // tool that fails (the workload not started yet) falls back to a kill.
    let mut handed = [(0, 0); 8];
    loop {
        let (sig, code) = sys::sigwait(&all);
        // A session's init has no workload to forward to: it only reaps.
        if workload == 0 && sig != libc::SIGCHLD {
            continue;
        }
        if let Some((_, plan)) = p.signal_tool.iter().find(|(s, _)| *s == sig) {
            // The runtime delivers it to the workload, from in here.
            match (sys::fork(), plan.candidates.first()) {
                (Ok(0), Some(path)) => {
                    sys::sigmask(libc::SIG_SETMASK, saved);
                    sys::execve(path, &plan.argv_ptrs, &plan.envp_ptrs);
                    sys::exit(exit::CANNOT_EXECUTE);
                }
                (Ok(0), None) => sys::exit(exit::CANNOT_EXECUTE),
                (Ok(tool), _) => match handed.iter_mut().find(|h| h.0 == 0) {
                    Some(slot) => *slot = (tool, sig),
                    None => sys::kill(workload, sig),
                },
                _ => sys::kill(workload, sig),
            }
            continue;
        }
        if sig != libc::SIGCHLD {
            // What the sandbox's terminal sent its foreground group reached
            // a workload in the init's group already: forwarding it would
            // deliver it twice.
            let from_terminal = p.ctty.is_some()
                && code == libc::SI_KERNEL
                && matches!(
                    sig,
                    libc::SIGINT | libc::SIGQUIT | libc::SIGTSTP | libc::SIGWINCH
                );
            if !(from_terminal && sys::in_own_process_group(workload)) {
                sys::kill(workload, sig);
            }
            continue;
        }
        while let Some((pid, status, usage)) = sys::reap_any_usage() {
            if libc::WIFSTOPPED(status) {
                // A child that made the init its tracer (PTRACE_TRACEME):
                // let it go on with its signal.
                sys::ptrace_cont(pid, libc::WSTOPSIG(status));
            } else if pid == workload {
                // A spare's holder may answer at once when nothing else
                // is left to write or end (`spare.rs`).
                if p.spare.is_some() && sys::no_children() {
                    channel::send(msg_fd, usage_message(&usage));
                }
                channel::send(msg_fd, Message::Exited { status });
                sys::exit(0);
            } else if let Some(slot) = handed.iter_mut().find(|h| h.0 == pid) {
                // The tool could not deliver it: the runtime gets it itself.
                if status != 0 && slot.1 != libc::SIGPIPE {
                    sys::kill(workload, slot.1);
                }
                *slot = (0, 0);
            }
        }
    }
}

/// The workload's usage as a `Usage` record, each figure saturated.
fn usage_message(usage: &libc::rusage) -> Message {
    let us = |t: libc::timeval| {
        let total = (t.tv_sec as u64)
            .saturating_mul(1_000_000)
            .saturating_add(t.tv_usec as u64);
        u32::try_from(total).unwrap_or(u32::MAX)
    };
    Message::Usage {
        user_us: us(usage.ru_utime),
        sys_us: us(usage.ru_stime),
        maxrss_kb: u32::try_from(usage.ru_maxrss).unwrap_or(u32::MAX),
    }
}

/// Either workload: every signal unblocked (the runner blocked them before
/// clone), and death with the init.
fn workload_signals() {
    let none = sys::sigset(&[]);
    sys::sigmask(libc::SIG_SETMASK, &none);
    let _ = sys::set_pdeathsig();
}

/// [`exec_workload`] of a prepared plan.
fn exec_plan(exec: &ExecPlan, msg_fd: RawFd) -> ! {
    let candidates = exec.candidates.iter().map(|c| c.as_c_str());
    exec_workload(candidates, &exec.argv_ptrs, &exec.envp_ptrs, msg_fd)
}

/// The program workload: restore SIGPIPE, search and execute. (A wasm
/// workload keeps SIGPIPE ignored: WASI reports a closed pipe as `EPIPE`.)
fn exec_workload<'a>(
    candidates: impl Iterator<Item = &'a std::ffi::CStr>,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    msg_fd: RawFd,
) -> ! {
    sys::default_signal(libc::SIGPIPE);
    let mut denied = false;
    let mut errno = libc::ENOENT;
    for path in candidates {
        match sys::execve(path, argv, envp) {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            other => {
                errno = other;
                break;
            }
        }
    }
    if denied && errno == libc::ENOENT {
        errno = libc::EACCES;
    }
    channel::send(
        msg_fd,
        Message::Failed {
            stage: Stage::Exec,
            errno,
            detail: Detail::None,
        },
    );
    sys::exit(if errno == libc::ENOENT {
        exit::NOT_FOUND
    } else {
        exit::CANNOT_EXECUTE
    })
}

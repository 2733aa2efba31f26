//! The sandbox side of the launch: the steps of the init (PID 1), in order,
//! then the workload. Runs between `clone` and `execve`: only system calls on
//! data prepared by the parent, and `_exit`, never a return into parent code.
//! `docs/ARCHITECTURE.md` lists the stages in this file's order (a test in
//! `stage.rs` keeps the two in step).

use crate::channel::{self, Message};
use crate::prepare::{ExecPlan, MemfdNoexec, Prepared, Workload};
use crate::stage::Stage;
use crate::{exit, sys};
use std::os::fd::RawFd;

/// Reports a failed stage to the parent and leaves.
fn fail(msg_fd: RawFd, stage: Stage, errno: i32, detail: u32) -> ! {
    channel::send(
        msg_fd,
        Message::Failed {
            stage,
            errno,
            detail,
        },
    );
    sys::exit(exit::SETUP_FAILED)
}

/// Runs `result`'s error through [`fail`].
fn step<T>(msg_fd: RawFd, stage: Stage, result: Result<T, i32>) -> T {
    match result {
        Ok(value) => value,
        Err(errno) => fail(msg_fd, stage, errno, 0),
    }
}

fn errno_of(code: Option<i32>) -> i32 {
    code.unwrap_or(libc::EIO)
}

/// The init's setup, in launch order; each line says why it sits there
/// (the same order as the stage list of `docs/ARCHITECTURE.md`).
pub(crate) fn run(p: &Prepared, go_fd: RawFd, go_parent_fd: RawFd, msg_fd: RawFd) -> ! {
    // Our copy of the parent's end: without closing it, EOF never comes.
    sys::close(go_parent_fd);
    // Die with the runner: if it is gone, nobody would reap or limit us.
    step(msg_fd, Stage::Sync, sys::set_pdeathsig());
    // Wait until the parent wrote the id maps; EOF means the parent died.
    if step(msg_fd, Stage::Sync, sys::read_byte(go_fd)) == 0 {
        sys::exit(exit::SETUP_FAILED);
    }
    // Fileless execution closed for the whole PID namespace: the file is
    // writable only by the host's root id, which the init has until the
    // switch below.
    if p.memfd_noexec == MemfdNoexec::Sysctl {
        step(
            msg_fd,
            Stage::MemfdNoexec,
            sys::write_file(c"/proc/sys/vm/memfd_noexec", b"2"),
        );
    }
    // The namespace's share of what is charged to its creator host-wide,
    // while every capability of the namespace is still held.
    for (path, value) in &p.userns_limits {
        step(
            msg_fd,
            Stage::UsernsLimits,
            sys::write_file(path, value.as_bytes()),
        );
    }
    // Root of the new user namespace builds the view: the creator's host id
    // may be unmapped there (root-remapped), and files it made would not be.
    if p.setup_as_root {
        step(msg_fd, Stage::User, sys::switch_user(0, 0, p.set_groups));
        // A credential change clears the parent-death signal: arm it again.
        step(msg_fd, Stage::User, sys::set_pdeathsig());
    }
    // The filesystem view first: every later path is resolved inside it.
    if let Some(plan) = &p.plan {
        if let Err(e) = plan.apply() {
            fail(msg_fd, Stage::Mount, e.errno, e.step);
        }
    }
    // The working directory, inside the new view.
    step(msg_fd, Stage::Workdir, sys::chdir(&p.workdir));
    // Hostname and loopback need CAP_SYS_ADMIN / CAP_NET_ADMIN: before the drop.
    if let Some(name) = &p.hostname {
        step(
            msg_fd,
            Stage::Hostname,
            nucleus_ns::set_hostname(name).map_err(|e| errno_of(e.raw_os_error())),
        );
    }
    if p.loopback {
        step(
            msg_fd,
            Stage::Loopback,
            nucleus_ns::loopback_up().map_err(|e| errno_of(e.raw_os_error())),
        );
    }
    // Resource limits before anything of the workload runs.
    step(
        msg_fd,
        Stage::Rlimits,
        p.rlimit_policy
            .apply()
            .map_err(|e| errno_of(e.raw_os_error())),
    );
    // Relayed stdio in place, then no inherited fd may leak host files in;
    // a new session detaches the terminal.
    for &(from, to) in &p.stdio_dups {
        step(msg_fd, Stage::Session, sys::dup2(from, to));
    }
    step(msg_fd, Stage::Session, sys::close_fds_except(msg_fd));
    step(msg_fd, Stage::Session, sys::setsid());
    // The sandbox's own terminal (never the caller's) becomes the session's:
    // its ^C reaches the workload's foreground group.
    if let Some(fd) = p.ctty {
        step(msg_fd, Stage::Session, sys::set_controlling_terminal(fd));
    }
    // The workload's ids, then the capability drop (which needs the final uid).
    if p.keep_caps {
        step(
            msg_fd,
            Stage::User,
            nucleus_caps::set_keepcaps(true).map_err(|e| errno_of(e.raw_os_error())),
        );
    }
    step(
        msg_fd,
        Stage::User,
        sys::switch_user(p.uid, p.gid, p.set_groups),
    );
    step(msg_fd, Stage::User, sys::set_pdeathsig());
    step(
        msg_fd,
        Stage::Capabilities,
        p.caps
            .apply(p.uid == 0)
            .map(drop)
            .map_err(|e| errno_of(e.raw_os_error())),
    );
    // No exec may gain privileges back (setuid binaries, file capabilities).
    step(
        msg_fd,
        Stage::NoNewPrivs,
        nucleus_caps::set_no_new_privs().map_err(|e| errno_of(e.raw_os_error())),
    );
    // Orphans of the workload come to the init even without a PID
    // namespace; and the workload must not reach the init's channel through
    // /proc/1/fd (execve makes the workload dumpable again).
    step(msg_fd, Stage::NoNewPrivs, sys::set_child_subreaper());
    if !p.seccomp_listener {
        step(msg_fd, Stage::NoNewPrivs, sys::set_not_dumpable());
    }
    // Landlock after the view is final (its tmpfs mounts are covered) and
    // before the init forks, so the init is inside the domain too.
    if let Some(landlock) = &p.landlock {
        if let Err((errno, rule)) = restrict_landlock(landlock, msg_fd) {
            fail(msg_fd, Stage::Landlock, errno, rule);
        }
    }
    // The filter last: every earlier step needed syscalls it may forbid. The
    // init installs it before forking, so the init is covered too.
    if let Some(filter) = &p.seccomp {
        if p.seccomp_listener {
            // Record mode: the listener stays open in the init until it exits,
            // so the parent can always take its copy.
            let fd = step(
                msg_fd,
                Stage::Seccomp,
                filter
                    .apply_with_listener()
                    .map_err(|e| errno_of(e.raw_os_error())),
            );
            channel::send(msg_fd, Message::Listener { fd });
            // Only now: the parent must take the listener first, and this
            // call waits for its answer, so it cannot come too early.
            step(msg_fd, Stage::Seccomp, sys::set_not_dumpable());
        } else {
            step(
                msg_fd,
                Stage::Seccomp,
                filter.apply().map_err(|e| errno_of(e.raw_os_error())),
            );
        }
    }
    init(p, msg_fd)
}

/// Enters the Landlock domain and reports its status; on failure returns
/// the errno and the rule whose path failed (its index + 1, or 0).
fn restrict_landlock(
    landlock: &crate::landlock::PreparedLandlock,
    msg_fd: RawFd,
) -> Result<(), (i32, u32)> {
    use nucleus_landlock_policy::{Enforcement, LandlockError};
    match landlock.compiled.restrict_self() {
        Ok(report) => {
            let status = match report.status {
                Enforcement::FullyEnforced => 0,
                Enforcement::PartiallyEnforced => 1,
                _ => 2,
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
                        .map_or(0, |i| i as u32 + 1)
                }
                _ => 0,
            };
            Err((errno_of(err.raw_os_error()), rule))
        }
    }
}

/// PID 1: forks the workload, reaps every zombie, forwards signals, and
/// reports the workload's status when it ends. Signals stay blocked and are
/// taken with `sigwaitinfo`, so the init needs no handler.
fn init(p: &Prepared, msg_fd: RawFd) -> ! {
    let all = sys::full_sigset();
    let saved = sys::sigmask(libc::SIG_BLOCK, &all);
    let workload = step(msg_fd, Stage::Fork, sys::fork());
    if workload == 0 {
        sys::sigmask(libc::SIG_SETMASK, &saved);
        workload_signals();
        for &fd in &p.closed_stdio {
            sys::close(fd);
        }
        match &p.workload {
            Workload::Wasm(wasm) => crate::wasm::run_workload(wasm, msg_fd),
            Workload::Exec(exec) => exec_workload(exec, msg_fd),
        }
    }
    // Signals handed to the runtime's tool: (tool pid, signal), so that a
    // tool that fails (the workload not started yet) falls back to a kill.
    let mut handed = [(0, 0); 8];
    loop {
        let (sig, code) = sys::sigwait(&all);
        if let Some((_, plan)) = p.signal_tool.iter().find(|(s, _)| *s == sig) {
            // The runtime delivers it to the workload, from in here.
            match (sys::fork(), plan.candidates.first()) {
                (Ok(0), Some(path)) => {
                    sys::sigmask(libc::SIG_SETMASK, &saved);
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
        while let Some((pid, status)) = sys::wait_any(true) {
            if libc::WIFSTOPPED(status) {
                // A child that made the init its tracer (PTRACE_TRACEME):
                // let it go on with its signal.
                sys::ptrace_cont(pid, libc::WSTOPSIG(status));
            } else if pid == workload {
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

/// Either workload: every signal unblocked (the runner blocked them before
/// clone), and death with the init.
fn workload_signals() {
    let none = sys::sigset(&[]);
    sys::sigmask(libc::SIG_SETMASK, &none);
    let _ = sys::set_pdeathsig();
}

/// The program workload: restore SIGPIPE, search and execute. (A wasm
/// workload keeps SIGPIPE ignored: WASI reports a closed pipe as `EPIPE`.)
fn exec_workload(exec: &ExecPlan, msg_fd: RawFd) -> ! {
    sys::default_signal(libc::SIGPIPE);
    let mut denied = false;
    let mut errno = libc::ENOENT;
    for path in &exec.candidates {
        match sys::execve(path, &exec.argv_ptrs, &exec.envp_ptrs) {
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
            detail: 0,
        },
    );
    sys::exit(if errno == libc::ENOENT {
        exit::NOT_FOUND
    } else {
        exit::CANNOT_EXECUTE
    })
}

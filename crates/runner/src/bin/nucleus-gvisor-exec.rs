//! `nucleus-gvisor-exec`: what a gVisor session runs inside its sandbox.
//! `nucleus-run` binds it read-only into the session's container; it is
//! not meant to be run by hand.
//!
//! - `pause`: the container's first process. It only reaps: the orphans of
//!   the session's commands come to it.
//! - `run FILTER -- COMMAND…`: one command of the session, started by
//!   `runsc exec`. runsc 20221219 installs no seccomp filter on what it
//!   execs, so this installs the session's (`FILTER`, as
//!   `nucleus_seccomp::program_to_hex` wrote it, or `-` for none) in the
//!   command, after `no_new_privs`, right before its exec; the command
//!   starts in a process group of its own. This process is not dumpable:
//!   the command, which runs as the same user, cannot reach its memory.
//!   Its end is this process's (`128+N` for a signal). A `SIGTERM` (the
//!   runner's `runsc kill --pid` on a timeout or a client's hang-up) kills
//!   the command's whole group.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};

/// The exit codes `nucleus-run` uses (`nucleus_runner::exit`), written
/// again: linking the runner's library for them would make the debug
/// binary 30 times larger (395 MB against 13 MB), and it is bound into
/// every gVisor session.
const SETUP_FAILED: i32 = 125;
const CANNOT_EXECUTE: i32 = 126;
const NOT_FOUND: i32 = 127;
const SIGNAL_BASE: i32 = 128;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("pause") => pause(),
        Some("run") => run(&args[2..]),
        _ => fail(
            SETUP_FAILED,
            "usage: nucleus-gvisor-exec pause | run FILTER -- COMMAND...",
        ),
    }
}

fn fail(code: i32, message: &str) -> ! {
    eprintln!("nucleus-run: {message}");
    std::process::exit(code)
}

/// A signal set of `signals`.
fn set_of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value, which sigemptyset and
    // sigaddset then fill; both only write to the set passed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks `set`, to be taken with [`wait_signal`].
fn block(set: &libc::sigset_t) {
    // SAFETY: sets this thread's mask from a valid set; the old one is not kept.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
}

/// The next pending signal of `set` (blocked). A wait that fails for
/// another reason than a signal (a filter that denies it) ends this
/// process rather than spin.
fn wait_signal(set: &libc::sigset_t) -> libc::c_int {
    loop {
        // SAFETY: waits on a valid set; no siginfo is asked for.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig > 0 {
            return sig;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            fail(SETUP_FAILED, &format!("cannot wait for signals: {e}"));
        }
    }
}

/// Reaps whatever ends, for ever.
fn pause() -> ! {
    let set = set_of(&[libc::SIGCHLD]);
    block(&set);
    loop {
        // SAFETY: reaps any child without blocking; the status is not kept.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        wait_signal(&set);
    }
}

fn run(args: &[OsString]) -> ! {
    let (Some(filter), Some(dashes), Some(program)) = (args.first(), args.get(1), args.get(2))
    else {
        fail(SETUP_FAILED, "run: FILTER -- COMMAND expected")
    };
    if dashes != "--" {
        fail(SETUP_FAILED, "run: FILTER -- COMMAND expected");
    }
    let filter = match filter.to_str() {
        Some("-") => None,
        Some(text) => match nucleus_seccomp::program_from_hex(text) {
            Some(program) => Some(program),
            None => fail(SETUP_FAILED, "run: the seccomp filter is not readable"),
        },
        None => fail(SETUP_FAILED, "run: the seccomp filter is not readable"),
    };
    confine();
    let set = set_of(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP]);
    block(&set);
    let mut command = Command::new(program);
    command.args(&args[3..]).process_group(0);
    let unblocked = set_of(&[]);
    // SAFETY: the closure runs between fork and exec and only makes system
    // calls on the set and the program made above: it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // The command starts with no signal blocked (std keeps the mask).
            libc::pthread_sigmask(libc::SIG_SETMASK, &unblocked, std::ptr::null_mut());
            if let Some(program) = &filter {
                nucleus_seccomp::apply_program(program).map_err(|e| {
                    std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EINVAL))
                })?;
            }
            Ok(())
        })
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let name = program.to_string_lossy();
            match e.kind() {
                std::io::ErrorKind::NotFound => {
                    fail(NOT_FOUND, &format!("exec: {name}: command not found"))
                }
                std::io::ErrorKind::PermissionDenied => {
                    fail(CANNOT_EXECUTE, &format!("exec: {name}: permission denied"))
                }
                _ => fail(SETUP_FAILED, &format!("exec: {name}: {e}")),
            }
        }
    };
    let group = child.id() as libc::pid_t;
    loop {
        if wait_signal(&set) != libc::SIGCHLD {
            // SAFETY: signals the command's own process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            std::process::exit(SIGNAL_BASE + libc::SIGKILL);
        }
        if let Ok(Some(status)) = child.try_wait() {
            std::process::exit(code_of(status));
        }
    }
}

/// `no_new_privs` on this process, inherited by the command, and no
/// access to its memory for the command (which runs as the same user and
/// would find it unfiltered): the filter is the command's alone, from its
/// exec on, as in a one-shot run.
fn confine() {
    // SAFETY: prctl with constant arguments changes only this process's flags.
    let failed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
    };
    if failed {
        let e = std::io::Error::last_os_error();
        fail(SETUP_FAILED, &format!("cannot confine the helper: {e}"));
    }
}

/// The shell's code for how the command ended.
fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => SIGNAL_BASE + sig,
        (None, None) => SETUP_FAILED,
    }
}

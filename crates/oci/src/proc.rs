//! Processes seen through /proc: start times (to tell a reused pid),
//! liveness, and signal names.

use std::fs;
use std::io;

use crate::error::OciError;

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot);
/// `None` when the process is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// The process state letter (`R`, `S`, `Z`, ...), `None` when gone.
pub fn state_letter(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Whether `pid` is still the process that started at `start` and has not
/// exited (a zombie has exited).
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0
        && start_time(pid) == Some(start)
        && state_letter(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Parses a signal as runc does: a number, or a name with or without `SIG`,
/// any case.
pub fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name.strip_prefix("RTMIN+") {
        return off
            .parse::<i32>()
            .ok()
            .map(|o| libc::SIGRTMIN() + o)
            .filter(|s| *s <= 64);
    }
    if let Some(off) = name.strip_prefix("RTMAX-") {
        return off
            .parse::<i32>()
            .ok()
            .map(|o| libc::SIGRTMAX() - o)
            .filter(|s| *s >= 1);
    }
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Sets or clears `FD_CLOEXEC`.
pub fn set_cloexec(fd: i32, on: bool) -> Result<(), OciError> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl on an fd number; a bad fd only returns EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flag) } != 0 {
        return Err(OciError::io("fcntl(F_SETFD)", io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("SIGRTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }

    #[test]
    fn this_process_is_alive() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("own stat");
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
    }
}

//! Terminals, parent side: the caller's terminal and the sandbox's own pty.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Whether `fd` is open on a terminal.
pub(crate) fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only asks the kernel about an fd number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether `fd` is this process's controlling terminal and another process
/// group is in its foreground (we were started in the background).
pub(crate) fn terminal_in_background(fd: RawFd) -> bool {
    // SAFETY: plain calls on an fd number; tcgetpgrp fails (-1) when `fd`
    // is not our controlling terminal.
    let (fg, own) = unsafe { (libc::tcgetpgrp(fd), libc::getpgrp()) };
    fg > 0 && fg != own
}

/// The settings of the terminal on `fd`.
pub(crate) fn tcgetattr(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data, overwritten by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a live, writable termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(t)
}

/// Sets the terminal on `fd` to `t`, at once.
pub(crate) fn tcsetattr(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    loop {
        // SAFETY: `t` is a live termios; the call only reads it.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `t` in raw mode (`cfmakeraw`): no echo, no line editing, no signal
/// keys, no output processing.
pub(crate) fn raw_termios(t: &libc::termios) -> libc::termios {
    let mut raw = *t;
    // SAFETY: `raw` is a live termios that cfmakeraw edits in place.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw
}

/// The window size of the terminal on `fd`.
pub(crate) fn window_size(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data, overwritten by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the live `ws`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    (rc == 0).then_some(ws)
}

/// Sets the window size of the terminal on `fd` (its foreground process
/// group is sent `SIGWINCH` when it changes).
pub(crate) fn set_window_size(fd: RawFd, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize from the live `ws`.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws as *const libc::winsize) };
}

/// A new pseudo-terminal: (master, slave), both close-on-exec and neither
/// made the caller's controlling terminal.
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: plain call with integer flags; returns a new fd or -1.
    let fd = unsafe { libc::posix_openpt(flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: posix_openpt returned a new fd that nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain calls on the master we own.
    if unsafe { libc::grantpt(fd) } < 0 || unsafe { libc::unlockpt(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // The slave through the master itself (TIOCGPTPEER, Linux 4.13): no
    // lookup of a /dev/pts path.
    // SAFETY: ioctl on our master with integer flags; returns a new fd or -1.
    let slave = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

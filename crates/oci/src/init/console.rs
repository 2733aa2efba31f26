//! The terminal of a process with `process.terminal`: a new pty from the
//! container's devpts, its master sent over the console socket
//! (`SCM_RIGHTS`, as runc does), its slave the process's stdio and
//! controlling terminal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::scm::FdMessage;
use crate::error::OciError;

/// Opens a pty, sends the master to `socket_fd` and makes the slave the
/// controlling terminal and stdio of this process.
pub fn setup(socket_fd: i32, size: Option<(u16, u16)>) -> Result<(), OciError> {
    // SAFETY: posix_openpt returns a new fd or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(OciError::io("open /dev/ptmx", io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let m = master.as_raw_fd();
    // SAFETY: pty calls on the master fd.
    if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
        return Err(OciError::io("unlock pty", io::Error::last_os_error()));
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name into the buffer.
    if unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) } != 0 {
        return Err(OciError::io("ptsname", io::Error::last_os_error()));
    }
    // SAFETY: opens the slave by the name the kernel gave.
    let slave = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if slave < 0 {
        return Err(OciError::io("open pty slave", io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a live winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    FdMessage::new(b"/dev/ptmx".to_vec())
        .send(socket_fd, m)
        .map_err(|e| OciError::io("send the console to --console-socket", e))?;
    drop(master);
    // SAFETY: setsid, then take the slave as controlling terminal, then dup
    // it onto stdio; all plain syscalls on fds we own.
    unsafe {
        libc::setsid();
        if libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) != 0 {
            return Err(OciError::io("TIOCSCTTY", io::Error::last_os_error()));
        }
        for target in 0..3 {
            if libc::dup2(slave.as_raw_fd(), target) < 0 {
                return Err(OciError::io("dup2 pty", io::Error::last_os_error()));
            }
        }
        libc::close(socket_fd);
    }
    Ok(())
}

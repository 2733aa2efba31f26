//! The raw system calls of this crate, each a small function.

use std::io;
use std::os::fd::AsRawFd;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn sethostname(name: &[u8]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live byte slice.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
}

pub(crate) fn setns(file: &std::fs::File, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is owned by `file` and open for the whole call.
    check(unsafe { libc::setns(file.as_raw_fd(), nstype) })
}

struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this fd and close it once.
        unsafe { libc::close(self.0) };
    }
}

pub(crate) fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2) call; the fd is owned by `Fd` right after.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = Fd(raw);
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of `req`, which we own.
    check(unsafe { libc::ioctl(sock.0, libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: the kernel filled the flags member of the union above.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads `req`, which we own.
    check(unsafe { libc::ioctl(sock.0, libc::SIOCSIFFLAGS, &req) })
}

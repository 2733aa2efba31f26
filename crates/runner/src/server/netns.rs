//! A small pool of fresh network namespaces, made while the server is
//! idle: a clone that joins one skips the most expensive namespace to
//! make (about 0.5 ms here). Each is handed to one worker and closed by the
//! server; none is ever used twice.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(super) struct Pool {
    fds: Vec<OwnedFd>,
    size: usize,
}

impl Pool {
    /// A pool of `size`; empty (and never filled) when this process may not
    /// make network namespaces of its own user namespace (a rootless server).
    pub(super) fn new(size: usize) -> Pool {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        Pool {
            fds: Vec::new(),
            size: if root { size } else { 0 },
        }
    }

    pub(super) fn wants_more(&self) -> bool {
        self.fds.len() < self.size
    }

    /// A namespace for one sandbox, if one is ready.
    pub(super) fn take(&mut self) -> Option<OwnedFd> {
        self.fds.pop()
    }

    /// Makes one more namespace; a failure stops the pool for good (the
    /// sandboxes then make their own, as without it).
    pub(super) fn add_one(&mut self) {
        match make() {
            Ok(fd) => self.fds.push(fd),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make network namespaces ahead; each sandbox makes its own");
                self.size = 0;
            }
        }
    }
}

/// A new network namespace with `lo` up: the server enters it, brings `lo`
/// up, keeps an fd of it and goes back to its own namespace.
fn make() -> std::io::Result<OwnedFd> {
    let home = open_ns()?;
    // SAFETY: plain syscall; the server is single-threaded, so the whole
    // process moves, and it moves back below.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let made = nucleus_ns::loopback_up()
        .map_err(std::io::Error::other)
        .and_then(|()| open_ns());
    // SAFETY: plain syscall on an fd we own.
    if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        // Not back home: the server has no network use of its own, but no
        // more namespaces are made from here.
        return Err(std::io::Error::last_os_error());
    }
    made
}

fn open_ns() -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated literal path; the fd returned is new.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just opened and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

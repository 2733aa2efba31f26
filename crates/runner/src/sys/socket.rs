//! Unix socket calls of the launch server and its client that std lacks:
//! the peer's credentials, and file descriptors sent with `SCM_RIGHTS`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The uid of the process at the other end of a connected unix socket, as
/// the kernel recorded it at `connect` (`SO_PEERCRED`).
pub(crate) fn peer_uid(sock: BorrowedFd<'_>) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live `cred`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Room for the control message of [`MAX_FDS`](crate::protocol::MAX_FDS)
/// descriptors (and the alignment of `cmsghdr`).
pub(super) type Control = [u64; 8];

/// One `recvmsg` into `buf` (`sys::recv_fds`): the byte count (0 at the
/// end) and the fds that came with the bytes, close-on-exec. More fds than
/// the control buffer holds is an error (the kernel closed the ones that
/// did not fit).
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    // SAFETY: every fd of an SCM_RIGHTS message is new and ours alone.
    let take = |fd| fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    let (n, cut) =
        super::recv_fds(sock.as_raw_fd(), buf, take).map_err(io::Error::from_raw_os_error)?;
    if cut {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more file descriptors than stdin, stdout and stderr",
        ));
    }
    Ok(n)
}

/// One `sendmsg` of `bytes` with `fds` attached (`MSG_NOSIGNAL`: a closed
/// peer is an `EPIPE` error, not a signal); returns the bytes sent.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control: Control = [0; 8];
    // SAFETY: an all-zero msghdr is valid; it is pointed at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let payload = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is arithmetic.
        let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
        if space > std::mem::size_of::<Control>() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many file descriptors",
            ));
        }
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer holds `space` bytes (checked), enough
        // for one header and the fds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
            }
        }
    }
    // SAFETY: sendmsg reads the buffers `msg` points at.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes all of `bytes` (`MSG_NOSIGNAL`), the fds with the first part.
pub(crate) fn send_all(
    sock: BorrowedFd<'_>,
    mut bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let mut fds = fds;
    while !bytes.is_empty() {
        match send_with_fds(sock, bytes, fds) {
            Ok(n) => {
                bytes = &bytes[n..];
                fds = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connected pair of close-on-exec `SOCK_SEQPACKET` unix sockets: each
/// send is one message, with its fds.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: socketpair writes two fds into the live array.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `shutdown(SHUT_RDWR)`: every holder of the connection sees it hang up.
pub(crate) fn shutdown(sock: BorrowedFd<'_>) {
    // SAFETY: plain syscall on a live socket; an error (already shut) is moot.
    unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Sets a send timeout: a peer that stops reading cannot hold a writer forever.
pub(crate) fn set_send_timeout(sock: BorrowedFd<'_>, secs: libc::time_t) {
    let tv = libc::timeval {
        tv_sec: secs,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads the live timeval.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

/// Sets the process's umask; returns the previous one.
pub(crate) fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: plain syscall; it cannot fail.
    unsafe { libc::umask(mask) }
}

//! Receiving an fd sent with `SCM_RIGHTS`: what a console socket's or a
//! seccomp agent's peer does in tests.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// One `recvmsg` on `sock`: the bytes that came (up to 64 KiB) and the one
/// fd that came with them (close-on-exec). Panics when no fd, or more than
/// one, came.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::{UnixDatagram, UnixStream};
/// let (a, b) = UnixStream::pair().unwrap();
/// // The peer would send with SCM_RIGHTS; without one, recv_fd panics.
/// drop(a);
/// assert!(std::panic::catch_unwind(|| nucleus_test_support::recv_fd(b.as_raw_fd())).is_err());
/// # let _ = UnixDatagram::unbound;
/// ```
pub fn recv_fd(sock: RawFd) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 64 << 10];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr, then pointed at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg into the buffers above.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: reading the control message the kernel wrote into `control`.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null(), "no fd came with the bytes");
        assert_eq!(
            ((*cmsg).cmsg_level, (*cmsg).cmsg_type),
            (libc::SOL_SOCKET, libc::SCM_RIGHTS)
        );
        assert_eq!(
            (*cmsg).cmsg_len,
            libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize,
            "one fd"
        );
        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>())
    };
    buf.truncate(n as usize);
    // SAFETY: the fd was just received; it is ours alone.
    (buf, unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `sendmsg` of `bytes` on `sock` with `fds` attached (`SCM_RIGHTS`):
/// what a client of `nucleus-run serve` or a console socket's peer sends.
/// Panics unless every byte went.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair().unwrap();
/// nucleus_test_support::send_fds(a.as_raw_fd(), b"x", &[a.as_raw_fd()]);
/// let (bytes, _fd) = nucleus_test_support::recv_fd(b.as_raw_fd());
/// assert_eq!(bytes, b"x");
/// ```
pub fn send_fds(sock: RawFd, bytes: &[u8], fds: &[RawFd]) {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr, then pointed at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    assert!(space <= std::mem::size_of_val(&control), "too many fds");
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: one header and the fds, within the control buffer (checked).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), *fd);
        }
    }
    // SAFETY: sendmsg reads the buffers above.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    assert_eq!(
        n,
        bytes.len() as isize,
        "sendmsg: {}",
        std::io::Error::last_os_error()
    );
}

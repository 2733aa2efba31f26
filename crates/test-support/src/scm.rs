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

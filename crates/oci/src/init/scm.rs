//! One fd sent over a unix socket with `SCM_RIGHTS`, a payload with it:
//! the console's pty master (`--console-socket`) and the seccomp listener
//! (`linux.seccomp.listenerPath`). [`FdMessage::new`] makes the buffers;
//! [`FdMessage::send`] allocates nothing, so it may run right after the
//! seccomp filter is in place (an allocation's `brk` or `mmap` could be a
//! notified syscall that nobody answers yet).

use std::io;
use std::os::fd::RawFd;

/// A payload and room for one fd, ready to send.
pub struct FdMessage {
    payload: Vec<u8>,
    /// `CMSG_SPACE(sizeof(int))` bytes, aligned as a `cmsghdr` must be.
    control: Vec<u64>,
    control_len: usize,
}

impl FdMessage {
    /// The buffers for `payload` and one fd.
    pub fn new(payload: Vec<u8>) -> FdMessage {
        // SAFETY: CMSG_SPACE is a pure computation.
        let control_len = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        FdMessage {
            payload,
            control: vec![0; control_len.div_ceil(8)],
            control_len,
        }
    }

    /// Sends `fd` and the payload on `sock`: the fd with the first
    /// `sendmsg`, the rest of a payload the socket did not take at once in
    /// further ones (as the runtime spec allows). `MSG_NOSIGNAL`: a peer
    /// that went away is an error, not a `SIGPIPE`.
    pub fn send(&mut self, sock: RawFd, fd: RawFd) -> io::Result<()> {
        let mut sent = 0;
        let mut with_fd = true;
        while with_fd || sent < self.payload.len() {
            let control = with_fd.then_some((&mut self.control[..], self.control_len, fd));
            let n = send_once(sock, &self.payload[sent..], control);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            with_fd = false;
            sent += n as usize;
        }
        Ok(())
    }
}

/// One `sendmsg` of `data`; with `control` (the buffer, its length and the
/// fd), the fd as `SCM_RIGHTS`.
fn send_once(sock: RawFd, data: &[u8], control: Option<(&mut [u64], usize, RawFd)>) -> isize {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some((buf, len, fd)) = control {
        buf.fill(0);
        msg.msg_control = buf.as_mut_ptr().cast();
        msg.msg_controllen = len;
        // SAFETY: the control buffer is 8-byte aligned and holds
        // CMSG_SPACE(sizeof(int)) bytes: one header and one fd.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    // SAFETY: sendmsg reads the header built above, which points at
    // `iov` and the control buffer, both alive for the call.
    unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    fn recv_fd(sock: &UnixStream) -> (Vec<u8>, OwnedFd) {
        nucleus_test_support::recv_fd(sock.as_raw_fd())
    }

    #[test]
    fn an_fd_and_its_payload_arrive_together() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let (probe, probe_peer) = UnixStream::pair().expect("pair");
        let mut msg = FdMessage::new(b"hello".to_vec());
        msg.send(a.as_raw_fd(), probe.as_raw_fd()).expect("send");
        drop(a);
        let (first, fd) = recv_fd(&b);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).expect("read");
        assert_eq!([first, rest].concat(), b"hello");
        // The received fd is the same socket: what goes in comes out at the peer.
        let mut received = UnixStream::from(fd);
        std::io::Write::write_all(&mut received, b"x").expect("write");
        let mut byte = [0u8; 1];
        (&probe_peer).read_exact(&mut byte).expect("read");
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().expect("pair");
        drop(b);
        let err = FdMessage::new(b"x".to_vec())
            .send(a.as_raw_fd(), a.as_raw_fd())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }
}

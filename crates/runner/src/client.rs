//! The client side of [`crate::protocol`]: connect to a `nucleus-run serve`
//! socket, send one request with the workload's stdio, read the reply.
//!
//! ```no_run
//! use nucleus_runner::{client::Client, protocol::Request, Envelope};
//! use std::os::fd::AsFd;
//!
//! let env = Envelope::builder(["/bin/echo", "hi"]).build()?;
//! let stdout = std::io::stdout();
//! let client = Client::connect("/run/user/1000/nucleus.sock".as_ref())?;
//! // stdin /dev/null, stdout ours, stderr /dev/null:
//! let null = std::fs::File::open("/dev/null")?;
//! let reply = client.run(&Request::run(env), &[null.as_fd(), stdout.as_fd(), null.as_fd()])?;
//! println!("{}", reply.result.unwrap().get());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::protocol::{self, ProtocolError, Reply, Request, MAX_FDS, MAX_REPLY};
use crate::sys::socket;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed.
    #[error("the connection to the server failed: {0}")]
    Io(std::io::Error),
    /// The server's bytes are not a reply of this protocol.
    #[error("the server's reply is not valid: {0}")]
    Protocol(ProtocolError),
    /// The server closed the connection without a reply: it stopped (its
    /// sandboxes end with it) or its worker died.
    #[error("the server closed the connection without a reply (it stopped, or its worker died)")]
    NoReply,
    /// More stdio fds than a request carries.
    #[error("a request carries at most {MAX_FDS} file descriptors")]
    TooManyFds,
}

/// One connection to a server: one request, one reply.
#[derive(Debug)]
pub struct Client {
    conn: UnixStream,
}

impl Client {
    /// Connects to the server's socket.
    pub fn connect(path: &Path) -> std::io::Result<Client> {
        Ok(Client {
            conn: UnixStream::connect(path)?,
        })
    }

    /// Sends `req` with `stdio` (stdin, stdout, stderr; fewer are
    /// `/dev/null` in the sandbox) and waits for the reply. Dropping the
    /// client before (or the process dying) kills the sandbox.
    pub fn run(mut self, req: &Request, stdio: &[BorrowedFd<'_>]) -> Result<Reply, ClientError> {
        if stdio.len() > MAX_FDS {
            return Err(ClientError::TooManyFds);
        }
        let frame = protocol::encode_request(req).map_err(ClientError::Protocol)?;
        // A server that refuses (another uid, busy) answers at once and
        // closes: the send may fail while its reply waits to be read.
        let sent = socket::send_all(self.conn.as_fd(), &frame, stdio);
        let mut header = [0u8; 4];
        match (self.conn.read_exact(&mut header), sent) {
            (Ok(()), _) => {}
            (Err(_), Err(e)) => return Err(ClientError::Io(e)),
            (Err(e), Ok(())) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ClientError::NoReply)
            }
            (Err(e), Ok(())) => return Err(ClientError::Io(e)),
        }
        let len = protocol::frame_len(header, MAX_REPLY).map_err(ClientError::Protocol)?;
        // Room for most replies at once; a larger one grows as it comes.
        let mut body = Vec::with_capacity(len.min(1 << 20));
        (&mut self.conn)
            .take(len as u64)
            .read_to_end(&mut body)
            .map_err(ClientError::Io)?;
        if body.len() != len {
            return Err(ClientError::NoReply);
        }
        protocol::decode_reply(&body).map_err(ClientError::Protocol)
    }
}

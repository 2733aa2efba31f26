//! The server's socket: made private (mode 0600 from the start), a stale
//! one of a dead server replaced, a live one's never.

use crate::sys::socket;
use crate::RunError;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Binds and listens on `path`, non-blocking.
pub(super) fn bind(path: &Path) -> Result<UnixListener, RunError> {
    let fail = |what: &'static str, source: std::io::Error| RunError::ServeSocket {
        path: path.to_owned(),
        what,
        source,
    };
    remove_stale(path)?;
    // The umask makes the socket 0600 at bind: never a moment where
    // another user could connect. One thread (checked), so no other file
    // is created meanwhile.
    let old = socket::umask(0o177);
    let bound = UnixListener::bind(path);
    socket::umask(old);
    let listener = bound.map_err(|e| fail("cannot listen on", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("cannot make non-blocking", e))?;
    Ok(listener)
}

/// Removes a socket nobody listens on; refuses a live one and anything
/// that is not a socket.
fn remove_stale(path: &Path) -> Result<(), RunError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let fail = |what: &'static str, source: std::io::Error| RunError::ServeSocket {
        path: path.to_owned(),
        what,
        source,
    };
    if !meta.file_type().is_socket() {
        return Err(fail(
            "will not replace",
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "it is not a socket"),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(fail(
            "will not take over",
            std::io::Error::new(std::io::ErrorKind::AddrInUse, "a server listens there"),
        )),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            tracing::info!(path = %path.display(), "removing the socket of a server that is gone");
            std::fs::remove_file(path).map_err(|e| fail("cannot remove the stale", e))
        }
        Err(e) => Err(fail("cannot check", e)),
    }
}

/// The inode `bind` made at `path`, to remove only that file at the end.
pub(super) fn inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Removes the socket file if it is still the one bound (`ino`): a new
/// server may have replaced it meanwhile.
pub(super) fn remove(path: &Path, ino: Option<u64>) {
    if ino.is_some() && inode(path) == ino {
        let _ = std::fs::remove_file(path);
    }
}

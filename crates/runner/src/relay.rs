//! Output relayed through pipes, for a runtime that would not write through
//! the runner's own open file descriptions.
//!
//! gVisor's sentry writes a regular file it is handed at an offset of its
//! own, from 0: `(echo a; nucleus-run -- echo b) > f` would overwrite `a`.
//! So when stdout or stderr is a regular file (or a block device), the
//! runtime gets a pipe instead and the runner copies what comes out into
//! its own descriptor, in order, through the file description the shell
//! opened. Pipes, terminals, sockets and `/dev/null` pass through unchanged.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

/// The pipes of one run: set up before clone, copied after.
pub(crate) struct Relay {
    /// (target fd of the runner, read end, write end for the child).
    streams: Vec<(RawFd, Option<OwnedFd>, Option<OwnedFd>)>,
    copiers: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Pipes for those of stdout and stderr that are seekable files.
    pub(crate) fn for_seekable_output() -> io::Result<Relay> {
        let mut streams = Vec::new();
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            if needs_relay(fd) {
                let (r, w) = crate::sys::pipe()?;
                streams.push((fd, Some(r), Some(w)));
            }
        }
        Ok(Relay {
            streams,
            copiers: Vec::new(),
        })
    }

    /// The `dup2` pairs the init makes: each pipe's write end onto its fd.
    pub(crate) fn child_dups(&self) -> Vec<(RawFd, RawFd)> {
        self.streams
            .iter()
            .filter_map(|(fd, _, w)| w.as_ref().map(|w| (w.as_raw_fd(), *fd)))
            .collect()
    }

    /// After clone: closes the parent's write ends and starts copying.
    pub(crate) fn start(&mut self) -> io::Result<()> {
        for (fd, r, w) in &mut self.streams {
            drop(w.take());
            // A duplicate of our own stdout/stderr shares its file
            // description (and so its offset) with the shell's.
            // SAFETY: `fd` is 1 or 2, open for the life of the process
            // (needs_relay checked it).
            let target = unsafe { BorrowedFd::borrow_raw(*fd) }.try_clone_to_owned()?;
            if let Some(source) = r.take() {
                self.copiers
                    .push(std::thread::spawn(move || copy(source, target)));
            }
        }
        Ok(())
    }

    /// Waits until everything written was copied (every writer is gone).
    pub(crate) fn finish(self) {
        drop(self.streams);
        for c in self.copiers {
            let _ = c.join();
        }
    }
}

/// Copies until end-of-file. When the target refuses (a reader that went
/// away), the read end is closed, so the workload's next write gets
/// `SIGPIPE`, as it would writing there itself.
fn copy(source: OwnedFd, target: OwnedFd) {
    let mut source = File::from(source);
    let mut target = File::from(target);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if target.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Whether `fd` is open and a regular file or block device.
fn needs_relay(fd: RawFd) -> bool {
    match crate::sys::fstat_mode(fd) {
        Some(mode) => {
            let kind = mode & libc::S_IFMT;
            kind == libc::S_IFREG || kind == libc::S_IFBLK
        }
        None => false,
    }
}

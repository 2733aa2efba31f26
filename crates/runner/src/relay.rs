//! Output relayed through pipes, for a runtime (gVisor) that would not
//! write through the runner's own open file descriptions as a native
//! child does.
//!
//! - gVisor's sentry writes a regular file it is handed at an offset of its
//!   own, from 0: `(echo a; nucleus-run -- echo b) > f` would overwrite `a`.
//! - It answers a write to a pipe whose reader left with `EPIPE` but no
//!   `SIGPIPE`: `nucleus-run -- yes | head -1` would end with an error
//!   instead of the signal.
//!
//! So when stdout or stderr is a regular file, a pipe or a socket, the
//! runtime gets a pipe instead and the runner copies what comes out into
//! its own descriptor, in order, through the file description the caller
//! opened; when that write finds the reader gone, the copy stops and the
//! init is sent `SIGPIPE` to deliver it. `/dev/null` passes through
//! unchanged; a terminal is replaced by the sandbox's own (`console.rs`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

/// The pipes of one run: set up before clone, copied after.
pub(crate) struct Relay {
    /// (target fd of the runner, read end, write end for the child).
    streams: Vec<(RawFd, Option<OwnedFd>, Option<OwnedFd>)>,
    copiers: Vec<(RawFd, JoinHandle<Option<Kept>>)>,
    /// Keep the output (at most this many bytes a stream) instead of
    /// copying it to the runner's descriptors (`--capture`).
    capture: Option<usize>,
}

/// What `--capture` kept of one stream.
pub(crate) struct Kept {
    /// The first bytes, up to the limit.
    pub(crate) bytes: Vec<u8>,
    /// How many the workload wrote in all.
    pub(crate) total: u64,
}

impl Relay {
    /// Pipes for those of stdout and stderr that are files, pipes or
    /// sockets.
    pub(crate) fn for_output() -> io::Result<Relay> {
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
            capture: None,
        })
    }

    /// Pipes for stdout and stderr whose output is kept, up to `limit`
    /// bytes each (the rest is read and counted, so the workload never
    /// blocks), for the result (`--capture`).
    pub(crate) fn for_capture(limit: u64) -> io::Result<Relay> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut streams = Vec::new();
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            let (r, w) = crate::sys::pipe()?;
            streams.push((fd, Some(r), Some(w)));
        }
        Ok(Relay {
            streams,
            copiers: Vec::new(),
            capture: Some(limit),
        })
    }

    /// The `dup2` pairs the init makes: each pipe's write end onto its fd.
    pub(crate) fn child_dups(&self) -> Vec<(RawFd, RawFd)> {
        self.streams
            .iter()
            .filter_map(|(fd, _, w)| w.as_ref().map(|w| (w.as_raw_fd(), *fd)))
            .collect()
    }

    /// After clone: closes the parent's write ends and starts copying;
    /// `init` is told `SIGPIPE` when a reader went away.
    pub(crate) fn start(&mut self, init: &OwnedFd) -> io::Result<()> {
        for (fd, r, w) in &mut self.streams {
            drop(w.take());
            if let Some(limit) = self.capture {
                if let Some(source) = r.take() {
                    let kept = std::thread::spawn(move || Some(keep(File::from(source), limit)));
                    self.copiers.push((*fd, kept));
                }
                continue;
            }
            // A duplicate of our own stdout/stderr shares its file
            // description (and so its offset) with the shell's.
            // SAFETY: `fd` is 1 or 2, open for the life of the process
            // (needs_relay checked it).
            let target = unsafe { BorrowedFd::borrow_raw(*fd) }.try_clone_to_owned()?;
            if let Some(source) = r.take() {
                let init = init.try_clone()?;
                self.copiers.push((
                    *fd,
                    std::thread::spawn(move || {
                        let mut source = File::from(source);
                        if copy(&mut source, target) == Copied::ReaderGone {
                            crate::sys::pidfd_send_signal(&init, libc::SIGPIPE);
                            // Until the signal lands, the workload's writes
                            // must neither block nor fail first: what it
                            // writes meanwhile goes nowhere, as the reader is
                            // gone. A workload that ignores SIGPIPE gets EPIPE
                            // once the read end closes.
                            drain_for(&mut source, SIGPIPE_GRACE);
                        }
                        None
                    }),
                ));
            }
        }
        Ok(())
    }

    /// Waits until everything written was copied (every writer is gone);
    /// returns what was kept of stdout and stderr with `--capture`.
    pub(crate) fn finish(self) -> Option<(Kept, Kept)> {
        drop(self.streams);
        let mut kept: Vec<(RawFd, Option<Kept>)> = self
            .copiers
            .into_iter()
            .map(|(fd, c)| (fd, c.join().ok().flatten()))
            .collect();
        self.capture?;
        let mut take = |want: RawFd| {
            kept.iter_mut()
                .find(|(fd, _)| *fd == want)
                .and_then(|(_, k)| k.take())
                .unwrap_or(Kept {
                    bytes: Vec::new(),
                    total: 0,
                })
        };
        Some((take(libc::STDOUT_FILENO), take(libc::STDERR_FILENO)))
    }
}

/// Reads `source` to its end, keeping the first `limit` bytes.
fn keep(mut source: File, limit: usize) -> Kept {
    let mut bytes = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                let room = limit.saturating_sub(bytes.len());
                bytes.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Kept { bytes, total }
}

/// How a copy ended.
#[derive(PartialEq, Eq)]
enum Copied {
    /// The writers are gone (end of file), or reading failed.
    Done,
    /// The target's reader went away (`EPIPE`).
    ReaderGone,
}

/// Copies until end-of-file. When the target refuses because its reader
/// went away, the read end is closed (dropped), so the workload's next
/// write fails too, and the caller delivers `SIGPIPE`.
fn copy(source: &mut File, target: OwnedFd) -> Copied {
    let mut target = File::from(target);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Copied::Done,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Copied::Done,
        };
        crate::progress::clear();
        match target.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Copied::ReaderGone,
            Err(_) => return Copied::Done,
        }
    }
}

/// How long the workload's output is drained after its reader left, for
/// the `SIGPIPE` to arrive (the runtime's own tool delivers it).
const SIGPIPE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads and drops what comes, until end-of-file or `grace` is over.
fn drain_for(source: &mut File, grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !crate::sys::readable_within(source.as_raw_fd(), left) {
            return;
        }
        if matches!(source.read(&mut buf), Ok(0) | Err(_)) {
            return;
        }
    }
}

/// Whether `fd` is open and a regular file, block device, pipe or socket.
fn needs_relay(fd: RawFd) -> bool {
    match crate::sys::fstat_mode(fd) {
        Some(mode) => matches!(
            mode & libc::S_IFMT,
            libc::S_IFREG | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK
        ),
        None => false,
    }
}

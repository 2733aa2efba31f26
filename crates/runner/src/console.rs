//! The sandbox's own terminal. When the workload's stdin, stdout or stderr
//! would be the caller's terminal, it gets the slave of a new
//! pseudo-terminal instead, and the runner relays between its master and
//! the caller's terminal, as `docker run -t` does: what the workload sets on
//! its terminal (echo, canonical mode, window size, blocking mode) stays on
//! its own, and the caller's terminal has the same settings after the run
//! as before, under either runtime.
//!
//! - Before clone the pty is opened (close-on-exec, never the runner's
//!   controlling terminal); the slave takes the caller's settings and window
//!   size, and the place of each of stdin, stdout and stderr that is a
//!   terminal; files, pipes and sockets pass as they are. The init makes it
//!   the session's controlling terminal.
//! - When stdin and stdout are the terminal (an interactive run) and the
//!   runner is in its foreground, the caller's terminal is raw for the run,
//!   so every key reaches the workload's line discipline (^C interrupts its
//!   foreground group); the saved settings are put back when the console is
//!   dropped, on every way out but `SIGKILL`. Otherwise the terminal is
//!   neither read nor changed, and the workload's stdin is `/dev/null`:
//!   another process may be reading it (the pager the output is piped to,
//!   the shell of a background job), whose keys the runner would take and
//!   whose saved settings it would race; a background runner would be
//!   stopped.
//! - After clone, threads copy the caller's stdin to the master, and the
//!   master to the caller's first terminal among stdout, stderr and stdin;
//!   `SIGWINCH` resizes the pty. When the sandbox is gone, the master is
//!   read until the kernel says no slave is open any more (`EIO`), so the
//!   output arrives whole and in order.

use crate::outcome::Terminal;
use crate::prepare::Prepared;
use crate::sys;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

/// The terminal of one run: set up before clone, relayed after.
pub(crate) struct Console {
    pty: Option<Pty>,
    /// `/dev/null`, the stdin of a run that is not interactive, until the
    /// child has its copy.
    null: Option<OwnedFd>,
}

struct Pty {
    master: OwnedFd,
    /// Until the child has its copies.
    slave: Option<OwnedFd>,
    /// The caller's terminal that shows the output and gives the size.
    output: RawFd,
    /// The caller's stdin is copied to the master.
    input: bool,
    /// Closing it tells the copiers that the sandbox is gone.
    stop: Option<OwnedFd>,
    copiers: Vec<JoinHandle<()>>,
    /// Restores the caller's terminal (after the copiers, see `Drop`).
    _raw: Option<Restore>,
}

/// Puts the caller's terminal settings back when dropped.
struct Restore {
    fd: RawFd,
    saved: libc::termios,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = sys::tcsetattr(self.fd, &self.saved);
    }
}

/// How long the master is still read after the sandbox ended without the
/// kernel's `EIO`: a process that left the sandbox may hold the slave.
const LINGER_MS: libc::c_int = 200;

/// Of stdin, stdout and stderr, those that get the sandbox's terminal: each
/// that is a terminal and gets nothing else (`taken`), stdin only in an
/// interactive run; and whether stdin is a terminal left out so (it gets
/// `/dev/null`).
fn terminals(taken: &[RawFd]) -> (Vec<RawFd>, bool) {
    let mut fds: Vec<RawFd> = (0..3)
        .filter(|fd| !taken.contains(fd) && sys::is_terminal(*fd))
        .collect();
    // The caller's own stdout, whatever the workload's is (`--capture`).
    let interactive =
        sys::is_terminal(libc::STDOUT_FILENO) && !sys::terminal_in_background(libc::STDIN_FILENO);
    let null_stdin = fds.first() == Some(&libc::STDIN_FILENO) && !interactive;
    if null_stdin {
        fds.remove(0);
    }
    (fds, null_stdin)
}

/// Whether stdin, stdout and stderr all get the sandbox's terminal: only
/// then may gVisor's console be used, as the sentry makes one terminal of
/// the three.
pub(crate) fn whole(captured: bool) -> bool {
    !captured && terminals(&[]).0 == [0, 1, 2]
}

impl Console {
    /// Before clone: the workload's terminal in place of each of the
    /// caller's (`prepared`'s dups and controlling terminal); `None` when
    /// no stdio fd is a terminal.
    pub(crate) fn open(prepared: &mut Prepared) -> io::Result<Option<Console>> {
        let taken: Vec<RawFd> = prepared.stdio_dups.iter().map(|&(_, to)| to).collect();
        let (fds, null_stdin) = terminals(&taken);
        let mut console = Console {
            pty: None,
            null: None,
        };
        if null_stdin {
            let null = OwnedFd::from(File::open("/dev/null")?);
            prepared
                .stdio_dups
                .push((null.as_raw_fd(), libc::STDIN_FILENO));
            console.null = Some(null);
        }
        let Some(&first) = fds.first() else {
            return Ok(console.null.is_some().then_some(console));
        };
        let (master, slave) = sys::open_pty()?;
        let output = [1, 2, 0]
            .into_iter()
            .find(|&fd| sys::is_terminal(fd))
            .unwrap_or(first);
        let input = first == libc::STDIN_FILENO;
        // The workload's terminal starts as the caller's.
        let saved = sys::tcgetattr(first)?;
        sys::tcsetattr(slave.as_raw_fd(), &saved)?;
        if let Some(ws) = sys::window_size(output) {
            sys::set_window_size(master.as_raw_fd(), &ws);
        }
        let raw = if input {
            sys::tcsetattr(first, &sys::raw_termios(&saved))?;
            Some(Restore { fd: first, saved })
        } else {
            None
        };
        for &fd in &fds {
            prepared.stdio_dups.push((slave.as_raw_fd(), fd));
        }
        prepared.ctty = Some(first);
        console.pty = Some(Pty {
            master,
            slave: Some(slave),
            output,
            input,
            stop: None,
            copiers: Vec::new(),
            _raw: raw,
        });
        Ok(Some(console))
    }

    /// After clone: closes the parent's copies of what the child took and
    /// starts copying.
    pub(crate) fn start(&mut self) -> io::Result<()> {
        drop(self.null.take());
        let Some(pty) = self.pty.as_mut() else {
            return Ok(());
        };
        drop(pty.slave.take());
        sys::set_nonblocking(&pty.master)?;
        let (stop_r, stop_w) = sys::pipe()?;
        pty.stop = Some(stop_w);
        // A duplicate of the caller's fd shares its file description.
        // SAFETY: `output` is 0, 1 or 2, open for the life of the process
        // (a terminal, checked in `open`).
        let out = unsafe { BorrowedFd::borrow_raw(pty.output) }.try_clone_to_owned()?;
        let (master, stop) = (pty.master.try_clone()?, stop_r.try_clone()?);
        pty.copiers
            .push(std::thread::spawn(move || copy_output(master, out, stop)));
        if pty.input {
            // SAFETY: fd 0 is open for the life of the process (a
            // terminal, checked in `open`).
            let input =
                unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }.try_clone_to_owned()?;
            let master = pty.master.try_clone()?;
            pty.copiers.push(std::thread::spawn(move || {
                copy_input(input, master, stop_r)
            }));
        }
        Ok(())
    }

    /// On `SIGWINCH`: the pty takes the caller's window size (the kernel
    /// tells the workload's foreground group). False without a pty.
    pub(crate) fn resize(&self) -> bool {
        let Some(pty) = &self.pty else {
            return false;
        };
        if let Some(ws) = sys::window_size(pty.output) {
            sys::set_window_size(pty.master.as_raw_fd(), &ws);
        }
        true
    }

    /// After the sandbox is gone: copies what is left, restores the
    /// caller's terminal, and says what the workload had.
    pub(crate) fn finish(mut self) -> Option<Terminal> {
        self.pty.take().map(|pty| {
            drop(pty);
            Terminal::Relayed
        })
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // The input copier stops at once, the output copier once the
        // master is drained; then `_raw` puts the caller's terminal back.
        drop(self.stop.take());
        for copier in self.copiers.drain(..) {
            let _ = copier.join();
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Master to the caller's terminal, until every slave is closed (or,
/// after `stop`, nothing came for a while). When the caller's terminal
/// fails, the rest is read and dropped, so the workload never blocks.
fn copy_output(master: OwnedFd, out: OwnedFd, stop: OwnedFd) {
    let mut master = File::from(master);
    let mut out = Some(File::from(out));
    let mut buf = vec![0u8; 1 << 16];
    let mut ending = false;
    loop {
        let mut fds = [
            pollfd(master.as_raw_fd(), libc::POLLIN),
            pollfd(if ending { -1 } else { stop.as_raw_fd() }, libc::POLLIN),
        ];
        let timeout = if ending { LINGER_MS } else { -1 };
        match sys::poll(&mut fds, timeout) {
            Ok(0) if ending => return,
            Err(_) => return,
            _ => {}
        }
        if fds[1].revents != 0 {
            ending = true;
        }
        if fds[0].revents == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                crate::progress::clear();
                if out
                    .as_mut()
                    .is_some_and(|o| write_all(o, &buf[..n]).is_err())
                {
                    out = None;
                }
            }
            Err(e) if is_transient(&e) => {}
            // EIO: no slave is open and everything was read.
            Err(_) => return,
        }
    }
}

/// The caller's stdin to the master, until `stop`, the end of stdin or a
/// failed write (no slave is open any more).
fn copy_input(input: OwnedFd, master: OwnedFd, stop: OwnedFd) {
    let mut input = File::from(input);
    let mut master = File::from(master);
    let mut buf = [0u8; 4096];
    loop {
        if !ready(input.as_raw_fd(), libc::POLLIN, &stop) {
            return;
        }
        let n = match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if is_transient(&e) => continue,
            Err(_) => return,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            match master.write(data) {
                Ok(0) => {}
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            if !data.is_empty() && !ready(master.as_raw_fd(), libc::POLLOUT, &stop) {
                return;
            }
        }
    }
}

/// Waits until `fd` is ready for `events`; false when `stop` came first.
fn ready(fd: RawFd, events: libc::c_short, stop: &OwnedFd) -> bool {
    loop {
        let mut fds = [pollfd(fd, events), pollfd(stop.as_raw_fd(), libc::POLLIN)];
        if sys::poll(&mut fds, -1).is_err() || fds[1].revents != 0 {
            return false;
        }
        if fds[0].revents != 0 {
            return true;
        }
    }
}

/// Writes all of `data`, waiting when the caller's terminal is
/// non-blocking and full.
fn write_all(out: &mut File, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match out.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [pollfd(out.as_raw_fd(), libc::POLLOUT)];
                sys::poll(&mut fds, -1)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

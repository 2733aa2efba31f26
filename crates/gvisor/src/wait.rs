//! Waiting for a child with a deadline, and collecting piped output.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::sys;

/// What a short helper command printed.
#[derive(Debug)]
pub(crate) struct HelperOutput {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd` (whose stdout/stderr must be piped) to completion, or kills it
/// after `timeout` and returns `Ok(None)`.
pub(crate) fn output_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> io::Result<Option<HelperOutput>> {
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().map(read_out);
    let err = child.stderr.take().map(read_err);
    let status = wait_timeout(&mut child, timeout)?;
    if status.is_none() {
        // Already exited is fine; the wait below reaps either way.
        let _ = child.kill();
        child.wait()?;
    }
    let stdout = String::from_utf8_lossy(&join(out)).into_owned();
    let stderr = String::from_utf8_lossy(&join(err)).into_owned();
    Ok(status.map(|_| HelperOutput { stdout, stderr }))
}

/// Reads a child's stdout to its end on a thread.
pub(crate) fn read_out(pipe: ChildStdout) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || read_all(pipe))
}

/// Reads a child's stderr to its end on a thread.
pub(crate) fn read_err(pipe: ChildStderr) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || read_all(pipe))
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    // A read error ends the capture; what was read so far is kept.
    let _ = r.read_to_end(&mut buf);
    buf
}

/// The bytes a reader thread collected (empty if there was none).
pub(crate) fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Waits for `child` until `timeout`; `Ok(None)` if it is still running.
///
/// Uses a pidfd so the wake-up is immediate; falls back to polling
/// `try_wait` on kernels without `pidfd_open` (before 5.3).
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let pidfd = match sys::pidfd_open(child.id()) {
        Ok(fd) => fd,
        Err(_) => return poll_try_wait(child, deadline),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        match sys::poll_readable(pidfd.as_fd(), ms) {
            Ok(true) => return child.wait().map(Some),
            Ok(false) if Instant::now() >= deadline => return Ok(None),
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn poll_try_wait(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn piped(args: &[&str]) -> Command {
        let mut c = Command::new(args[0]);
        c.args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    #[test]
    fn collects_output() {
        let out = output_with_timeout(
            piped(&["/bin/sh", "-c", "echo out; echo err >&2"]),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn times_out_quickly() {
        let start = Instant::now();
        let out =
            output_with_timeout(piped(&["/bin/sleep", "30"]), Duration::from_millis(200)).unwrap();
        assert!(out.is_none());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn wait_returns_status() {
        let mut child = piped(&["/bin/sh", "-c", "exit 3"]).spawn().unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(3));
    }
}

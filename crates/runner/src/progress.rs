//! A status line on the caller's terminal while a slow step runs: a module
//! compiled cold, the first gVisor start. Off unless the program turns it
//! on ([`enable`], which `nucleus-run` calls when stderr is a terminal and
//! the result is not JSON); a library user's process prints nothing.
//!
//! The line is written to stderr and erased (`\r`, erase to end of line)
//! when the step ends, or before the first byte of the workload's output
//! that the runner relays to a terminal, whichever comes first: the
//! workload's output never shares a line with it.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Erases the current line of a terminal.
const ERASE: &[u8] = b"\r\x1b[K";

/// Turns the status line on when stderr is a terminal; returns whether it
/// did.
///
/// ```
/// // In a test, stderr is not a terminal: nothing is turned on.
/// let _on = nucleus_runner::progress::enable();
/// ```
pub fn enable() -> bool {
    // SAFETY: isatty only reads the fd's state.
    let tty = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
    ENABLED.store(tty, Ordering::Relaxed);
    tty
}

/// Shows `what` as the status line (when turned on).
pub(crate) fn show(what: &str) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let line = format!("\r\x1b[Knucleus-run: {what}\u{2026}");
    write_stderr(line.as_bytes());
    SHOWN.store(true, Ordering::Release);
}

/// Erases the status line if one is shown; cheap otherwise (one atomic
/// load), so a relay calls it before each write.
pub(crate) fn clear() {
    if SHOWN.load(Ordering::Acquire) && SHOWN.swap(false, Ordering::AcqRel) {
        write_stderr(ERASE);
    }
}

/// Best effort: a status line that cannot be written is not worth an error.
fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_clear_is_idempotent() {
        assert!(!ENABLED.load(Ordering::Relaxed));
        show("compiling");
        assert!(!SHOWN.load(Ordering::Relaxed), "nothing shown while off");
        clear();
        clear();
    }
}

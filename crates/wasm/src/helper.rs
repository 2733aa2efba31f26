//! Compiling in a forked helper process: the compile's memory and time are the helper's, so
//! a caller can contain them (a cgroup, a deadline) without containing itself, and a module
//! built to exhaust the compiler costs the caller nothing it did not allow.
//!
//! The helper is forked from the (single-threaded) caller, waits until the caller has
//! admitted it (moved it into a cgroup, say), turns WAT into binary, compiles, serializes and
//! writes the artifact to a pipe; the caller reads it, enforces the deadline (SIGKILL), reaps
//! the helper with its resource usage and deserializes the artifact. Compilation is serial
//! (wasmtime's `parallel-compilation` is not built): the helper starts no thread.

use crate::compile::{self, to_binary};
use crate::error::WasmError;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// What the caller does with the helper's pid before it starts compiling.
pub type AdmitFn<'a> = dyn Fn(i32) -> Result<(), Box<dyn Error + Send + Sync>> + 'a;

/// How [`WasmPolicy::prepare_in_helper`](crate::WasmPolicy::prepare_in_helper) compiles: in a
/// forked helper process, killed at `timeout`, admitted by `admit` before it starts.
///
/// ```no_run
/// use nucleus_wasm::{CompileHelper, WasmPolicy};
/// use std::time::Duration;
///
/// let admit = |pid: i32| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     std::fs::write("/sys/fs/cgroup/memory/box/cgroup.procs", pid.to_string())?;
///     Ok(())
/// };
/// let helper = CompileHelper::new(Some(Duration::from_secs(1))).with_admit(&admit);
/// let prepared = WasmPolicy::new("big.wat").prepare_in_helper(&helper)?;
/// println!("{} ms", prepared.report().compile_ms);
/// # Ok::<(), nucleus_wasm::WasmError>(())
/// ```
pub struct CompileHelper<'a> {
    /// Wall-clock limit on the compile (from the fork to the artifact): the helper is killed
    /// with `SIGKILL` when it runs out, and preparation fails with
    /// [`WasmError::CompileKilled`].
    pub timeout: Option<Duration>,
    /// Called in the caller's process with the helper's pid, before the helper does anything:
    /// the place to move it into a cgroup. An error kills the helper and fails preparation
    /// with [`WasmError::CompileAdmit`], which carries it.
    pub admit: Option<&'a AdmitFn<'a>>,
}

impl std::fmt::Debug for CompileHelper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileHelper")
            .field("timeout", &self.timeout)
            .field("admit", &self.admit.is_some())
            .finish()
    }
}

impl<'a> CompileHelper<'a> {
    /// A helper killed after `timeout` (none: no limit), admitted by no one.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            admit: None,
        }
    }

    /// The same helper, admitted by `admit` before it starts.
    #[must_use]
    pub fn with_admit(mut self, admit: &'a AdmitFn<'a>) -> Self {
        self.admit = Some(admit);
        self
    }
}

/// What a helper produced.
pub(crate) struct HelperOutput {
    /// `Module::serialize` (or `Component::serialize`) of the compiled module.
    pub artifact: Vec<u8>,
    /// From the fork to the artifact read.
    pub elapsed: Duration,
    /// The helper's peak resident set (`ru_maxrss`), in bytes.
    pub peak_memory_bytes: u64,
}

/// Message tags, helper to caller: `TAG | length (8, LE) | bytes`.
const TAG_ARTIFACT: u8 = 0;
const TAG_PARSE_WAT: u8 = 1;
const TAG_COMPILE: u8 = 2;

/// Compiles `source` in a forked helper. The caller must be single-threaded (the helper
/// allocates after the fork).
pub(crate) fn compile(
    helper: &CompileHelper<'_>,
    engine: &Engine,
    source: &[u8],
    path: &Path,
) -> Result<HelperOutput, WasmError> {
    let helper_err = |source| WasmError::CompileHelper {
        path: path.to_owned(),
        source,
    };
    let started = Instant::now();
    let running = Running::spawn(engine, source, path).map_err(helper_err)?;
    let running = running.release(helper.admit, path)?;
    let deadline = helper.timeout.and_then(|t| started.checked_add(t));
    let ended = running.collect(deadline).map_err(helper_err)?;
    ended.into_output(started.elapsed(), source, path)
}

/// A helper forked and waiting for its go.
struct Running {
    pid: i32,
    /// The go pipe's write end, until one byte on it starts the compile.
    go: Option<OwnedFd>,
    /// The artifact pipe's read end.
    out: OwnedFd,
}

/// A helper reaped: what it wrote and how it ended.
struct Ended {
    bytes: Vec<u8>,
    timed_out: bool,
    status: i32,
    peak_memory_bytes: u64,
}

impl Running {
    /// Forks the helper, which waits for its go; the child never returns from here.
    fn spawn(engine: &Engine, source: &[u8], path: &Path) -> std::io::Result<Running> {
        let (go_r, go_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let parent = std::process::id();
        match crate::sys::fork()? {
            None => {
                drop((go_w, out_r));
                helper_main(parent, go_r, out_w, engine, source, path)
            }
            Some(pid) => Ok(Running {
                pid,
                go: Some(go_w),
                out: out_r,
            }),
        }
    }

    /// Kills and reaps the helper, when it will not be waited for otherwise.
    fn abandon(self) {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = crate::sys::wait(self.pid);
    }

    /// Hands the helper's pid to `admit`, then lets it start.
    fn release(mut self, admit: Option<&AdmitFn<'_>>, path: &Path) -> Result<Running, WasmError> {
        if let Some(admit) = admit {
            if let Err(source) = admit(self.pid) {
                self.abandon();
                return Err(WasmError::CompileAdmit {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let go = self
            .go
            .take()
            .map_or(Ok(()), |go| File::from(go).write_all(&[1]));
        if let Err(source) = go {
            self.abandon();
            return Err(WasmError::CompileHelper {
                path: path.to_owned(),
                source,
            });
        }
        Ok(self)
    }

    /// Reads the helper's output to its end, killing it at `deadline`, and reaps it.
    fn collect(self, deadline: Option<Instant>) -> std::io::Result<Ended> {
        let (bytes, timed_out) = match read_until(&self.out, deadline) {
            Ok(read) => read,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        if timed_out {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        let (status, peak_memory_bytes) = crate::sys::wait(self.pid)?;
        Ok(Ended {
            bytes,
            timed_out,
            status,
            peak_memory_bytes,
        })
    }
}

impl Ended {
    /// The artifact, or why there is none: killed, crashed, or the compile's own error.
    fn into_output(
        self,
        elapsed: Duration,
        source: &[u8],
        path: &Path,
    ) -> Result<HelperOutput, WasmError> {
        let status = self.status;
        let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
        if self.timed_out || signal.is_some() {
            return Err(WasmError::CompileKilled {
                path: path.to_owned(),
                timed_out: self.timed_out,
                signal,
                elapsed,
                peak_memory_bytes: self.peak_memory_bytes,
                module_sha256: String::new(),
            });
        }
        let message = match parse_message(&self.bytes) {
            Some(m) if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => m,
            _ => {
                return Err(WasmError::CompileHelper {
                    path: path.to_owned(),
                    source: std::io::Error::other(format!(
                        "the compile helper ended without a result (wait status {status:#x})"
                    )),
                })
            }
        };
        match message {
            (TAG_ARTIFACT, artifact) => Ok(HelperOutput {
                artifact: artifact.to_vec(),
                elapsed,
                peak_memory_bytes: self.peak_memory_bytes,
            }),
            (TAG_PARSE_WAT, text) => {
                // The helper parsed it within its limits; parsing again here recovers the
                // parser's own error, with line and column.
                match to_binary(source, path) {
                    Err(e) => Err(e),
                    Ok(_) => Err(remote_compile_error(path, text)),
                }
            }
            (_, text) => Err(remote_compile_error(path, text)),
        }
    }
}

fn remote_compile_error(path: &Path, text: &[u8]) -> WasmError {
    WasmError::Compile {
        path: path.to_owned(),
        source: wasmtime::Error::msg(String::from_utf8_lossy(text).into_owned()),
    }
}

/// `(tag, bytes)` of a complete message.
fn parse_message(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let body = rest.get(8..)?;
    (body.len() as u64 == len).then_some((tag, body))
}

/// A pipe, both ends close-on-exec: `(read, write)`.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Reads `fd` to its end, or until `deadline`; returns what was read and whether the deadline
/// passed first.
fn read_until(fd: &OwnedFd, deadline: Option<Instant>) -> std::io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok((bytes, true));
                }
                // Rounded up: never wake a hair before the deadline, then spin.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return Ok((bytes, false)),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The helper's whole life: wait to be admitted, compile, write the result, `_exit`. Never
/// returns into the caller's code, whatever happens (a panic included).
///
/// It runs in a forked child that allocates freely (the caller was single-threaded when it
/// forked), so nix's wrappers are as good here as anywhere.
fn helper_main(
    parent: u32,
    go: OwnedFd,
    out: OwnedFd,
    engine: &Engine,
    source: &[u8],
    path: &Path,
) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Dies with the caller: a killed runner leaves no compile behind.
        die_with_parent(parent);
        let mut byte = [0u8; 1];
        match File::from(go).read(&mut byte) {
            Ok(1) => {}
            _ => return 1,
        }
        let (tag, body) = match compile_here(engine, source, path) {
            Ok(artifact) => (TAG_ARTIFACT, artifact),
            Err(WasmError::ParseWat { source, .. }) => (TAG_PARSE_WAT, source.to_string().into()),
            Err(WasmError::Compile { source, .. }) => (TAG_COMPILE, format!("{source:#}").into()),
            Err(other) => (TAG_COMPILE, other.to_string().into_bytes()),
        };
        let mut out = File::from(out);
        let written = out
            .write_all(&[tag])
            .and_then(|()| out.write_all(&(body.len() as u64).to_le_bytes()))
            .and_then(|()| out.write_all(&body));
        i32::from(written.is_err())
    }));
    crate::sys::exit(code.unwrap_or(101))
}

/// `SIGKILL` when the parent dies (`PR_SET_PDEATHSIG`); exits at once if it already has.
fn die_with_parent(parent: u32) {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid().as_raw() as u32 != parent {
        crate::sys::exit(1);
    }
}

/// The compile itself: binary form, compiled, serialized.
fn compile_here(engine: &Engine, source: &[u8], path: &Path) -> Result<Vec<u8>, WasmError> {
    let (compiled, _) = compile::compile(engine, source, path)?;
    compiled.serialize().map_err(|source| WasmError::Compile {
        path: path.to_owned(),
        source,
    })
}

//! Real launches for the doctor: `/bin/true` in the native envelope and
//! under gVisor on each platform runsc knows, so that what the report says
//! works was tried, not guessed.
//!
//! Each try is this very binary started as a child (`nucleus-run --json
//! ... -- /bin/true`), all of them at once, each with its own `--timeout`
//! and a deadline after which the doctor kills it: a platform that hangs
//! (`kvm` on some machines) is reported as not working, a few seconds
//! later, instead of hanging the doctor.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `--timeout` each try runs with.
const TRY_TIMEOUT: &str = "4s";
/// When the doctor kills a try that has not ended by itself.
const DEADLINE: Duration = Duration::from_secs(6);
/// How much of a try's stderr is kept.
const LOG_CHARS: usize = 400;

/// One real launch of `/bin/true`, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Launch {
    /// `native` or `gvisor`.
    pub(crate) runtime: String,
    /// The gVisor platform, for `gvisor`.
    pub(crate) platform: Option<String>,
    /// `/bin/true` ran and exited 0.
    pub(crate) ok: bool,
    /// The exit status of `nucleus-run`, if it exited.
    pub(crate) exit_code: Option<i32>,
    /// Why not, when not: the result's error, else the last line of stderr.
    pub(crate) error: Option<String>,
    /// The end of its stderr (runsc's own messages land there).
    pub(crate) log: Option<String>,
    /// How long it took, in milliseconds.
    pub(crate) millis: u64,
}

/// A started try.
struct Started {
    launch: Launch,
    child: Option<Child>,
    start: Instant,
}

/// Launches the native envelope (when `native`) and gVisor on each of
/// `platforms` with `runsc`, concurrently; returns when all have ended
/// or were killed at the deadline.
pub(crate) fn run_all(native: bool, runsc: Option<&Path>, platforms: &[String]) -> Vec<Launch> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut started = Vec::new();
    if native {
        let args = ["--trust-level", "trusted", "--runtime", "native"];
        started.push(start(&exe, "native", None, &args));
    }
    for platform in platforms {
        let mut args = vec!["--trust-level", "untrusted", "--runtime", "gvisor"];
        args.extend(["--gvisor-platform", platform]);
        let path = runsc.map(|p| p.to_string_lossy().into_owned());
        if let Some(path) = &path {
            args.extend(["--runsc", path]);
        }
        started.push(start(&exe, "gvisor", Some(platform), &args));
    }
    // The pipes are drained by a thread each (a chatty runsc must not
    // block on a full pipe); the children are polled here.
    let readers: Vec<_> = started
        .iter_mut()
        .map(|s| {
            let out = s.child.as_mut().and_then(|c| c.stdout.take());
            let err = s.child.as_mut().and_then(|c| c.stderr.take());
            (drain(out), drain(err))
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;
    let mut codes: Vec<Option<Option<i32>>> = started.iter().map(|_| None).collect();
    loop {
        let mut running = false;
        for (s, code) in started.iter_mut().zip(&mut codes) {
            let Some(child) = s.child.as_mut() else {
                continue;
            };
            if code.is_some() {
                continue;
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    *code = Some(status.code());
                    s.launch.millis = millis(s.start);
                }
                Ok(None) if Instant::now() < deadline => running = true,
                _ => {
                    // Only our own child, by its pid.
                    let _ = child.kill();
                    let _ = child.wait();
                    *code = Some(None);
                    s.launch.millis = millis(s.start);
                    s.launch.error = Some(format!(
                        "did not finish within {} s (killed)",
                        DEADLINE.as_secs()
                    ));
                }
            }
        }
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    started
        .into_iter()
        .zip(codes)
        .zip(readers)
        .map(|((s, code), (out, err))| finish(s.launch, code.flatten(), out, err))
        .collect()
}

/// Starts one try; a spawn failure is a finished, failed try.
fn start(exe: &Path, runtime: &str, platform: Option<&String>, args: &[&str]) -> Started {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .args(["--timeout", TRY_TIMEOUT, "--json", "--", "/bin/true"])
        .env_remove("NUCLEUS_LOG")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut launch = Launch {
        runtime: runtime.to_owned(),
        platform: platform.cloned(),
        ..Launch::default()
    };
    let child = cmd
        .spawn()
        .map_err(|e| launch.error = Some(format!("cannot start {}: {e}", exe.display())))
        .ok();
    Started {
        launch,
        child,
        start: Instant::now(),
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// The try's verdict from its exit status, its JSON result and stderr.
fn finish(
    mut launch: Launch,
    code: Option<i32>,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
) -> Launch {
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let result = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    launch.exit_code = code;
    launch.ok = code == Some(0) && launch.error.is_none();
    if !launch.ok && launch.error.is_none() {
        let field = |name: &str| {
            result
                .as_ref()
                .and_then(|r| r.get(name)?.as_str().map(str::to_owned))
        };
        let from_result = if field("killed_by").as_deref() == Some("timeout") {
            Some(format!("hangs: killed after {TRY_TIMEOUT} (--timeout)"))
        } else {
            field("error")
        };
        let last_line = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim_start_matches("nucleus-run: ").to_owned());
        launch.error = from_result
            .or(last_line)
            .or_else(|| code.map(|c| format!("exit status {c}")));
    }
    // runsc's own lines: nucleus-run's repeat the error.
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("nucleus-run: "))
        .collect();
    let err = err.join("\n");
    if !err.is_empty() {
        let tail: String = err.chars().rev().take(LOG_CHARS).collect();
        launch.log = Some(tail.chars().rev().collect());
    }
    launch
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

//! Runs the Envelope and reports: error chains on stderr, JSON on request.

use crate::cli::{RunArgs, SeccompCmd};
use nucleus_runner::{exit, launch, Outcome, RunError};
use std::io::Write;
use std::os::fd::FromRawFd;

/// Runs the sandbox described by the flags; returns the exit code.
pub(crate) fn run(args: RunArgs) -> i32 {
    let (print_config, json, result_fd) = (args.print_config, args.json, args.result_fd);
    let server = args.server.clone().or_else(crate::remote::from_env);
    let env = match args.envelope() {
        Ok(env) => env,
        Err(err) => return fail(&err),
    };
    // The captured output travels in the result: it is printed.
    let json = json || env.capture.is_some();
    if print_config {
        return match toml::to_string(&env.with_default_env_resolved()) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(err) => {
                eprintln!("nucleus-run: cannot print the config: {err}");
                exit::SETUP_FAILED
            }
        };
    }
    if let Some(fd) = result_fd {
        // SAFETY: F_GETFD only reads the flags of an fd number.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            eprintln!("nucleus-run: --result-fd {fd} is not an open file descriptor");
            return exit::SETUP_FAILED;
        }
    }
    if let Some(path) = server {
        if let Some(served) = crate::remote::run(&path, &env, json || result_fd.is_some()) {
            return print_served(served, result_fd);
        }
    }
    // A status line for slow steps: on a terminal, never with a JSON
    // result or a log (which have the terminal's lines to themselves).
    if !json && result_fd.is_none() && !tracing::dispatcher::has_been_set() {
        nucleus_runner::progress::enable();
    }
    let outcome = match launch(&env) {
        Ok(outcome) => outcome,
        Err(err) => return fail(&err),
    };
    let cleaned = outcome.cleaned.iter().map(|p| p.display());
    print_notices(cleaned, outcome.error.as_deref());
    if json || result_fd.is_some() {
        write_json(&outcome, result_fd);
    }
    outcome.exit_code
}

/// Prints what a run through a server gave, as a direct run prints its
/// outcome; returns its exit code.
pub(crate) fn print_served(served: crate::remote::Served, result_fd: Option<i32>) -> i32 {
    print_notices(&served.cleaned, served.error.as_deref());
    if let Some(text) = served.json {
        write_result_text(text, result_fd);
    }
    served.code
}

/// What a run's result says on stderr, whether it ran here or through a
/// server: what it removed of an earlier killed run, and its error.
fn print_notices(cleaned: impl IntoIterator<Item = impl std::fmt::Display>, error: Option<&str>) {
    for path in cleaned {
        eprintln!("nucleus-run: removed {path}, left behind by an earlier run that was killed");
    }
    if let Some(error) = error {
        eprintln!("nucleus-run: {error}");
    }
}

/// `nucleus-run serve`: serves until a stop signal; 0, or 125 when the
/// socket cannot be made.
pub(crate) fn serve(
    socket: std::path::PathBuf,
    max_sandboxes: u16,
    netns_pool: usize,
    spares: u8,
    request_timeout: Option<std::time::Duration>,
) -> i32 {
    let mut opts = nucleus_runner::server::ServeOptions::new(socket);
    opts.max_sandboxes = usize::from(max_sandboxes);
    opts.netns_pool = netns_pool;
    opts.spares = usize::from(spares);
    if let Some(timeout) = request_timeout {
        opts.request_timeout = timeout;
    }
    match nucleus_runner::server::serve(&opts) {
        Ok(()) => 0,
        Err(err) => fail(&err),
    }
}

/// `nucleus-run seccomp ...`: record a profile, or print the default one.
pub(crate) fn seccomp(cmd: SeccompCmd) -> i32 {
    let (output, args) = match cmd {
        SeccompCmd::Default => {
            return match nucleus_seccomp::Profile::default_agent().to_oci_json() {
                Ok(json) => {
                    println!("{json}");
                    0
                }
                Err(err) => fail(&RunError::from(err)),
            };
        }
        SeccompCmd::Record { output, run } => (output, run),
    };
    let json = args.json;
    let env = match args.envelope() {
        Ok(env) => env,
        Err(err) => return fail(&err),
    };
    let (outcome, profile) = match nucleus_runner::record(&env) {
        Ok(done) => done,
        Err(err) => return fail(&err),
    };
    if let Some(error) = &outcome.error {
        // The command never ran (or the sandbox failed): no profile to keep.
        eprintln!("nucleus-run: {error}; no profile written");
        return outcome.exit_code;
    }
    let written = profile
        .to_oci_json()
        .map_err(RunError::from)
        .and_then(|text| write_atomically(&output, &text));
    if let Err(err) = written {
        return fail(&err);
    }
    if json {
        write_json(&outcome, None);
    }
    outcome.exit_code
}

/// Writes `text` to a new temporary file beside `path` and renames it over
/// `path`: a reader sees the old profile or the new one, never half. The
/// temporary file is created, never opened (`O_EXCL | O_NOFOLLOW`, a name
/// nobody can guess): a link planted in the directory is not followed, and
/// the rename replaces a link at `path` itself rather than writing through.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), RunError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = path.with_extension(format!("tmp.{}.{nanos:x}", std::process::id()));
    write_new_then_rename(&tmp, path, text.as_bytes()).map_err(|source| RunError::WriteOutput {
        path: path.to_owned(),
        source,
    })
}

/// Creates `tmp` (it must not exist, not even as a link), writes `bytes`,
/// renames it to `path`; removes what it created on failure.
fn write_new_then_rename(
    tmp: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| std::fs::rename(tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Prints the error and its chain of causes, once, and gives code 125.
fn fail(err: &RunError) -> i32 {
    eprintln!("nucleus-run: {}", err.chain());
    exit::SETUP_FAILED
}

fn write_json(outcome: &Outcome, fd: Option<i32>) {
    if let Ok(text) = serde_json::to_string(outcome) {
        write_result_text(text, fd);
    }
}

/// Writes a result's JSON text and a newline to `fd`, or to stdout.
fn write_result_text(mut text: String, fd: Option<i32>) {
    text.push('\n');
    match fd {
        Some(fd) => {
            // SAFETY: the caller handed us this fd with --result-fd; we write
            // once and leave it open (ManuallyDrop) as it is theirs.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            let mut file = std::mem::ManuallyDrop::new(file);
            let _ = file.write_all(text.as_bytes());
        }
        None => {
            // gVisor writes a regular-file stdout at its own offsets; start
            // after whatever the workload wrote.
            // SAFETY: lseek on fd 1; failure (a pipe, a tty) is harmless.
            unsafe { libc::lseek(1, 0, libc::SEEK_END) };
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write_new_then_rename;

    #[test]
    fn a_link_at_the_temporary_name_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("nucleus-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let tmp = dir.join("out.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let err = write_new_then_rename(&tmp, &dir.join("out"), b"profile").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!dir.join("out").exists());
        std::fs::remove_file(&tmp).unwrap();
        write_new_then_rename(&tmp, &dir.join("out"), b"profile").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("out")).unwrap(), "profile");
        assert!(!tmp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

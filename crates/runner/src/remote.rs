//! `nucleus-run --server PATH`: the same run, sent to a `nucleus-run serve`
//! over its socket with this process's stdio, directory and environment;
//! the reply is printed as a direct run prints its outcome.

use nucleus_runner::client::{Client, ClientError};
use nucleus_runner::protocol::{ErrorKind, Request};
use nucleus_runner::{exit, Envelope};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// `NUCLEUS_SERVER`, when set and not empty.
pub(crate) fn from_env() -> Option<PathBuf> {
    std::env::var_os("NUCLEUS_SERVER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// What a run through the server gave: the exit code, what the result
/// says on stderr (its `cleaned` paths and `error`), and the result's JSON
/// text when the caller asked for it (`--json`, `--capture`,
/// `--result-fd`).
#[derive(Default)]
pub(crate) struct Served {
    pub(crate) code: i32,
    pub(crate) cleaned: Vec<String>,
    pub(crate) error: Option<String>,
    pub(crate) json: Option<String>,
}

impl Served {
    /// No result: the reason is printed already.
    pub(crate) fn failed() -> Served {
        Served {
            code: exit::SETUP_FAILED,
            ..Served::default()
        }
    }
}

/// Runs `env` through the server at `path`; `None` when nothing listens
/// there (the caller then runs it directly, after the warning printed here).
pub(crate) fn run(path: &Path, env: &Envelope, want_json: bool) -> Option<Served> {
    let client = match Client::connect(path) {
        Ok(client) => client,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "nucleus-run: warning: no server listens on {} ({e}); running directly",
                path.display()
            );
            return None;
        }
        Err(e) => {
            eprintln!(
                "nucleus-run: cannot connect to the server {}: {e}",
                path.display()
            );
            return Some(Served::failed());
        }
    };
    let mut req = Request::run(env.clone());
    add_client_context(&mut req);
    let Some(reply) = exchange(client, path, &req, true) else {
        return Some(Served::failed());
    };
    Some(report(reply, want_json || env.capture.is_some()))
}

/// This process's directory and environment, which the Envelope's relative
/// paths and `--env-keep` are taken from.
pub(crate) fn add_client_context(req: &mut Request) {
    req.cwd = std::env::current_dir().ok();
    req.environ = Some(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    );
}

/// Sends `req` (with this process's stdio when `stdio`) and reads the
/// reply; `None` when there is none (the reason is printed).
pub(crate) fn exchange(
    client: Client,
    path: &Path,
    req: &Request,
    stdio: bool,
) -> Option<nucleus_runner::protocol::Reply> {
    let null = match std::fs::File::open("/dev/null") {
        Ok(null) => null,
        Err(e) => {
            eprintln!("nucleus-run: cannot open /dev/null: {e}");
            return None;
        }
    };
    let fds: Vec<BorrowedFd<'_>> = match stdio {
        true => (0..3).map(|fd| stdio_fd(fd, &null)).collect(),
        false => Vec::new(),
    };
    match client.run(req, &fds) {
        Ok(reply) => Some(reply),
        Err(ClientError::NoReply) => {
            eprintln!(
                "nucleus-run: the server {} ended the request without a reply (it stopped, or its worker died)",
                path.display()
            );
            None
        }
        Err(e) => {
            eprintln!("nucleus-run: server {}: {e}", path.display());
            None
        }
    }
}

/// Reads the reply: an error reply is printed here; a result becomes what
/// the caller prints as for a direct run.
pub(crate) fn report(reply: nucleus_runner::protocol::Reply, json: bool) -> Served {
    let Some(result) = reply.result else {
        let error = reply.error.map(|e| (e.kind, e.message));
        match error {
            Some((ErrorKind::Setup, message)) => eprintln!("nucleus-run: {message}"),
            Some((kind, message)) => {
                eprintln!("nucleus-run: the server refused the run ({kind}): {message}")
            }
            None => eprintln!("nucleus-run: the server's reply holds nothing"),
        }
        return Served::failed();
    };
    let text = result.get().to_owned();
    let result: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let cleaned = result["cleaned"].as_array().into_iter().flatten();
    let code = result["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(exit::SETUP_FAILED);
    Served {
        code,
        cleaned: cleaned
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect(),
        error: result["error"].as_str().map(str::to_owned),
        json: json.then_some(text),
    }
}

/// fd `fd` of this process if open, else `null` in its place.
fn stdio_fd(fd: i32, null: &std::fs::File) -> BorrowedFd<'_> {
    // SAFETY: F_GETFD only reads the flags of an fd number.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
        // SAFETY: 0, 1 and 2 stay open for the whole process (nothing here
        // closes them), longer than the borrow.
        return unsafe { BorrowedFd::borrow_raw(fd) };
    }
    null.as_fd()
}

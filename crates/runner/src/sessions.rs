//! `nucleus-run session create|exec|ls|rm`: a session's ops, sent to the
//! `nucleus-run serve` of `--server PATH` (or `$NUCLEUS_SERVER`), which
//! holds the sessions. Without a server there is no session: the ops fail
//! and say how to start one.

use crate::cli::{RunArgs, SessionCmd};
use crate::remote;
use nucleus_runner::client::Client;
use nucleus_runner::exit;
use nucleus_runner::protocol::{Exec, Op, Reply, Request};
use std::path::{Path, PathBuf};

/// The exit code of a command line that cannot work (as clap's).
const USAGE: i32 = 2;

/// Runs one session subcommand; returns the exit code.
pub(crate) fn run(cmd: SessionCmd) -> i32 {
    match cmd {
        SessionCmd::Create {
            name,
            idle_timeout,
            run,
        } => create(name, idle_timeout, run),
        SessionCmd::Exec {
            name,
            server,
            timeout,
            env,
            workdir,
            json,
            capture,
            capture_limit,
            command,
        } => {
            let exec = Exec {
                command,
                env: env.into_iter().collect(),
                workdir,
                timeout,
                capture: (capture || capture_limit.is_some())
                    .then(|| capture_limit.unwrap_or(crate::cli::DEFAULT_CAPTURE_LIMIT)),
            };
            let json = json || exec.capture.is_some();
            let mut req = Request::op(Op::SessionExec);
            req.session = Some(name);
            req.exec = Some(exec);
            with_server(server, |client, path| {
                let Some(reply) = remote::exchange(client, path, &req, true) else {
                    return exit::SETUP_FAILED;
                };
                let served = remote::report(reply, json);
                crate::output::print_served(served, None)
            })
        }
        SessionCmd::Ls { server, json } => with_server(server, |client, path| {
            let Some(value) = answer(client, path, &Request::op(Op::SessionLs)) else {
                return exit::SETUP_FAILED;
            };
            if json {
                println!("{value}");
                return 0;
            }
            let sessions = value["sessions"].as_array().cloned().unwrap_or_default();
            for s in sessions {
                let name = s["name"].as_str().unwrap_or_default();
                let age = s["age_s"].as_u64().unwrap_or_default();
                let idle = s["idle_timeout"].as_str().unwrap_or_default();
                println!("{name}\tage {age}s\tidle timeout {idle}");
            }
            0
        }),
        SessionCmd::Rm { name, server } => with_server(server, |client, path| {
            let mut req = Request::op(Op::SessionRm);
            req.session = Some(name);
            code(answer(client, path, &req))
        }),
    }
}

/// `session create`: the flags' Envelope, held by the server.
fn create(name: String, idle: Option<std::time::Duration>, run: RunArgs) -> i32 {
    let server = run.server.clone();
    if run.has_command() {
        eprintln!(
            "nucleus-run: session create runs no command; run one with `nucleus-run session exec {name} -- CMD`"
        );
        return USAGE;
    }
    let env = match run.envelope() {
        Ok(env) => env,
        Err(err) => {
            eprintln!("nucleus-run: {}", err.chain());
            return exit::SETUP_FAILED;
        }
    };
    let mut req = Request::op(Op::SessionCreate);
    req.envelope = Some(env);
    req.session = Some(name);
    req.idle_timeout = idle;
    remote::add_client_context(&mut req);
    with_server(server, |client, path| code(answer(client, path, &req)))
}

/// Connects to `server` (or `$NUCLEUS_SERVER`) and runs `op` with it.
fn with_server(server: Option<PathBuf>, op: impl FnOnce(Client, &Path) -> i32) -> i32 {
    let Some(path) = server.or_else(remote::from_env) else {
        eprintln!(
            "nucleus-run: sessions live in a server: start `nucleus-run serve --socket PATH` \
             and pass --server PATH (or set NUCLEUS_SERVER)"
        );
        return USAGE;
    };
    match Client::connect(&path) {
        Ok(client) => op(client, &path),
        Err(e) => {
            eprintln!(
                "nucleus-run: cannot connect to the server {}: {e}",
                path.display()
            );
            exit::SETUP_FAILED
        }
    }
}

/// 0 for a result, 125 for none (its reason printed).
fn code(result: Option<serde_json::Value>) -> i32 {
    match result {
        Some(_) => 0,
        None => exit::SETUP_FAILED,
    }
}

/// Sends a request without stdio and returns its result; an error reply
/// is printed (`None`).
fn answer(client: Client, path: &Path, req: &Request) -> Option<serde_json::Value> {
    let reply: Reply = remote::exchange(client, path, req, false)?;
    if let Some(error) = reply.error {
        eprintln!("nucleus-run: {}: {}", error.kind, error.message);
        return None;
    }
    let text = reply.result.map(|r| r.get().to_owned()).unwrap_or_default();
    serde_json::from_str(&text)
        .map_err(|e| eprintln!("nucleus-run: the server's result is not JSON: {e}"))
        .ok()
}

//! `nucleus-oci`: the runc-compatible entry point.

use std::io::Write;
use std::path::Path;

use clap::Parser;
use nucleus_oci::cli::{Cli, Command};
use nucleus_oci::state::{now_rfc3339, Store};
use nucleus_oci::{create, features, init, ops, run, OciError};

fn main() {
    // The container's init: straight in, before anything else runs.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init")
        && std::env::var_os(nucleus_oci::sync::ENV_FD).is_some()
    {
        init::main();
    }
    let cli = Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            report(&cli, &e);
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: &Cli) -> Result<i32, OciError> {
    if cli.systemd_cgroup {
        return Err(OciError::Usage(
            "--systemd-cgroup is not supported: nucleus-oci manages cgroupfs paths (set the engine's cgroup manager to cgroupfs)".into(),
        ));
    }
    if !matches!(cli.log_format.as_str(), "text" | "json") {
        return Err(OciError::Usage(format!(
            "unknown --log-format {:?} (text or json)",
            cli.log_format
        )));
    }
    let store = Store::new(cli.root.clone());
    match &cli.command {
        Command::Create(a) => create::create(&store, a).map(|_| 0),
        Command::Start(a) => ops::start(&store, &a.id).map(|_| 0),
        Command::State(a) => ops::state(&store, &a.id).map(|_| 0),
        Command::Kill(a) => ops::kill(&store, a).map(|_| 0),
        Command::Delete(a) => ops::delete(&store, a).map(|_| 0),
        Command::Run(a) => run::run(&store, a),
        Command::Exec(a) => run::exec(&store, a),
        Command::Ps(a) => ops::ps(&store, a).map(|_| 0),
        Command::Pause(a) => ops::pause(&store, &a.id).map(|_| 0),
        Command::Resume(a) => ops::resume(&store, &a.id).map(|_| 0),
        Command::Update(a) => ops::update(&store, a).map(|_| 0),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&features::document()).unwrap_or_default()
            );
            Ok(0)
        }
        Command::Events(a) => ops::events(&store, a).map(|_| 0),
        Command::List(a) => ops::list(&store, a).map(|_| 0),
        Command::Init => Err(OciError::Usage(
            "init is started by nucleus-oci itself".into(),
        )),
    }
}

/// The error on stderr and, with `--log`, in the log file (runc's JSON shape
/// with `--log-format json`, which containerd's shim reads back).
fn report(cli: &Cli, e: &OciError) {
    let msg = e.to_string();
    let _ = writeln!(std::io::stderr(), "nucleus-oci: {msg}");
    let Some(path) = cli.log.as_deref() else {
        return;
    };
    let line = if cli.log_format == "json" {
        serde_json::json!({"level": "error", "msg": msg, "time": now_rfc3339()}).to_string()
    } else {
        format!("time=\"{}\" level=error msg={msg:?}", now_rfc3339())
    };
    append(path, &line);
}

fn append(path: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

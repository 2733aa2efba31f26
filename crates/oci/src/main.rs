//! `nucleus-oci`: the runc-compatible entry point.

use std::io::Write;
use std::path::Path;

use clap::Parser;
use nucleus_oci::cli::{Cli, Command};
use nucleus_oci::state::{self, now_rfc3339, Store};
use nucleus_oci::{create, features, gvisor, init, ops, run, spec, OciError};

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
    let log = gvisor::LogFlags {
        log: cli.log.clone(),
        format: cli.log_format.clone(),
    };
    if let Some(id) = container_id(&cli.command) {
        if let Ok(record) = store.load(id) {
            if let Some(g) = &record.gvisor {
                let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
                return gvisor::forward(&store, &record, g, &gvisor::subcommand_args(&argv), &log);
            }
        }
    }
    match &cli.command {
        Command::Create(a) => {
            state::check_id(&a.id)?;
            let bundle = spec::load(&a.bundle)?;
            if gvisor::wanted(&bundle.spec)? {
                return gvisor::create(&store, a, &bundle, &log, false);
            }
            create::create_from(&store, a, &bundle).map(|_| 0)
        }
        Command::Run(a) => {
            state::check_id(&a.create.id)?;
            let bundle = spec::load(&a.create.bundle)?;
            if gvisor::wanted(&bundle.spec)? {
                if a.detach {
                    let code = gvisor::create(&store, &a.create, &bundle, &log, false)?;
                    let r = store.load(&a.create.id)?;
                    let g = r
                        .gvisor
                        .clone()
                        .ok_or_else(|| OciError::Init("lost the gVisor record".into()))?;
                    let start = ["start".into(), a.create.id.clone().into()];
                    return if code == 0 {
                        gvisor::forward(&store, &r, &g, &start, &log)
                    } else {
                        Ok(code)
                    };
                }
                return gvisor::create(&store, &a.create, &bundle, &log, true);
            }
            run::run(&store, a, &bundle)
        }
        Command::Start(a) => ops::start(&store, &a.id).map(|_| 0),
        Command::State(a) => ops::state(&store, &a.id).map(|_| 0),
        Command::Kill(a) => ops::kill(&store, a).map(|_| 0),
        Command::Delete(a) => ops::delete(&store, a).map(|_| 0),
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

/// The container a command acts on, when it names one.
fn container_id(c: &Command) -> Option<&str> {
    match c {
        Command::Start(a) | Command::State(a) | Command::Pause(a) | Command::Resume(a) => {
            Some(&a.id)
        }
        Command::Kill(a) => Some(&a.id),
        Command::Delete(a) => Some(&a.id),
        Command::Exec(a) => Some(&a.id),
        Command::Ps(a) => Some(&a.id),
        Command::Update(a) => Some(&a.id),
        Command::Events(a) => Some(&a.id),
        _ => None,
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

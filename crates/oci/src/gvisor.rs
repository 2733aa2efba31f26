//! `org.nucleus.trust-level=untrusted`: the same bundle run under gVisor.
//! The container's commands go to `runsc` (itself an OCI runtime) with a
//! state root inside the container's own state directory, the platform
//! chosen as `nucleus-run` chooses it, and `--oci-seccomp` so that the
//! spec's seccomp profile is enforced by the sentry. Everything nucleus-oci
//! refuses in a spec it refuses here too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use nucleus_cgroup::Cgroup;
use nucleus_gvisor::Runsc;
use oci_spec::runtime::Spec;

use crate::cli::CreateArgs;
use crate::error::OciError;
use crate::proc;
use crate::spec::Bundle;
use crate::state::{Gvisor, Record, Store};

/// The annotation that selects the runtime.
pub const TRUST_ANNOTATION: &str = "org.nucleus.trust-level";

/// Whether the spec asks for gVisor: `untrusted` yes, `trusted` or no
/// annotation no, anything else an error.
pub fn wanted(spec: &Spec) -> Result<bool, OciError> {
    let value = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(TRUST_ANNOTATION));
    match value.map(String::as_str) {
        None | Some("trusted") => Ok(false),
        Some("untrusted") => Ok(true),
        Some(other) => Err(OciError::Invalid {
            field: format!("annotations.{TRUST_ANNOTATION}"),
            reason: format!("{other:?} is neither \"trusted\" nor \"untrusted\""),
        }),
    }
}

/// The global flags every runsc call of this container gets.
fn globals(store: &Store, id: &str, g: &Gvisor, log: &LogFlags) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--root".into(),
        store.dir(id).join("runsc").into(),
        "--platform".into(),
        g.platform.clone().into(),
        "--network".into(),
        g.network.clone().into(),
        // The sandbox runs in the cgroup nucleus-oci made (below its own,
        // with the spec's limits): runsc makes none.
        "--ignore-cgroups".into(),
    ];
    if g.seccomp {
        args.push("--oci-seccomp".into());
    }
    if let Some(path) = &log.log {
        args.extend([
            "--log".into(),
            path.clone().into(),
            "--log-format".into(),
            log.format.clone().into(),
        ]);
    }
    args
}

/// The engine's `--log` and `--log-format`, passed on to runsc.
#[derive(Debug, Clone, Default)]
pub struct LogFlags {
    /// `--log`.
    pub log: Option<PathBuf>,
    /// `--log-format`.
    pub format: String,
}

fn runsc_status(cmd: &mut Command) -> Result<i32, OciError> {
    let status = cmd.status().map_err(|e| OciError::io("start runsc", e))?;
    Ok(status
        .code()
        .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
}

/// Creates the container under gVisor (`run` when `run` is true: runsc
/// creates, starts, waits and deletes). The exit status.
pub fn create(
    store: &Store,
    args: &CreateArgs,
    bundle: &Bundle,
    log: &LogFlags,
    run: bool,
) -> Result<i32, OciError> {
    let notifies = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(crate::listener::notifies);
    if notifies {
        return Err(OciError::Unsupported {
            field: "linux.seccomp.listenerPath".to_owned(),
            reason: "gVisor's sentry enforces the profile itself and hands no seccomp \
                     listener to an agent (SCMP_ACT_NOTIFY)"
                .to_owned(),
        });
    }
    if proc::euid() != 0 {
        return Err(OciError::Unsupported {
            field: format!("annotations.{TRUST_ANNOTATION}"),
            reason: "an untrusted container needs root: runsc runs OCI bundles as root \
                     (nucleus-run runs gVisor rootless)"
                .to_owned(),
        });
    }
    if bundle
        .spec
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(crate::landlock::ANNOTATION))
    {
        return Err(OciError::Unsupported {
            field: format!("annotations.{}", crate::landlock::ANNOTATION),
            reason: "gVisor runs no Landlock policy inside its sandbox".to_owned(),
        });
    }
    let runsc = Runsc::discover(None).map_err(|e| OciError::layer(&e))?;
    let platform = runsc
        .choose_platform(None)
        .map_err(|e| OciError::layer(&e))?;
    let has_seccomp = bundle
        .spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.seccomp().is_some());
    let g = Gvisor {
        runsc: runsc.path.clone(),
        platform: platform.as_str().to_owned(),
        seccomp: has_seccomp,
        network: network_mode(&bundle.spec).to_owned(),
    };
    store.create_dir(&args.id)?;
    let cgroup = match sandbox_cgroup(bundle, &args.id) {
        Ok(cg) => cg,
        Err(e) => {
            let _ = store.remove(&args.id);
            return Err(e);
        }
    };
    let mut record = record(bundle, &args.id, &g);
    record.cgroup = Some(cgroup.saved());
    let saved = store.save(&record);
    let mut cmd = Command::new(&g.runsc);
    cmd.args(globals(store, &args.id, &g, log));
    enter_on_exec(&mut cmd, &cgroup)?;
    cmd.arg(if run { "run" } else { "create" })
        .arg("--bundle")
        .arg(&bundle.dir);
    if let Some(p) = &args.pid_file {
        cmd.arg("--pid-file").arg(p);
    }
    if let Some(s) = &args.console_socket {
        cmd.arg("--console-socket").arg(s);
    }
    cmd.arg(&args.id);
    let code = match saved.and_then(|()| runsc_status(&mut cmd)) {
        Ok(code) => code,
        Err(e) => {
            let _ = store.remove(&args.id);
            return Err(e);
        }
    };
    if run || code != 0 {
        let _ = store.remove(&args.id);
        // Kills what runsc left in it, and removes it.
        cgroup.remove().map_err(|e| OciError::layer(&e))?;
        return if run || code == 0 {
            Ok(code)
        } else {
            Err(OciError::Layer(format!(
                "runsc create failed (exit {code})"
            )))
        };
    }
    // The sandbox lives on after this process: the state keeps the cgroup.
    cgroup.save();
    if let Some(pid) = runsc_pid(store, &args.id, &g) {
        record.pid = pid;
        record.pid_start = proc::start_time(pid).unwrap_or(0);
        store.save(&record)?;
    }
    Ok(0)
}

/// The container's cgroup, with the spec's limits. No device rules: the
/// sentry gives the container no host device, and needs its own.
fn sandbox_cgroup(bundle: &Bundle, id: &str) -> Result<Cgroup, OciError> {
    let linux = bundle.spec.linux().as_ref();
    let (name, cfg) =
        crate::resources::placement(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
    let resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let limits = crate::resources::limits(&resources)?;
    Cgroup::create_named(&limits, &cfg, &name).map_err(|e| OciError::layer(&e))
}

/// runsc starts inside `cgroup`: between fork and exec the child writes
/// `0` (itself) to each `cgroup.procs`, opened here.
fn enter_on_exec(cmd: &mut Command, cgroup: &Cgroup) -> Result<(), OciError> {
    let mut fds = Vec::new();
    for dir in cgroup.paths() {
        let path = dir.join("cgroup.procs");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| OciError::io(format!("open {}", path.display()), e))?;
        fds.push(std::os::fd::OwnedFd::from(f));
    }
    let raw: Vec<i32> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure runs between fork and exec and only calls write(2)
    // (async-signal-safe) on fds opened above, kept alive by `fds` below.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            for fd in &raw {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The fds must outlive the spawn: leak them into this short-lived process.
    std::mem::forget(fds);
    Ok(())
}

fn network_mode(spec: &Spec) -> &'static str {
    let net = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network);
    match net {
        Some(n) if n.path().is_some() => "sandbox",
        Some(_) => "none",
        None => "host",
    }
}

fn record(bundle: &Bundle, id: &str, g: &Gvisor) -> Record {
    let mut r = Record::new(bundle, id);
    r.gvisor = Some(g.clone());
    r
}

/// The sandbox's pid, from `runsc state`.
fn runsc_pid(store: &Store, id: &str, g: &Gvisor) -> Option<i32> {
    let v = state(store, id, g)?;
    v["pid"].as_i64().and_then(|p| i32::try_from(p).ok())
}

/// The container's state as runsc reports it (`created`, `running`, ...);
/// `None` when runsc has none.
pub fn state(store: &Store, id: &str, g: &Gvisor) -> Option<serde_json::Value> {
    let out = Command::new(&g.runsc)
        .args(globals(store, id, g, &LogFlags::default()))
        .args(["state", id])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// Runs `sub` (the command line from the subcommand on) on runsc for the
/// gVisor container `record`; its exit status. A successful `delete` (or a
/// forced one) removes the container's state too.
pub fn forward(
    store: &Store,
    record: &Record,
    g: &Gvisor,
    sub: &[OsString],
    log: &LogFlags,
) -> Result<i32, OciError> {
    let mut cmd = Command::new(&g.runsc);
    cmd.args(globals(store, &record.id, g, log)).args(sub);
    let code = runsc_status(&mut cmd)?;
    let delete = sub.first().is_some_and(|s| s == "delete");
    let force = sub.iter().any(|a| a == "--force" || a == "-f");
    if delete && (code == 0 || force) {
        if let Some(saved) = &record.cgroup {
            Cgroup::restore(saved)
                .remove()
                .map_err(|e| OciError::layer(&e))?;
        }
        store.remove(&record.id)?;
        return Ok(0);
    }
    Ok(code)
}

/// The command line from the subcommand on: `argv` without the program
/// and the global flags before the subcommand.
pub fn subcommand_args(argv: &[OsString]) -> Vec<OsString> {
    const WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--rootless", "--criu"];
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        let text = arg.to_string_lossy();
        if WITH_VALUE.contains(&text.as_ref()) {
            i += 2;
        } else if text.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    argv.get(i..).map(<[OsString]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_follows_the_globals() {
        let argv: Vec<OsString> = [
            "nucleus-oci",
            "--root",
            "/r",
            "--log",
            "l.json",
            "--log-format",
            "json",
            "--debug",
            "kill",
            "--all",
            "c1",
            "9",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            subcommand_args(&argv),
            ["kill", "--all", "c1", "9"].map(OsString::from)
        );
        assert!(subcommand_args(&argv[..1]).is_empty());
    }
}

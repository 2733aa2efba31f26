//! `nucleus-run doctor`: what this machine supports, the verdict on each
//! capability the envelope uses (`ok`, `limited`, `missing`, with the
//! consequence and the fix), and which trust levels and runtimes work.
//!
//! Gathering and judging are apart: [`gather`] runs every layer crate's
//! probe and real launches of `/bin/true` (`tries`); the judge
//! (`judge::judge`) is a pure function of the gathered JSON, so a saved
//! report (`--from-json FILE`, hidden, for tests) is judged like a fresh
//! one. The exit status is non-zero when the default launch cannot run.

mod checks;
mod facts;
mod judge;
mod render;
mod runtimes;
mod setup;
mod tries;

use nucleus_runner::guard::{require_lockdown, Lockdown};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The version of the `--json` layout (`schema/doctor.schema.json`).
const SCHEMA_VERSION: u32 = 1;
/// The kernel's lockdown state.
const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

/// What `nucleus-run doctor` was asked.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Print the full report and the verdicts as JSON.
    pub(crate) json: bool,
    /// The long form of the text.
    pub(crate) verbose: bool,
    /// Paths to try an idmapped bind of.
    pub(crate) binds: Vec<PathBuf>,
    /// The runsc to check (default: on `PATH`).
    pub(crate) runsc: Option<PathBuf>,
    /// Judge this saved report instead of probing.
    pub(crate) from_json: Option<PathBuf>,
}

#[derive(Serialize)]
struct BindProbe {
    path: PathBuf,
    idmap: String,
}

/// Everything gathered on this machine, by this caller.
#[derive(Serialize)]
struct Report {
    kernel: String,
    namespaces: nucleus_ns::NsProbe,
    idmap: nucleus_idmap::IdmapProbe,
    capabilities: nucleus_caps::CapsProbe,
    rootfs: nucleus_rootfs::RootfsProbe,
    landlock: nucleus_landlock_policy::LandlockProbe,
    seccomp: nucleus_seccomp::SeccompProbe,
    cgroup: nucleus_cgroup::CgroupProbe,
    gvisor: nucleus_gvisor::GvisorProbe,
    envelope: nucleus_runner::EnvelopeProbe,
    /// `--bind PATH`: whether a bind of it is idmapped (`idmapped`,
    /// `not needed` rootless) or why not.
    binds: Vec<BindProbe>,
    wasm: nucleus_wasm::WasmProbe,
    lockdown: facts::Lockdown,
    /// Real launches of `/bin/true`: native, and gVisor on each platform.
    launches: Vec<tries::Launch>,
}

/// The JSON printed by `--json`: the report, the verdicts, the version.
#[derive(Serialize)]
struct Output<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a serde_json::Map<String, serde_json::Value>,
    checks: &'a [judge::Check],
    summary: &'a judge::Summary,
}

/// Runs the doctor; returns the exit code: 0 when the default launch runs
/// here, [`nucleus_runner::exit::SETUP_FAILED`] when it cannot (or when
/// the report cannot be made).
pub(crate) fn run(opts: &Options) -> i32 {
    match report(opts) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("nucleus-run: doctor: {err}");
            nucleus_runner::exit::SETUP_FAILED
        }
    }
}

fn report(opts: &Options) -> Result<i32, String> {
    let mut report = match &opts.from_json {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => serde_json::to_value(gather(opts)).map_err(|e| e.to_string())?,
    };
    let serde_json::Value::Object(map) = &mut report else {
        return Err("the report is not a JSON object".to_owned());
    };
    // A saved `--json` output is judged anew.
    for key in ["schema_version", "checks", "summary"] {
        map.remove(key);
    }
    let verdict = judge::judge(&report).map_err(|e| format!("the report: {e}"))?;
    if opts.json {
        let serde_json::Value::Object(map) = &report else {
            unreachable!("checked above");
        };
        let output = Output {
            schema_version: SCHEMA_VERSION,
            report: map,
            checks: &verdict.checks,
            summary: &verdict.summary,
        };
        let text = serde_json::to_string_pretty(&output).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render::text(&verdict, opts.verbose));
    }
    Ok(if verdict.summary.default_launch.runs {
        0
    } else {
        nucleus_runner::exit::SETUP_FAILED
    })
}

/// Probes this machine. The in-process probes come first, one after the
/// other (some fork); then the launch tries run, concurrently, as child
/// processes.
fn gather(opts: &Options) -> Report {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let gvisor = nucleus_gvisor::probe_with(opts.runsc.as_deref());
    let binds = opts
        .binds
        .iter()
        .map(|path| BindProbe {
            path: path.clone(),
            idmap: match nucleus_runner::probe_idmap(path) {
                Ok(true) => "idmapped".to_owned(),
                Ok(false) => "not needed (your own id is the sandbox's root)".to_owned(),
                Err(why) => why,
            },
        })
        .collect();
    let mut report = Report {
        kernel,
        namespaces: nucleus_ns::probe(),
        idmap: nucleus_idmap::probe(),
        capabilities: nucleus_caps::probe(),
        rootfs: nucleus_rootfs::probe(),
        landlock: nucleus_landlock_policy::probe(),
        seccomp: nucleus_seccomp::probe(),
        cgroup: nucleus_cgroup::probe(),
        envelope: nucleus_runner::probe_envelope(),
        binds,
        wasm: nucleus_wasm::probe(),
        lockdown: lockdown(),
        launches: Vec::new(),
        gvisor,
    };
    let platforms: Vec<String> = report
        .gvisor
        .platforms
        .iter()
        .map(ToString::to_string)
        .collect();
    // The runsc that was probed, so that the tries use the same one.
    let runsc = report.gvisor.path.clone();
    report.launches = tries::run_all(true, runsc.as_deref(), &platforms);
    report
}

/// The lockdown mode, read as `--require-kernel-lockdown` reads it.
fn lockdown() -> facts::Lockdown {
    let securityfs_mounted =
        std::fs::read_dir("/sys/kernel/security").is_ok_and(|mut entries| entries.next().is_some());
    match require_lockdown(Lockdown::None, Path::new(LOCKDOWN)) {
        Ok(mode) => facts::Lockdown {
            mode: Some(mode.to_string()),
            error: None,
            securityfs_mounted,
        },
        Err(err) => facts::Lockdown {
            mode: None,
            error: Some(err.chain()),
            securityfs_mounted,
        },
    }
}

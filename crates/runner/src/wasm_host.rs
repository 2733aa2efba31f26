//! The runner's side of a WASI workload: the module is compiled (or
//! loaded from the cache) in the parent; the sandbox runs it in its
//! workload process, with no `execve` at all.

use crate::channel::Detail;
use crate::wasm::WasmSettings;
use crate::{Envelope, RunError};
use nucleus_rootfs::{MountKind, MountSpec, RootfsPolicy};
use nucleus_wasm::{PreparedWasm, WasmPolicy};
use std::time::Duration;

impl WasmSettings {
    /// The policy of the `nucleus-wasm` crate: args, environment and deadline
    /// come from the Envelope (`-- ARGS`, `--env`, `--timeout`).
    fn policy(&self, env: &Envelope) -> WasmPolicy {
        let mut policy = WasmPolicy::new(&self.module);
        policy.args.clone_from(&env.command);
        policy.env = crate::environ::explicit_environment(env);
        policy.preopens.clone_from(&self.preopens);
        policy.fuel = self.fuel;
        policy.max_memory = self.max_memory;
        policy.deadline = env.timeout;
        policy.cache = self.cache.clone();
        policy
    }

    /// The view of the wasm host: only the preopens, bound at their host
    /// paths. No host system directory (the runtime is already in memory),
    /// no `/proc`, `/dev` or `/tmp`: the host opens nothing but the
    /// preopens (its stdio and randomness need no path), so a flaw in it
    /// finds nothing else there, and the view costs a few mounts.
    pub(crate) fn rootfs(&self, base: &RootfsPolicy) -> RootfsPolicy {
        let mut rootfs = base.clone();
        rootfs.host_dirs.clear();
        rootfs.proc = false;
        rootfs.dev = false;
        rootfs.tmp = false;
        for p in &self.preopens {
            let kind = if p.read_only {
                MountKind::RoBind
            } else {
                MountKind::Bind
            };
            rootfs.mounts.push(MountSpec {
                kind,
                source: Some(p.host.clone()),
                destination: p.host.clone(),
                exec: false,
            });
        }
        rootfs
    }

    /// Compiles or loads the module; in the parent, before clone.
    ///
    /// A compile runs in a forked helper ([`nucleus_wasm::CompileHelper`]) under the run's
    /// own limits: in a cgroup of its own with the Envelope's limits (made when the helper
    /// starts, removed when it ends) and killed at `--timeout`, whose time it uses up. A
    /// helper killed by either ends the run as the sandbox would have ended:
    /// [`RunError::WasmCompileStopped`] carries that outcome.
    pub(crate) fn prepare(&self, env: &Envelope) -> Result<PreparedWasm, RunError> {
        let started = std::time::Instant::now();
        let cgroup: std::cell::OnceCell<nucleus_cgroup::Cgroup> = std::cell::OnceCell::new();
        let admit = |pid: i32| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            // The helper starts only for a compile: the slow step to show.
            crate::progress::show(&compiling(
                &self.module,
                !matches!(self.cache, nucleus_wasm::CacheMode::Off),
            ));
            if env.limits.is_empty() {
                return Ok(());
            }
            let cg = match cgroup.get() {
                Some(cg) => cg,
                None => {
                    let cfg = env.cgroup_config();
                    let made = nucleus_cgroup::Cgroup::create(&env.limits, &cfg)?;
                    cgroup.get_or_init(|| made)
                }
            };
            cg.attach(pid)?;
            Ok(())
        };
        let helper = nucleus_wasm::CompileHelper::new(env.timeout).with_admit(&admit);
        let result = self.policy(env).prepare_in_helper(&helper);
        crate::progress::clear();
        let cgroup = cgroup.into_inner();
        let usage = cgroup.as_ref().map(|cg| (cg.applied().clone(), cg.usage()));
        if let Some(cg) = cgroup {
            cg.remove()?;
        }
        match result {
            Ok(prepared) => Ok(prepared),
            Err(nucleus_wasm::WasmError::CompileAdmit { source, .. }) => {
                match source.downcast::<nucleus_cgroup::CgroupError>() {
                    Ok(cgroup_err) => Err(RunError::from(*cgroup_err)),
                    Err(other) => Err(RunError::WasmCompileAdmit { source: other }),
                }
            }
            Err(err @ nucleus_wasm::WasmError::CompileKilled { .. }) => {
                let outcome = stopped_outcome(&self.module, &err, usage, started.elapsed());
                match outcome {
                    Some(outcome) => Err(RunError::WasmCompileStopped(Box::new(outcome))),
                    None => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// The status line of a cold compile: the module's name and size, and
/// whether later runs will load it from the cache.
fn compiling(module: &std::path::Path, cached: bool) -> String {
    let name = module
        .file_name()
        .unwrap_or(module.as_os_str())
        .to_string_lossy();
    let size = std::fs::metadata(module).map_or(0, |m| m.len());
    let size = if size >= 1_000_000 {
        format!("{:.1} MB", size as f64 / 1e6)
    } else {
        format!("{:.1} kB", size as f64 / 1e3)
    };
    let later = if cached {
        ", once: later runs load it from the cache"
    } else {
        ""
    };
    format!("compiling {name} ({size}{later})")
}

/// The outcome of a run whose compile was stopped by a limit: `memory` (the compile
/// cgroup's OOM killer; exit 137, `SIGKILL`) or `timeout` (exit 124). `None` for a helper
/// killed otherwise (an error, not a limit).
fn stopped_outcome(
    module: &std::path::Path,
    err: &nucleus_wasm::WasmError,
    usage: Option<(nucleus_cgroup::AppliedLimits, nucleus_cgroup::Usage)>,
    wall: Duration,
) -> Option<crate::Outcome> {
    use crate::outcome::KilledBy;
    let nucleus_wasm::WasmError::CompileKilled {
        timed_out,
        signal,
        elapsed,
        peak_memory_bytes,
        module_sha256,
        ..
    } = err
    else {
        return None;
    };
    let oom = usage.as_ref().is_some_and(|(_, u)| u.oom_killed);
    let ms = elapsed.as_millis();
    let (killed_by, error) = if *timed_out {
        (
            KilledBy::Timeout,
            format!(
                "wasm: compiling {} did not finish within the timeout ({ms} ms): killed",
                module.display()
            ),
        )
    } else if *signal == Some(libc::SIGKILL) && oom {
        (
            KilledBy::Memory,
            format!(
                "wasm: compiling {} hit the memory limit after {ms} ms: killed by the OOM killer",
                module.display()
            ),
        )
    } else {
        return None;
    };
    // SAFETY: rusage is plain data; all-zero is valid (the helper's CPU time comes from its
    // cgroup, when it had one).
    let zero: libc::rusage = unsafe { std::mem::zeroed() };
    let mut outcome = crate::Outcome::new(
        wall,
        crate::outcome::Enforced::not_started(crate::guard::Decision::Native),
        Some(&zero),
    );
    outcome.killed_by = Some(killed_by);
    outcome.error = Some(error);
    match killed_by {
        KilledBy::Timeout => outcome.exit_code = crate::exit::TIMEOUT,
        _ => outcome.set_status(libc::SIGKILL),
    }
    let cgroup_peak = usage.as_ref().and_then(|(_, u)| u.memory_peak);
    if let Some((_, u)) = &usage {
        let ms = |usec: Option<u64>| usec.map_or(0.0, |v| v as f64 / 1000.0);
        outcome.user_cpu_ms = ms(u.cpu_user_usec);
        outcome.system_cpu_ms = ms(u.cpu_system_usec);
    }
    outcome.peak_memory_bytes = cgroup_peak.unwrap_or(*peak_memory_bytes);
    outcome.enforced.limits = usage.map(|(applied, usage)| crate::outcome::LimitsEnforced {
        applied,
        usage,
        clone_into_cgroup: false,
    });
    outcome.wasm = Some(crate::WasmReport {
        module_sha256: module_sha256.clone(),
        cache: nucleus_wasm::CacheStatus::Skipped,
        cache_note: Some("nothing stored: the compile was stopped".to_owned()),
        compile_ms: elapsed.as_secs_f64() * 1000.0,
        compile_peak_memory_bytes: *peak_memory_bytes,
        trap: None,
        memory_limit_hit: false,
        fuel_consumed: None,
    });
    Some(outcome)
}

/// How long after `--timeout` the runner kills a wasm sandbox whose module
/// the epoch deadline did not stop (a guest blocked in a host call).
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// The runner's own wall-clock limit: `--timeout` for programs; for a wasm
/// module the epoch deadline stops it first (and reports the `deadline`
/// trap), the runner's kill is the backstop. A module's deadline is what the
/// compile left of `--timeout`.
pub(crate) fn wall_clock_timeout(env: &Envelope, wasm: Option<&PreparedWasm>) -> Option<Duration> {
    match (&env.wasm, wasm) {
        (Some(_), Some(w)) => w
            .policy()
            .deadline
            .map(|t| t.saturating_add(DEADLINE_GRACE)),
        (Some(_), None) => env.timeout.map(|t| t.saturating_add(DEADLINE_GRACE)),
        (None, _) => env.timeout,
    }
}

/// The workload of a wasm sandbox: runs the module in this process, reports
/// the trap kind, the memory cap and the fuel, and leaves with the module's
/// exit code. A host setup failure (a preopen that cannot be opened in the
/// sandbox's view) is a setup failure of the [`Stage::Wasm`] stage.
///
/// [`Stage::Wasm`]: crate::Stage::Wasm
pub(crate) fn run_workload(prepared: &PreparedWasm, msg_fd: std::os::fd::RawFd) -> ! {
    use crate::channel::{self, Message};
    let outcome = match prepared.run() {
        Ok(outcome) => outcome,
        Err(err) => {
            let detail = failed_preopen(prepared, &err);
            channel::send(
                msg_fd,
                Message::Failed {
                    stage: crate::Stage::Wasm,
                    errno: err.raw_os_error().unwrap_or(libc::EIO),
                    detail,
                },
            );
            crate::sys::exit(crate::exit::SETUP_FAILED)
        }
    };
    if let (Some(kind), Some(message)) = (outcome.trap, &outcome.trap_message) {
        eprintln!("nucleus-run: wasm trap ({}): {message}", kind_name(kind));
    }
    channel::send(
        msg_fd,
        Message::Wasm {
            trap: outcome.trap.map_or(0, |t| t.code()),
            memory_limit_hit: outcome.memory_limit_hit,
            fuel: outcome.fuel_consumed.unwrap_or(u64::MAX),
        },
    );
    crate::sys::exit(outcome.exit_code)
}

/// The kind as the JSON result spells it (`memory-out-of-bounds`).
fn kind_name(kind: nucleus_wasm::TrapKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// The preopen `err` is about, if it is about one.
fn failed_preopen(prepared: &PreparedWasm, err: &nucleus_wasm::WasmError) -> Detail {
    let nucleus_wasm::WasmError::OpenPreopen { path, .. } = err else {
        return Detail::None;
    };
    prepared
        .preopens()
        .iter()
        .position(|p| &p.host == path)
        .map_or(Detail::None, |i| Detail::Preopen(i as u32))
}

/// The failure sentence of the [`Stage::Wasm`] stage.
///
/// [`Stage::Wasm`]: crate::Stage::Wasm
pub(crate) fn describe_failure(
    prepared: Option<&PreparedWasm>,
    preopen: Option<u32>,
    reason: &str,
) -> String {
    let preopen = prepared
        .zip(preopen)
        .and_then(|(w, i)| w.preopens().get(i as usize));
    match preopen {
        Some(p) => format!("wasm: preopen {}: {reason}", p.host.display()),
        None => format!("wasm: host setup: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nucleus_seccomp::Action;
    use std::path::PathBuf;

    #[test]
    fn the_wasm_host_filter_denies_exec_and_the_native_one_does_not() {
        let settings = crate::SeccompSettings::default();
        let wasm = settings
            .compile(
                Vec::new(),
                crate::seccomp::Extra {
                    no_exec: true,
                    ..Default::default()
                },
            )
            .unwrap()
            .unwrap();
        let native = settings
            .compile(Vec::new(), crate::seccomp::Extra::default())
            .unwrap()
            .unwrap();
        for name in ["execve", "execveat"] {
            let nr = nucleus_seccomp::number_of(wasm.arch(), name).unwrap();
            assert_eq!(wasm.evaluate(nr, [0; 6]), Some(Action::Errno(1)), "{name}");
            assert_eq!(native.evaluate(nr, [0; 6]), Some(Action::Allow), "{name}");
        }
    }

    #[test]
    fn the_view_holds_the_preopens_and_no_host_directory() {
        let mut settings = WasmSettings::new("/m.wasm");
        settings.preopens = vec![
            "/srv/in:/in:ro".parse().unwrap(),
            "/srv/out".parse().unwrap(),
        ];
        let base = Envelope::default().rootfs;
        assert!(!base.host_dirs.is_empty());
        let view = settings.rootfs(&base);
        assert!(view.host_dirs.is_empty());
        assert!(!view.proc && !view.dev && !view.tmp);
        let added: Vec<(MountKind, PathBuf)> = view.mounts[base.mounts.len()..]
            .iter()
            .map(|m| (m.kind, m.destination.clone()))
            .collect();
        assert_eq!(
            added,
            [
                (MountKind::RoBind, PathBuf::from("/srv/in")),
                (MountKind::Bind, PathBuf::from("/srv/out"))
            ]
        );
    }

    #[test]
    fn the_runner_kills_after_the_epoch_deadline() {
        let mut env = Envelope {
            timeout: Some(Duration::from_secs(1)),
            ..Envelope::default()
        };
        assert_eq!(wall_clock_timeout(&env, None), Some(Duration::from_secs(1)));
        env.wasm = Some(WasmSettings::new("/m.wasm"));
        assert_eq!(
            wall_clock_timeout(&env, None),
            Some(Duration::from_millis(1250))
        );
    }
}

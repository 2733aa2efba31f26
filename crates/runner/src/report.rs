//! What a run's records mean: the parent's supervision (`supervise::Raw`: the
//! channel's messages, the init's status and rusage, the timeout) and the
//! cgroup's figures turned into the [`Outcome`] — exit code, signal, error
//! sentence, what each layer enforced.

use crate::channel::{Detail, Message};
use crate::guard::Decision;
use crate::outcome::{KilledBy, Outcome};
use crate::prepare::Prepared;
use crate::stage::Stage;
use crate::supervise::Raw;
use crate::{exit, Envelope, RunError};
use std::time::Duration;

pub(crate) fn add_cgroup_usage(
    outcome: &mut Outcome,
    cg: &nucleus_cgroup::Cgroup,
    timed_out: bool,
    clone_into_cgroup: bool,
) {
    let usage = cg.usage();
    // The memory cgroup's peak is the sandbox's own charge; RSS would also
    // count shared file pages charged elsewhere.
    if let Some(peak) = usage.memory_peak {
        outcome.peak_memory_bytes = peak;
    }
    // A total kill can reap processes before their time reaches the
    // runner's rusage; the cgroup counted every process.
    let ms = |usec: Option<u64>| usec.map_or(0.0, |u| u as f64 / 1000.0);
    outcome.user_cpu_ms = outcome.user_cpu_ms.max(ms(usage.cpu_user_usec));
    outcome.system_cpu_ms = outcome.system_cpu_ms.max(ms(usage.cpu_system_usec));
    if !timed_out && outcome.killed_by.is_none() {
        if usage.oom_killed && outcome.signal == Some(libc::SIGKILL) {
            outcome.killed_by = Some(KilledBy::Memory);
        } else if usage.pids_limit_hit && outcome.exit_code != 0 {
            outcome.killed_by = Some(KilledBy::Pids);
        }
    }
    outcome.enforced.limits = Some(crate::outcome::LimitsEnforced {
        applied: cg.applied().clone(),
        usage,
        clone_into_cgroup,
    });
}

/// Turns what was seen into the outcome: exit code, signal, error sentence.
pub(crate) fn interpret(env: &Envelope, p: &Prepared, raw: &Raw, wall: Duration) -> Outcome {
    let mut outcome = Outcome::new(wall, enforced(env, p, &raw.messages), Some(&raw.usage));
    outcome.wasm = p.wasm().map(|w| wasm_report(w, &raw.messages));
    let wasm_deadline = outcome
        .wasm
        .as_ref()
        .is_some_and(|w| w.trap == Some(nucleus_wasm::TrapKind::Deadline));
    let failure = raw.messages.iter().find_map(|m| match m {
        Message::Failed {
            stage,
            errno,
            detail,
        } => Some((*stage, *errno, *detail)),
        _ => None,
    });
    let exited = raw.messages.iter().find_map(|m| match m {
        Message::Exited { status } => Some(*status),
        _ => None,
    });
    if let Some((stage, errno, detail)) = failure {
        outcome.error = Some(describe_failure(env, p, stage, errno, detail));
        outcome.exit_code = match (stage, errno) {
            (Stage::Exec, libc::ENOENT) => exit::NOT_FOUND,
            (Stage::Exec, _) => exit::CANNOT_EXECUTE,
            _ => exit::SETUP_FAILED,
        };
    } else if raw.timed_out || wasm_deadline {
        outcome.killed_by = Some(KilledBy::Timeout);
        outcome.exit_code = exit::TIMEOUT;
    } else {
        match exited {
            Some(status) => outcome.set_status(status),
            // The init itself was killed (by a signal from outside the
            // sandbox, or the OOM killer): that ended the workload too.
            None if libc::WIFSIGNALED(raw.init_status) => outcome.set_status(raw.init_status),
            None => {
                outcome.exit_code = exit::SETUP_FAILED;
                outcome.error = Some(RunError::NoStatus.to_string());
            }
        }
        // A runtime's tool (runsc) reports a workload killed by signal N
        // as its own exit status 128+N.
        let by_tool = !p.signal_tool.is_empty()
            && outcome.signal.is_none()
            && raw
                .forwarded
                .is_some_and(|sig| outcome.exit_code == 128 + sig);
        if by_tool {
            outcome.signal = raw.forwarded;
        }
        if outcome.signal.is_some() && outcome.signal == raw.forwarded {
            outcome.killed_by = Some(KilledBy::Signal);
        }
    }
    outcome
}

fn describe_failure(
    env: &Envelope,
    p: &Prepared,
    stage: Stage,
    errno: i32,
    detail: Detail,
) -> String {
    let reason = crate::error::errno_text(errno);
    match (stage, detail) {
        (Stage::Mount, Detail::MountStep(step)) => match &p.plan {
            Some(plan) => plan.describe(&nucleus_rootfs::ApplyError { step, errno }),
            None => format!("mount: {reason}"),
        },
        (Stage::Exec, _) if errno == libc::ENOENT => {
            format!("exec: {}: command not found", env.command[0])
        }
        (Stage::Exec, _) => format!("exec: {}: {reason}", env.command[0]),
        (Stage::Workdir, _) => format!("workdir: {}: {reason}", env.workdir.display()),
        (Stage::Wasm, Detail::Preopen(i)) => {
            crate::wasm_host::describe_failure(p.wasm(), Some(i), &reason)
        }
        (Stage::Wasm, _) => crate::wasm_host::describe_failure(p.wasm(), None, &reason),
        (Stage::Landlock, Detail::LandlockRule(i)) => {
            let path = p
                .landlock
                .as_ref()
                .and_then(|l| l.rule_paths.get(i as usize));
            let shown = path.map_or_else(String::new, |p| p.display().to_string());
            format!("landlock: rule path {shown}: {reason}")
        }
        (other, _) => format!("{other}: {reason}"),
    }
}

/// What the layers enforced, for the report.
fn enforced(env: &Envelope, p: &Prepared, messages: &[Message]) -> crate::Enforced {
    let lines = |maps: &[nucleus_idmap::IdMapping]| maps.iter().map(ToString::to_string).collect();
    crate::Enforced {
        namespaces: p.namespaces.iter().map(|n| n.name().to_owned()).collect(),
        userns: userns_name(env, p),
        uid_map: p.maps.as_ref().map_or_else(Vec::new, |m| lines(&m.uid)),
        gid_map: p.maps.as_ref().map_or_else(Vec::new, |m| lines(&m.gid)),
        uid: p.uid,
        gid: p.gid,
        capabilities: env.caps.keep.iter().map(ToString::to_string).collect(),
        no_new_privs: true,
        readonly_root: p.plan.is_some() && env.rootfs.readonly_root,
        landlock: landlock_enforced(p, messages),
        seccomp: p
            .seccomp
            .as_ref()
            .filter(|_| !p.seccomp_listener)
            .map(|f| f.report().clone()),
        limits: None,
        rlimits: p.rlimits.clone(),
        runtime: Decision::Native,
        masked_paths: p
            .plan
            .as_ref()
            .map_or_else(Vec::new, |plan| plan.masked().to_vec()),
        memfd_noexec: p.memfd_noexec,
        userns_limits: if p.userns_limits.is_empty() {
            Default::default()
        } else {
            env.userns_limits.clone()
        },
        gvisor: None,
    }
}

fn wasm_report(w: &nucleus_wasm::PreparedWasm, messages: &[Message]) -> crate::WasmReport {
    let ended = messages.iter().find_map(|m| match m {
        Message::Wasm {
            trap,
            memory_limit_hit,
            fuel,
        } => Some((*trap, *memory_limit_hit, *fuel)),
        _ => None,
    });
    let (trap, memory_limit_hit, fuel) = ended.unwrap_or((0, false, u64::MAX));
    let report = w.report();
    crate::WasmReport {
        module_sha256: report.module_sha256.clone(),
        cache: report.cache,
        cache_note: report.cache_note.clone(),
        compile_ms: report.compile_ms,
        compile_peak_memory_bytes: report.compile_peak_memory_bytes,
        trap: nucleus_wasm::TrapKind::from_code(trap),
        memory_limit_hit,
        fuel_consumed: (fuel != u64::MAX).then_some(fuel),
    }
}

/// The user-namespace mode that was applied, as users write it.
fn userns_name(env: &Envelope, p: &Prepared) -> String {
    use nucleus_idmap::UsernsMode;
    let mode = match (&p.maps, env.userns.mode) {
        (None, _) => return "host".to_owned(),
        // SAFETY: getuid cannot fail.
        (Some(_), UsernsMode::Auto) if unsafe { libc::getuid() } == 0 => UsernsMode::RootRemapped,
        (Some(_), UsernsMode::Auto) => UsernsMode::Rootless,
        (Some(_), mode) => mode,
    };
    serde_json::to_value(mode)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn landlock_enforced(p: &Prepared, messages: &[Message]) -> crate::outcome::LandlockEnforced {
    use crate::outcome::LandlockStatus;
    let Some(landlock) = &p.landlock else {
        return crate::outcome::LandlockEnforced::off();
    };
    let (status, skipped) = messages
        .iter()
        .find_map(|m| match m {
            Message::Landlock { status, skipped } => Some((*status, *skipped)),
            _ => None,
        })
        .unwrap_or((LandlockStatus::NotApplied, 0));
    crate::outcome::LandlockEnforced {
        abi: landlock.compiled.kernel_abi(),
        status,
        dropped: landlock.compiled.dropped().to_vec(),
        skipped_paths: skipped,
    }
}

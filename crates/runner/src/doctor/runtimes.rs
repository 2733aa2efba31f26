//! The runtimes: gVisor (installed, and the platforms that work here,
//! tried), the WASI JIT; and the summary of which trust levels and
//! runtimes will work on this machine.

use super::facts::Facts;
use super::judge::{Check, DefaultLaunch, RuntimeVerdict, Status, Summary};

/// Where gVisor comes from.
const INSTALL_RUNSC: &str = "apt-get install runsc (gVisor's apt repository: https://gvisor.dev/docs/user_guide/install/), or --runsc PATH";

/// `runsc`: found, and which version.
pub(crate) fn gvisor(f: &Facts) -> Check {
    let g = &f.gvisor;
    if !g.found {
        return Check::bad(
            "gVisor",
            Status::Missing,
            g.error.clone().unwrap_or_else(|| "runsc not found".to_owned()),
            "untrusted workloads (the default) are refused; --allow-degraded-security runs them natively",
            INSTALL_RUNSC,
        );
    }
    Check::ok(
        "gVisor",
        format!(
            "runsc {} ({})",
            g.version.as_deref().unwrap_or("?"),
            g.path.as_deref().unwrap_or("?")
        ),
    )
}

/// The platforms: each one runsc lists, tried with a real launch.
pub(crate) fn platforms(f: &Facts) -> Option<Check> {
    let g = &f.gvisor;
    if !g.found {
        return None;
    }
    let item = "gVisor platforms";
    let chosen = g.chosen_platform.as_deref();
    let mut parts = Vec::new();
    let mut more = Vec::new();
    let mut working = Vec::new();
    // The default platform first, then the others as runsc lists them.
    let mut order: Vec<&String> = g.platforms.iter().collect();
    order.sort_by_key(|p| Some(p.as_str()) != chosen);
    for p in order {
        let default = if Some(p.as_str()) == chosen {
            " (default)"
        } else {
            ""
        };
        let verdict = match f.gvisor_try(p) {
            Some(t) if t.ok => {
                working.push(p.as_str());
                more.push(format!("{p}: works, {} ms", t.millis));
                "works"
            }
            Some(t) => {
                let why = t.error.as_deref().unwrap_or("failed");
                more.push(format!("{p}: fails: {why}"));
                if let Some(log) = &t.log {
                    more.extend(log.lines().map(|l| format!("{p}: runsc said: {l}")));
                }
                "fails"
            }
            None => {
                more.push(format!("{p}: not tried"));
                "not tried"
            }
        };
        parts.push(format!("{p}: {verdict}{default}"));
    }
    let detail = parts.join(", ");
    if chosen.and_then(|c| f.gvisor_try(c)).is_some_and(|t| t.ok) {
        return Some(Check::ok(item, detail).more(more));
    }
    let why = platform_failure(f);
    let Some(other) = working.first() else {
        return Some(
            Check::bad(
                item,
                Status::Missing,
                detail,
                format!("untrusted workloads cannot run here: {why}"),
                "nucleus-run --runtime gvisor --gvisor-debug-log DIR -- /bin/true keeps runsc's logs; ptrace needs kernel.yama.ptrace_scope below 3",
            )
            .more(more),
        );
    };
    Some(
        Check::bad(
            item,
            Status::Limited,
            detail,
            format!("{why}; untrusted launches need --gvisor-platform {other}"),
            format!("--gvisor-platform {other}"),
        )
        .more(more),
    )
}

/// The WASI host's JIT.
pub(crate) fn wasm_jit(f: &Facts) -> Check {
    let w = &f.wasm;
    if w.jit {
        return Check::ok(
            "WASI JIT",
            format!("wasmtime on {}, WASI {}", w.arch, w.wasi.join(" ")),
        );
    }
    Check::bad(
        "WASI JIT",
        Status::Missing,
        w.error.clone().unwrap_or_else(|| "the JIT does not work".to_owned()),
        "--wasm cannot run",
        "allow executable memory for nucleus-run (no MemoryDenyWriteExecute=, no SELinux execmem denial)",
    )
}

/// Which trust levels and runtimes work, from the checks and the tries.
pub(crate) fn summary(f: &Facts, checks: &[Check]) -> Summary {
    let status_of = |item: &str| {
        checks
            .iter()
            .find(|c| c.item == item)
            .map_or(Status::Missing, |c| c.status)
    };
    let named = |items: &[&str], status: Status| -> Vec<String> {
        items
            .iter()
            .filter(|i| status_of(i) == status)
            .map(|i| (*i).to_owned())
            .collect()
    };
    let limits = named(&["cgroups"], Status::Limited);
    let mut native_limits = named(&["Landlock"], Status::Limited);
    native_limits.extend(limits.iter().cloned());
    let blockers = named(
        &[
            "user namespaces",
            "namespaces",
            "id mapping",
            "Landlock",
            "seccomp",
        ],
        Status::Missing,
    );
    let native = match f.native_try() {
        _ if !blockers.is_empty() => (Status::Missing, format!("needs {}", blockers.join(", "))),
        Some(t) if !t.ok => (
            Status::Missing,
            format!("tried: {}", t.error.as_deref().unwrap_or("failed")),
        ),
        Some(_) => limited_by(&native_limits, "tried: /bin/true ran"),
        None => limited_by(&native_limits, "not tried"),
    };
    let gvisor = gvisor_verdict(f, &limits);
    let mut runtimes = vec![named_verdict("untrusted (gVisor)", gvisor.0, &gvisor.1)];
    if gvisor.0 == Status::Missing {
        // Without runsc the guard falls back when allowed; with a runsc
        // that fails, only an explicit native runtime does.
        let flags = if f.gvisor.found {
            "--runtime native --allow-degraded-security"
        } else {
            "--allow-degraded-security"
        };
        let (status, detail) = match native.0 {
            Status::Missing => (
                Status::Missing,
                "the native envelope cannot start either".to_owned(),
            ),
            _ => (
                Status::Limited,
                format!("with {flags}: the native envelope, the result says degraded"),
            ),
        };
        runtimes.push(named_verdict("untrusted (degraded)", status, &detail));
    }
    runtimes.push(named_verdict("trusted (native)", native.0, &native.1));
    let wasm = if status_of("WASI JIT") == Status::Missing {
        (Status::Missing, "the JIT does not work here".to_owned())
    } else if native.0 == Status::Missing {
        (
            Status::Missing,
            "runs in the native envelope, which cannot start".to_owned(),
        )
    } else {
        limited_by(&native_limits, "wasmtime in the native envelope")
    };
    runtimes.push(named_verdict("wasm", wasm.0, &wasm.1));
    Summary {
        runtimes,
        default_launch: default_launch(f),
    }
}

/// Untrusted under gVisor, on the platform a default launch uses.
fn gvisor_verdict(f: &Facts, limits: &[String]) -> (Status, String) {
    let g = &f.gvisor;
    if !g.found {
        return (Status::Missing, "no usable runsc".to_owned());
    }
    let chosen = g.chosen_platform.as_deref().unwrap_or("none");
    match f.gvisor_try(chosen) {
        Some(t) if t.ok => return limited_by(limits, &format!("{chosen}, tried: /bin/true ran")),
        _ => {}
    }
    let why = platform_failure(f);
    match working_platform(f) {
        Some(alt) => (
            Status::Limited,
            format!("{why}; --gvisor-platform {alt} works"),
        ),
        None => (Status::Missing, why),
    }
}

/// Why the default platform does not run.
fn platform_failure(f: &Facts) -> String {
    let Some(chosen) = f.gvisor.chosen_platform.as_deref() else {
        return format!(
            "no default platform among {}",
            f.gvisor.platforms.join(", ")
        );
    };
    match f.gvisor_try(chosen) {
        Some(t) => format!("{chosen} fails: {}", t.error.as_deref().unwrap_or("failed")),
        None => format!("{chosen} was not tried"),
    }
}

/// A platform that was tried and works.
fn working_platform(f: &Facts) -> Option<&str> {
    f.gvisor
        .platforms
        .iter()
        .find(|p| f.gvisor_try(p).is_some_and(|t| t.ok))
        .map(String::as_str)
}

/// Whether a launch with no flags (untrusted, runtime auto) runs here.
fn default_launch(f: &Facts) -> DefaultLaunch {
    let chosen = f.gvisor.chosen_platform.as_deref().unwrap_or("none");
    let runs = f.gvisor.found && f.gvisor_try(chosen).is_some_and(|t| t.ok);
    let detail = if runs {
        format!("the default launch (untrusted: gVisor, {chosen}) runs here")
    } else if !f.gvisor.found {
        "the default launch (untrusted) is refused here: no usable runsc; install gVisor, or pass --trust-level trusted or --allow-degraded-security".to_owned()
    } else {
        let hint = match working_platform(f) {
            Some(alt) => format!("pass --gvisor-platform {alt}"),
            None => "pass --trust-level trusted, or --runtime native --allow-degraded-security"
                .to_owned(),
        };
        let why = match f.gvisor_try(chosen) {
            Some(t) => t.error.clone().unwrap_or_else(|| "failed".to_owned()),
            None => platform_failure(f),
        };
        format!("the default launch (untrusted: gVisor, {chosen}) fails here: {why}; {hint}")
    };
    DefaultLaunch { runs, detail }
}

/// `ok` with `detail`, or `limited` naming what limits it.
fn limited_by(limits: &[String], detail: &str) -> (Status, String) {
    if limits.is_empty() {
        (Status::Ok, detail.to_owned())
    } else {
        (
            Status::Limited,
            format!("{detail}; limited by: {}", limits.join(", ")),
        )
    }
}

fn named_verdict(name: &str, status: Status, detail: &str) -> RuntimeVerdict {
    RuntimeVerdict {
        name: name.to_owned(),
        status,
        detail: detail.to_owned(),
    }
}

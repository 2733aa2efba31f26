//! `cargo xtask soak --launches N`: N launches of mixed workloads on two
//! workers, about 30% of the runners SIGKILLed at a random moment (a delay
//! drawn up to the workload's usual run time, so that kills land in every
//! stage: validate and prepare, clone and admit, the run, the cleanup).
//!
//! Everything a run can leave is counted before, after every 1,000
//! launches and at the end (`soak/leaks.rs`); before each count one more
//! run (gVisor with a memory limit, the runs that look for leftovers of
//! both kinds) must clean what the killed runners left, and say so on
//! stderr. Any count above the one before the soak fails it, as does an
//! unkilled run that did not end as its workload should.
//!
//! The runners' peak RSS (`wait4`'s `ru_maxrss`, which includes the
//! sandbox's processes, hence per workload): the median of the last 1,000
//! launches (the last quarter for fewer than 4,000) must not exceed the
//! median of the first 1,000 by more than 5%. Every launch is a fresh
//! runner, so a sample's maximum is noise (a timeout's kill lands at a
//! different moment each run: 7% apart in one CI run); what can grow is
//! what runners share (state, caches), and that moves the median.

mod leaks;
mod mix;
mod servers;

use leaks::{Counts, Places};
use mix::{kind_of, Kind, CACHE, MARK, MIX, SWEEP, WASM};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much the last window's median peak RSS may exceed the first's.
const RSS_TOLERANCE: f64 = 1.05;
/// Fewer unkilled launches of a workload in a window give no median.
const MIN_SAMPLES: usize = 3;
/// The stderr line of a run that cleaned an earlier killed run's leftovers.
const CLEANED: &str = "left behind by an earlier run that was killed";

/// What one launch measured.
struct Launch {
    index: usize,
    kind: &'static str,
    killed: bool,
    maxrss_kb: i64,
}

/// The soak's shared state while launches run.
struct Soak {
    places: Places,
    dir: PathBuf,
    wasm: String,
    kill_percent: u64,
    seed: u64,
    /// The launches of the first and last RSS window (`rss_window`) only:
    /// a child's peak RSS includes this process's own at its `exec`
    /// (`vfork`), so this process must not grow with the soak's length.
    launches: Mutex<Vec<Launch>>,
    /// How many launches the soak makes.
    total: usize,
    failures: Mutex<Vec<String>>,
    cleaned_lines: AtomicUsize,
    killed: AtomicUsize,
    /// `--server`: the servers the launches go through.
    servers: Option<servers::Servers>,
}

/// `cargo xtask soak [--launches N] [--kill-percent P] [--seed S]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let usage = || {
        "usage: cargo xtask soak [--launches N] [--kill-percent P] [--seed S] [--server]".to_owned()
    };
    let server = args.iter().any(|a| a == "--server");
    let args: Vec<String> = args.iter().filter(|a| *a != "--server").cloned().collect();
    let (mut launches, mut kill_percent) = (1000usize, 30u64);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut rest = &args[..];
    while let [flag, value, more @ ..] = rest {
        let n: u64 = value.parse().map_err(|_| usage())?;
        match flag.as_str() {
            "--launches" => launches = usize::try_from(n).map_err(|_| usage())?,
            "--kill-percent" => kill_percent = n.min(100),
            "--seed" => seed = n,
            _ => return Err(usage()),
        }
        rest = more;
    }
    if !rest.is_empty() {
        return Err(usage());
    }
    soak(launches, kill_percent, seed, server)
}

/// Builds `nucleus-run` in release and soaks it with `launches` launches
/// (through two servers with `server`).
pub(crate) fn soak(
    launches: usize,
    kill_percent: u64,
    seed: u64,
    server: bool,
) -> Result<(), String> {
    if !is_root() {
        return Err("soak: needs root (cgroup limits, nobody runs, the kills)".to_owned());
    }
    crate::bench::build_release_runner()?;
    let root = crate::bench::workspace_root();
    let dir = std::env::temp_dir().join(format!("xtask-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wasm-cache")).map_err(|e| format!("soak dir: {e}"))?;
    let bin = dir.join("nucleus-run");
    std::fs::copy(root.join("target/release/nucleus-run"), &bin)
        .map_err(|e| format!("copy: {e}"))?;
    set_mode(&dir, 0o755)?;
    set_mode(&bin, 0o755)?;
    let soak = Soak {
        places: Places {
            bin,
            marker: format!("xtask-soak-{}", std::process::id()),
            wasm_cache: dir.join("wasm-cache"),
            runsc: crate::bench::which("runsc"),
        },
        wasm: root
            .join("crates/wasm/tests/fixtures/hello.wat")
            .display()
            .to_string(),
        dir,
        kill_percent,
        seed,
        launches: Mutex::new(Vec::new()),
        total: launches,
        failures: Mutex::new(Vec::new()),
        cleaned_lines: AtomicUsize::new(0),
        killed: AtomicUsize::new(0),
        servers: None,
    };
    let mut soak = soak;
    // Nothing of the servers' is in the first count: what they hold at
    // the end must be gone after they stop.
    soak.warm_up()?;
    let baseline = leaks::count(&soak.places);
    if server {
        soak.servers = Some(servers::Servers::start(&soak.places.bin, &soak.dir)?);
    }
    let how = if server {
        "clients through two servers"
    } else {
        "runners"
    };
    eprintln!("soak: {launches} launches, {kill_percent}% of the {how} killed, seed {seed}");
    let started = Instant::now();
    let mut result = soak.run_all(launches);
    if let Some(servers) = soak.servers.take() {
        let mut problems = servers.report();
        problems.extend(servers.stop());
        let after = soak.settled(&baseline)?;
        println!(
            "{}\n{}\n{}",
            Counts::header(),
            baseline.row("no servers"),
            after.row("servers gone")
        );
        problems.extend(
            after
                .grown(&baseline)
                .into_iter()
                .map(|g| format!("after the servers: {g}")),
        );
        if !problems.is_empty() {
            let old = result.err().map(|e| format!("{e}\n  ")).unwrap_or_default();
            result = Err(format!(
                "{old}soak --server failed:\n  {}",
                problems.join("\n  ")
            ));
        }
    }
    eprintln!(
        "soak: {launches} launches in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&soak.dir);
    result
}

impl Soak {
    /// The runs before the first count: the first stores the wasm module
    /// (the cache's one entry).
    fn warm_up(&self) -> Result<(), String> {
        self.sweep_run(false)?;
        let wasm = MIX.iter().map(|(_, k)| k).find(|k| k.name == "wasm");
        if let Some(kind) = wasm {
            self.launch_argv(usize::MAX, 0, kind, None);
        }
        Ok(())
    }

    fn run_all(&mut self, launches: usize) -> Result<(), String> {
        self.warm_up()?;
        let before = leaks::count(&self.places);
        let mut table = vec![Counts::header(), before.row("before")];
        eprintln!("{}\n{}", table[0], table[1]);
        let mut grown = Vec::new();
        let mut done = 0;
        // A count every 1,000 launches, or every quarter of a shorter soak.
        let every = (launches / 4).clamp(1, 1000);
        while done < launches {
            let chunk = (launches - done).min(every);
            let cleaned = self.cleaned_lines.load(Ordering::Relaxed);
            self.chunk(done, chunk);
            done += chunk;
            if let Some(servers) = &self.servers {
                let problems = servers.session_round(&self.places.bin, done, self.seed);
                eprintln!(
                    "session round {done}: a session made, used and removed on each server; {} problem(s)",
                    problems.len()
                );
                for problem in problems {
                    self.fail(problem);
                }
                let (bin, dir) = (&self.places.bin, &self.dir);
                let problems = servers::Servers::spare_round(bin, dir, done, self.seed);
                eprintln!(
                    "spare round {done}: commands run in spares of a server per user, the servers stopped; {} problem(s)",
                    problems.len()
                );
                for problem in problems {
                    self.fail(problem);
                }
            }
            // What the killed runners left, before a later run cleans it.
            let left = leaks::count(&self.places).row(&format!("left {done}"));
            eprintln!("{left}");
            table.push(left);
            let now = self.settled(&before)?;
            let cleaned = self.cleaned_lines.load(Ordering::Relaxed) - cleaned;
            let row = now.row(&if done == launches {
                "after".to_owned()
            } else {
                format!("after {done}")
            });
            let row = format!("{row}  (cleaned by later runs: {cleaned})");
            eprintln!("{row}");
            table.push(row);
            grown.extend(
                now.grown(&before)
                    .into_iter()
                    .map(|g| format!("after {done}: {g}")),
            );
            // The servers' memory and fds, once warm: after the first chunk.
            if done == chunk {
                if let Some(servers) = self.servers.as_mut() {
                    servers.mark();
                }
            }
        }
        println!("{}", table.join("\n"));
        let failures = self.failures.lock().map_err(|_| "poisoned")?.clone();
        println!(
            "soak: {} runners killed; {} stale leftovers removed by later runs (stderr lines)",
            self.killed.load(Ordering::Relaxed),
            self.cleaned_lines.load(Ordering::Relaxed)
        );
        let rss = self.rss_report(launches);
        let mut problems: Vec<String> = grown;
        problems.extend(failures.into_iter().take(20));
        problems.extend(rss);
        if problems.is_empty() {
            println!("soak: no leaks");
            Ok(())
        } else {
            Err(format!("soak failed:\n  {}", problems.join("\n  ")))
        }
    }

    /// Launches `count` runs from `first` on, on two workers.
    fn chunk(&self, first: usize, count: usize) {
        let next = AtomicUsize::new(first);
        std::thread::scope(|s| {
            for worker in 0..2 {
                let next = &next;
                s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= first + count {
                        return;
                    }
                    let mut rng = Rng(self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let kind = kind_of(i);
                    let kill = (rng.next() % 100 < self.kill_percent).then(|| {
                        Duration::from_micros(rng.next() % (kind.kill_within_ms * 1000 + 1))
                    });
                    self.launch_argv(i, worker, kind, kill);
                });
            }
        });
    }

    /// The runs before a count, until the counts settle (killed runs'
    /// processes may take a moment to die).
    fn settled(&self, before: &Counts) -> Result<Counts, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.sweep_run(true)?;
            let now = leaks::count(&self.places);
            let workers = self
                .servers
                .as_ref()
                .map_or(0, servers::Servers::descendants);
            if (now.grown(before).is_empty() && workers == 0) || Instant::now() > deadline {
                if workers > 0 {
                    self.fail(format!("{workers} processes still below the servers"));
                }
                return Ok(now);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn sweep_run(&self, quiet: bool) -> Result<(), String> {
        let out = Command::new(&self.places.bin)
            .args(SWEEP)
            .stdin(Stdio::null())
            .current_dir("/")
            .output()
            .map_err(|e| format!("sweep run: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let cleaned = stderr.lines().filter(|l| l.contains(CLEANED)).count();
        self.cleaned_lines.fetch_add(cleaned, Ordering::Relaxed);
        if !quiet {
            eprint!("{stderr}");
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("sweep run failed ({}): {stderr}", out.status))
        }
    }

    /// One launch of `kind`, SIGKILLed after `kill` if given.
    fn launch_argv(
        &self,
        index: usize,
        worker: usize,
        kind: &'static Kind,
        kill: Option<Duration>,
    ) {
        let args: Vec<String> = kind
            .args
            .iter()
            .map(|a| match *a {
                MARK => self.places.marker.clone(),
                WASM => self.wasm.clone(),
                CACHE => self.places.wasm_cache.display().to_string(),
                a => a.to_owned(),
            })
            .collect();
        let mut cmd = runner_command(&self.places.bin, kind.nobody);
        if let Some(servers) = &self.servers {
            cmd.arg("--server").arg(servers.socket(kind.nobody));
        }
        let out_path = self.dir.join(format!("out-{worker}"));
        let err_path = self.dir.join(format!("err-{worker}"));
        let (Ok(out), Ok(err)) = (
            std::fs::File::create(&out_path),
            std::fs::File::create(&err_path),
        ) else {
            return self.fail(format!("launch {index}: cannot create output files"));
        };
        cmd.arg("--json")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir("/");
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return self.fail(format!("launch {index}: spawn: {e}")),
        };
        let pid = child.id() as libc::pid_t;
        if let Some(delay) = kill {
            std::thread::sleep(delay);
            // SAFETY: our own unreaped child: the pid cannot be reused yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            self.killed.fetch_add(1, Ordering::Relaxed);
        }
        let (status, maxrss_kb) = wait4(pid);
        drop(child);
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let cleaned = stderr.lines().filter(|l| l.contains(CLEANED)).count();
        self.cleaned_lines.fetch_add(cleaned, Ordering::Relaxed);
        let killed =
            kill.is_some() && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
        if !killed {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            let result = stdout.lines().last().unwrap_or("");
            let expected = kind.expect.iter().any(|(c, by)| {
                let by = by.map_or("null".to_owned(), |k| format!("\"{k}\""));
                code == *c && result.contains(&format!("\"killed_by\":{by}"))
            });
            if !expected {
                let stderr: String = stderr
                    .lines()
                    .filter(|l| !l.contains(CLEANED))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ");
                self.fail(format!(
                    "launch {index} ({}): exit {code}, wanted {:?}; stderr: {stderr}",
                    kind.name, kind.expect
                ));
            }
        }
        let window = rss_window(self.total);
        let measured = index < window || (self.total - window..self.total).contains(&index);
        if measured {
            if let Ok(mut l) = self.launches.lock() {
                l.push(Launch {
                    index,
                    kind: kind.name,
                    killed: kill.is_some(),
                    maxrss_kb,
                });
            }
        }
    }

    fn fail(&self, message: String) {
        eprintln!("soak: {message}");
        if let Ok(mut f) = self.failures.lock() {
            f.push(message);
        }
    }

    /// Median peak RSS per workload, first window against last; the problems.
    fn rss_report(&self, launches: usize) -> Vec<String> {
        let window = rss_window(launches);
        let Ok(all) = self.launches.lock() else {
            return vec!["poisoned".to_owned()];
        };
        // Each window's peaks, sorted: (median, max) when enough.
        let stats = |name: &str, range: std::ops::Range<usize>| {
            let mut v: Vec<i64> = all
                .iter()
                .filter(|l| l.kind == name && !l.killed && range.contains(&l.index))
                .map(|l| l.maxrss_kb)
                .collect();
            v.sort_unstable();
            (v.len() >= MIN_SAMPLES).then(|| (v[v.len() / 2], v[v.len() - 1]))
        };
        let mut problems = Vec::new();
        println!(
            "peak RSS (KiB) of unkilled runners, launches 0..{window} vs {}..{launches}, \
             median (checked) and max (- : fewer than {MIN_SAMPLES} samples):",
            launches - window
        );
        for (_, kind) in MIX {
            let (first, first_max) = stats(kind.name, 0..window).unzip();
            let (last, last_max) = stats(kind.name, launches - window..launches).unzip();
            println!(
                "  {:<16}{:>10}{:>10}   max{:>10}{:>10}",
                kind.name,
                opt(first),
                opt(last),
                opt(first_max),
                opt(last_max)
            );
            if let (Some(f), Some(l)) = (first, last) {
                if l as f64 > f as f64 * RSS_TOLERANCE {
                    problems.push(format!(
                        "median peak RSS of {} grew: {f} KiB -> {l} KiB",
                        kind.name
                    ));
                }
            }
        }
        problems
    }
}

/// The launches whose peak RSS is compared: the first and the last this many.
fn rss_window(launches: usize) -> usize {
    (launches / 4).clamp(1, 1000)
}

fn opt(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

/// `bin` as root, or as nobody through `setpriv`.
fn runner_command(bin: &Path, nobody: bool) -> Command {
    if !nobody {
        return Command::new(bin);
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin);
    c
}

/// Waits for `pid`: its wait status and peak RSS in KiB.
fn wait4(pid: libc::pid_t) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (status, usage.ru_maxrss);
        }
    }
}

/// The soak kills runners, sets limits and runs some as nobody: root's.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// xorshift64*: enough randomness for kill moments, reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

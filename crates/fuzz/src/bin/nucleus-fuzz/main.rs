//! `nucleus-fuzz`: a coverage-less, structure-aware fuzzer on stable Rust for the targets of
//! the `nucleus-fuzz` crate.
//!
//! ```text
//! nucleus-fuzz [--time DURATION] [--seed N] [--max-len BYTES] [--out DIR] all|list|TARGET...
//! nucleus-fuzz replay TARGET FILE...
//! ```
//!
//! Each target runs for `--time` (default 60s): first its seeds as they are, then inputs
//! from [`nucleus_fuzz::Mutator`] (random bytes, seeds and accepted inputs mutated). Each
//! input runs under `catch_unwind`. A finding is
//!
//! - a panic (of the parser, or of a property the target checks),
//! - a hang: no result after 2 s (the watchdog thread; the driver then exits 4),
//! - an allocation over the bound: more than 64 times the input's length plus 16 MiB live
//!   at once, beyond what was live before the input (a counting global allocator; an
//!   allocation the system refuses ends the driver with status 3).
//!
//! A finding writes the input to `DIR/TARGET/<first 16 hex digits of its SHA-256>` (DIR:
//! `crates/fuzz/regressions`, which `tests/regressions.rs` replays), prints the target, the
//! file and the message, and ends that target's run; the driver exits 1 when any target
//! had one. Build it with panics that unwind (not the release profile, which aborts).

mod alloc;
mod watchdog;

use nucleus_fuzz::{Mutator, Target, TARGETS};
use sha2::{Digest, Sha256};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use watchdog::Watchdog;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// The last panic's message and place, as the hook saw it.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Inputs kept to mutate further, seeds included.
const POOL_MAX: usize = 2048;

const USAGE: &str = "usage: nucleus-fuzz [--time DURATION] [--seed N] [--max-len BYTES] \
                     [--out DIR] all|list|TARGET... | replay TARGET FILE...";

/// The allocation bound of an input of `len` bytes.
fn bound(len: usize) -> usize {
    len.saturating_mul(64).saturating_add(16 << 20)
}

struct Options {
    time: Duration,
    seed: u64,
    max_len: usize,
    out: PathBuf,
    targets: Vec<&'static Target>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        time: Duration::from_secs(60),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        max_len: 64 << 10,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions"),
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--time" => {
                opts.time = nucleus_runner::parse_duration(value()?).map_err(|e| e.to_string())?
            }
            "--seed" => opts.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--max-len" => {
                opts.max_len = value()?.parse().map_err(|e| format!("--max-len: {e}"))?
            }
            "--out" => opts.out = PathBuf::from(value()?),
            "all" => opts.targets.extend(TARGETS.iter()),
            "replay" => {
                let name = value()?;
                let t =
                    nucleus_fuzz::target(name).ok_or_else(|| format!("unknown target {name:?}"))?;
                for file in it.by_ref() {
                    let input = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
                    let verdict = if (t.run)(&input) {
                        "accepted"
                    } else {
                        "refused"
                    };
                    println!("{file}: {verdict}");
                }
                std::process::exit(0);
            }
            "list" => {
                for t in TARGETS {
                    println!("{:12} {}", t.name, t.entry);
                }
                std::process::exit(0);
            }
            name => opts.targets.push(
                nucleus_fuzz::target(name)
                    .ok_or_else(|| format!("unknown target {name:?} (try `list`)\n{USAGE}"))?,
            ),
        }
    }
    if opts.targets.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => opts,
        Err(err) => {
            eprintln!("nucleus-fuzz: {err}");
            return ExitCode::from(2);
        }
    };
    panic::set_hook(Box::new(|info| {
        if alloc::active() {
            *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = info.to_string();
        } else {
            eprintln!("{info}");
        }
    }));
    let dog = Watchdog::spawn();
    println!(
        "nucleus-fuzz: seed {}, {:?} per target",
        opts.seed, opts.time
    );
    let mut findings = 0;
    let started = Instant::now();
    for target in &opts.targets {
        findings += fuzz(target, &opts, &dog);
    }
    println!(
        "nucleus-fuzz: {} target(s) in {:.0?}, {findings} finding(s)",
        opts.targets.len(),
        started.elapsed()
    );
    if findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `target` for the set time; the number of findings (0 or 1: a finding ends the run).
fn fuzz(target: &'static Target, opts: &Options, dog: &Watchdog) -> usize {
    let dir = Arc::new(opts.out.join(target.name));
    alloc::set_finding_dir(&dir);
    let mut pool = (target.seeds)();
    let seeds = pool.len();
    let salt = Sha256::digest(target.name.as_bytes());
    let salt = u64::from_le_bytes(std::array::from_fn(|i| salt[i]));
    let mut mutator = Mutator::new(opts.seed ^ salt, opts.max_len);
    let (mut runs, mut accepted, mut findings) = (0u64, 0u64, 0);
    let started = Instant::now();
    while started.elapsed() < opts.time || runs < seeds as u64 {
        let input = match pool.get(runs as usize).filter(|_| runs < seeds as u64) {
            Some(seed) => seed.clone(),
            None => mutator.next(&pool),
        };
        let input = Arc::new(input);
        dog.start(target.name, &dir, &input);
        alloc::begin(&input);
        let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let peak = alloc::end();
        dog.stop();
        runs += 1;
        let problem = match result {
            Err(_) => Some(std::mem::take(
                &mut *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner),
            )),
            Ok(_) if peak > bound(input.len()) => Some(format!(
                "{peak} bytes allocated at once for {} input bytes (bound {})",
                input.len(),
                bound(input.len())
            )),
            Ok(_) => None,
        };
        if let Some(message) = problem {
            report_finding(target.name, &dir, &input, &message);
            findings += 1;
            break;
        }
        if matches!(result, Ok(true)) {
            accepted += 1;
            if runs > seeds as u64 {
                keep(&mut pool, seeds, input, &mut mutator);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:12} {runs:>10} runs {:>9.0} exec/s {accepted:>9} accepted {findings} finding(s)",
        target.name,
        runs as f64 / secs.max(1e-9),
    );
    findings
}

/// Keeps an accepted input to mutate further: appended while the pool is small, else in
/// place of a kept input (never of a seed).
fn keep(pool: &mut Vec<Vec<u8>>, seeds: usize, input: Arc<Vec<u8>>, m: &mut Mutator) {
    let input = Arc::try_unwrap(input).unwrap_or_else(|a| a.as_ref().clone());
    if pool.len() < POOL_MAX {
        pool.push(input);
    } else {
        let slot = seeds + m.rng().below(pool.len() - seeds);
        pool[slot] = input;
    }
}

/// Writes `input` under `dir` and prints the finding.
pub(crate) fn report_finding(target: &str, dir: &Path, input: &[u8], message: &str) {
    let name: String = Sha256::digest(input)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(name);
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    eprintln!("nucleus-fuzz: FINDING in target {target}: {message}");
    match written {
        Ok(()) => eprintln!(
            "nucleus-fuzz: input ({} bytes): {}",
            input.len(),
            path.display()
        ),
        Err(e) => eprintln!("nucleus-fuzz: cannot write {}: {e}", path.display()),
    }
}

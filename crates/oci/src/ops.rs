//! The commands on an existing container: `start`, `state`, `kill`,
//! `delete`, `ps`, `pause`, `resume`, `update`, `events`, `list`.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nucleus_cgroup::Cgroup;
use serde_json::json;

use crate::cli::{DeleteArgs, EventsArgs, KillArgs, ListArgs, PsArgs, UpdateArgs};
use crate::create::hook_state;
use crate::error::OciError;
use crate::hooks;
use crate::proc;
use crate::resources;
use crate::state::{Record, Status, Store, FIFO};

fn bad_state(r: &Record, status: Status, what: &'static str) -> OciError {
    OciError::BadState {
        id: r.id.clone(),
        status: status.to_string(),
        what,
    }
}

/// `start`: lets the created init exec its process.
pub fn start(store: &Store, id: &str) -> Result<(), OciError> {
    let _lock = store.lock(id)?;
    let r = store.load(id)?;
    let status = store.status(&r);
    if status != Status::Created {
        return Err(bad_state(
            &r,
            status,
            "only a created container can be started",
        ));
    }
    let fifo_path = store.dir(id).join(FIFO);
    let mut fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| OciError::io("open the exec fifo", e))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        let mut pfd = libc::pollfd {
            fd: fifo.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        if let Ok(1) = fifo.read(&mut byte) {
            break;
        }
        if !proc::alive(r.pid, r.pid_start) {
            return Err(OciError::Init(
                "the container's init exited before it was started".into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(OciError::Init(
                "the container's init did not take the start".into(),
            ));
        }
    }
    std::fs::remove_file(&fifo_path).map_err(|e| OciError::io("remove the exec fifo", e))?;
    let state = hook_state(id, "running", r.pid, &r.bundle, &r.config);
    let poststart = r
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_ref());
    hooks::run_warning("poststart", poststart, &state);
    Ok(())
}

/// The state JSON `state` prints (runc's fields).
pub fn state_json(store: &Store, r: &Record) -> serde_json::Value {
    match &r.gvisor {
        // runsc knows whether its container was started.
        Some(g) => {
            crate::gvisor::state(store, &r.id, g).unwrap_or_else(|| r.state_json(Status::Stopped))
        }
        None => r.state_json(store.status(r)),
    }
}

/// `state`.
pub fn state(store: &Store, id: &str) -> Result<(), OciError> {
    let r = store.load(id)?;
    let text = serde_json::to_string_pretty(&state_json(store, &r)).unwrap_or_default();
    println!("{text}");
    Ok(())
}

/// `kill`.
pub fn kill(store: &Store, args: &KillArgs) -> Result<(), OciError> {
    let sig_text = args.signal.as_deref().unwrap_or("SIGTERM");
    let sig = proc::parse_signal(sig_text)
        .ok_or_else(|| OciError::Usage(format!("unknown signal {sig_text:?}")))?;
    let r = store.load(&args.id)?;
    let status = store.status(&r);
    if status == Status::Stopped || status == Status::Creating {
        return Err(bad_state(&r, status, "container not running"));
    }
    if args.all {
        if let Some(saved) = &r.cgroup {
            let cg = Cgroup::restore(saved);
            if sig == libc::SIGKILL {
                return cg.kill_all().map_err(|e| OciError::layer(&e));
            }
            for pid in cg.pids().map_err(|e| OciError::layer(&e))? {
                // SAFETY: signal a member of the container's cgroup.
                unsafe { libc::kill(pid, sig) };
            }
            return Ok(());
        }
    }
    // SAFETY: signal the init, checked alive (same start time) above.
    if unsafe { libc::kill(r.pid, sig) } != 0 {
        return Err(OciError::io(
            format!("kill {}", r.pid),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// `delete`: a stopped (or created) container goes; a running one only with `--force`.
pub fn delete(store: &Store, args: &DeleteArgs) -> Result<(), OciError> {
    let r = match store.load(&args.id) {
        Ok(r) => r,
        Err(OciError::NotExist { .. }) if args.force => return Ok(()),
        // A damaged state (a runtime killed half-way): what is left goes.
        Err(OciError::Config { .. }) if args.force => return store.remove(&args.id),
        Err(OciError::NotExist { id }) => {
            // A directory without state (create killed before saving).
            if store.dir(&id).exists() {
                return store.remove(&id);
            }
            return Err(OciError::NotExist { id });
        }
        Err(e) => return Err(e),
    };
    let _lock = store.lock(&args.id)?;
    let status = store.status(&r);
    if matches!(status, Status::Running | Status::Paused | Status::Creating) && !args.force {
        return Err(bad_state(
            &r,
            status,
            "cannot delete a container that is not stopped (use --force)",
        ));
    }
    destroy(store, &r)
}

/// Kills what is left, removes the cgroups and the state, runs poststop hooks.
pub fn destroy(store: &Store, r: &Record) -> Result<(), OciError> {
    if proc::alive(r.pid, r.pid_start) {
        // SAFETY: the init, checked alive with its start time.
        unsafe { libc::kill(r.pid, libc::SIGKILL) };
    }
    let mut first_err = None;
    if let Some(saved) = &r.cgroup {
        let cg = Cgroup::restore(saved);
        if cg.is_paused() {
            let _ = cg.resume();
        }
        if let Err(e) = cg.remove() {
            first_err.get_or_insert(OciError::layer(&e));
        }
    }
    wait_gone(r);
    if let Some(d) = &r.devices {
        d.remove();
    }
    let state = hook_state(&r.id, "stopped", 0, &r.bundle, &r.config);
    let poststop = r
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().as_ref());
    hooks::run_warning("poststop", poststop, &state);
    store.remove(&r.id)?;
    first_err.map_or(Ok(()), Err)
}

/// Waits (up to 5 s) until the init is gone or a zombie for its reaper.
fn wait_gone(r: &Record) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc::alive(r.pid, r.pid_start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `ps`.
pub fn ps(store: &Store, args: &PsArgs) -> Result<(), OciError> {
    let r = store.load(&args.id)?;
    let pids = match &r.cgroup {
        Some(saved) => Cgroup::restore(saved)
            .pids()
            .map_err(|e| OciError::layer(&e))?,
        None => Vec::new(),
    };
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&pids).unwrap_or_default()),
        "table" => {
            println!("{:>8} CMD", "PID");
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .trim()
                            .to_owned()
                    })
                    .unwrap_or_default();
                println!("{pid:>8} {cmd}");
            }
        }
        other => {
            return Err(OciError::Usage(format!(
                "unknown --format {other:?} (table or json)"
            )))
        }
    }
    Ok(())
}

fn running_cgroup(store: &Store, id: &str, what: &'static str) -> Result<Cgroup, OciError> {
    let r = store.load(id)?;
    let status = store.status(&r);
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(bad_state(&r, status, what));
    }
    let saved = r
        .cgroup
        .as_ref()
        .ok_or_else(|| bad_state(&r, status, "it has no cgroup"))?;
    Ok(Cgroup::restore(saved))
}

/// `pause`.
pub fn pause(store: &Store, id: &str) -> Result<(), OciError> {
    running_cgroup(store, id, "container not running")?
        .pause()
        .map_err(|e| OciError::layer(&e))
}

/// `resume`.
pub fn resume(store: &Store, id: &str) -> Result<(), OciError> {
    running_cgroup(store, id, "container not running")?
        .resume()
        .map_err(|e| OciError::layer(&e))
}

/// `update`.
pub fn update(store: &Store, args: &UpdateArgs) -> Result<(), OciError> {
    let mut cg = running_cgroup(store, &args.id, "container not running")?;
    let mut res: oci_spec::runtime::LinuxResources = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| OciError::io("read stdin", e))?;
                s
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| OciError::io(format!("read {}", path.display()), e))?
            };
            serde_json::from_str(&text).map_err(|e| OciError::Usage(format!("--resources: {e}")))?
        }
        None => Default::default(),
    };
    apply_flags(&mut res, args)?;
    resources::check(&res)?;
    let limits = resources::limits(&res)?;
    cg.update(&limits).map_err(|e| OciError::layer(&e))
}

fn apply_flags(
    res: &mut oci_spec::runtime::LinuxResources,
    a: &UpdateArgs,
) -> Result<(), OciError> {
    let size = |s: &Option<String>| -> Result<Option<i64>, OciError> {
        s.as_deref()
            .map(|v| {
                if v == "-1" {
                    return Ok(-1);
                }
                nucleus_cgroup::parse_size(v)
                    .map(|n| n as i64)
                    .map_err(|e| OciError::Usage(e.to_string()))
            })
            .transpose()
    };
    let mut mem = res.memory().unwrap_or_default();
    if let Some(m) = size(&a.memory)? {
        mem.set_limit(Some(m));
    }
    if let Some(s) = size(&a.memory_swap)? {
        mem.set_swap(Some(s));
    }
    res.set_memory(Some(mem));
    let mut cpu = res.cpu().clone().unwrap_or_default();
    if a.cpu_quota.is_some() {
        cpu.set_quota(a.cpu_quota);
    }
    if a.cpu_period.is_some() {
        cpu.set_period(a.cpu_period);
    }
    if a.cpu_shares.is_some() {
        cpu.set_shares(a.cpu_shares);
    }
    res.set_cpu(Some(cpu));
    if let Some(n) = a.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(n);
        res.set_pids(Some(p));
    }
    Ok(())
}

/// `events`: stats as runc prints them (`--stats` once, else every interval).
pub fn events(store: &Store, args: &EventsArgs) -> Result<(), OciError> {
    let interval = parse_interval(&args.interval)?;
    loop {
        let r = store.load(&args.id)?;
        if store.status(&r) == Status::Stopped && !args.stats {
            return Ok(());
        }
        let usage = r.cgroup.as_ref().map(|c| Cgroup::restore(c).usage());
        let data = usage
            .map(|u| serde_json::to_value(u).unwrap_or_default())
            .unwrap_or_default();
        println!("{}", json!({"type": "stats", "id": r.id, "data": data}));
        if args.stats {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn parse_interval(text: &str) -> Result<Duration, OciError> {
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| OciError::Usage(format!("bad --interval {text:?}")))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(OciError::Usage(format!("bad --interval {text:?}"))),
    }
}

/// `list`.
pub fn list(store: &Store, args: &ListArgs) -> Result<(), OciError> {
    let records: Vec<Record> = store
        .ids()
        .iter()
        .filter_map(|id| store.load(id).ok())
        .collect();
    if args.quiet {
        for r in &records {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            let all: Vec<serde_json::Value> =
                records.iter().map(|r| state_json(store, r)).collect();
            println!("{}", serde_json::to_string(&all).unwrap_or_default());
        }
        "table" => {
            println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
            for r in &records {
                let s = state_json(store, r);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    s["pid"],
                    s["status"].as_str().unwrap_or(""),
                    r.bundle.display(),
                    r.created,
                    s["owner"].as_str().unwrap_or("")
                );
            }
        }
        other => {
            return Err(OciError::Usage(format!(
                "unknown --format {other:?} (table or json)"
            )))
        }
    }
    Ok(())
}

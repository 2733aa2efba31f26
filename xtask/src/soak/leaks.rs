//! What a run can leave behind, counted: processes, host mounts, sandbox
//! cgroups in every hierarchy, runsc containers and run directories, state
//! and temporary files, held id leases, wasm cache entries, and the soak's
//! own open fds.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the soak's own things are.
pub(crate) struct Places {
    /// The soak's copy of `nucleus-run`: its processes are the runners and
    /// the sandboxes' inits.
    pub bin: PathBuf,
    /// In the command line of every shell workload (`sh -c ... MARKER`).
    pub marker: String,
    /// The soak's wasm cache directory.
    pub wasm_cache: PathBuf,
    /// `runsc`, when installed.
    pub runsc: Option<String>,
}

/// One count of everything; each field must not grow.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Runners, inits, workloads and runsc processes still alive.
    pub procs: usize,
    /// Lines of the host's `/proc/self/mountinfo`.
    pub mounts: usize,
    /// `nucleus-*` cgroup directories below ours, per hierarchy (in
    /// [`HIERARCHIES`] order).
    pub cgroups: [usize; HIERARCHIES.len()],
    /// Containers `runsc list` shows in any state root nucleus uses.
    pub runsc: usize,
    /// gVisor run directories (`/run/nucleus/gvisor/nucleus-*`, and the
    /// rootless ones under `$TMPDIR/nucleus-UID/gvisor`).
    pub run_dirs: usize,
    /// Other files in `/run/nucleus` (not `ids/`) and `$TMPDIR/nucleus-*`.
    pub state: usize,
    /// `nucleus-*` and `runsc*` entries in `$TMPDIR`.
    pub tmp: usize,
    /// Id lease files of `/run/nucleus/ids` that someone holds.
    pub leases_held: usize,
    /// Entries of the soak's wasm cache directory.
    pub wasm_cache: usize,
    /// The soak's own open file descriptors.
    pub fds: usize,
    /// Namespaces alive on the machine: every process's, and those only an
    /// open fd holds (a server's pool).
    pub namespaces: usize,
}

/// The hierarchies whose sandbox cgroups are counted, by the name in
/// `/proc/self/cgroup` (`""` is the v2 unified one).
pub(crate) const HIERARCHIES: [&str; 7] =
    ["memory", "cpu", "cpuacct", "pids", "freezer", "blkio", ""];

impl Counts {
    pub(crate) fn header() -> String {
        let cg: Vec<String> = HIERARCHIES
            .iter()
            .map(|h| format!("{:>8}", if h.is_empty() { "v2" } else { h }))
            .collect();
        format!(
            "{:<14}{:>6}{:>7}{}{:>6}{:>8}{:>6}{:>5}{:>7}{:>6}{:>5}{:>5}",
            "when",
            "procs",
            "mounts",
            cg.concat(),
            "runsc",
            "rundirs",
            "state",
            "tmp",
            "leases",
            "wasm",
            "fds",
            "ns"
        )
    }

    pub(crate) fn row(&self, when: &str) -> String {
        let cg: Vec<String> = self.cgroups.iter().map(|n| format!("{n:>8}")).collect();
        format!(
            "{:<14}{:>6}{:>7}{}{:>6}{:>8}{:>6}{:>5}{:>7}{:>6}{:>5}{:>5}",
            when,
            self.procs,
            self.mounts,
            cg.concat(),
            self.runsc,
            self.run_dirs,
            self.state,
            self.tmp,
            self.leases_held,
            self.wasm_cache,
            self.fds,
            self.namespaces
        )
    }

    /// The fields that grew from `before`, by name.
    pub(crate) fn grown(&self, before: &Counts) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, now: usize, was: usize| {
            if now > was {
                out.push(format!("{name} {was} -> {now}"));
            }
        };
        check("processes", self.procs, before.procs);
        check("mounts", self.mounts, before.mounts);
        for (i, h) in HIERARCHIES.iter().enumerate() {
            let h = if h.is_empty() { "v2" } else { h };
            check(
                &format!("cgroups ({h})"),
                self.cgroups[i],
                before.cgroups[i],
            );
        }
        check("runsc containers", self.runsc, before.runsc);
        check("gVisor run directories", self.run_dirs, before.run_dirs);
        check("state files", self.state, before.state);
        check("temporary files", self.tmp, before.tmp);
        check("held id leases", self.leases_held, before.leases_held);
        check("wasm cache entries", self.wasm_cache, before.wasm_cache);
        check("open fds", self.fds, before.fds);
        check("namespaces", self.namespaces, before.namespaces);
        out
    }
}

/// Counts everything now.
pub(crate) fn count(places: &Places) -> Counts {
    let (run_dirs, state_roots) = run_dirs();
    Counts {
        procs: processes(places),
        mounts: lines("/proc/self/mountinfo"),
        cgroups: cgroups(),
        runsc: runsc_containers(places, &state_roots),
        run_dirs,
        state: state_files(),
        tmp: entries(&std::env::temp_dir())
            .filter(|n| n.starts_with("nucleus-") || n.starts_with("runsc"))
            .filter(|n| !is_rootless_runtime_dir(n))
            .count(),
        leases_held: held_leases(),
        wasm_cache: entries(&places.wasm_cache).count(),
        fds: entries(Path::new("/proc/self/fd")).count(),
        namespaces: namespaces(),
    }
}

/// Distinct namespaces that any process is in or holds an fd of.
fn namespaces() -> usize {
    let mut seen = std::collections::HashSet::new();
    for pid in entries(Path::new("/proc")).filter(|p| p.parse::<u32>().is_ok()) {
        let dir = Path::new("/proc").join(pid);
        for sub in ["ns", "fd"] {
            for name in entries(&dir.join(sub)) {
                if let Ok(link) = fs::read_link(dir.join(sub).join(name)) {
                    let link = link.to_string_lossy().into_owned();
                    // "net:[4026531840]"; files and sockets are not namespaces.
                    let is_ns = link.split_once(":[").is_some_and(|(kind, _)| {
                        ["net", "mnt", "pid", "user", "uts", "ipc", "cgroup", "time"]
                            .contains(&kind)
                    });
                    if is_ns {
                        seen.insert(link);
                    }
                }
            }
        }
    }
    seen.len()
}

fn entries(dir: &Path) -> impl Iterator<Item = String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

fn lines(path: &str) -> usize {
    fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// `nucleus-UID`: the runtime directory of a rootless caller.
fn is_rootless_runtime_dir(name: &str) -> bool {
    name.strip_prefix("nucleus-")
        .is_some_and(|uid| uid.parse::<u32>().is_ok())
}

/// Processes running the soak's binary, with the marker in their command
/// line, or named `runsc*` (runsc, its gofer and sandbox).
fn processes(places: &Places) -> usize {
    let me = std::process::id().to_string();
    entries(Path::new("/proc"))
        .filter(|p| p.parse::<u32>().is_ok() && *p != me)
        .filter(|p| {
            let dir = Path::new("/proc").join(p);
            let exe = fs::read_link(dir.join("exe")).ok();
            let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
            let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
            exe.as_deref() == Some(places.bin.as_path())
                || String::from_utf8_lossy(&cmdline).contains(&places.marker)
                || comm.starts_with("runsc")
                || exe
                    .is_some_and(|e| Some(e.to_string_lossy().as_ref()) == places.runsc.as_deref())
        })
        .count()
}

/// `nucleus-*` directories below our own cgroup, in each hierarchy.
fn cgroups() -> [usize; HIERARCHIES.len()] {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = [0; HIERARCHIES.len()];
    for (i, h) in HIERARCHIES.iter().enumerate() {
        let Some(path) = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let hit = if h.is_empty() {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == *h)
            };
            hit.then(|| path.to_owned())
        }) else {
            continue;
        };
        let mount = if h.is_empty() { "unified" } else { h };
        let dir = Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(path.trim_start_matches('/'));
        out[i] = nucleus_dirs(&dir);
    }
    out
}

fn nucleus_dirs(dir: &Path) -> usize {
    let Ok(read) = fs::read_dir(dir) else {
        return 0;
    };
    read.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let own = usize::from(e.file_name().to_string_lossy().starts_with("nucleus-"));
            own + nucleus_dirs(&e.path())
        })
        .sum()
}

/// The gVisor runtime directories nucleus uses: root's and rootless ones.
fn runtime_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/run/nucleus/gvisor")];
    let tmp = std::env::temp_dir();
    dirs.extend(
        entries(&tmp)
            .filter(|n| is_rootless_runtime_dir(n))
            .map(|n| tmp.join(n).join("gvisor")),
    );
    dirs
}

/// The run directories, and the runsc state roots inside them.
fn run_dirs() -> (usize, Vec<PathBuf>) {
    let mut count = 0;
    let mut roots = Vec::new();
    for dir in runtime_dirs() {
        for name in entries(&dir).filter(|n| n.starts_with("nucleus-")) {
            count += 1;
            roots.push(dir.join(name).join("state"));
        }
    }
    (count, roots)
}

/// Containers `runsc list` shows in the run directories' state roots and
/// in runsc's default roots.
fn runsc_containers(places: &Places, roots: &[PathBuf]) -> usize {
    let Some(runsc) = &places.runsc else {
        return 0;
    };
    let defaults = [PathBuf::from("/run/runsc"), PathBuf::from("/var/run/runsc")];
    roots
        .iter()
        .chain(defaults.iter())
        .filter(|r| r.is_dir())
        .map(|root| {
            std::process::Command::new(runsc)
                .arg("--root")
                .arg(root)
                .args(["list", "-quiet"])
                .stderr(std::process::Stdio::null())
                .output()
                .map_or(0, |o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .count()
                })
        })
        .sum()
}

/// Files in `/run/nucleus` but `ids/` and `gvisor/` (counted apart), and
/// in the rootless runtime directories but `gvisor/`.
fn state_files() -> usize {
    let tmp = std::env::temp_dir();
    let mut dirs = vec![PathBuf::from("/run/nucleus")];
    dirs.extend(
        entries(&tmp)
            .filter(|n| is_rootless_runtime_dir(n))
            .map(|n| tmp.join(n)),
    );
    dirs.iter()
        .map(|d| entries(d).filter(|n| n != "ids" && n != "gvisor").count())
        .sum::<usize>()
        + runtime_dirs()
            .iter()
            .map(|d| entries(d).filter(|n| !n.starts_with("nucleus-")).count())
            .sum::<usize>()
}

/// Lease files someone holds a lock on (a free one takes ours at once).
fn held_leases() -> usize {
    let dir = Path::new("/run/nucleus/ids");
    entries(dir)
        .filter(|name| {
            let Ok(file) = fs::File::open(dir.join(name)) else {
                return false;
            };
            // SAFETY: flock on an fd we own; it is released when `file` drops.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            rc != 0
        })
        .count()
}

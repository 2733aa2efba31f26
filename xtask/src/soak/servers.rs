//! `cargo xtask soak --server`: the same launches sent through two
//! `nucleus-run serve`, one of root and one of nobody (each workload to the
//! server of its user), the clients SIGKILLed at random moments instead of
//! the runners. Before each count, a session round on both servers: a
//! session made, commands run in it (some clients killed), one left running
//! in the background, the session removed; then a spare round: a server of
//! each user with `--spares 2` runs commands of one shape in the spares it
//! builds ahead (some clients killed) and is stopped, with exit 0 and no
//! process left below it. Besides the leak counts: every
//! server's worker (and session) is gone at each count, the servers' fds
//! and memory are flat, and a `SIGTERM` at the end stops both with exit 0
//! and leaves nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How much a server's resident memory may grow over the soak.
const RSS_TOLERANCE: f64 = 1.05;

pub(crate) struct Servers {
    root: Server,
    nobody: Server,
    /// (root, nobody) resident KiB and fd counts once warm ([`Self::mark`]).
    start: [(u64, usize); 2],
}

struct Server {
    child: Child,
    socket: PathBuf,
}

impl Servers {
    /// Starts both servers with sockets below `dir`; waits until they
    /// accept and their pools are full.
    pub(crate) fn start(bin: &Path, dir: &Path) -> Result<Servers, String> {
        let nobody_dir = dir.join("nobody");
        std::fs::create_dir_all(&nobody_dir).map_err(|e| format!("{e}"))?;
        std::os::unix::fs::chown(&nobody_dir, Some(65534), Some(65534))
            .map_err(|e| format!("chown: {e}"))?;
        let root = Server::spawn(
            super::runner_command(bin, false),
            dir.join("root.sock"),
            &[],
        )?;
        let nobody_cmd = super::runner_command(bin, true);
        let nobody = Server::spawn(nobody_cmd, nobody_dir.join("nobody.sock"), &[])?;
        std::thread::sleep(Duration::from_millis(300));
        let start = [root.usage(), nobody.usage()];
        Ok(Servers {
            root,
            nobody,
            start,
        })
    }

    /// The socket of the server that runs `nobody`'s workloads, or root's.
    pub(crate) fn socket(&self, nobody: bool) -> &Path {
        if nobody {
            &self.nobody.socket
        } else {
            &self.root.socket
        }
    }

    /// One session round on each server (see the module); the problems.
    pub(crate) fn session_round(&self, bin: &Path, round: usize, seed: u64) -> Vec<String> {
        let mut problems = Vec::new();
        for nobody in [false, true] {
            let name = format!("soak-{round}");
            let socket = self.socket(nobody);
            let session = |args: &[&str]| {
                let mut cmd = super::runner_command(bin, nobody);
                cmd.arg("session").args(args).arg("--server").arg(socket);
                cmd
            };
            let create = ["create", "--name", &name, "--trust-level", "trusted"];
            let mut steps: Vec<(Command, Option<Duration>, i32)> =
                vec![(session(&create), None, 0)];
            let mut rng = seed ^ round as u64;
            for i in 0..COMMANDS_PER_ROUND {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let kill = (rng >> 33).is_multiple_of(4);
                let script = format!("echo {i} >> /tmp/log; sleep 0.0{}", i % 10);
                let mut cmd = session(&["exec", &name]);
                cmd.args(["--", "sh", "-c", &script]);
                let delay = kill.then(|| Duration::from_micros((rng >> 40) % 20_000));
                steps.push((cmd, delay, 0));
            }
            let mut bg = session(&["exec", &name]);
            bg.args(["--", "sh", "-c", "sleep 1000 >/dev/null 2>&1 &"]);
            steps.push((bg, None, 0));
            steps.push((session(&["rm", &name]), None, 0));
            for (mut cmd, kill, want) in steps {
                if let Some(problem) = run_step(&mut cmd, kill, want) {
                    let who = if nobody { "nobody" } else { "root" };
                    problems.push(format!("session round {round} ({who}): {problem}"));
                    break;
                }
            }
        }
        problems
    }

    /// One spare round (see the module), its server's socket below `dir`;
    /// the problems.
    pub(crate) fn spare_round(bin: &Path, dir: &Path, round: usize, seed: u64) -> Vec<String> {
        let mut problems = Vec::new();
        for nobody in [false, true] {
            let who = if nobody { "nobody" } else { "root" };
            let base = if nobody {
                dir.join("nobody")
            } else {
                dir.to_owned()
            };
            let socket = base.join(format!("spares-{who}.sock"));
            let cmd = super::runner_command(bin, nobody);
            let server = match Server::spawn(cmd, socket, &["--spares", "2"]) {
                Ok(server) => server,
                Err(e) => {
                    problems.push(format!("spare round {round} ({who}): {e}"));
                    continue;
                }
            };
            let mut rng = seed ^ (round as u64).rotate_left(17);
            for i in 0..COMMANDS_PER_ROUND {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let kill = (rng >> 33).is_multiple_of(4);
                let mut cmd = super::runner_command(bin, nobody);
                cmd.arg("--server").arg(&server.socket);
                cmd.args(["--trust-level", "trusted", "--", "sh", "-c"]);
                cmd.arg(format!("echo {i}; sleep 0.0{}", i % 10));
                let delay = kill.then(|| Duration::from_micros((rng >> 40) % 20_000));
                if let Some(problem) = run_step(&mut cmd, delay, 0) {
                    problems.push(format!("spare round {round} ({who}): {problem}"));
                    break;
                }
            }
            let pid = server.child.id();
            if let Err(e) = server.stop() {
                problems.push(format!("spare round {round} ({who}): the server {e}"));
            }
            let left = descendants(pid);
            if left > 0 {
                problems.push(format!(
                    "spare round {round} ({who}): {left} process(es) outlived the server"
                ));
            }
        }
        problems
    }

    /// Takes the servers' memory and fds now as the start of the check.
    pub(crate) fn mark(&mut self) {
        self.start = [self.root.usage(), self.nobody.usage()];
    }

    /// Processes below the servers (workers and their sandboxes).
    pub(crate) fn descendants(&self) -> usize {
        descendants(self.root.child.id()) + descendants(self.nobody.child.id())
    }

    /// The servers' figures now against their start; the problems.
    pub(crate) fn report(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, (name, server)) in [("root", &self.root), ("nobody", &self.nobody)]
            .into_iter()
            .enumerate()
        {
            let (rss, fds) = server.usage();
            let (rss0, fds0) = self.start[i];
            println!("server of {name}: resident {rss0} -> {rss} KiB, fds {fds0} -> {fds}");
            if rss as f64 > rss0 as f64 * RSS_TOLERANCE {
                problems.push(format!(
                    "the {name} server's memory grew: {rss0} -> {rss} KiB"
                ));
            }
            if fds > fds0 {
                problems.push(format!("the {name} server's fds grew: {fds0} -> {fds}"));
            }
        }
        problems
    }

    /// `SIGTERM` to both; each must exit 0 within 30 s.
    pub(crate) fn stop(self) -> Vec<String> {
        [("root", self.root), ("nobody", self.nobody)]
            .into_iter()
            .filter_map(|(name, server)| {
                server
                    .stop()
                    .err()
                    .map(|e| format!("the {name} server: {e}"))
            })
            .collect()
    }
}

/// Commands run in each session round.
const COMMANDS_PER_ROUND: usize = 20;

/// Runs one step of a session round, killed after `kill` if given; the
/// problem when it was not killed and did not exit `want`.
fn run_step(cmd: &mut Command, kill: Option<Duration>, want: i32) -> Option<String> {
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .current_dir("/")
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Some(format!("spawn: {e}")),
    };
    if let Some(delay) = kill {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return Some(format!("wait: {e}")),
    };
    let killed = kill.is_some() && out.status.code().is_none();
    (!killed && out.status.code() != Some(want)).then(|| {
        format!(
            "{:?} exited {:?}: {}",
            cmd.get_args().collect::<Vec<_>>(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        )
    })
}

impl Server {
    fn spawn(mut cmd: Command, socket: PathBuf, extra: &[&str]) -> Result<Server, String> {
        let child = cmd
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .current_dir("/")
            .spawn()
            .map_err(|e| format!("nucleus-run serve: {e}"))?;
        let server = Server { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "no server on {} within 10 s",
                    server.socket.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(server)
    }

    /// Resident KiB and open fds of the server process.
    fn usage(&self) -> (u64, usize) {
        let dir = PathBuf::from(format!("/proc/{}", self.child.id()));
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir(dir.join("fd")).map_or(0, Iterator::count);
        (rss, fds)
    }

    fn stop(mut self) -> Result<(), String> {
        // SAFETY: kill has no memory effects; the pid is our unreaped child's.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("exited {status}")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("did not stop within 30 s of SIGTERM".to_owned());
                }
            }
        }
    }
}

/// How many processes are below `pid`.
fn descendants(pid: u32) -> usize {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        {
            parent_of.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.len() - 1
}

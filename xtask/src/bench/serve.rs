//! `nucleus-run serve` beside bare execution, bubblewrap and the one-shot
//! `nucleus-run`, in one run: per-launch latency (median, p99) of
//! `/bin/true`, interleaved, and the throughput of 2 concurrent clients for
//! 10 s each. A session's command (`session-exec`: it joins a sandbox kept
//! for it, so it is no new sandbox) is a row of its own, beside, not in,
//! the targets; so is the server without spares (each request's sandbox
//! built on demand) beside the one with `--spares 2`, whose figure the
//! targets read. The floor (fresh namespaces and an exec, no sandbox
//! set up in them) shows what no sandbox can beat on this machine. The
//! client here is its own small implementation of
//! `docs/PROTOCOL.md` (a frame with three fds, one reply frame), so the
//! figure is the server's, not a client library's.

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{bwrap_case, strings, Case};

/// The request every bench launch sends: the one-shot case's envelope.
const REQUEST: &[u8] =
    br#"{"version":1,"envelope":{"command":["/bin/true"],"trust_level":"trusted"}}"#;

/// A command of the bench's session.
const SESSION_EXEC: &[u8] =
    br#"{"version":1,"op":"session-exec","session":"bench","exec":{"command":["/bin/true"]}}"#;

/// The bench's session: the one-shot case's envelope, kept.
const SESSION_CREATE: &[u8] = br#"{"version":1,"op":"session-create","session":"bench","envelope":{"trust_level":"trusted"},"idle_timeout":"1h"}"#;

/// How long each throughput contender runs.
const THROUGHPUT_TIME: Duration = Duration::from_secs(10);

/// A server of the release build on a socket of its own, stopped on drop.
pub(super) struct Server {
    child: Child,
    dir: PathBuf,
    pub(super) socket: PathBuf,
}

impl Server {
    /// `nucleus serve` with `extra` flags, once it accepts; stopped when dropped.
    pub(super) fn start(nucleus: &str, tag: &str, extra: &[&str]) -> Result<Server, String> {
        let dir =
            std::env::temp_dir().join(format!("nucleus-bench-serve-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = dir.join("s.sock");
        let child = Command::new(nucleus)
            .args(["serve", "--socket"])
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{nucleus} serve: {e}"))?;
        let server = Server { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&server.socket).is_err() {
            if Instant::now() > deadline {
                return Err("nucleus-run serve did not listen within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let it fill its pool of network namespaces before timing.
        std::thread::sleep(Duration::from_millis(100));
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill has no memory effects; the pid is our child's.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One launch through the server: the request with /dev/null as stdio,
/// the reply read whole; fails unless the result says exit 0.
fn request(socket: &Path, body: &[u8], null: RawFd) -> Result<(), String> {
    let text = exchange(socket, body, null)?;
    if !text.contains(r#""exit_code":0,"#) {
        return Err(format!("the server's reply is not a success: {text}"));
    }
    Ok(())
}

/// Makes the bench's session.
fn create_session(socket: &Path, null: RawFd) -> Result<(), String> {
    let text = exchange(socket, SESSION_CREATE, null)?;
    if !text.contains(r#""session":"bench""#) {
        return Err(format!("the bench's session was not made: {text}"));
    }
    Ok(())
}

/// Sends `body` with /dev/null as stdio; returns the reply's text.
fn exchange(socket: &Path, body: &[u8], null: RawFd) -> Result<String, String> {
    let mut conn = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    send_with_fds(&conn, &frame, &[null, null, null])?;
    let mut header = [0u8; 4];
    conn.read_exact(&mut header)
        .map_err(|e| format!("reply: {e}"))?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    conn.read_exact(&mut body)
        .map_err(|e| format!("reply: {e}"))?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn send_with_fds(conn: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> Result<(), String> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr, pointed at live buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let payload = std::mem::size_of_val(fds) as u32;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic; three fds fit the 64-byte buffer.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
    // SAFETY: one header and the fds, written into the live control buffer.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), *fd);
        }
    }
    // SAFETY: sendmsg reads the buffers above.
    let n = unsafe { libc::sendmsg(conn.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n as usize != bytes.len() {
        return Err(format!("send: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What one contender does once: a process to spawn, a server request,
/// or the kernel's floor.
enum Launch<'a> {
    Spawn(&'a Case),
    Request(&'a Path, &'static [u8]),
    /// What no sandbox with fresh namespaces can undercut: a fork that
    /// unshares the namespaces `bwrap --unshare-all` (and nucleus) make,
    /// then a fork (into the new PID namespace) that executes `/bin/true`:
    /// no id map, mount, view, filter or policy at all.
    Floor,
}

/// The namespaces of the floor: user, mount, PID, network, IPC, UTS, cgroup.
const FLOOR_NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

/// One launch of the floor; stdout and stdin are `null`.
fn floor(null: RawFd) -> Result<(), String> {
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: the children only make async-signal-safe calls (unshare,
    // fork, dup2, execve, waitpid, _exit) on what was prepared above.
    let status = unsafe {
        match libc::fork() {
            -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                if libc::unshare(FLOOR_NAMESPACES) != 0 {
                    libc::_exit(120);
                }
                match libc::fork() {
                    -1 => libc::_exit(121),
                    0 => {
                        libc::dup2(null, 0);
                        libc::dup2(null, 1);
                        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(122)
                    }
                    pid => {
                        let mut status = 0;
                        libc::waitpid(pid, &mut status, 0);
                        libc::_exit(if status == 0 { 0 } else { 123 })
                    }
                }
            }
            pid => {
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                status
            }
        }
    };
    match status {
        0 => Ok(()),
        other => Err(format!("the floor failed (wait status {other})")),
    }
}

impl Launch<'_> {
    fn once(&self, null: RawFd) -> Result<(), String> {
        match self {
            Launch::Spawn(case) => {
                let status = Command::new(&case.argv[0])
                    .args(&case.argv[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("{}: {e}", case.name))?;
                if !status.success() {
                    return Err(format!("{} failed ({status})", case.name));
                }
                Ok(())
            }
            Launch::Request(socket, body) => request(socket, body, null),
            Launch::Floor => floor(null),
        }
    }
}

/// The section: latency table, then throughput.
pub(super) fn serve(nucleus: &str, runs: usize) -> Result<(), String> {
    let server = Server::start(nucleus, "cold", &[])?;
    // Its spares are built while the other cases run (interleaved).
    let spared = Server::start(nucleus, "spares", &["--spares", "2"])?;
    let socket = server.socket.display().to_string();
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let mut cases = vec![Case {
        reset: None,
        name: "bare /bin/true",
        argv: strings(&["/bin/true"]),
    }];
    let bwrap = bwrap_case();
    cases.extend(bwrap_case());
    cases.push(Case {
        reset: None,
        name: "nucleus-run (one-shot)",
        argv: strings(&[nucleus, "--trust-level", "trusted", "--", "/bin/true"]),
    });
    cases.push(Case {
        reset: None,
        name: "nucleus-run --server (CLI)",
        argv: strings(&[
            nucleus,
            "--server",
            &socket,
            "--trust-level",
            "trusted",
            "--",
            "/bin/true",
        ]),
    });
    let mut launches: Vec<(&str, Launch<'_>)> =
        cases.iter().map(|c| (c.name, Launch::Spawn(c))).collect();
    create_session(&server.socket, null.as_raw_fd())?;
    launches.push((
        "session exec (client lib)",
        Launch::Request(&server.socket, SESSION_EXEC),
    ));
    launches.push((
        "server request (client lib)",
        Launch::Request(&server.socket, REQUEST),
    ));
    launches.push(("floor: 7 namespaces + exec", Launch::Floor));
    launches.push((
        "server, --spares 2 (client lib)",
        Launch::Request(&spared.socket, REQUEST),
    ));
    let samples = latencies(&launches, runs, null.as_raw_fd())?;
    report_latency(&launches, &samples, runs);
    let last = launches.len() - 1;
    let mut contenders = vec![&launches[last]];
    if bwrap.is_some() {
        contenders.push(&launches[1]);
    }
    contenders.push(&launches[if bwrap.is_some() { 2 } else { 1 }]);
    contenders.extend([&launches[last - 2], &launches[last - 3]]);
    contenders.push(&launches[last - 1]);
    throughput(&contenders, null.as_raw_fd())
}

fn latencies(
    launches: &[(&str, Launch<'_>)],
    runs: usize,
    null: RawFd,
) -> Result<Vec<Vec<Duration>>, String> {
    let mut samples = vec![Vec::with_capacity(runs); launches.len()];
    for i in 0..runs + 5 {
        for (n, (_, launch)) in launches.iter().enumerate() {
            let start = Instant::now();
            launch.once(null)?;
            if i >= 5 {
                samples[n].push(start.elapsed());
            }
        }
    }
    for s in &mut samples {
        s.sort();
    }
    Ok(samples)
}

fn report_latency(launches: &[(&str, Launch<'_>)], samples: &[Vec<Duration>], runs: usize) {
    println!(
        "\nwarm launches: nucleus-run serve, {runs} runs each, interleaved (wall time per launch)"
    );
    let med = |n: usize| samples[n][samples[n].len() / 2].as_secs_f64();
    let p99 = |n: usize| {
        samples[n][(samples[n].len() * 99 / 100).min(samples[n].len() - 1)].as_secs_f64()
    };
    let bwrap = launches
        .iter()
        .position(|(name, _)| name.starts_with("bwrap"));
    println!(
        "{:<32} {:>10} {:>10} {:>9} {:>10} {:>10}",
        "case", "median", "p99", "p99/med", "x bare", "x bwrap"
    );
    for (n, (name, _)) in launches.iter().enumerate() {
        let vs_bwrap = bwrap.map_or("-".to_owned(), |b| format!("{:.2}", med(n) / med(b)));
        println!(
            "{:<32} {:>8.3}ms {:>8.3}ms {:>9.2} {:>10.2} {:>10}",
            name,
            med(n) * 1e3,
            p99(n) * 1e3,
            p99(n) / med(n),
            med(n) / med(0),
            vs_bwrap
        );
    }
    let last = launches.len() - 1;
    if let Some(b) = bwrap {
        let ratio = med(last) / med(b);
        println!(
            "target: server median <= 0.35x bwrap: {ratio:.2}x ({}); p99 <= 2x its median: {:.2}x ({})",
            verdict(ratio <= 0.35),
            p99(last) / med(last),
            verdict(p99(last) <= 2.0 * med(last))
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// Launches per second of each contender with 2 clients at once, for
/// [`THROUGHPUT_TIME`] each, one contender after the other.
fn throughput(contenders: &[&(&str, Launch<'_>)], null: RawFd) -> Result<(), String> {
    println!(
        "\nthroughput: 2 concurrent clients, {} s each",
        THROUGHPUT_TIME.as_secs()
    );
    let mut rates = Vec::new();
    for (name, launch) in contenders {
        let done = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while start.elapsed() < THROUGHPUT_TIME {
                        match launch.once(null) {
                            Ok(()) => {
                                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => {
                                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let rate = done.into_inner() as f64 / start.elapsed().as_secs_f64();
        println!("{name:<32} {rate:>8.0} launches/s");
        rates.push((*name, rate));
    }
    if let (Some((_, server)), Some((_, bwrap))) = (
        rates.first(),
        rates.iter().find(|(n, _)| n.starts_with("bwrap")),
    ) {
        let ratio = server / bwrap;
        println!(
            "target: server throughput >= 3x bwrap: {ratio:.2}x ({})",
            verdict(ratio >= 3.0)
        );
        if let Some((_, floor)) = rates.iter().find(|(n, _)| n.starts_with("floor")) {
            println!(
                "the kernel's floor (fresh namespaces and an exec, nothing else): {:.2}x bwrap",
                floor / bwrap
            );
        }
    }
    Ok(())
}

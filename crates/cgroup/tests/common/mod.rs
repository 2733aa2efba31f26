//! Helpers shared by the cgroup tests: gates, forked workloads held until
//! they are in the cgroup, and the tests' own `unsafe` (the skip gate, the
//! fork and the wait are `nucleus-test-support`'s).
#![allow(dead_code)]

use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nucleus_cgroup::{Cgroup, CgroupConfig, CgroupError, LimitMode, Limits};
use nucleus_test_support::{fork, skip, wait};

pub use nucleus_test_support::Exit;

/// Prints `NOT APPLICABLE <test>: <why>` for a test whose subject this
/// machine does not have at all (a cgroup v2 hierarchy with controllers on a
/// v1/hybrid machine). Unlike [`skip`], this passes under
/// `NUCLEUS_TEST_STRICT=1`: the machine is not missing a test prerequisite,
/// it has a different cgroup layout, and the same code paths are covered by
/// the fake-cgroupfs unit tests. Set `NUCLEUS_TEST_REQUIRE_V2=1` on machines
/// that must have v2 controllers to turn it into a failure.
pub fn not_applicable(test: &str, why: &str) {
    println!("NOT APPLICABLE {test}: {why}");
    if std::env::var("NUCLEUS_TEST_REQUIRE_V2").as_deref() == Ok("1") {
        panic!("NOT APPLICABLE {test}: {why} (NUCLEUS_TEST_REQUIRE_V2=1)");
    }
}

/// True when running as root; otherwise prints SKIPPED.
pub fn require_root(test: &str) -> bool {
    nucleus_test_support::require_root(test, "needs root to create cgroups")
}

/// A config whose directory names are unique to this test and process, so
/// leftovers can be found without touching anything else.
/// `NUCLEUS_TEST_CGROUP_PARENT` overrides where to create (a delegated v2
/// subtree on machines where the test's own cgroup cannot have children with
/// controllers).
pub fn config(test: &str, mode: LimitMode) -> CgroupConfig {
    CgroupConfig {
        name_prefix: format!("nucleus-test-{}-", test.replace('_', "-")),
        mode,
        root: std::env::var_os("NUCLEUS_TEST_CGROUP_PARENT").map(PathBuf::from),
        ..CgroupConfig::default()
    }
}

/// Creates the cgroup, or prints SKIPPED when this machine cannot give the
/// limits (not root, controller missing or not delegated).
pub fn create_or_skip(test: &str, limits: &Limits, cfg: &CgroupConfig) -> Option<Cgroup> {
    if !require_root(test) {
        return None;
    }
    match Cgroup::create(limits, cfg) {
        Ok(cg) => Some(cg),
        Err(e @ CgroupError::LimitNotApplied { .. }) => {
            skip(
                test,
                &format!("{e} (set NUCLEUS_TEST_CGROUP_PARENT to a delegated cgroup)"),
            );
            None
        }
        Err(e) => panic!("{test}: create failed: {e}"),
    }
}

/// Directories under every place we may create whose name starts with the
/// test's prefix and our pid: what a test left behind.
pub fn leftovers(cfg: &CgroupConfig) -> Vec<PathBuf> {
    let probe = nucleus_cgroup::probe_with(cfg);
    let mine = format!("{}{}-", cfg.name_prefix, std::process::id());
    let mut out = Vec::new();
    for place in probe.places {
        for e in std::fs::read_dir(&place.parent)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&mine) {
                out.push(e.path());
            }
        }
    }
    out
}

/// A forked child held at a pipe until [`Held::release`], so the parent can
/// put it in the cgroup before the workload starts.
pub struct Held {
    pub pid: i32,
    go: i32,
    out: i32,
}

/// Forks a child that waits for the parent's go, then runs `work(out_fd)`
/// and `_exit`s with its return value. `work` must use only
/// async-signal-safe calls (the test process has other threads): raw
/// syscalls, no allocation, no locks.
pub fn spawn_held(work: fn(out: i32) -> i32) -> Held {
    let go = pipe();
    let out = pipe();
    // The child only calls async-signal-safe functions (read, close, the
    // syscall-only `work`, _exit) and never returns into Rust code of the
    // parent.
    let pid = fork();
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain syscalls on fds we own; _exit never returns.
        unsafe {
            libc::close(go[1]);
            libc::close(out[0]);
            let mut b = 0u8;
            if libc::read(go[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(100);
            }
            libc::close(go[0]);
            libc::_exit(work(out[1]));
        }
    }
    close(go[0]);
    close(out[1]);
    Held {
        pid,
        go: go[1],
        out: out[0],
    }
}

impl Held {
    /// Lets the workload start.
    pub fn release(&mut self) {
        let b = 1u8;
        // SAFETY: writes one byte from a valid buffer to our pipe end.
        let n = unsafe { libc::write(self.go, (&b as *const u8).cast(), 1) };
        assert_eq!(n, 1);
        close(self.go);
        self.go = -1;
    }

    /// Reads `n` native-endian i32 values the workload wrote.
    pub fn read_i32s(&self, n: usize) -> Vec<i32> {
        let mut buf = vec![0u8; n * 4];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: reads into the unfilled tail of buf.
            let r =
                unsafe { libc::read(self.out, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
            assert!(r > 0, "workload pipe closed after {got} bytes");
            got += r as usize;
        }
        buf.chunks(4)
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Waits for the child.
    pub fn wait(self) -> Exit {
        let exit = wait(self.pid);
        close(self.out);
        exit
    }
}

/// A close-on-exec pipe as raw fds, which the forked workload closes with
/// plain syscalls.
fn pipe() -> [i32; 2] {
    let (read_end, write_end) = nucleus_test_support::pipe();
    [read_end.into_raw_fd(), write_end.into_raw_fd()]
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closes an fd this helper owns.
        unsafe { libc::close(fd) };
    }
}

/// Writes one i32 to `fd` (async-signal-safe).
pub fn write_i32(fd: i32, v: i32) {
    let b = v.to_ne_bytes();
    // SAFETY: writes 4 bytes from a valid buffer.
    unsafe { libc::write(fd, b.as_ptr().cast(), 4) };
}

/// `errno` of the last failed call (async-signal-safe).
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Raw syscall wrappers for workloads (async-signal-safe).
pub mod raw {
    /// fork(2).
    pub fn fork() -> i32 {
        // SAFETY: called from a single-threaded forked child; the new child
        // only runs syscall-only code.
        unsafe { libc::fork() }
    }
    /// setsid(2).
    pub fn setsid() -> i32 {
        // SAFETY: no memory effects.
        unsafe { libc::setsid() }
    }
    /// getpid(2).
    pub fn getpid() -> i32 {
        // SAFETY: no memory effects.
        unsafe { libc::getpid() }
    }
    /// Sleeps forever (until killed).
    pub fn pause_forever() -> ! {
        loop {
            // SAFETY: no memory effects.
            unsafe { libc::pause() };
        }
    }
    /// _exit(2).
    pub fn exit(code: i32) -> ! {
        // SAFETY: ends the process without running Rust destructors.
        unsafe { libc::_exit(code) }
    }
    /// Monotonic clock in nanoseconds.
    pub fn now_ns() -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }
    /// Maps `len` bytes of anonymous memory and writes to every page.
    /// Returns normally only if the whole range could be touched.
    pub fn touch_anon(len: usize) -> bool {
        // SAFETY: a fresh private anonymous mapping, no existing memory is
        // affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        let base = p.cast::<u8>();
        let mut off = 0;
        while off < len {
            // SAFETY: off < len, inside the mapping made above.
            unsafe { base.add(off).write_volatile(1) };
            off += 4096;
        }
        true
    }
    /// open("/dev/null", O_RDONLY), returning the fd or -1.
    pub fn open_devnull() -> i32 {
        // SAFETY: a static NUL-terminated path.
        unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) }
    }
    /// getrlimit as (soft, hard).
    pub fn getrlimit(res: u32) -> (u64, u64) {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid out pointer.
        unsafe { libc::getrlimit(res as _, &mut rl) };
        (rl.rlim_cur, rl.rlim_max)
    }
}

/// True when `pid` is gone or a zombie (dead, not yet reaped by whoever
/// inherited it).
pub fn is_dead(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } != 0 && errno() == libc::ESRCH {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// Polls `f` until true or `limit`.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pids listed in a cgroup directory.
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

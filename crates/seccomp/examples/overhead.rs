//! Measure the per-syscall cost of the default agent profile: 10M `getppid` and 200k
//! `open`/`close`, bare and under the filter, each in a forked child.
//!
//! `cargo run --release -p nucleus-seccomp --example overhead`

use std::time::{Duration, Instant};

use nucleus_seccomp::{CompiledFilter, Profile};

fn getppid_loop() {
    for _ in 0..10_000_000 {
        // SAFETY: no arguments.
        unsafe { libc::getppid() };
    }
}

fn open_close_loop() {
    for _ in 0..200_000 {
        // SAFETY: a NUL-terminated path; the fd is closed right away.
        unsafe {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            libc::close(fd);
        }
    }
}

/// Time `work` in a forked child, with `filter` applied first when given.
fn timed(filter: Option<&CompiledFilter>, work: fn()) -> Duration {
    let mut fds = [0; 2];
    // SAFETY: a live array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only runs `work` and writes to the pipe, then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Some(f) = filter {
            // SAFETY: plain integers.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            f.apply().expect("apply");
        }
        let start = Instant::now();
        work();
        let nanos = start.elapsed().as_nanos() as u64;
        // SAFETY: writes 8 bytes from a live local, then leaves.
        unsafe {
            libc::write(fds[1], (&nanos as *const u64).cast(), 8);
            libc::_exit(0);
        }
    }
    let mut nanos = 0u64;
    // SAFETY: reads 8 bytes into a live local; waits for our child.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], (&mut nanos as *mut u64).cast(), 8);
        libc::close(fds[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    Duration::from_nanos(nanos)
}

fn main() {
    let filter = Profile::default_agent().compile().expect("compile");
    // The floor: a filter that allows everything (any filter moves syscalls to the kernel's
    // slower entry path, cached or not).
    let allow_all = Profile {
        default_action: nucleus_seccomp::Action::Allow,
        architectures: Vec::new(),
        rules: Vec::new(),
        unknown_syscalls: nucleus_seccomp::UnknownSyscalls::Error,
        log_denied: false,
    }
    .compile()
    .expect("compile");
    println!(
        "default agent profile: {} instructions",
        filter.instructions()
    );
    for (name, work) in [
        ("getppid x10M", getppid_loop as fn()),
        ("open+close x200k", open_close_loop),
    ] {
        let best =
            |f: Option<&CompiledFilter>| (0..5).map(|_| timed(f, work)).min().unwrap_or_default();
        let bare = best(None);
        let filtered = best(Some(&filter));
        let floor = best(Some(&allow_all));
        let ratio = |d: Duration| d.as_secs_f64() / bare.as_secs_f64();
        println!(
            "{name}: bare {bare:?}; default agent {filtered:?} ({:.3}x); allow-all filter {floor:?} ({:.3}x)",
            ratio(filtered),
            ratio(floor)
        );
    }
}

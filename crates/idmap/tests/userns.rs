//! Real user namespaces: a forked child unshares its user namespace, the
//! test process (its parent) writes the maps, and the child checks its ids.

use nucleus_idmap::{
    Caller, IdMapPolicy, IdmapError, MapWriter, ResolvedMaps, SubIdPaths, UsernsMode,
};
use nucleus_test_support::skip;

/// Raw calls for the tests, each with its safety argument.
mod sys {
    use std::io;

    pub fn fork() -> i32 {
        // SAFETY: the child only runs plain syscalls and Rust code that does
        // not rely on other threads (glibc makes malloc usable after fork),
        // then leaves with `_exit`.
        unsafe { libc::fork() }
    }

    pub fn exit(code: i32) -> ! {
        // SAFETY: `_exit` ends the process without running the parent's
        // atexit handlers or unwinding into the test harness.
        unsafe { libc::_exit(code) }
    }

    pub fn waitpid(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: `status` is a live, writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid, "waitpid: {}", io::Error::last_os_error());
        status
    }

    pub fn pipe() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
        (fds[0], fds[1])
    }

    pub fn close(fd: i32) {
        // SAFETY: closes a descriptor this test created and owns.
        unsafe { libc::close(fd) };
    }

    pub fn write_all(fd: i32, data: &[u8]) {
        // SAFETY: the pointer and length describe a live byte slice.
        unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    }

    /// Reads one byte; `None` at end of file.
    pub fn read_byte(fd: i32) -> Option<u8> {
        let mut b = 0u8;
        // SAFETY: `b` is a live, writable byte.
        let n = unsafe { libc::read(fd, (&raw mut b).cast(), 1) };
        (n == 1).then_some(b)
    }

    /// Reads until end of file.
    pub fn read_to_end(fd: i32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            // SAFETY: `buf` is a live, writable buffer of this length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    pub fn check(ret: libc::c_int, what: &str) -> Result<(), String> {
        if ret < 0 {
            Err(format!("{what}: {}", io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }

    pub fn unshare_user() -> Result<(), String> {
        // SAFETY: unshare(2) with a flag value; the forked child is single-threaded.
        check(unsafe { libc::unshare(libc::CLONE_NEWUSER) }, "unshare")
    }

    pub fn become_ids(uid: u32, gid: u32, clear_groups: bool) -> Result<(), String> {
        if clear_groups {
            // SAFETY: an empty group list; the null pointer is not read.
            check(unsafe { libc::setgroups(0, std::ptr::null()) }, "setgroups")?;
        }
        // SAFETY: plain id-changing syscalls.
        check(unsafe { libc::setresgid(gid, gid, gid) }, "setresgid")?;
        // SAFETY: as above.
        check(unsafe { libc::setresuid(uid, uid, uid) }, "setresuid")
    }

    pub fn set_dumpable() -> Result<(), String> {
        // SAFETY: prctl with integer arguments only.
        check(
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) },
            "dumpable",
        )
    }

    pub fn ids() -> (u32, u32) {
        // SAFETY: getuid/getgid cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }
}

/// Held by every test that forks: a child forked by one test would inherit
/// the pipes of another and keep them open, so tests fork one at a time.
static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body` in a forked child; its `Err` (or panic) fails the test.
fn in_child(body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (rd, wr) = sys::pipe();
    let pid = sys::fork();
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        sys::close(rd);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
            .unwrap_or_else(|_| Err("child panicked".into()));
        if let Err(msg) = result {
            sys::write_all(wr, msg.as_bytes());
            sys::exit(1);
        }
        sys::exit(0);
    }
    sys::close(wr);
    let msg = sys::read_to_end(rd);
    sys::close(rd);
    let status = sys::waitpid(pid);
    if status == 0 {
        Ok(())
    } else {
        Err(format!(
            "child status {status:#x}: {}",
            String::from_utf8_lossy(&msg)
        ))
    }
}

/// Forks a child that unshares its user namespace and waits; writes `maps`
/// for it; the child switches to the default ids and runs `check`.
fn with_userns_child(
    maps: &ResolvedMaps,
    check: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let (ready_rd, ready_wr) = sys::pipe();
    let (go_rd, go_wr) = sys::pipe();
    let (uid, gid, clear) = (maps.default_uid, maps.default_gid, !maps.deny_setgroups);
    let (err_rd, err_wr) = sys::pipe();
    let pid = sys::fork();
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        for fd in [ready_rd, go_wr, err_rd] {
            sys::close(fd);
        }
        let result = sys::unshare_user()
            .map(|()| sys::write_all(ready_wr, b"r"))
            .and_then(|()| match sys::read_byte(go_rd) {
                Some(b'g') => Ok(()),
                _ => Err("the parent did not release the child".into()),
            })
            .and_then(|()| sys::become_ids(uid, gid, clear))
            .and_then(|()| check());
        if let Err(msg) = result {
            sys::write_all(err_wr, msg.as_bytes());
            sys::exit(1);
        }
        sys::exit(0);
    }
    for fd in [ready_wr, go_rd, err_wr] {
        sys::close(fd);
    }
    let written = if sys::read_byte(ready_rd) == Some(b'r') {
        maps.write(pid).map_err(|e| error_chain(&e))
    } else {
        Err("the child did not get ready".into())
    };
    if written.is_ok() {
        sys::write_all(go_wr, b"g");
    }
    sys::close(go_wr);
    let msg = sys::read_to_end(err_rd);
    let status = sys::waitpid(pid);
    sys::close(ready_rd);
    sys::close(err_rd);
    written?;
    if status == 0 {
        Ok(())
    } else {
        Err(format!(
            "userns child status {status:#x}: {}",
            String::from_utf8_lossy(&msg)
        ))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

/// The lines of a /proc map file as number triples.
fn read_map(path: &str) -> Result<Vec<[u32; 3]>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .map(|line| {
            let v: Vec<u32> = line
                .split_whitespace()
                .map(|n| n.parse().map_err(|_| format!("{path}: bad line {line:?}")))
                .collect::<Result<_, _>>()?;
            <[u32; 3]>::try_from(v).map_err(|_| format!("{path}: bad line {line:?}"))
        })
        .collect()
}

fn expect_inside(
    uid_map: &[[u32; 3]],
    gid_map: &[[u32; 3]],
    setgroups: &str,
) -> Result<(), String> {
    let (uid, gid) = sys::ids();
    if (uid, gid) != (0, 0) {
        return Err(format!("inside ids are {uid}:{gid}, expected 0:0"));
    }
    let got_uid = read_map("/proc/self/uid_map")?;
    let got_gid = read_map("/proc/self/gid_map")?;
    if got_uid != uid_map || got_gid != gid_map {
        return Err(format!("maps are {got_uid:?} / {got_gid:?}"));
    }
    let sg = std::fs::read_to_string("/proc/self/setgroups").map_err(|e| e.to_string())?;
    if sg.trim() != setgroups {
        return Err(format!("setgroups is {sg:?}, expected {setgroups}"));
    }
    Ok(())
}

fn is_root() -> bool {
    sys::ids().0 == 0
}

fn resolve(mode: UsernsMode, caller: &Caller) -> ResolvedMaps {
    let paths = SubIdPaths::new("/nonexistent/subuid", "/nonexistent/subgid");
    IdMapPolicy {
        mode,
        ..Default::default()
    }
    .resolve(caller, &paths)
    .expect("the policy resolves")
    .expect("a user namespace")
}

#[test]
fn root_remapped_maps_root_to_default_range() {
    if !is_root() {
        return skip("root_remapped_maps_root_to_default_range", "needs root");
    }
    let _fork = fork_lock();
    let maps = resolve(UsernsMode::RootRemapped, &Caller::new(0, 0, None));
    assert_eq!(maps.writer, MapWriter::Direct);
    with_userns_child(&maps, || {
        expect_inside(&[[0, 100000, 65536]], &[[0, 100000, 65536]], "allow")
    })
    .unwrap();
}

#[test]
fn rootless_style_maps_written_by_root() {
    if !is_root() {
        return skip("rootless_style_maps_written_by_root", "needs root");
    }
    let _fork = fork_lock();
    let maps = resolve(UsernsMode::Rootless, &Caller::new(65534, 65534, None));
    with_userns_child(&maps, || {
        expect_inside(&[[0, 65534, 1]], &[[0, 65534, 1]], "deny")
    })
    .unwrap();
}

#[test]
fn rootless_as_unprivileged_caller() {
    if !nucleus_idmap::probe().unprivileged_userns {
        return skip(
            "rootless_as_unprivileged_caller",
            "unprivileged user namespaces are disabled",
        );
    }
    let _fork = fork_lock();
    in_child(|| {
        if is_root() {
            // Become nobody, and stay dumpable so /proc/PID files of our
            // own child remain ours to write.
            sys::become_ids(65534, 65534, true)?;
            sys::set_dumpable()?;
        }
        let (uid, gid) = sys::ids();
        let maps = resolve(UsernsMode::Rootless, &Caller::new(uid, gid, None));
        assert_eq!(maps.writer, MapWriter::Direct);
        with_userns_child(&maps, || {
            expect_inside(&[[0, uid, 1]], &[[0, gid, 1]], "deny")
        })
    })
    .unwrap();
}

#[test]
fn unprivileged_caller_cannot_map_other_ids_directly() {
    if !is_root() {
        return skip(
            "unprivileged_caller_cannot_map_other_ids_directly",
            "needs root to become nobody",
        );
    }
    if !nucleus_idmap::probe().unprivileged_userns {
        return skip(
            "unprivileged_caller_cannot_map_other_ids_directly",
            "no unprivileged user namespaces",
        );
    }
    let _fork = fork_lock();
    in_child(|| {
        sys::become_ids(65534, 65534, true)?;
        sys::set_dumpable()?;
        // Force the direct writer on a range nobody does not own: the kernel says EPERM.
        let mut maps = resolve(UsernsMode::RootRemapped, &Caller::new(0, 0, None));
        maps.deny_setgroups = true;
        match with_userns_child(&maps, || Ok(())) {
            Err(msg) if msg.contains("uid_map") && msg.contains("Operation not permitted") => {
                Ok(())
            }
            other => Err(format!("expected EPERM on uid_map, got {other:?}")),
        }
    })
    .unwrap();
}

#[test]
fn real_newuidmap_failure_carries_its_stderr() {
    let Ok(MapWriter::NewIdMap {
        newuidmap,
        newgidmap,
    }) = MapWriter::find_helpers()
    else {
        return skip(
            "real_newuidmap_failure_carries_its_stderr",
            "newuidmap/newgidmap not installed",
        );
    };
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if !subuid.trim().is_empty() {
        return skip(
            "real_newuidmap_failure_carries_its_stderr",
            "/etc/subuid has entries",
        );
    }
    let mut maps = resolve(UsernsMode::RootRemapped, &Caller::new(0, 0, None));
    maps.writer = MapWriter::NewIdMap {
        newuidmap,
        newgidmap,
    };
    // No such process (pids stop at 2^22): the helper refuses and says why.
    let _fork = fork_lock();
    match maps.write(i32::MAX) {
        Err(IdmapError::HelperFailed { stderr, .. }) => assert!(!stderr.is_empty()),
        other => panic!("expected HelperFailed, got {other:?}"),
    }
}

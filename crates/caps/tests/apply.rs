//! Applying capability policies for real, each in a forked child: the test
//! process itself never changes.

use nucleus_caps::{
    check_no_namespace_caps, read_state, CapSet, Capability, CapsError, CapsPolicy, SetName,
};
use nucleus_test_support::{is_root, skip};
use std::ffi::CString;

/// Raw calls for the tests, each with its safety argument.
mod sys {
    use std::ffi::CString;
    use std::io;

    pub fn fork() -> i32 {
        // SAFETY: the child only runs plain syscalls and Rust code that does
        // not rely on other threads (glibc makes malloc usable after fork),
        // then leaves with `_exit` or `execve`.
        unsafe { libc::fork() }
    }

    pub fn exit(code: i32) -> ! {
        // SAFETY: `_exit` ends the process without unwinding into the harness.
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

    fn errno_of(ret: libc::c_int) -> Result<(), i32> {
        if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(())
        }
    }

    pub fn chown(path: &CString, uid: u32) -> Result<(), i32> {
        // SAFETY: `path` is a live NUL-terminated string.
        errno_of(unsafe { libc::chown(path.as_ptr(), uid, uid) })
    }

    /// Binds a TCP socket to 127.0.0.1:`port`.
    pub fn bind_loopback(port: u16) -> Result<(), i32> {
        // SAFETY: plain socket(2) call; closed below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        errno_of(fd)?;
        // SAFETY: sockaddr_in is plain old data; all-zero is valid.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `addr` is a live sockaddr_in of `len` bytes.
        let r = errno_of(unsafe { libc::bind(fd, (&raw const addr).cast(), len) });
        close(fd);
        r
    }

    pub fn become_user(id: u32) -> Result<(), String> {
        let check = |r: libc::c_int, what: &str| {
            errno_of(r).map_err(|e| format!("{what}: {}", io::Error::from_raw_os_error(e)))
        };
        // SAFETY: an empty group list; the null pointer is not read.
        check(unsafe { libc::setgroups(0, std::ptr::null()) }, "setgroups")?;
        // SAFETY: plain id-changing syscalls.
        check(unsafe { libc::setresgid(id, id, id) }, "setresgid")?;
        // SAFETY: as above.
        check(unsafe { libc::setresuid(id, id, id) }, "setresuid")
    }

    pub fn unshare(flags: libc::c_int) -> Result<(), i32> {
        // SAFETY: unshare(2) with flag values; the forked child is single-threaded.
        errno_of(unsafe { libc::unshare(flags) })
    }

    /// Points stdout at `fd` and executes `argv[0]`; returns only on failure.
    pub fn exec_with_stdout(fd: i32, argv: &[CString]) -> String {
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let env: [*const libc::c_char; 1] = [std::ptr::null()];
        // SAFETY: dup2 on descriptors this child owns.
        unsafe { libc::dup2(fd, 1) };
        // SAFETY: `ptrs` and `env` are NUL-terminated arrays of live C strings.
        unsafe { libc::execve(ptrs[0], ptrs.as_ptr(), env.as_ptr()) };
        format!("execve: {}", io::Error::last_os_error())
    }
}

/// Whether the test process holds what these tests drop and keep.
fn has_root_caps(test: &str) -> bool {
    let needed: CapSet = [
        Capability::Setpcap,
        Capability::Chown,
        Capability::NetBindService,
        Capability::Setuid,
        Capability::Setgid,
        Capability::SysAdmin,
    ]
    .into_iter()
    .collect();
    let state = read_state().expect("read_state");
    let ok = is_root() && needed.is_subset(state.effective) && needed.is_subset(state.bounding);
    if !ok {
        skip(test, "needs root with CAP_SETPCAP, CAP_CHOWN, CAP_NET_BIND_SERVICE, CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN");
    }
    ok
}

/// Held by every test that forks, so one test's child never inherits (and
/// holds open) another test's pipes.
static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` in a forked child; its `Err` (or panic) fails the test.
fn in_child(body: impl FnOnce() -> Result<(), String>) {
    let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
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
    assert_eq!(status, 0, "child failed: {}", String::from_utf8_lossy(&msg));
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn chain(e: &CapsError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(src) = cur {
        s = format!("{s}: {src}");
        cur = src.source();
    }
    s
}

/// A file owned by root for the chown probe.
fn temp_file(tag: &str) -> (std::path::PathBuf, CString) {
    let path = std::env::temp_dir().join(format!("nucleus-caps-{tag}-{}", std::process::id()));
    std::fs::write(&path, "").expect("temp file");
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    (path, c)
}

/// The first privileged loopback port that is not in use: Ok, or the errno.
fn bind_privileged_port() -> Result<(), i32> {
    for port in (600..1000).rev() {
        match sys::bind_loopback(port) {
            Err(libc::EADDRINUSE) => continue,
            other => return other,
        }
    }
    Err(libc::EADDRINUSE)
}

#[test]
fn drop_all_empties_every_set() {
    if !has_root_caps("drop_all_empties_every_set") {
        return;
    }
    let compiled = CapsPolicy::default().compile().expect("compile");
    let (path, cpath) = temp_file("dropall");
    in_child(|| {
        let report = compiled.apply(true).map_err(|e| chain(&e))?;
        let state = read_state().map_err(|e| chain(&e))?;
        for set in [
            SetName::Effective,
            SetName::Permitted,
            SetName::Inheritable,
            SetName::Bounding,
            SetName::Ambient,
        ] {
            expect_eq(&format!("{set} set"), state.get(set), CapSet::EMPTY)?;
        }
        expect_eq(
            "report",
            report.bounding.union(report.permitted),
            CapSet::EMPTY,
        )?;
        check_no_namespace_caps(&state).map_err(|e| chain(&e))?;
        // Still uid 0, but without CAP_CHOWN / CAP_NET_BIND_SERVICE.
        expect_eq("chown", sys::chown(&cpath, 1), Err(libc::EPERM))?;
        expect_eq("bind", bind_privileged_port(), Err(libc::EACCES))
    });
    std::fs::remove_file(path).expect("cleanup");
}

#[test]
fn keep_net_bind_service_only() {
    if !has_root_caps("keep_net_bind_service_only") {
        return;
    }
    let compiled = CapsPolicy::from_toml_str(r#"keep = ["CAP_NET_BIND_SERVICE"]"#)
        .and_then(|p| p.compile())
        .expect("compile");
    let (path, cpath) = temp_file("keepnbs");
    in_child(|| {
        let report = compiled.apply(true).map_err(|e| chain(&e))?;
        let nbs: CapSet = [Capability::NetBindService].into_iter().collect();
        let state = read_state().map_err(|e| chain(&e))?;
        for set in [
            SetName::Effective,
            SetName::Permitted,
            SetName::Inheritable,
            SetName::Bounding,
        ] {
            expect_eq(&format!("{set} set"), state.get(set), nbs)?;
        }
        expect_eq("ambient (root workload)", state.ambient, CapSet::EMPTY)?;
        expect_eq("report.kept", report.kept, nbs)?;
        expect_eq("report.effective", report.effective, nbs)?;
        expect_eq("chown", sys::chown(&cpath, 1), Err(libc::EPERM))?;
        expect_eq("bind", bind_privileged_port(), Ok(()))
    });
    std::fs::remove_file(path).expect("cleanup");
}

#[test]
fn non_root_workload_keeps_cap_across_execve() {
    if !has_root_caps("non_root_workload_keeps_cap_across_execve") {
        return;
    }
    let Some(grep) = ["/usr/bin/grep", "/bin/grep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return skip("non_root_workload_keeps_cap_across_execve", "no grep");
    };
    let compiled = CapsPolicy::keep([Capability::NetBindService])
        .compile()
        .expect("compile");
    let argv: Vec<CString> = [grep, "^Cap", "/proc/self/status"]
        .into_iter()
        .map(|a| CString::new(a).expect("no NUL"))
        .collect();
    let (out_rd, out_wr) = sys::pipe();
    in_child(|| {
        sys::close(out_rd);
        nucleus_caps::set_keepcaps(true).map_err(|e| chain(&e))?;
        sys::become_user(65534)?;
        let report = compiled.apply(false).map_err(|e| chain(&e))?;
        expect_eq("ambient", report.ambient, compiled.keep())?;
        nucleus_caps::set_no_new_privs().map_err(|e| chain(&e))?;
        Err(sys::exec_with_stdout(out_wr, &argv))
    });
    sys::close(out_wr);
    let out = String::from_utf8(sys::read_to_end(out_rd)).expect("utf-8");
    sys::close(out_rd);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = format!("{set}:\t0000000000000400");
        assert!(out.lines().any(|l| l == line), "{line:?} not in {out}");
    }
}

#[test]
fn non_root_workload_without_keepcaps_cannot_drop_bounding() {
    if !has_root_caps("non_root_workload_without_keepcaps_cannot_drop_bounding") {
        return;
    }
    let compiled = CapsPolicy::default().compile().expect("compile");
    in_child(|| {
        sys::become_user(65534)?;
        match compiled.apply(false) {
            Err(e @ CapsError::DropBounding { cap: 0, .. }) => {
                expect_eq("errno", e.raw_os_error(), Some(libc::EPERM))
            }
            other => Err(format!("expected DropBounding EPERM, got {other:?}")),
        }
    });
}

#[test]
fn non_root_workload_drops_everything_with_keepcaps() {
    if !has_root_caps("non_root_workload_drops_everything_with_keepcaps") {
        return;
    }
    let compiled = CapsPolicy::default().compile().expect("compile");
    in_child(|| {
        nucleus_caps::set_keepcaps(true).map_err(|e| chain(&e))?;
        sys::become_user(65534)?;
        compiled.apply(false).map_err(|e| chain(&e))?;
        let state = read_state().map_err(|e| chain(&e))?;
        for set in [
            SetName::Effective,
            SetName::Permitted,
            SetName::Inheritable,
            SetName::Bounding,
            SetName::Ambient,
        ] {
            expect_eq(&format!("{set} set"), state.get(set), CapSet::EMPTY)?;
        }
        // SAFETY: prctl with integer arguments only.
        let keepcaps = unsafe { libc::prctl(libc::PR_GET_KEEPCAPS, 0, 0, 0, 0) };
        expect_eq("keepcaps after apply", keepcaps, 0)
    });
}

#[test]
fn no_new_privs_reads_back() {
    in_child(|| {
        expect_eq(
            "before",
            nucleus_caps::no_new_privs().map_err(|e| chain(&e))?,
            false,
        )?;
        nucleus_caps::set_no_new_privs().map_err(|e| chain(&e))?;
        // SAFETY: prctl with integer arguments only.
        let raw = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
        expect_eq("PR_GET_NO_NEW_PRIVS", raw, 1)?;
        expect_eq(
            "after",
            nucleus_caps::no_new_privs().map_err(|e| chain(&e))?,
            true,
        )
    });
}

#[test]
fn kept_sys_admin_fails_the_namespace_check() {
    if !has_root_caps("kept_sys_admin_fails_the_namespace_check") {
        return;
    }
    let mut policy = CapsPolicy::keep([Capability::SysAdmin]);
    assert!(matches!(
        policy.validate(),
        Err(CapsError::NamespaceCapsKept { .. })
    ));
    policy.allow_namespace_caps = true;
    let compiled = policy.compile().expect("compile");
    in_child(|| {
        compiled.apply(true).map_err(|e| chain(&e))?;
        let state = read_state().map_err(|e| chain(&e))?;
        match check_no_namespace_caps(&state) {
            Err(CapsError::NamespaceCapsPresent { caps, .. }) => {
                expect_eq("caps", caps, [Capability::SysAdmin].into_iter().collect())
            }
            other => Err(format!("expected NamespaceCapsPresent, got {other:?}")),
        }
    });
}

#[test]
fn explicit_sets_apply_as_given() {
    if !has_root_caps("explicit_sets_apply_as_given") {
        return;
    }
    let policy = CapsPolicy::from_toml_str(
        r#"
        keep = ["CAP_CHOWN", "CAP_KILL"]
        effective = ["CAP_KILL"]
        inheritable = []
        "#,
    )
    .expect("policy");
    let compiled = policy.compile().expect("compile");
    in_child(|| {
        let report = compiled.apply(true).map_err(|e| chain(&e))?;
        let both: CapSet = [Capability::Chown, Capability::Kill].into_iter().collect();
        expect_eq("bounding", report.bounding, both)?;
        expect_eq("permitted", report.permitted, both)?;
        expect_eq(
            "effective",
            report.effective,
            [Capability::Kill].into_iter().collect(),
        )?;
        expect_eq("inheritable", report.inheritable, CapSet::EMPTY)
    });
}

/// Whether this machine lets any user create a user namespace.
fn userns_available() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    read("/proc/sys/user/max_user_namespaces").is_some_and(|v| v != "0")
        && read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0")
}

#[test]
fn drop_all_inside_a_user_namespace() {
    // Works for any user: the new user namespace grants a full set to drop.
    if !userns_available() {
        return skip(
            "drop_all_inside_a_user_namespace",
            "user namespaces are disabled",
        );
    }
    let compiled = CapsPolicy::default().compile().expect("compile");
    in_child(|| {
        sys::unshare(libc::CLONE_NEWUSER).map_err(|e| format!("unshare user: errno {e}"))?;
        let before = read_state().map_err(|e| chain(&e))?;
        if !before.effective.contains(Capability::SysAdmin) {
            return Err(format!("no CAP_SYS_ADMIN in the new namespace: {before:?}"));
        }
        compiled.apply(true).map_err(|e| chain(&e))?;
        let state = read_state().map_err(|e| chain(&e))?;
        for set in [
            SetName::Effective,
            SetName::Permitted,
            SetName::Inheritable,
            SetName::Bounding,
            SetName::Ambient,
        ] {
            expect_eq(&format!("{set} set"), state.get(set), CapSet::EMPTY)?;
        }
        // A UTS namespace needs CAP_SYS_ADMIN in the user namespace.
        expect_eq(
            "unshare uts",
            sys::unshare(libc::CLONE_NEWUTS),
            Err(libc::EPERM),
        )
    });
}

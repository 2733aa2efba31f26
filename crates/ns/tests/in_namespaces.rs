//! The namespace operations, run in a forked child that unshares its own
//! namespaces (never in the test process itself).

use std::ffi::CStr;

/// Forks; the child runs `f` and exits with its code; returns that code.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    nucleus_test_support::in_child(f).code()
}

/// unshare with a user namespace, so this works as root and rootless.
fn unshare(flags: libc::c_int) -> bool {
    // SAFETY: plain syscall in the forked child.
    unsafe { libc::unshare(libc::CLONE_NEWUSER | flags) == 0 }
}

#[test]
fn hostname_is_set_in_a_new_uts_namespace() {
    let code = in_child(|| {
        if !unshare(libc::CLONE_NEWUTS) {
            return 10;
        }
        if nucleus_ns::set_hostname(c"inside-test").is_err() {
            return 11;
        }
        let mut buf = [0u8; 65];
        // SAFETY: buf is live and its length is passed.
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let name = CStr::from_bytes_until_nul(&buf).map(|c| c.to_bytes().to_vec());
        if name.as_deref() == Ok(b"inside-test") {
            0
        } else {
            12
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn loopback_comes_up_in_a_new_network_namespace() {
    let code = in_child(|| {
        if !unshare(libc::CLONE_NEWNET) {
            return 10;
        }
        if nucleus_ns::loopback_up().is_err() {
            return 11;
        }
        // A TCP round trip on 127.0.0.1 only works with lo up.
        let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else {
            return 12;
        };
        let Ok(addr) = listener.local_addr() else {
            return 13;
        };
        if std::net::TcpStream::connect(addr).is_err() {
            return 14;
        }
        0
    });
    assert_eq!(code, 0);
}

#[test]
fn join_refuses_a_namespace_of_another_kind() {
    let code = in_child(|| {
        match nucleus_ns::join(
            std::path::Path::new("/proc/self/ns/uts"),
            nucleus_ns::Namespace::Network,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => 0,
            _ => 1,
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn join_of_a_missing_file_names_it() {
    let err = nucleus_ns::join(
        std::path::Path::new("/nonexistent/ns"),
        nucleus_ns::Namespace::Uts,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ns"), "{err}");
}

#[test]
fn fork_into_puts_the_child_in_new_namespaces_and_gives_a_pidfd() {
    use nucleus_ns::{Forked, Namespace, NamespaceSet};
    let set = NamespaceSet::default_set()
        .without(Namespace::Time)
        .without(Namespace::Cgroup);
    let own_uts = std::fs::read_link("/proc/self/ns/uts").expect("own uts ns");
    let mut go = [0 as libc::c_int; 2];
    // SAFETY: `go` has room for the two fds.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    // SAFETY: the child only calls getpid, read and _exit: no allocation.
    let forked = unsafe { nucleus_ns::fork_into(set, None) }.expect("fork_into");
    let child = match forked {
        Forked::Child => {
            let mut byte = 0u8;
            // SAFETY: async-signal-safe calls on our own fds and stack.
            unsafe {
                libc::close(go[1]);
                // Wait until the parent has looked at our namespaces.
                libc::read(go[0], (&mut byte as *mut u8).cast(), 1);
                libc::_exit(if libc::getpid() == 1 { 0 } else { 3 })
            }
        }
        Forked::Parent(child) => child,
    };
    let child_uts = std::fs::read_link(format!("/proc/{}/ns/uts", child.pid)).expect("child uts");
    // SAFETY: closing our pipe ends releases the child.
    unsafe {
        libc::close(go[0]);
        libc::close(go[1]);
    }
    // SAFETY: siginfo_t is plain old data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits on the pidfd we own for the child we made.
    let ret = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            std::os::fd::AsRawFd::as_raw_fd(&child.pidfd) as libc::id_t,
            &mut info,
            libc::WEXITED,
        )
    };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: waitid filled the exit status of an exited child.
    assert_eq!(unsafe { info.si_status() }, 0, "the child was not pid 1");
    assert_ne!(child_uts, own_uts, "the child shares our UTS namespace");
}

#[test]
fn fork_into_reports_a_refused_clone() {
    // An invalid cgroup fd: clone3 refuses it (EBADF) and no child exists.
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let set = nucleus_ns::NamespaceSet::default_set();
    // SAFETY: the clone is refused, so no child runs.
    let err = unsafe { nucleus_ns::fork_into(set, Some(std::os::fd::AsFd::as_fd(&file))) }
        .expect_err("a cgroup fd that is not a cgroup must be refused");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EBADF) | Some(libc::ENOTDIR) | Some(libc::EINVAL)
        ),
        "{err:?}"
    );
}

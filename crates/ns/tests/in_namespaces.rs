//! The namespace operations, run in a forked child that unshares its own
//! namespaces (never in the test process itself).

use std::ffi::CStr;

/// Forks; the child runs `f` and exits with its code; returns that code.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` and `_exit`s, never returning into the harness.
    match unsafe { libc::fork() } {
        0 => {
            let code = f();
            // SAFETY: leave the child without unwinding.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "child died: {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
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

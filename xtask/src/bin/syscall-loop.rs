//! A syscall-heavy workload for `cargo xtask bench`: `syscall-loop getppid N`
//! or `syscall-loop open-close N DIR`. Prints nothing; the bench times it.

use std::ffi::CString;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match args.get(1).map(String::as_str) {
        Some("getppid") => {
            for _ in 0..n {
                // SAFETY: getppid has no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::getppid() });
            }
        }
        Some("open-close") => {
            let dir = args.get(3).map_or("/tmp", String::as_str);
            let Ok(path) = CString::new(format!("{dir}/syscall-loop.{}", std::process::id()))
            else {
                std::process::exit(2);
            };
            for _ in 0..n {
                // SAFETY: `path` is NUL-terminated; the fd is closed right after.
                let fd = unsafe {
                    libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    std::process::exit(1);
                }
                // SAFETY: we own `fd`.
                unsafe { libc::close(fd) };
            }
            // SAFETY: `path` is NUL-terminated.
            unsafe { libc::unlink(path.as_ptr()) };
        }
        _ => {
            eprintln!("usage: syscall-loop getppid N | syscall-loop open-close N DIR");
            std::process::exit(2);
        }
    }
}

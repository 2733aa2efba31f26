//! The few raw system calls the landlock crate does not expose to us.
//!
//! Raw `libc`, not `nix`: `nix` has no Landlock call, and `open_path` runs in
//! the sandbox child (from `CompiledPolicy::restrict_self`, between `clone`
//! and `execve`), where the runner keeps to plain system calls on prepared
//! data.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `LANDLOCK_CREATE_RULESET_VERSION` (linux/landlock.h).
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the kernel's
/// Landlock ABI, or the errno (`ENOSYS`: not built in, `EOPNOTSUPP`: disabled at boot).
pub(crate) fn landlock_abi_version() -> Result<i64, io::Error> {
    // SAFETY: with a NULL attribute pointer and size 0, the VERSION flag only queries the
    // ABI number; the kernel reads and writes no user memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `open(path, O_PATH | O_CLOEXEC)`: a handle on the rule's file hierarchy that reads
/// nothing and leaks into no exec.
pub(crate) fn open_path(path: &CStr) -> Result<OwnedFd, io::Error> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; O_PATH opens
    // neither read nor write, and O_CLOEXEC keeps the fd out of exec'd programs.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open(2), is valid, and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

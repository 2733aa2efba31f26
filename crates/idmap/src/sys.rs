//! The raw system calls of this crate.

pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid(2) takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

pub(crate) fn getgid() -> u32 {
    // SAFETY: getgid(2) takes no arguments and cannot fail.
    unsafe { libc::getgid() }
}

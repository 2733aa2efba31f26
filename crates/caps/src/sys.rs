//! The raw system calls of this crate: capget/capset and prctl. None allocates.
//!
//! On `libc`, not `nix`: nix 0.31 wraps neither `capget`/`capset` nor the
//! `PR_CAPBSET_*` and `PR_CAP_AMBIENT` options of prctl. The options it does
//! wrap (`PR_SET_KEEPCAPS`, `PR_SET_NO_NEW_PRIVS`) are set in the sandbox
//! child between clone and exec, where the runner keeps to raw calls on
//! prepared data; and taking nix for the one parent-side read left
//! (`PR_GET_NO_NEW_PRIVS` in `probe`) would remove no `unsafe`, since the
//! generic [`prctl`] stays for the rest.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit halves.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three per-thread sets as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sets {
    pub(crate) effective: u64,
    pub(crate) permitted: u64,
    pub(crate) inheritable: u64,
}

fn join(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

fn halves(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

pub(crate) fn capget() -> io::Result<Sets> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: version 3 takes a header and an array of two data structs,
    // both live and writable for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Sets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

pub(crate) fn capset(sets: Sets) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let (e0, e1) = halves(sets.effective);
    let (p0, p1) = halves(sets.permitted);
    let (i0, i1) = halves(sets.inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: version 3 takes a header and an array of two data structs,
    // both live for the call; the kernel only reads the data.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// prctl(2) with integer arguments only; returns its non-negative result.
pub(crate) fn prctl(
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
) -> io::Result<i32> {
    // SAFETY: every option used by this crate takes integer arguments and no
    // pointers; unused arguments are 0 as the kernel requires.
    let ret = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip() {
        let v = 0x1_ffff_ffff_u64 | (1 << 40);
        let (lo, hi) = halves(v);
        assert_eq!(join(lo, hi), v);
    }

    #[test]
    fn capget_reads_own_sets() {
        let sets = capget().unwrap();
        assert_eq!(sets.effective & !sets.permitted, 0);
    }
}

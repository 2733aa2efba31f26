//! A spare's init side (`spare.rs` is the holder's): where the init of a
//! sandbox built ahead takes its command, in buffers allocated before the
//! clone, so that it allocates nothing.

use crate::sys;
use std::cell::{RefCell, RefMut};
use std::ffi::CStr;
use std::os::fd::RawFd;

/// The most bytes of a spare's command: a header, then its `PATH`
/// candidates, argv and environment, each NUL-terminated.
pub(crate) const MAX_COMMAND: usize = 128 << 10;

/// The most strings (candidates, arguments, variables) of a spare's command.
pub(crate) const MAX_STRINGS: usize = 8 << 10;

/// The header: the counts of candidates, arguments and variables.
pub(crate) const HEADER: usize = 12;

/// The init's side: where it takes its command, allocated before the
/// clone (the init allocates nothing).
pub(crate) struct Slot {
    /// The init's end of its socket with the holder (close-on-exec).
    pub(crate) control: RawFd,
    buffers: RefCell<Buffers>,
    /// The stack the workload starts on (`sys::vfork_on`).
    stack: RefCell<Vec<u8>>,
}

/// The workload's stack: what it runs before it executes is small.
const STACK: usize = 256 << 10;

struct Buffers {
    bytes: Vec<u8>,
    /// Candidates, then argv and a null, then the environment and a null.
    ptrs: Vec<*const libc::c_char>,
}

/// A command the init took: pointer arrays into its slot's bytes.
pub(crate) struct Command<'a> {
    buffers: RefMut<'a, Buffers>,
    candidates: usize,
    args: usize,
    vars: usize,
}

impl Slot {
    pub(crate) fn new(control: RawFd) -> Slot {
        Slot {
            control,
            buffers: RefCell::new(Buffers {
                bytes: vec![0; MAX_COMMAND],
                ptrs: vec![std::ptr::null(); MAX_STRINGS + 2],
            }),
            stack: RefCell::new(vec![0; STACK]),
        }
    }

    /// The stack the workload starts on.
    pub(crate) fn stack(&self) -> RefMut<'_, Vec<u8>> {
        self.stack.borrow_mut()
    }

    /// Init side: waits for the command, puts the three fds that came
    /// with it on 0, 1 and 2, and closes the socket. `Ok(None)`: the
    /// holder closed the socket (the spare ends unused).
    pub(crate) fn take(&self) -> Result<Option<Command<'_>>, i32> {
        let mut buffers = self.buffers.borrow_mut();
        let mut fds = [-1; 3];
        let (n, count) = sys::recv_fds_into(self.control, &mut buffers.bytes, &mut fds)?;
        if n == 0 {
            return Ok(None);
        }
        if count != fds.len() {
            return Err(libc::EINVAL);
        }
        for (target, fd) in (0..).zip(fds) {
            sys::dup2(fd, target)?;
            sys::close(fd);
        }
        sys::close(self.control);
        let Buffers { bytes, ptrs } = &mut *buffers;
        let (candidates, args, vars) = parse(&bytes[..n], ptrs).ok_or(libc::EINVAL)?;
        Ok(Some(Command {
            buffers,
            candidates,
            args,
            vars,
        }))
    }
}

impl Command<'_> {
    /// The paths to try, in order.
    pub(crate) fn candidates(&self) -> impl Iterator<Item = &CStr> {
        self.buffers.ptrs[..self.candidates].iter().map(|&p| {
            // SAFETY: `parse` pointed each at a NUL-terminated string of
            // the slot's bytes, which the borrow keeps alive.
            unsafe { CStr::from_ptr(p) }
        })
    }

    /// argv, null-terminated.
    pub(crate) fn argv(&self) -> &[*const libc::c_char] {
        &self.buffers.ptrs[self.candidates..self.candidates + self.args + 1]
    }

    /// The environment, null-terminated.
    pub(crate) fn envp(&self) -> &[*const libc::c_char] {
        let start = self.candidates + self.args + 1;
        &self.buffers.ptrs[start..start + self.vars + 1]
    }
}

/// Points `ptrs` at the strings of a command message (see [`encode`]);
/// `None` for a malformed one. Allocates nothing.
pub(crate) fn parse(
    bytes: &[u8],
    ptrs: &mut [*const libc::c_char],
) -> Option<(usize, usize, usize)> {
    let header = bytes.get(..HEADER)?;
    let count = |i: usize| {
        let b = &header[i * 4..i * 4 + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    };
    let (candidates, args, vars) = (count(0), count(1), count(2));
    if candidates == 0 || args == 0 || candidates + args + vars + 2 > ptrs.len() {
        return None;
    }
    let mut strings = bytes[HEADER..].split_inclusive(|b| *b == 0);
    let mut at = 0;
    for (n, null_after) in [(candidates, false), (args, true), (vars, true)] {
        for _ in 0..n {
            let s = strings.next()?;
            if s.last() != Some(&0) {
                return None;
            }
            ptrs[at] = s.as_ptr().cast();
            at += 1;
        }
        if null_after {
            ptrs[at] = std::ptr::null();
            at += 1;
        }
    }
    strings.next().is_none().then_some((candidates, args, vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_command_is_refused() {
        let mut ptrs = vec![std::ptr::null(); 8];
        let mut ok = Vec::new();
        for n in [1u32, 1, 0] {
            ok.extend_from_slice(&n.to_le_bytes());
        }
        ok.extend_from_slice(b"/bin/true\0true\0");
        assert_eq!(parse(&ok, &mut ptrs), Some((1, 1, 0)));
        // Cut short, unterminated, a string too many, counts over the room.
        assert_eq!(parse(&ok[..ok.len() - 6], &mut ptrs), None);
        assert_eq!(parse(&ok[..ok.len() - 1], &mut ptrs), None);
        let mut more = ok.clone();
        more.extend_from_slice(b"x\0");
        assert_eq!(parse(&more, &mut ptrs), None);
        let mut big = ok.clone();
        big[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(parse(&big, &mut ptrs), None);
        assert_eq!(parse(&ok[..5], &mut ptrs), None);
    }
}

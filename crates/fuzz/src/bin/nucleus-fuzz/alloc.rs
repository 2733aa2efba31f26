//! The counting allocator: the peak of bytes allocated while one input runs.
//!
//! Allocations are forwarded to the system allocator and counted. An allocation the system
//! refuses while an input runs (a length read from the input, say) would abort the process
//! before the driver could report it: the allocator then writes the input as a finding
//! itself, with raw system calls (it may not allocate), and exits with status 3.

use sha2::{Digest, Sha256};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// The system allocator, counted.
pub(crate) struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BASE: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The input that runs, for the out-of-memory path.
static INPUT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
/// The current target's regression directory, leaked, as bytes.
static DIR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static DIR_LEN: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; the
// counters are atomics and the out-of-memory path does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        self.counted(p, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        self.counted(p, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Relaxed);
        }
        self.counted(p, new_size)
    }
}

impl Counting {
    fn counted(&self, p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            if ACTIVE.load(Relaxed) {
                out_of_memory(size);
            }
        } else {
            grew(size);
        }
        p
    }
}

/// Where the out-of-memory path writes this target's findings.
pub(crate) fn set_finding_dir(dir: &Path) {
    let bytes: &'static mut [u8] = Vec::from(dir.as_os_str().as_encoded_bytes()).leak();
    DIR_LEN.store(bytes.len(), Relaxed);
    DIR.store(bytes.as_mut_ptr(), Relaxed);
}

/// Starts counting for `input` (which must outlive the matching [`end`]).
pub(crate) fn begin(input: &[u8]) {
    INPUT.store(input.as_ptr().cast_mut(), Relaxed);
    INPUT_LEN.store(input.len(), Relaxed);
    let now = CURRENT.load(Relaxed);
    BASE.store(now, Relaxed);
    PEAK.store(now, Relaxed);
    ACTIVE.store(true, Relaxed);
}

/// Stops counting; the peak of bytes allocated since [`begin`], beyond what was live then.
pub(crate) fn end() -> usize {
    ACTIVE.store(false, Relaxed);
    INPUT.store(std::ptr::null_mut(), Relaxed);
    PEAK.load(Relaxed).saturating_sub(BASE.load(Relaxed))
}

/// Whether an input is running (the panic hook keeps quiet then).
pub(crate) fn active() -> bool {
    ACTIVE.load(Relaxed)
}

/// Writes the running input to `DIR/<sha256[..16]>` and exits 3, without allocating.
fn out_of_memory(size: usize) -> ! {
    let input = INPUT.load(Relaxed);
    let len = INPUT_LEN.load(Relaxed);
    let (dir, dir_len) = (DIR.load(Relaxed), DIR_LEN.load(Relaxed));
    let mut path = [0u8; 4096];
    if !input.is_null() && !dir.is_null() && dir_len + 18 < path.len() {
        // SAFETY: `begin` stored a live slice that outlives the run; `set_finding_dir`
        // leaked its buffer.
        let (data, dir) = unsafe {
            (
                std::slice::from_raw_parts(input, len),
                std::slice::from_raw_parts(dir, dir_len),
            )
        };
        path[..dir_len].copy_from_slice(dir);
        let digest = Sha256::digest(data);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        path[dir_len] = b'/';
        for (i, b) in digest.iter().take(8).enumerate() {
            path[dir_len + 1 + 2 * i] = HEX[usize::from(b >> 4)];
            path[dir_len + 2 + 2 * i] = HEX[usize::from(b & 15)];
        }
        // SAFETY: NUL-terminated paths in our buffer; `data` is live; no allocation.
        unsafe {
            path[dir_len] = 0;
            libc::mkdir(path.as_ptr().cast(), 0o755);
            path[dir_len] = b'/';
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
            let fd = libc::open(path.as_ptr().cast(), flags, 0o644);
            if fd >= 0 {
                libc::write(fd, data.as_ptr().cast(), data.len());
                libc::close(fd);
            }
        }
    }
    let mut msg = [0u8; 4200];
    let mut n = 0;
    let end = path.iter().position(|&b| b == 0).unwrap_or(0);
    for part in [
        &b"nucleus-fuzz: FINDING: an allocation of "[..],
        digits(size, &mut [0u8; 20]),
        b" bytes failed while an input ran; input: ",
        &path[..end],
        b"\n",
    ] {
        let take = part.len().min(msg.len() - n);
        msg[n..n + take].copy_from_slice(&part[..take]);
        n += take;
    }
    // SAFETY: writes our buffer to stderr and exits; nothing else runs.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), n);
        libc::_exit(3)
    }
}

/// `n` in decimal, in `buf`.
fn digits(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

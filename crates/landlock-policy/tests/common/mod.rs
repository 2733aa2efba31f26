//! Helpers shared by the enforcement tests: run a closure in a forked child, gate on the
//! kernel, make scratch trees.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nucleus_landlock_policy::{probe, Compat, FsAccess, FsRule, Policy};

/// Run `f` in a forked child (which may restrict itself freely) and panic with the child's
/// message if it returns an error, panics, or exits non-zero. The child may also `execve`:
/// the result pipe is close-on-exec, and the exec'd program's exit code is checked.
pub fn in_child<F: FnOnce() -> Result<(), String>>(f: F) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created by pipe2 and are owned here.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child only runs `f` and leaves with `_exit`, never unwinding into the
    // test harness; glibc keeps malloc usable after fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(read_end);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, msg) = match result {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(msg)) => (1, msg),
            Err(_) => (2, "child panicked".to_string()),
        };
        let mut file = std::fs::File::from(write_end);
        let _ = std::io::Write::write_all(&mut file, msg.as_bytes());
        // SAFETY: leaving the child without running the parent's destructors or atexit.
        unsafe { libc::_exit(code) };
    }
    drop(write_end);
    let mut msg = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 && msg.is_empty(),
        "child failed (status {status:#x}): {msg}"
    );
}

/// True when the kernel has Landlock ABI `abi`; otherwise prints `SKIPPED` (or panics
/// under `NUCLEUS_TEST_STRICT=1`) and returns false.
pub fn has_abi(abi: u8, test: &str) -> bool {
    let kernel = probe().abi.unwrap_or(0);
    if kernel >= abi {
        return true;
    }
    skip(
        test,
        &format!("needs landlock abi {abi}, kernel has {kernel}"),
    );
    false
}

/// Print `SKIPPED <test>: <why>`, or panic under `NUCLEUS_TEST_STRICT=1`.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("NUCLEUS_TEST_STRICT").is_some_and(|v| v == "1") {
        panic!("{test}: {why} (NUCLEUS_TEST_STRICT=1)");
    }
    println!("SKIPPED {test}: {why}");
}

/// `Ok` when `r` failed with `errno`, a message otherwise.
pub fn expect_errno<T: std::fmt::Debug>(
    what: &str,
    r: std::io::Result<T>,
    errno: i32,
) -> Result<(), String> {
    match r {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        Err(e) => Err(format!("{what}: expected errno {errno}, got {e}")),
        Ok(v) => Err(format!(
            "{what}: expected errno {errno}, succeeded with {v:?}"
        )),
    }
}

/// `Ok` when `r` succeeded, a message otherwise.
pub fn expect_ok<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e}"))
}

/// A scratch directory outside `/tmp` (which the default policy opens), removed on drop.
pub struct Scratch {
    pub root: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        // The default container policy grants /tmp and /dev/shm: a checkout
        // there must not put the probe trees inside a granted tree.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let granted = ["/tmp", "/dev", "/usr", "/etc", "/proc"];
        let base = if granted.iter().any(|g| target.starts_with(g)) {
            Path::new("/var/tmp")
        } else {
            target
        };
        let root = base.join(format!("landlock-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Scratch { root }
    }

    /// A subdirectory holding one file `file` with `content`.
    pub fn tree(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), "content").unwrap();
        dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A strict policy handling every filesystem right, with the given rules.
pub fn fs_policy(rules: Vec<FsRule>) -> Policy {
    let mut p = Policy::default();
    p.compat = Compat::Strict;
    p.fs = rules;
    p
}

/// Read, execute: what running a dynamically linked program from the host needs.
pub fn system_rules() -> Vec<FsRule> {
    use FsAccess::{Execute, Read};
    ["/usr", "/bin", "/lib", "/lib64", "/etc"]
        .into_iter()
        .map(|p| FsRule::new(p, [Read, Execute]).optional())
        .collect()
}

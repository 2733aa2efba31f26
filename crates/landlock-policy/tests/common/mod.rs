//! Helpers shared by the enforcement tests: run a closure in a forked child, gate on the
//! kernel, make scratch trees. The fork and the skip gate are `nucleus-test-support`'s.
// Each test binary uses its own part of these helpers and re-exports.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use nucleus_landlock_policy::{probe, Compat, FsAccess, FsRule, Policy};
use nucleus_test_support::{try_in_child, TempDir};

pub use nucleus_test_support::{fork_lock, skip};

/// Run `f` in a forked child (which may restrict itself freely) and panic with the child's
/// message if it returns an error, panics, or exits non-zero. The child may also `execve`:
/// the result pipe is close-on-exec, and the exec'd program's exit code is checked. Forks
/// under [`fork_lock`], so that a test writing a program it will execute can keep other
/// tests' children from inheriting the file open for writing (`ETXTBSY`).
pub fn in_child<F: FnOnce() -> Result<(), String>>(f: F) {
    let fork = fork_lock();
    let result = try_in_child(f);
    drop(fork);
    if let Err(e) = result {
        panic!("child failed: {e}");
    }
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
    _dir: TempDir,
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
        let dir = TempDir::new_in(base, &format!("landlock-{test}"));
        Scratch {
            root: dir.to_path_buf(),
            _dir: dir,
        }
    }

    /// A subdirectory holding one file `file` with `content`.
    pub fn tree(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), "content").unwrap();
        dir
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

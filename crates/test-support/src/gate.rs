//! Gating on what the machine has: a test that cannot run here says so, and fails in CI.

use std::path::PathBuf;

/// The environment variable that turns every skip into a failure when it is `1` (CI sets it).
pub const STRICT_VAR: &str = "NUCLEUS_TEST_STRICT";

/// Whether skips must fail: [`STRICT_VAR`] is `1`.
///
/// ```
/// std::env::remove_var(nucleus_test_support::STRICT_VAR);
/// assert!(!nucleus_test_support::strict());
/// ```
pub fn strict() -> bool {
    std::env::var(STRICT_VAR).as_deref() == Ok("1")
}

/// Reports that `test` cannot run here because of `why`: prints `SKIPPED <test>: <why>`, or
/// panics with that line when [`strict`] (a skip in CI is a failure, never a quiet pass).
///
/// ```
/// # std::env::remove_var(nucleus_test_support::STRICT_VAR);
/// fn needs_runsc() {
///     if nucleus_test_support::which("runsc-that-is-not-there").is_none() {
///         return nucleus_test_support::skip("needs_runsc", "runsc is not installed");
///     }
///     // ... the test ...
/// }
/// needs_runsc();
/// ```
pub fn skip(test: &str, why: &str) {
    if strict() {
        panic!("SKIPPED {test}: {why} ({STRICT_VAR}=1 forbids skips)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Whether the tests run as root (effective uid 0).
///
/// ```
/// let root = nucleus_test_support::is_root();
/// assert_eq!(root, std::fs::read_to_string("/proc/self/status").unwrap()
///     .lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")));
/// ```
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when running as root; otherwise [`skip`]s `test` with `why` and returns false.
///
/// ```
/// # std::env::remove_var(nucleus_test_support::STRICT_VAR);
/// if nucleus_test_support::require_root("doc", "needs root to create cgroups") {
///     // ... the root-only part ...
/// }
/// ```
pub fn require_root(test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, why);
    false
}

/// Where program `name` is on `PATH`, if it is installed.
///
/// ```
/// assert!(nucleus_test_support::which("sh").is_some());
/// assert!(nucleus_test_support::which("no-such-program-here").is_none());
/// ```
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An error with its chain of sources, `outer: inner: root`, as a test failure shows it.
///
/// ```
/// let e = std::io::Error::other(std::io::Error::from_raw_os_error(libc::ENOENT));
/// assert!(nucleus_test_support::error_chain(&e).contains("No such file"));
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

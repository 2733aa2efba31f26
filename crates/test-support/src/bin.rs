//! A built binary copied where every user can run it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Copies `built` (a binary of this build, e.g. `env!("CARGO_BIN_EXE_x")`)
/// to `$TMPDIR/nucleus-e2e-bin-SIZE-MTIME/NAME`, mode 0755, once per build:
/// `nobody` may not reach the build directory. Copies of other builds that
/// no test has made for an hour go (each may be hundreds of megabytes).
///
/// ```no_run
/// let bin = nucleus_test_support::reachable_copy("target/debug/nucleus-run".as_ref());
/// assert!(bin.ends_with("nucleus-run"));
/// ```
pub fn reachable_copy(built: &Path) -> PathBuf {
    reachable_copies(built, &[])
}

/// [`reachable_copy`] of `built` with the binaries `beside` it in the same
/// directory (a program that runs a companion found next to itself); the
/// directory is named after all of them.
///
/// ```no_run
/// let bin = nucleus_test_support::reachable_copies(
///     "target/debug/nucleus-run".as_ref(),
///     &["target/debug/nucleus-gvisor-exec".as_ref()],
/// );
/// assert!(bin.with_file_name("nucleus-gvisor-exec").exists());
/// ```
pub fn reachable_copies(built: &Path, beside: &[&Path]) -> PathBuf {
    let (mut size, mut stamp) = (0u64, 0u128);
    for file in std::iter::once(built).chain(beside.iter().copied()) {
        let meta = std::fs::metadata(file).expect("the binary is built");
        let mtime = meta
            .modified()
            .expect("mtime")
            .duration_since(std::time::UNIX_EPOCH)
            .expect("epoch");
        size = size.wrapping_add(meta.len());
        stamp = stamp.max(mtime.as_nanos());
    }
    let dir = std::env::temp_dir().join(format!("nucleus-e2e-bin-{size}-{stamp}"));
    let mut copied = false;
    for file in beside.iter().copied().chain(std::iter::once(built)) {
        copied |= copy_into(&dir, file);
    }
    if copied {
        remove_old_copies(&dir);
    }
    dir.join(built.file_name().expect("a file name"))
}

/// Copies `built` into `dir` (mode 0755) unless it is there; the copy
/// appears whole (a rename). Whether it copied.
fn copy_into(dir: &Path, built: &Path) -> bool {
    let name = built.file_name().expect("a file name");
    let bin = dir.join(name);
    if bin.exists() {
        return false;
    }
    std::fs::create_dir_all(dir).expect("bin dir");
    let tmp = dir.join(format!("{}.{}", name.to_string_lossy(), std::process::id()));
    std::fs::copy(built, &tmp).expect("copy the binary");
    for p in [dir, &tmp] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::rename(&tmp, &bin).expect("rename the copy");
    true
}

fn remove_old_copies(ours: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > hour));
        let copy = entry
            .file_name()
            .to_string_lossy()
            .starts_with("nucleus-e2e-bin-");
        if copy && old && path != ours {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

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
    let meta = std::fs::metadata(built).expect("the binary is built");
    let stamp = meta
        .modified()
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("epoch");
    let name = built.file_name().expect("a file name");
    let dir = std::env::temp_dir().join(format!(
        "nucleus-e2e-bin-{}-{}",
        meta.len(),
        stamp.as_nanos()
    ));
    let bin = dir.join(name);
    if !bin.exists() {
        std::fs::create_dir_all(&dir).expect("bin dir");
        let tmp = dir.join(format!("{}.{}", name.to_string_lossy(), std::process::id()));
        std::fs::copy(built, &tmp).expect("copy the binary");
        for p in [&dir, &tmp] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::rename(&tmp, &bin).expect("rename the copy");
        remove_old_copies(&dir);
    }
    bin
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

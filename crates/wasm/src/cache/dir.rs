//! The cache directory: where it is, that it is ours and private, fresh names in it.

use crate::error::WasmError;
use crate::policy::CacheMode;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME/nucleus/wasm` (when absolute), else `$HOME/.cache/nucleus/wasm`.
///
/// ```
/// if let Some(dir) = nucleus_wasm::default_cache_dir() {
///     assert!(dir.ends_with("nucleus/wasm"));
/// }
/// ```
pub fn default_cache_dir() -> Option<PathBuf> {
    default_cache_dir_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn default_cache_dir_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let base = match (xdg, home) {
        (Some(x), _) if x.is_absolute() => x,
        (_, Some(h)) if h.is_absolute() => h.join(".cache"),
        _ => return None,
    };
    Some(base.join("nucleus").join("wasm"))
}

/// The directory to use, or why there is none.
pub(crate) enum Resolved {
    Off,
    Dir(PathBuf),
    Skipped(String),
}

/// Finds (creating it `0700` if needed) and checks the cache directory. An explicit
/// directory that cannot be used is an error; the default one is skipped with a note.
pub(crate) fn resolve(mode: &CacheMode) -> Result<Resolved, WasmError> {
    let (dir, explicit) = match mode {
        CacheMode::Off => return Ok(Resolved::Off),
        CacheMode::Dir(dir) => (dir.clone(), true),
        CacheMode::Default => match default_cache_dir() {
            Some(dir) => (dir, false),
            None => {
                return Ok(Resolved::Skipped(
                    "neither XDG_CACHE_HOME nor HOME is an absolute path".into(),
                ))
            }
        },
    };
    match check_dir(&dir) {
        Ok(()) => {
            sweep_temp(&dir);
            Ok(Resolved::Dir(dir))
        }
        Err(e) if explicit => Err(e),
        Err(e) => Ok(Resolved::Skipped(chain(&e))),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn check_dir(dir: &Path) -> Result<(), WasmError> {
    let io_err = |source| WasmError::CacheDir {
        path: dir.to_owned(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err)?;
    let meta = fs::metadata(dir).map_err(io_err)?;
    let unsafe_dir = |reason| WasmError::CacheDirUnsafe {
        path: dir.to_owned(),
        reason,
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory"));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(unsafe_dir("owned by another user"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_dir("writable by group or others"));
    }
    Ok(())
}

/// A fresh name in `dir` for a temporary file.
pub(super) fn temp_name(dir: &Path, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(".tmp-{what}-{}-{nanos}", std::process::id()))
}

/// Removes the temporary files ([`temp_name`]) of writers that were killed
/// before their rename: those whose pid is gone. One of a live writer, or
/// of a reused pid, stays until a later sweep.
fn sweep_temp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temp_writer(&name.to_string_lossy()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The writer's pid in `.tmp-WHAT-PID-NANOS`.
fn temp_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".tmp-")?;
    let mut parts = rest.rsplitn(3, '-');
    let (_nanos, pid) = (parts.next()?, parts.next()?);
    parts.next()?;
    pid.parse().ok()
}

/// Opens a cache file for reading without following a symbolic link;
/// `None` when there is no such file.
pub(crate) fn open_existing(path: &Path) -> std::io::Result<Option<fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nucleus_test_support::TempDir;

    #[test]
    fn default_dir() {
        let d = |x: Option<&str>, h: Option<&str>| {
            default_cache_dir_from(x.map(PathBuf::from), h.map(PathBuf::from))
        };
        assert_eq!(d(Some("/x"), Some("/h")), Some("/x/nucleus/wasm".into()));
        assert_eq!(
            d(Some("rel"), Some("/h")),
            Some("/h/.cache/nucleus/wasm".into())
        );
        assert_eq!(d(None, None), None);
    }

    #[test]
    fn killed_writers_temporary_files_are_swept() {
        assert_eq!(temp_writer(".tmp-entry-42-123"), Some(42));
        assert_eq!(temp_writer(".tmp-key-7-0"), Some(7));
        assert_eq!(temp_writer("abc.cwasm"), None);
        let dir = TempDir::new("wasm-sweep");
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // pid_max is at most 2^22: that writer is gone.
        let dead = dir.join(".tmp-entry-4194305-1");
        let live = temp_name(&dir, "entry");
        let entry = dir.join("0123.cwasm");
        for f in [&dead, &live, &entry] {
            fs::write(f, b"x").unwrap();
        }
        assert!(matches!(
            resolve(&CacheMode::Dir(dir.to_path_buf())),
            Ok(Resolved::Dir(_))
        ));
        assert!(!dead.exists());
        assert!(live.exists() && entry.exists());
    }

    #[test]
    fn explicit_dir_must_be_private() {
        let dir = TempDir::new("wasm-unsafe");
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let r = resolve(&CacheMode::Dir(dir.to_path_buf()));
        assert!(matches!(r, Err(WasmError::CacheDirUnsafe { .. })));
    }
}

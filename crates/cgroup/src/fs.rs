//! Small file helpers for cgroupfs: errors carry the path; writes never
//! create files (a missing knob is "not supported", not a new file).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::CgroupError;

/// How cgroup files are opened for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FsMode {
    /// Real cgroupfs: the kernel creates the files; never create one.
    Kernel,
    /// A fake cgroupfs in a temp dir (unit tests): create files on write,
    /// remove them before `rmdir`.
    #[cfg(test)]
    Fake,
}

/// Reads a whole (small) file.
pub(crate) fn read_to_string(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Reads a whole file, `None` on any error (optional accounting files).
pub(crate) fn read_opt(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    Some(s)
}

/// Whitespace-separated words of a file; empty if unreadable.
pub(crate) fn read_words(path: &Path) -> Vec<String> {
    read_opt(path)
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A single number, `max` counting as `u64::MAX`.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    let s = read_opt(path)?;
    let t = s.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` lines).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        (it.next()? == key).then_some(())?;
        it.next()?.parse().ok()
    })
}

/// Writes `value` to an existing cgroup file in a single `write(2)`.
pub(crate) fn write_raw(path: &Path, value: &str, mode: FsMode) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(test)]
    if mode == FsMode::Fake {
        opts.create(true).truncate(true);
    }
    let _ = mode;
    opts.open(path)?.write_all(value.as_bytes())
}

/// Pids listed in `cgroup.procs`; an absent file (cgroup gone) is empty.
/// Only pids > 0 are returned: nothing read here may ever address a process
/// group or every process when passed to `kill`.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s
            .split_whitespace()
            .filter_map(|w| w.parse::<i32>().ok())
            .filter(|&p| p > 0)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes a cgroup directory. In fake mode the regular files go first.
pub(crate) fn rmdir(path: &Path, mode: FsMode) -> io::Result<()> {
    #[cfg(test)]
    if mode == FsMode::Fake {
        for entry in std::fs::read_dir(path)?.flatten() {
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    let _ = mode;
    std::fs::remove_dir(path)
}

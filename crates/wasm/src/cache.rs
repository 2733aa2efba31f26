//! The compiled-module cache: files only this uid can write, each with a header that pins the
//! module, the engine settings and the payload's SHA-256.
//!
//! File: `<dir>/<sha256(module file)>-<sha256(engine settings)[..16]>.cwasm`, made of
//! `MAGIC (8) | module hash (32) | settings hash (32) | payload sha256 (32) | payload length
//! (8, LE) | payload` where the payload is `Module::serialize` (or `Component::serialize`).
//! Written to a temporary file in the same directory, then renamed: a reader sees the old
//! file, the new one, or none. Not fsync'ed: a torn file after a crash fails its hash and is
//! recompiled. The hash guards against corruption, not against a forger: that is what the
//! owner and mode checks on the directory and the file are for.

use crate::error::WasmError;
use crate::policy::CacheMode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"NUCWASM\x01";
const HEADER_LEN: usize = 8 + 32 + 32 + 32 + 8;
/// Bigger files are not ours: rejected before reading them whole.
const MAX_FILE: u64 = 1 << 30;

/// What the cache did for this preparation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// No cache was asked for.
    Off,
    /// The compiled module came from the cache: nothing was compiled.
    Hit,
    /// Compiled, and stored for next time.
    Stored,
    /// A cache file was there but rejected (corrupt, foreign, or from another engine); the
    /// module was compiled and the file replaced.
    Replaced,
    /// Compiled; the cache could not be used or written (see the report's note).
    Skipped,
}

/// The two halves of a cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CacheKey {
    /// SHA-256 of the module file as read (binary or text).
    pub module: [u8; 32],
    /// SHA-256 of the engine's compatibility hash and this crate's version.
    pub settings: [u8; 32],
}

impl CacheKey {
    fn file_name(&self) -> String {
        format!("{}-{}.cwasm", hex(&self.module), &hex(&self.settings)[..16])
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `$XDG_CACHE_HOME/nucleus/wasm` (when absolute), else `$HOME/.cache/nucleus/wasm`.
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
        Ok(()) => Ok(Resolved::Dir(dir)),
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
    if meta.uid() != crate::sys::geteuid() {
        return Err(unsafe_dir("owned by another user"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_dir("writable by group or others"));
    }
    Ok(())
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// A verified payload, to deserialize.
    Found { path: PathBuf, payload: Vec<u8> },
    /// No file.
    Missing,
    /// A file that failed a check: removed, to be replaced.
    Rejected { reason: String },
}

/// Reads and verifies the cache file for `key`. A file that fails any check is removed.
pub(crate) fn load(dir: &Path, key: &CacheKey) -> Lookup {
    let path = dir.join(key.file_name());
    let result = read_verified(&path, key);
    match result {
        Ok(Some(payload)) => Lookup::Found { path, payload },
        Ok(None) => Lookup::Missing,
        Err(reason) => {
            // Best effort: a file we cannot remove is overwritten by the rename anyway.
            let _ = fs::remove_file(&path);
            Lookup::Rejected { reason }
        }
    }
}

/// The payload, `None` when there is no file, or why the file is rejected.
fn read_verified(path: &Path, key: &CacheKey) -> Result<Option<Vec<u8>>, String> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() || meta.uid() != crate::sys::geteuid() || meta.mode() & 0o022 != 0 {
        return Err("not a regular file of ours with mode 0600".into());
    }
    if meta.len() > MAX_FILE || meta.len() < HEADER_LEN as u64 {
        return Err(format!("implausible size {}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file)
        .take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    verify(bytes, key).map(Some)
}

/// Checks the header against `key` and the payload against its recorded hash.
fn verify(mut bytes: Vec<u8>, key: &CacheKey) -> Result<Vec<u8>, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("no nucleus-wasm header".into());
    }
    if bytes[8..40] != key.module || bytes[40..72] != key.settings {
        return Err("header names another module or engine".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[104..112]);
    if u64::from_le_bytes(len) != (bytes.len() - HEADER_LEN) as u64 {
        return Err("payload length differs from the header".into());
    }
    let payload = bytes.split_off(HEADER_LEN);
    if Sha256::digest(&payload)[..] != bytes[72..104] {
        return Err("payload hash differs from the header".into());
    }
    Ok(payload)
}

/// Writes `payload` for `key` atomically (temporary file, then rename), mode `0600`.
pub(crate) fn store(dir: &Path, key: &CacheKey, payload: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(key.file_name());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".tmp-{}-{nanos}", std::process::id()));
    let result = write_file(&tmp, key, payload).and_then(|()| fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

fn write_file(tmp: &Path, key: &CacheKey, payload: &[u8]) -> io::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&key.module);
    header.extend_from_slice(&key.settings);
    header.extend_from_slice(&Sha256::digest(payload));
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file.write_all(&header)?;
    file.write_all(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            module: [1; 32],
            settings: [2; 32],
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nucleus-wasm-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        dir
    }

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
    fn round_trip_and_rejections() {
        let dir = tempdir("cache");
        let k = key();
        assert!(matches!(load(&dir, &k), Lookup::Missing));
        let path = store(&dir, &k, b"payload").unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match load(&dir, &k) {
            Lookup::Found { payload, .. } => assert_eq!(payload, b"payload"),
            _ => panic!("expected a hit"),
        }
        // A flipped payload byte fails the hash, and the file is removed.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(load(&dir, &k), Lookup::Rejected { .. }));
        assert!(!path.exists());
        // Another key's file under this name is foreign.
        let other = CacheKey {
            settings: [3; 32],
            ..k
        };
        store(&dir, &other, b"x").unwrap();
        fs::rename(dir.join(other.file_name()), &path).unwrap();
        assert!(matches!(load(&dir, &k), Lookup::Rejected { .. }));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn explicit_dir_must_be_private() {
        let dir = tempdir("unsafe");
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let r = resolve(&CacheMode::Dir(dir.clone()));
        assert!(matches!(r, Err(WasmError::CacheDirUnsafe { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! The compiled-module cache: files only this uid can write, each with a header that pins the
//! module and the engine settings, authenticated by a key only the runner reads.
//!
//! File: `<dir>/<sha256(module file)>-<sha256(engine settings)[..16]>.cwasm`, made of
//! `MAGIC (8) | module hash (32) | settings hash (32) | payload length (8, LE) | tag (32) |
//! payload` where the payload is `Module::serialize` (or `Component::serialize`) and the tag
//! is HMAC-SHA256, under the directory's key, of everything before the tag and the payload.
//! Written to a temporary file in the same directory, then renamed: a reader sees the old
//! file, the new one, or none. Not fsync'ed: a torn file after a crash fails its tag and is
//! recompiled.
//!
//! The key is [`KEY_FILE`] in the cache directory: 32 random bytes, created `O_EXCL |
//! O_NOFOLLOW` with mode `0600`, read `O_NOFOLLOW` and checked (a regular file of ours, mode
//! `0600`, 32 bytes). A file of the right name and header that was not written by a holder
//! of the key (a sandbox given a writable bind of the cache, say) fails the tag: it is
//! removed and the module recompiled, reported as [`CacheStatus::Replaced`]. The key is only
//! as secret as the directory: the runner keeps the directory out of every sandbox's view.

use crate::error::WasmError;
use crate::policy::CacheMode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version 2: authenticated (version 1 held a plain SHA-256, which anyone could recompute).
const MAGIC: &[u8; 8] = b"NUCWASM\x02";
const HEADER_LEN: usize = 8 + 32 + 32 + 8 + 32;
/// Where the tag sits in the header.
const TAG_AT: usize = HEADER_LEN - 32;
/// The name of the key file in the cache directory.
pub(crate) const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;
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
    /// A cache file was there but rejected (corrupt, for another module or engine, or not
    /// written by this cache's key holder: a planted file); the module was compiled and the
    /// file replaced. The report's note says why.
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

/// The cache directory's MAC key, read (or created) and checked.
pub(crate) struct MacKey([u8; KEY_LEN]);

impl Drop for MacKey {
    /// The key does not outlive its use in this process's memory (which a wasm sandbox
    /// inherits: it runs without `execve`).
    fn drop(&mut self) {
        for b in &mut self.0 {
            // SAFETY: `b` is a live, aligned byte of our own array.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// The key of `dir`: read when it is there and sound; created when it is missing; a key file
/// that fails a check (a link, another owner, a loose mode, a wrong size) is removed and a
/// new one made, which turns every existing entry into a rejected one.
pub(crate) fn mac_key(dir: &Path) -> io::Result<MacKey> {
    let path = dir.join(KEY_FILE);
    for _ in 0..3 {
        match read_key(&path) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => {}
            Err(_) => {
                // Not ours, or not sound: replaced.
                fs::remove_file(&path).or_else(|e| match e.kind() {
                    io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })?;
            }
        }
        match create_key(dir, &path) {
            Ok(key) => return Ok(key),
            // Another runner made it first: read theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} keeps changing under us",
        path.display()
    )))
}

/// The key at `path`; `None` when there is none; an error when the file is not sound.
fn read_key(path: &Path) -> io::Result<Option<MacKey>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let bad = |what: &str| io::Error::other(format!("{}: {what}", path.display()));
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.uid() != crate::sys::geteuid() {
        return Err(bad("owned by another user"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(bad("readable or writable by others than its owner"));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(bad("not a key"));
    }
    let mut key = MacKey([0u8; KEY_LEN]);
    (&file).read_exact(&mut key.0)?;
    Ok(Some(key))
}

/// Makes a new random key: written to a temporary file created `O_EXCL | O_NOFOLLOW`, mode
/// `0600`, then linked to `path` (which fails if `path` exists: two runners never clobber
/// each other's key, and no reader sees a partial one).
fn create_key(dir: &Path, path: &Path) -> io::Result<MacKey> {
    let mut key = MacKey([0u8; KEY_LEN]);
    crate::sys::random(&mut key.0)?;
    let tmp = temp_name(dir, "key");
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key.0));
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    linked.map(|()| key)
}

/// A fresh name in `dir` for a temporary file.
fn temp_name(dir: &Path, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(".tmp-{what}-{}-{nanos}", std::process::id()))
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts` under `key`.
fn hmac(key: &MacKey, parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for (i, k) in key.0.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Equality that takes the same time wherever the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The header of a payload, tag included.
fn header(key: &MacKey, id: &CacheKey, payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&id.module);
    header.extend_from_slice(&id.settings);
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let tag = hmac(key, &[&header, payload]);
    header.extend_from_slice(&tag);
    header
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

/// Reads and verifies the cache file for `id`. A file that fails any check is removed.
pub(crate) fn load(dir: &Path, key: &MacKey, id: &CacheKey) -> Lookup {
    let path = dir.join(id.file_name());
    let result = read_verified(&path, key, id);
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
fn read_verified(path: &Path, key: &MacKey, id: &CacheKey) -> Result<Option<Vec<u8>>, String> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
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
    verify(bytes, key, id).map(Some)
}

/// Checks the header against `id` and the tag against the key.
fn verify(mut bytes: Vec<u8>, key: &MacKey, id: &CacheKey) -> Result<Vec<u8>, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("no nucleus-wasm header (or an older format)".into());
    }
    if bytes[8..40] != id.module || bytes[40..72] != id.settings {
        return Err("header names another module or engine".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[72..80]);
    if u64::from_le_bytes(len) != (bytes.len() - HEADER_LEN) as u64 {
        return Err("payload length differs from the header".into());
    }
    let payload = bytes.split_off(HEADER_LEN);
    let tag = hmac(key, &[&bytes[..TAG_AT], &payload]);
    if !same(&tag, &bytes[TAG_AT..HEADER_LEN]) {
        return Err("authentication tag does not match: not written by this runner (the file was altered or planted)".into());
    }
    Ok(payload)
}

/// Writes `payload` for `id` atomically (temporary file, then rename), mode `0600`.
pub(crate) fn store(
    dir: &Path,
    key: &MacKey,
    id: &CacheKey,
    payload: &[u8],
) -> io::Result<PathBuf> {
    let path = dir.join(id.file_name());
    let tmp = temp_name(dir, "entry");
    let result = write_file(&tmp, key, id, payload).and_then(|()| fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

fn write_file(tmp: &Path, key: &MacKey, id: &CacheKey, payload: &[u8]) -> io::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    file.write_all(&header(key, id, payload))?;
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
    fn hmac_matches_rfc_4231() {
        // Test case 1: a 20-byte key, zero-padded as HMAC pads it anyway.
        let mut k = [0u8; KEY_LEN];
        k[..20].fill(0x0b);
        assert_eq!(
            hex(&hmac(&MacKey(k), &[b"Hi ", b"There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let dir = tempdir("cache");
        let mac = mac_key(&dir).unwrap();
        let meta = fs::symlink_metadata(dir.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        // The same key next time.
        assert_eq!(mac_key(&dir).unwrap().0, mac.0);
        let k = key();
        assert!(matches!(load(&dir, &mac, &k), Lookup::Missing));
        let path = store(&dir, &mac, &k, b"payload").unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match load(&dir, &mac, &k) {
            Lookup::Found { payload, .. } => assert_eq!(payload, b"payload"),
            _ => panic!("expected a hit"),
        }
        // A flipped payload byte fails the tag, and the file is removed.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(load(&dir, &mac, &k), Lookup::Rejected { .. }));
        assert!(!path.exists());
        // Another key's file under this name is foreign.
        let other = CacheKey {
            settings: [3; 32],
            ..k
        };
        store(&dir, &mac, &other, b"x").unwrap();
        fs::rename(dir.join(other.file_name()), &path).unwrap();
        assert!(matches!(load(&dir, &mac, &k), Lookup::Rejected { .. }));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_entry_fails_without_the_key() {
        let dir = tempdir("planted");
        let mac = mac_key(&dir).unwrap();
        let k = key();
        // Everything a forger without the key can do: a well-formed header for this module,
        // tagged under another key.
        let forged = MacKey([9; KEY_LEN]);
        let path = store(&dir, &forged, &k, b"other native code").unwrap();
        match load(&dir, &mac, &k) {
            Lookup::Rejected { reason } => assert!(reason.contains("authentication"), "{reason}"),
            _ => panic!("a forged entry was accepted"),
        }
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unsound_key_file_is_replaced() {
        let dir = tempdir("badkey");
        let first = mac_key(&dir).unwrap();
        let path = dir.join(KEY_FILE);
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let second = mac_key(&dir).unwrap();
        assert_ne!(first.0, second.0);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A link is not followed, but replaced.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        mac_key(&dir).unwrap();
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
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

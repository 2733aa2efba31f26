//! The cache entries: one file per module and engine, with an authenticated header.

use super::dir::{open_existing, temp_name};
use super::key::{hmac, same, MacKey};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version 2: authenticated (version 1 held a plain SHA-256, which anyone could recompute).
const MAGIC: &[u8; 8] = b"NUCWASM\x02";
const HEADER_LEN: usize = 8 + 32 + 32 + 8 + 32;
/// Where the tag sits in the header.
const TAG_AT: usize = HEADER_LEN - 32;
/// Bigger files are not ours: rejected before reading them whole.
const MAX_FILE: u64 = 1 << 30;

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

/// The header of a payload, tag included.
pub(crate) fn header(key: &MacKey, id: &CacheKey, payload: &[u8]) -> Vec<u8> {
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
    let Some(file) = open_existing(path).map_err(|e| format!("cannot open: {e}"))? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0
    {
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
pub(crate) fn verify(mut bytes: Vec<u8>, key: &MacKey, id: &CacheKey) -> Result<Vec<u8>, String> {
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
    use crate::cache::key::{mac_key, KEY_LEN};
    use nucleus_test_support::TempDir;

    fn key() -> CacheKey {
        CacheKey {
            module: [1; 32],
            settings: [2; 32],
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let dir = TempDir::new("wasm-cache");
        let mac = mac_key(&dir).unwrap();
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
    }

    #[test]
    fn a_planted_entry_fails_without_the_key() {
        let dir = TempDir::new("wasm-planted");
        let mac = mac_key(&dir).unwrap();
        let k = key();
        // Everything a forger without the key can do: a well-formed header for this module,
        // tagged under another key.
        let forged = MacKey::from_bytes([9; KEY_LEN]);
        let path = store(&dir, &forged, &k, b"other native code").unwrap();
        match load(&dir, &mac, &k) {
            Lookup::Rejected { reason } => assert!(reason.contains("authentication"), "{reason}"),
            _ => panic!("a forged entry was accepted"),
        }
        assert!(!path.exists());
    }
}

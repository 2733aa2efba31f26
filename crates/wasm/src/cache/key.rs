//! The cache directory's key, and the HMAC it keys.

use super::dir::{open_existing, temp_name};
use sha2::{Digest, Sha256};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The name of the key file in the cache directory.
pub(super) const KEY_FILE: &str = "cache.key";
pub(super) const KEY_LEN: usize = 32;

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
    let Some(file) = open_existing(path)? else {
        return Ok(None);
    };
    let meta = file.metadata()?;
    let bad = |what: &str| io::Error::other(format!("{}: {what}", path.display()));
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
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

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts` under `key`.
pub(super) fn hmac(key: &MacKey, parts: &[&[u8]]) -> [u8; 32] {
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
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(any(test, feature = "fuzzing"))]
impl MacKey {
    /// A key of these bytes, as a forger would make one (or the fuzzer).
    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> MacKey {
        MacKey(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nucleus_test_support::TempDir;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1: a 20-byte key, zero-padded as HMAC pads it anyway.
        let mut k = [0u8; KEY_LEN];
        k[..20].fill(0x0b);
        let tag = hmac(&MacKey(k), &[b"Hi ", b"There"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn the_key_file_is_private_and_kept() {
        let dir = TempDir::new("wasm-key");
        let mac = mac_key(&dir).unwrap();
        let meta = fs::symlink_metadata(dir.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        // The same key next time.
        assert_eq!(mac_key(&dir).unwrap().0, mac.0);
    }

    #[test]
    fn an_unsound_key_file_is_replaced() {
        let dir = TempDir::new("wasm-badkey");
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
    }
}

//! Not an API: the cache file's header check, exposed (cargo feature `fuzzing`) only so that
//! the `nucleus-fuzz` crate can feed it untrusted bytes. No stability promise; nothing else
//! may use it.

use crate::cache::{header, verify, CacheKey, MacKey};

/// What `load` does with a cache file's bytes once read: checks the magic, the module and
/// settings hashes, the payload length and the tag under `key`; returns the payload or why
/// the file is rejected.
pub fn verify_entry(
    bytes: Vec<u8>,
    key: [u8; 32],
    module: [u8; 32],
    settings: [u8; 32],
) -> Result<Vec<u8>, String> {
    verify(
        bytes,
        &MacKey::from_bytes(key),
        &CacheKey { module, settings },
    )
}

/// The bytes `store` writes for `payload`: header, tag, payload.
pub fn encode_entry(
    key: [u8; 32],
    module: [u8; 32],
    settings: [u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    let mut bytes = header(
        &MacKey::from_bytes(key),
        &CacheKey { module, settings },
        payload,
    );
    bytes.extend_from_slice(payload);
    bytes
}

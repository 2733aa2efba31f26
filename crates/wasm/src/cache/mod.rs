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
//! The key is `cache.key` in the cache directory: 32 random bytes, created `O_EXCL |
//! O_NOFOLLOW` with mode `0600`, read `O_NOFOLLOW` and checked (a regular file of ours, mode
//! `0600`, 32 bytes). A file of the right name and header that was not written by a holder
//! of the key (a sandbox given a writable bind of the cache, say) fails the tag: it is
//! removed and the module recompiled, reported as [`CacheStatus::Replaced`]. The key is only
//! as secret as the directory: the runner keeps the directory out of every sandbox's view.

mod dir;
mod entry;
mod key;

use serde::{Deserialize, Serialize};

pub use dir::default_cache_dir;
pub(crate) use dir::{resolve, Resolved};
#[cfg(feature = "fuzzing")]
pub(crate) use entry::{header, verify};
pub(crate) use entry::{hex, load, store, CacheKey, Lookup};
pub(crate) use key::{mac_key, MacKey};

/// What the cache did for this preparation.
///
/// ```
/// use nucleus_wasm::CacheStatus;
/// assert_eq!(serde_json::to_string(&CacheStatus::Replaced)?, r#""replaced""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
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

//! The crate's `unsafe`: loading compiled code, and one libc call.

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The effective uid, which must own the cache.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid takes no argument and cannot fail.
    unsafe { libc::geteuid() }
}

/// Loads a compiled core module.
///
/// Only call with bytes this crate serialized itself: the caller checks the cache file's
/// owner, mode, header and SHA-256 of `bytes` before (see `cache::load`).
pub(crate) fn deserialize_module(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: `bytes` is the output of `Module::serialize` by this crate, checked against the
    // SHA-256 recorded when it was written, in a directory only our uid can write; wasmtime
    // checks the engine compatibility itself.
    unsafe { Module::deserialize(engine, bytes) }
}

/// Loads a compiled component; same contract as [`deserialize_module`].
pub(crate) fn deserialize_component(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: as in `deserialize_module`: our own `Component::serialize` output, hash-checked.
    unsafe { Component::deserialize(engine, bytes) }
}

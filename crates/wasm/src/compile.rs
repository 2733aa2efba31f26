//! From the module's bytes to compiled code: the engine, WAT or binary, core module or
//! component, compiled here or loaded from bytes we serialized. Used by preparation and by
//! the compile helper alike.

use crate::error::WasmError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module};

/// What kind of WebAssembly program it is.
///
/// ```
/// use nucleus_wasm::ModuleKind;
/// assert_eq!(serde_json::to_string(&ModuleKind::Component)?, r#""component""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleKind {
    /// A core module for WASI preview 1 (`wasi_snapshot_preview1`), run through `_start`.
    Core,
    /// A component for WASI preview 2 (`wasi:cli/run`).
    Component,
}

/// A proposal's switch on wasmtime's `Config`.
type Switch = fn(&mut Config, bool) -> &mut Config;

/// The WebAssembly proposals the engine enables, by their proposal names: every one wasmtime 48
/// ships as stable (on by default) for Cranelift on x86_64 and aarch64, so that what current
/// toolchains emit loads — C++ exceptions (LLVM, Emscripten, wasi-sdk), tail calls, typed
/// function references and GC (Go, Kotlin, Dart), and the rest of Wasm 3.0. Off: what wasmtime
/// does not call stable (wide arithmetic, custom page sizes, stack switching, shared-everything
/// threads). Listed by `doctor`, and part of the compiled-module cache key.
pub const PROPOSALS: [(&str, Switch); 17] = [
    ("mutable-global", mutable_global),
    ("saturating-float-to-int", saturating_float_to_int),
    ("sign-extension", sign_extension),
    ("multi-value", Config::wasm_multi_value),
    ("bulk-memory", Config::wasm_bulk_memory),
    ("reference-types", Config::wasm_reference_types),
    ("simd", Config::wasm_simd),
    ("relaxed-simd", Config::wasm_relaxed_simd),
    ("threads", Config::wasm_threads),
    ("tail-call", Config::wasm_tail_call),
    ("extended-const", Config::wasm_extended_const),
    ("multi-memory", Config::wasm_multi_memory),
    ("memory64", Config::wasm_memory64),
    ("function-references", Config::wasm_function_references),
    ("gc", Config::wasm_gc),
    ("exceptions", Config::wasm_exceptions),
    ("component-model", Config::wasm_component_model),
];

// The Wasm 2.0 proposals without a switch of their own on `Config`.
fn mutable_global(c: &mut Config, on: bool) -> &mut Config {
    c.wasm_features(wasmtime::WasmFeatures::MUTABLE_GLOBAL, on)
}
fn saturating_float_to_int(c: &mut Config, on: bool) -> &mut Config {
    c.wasm_features(wasmtime::WasmFeatures::SATURATING_FLOAT_TO_INT, on)
}
fn sign_extension(c: &mut Config, on: bool) -> &mut Config {
    c.wasm_features(wasmtime::WasmFeatures::SIGN_EXTENSION, on)
}

/// The names of [`PROPOSALS`], for reports.
///
/// ```
/// assert!(nucleus_wasm::proposals().contains(&"exceptions"));
/// ```
pub fn proposals() -> Vec<&'static str> {
    PROPOSALS.iter().map(|(name, _)| *name).collect()
}

/// The engine: serial compilation (no threads: the runner must stay single-threaded until it
/// clones), no copy-on-write memory images (they would keep a memfd open across the runner's
/// fd cleanup), fuel and epoch checks compiled in only when asked for (they cost speed), and
/// every proposal of [`PROPOSALS`].
pub(crate) fn engine(fuel: bool, epoch: bool) -> Result<Engine, WasmError> {
    engine_with(fuel, epoch, false)
}

/// The same engine compiling on every core, for the forked compile helper only: its threads
/// start and end in the helper. Its artifacts load in [`engine`]'s (parallelism changes no
/// setting the artifact records).
pub(crate) fn compiling_engine(fuel: bool, epoch: bool) -> Result<Engine, WasmError> {
    engine_with(fuel, epoch, true)
}

fn engine_with(fuel: bool, epoch: bool, parallel: bool) -> Result<Engine, WasmError> {
    let mut config = Config::new();
    config
        .consume_fuel(fuel)
        .epoch_interruption(epoch)
        .parallel_compilation(parallel)
        .memory_init_cow(false);
    for (_, switch) in PROPOSALS {
        switch(&mut config, true);
    }
    Engine::new(&config).map_err(|source| WasmError::Engine { source })
}

/// SHA-256 of wasmtime's compatibility hash (its version and every setting that changes
/// the code) and this crate's version.
pub(crate) fn settings_hash(engine: &Engine) -> [u8; 32] {
    use std::hash::Hash;
    struct ShaHasher(Sha256);
    impl std::hash::Hasher for ShaHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(concat!("nucleus-wasm ", env!("CARGO_PKG_VERSION")));
    // The proposals too, by name: an artifact compiled with another set is another entry.
    for (name, _) in PROPOSALS {
        h.0.update(name.as_bytes());
        h.0.update(b"\0");
    }
    h.0.finalize().into()
}

/// A compiled core module or component.
pub(crate) enum Compiled {
    Core(Module),
    Component(Component),
}

impl Compiled {
    pub(crate) fn kind(&self) -> ModuleKind {
        match self {
            Compiled::Core(_) => ModuleKind::Core,
            Compiled::Component(_) => ModuleKind::Component,
        }
    }

    pub(crate) fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Core(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        }
    }

    /// Loads bytes that [`Compiled::serialize`] made: only ever our helper's artifact or an
    /// authenticated cache entry (see `sys::deserialize_module`).
    pub(crate) fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Compiled> {
        match Engine::detect_precompiled(payload) {
            Some(wasmtime::Precompiled::Component) => {
                crate::sys::deserialize_component(engine, payload).map(Compiled::Component)
            }
            _ => crate::sys::deserialize_module(engine, payload).map(Compiled::Core),
        }
    }
}

/// Compiles `source` (binary or WAT text), timing it.
pub(crate) fn compile(
    engine: &Engine,
    source: &[u8],
    path: &Path,
) -> Result<(Compiled, Duration), WasmError> {
    let binary = to_binary(source, path)?;
    let start = Instant::now();
    let compile_err = |source| WasmError::Compile {
        path: path.to_owned(),
        source,
    };
    let compiled = if is_component(&binary) {
        Component::new(engine, &binary).map(Compiled::Component)
    } else {
        Module::new(engine, &binary).map(Compiled::Core)
    }
    .map_err(compile_err)?;
    Ok((compiled, start.elapsed()))
}

/// A component's preamble: `\0asm`, version 0x0d, layer 1 (a core module has version 1,
/// layer 0).
fn is_component(binary: &[u8]) -> bool {
    binary.starts_with(b"\0asm\x0d\0\x01\0")
}

/// The binary form: as is when it starts with `\0asm`, parsed when it looks like WAT.
pub(crate) fn to_binary<'a>(
    source: &'a [u8],
    path: &Path,
) -> Result<std::borrow::Cow<'a, [u8]>, WasmError> {
    if source.starts_with(b"\0asm") {
        return Ok(source.into());
    }
    sniff(source, path)?;
    wat::parse_bytes(source).map_err(|mut source| {
        source.set_path(path);
        WasmError::ParseWat {
            path: path.to_owned(),
            source,
        }
    })
}

/// Binary (`\0asm`) or text that looks like WAT; anything else is not wasm.
pub(crate) fn sniff(source: &[u8], path: &Path) -> Result<(), WasmError> {
    if source.starts_with(b"\0asm") {
        return Ok(());
    }
    let looks_like_text = std::str::from_utf8(source).is_ok_and(|text| {
        let t = text.trim_start();
        t.starts_with('(') || t.starts_with(";;") || t.starts_with("(;")
    });
    if !looks_like_text {
        return Err(WasmError::NotWasm {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_text_or_neither() {
        let p = Path::new("x");
        assert!(to_binary(b"\0asm\x01\0\0\0", p).is_ok());
        assert!(to_binary(b"  (module)", p).unwrap().starts_with(b"\0asm"));
        assert!(matches!(
            to_binary(b"\x7fELF\x02\x01", p),
            Err(WasmError::NotWasm { .. })
        ));
        assert!(matches!(
            to_binary(b"(module (func $f (bogus)))", p),
            Err(WasmError::ParseWat { .. })
        ));
    }
}

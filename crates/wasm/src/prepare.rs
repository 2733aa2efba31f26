//! The parent's half: read the module, compile it (or load it from the cache), link it
//! against the WASI host. Nothing here starts a thread or leaves a file descriptor open.

use crate::cache::{self, CacheKey, CacheStatus, Lookup, Resolved};
use crate::error::WasmError;
use crate::policy::{Preopen, WasmPolicy};
use crate::run::{Host, P2Ctx};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstancePre, Linker, Module, UnknownImportError};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;

/// What kind of WebAssembly program it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleKind {
    /// A core module for WASI preview 1 (`wasi_snapshot_preview1`), run through `_start`.
    Core,
    /// A component for WASI preview 2 (`wasi:cli/run`).
    Component,
}

/// What [`WasmPolicy::prepare`] did, for the runner's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PrepareReport {
    /// SHA-256 of the module file, lowercase hex.
    pub module_sha256: String,
    /// Core module or component.
    pub kind: ModuleKind,
    /// What the cache did.
    pub cache: CacheStatus,
    /// Why the cache was skipped or a file replaced.
    pub cache_note: Option<String>,
    /// Time spent compiling (zero on a cache hit), in milliseconds.
    pub compile_ms: f64,
}

/// The program, linked and ready to instantiate.
pub(crate) enum Program {
    Core(InstancePre<Host<WasiP1Ctx>>),
    Component(CommandPre<Host<P2Ctx>>),
}

/// A module compiled and linked in the parent, ready for [`PreparedWasm::run`] in the
/// sandboxed child.
pub struct PreparedWasm {
    pub(crate) engine: Engine,
    pub(crate) program: Program,
    pub(crate) policy: WasmPolicy,
    pub(crate) report: PrepareReport,
}

impl std::fmt::Debug for PreparedWasm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedWasm")
            .field("policy", &self.policy)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl PreparedWasm {
    /// What preparation did: module hash, kind, cache status, compile time.
    pub fn report(&self) -> &PrepareReport {
        &self.report
    }

    /// Whether the compiled module came from the cache (nothing was compiled).
    pub fn cache_hit(&self) -> bool {
        self.report.cache == CacheStatus::Hit
    }

    /// The preopens: the runner makes each `host` path visible in the sandbox at the same
    /// path (read-only when `read_only`) and allows it in Landlock, since [`PreparedWasm::run`]
    /// opens them there.
    pub fn preopens(&self) -> &[Preopen] {
        &self.policy.preopens
    }

    /// The policy this was prepared from.
    pub fn policy(&self) -> &WasmPolicy {
        &self.policy
    }
}

impl WasmPolicy {
    /// Reads, compiles (or loads from the cache) and links the module. Runs in the parent,
    /// before the sandbox is cloned: every configuration error surfaces here (a missing
    /// module or preopen, a file that is not wasm, an import the host lacks). Starts no
    /// thread (compilation is serial) and leaves no file descriptor open.
    ///
    /// ```no_run
    /// use nucleus_wasm::WasmPolicy;
    ///
    /// let prepared = WasmPolicy::new("hello.wasm").prepare()?;
    /// println!("cache hit: {}", prepared.cache_hit());
    /// # Ok::<(), nucleus_wasm::WasmError>(())
    /// ```
    pub fn prepare(&self) -> Result<PreparedWasm, WasmError> {
        self.validate()?;
        for p in &self.preopens {
            check_preopen(&p.host)?;
        }
        let source = std::fs::read(&self.module).map_err(|source| WasmError::ReadModule {
            path: self.module.clone(),
            source,
        })?;
        let engine = engine(self.fuel.is_some(), self.deadline.is_some())?;
        let key = CacheKey {
            module: Sha256::digest(&source).into(),
            settings: settings_hash(&engine),
        };
        let (compiled, cache, cache_note, compile_time) =
            self.compile_cached(&engine, &source, &key)?;
        let report = PrepareReport {
            module_sha256: cache::hex(&key.module),
            kind: compiled.kind(),
            cache,
            cache_note,
            compile_ms: compile_time.as_secs_f64() * 1000.0,
        };
        let program = link(&engine, compiled, &self.module)?;
        Ok(PreparedWasm {
            engine,
            program,
            policy: self.clone(),
            report,
        })
    }

    /// The compiled module, from the cache or compiled (and then stored).
    fn compile_cached(
        &self,
        engine: &Engine,
        source: &[u8],
        key: &CacheKey,
    ) -> Result<(Compiled, CacheStatus, Option<String>, Duration), WasmError> {
        let dir = match cache::resolve(&self.cache)? {
            Resolved::Off => {
                let (compiled, took) = compile(engine, source, &self.module)?;
                return Ok((compiled, CacheStatus::Off, None, took));
            }
            Resolved::Skipped(note) => {
                let (compiled, took) = compile(engine, source, &self.module)?;
                return Ok((compiled, CacheStatus::Skipped, Some(note), took));
            }
            Resolved::Dir(dir) => dir,
        };
        let mut status = CacheStatus::Stored;
        let mut note = None;
        match cache::load(&dir, key) {
            Lookup::Found { path, payload } => match Compiled::deserialize(engine, &payload) {
                Ok(compiled) => return Ok((compiled, CacheStatus::Hit, None, Duration::ZERO)),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    status = CacheStatus::Replaced;
                    note = Some(format!("cache file rejected by wasmtime: {e}"));
                }
            },
            Lookup::Rejected { reason } => {
                status = CacheStatus::Replaced;
                note = Some(format!("cache file rejected: {reason}"));
            }
            Lookup::Missing => {}
        }
        let (compiled, took) = compile(engine, source, &self.module)?;
        let stored = compiled
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|payload| cache::store(&dir, key, &payload).map_err(|e| e.to_string()));
        if let Err(e) = stored {
            status = CacheStatus::Skipped;
            note = Some(format!(
                "cannot write to the cache in {}: {e}",
                dir.display()
            ));
        }
        Ok((compiled, status, note, took))
    }
}

/// A preopen's host directory must exist now (in the parent's view).
fn check_preopen(host: &Path) -> Result<(), WasmError> {
    let meta = std::fs::metadata(host).map_err(|source| WasmError::PreopenMissing {
        path: host.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(WasmError::PreopenNotDirectory {
            path: host.to_owned(),
        });
    }
    Ok(())
}

/// The engine: serial compilation (no threads), no copy-on-write memory images (they would
/// keep a memfd open across the runner's fd cleanup), fuel and epoch checks compiled in only
/// when asked for (they cost speed).
pub(crate) fn engine(fuel: bool, epoch: bool) -> Result<Engine, WasmError> {
    let mut config = Config::new();
    config
        .consume_fuel(fuel)
        .epoch_interruption(epoch)
        .memory_init_cow(false)
        .wasm_component_model(true);
    Engine::new(&config).map_err(|source| WasmError::Engine { source })
}

/// SHA-256 of wasmtime's compatibility hash (its version and every setting that changes
/// the code) and this crate's version.
fn settings_hash(engine: &Engine) -> [u8; 32] {
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
    h.0.finalize().into()
}

/// A compiled core module or component.
pub(crate) enum Compiled {
    Core(Module),
    Component(Component),
}

impl Compiled {
    fn kind(&self) -> ModuleKind {
        match self {
            Compiled::Core(_) => ModuleKind::Core,
            Compiled::Component(_) => ModuleKind::Component,
        }
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Core(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        }
    }

    fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Compiled> {
        match Engine::detect_precompiled(payload) {
            Some(wasmtime::Precompiled::Component) => {
                crate::sys::deserialize_component(engine, payload).map(Compiled::Component)
            }
            _ => crate::sys::deserialize_module(engine, payload).map(Compiled::Core),
        }
    }
}

/// Compiles `source` (binary or WAT text), timing it.
fn compile(engine: &Engine, source: &[u8], path: &Path) -> Result<(Compiled, Duration), WasmError> {
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
fn to_binary<'a>(source: &'a [u8], path: &Path) -> Result<std::borrow::Cow<'a, [u8]>, WasmError> {
    if source.starts_with(b"\0asm") {
        return Ok(source.into());
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
    wat::parse_bytes(source).map_err(|mut source| {
        source.set_path(path);
        WasmError::ParseWat {
            path: path.to_owned(),
            source,
        }
    })
}

/// Links against the WASI host; a missing import is named.
fn link(engine: &Engine, compiled: Compiled, path: &Path) -> Result<Program, WasmError> {
    let link_err = |source: wasmtime::Error| WasmError::Link {
        path: path.to_owned(),
        source,
    };
    match compiled {
        Compiled::Core(module) => {
            let mut linker: Linker<Host<WasiP1Ctx>> = Linker::new(engine);
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |h| &mut h.wasi)
                .map_err(|source| WasmError::Engine { source })?;
            let pre = linker.instantiate_pre(&module).map_err(|e| {
                match e.downcast_ref::<UnknownImportError>() {
                    Some(u) => WasmError::MissingImport {
                        path: path.to_owned(),
                        module: u.module().to_owned(),
                        name: u.name().to_owned(),
                    },
                    None => link_err(e),
                }
            })?;
            if module.get_export("_start").is_none() {
                return Err(WasmError::NoStart {
                    path: path.to_owned(),
                });
            }
            Ok(Program::Core(pre))
        }
        Compiled::Component(component) => {
            let mut linker = wasmtime::component::Linker::<Host<P2Ctx>>::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)
                .map_err(|source| WasmError::Engine { source })?;
            let pre = linker.instantiate_pre(&component).map_err(link_err)?;
            CommandPre::new(pre)
                .map(Program::Component)
                .map_err(link_err)
        }
    }
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

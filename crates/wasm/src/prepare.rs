//! The parent's half: read the module, compile it (or load it from the cache), link it
//! against the WASI host. Nothing here starts a thread or leaves a file descriptor open; the
//! compile runs here, or in a forked helper (see [`crate::CompileHelper`]).

use crate::cache::{self, CacheKey, CacheStatus, Lookup, Resolved};
use crate::error::WasmError;
use crate::helper::CompileHelper;
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
    /// Time spent compiling (zero on a cache hit), in milliseconds; with a helper, from its
    /// fork to its artifact.
    pub compile_ms: f64,
    /// Peak memory of the compile, in bytes: the helper's peak resident set (`ru_maxrss`,
    /// which counts the pages it shares with the caller it was forked from). Zero when
    /// nothing was compiled, or the compile ran in this process (not measured).
    pub compile_peak_memory_bytes: u64,
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
        self.prepare_inner(None)
    }

    /// Like [`WasmPolicy::prepare`], but a module that must be compiled (no usable cache
    /// entry) is compiled in a forked helper process (see [`CompileHelper`]): its memory and
    /// time are the helper's, which the caller can contain (`helper.admit` moves it into a
    /// cgroup) and which is killed at `helper.timeout`. The time the compile took is taken
    /// from [`WasmPolicy::deadline`]: the guest gets what is left of it.
    ///
    /// The caller must be single-threaded (the helper is forked and allocates). A killed
    /// helper fails with [`WasmError::CompileKilled`]; the caller tells a memory limit from
    /// other signals (its cgroup knows).
    pub fn prepare_in_helper(&self, helper: &CompileHelper<'_>) -> Result<PreparedWasm, WasmError> {
        self.prepare_inner(Some(helper))
    }

    fn prepare_inner(&self, helper: Option<&CompileHelper<'_>>) -> Result<PreparedWasm, WasmError> {
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
        if helper.is_some() {
            // Cheap, and named here rather than by the helper.
            sniff(&source, &self.module)?;
        }
        let (compiled, cache, cache_note, built) = self
            .compile_cached(&engine, &source, &key, helper)
            .map_err(|mut e| {
                if let WasmError::CompileKilled { module_sha256, .. } = &mut e {
                    *module_sha256 = cache::hex(&key.module);
                }
                e
            })?;
        let report = PrepareReport {
            module_sha256: cache::hex(&key.module),
            kind: compiled.kind(),
            cache,
            cache_note,
            compile_ms: built.took.as_secs_f64() * 1000.0,
            compile_peak_memory_bytes: built.peak_memory_bytes,
        };
        let program = link(&engine, compiled, &self.module)?;
        let mut policy = self.clone();
        if helper.is_some() {
            // The compile counts against the run's time; at least a millisecond is left (a
            // helper that used it all was killed).
            policy.deadline = policy
                .deadline
                .map(|d| d.saturating_sub(built.took).max(Duration::from_millis(1)));
        }
        Ok(PreparedWasm {
            engine,
            program,
            policy,
            report,
        })
    }

    /// The compiled module, from the cache or compiled (and then stored).
    fn compile_cached(
        &self,
        engine: &Engine,
        source: &[u8],
        key: &CacheKey,
        helper: Option<&CompileHelper<'_>>,
    ) -> Result<(Compiled, CacheStatus, Option<String>, Built), WasmError> {
        let build = || Built::new(engine, source, &self.module, helper);
        let dir = match cache::resolve(&self.cache)? {
            Resolved::Off => {
                let mut built = build()?;
                let compiled = built.compiled(engine, &self.module)?;
                return Ok((compiled, CacheStatus::Off, None, built));
            }
            Resolved::Skipped(note) => {
                let mut built = build()?;
                let compiled = built.compiled(engine, &self.module)?;
                return Ok((compiled, CacheStatus::Skipped, Some(note), built));
            }
            Resolved::Dir(dir) => dir,
        };
        let mac = match cache::mac_key(&dir) {
            Ok(mac) => mac,
            Err(e) => {
                let mut built = build()?;
                let compiled = built.compiled(engine, &self.module)?;
                let note = format!("cannot use the cache key in {}: {e}", dir.display());
                return Ok((compiled, CacheStatus::Skipped, Some(note), built));
            }
        };
        let mut status = CacheStatus::Stored;
        let mut note = None;
        match cache::load(&dir, &mac, key) {
            Lookup::Found { path, payload } => match Compiled::deserialize(engine, &payload) {
                Ok(compiled) => return Ok((compiled, CacheStatus::Hit, None, Built::nothing())),
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
        let mut built = build()?;
        let compiled = built.compiled(engine, &self.module)?;
        let stored = built
            .artifact(&compiled)
            .map_err(|e| e.to_string())
            .and_then(|payload| cache::store(&dir, &mac, key, payload).map_err(|e| e.to_string()));
        if let Err(e) = stored {
            status = CacheStatus::Skipped;
            note = Some(format!(
                "cannot write to the cache in {}: {e}",
                dir.display()
            ));
        }
        Ok((compiled, status, note, built))
    }
}

/// A compile's result: compiled here, or serialized by a helper; with its cost.
pub(crate) struct Built {
    /// Compiled in this process.
    here: Option<Compiled>,
    /// Serialized (by the helper, or here for the cache).
    artifact: Option<Vec<u8>>,
    took: Duration,
    peak_memory_bytes: u64,
}

impl Built {
    /// Nothing compiled (a cache hit).
    fn nothing() -> Built {
        Built {
            here: None,
            artifact: None,
            took: Duration::ZERO,
            peak_memory_bytes: 0,
        }
    }

    fn new(
        engine: &Engine,
        source: &[u8],
        path: &Path,
        helper: Option<&CompileHelper<'_>>,
    ) -> Result<Built, WasmError> {
        match helper {
            None => {
                let (compiled, took) = compile(engine, source, path)?;
                Ok(Built {
                    here: Some(compiled),
                    artifact: None,
                    took,
                    peak_memory_bytes: 0,
                })
            }
            Some(helper) => {
                let out = crate::helper::compile(helper, engine, source, path)?;
                Ok(Built {
                    here: None,
                    artifact: Some(out.artifact),
                    took: out.elapsed,
                    peak_memory_bytes: out.peak_memory_bytes,
                })
            }
        }
    }

    /// The compiled module: taken as is, or loaded from the helper's artifact.
    fn compiled(&mut self, engine: &Engine, path: &Path) -> Result<Compiled, WasmError> {
        if let Some(compiled) = self.here.take() {
            return Ok(compiled);
        }
        let artifact = self.artifact.as_deref().unwrap_or_default();
        Compiled::deserialize(engine, artifact).map_err(|source| WasmError::Compile {
            path: path.to_owned(),
            source,
        })
    }

    /// The serialized module, for the cache.
    fn artifact(&mut self, compiled: &Compiled) -> wasmtime::Result<&[u8]> {
        if self.artifact.is_none() {
            self.artifact = Some(compiled.serialize()?);
        }
        Ok(self.artifact.as_deref().unwrap_or_default())
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
pub(crate) fn is_component(binary: &[u8]) -> bool {
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
fn sniff(source: &[u8], path: &Path) -> Result<(), WasmError> {
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

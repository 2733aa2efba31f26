//! The parent's half: read the module, compile it (or load it from the cache), link it
//! against the WASI host. Nothing here starts a thread or leaves a file descriptor open; the
//! compile runs here, or in a forked helper (see [`crate::CompileHelper`]).

use crate::cache::{self, CacheKey, CacheStatus, Lookup, MacKey, Resolved};
use crate::compile::{self, Compiled};
use crate::error::WasmError;
use crate::helper::{self, CompileHelper};
use crate::host;
use crate::policy::WasmPolicy;
use crate::prepared::{PrepareReport, PreparedWasm};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use wasmtime::Engine;

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
    ///
    /// ```no_run
    /// use nucleus_wasm::{CompileHelper, WasmPolicy};
    /// use std::time::Duration;
    ///
    /// let helper = CompileHelper::new(Some(Duration::from_secs(5)));
    /// let prepared = WasmPolicy::new("big.wasm").prepare_in_helper(&helper)?;
    /// println!("peak {} bytes", prepared.report().compile_peak_memory_bytes);
    /// # Ok::<(), nucleus_wasm::WasmError>(())
    /// ```
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
        let engine = compile::engine(self.fuel.is_some(), self.deadline.is_some())?;
        let key = CacheKey {
            module: Sha256::digest(&source).into(),
            settings: compile::settings_hash(&engine),
        };
        if helper.is_some() {
            // Cheap, and named here rather than by the helper.
            compile::sniff(&source, &self.module)?;
        }
        let cached = self
            .compile_cached(&engine, &source, &key, helper)
            .map_err(|mut e| {
                if let WasmError::CompileKilled { module_sha256, .. } = &mut e {
                    *module_sha256 = cache::hex(&key.module);
                }
                e
            })?;
        let report = PrepareReport {
            module_sha256: cache::hex(&key.module),
            kind: cached.compiled.kind(),
            cache: cached.status,
            cache_note: cached.note,
            compile_ms: cached.built.took.as_secs_f64() * 1000.0,
            compile_peak_memory_bytes: cached.built.peak_memory_bytes,
        };
        let program = host::link(&engine, cached.compiled, &self.module)?;
        let mut policy = self.clone();
        if helper.is_some() {
            // The compile counts against the run's time; at least a millisecond is left (a
            // helper that used it all was killed).
            let took = cached.built.took;
            policy.deadline = policy
                .deadline
                .map(|d| d.saturating_sub(took).max(Duration::from_millis(1)));
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
    ) -> Result<Cached, WasmError> {
        let build = || {
            let flags = (self.fuel.is_some(), self.deadline.is_some());
            Built::new(engine, flags, source, &self.module, helper)
        };
        let uncached = |status, note| Cached::fresh(engine, build()?, status, note, &self.module);
        let dir = match cache::resolve(&self.cache)? {
            Resolved::Off => return uncached(CacheStatus::Off, None),
            Resolved::Skipped(note) => return uncached(CacheStatus::Skipped, Some(note)),
            Resolved::Dir(dir) => dir,
        };
        let mac = match cache::mac_key(&dir) {
            Ok(mac) => mac,
            Err(e) => {
                let note = format!("cannot use the cache key in {}: {e}", dir.display());
                return uncached(CacheStatus::Skipped, Some(note));
            }
        };
        let (status, note) = match cache::load(&dir, &mac, key) {
            Lookup::Found { path, payload } => match Compiled::deserialize(engine, &payload) {
                Ok(compiled) => return Ok(Cached::hit(compiled)),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    let note = format!("cache file rejected by wasmtime: {e}");
                    (CacheStatus::Replaced, Some(note))
                }
            },
            Lookup::Rejected { reason } => (
                CacheStatus::Replaced,
                Some(format!("cache file rejected: {reason}")),
            ),
            Lookup::Missing => (CacheStatus::Stored, None),
        };
        let mut cached = uncached(status, note)?;
        if let Err(e) = cached.store(&dir, &mac, key) {
            cached.status = CacheStatus::Skipped;
            cached.note = Some(format!(
                "cannot write to the cache in {}: {e}",
                dir.display()
            ));
        }
        Ok(cached)
    }
}

/// The compiled module and what the cache did for it.
struct Cached {
    compiled: Compiled,
    status: CacheStatus,
    note: Option<String>,
    built: Built,
}

impl Cached {
    /// From the cache: nothing was compiled.
    fn hit(compiled: Compiled) -> Cached {
        Cached {
            compiled,
            status: CacheStatus::Hit,
            note: None,
            built: Built::nothing(),
        }
    }

    /// Compiled by `built`, with what the cache did.
    fn fresh(
        engine: &Engine,
        mut built: Built,
        status: CacheStatus,
        note: Option<String>,
        path: &Path,
    ) -> Result<Cached, WasmError> {
        let compiled = built.compiled(engine, path)?;
        Ok(Cached {
            compiled,
            status,
            note,
            built,
        })
    }

    /// Writes the serialized module to the cache in `dir`.
    fn store(&mut self, dir: &Path, mac: &MacKey, key: &CacheKey) -> Result<(), String> {
        let payload = self
            .built
            .artifact(&self.compiled)
            .map_err(|e| e.to_string())?;
        cache::store(dir, mac, key, payload)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A compile's result: compiled here, or serialized by a helper; with its cost.
struct Built {
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

    /// Compiles here with `engine`, or in the helper with the same settings (`fuel`,
    /// `epoch`) on every core.
    fn new(
        engine: &Engine,
        (fuel, epoch): (bool, bool),
        source: &[u8],
        path: &Path,
        helper: Option<&CompileHelper<'_>>,
    ) -> Result<Built, WasmError> {
        match helper {
            None => {
                let (compiled, took) = compile::compile(engine, source, path)?;
                Ok(Built {
                    here: Some(compiled),
                    artifact: None,
                    took,
                    peak_memory_bytes: 0,
                })
            }
            Some(helper) => {
                let compiling = compile::compiling_engine(fuel, epoch)?;
                let out = helper::compile(helper, &compiling, source, path)?;
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

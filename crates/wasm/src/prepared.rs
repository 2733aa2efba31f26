//! What preparation hands over to the run: the engine, the linked program, the policy, and
//! the report of what preparation did.

use crate::cache::CacheStatus;
use crate::compile::ModuleKind;
use crate::host::Program;
use crate::policy::{Preopen, WasmPolicy};
use serde::{Deserialize, Serialize};
use wasmtime::Engine;

/// What [`WasmPolicy::prepare`] did, for the runner's report.
///
/// ```no_run
/// use nucleus_wasm::{CacheStatus, WasmPolicy};
///
/// let prepared = WasmPolicy::new("hello.wasm").prepare()?;
/// let report = prepared.report();
/// if report.cache == CacheStatus::Skipped {
///     eprintln!("cache not used: {}", report.cache_note.as_deref().unwrap_or(""));
/// }
/// # Ok::<(), nucleus_wasm::WasmError>(())
/// ```
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

/// A module compiled and linked in the parent, ready for [`PreparedWasm::run`] in the
/// sandboxed child.
///
/// ```no_run
/// let prepared = nucleus_wasm::WasmPolicy::new("hello.wasm").prepare()?;
/// for p in prepared.preopens() {
///     println!("make {} visible at the same path", p.host.display());
/// }
/// # Ok::<(), nucleus_wasm::WasmError>(())
/// ```
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

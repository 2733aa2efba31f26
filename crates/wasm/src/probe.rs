//! What this machine supports for the WASI host.

use crate::cache::default_cache_dir;
use crate::compile::engine;
use crate::error::WasmError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The WASI host's view of this machine, for `nucleus-run doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WasmProbe {
    /// The host's architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Whether the engine could be created and a module compiled (the kernel allows
    /// executable memory for the JIT).
    pub jit: bool,
    /// Why not, when `jit` is false.
    pub error: Option<String>,
    /// The WASI versions the host provides.
    pub wasi: Vec<String>,
    /// The WebAssembly proposals the engine enables ([`crate::PROPOSALS`]).
    pub proposals: Vec<String>,
    /// The default cache directory, when `XDG_CACHE_HOME` or `HOME` gives one.
    pub default_cache_dir: Option<PathBuf>,
}

/// Creates an engine and compiles an empty module: the JIT works on this machine or it does
/// not. Starts no thread; safe in the parent.
///
/// ```
/// let p = nucleus_wasm::probe();
/// println!("{}", serde_json::to_string(&p)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn probe() -> WasmProbe {
    let result = engine(false, false).and_then(|engine| {
        wasmtime::Module::new(&engine, b"\0asm\x01\0\0\0").map_err(|source| WasmError::Compile {
            path: PathBuf::from("(empty module)"),
            source,
        })
    });
    WasmProbe {
        arch: std::env::consts::ARCH.to_owned(),
        jit: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
        wasi: vec!["preview1".into(), "preview2".into()],
        proposals: crate::proposals().into_iter().map(str::to_owned).collect(),
        default_cache_dir: default_cache_dir(),
    }
}

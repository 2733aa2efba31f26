//! The WASI part of an Envelope: `nucleus-run --wasm MODULE -- ARGS`
//! (what is run and its host-side controls; `wasm_host.rs` prepares and
//! runs it).

use nucleus_wasm::{CacheMode, Preopen};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The WASI module and its host-side controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WasmSettings {
    /// The module: `.wasm` (core module or component) or `.wat` text.
    pub module: PathBuf,
    /// Directories the guest may reach (`--dir HOST[:GUEST][:ro]`); each is
    /// also bound into the sandbox's view at its host path.
    #[serde(default)]
    pub preopens: Vec<Preopen>,
    /// Fuel: roughly the number of wasm instructions allowed (`--wasm-fuel`).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Cap on linear memory in bytes, tables in proportion (`--wasm-max-memory`).
    #[serde(default)]
    pub max_memory: Option<u64>,
    /// The compiled-module cache (`--wasm-cache DIR|off`; default under the
    /// user's cache directory).
    #[serde(default)]
    pub cache: CacheMode,
}

impl WasmSettings {
    /// Settings for `module` with no preopens and no limits.
    pub fn new(module: impl Into<PathBuf>) -> Self {
        Self {
            module: module.into(),
            preopens: Vec::new(),
            fuel: None,
            max_memory: None,
            cache: CacheMode::Default,
        }
    }
}

//! The error type of `nucleus-wasm`.

use std::path::PathBuf;

/// What went wrong checking, compiling, caching or starting a WASI module.
///
/// What the guest itself does (exit codes, traps, running out of fuel or time) is not an
/// error: it is a [`crate::WasmOutcome`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The policy names no module.
    #[error("no wasm module given")]
    EmptyModulePath,
    /// An argument holds a NUL byte.
    #[error("wasm argument {arg:?} contains a NUL byte")]
    NulInArgument {
        /// The argument.
        arg: String,
    },
    /// An environment variable whose name is empty or holds `=` or NUL (or whose value holds
    /// NUL).
    #[error("invalid environment variable {name:?} for the wasm guest")]
    InvalidEnv {
        /// The name given.
        name: String,
    },
    /// A preopen that is not `HOST[:GUEST][:ro]`.
    #[error("invalid preopen {spec:?}: {reason}")]
    InvalidPreopen {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A limit of zero, which would stop the guest before it starts.
    #[error("the wasm {limit} limit must be greater than zero")]
    ZeroLimit {
        /// `fuel`, `max-memory` or `deadline`.
        limit: &'static str,
    },
    /// A cache directory given as an empty path.
    #[error("the wasm cache directory is an empty path")]
    EmptyCacheDir,
    /// A preopen's host directory is missing or cannot be reached.
    #[error("preopen {path} cannot be used (it must be an existing directory)")]
    PreopenMissing {
        /// The host path.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A preopen's host path is not a directory.
    #[error("preopen {path} is not a directory")]
    PreopenNotDirectory {
        /// The host path.
        path: PathBuf,
    },
    /// The module file could not be read.
    #[error("failed to read wasm module {path}")]
    ReadModule {
        /// The path given.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither WebAssembly binary nor WebAssembly text.
    #[error("{path} is not a WebAssembly module (no \\0asm header, and not WAT text)")]
    NotWasm {
        /// The path given.
        path: PathBuf,
    },
    /// The file looks like WAT text but does not parse.
    #[error("failed to parse WebAssembly text {path}")]
    ParseWat {
        /// The path given.
        path: PathBuf,
        /// The parser's answer, with line and column.
        #[source]
        source: wat::Error,
    },
    /// The engine could not be configured on this machine.
    #[error("failed to create the wasm engine")]
    Engine {
        /// Wasmtime's answer.
        #[source]
        source: wasmtime::Error,
    },
    /// The module does not validate or compile.
    #[error("failed to compile wasm module {path}")]
    Compile {
        /// The path given.
        path: PathBuf,
        /// Wasmtime's answer.
        #[source]
        source: wasmtime::Error,
    },
    /// The compile helper was killed before it produced the module: at the compile's timeout,
    /// or by a signal (the kernel's OOM killer when a memory limit admits it: `SIGKILL`).
    #[error("compiling wasm module {path} was stopped after {} ms (peak memory {peak_memory_bytes} bytes): {}", elapsed.as_millis(), killed_how(*timed_out, *signal))]
    CompileKilled {
        /// The path given.
        path: PathBuf,
        /// The helper's timeout ran out (and the helper was killed for it).
        timed_out: bool,
        /// The signal that ended the helper.
        signal: Option<i32>,
        /// From the fork to the helper's end.
        elapsed: std::time::Duration,
        /// The helper's peak resident set (`ru_maxrss`), in bytes.
        peak_memory_bytes: u64,
        /// SHA-256 of the module file, lowercase hex.
        module_sha256: String,
    },
    /// The compile helper could not be started or did not answer as it should.
    #[error("the compile helper of wasm module {path} failed")]
    CompileHelper {
        /// The path given.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The caller's admission of the compile helper (moving it into a cgroup) failed.
    #[error("the compile helper of wasm module {path} could not be admitted")]
    CompileAdmit {
        /// The path given.
        path: PathBuf,
        /// The caller's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The module imports something the host does not provide.
    #[error("wasm module {path} imports `{module}::{name}`, which the host does not provide (it provides WASI preview 1, `wasi_snapshot_preview1`)")]
    MissingImport {
        /// The path given.
        path: PathBuf,
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
    },
    /// The module's imports do not match the host's (a wrong signature, or a component
    /// import the host lacks; wasmtime's message names it).
    #[error("failed to link wasm module {path} against the WASI host")]
    Link {
        /// The path given.
        path: PathBuf,
        /// Wasmtime's answer.
        #[source]
        source: wasmtime::Error,
    },
    /// A core module without the `_start` export of a WASI command.
    #[error("wasm module {path} is not a WASI command: it exports no `_start` function")]
    NoStart {
        /// The path given.
        path: PathBuf,
    },
    /// The cache directory could not be created or inspected.
    #[error("failed to use the wasm cache directory {path}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The cache directory is not safely ours: another owner, or writable by others.
    #[error("refusing the wasm cache directory {path}: {reason}")]
    CacheDirUnsafe {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// In the child: a preopen could not be opened (is it visible in the sandbox's view and
    /// allowed by Landlock?).
    #[error("failed to open preopen {path} in the sandbox")]
    OpenPreopen {
        /// The host path.
        path: PathBuf,
        /// Wasmtime's answer (an I/O error).
        #[source]
        source: wasmtime::Error,
    },
    /// In the child: the async runtime or the deadline thread could not be started.
    #[error("failed to start the wasm host runtime")]
    Runtime {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// In the child: setting the fuel failed.
    #[error("failed to set the wasm fuel")]
    Fuel {
        /// Wasmtime's answer.
        #[source]
        source: wasmtime::Error,
    },
}

/// How the compile helper ended, for [`WasmError::CompileKilled`].
fn killed_how(timed_out: bool, signal: Option<i32>) -> String {
    match (timed_out, signal) {
        (true, _) => "the compile timeout ran out".to_owned(),
        (false, Some(libc::SIGKILL)) => {
            "killed by SIGKILL (the memory limit, when one is set)".to_owned()
        }
        (false, Some(sig)) => format!("killed by signal {sig}"),
        (false, None) => "ended".to_owned(),
    }
}

impl WasmError {
    /// The errno behind the error, where there is one (for the runner's child-to-parent
    /// message).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            WasmError::PreopenMissing { source, .. }
            | WasmError::ReadModule { source, .. }
            | WasmError::CacheDir { source, .. }
            | WasmError::CompileHelper { source, .. }
            | WasmError::Runtime { source } => source.raw_os_error(),
            WasmError::OpenPreopen { source, .. } => source
                .chain()
                .find_map(|e| e.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error),
            WasmError::PreopenNotDirectory { .. } => Some(libc::ENOTDIR),
            WasmError::CacheDirUnsafe { .. } => Some(libc::EPERM),
            _ => None,
        }
    }
}

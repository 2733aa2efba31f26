//! The WASI host of nucleus: runs a WebAssembly module (WASI preview 1 core module, or WASI
//! preview 2 component) inside the sandbox, in the sandboxed process itself, without `execve`.
//!
//! Two halves, like every layer of nucleus:
//!
//! - [`WasmPolicy::prepare`] in the parent, before `clone`: reads the module (`.wasm` or
//!   `.wat`), compiles it or loads it from the cache, links it against WASI, checks the
//!   preopens. Every configuration error surfaces here. It starts no thread (the parent must
//!   stay single-threaded) and leaves no file descriptor open.
//! - [`PreparedWasm::run`] in the child, after Landlock and seccomp: builds the WASI context
//!   (args, env, stdio, preopens), instantiates, runs `_start` (or `wasi:cli/run`) under the
//!   fuel, deadline and memory caps, and returns a [`WasmOutcome`]; the caller `_exit`s with
//!   its code.
//!
//! What the guest gets: exactly the args and environment of the policy, the host's stdin,
//! stdout and stderr, the preopened directories (read-only ones allow no write of any kind),
//! the host's clocks and a secure random source, and no network.
//!
//! Exit codes: the guest's `proc_exit` code; [`TRAP_EXIT_CODE`] (134) for a trap;
//! [`DEADLINE_EXIT_CODE`] (124) when the deadline stopped it.
//!
//! Compiled modules are cached (see [`CacheMode`]): keyed by the SHA-256 of the module file
//! and of the engine's settings, written atomically, verified (owner, mode, header, and an
//! HMAC-SHA256 tag under a key kept in the cache directory) before wasmtime loads them; a
//! file that fails is removed and the module recompiled ([`CacheStatus::Replaced`]).
//!
//! [`WasmPolicy::prepare_in_helper`] compiles in a forked helper process instead, so that a
//! caller can hold the compile to its limits (a cgroup, a timeout): see [`CompileHelper`].
//!
//! ```no_run
//! use nucleus_wasm::{Preopen, WasmPolicy};
//! use std::time::Duration;
//!
//! let mut policy = WasmPolicy::new("tool.wasm");
//! policy.args = vec!["/data/in.txt".into()];
//! policy.preopens = vec!["/srv/data:/data:ro".parse::<Preopen>()?];
//! policy.deadline = Some(Duration::from_secs(10));
//! let prepared = policy.prepare()?; // parent
//! let outcome = prepared.run()?; // child, after Landlock and seccomp
//! std::process::exit(outcome.exit_code);
//! # Ok::<(), nucleus_wasm::WasmError>(())
//! ```

mod cache;
mod compile;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod helper;
mod host;
mod outcome;
mod policy;
mod prepare;
mod prepared;
mod probe;
mod run;
mod sys;

pub use cache::{default_cache_dir, CacheStatus};
pub use compile::{proposals, ModuleKind, PROPOSALS};
pub use error::WasmError;
pub use helper::{AdmitFn, CompileHelper};
pub use outcome::{TrapKind, WasmOutcome, DEADLINE_EXIT_CODE, TRAP_EXIT_CODE};
pub use policy::{CacheMode, Preopen, WasmPolicy};
pub use prepared::{PrepareReport, PreparedWasm};
pub use probe::{probe, WasmProbe};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

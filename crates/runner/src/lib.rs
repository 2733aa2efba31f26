//! The nucleus runner: the [`Envelope`] that describes one sandbox, the
//! launch sequence that builds it from the layer crates, and the
//! `nucleus-run` binary.
//!
//! ```no_run
//! use nucleus_runner::{launch, Envelope};
//!
//! let env = Envelope::builder(["/bin/sh", "-c", "echo hello from $(hostname)"])
//!     .ro_bind("/srv/data", "/data")
//!     .timeout(std::time::Duration::from_secs(30))
//!     .build()?;
//! let outcome = launch(&env)?;
//! println!("exit {}", outcome.exit_code);
//! # Ok::<(), nucleus_runner::RunError>(())
//! ```

mod builder;
mod channel;
mod child;
pub mod client;
mod console;
mod duration;
mod envelope;
mod environ;
mod error;
pub mod exit;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
mod gvisor;
mod gvisor_bundle;
mod gvisor_report;
mod gvisor_session;
mod gvisor_workspace;
mod landlock;
mod launch;
mod orphans;
mod outcome;
mod prepare;
mod probe;
pub mod progress;
pub mod protocol;
mod relay;
mod report;
mod sandbox;
mod seccomp;
pub mod server;
mod session;
mod slot;
mod spare;
mod stage;
mod state;
mod steps;
mod supervise;
mod sys;
mod trust;
mod wasm;
mod wasm_host;

pub use builder::Builder;
pub use duration::parse_duration;
pub use envelope::{Envelope, GvisorSettings, NetworkMode, UserSpec, DEFAULT_USERNS_LIMITS};
pub use environ::{DEFAULT_HOSTNAME, DEFAULT_PATH};
pub use error::RunError;
pub use landlock::{LandlockMode, LandlockSettings};
pub use launch::{launch, launch_with, record, LaunchOptions};
pub use outcome::{
    Captured, Enforced, GvisorEnforced, KilledBy, LandlockEnforced, LandlockStatus, LimitsEnforced,
    MemfdNoexec, Outcome, Terminal, WasmReport, RESULT_SCHEMA_VERSION,
};
pub use probe::{probe_envelope, probe_idmap, EnvelopeProbe};
pub use seccomp::{SeccompMode, SeccompSettings};
pub use stage::Stage;
pub use wasm::WasmSettings;

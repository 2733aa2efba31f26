//! Fuzz targets for every parser of untrusted input in nucleus, and the pieces of a
//! coverage-less, structure-aware fuzzer that runs on stable Rust (the `nucleus-fuzz`
//! binary; `cargo xtask fuzz` runs it).
//!
//! A [`Target`] feeds bytes to one real public parse entry point (as UTF-8, lossily, where
//! the parser takes text) and, where the format round-trips, checks a property: what parses
//! prints back to text that parses to the same value. A panic, from the parser or from a
//! property, is a finding. Each target brings its seeds: real, valid examples (the default
//! profiles, the crates' documented examples, podman's seccomp profile), which
//! [`Mutator`] mutates.
//!
//! ```
//! let target = nucleus_fuzz::target("size").unwrap();
//! for seed in (target.seeds)() {
//!     (target.run)(&seed); // no panic
//! }
//! assert!((target.run)(b"512M"));
//! assert!(!(target.run)(b"12Q"));
//! ```
//!
//! Not published: a dev-only crate. The parsers behind the `fuzzing` cargo features of
//! `nucleus-wasm` and `nucleus-runner` are exposed for this crate only.

mod config;
mod ids;
mod mutate;
mod oci;
mod policies;
mod values;
mod wire;

pub use mutate::{Mutator, Rng};

use std::borrow::Cow;

/// One parser under test.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name on the command line and the directory of its regression files.
    pub name: &'static str,
    /// The entry point it feeds.
    pub entry: &'static str,
    /// Feeds one input; `true` when the parser accepted it (the driver keeps accepted
    /// inputs to mutate further). Panics on a finding.
    pub run: fn(&[u8]) -> bool,
    /// Valid examples to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, in the order `all` runs them.
pub const TARGETS: &[Target] = &[
    policies::LANDLOCK,
    policies::CAPS,
    policies::SECCOMP,
    config::CONFIG_TOML,
    config::CONFIG_JSON,
    values::SIZE,
    values::DURATION,
    ids::IDMAP,
    ids::SUBID,
    wire::WASM_CACHE,
    wire::CHANNEL,
    wire::PROTOCOL,
    oci::OCI_CONFIG,
];

/// The target called `name`.
///
/// ```
/// assert_eq!(nucleus_fuzz::target("subid").unwrap().name, "subid");
/// assert!(nucleus_fuzz::target("nope").is_none());
/// ```
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The bytes as text, invalid UTF-8 replaced (the targets of text parsers use it).
///
/// ```
/// assert_eq!(nucleus_fuzz::text(b"a\xffb"), "a\u{fffd}b");
/// ```
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Seeds from string literals.
fn strs(seeds: &[&str]) -> Vec<Vec<u8>> {
    seeds.iter().map(|s| s.as_bytes().to_vec()).collect()
}

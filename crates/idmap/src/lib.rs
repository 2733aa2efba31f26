//! uid/gid maps for user namespaces: rootless, keep-id, root-remapped,
//! explicit, subuid ranges.
//!
//! A sandbox in a new user namespace has no ids until its parent writes
//! `/proc/PID/uid_map` and `/proc/PID/gid_map`. This crate decides what to
//! write and writes it:
//!
//! - [`IdMapPolicy`] is the plain-data policy (a [`UsernsMode`], explicit maps,
//!   whether host root may be mapped in), read from a config file.
//! - [`IdMapPolicy::resolve`] turns it into [`ResolvedMaps`] for a [`Caller`],
//!   reading `/etc/subuid`/`/etc/subgid` ([`SubIdPaths`]) when needed, checking
//!   every map with [`validate_maps`], and choosing the [`MapWriter`]: the
//!   parent itself, or the setuid helpers `newuidmap`/`newgidmap`.
//! - [`ResolvedMaps::write`] writes them for the child, right after clone.
//! - [`probe`] tells what the machine offers.
//!
//! | mode | uid map (caller uid `U`) | writer | workload ids |
//! |---|---|---|---|
//! | `rootless` | `0:U:1` | direct, setgroups denied | 0 |
//! | `keep-id` | `U:U:1` | direct | `U` |
//! | `root-remapped` | `0:START:COUNT` from subuid, else `0:100000:65536` (root only); with [`IdMapPolicy::resolve_leased`], root gets a range of its own from a [`RangePool`] | direct (root) or helpers | 0 |
//! | `explicit` | as given | direct when allowed, else helpers | 0 if mapped, else first inside id |
//! | `auto` | `root-remapped` for root, `rootless` otherwise | | |
//! | `host` | no user namespace | | |
//!
//! ```
//! use nucleus_idmap::{Caller, IdMapPolicy, SubIdPaths, UsernsMode};
//!
//! let policy: IdMapPolicy = serde_json::from_str(r#"{"mode": "root-remapped"}"#).unwrap();
//! let root = Caller::new(0, 0, Some("root".into()));
//! let paths = SubIdPaths::new("/nonexistent/subuid", "/nonexistent/subgid");
//! let maps = policy.resolve(&root, &paths).unwrap().unwrap();
//! assert_eq!(maps.uid[0].to_string(), "0:100000:65536");
//! assert!(maps.maps_uid(65535) && !maps.maps_uid(65536));
//! ```
//!
//! In the parent, after `clone(CLONE_NEWUSER | ...)` and before releasing the
//! child:
//!
//! ```no_run
//! # let (maps, child_pid): (nucleus_idmap::ResolvedMaps, i32) = todo!();
//! maps.write(child_pid)?;
//! # Ok::<(), nucleus_idmap::IdmapError>(())
//! ```

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod error;
mod lease;
mod mapping;
mod mode;
mod parse;
mod policy;
mod probe;
mod rules;
mod subid;
mod sys;
mod write;

pub use error::{IdmapError, MapProblem};
pub use lease::{RangeLease, RangePool};
pub use mapping::{HostRoot, IdMapping, MAX_MAP_BYTES, MAX_MAP_LINES};
pub use mode::{UsernsMode, DEFAULT_REMAP_COUNT, DEFAULT_REMAP_START};
pub use policy::IdMapPolicy;
pub use probe::{probe, probe_with, IdmapProbe};
pub use rules::validate_maps;
pub use subid::{parse_subid, Caller, SubIdPaths, SubIdRange};
pub use write::{MapWriter, ResolvedMaps};

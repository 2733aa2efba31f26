//! What the user namespace maps should be, and how they resolve for a caller.

use crate::error::IdmapError;
use crate::lease::{RangeLease, RangePool};
use crate::mapping::{maps_id, HostRoot, IdMapping};
use crate::mode::{UsernsMode, DEFAULT_REMAP_COUNT, DEFAULT_REMAP_START};
use crate::rules::validate_named;
use crate::subid::{find_range, Caller, SubIdPaths, SubIdRange};
use crate::write::{MapWriter, ResolvedMaps};
use serde::{Deserialize, Serialize};

/// The id-mapping policy of a sandbox: plain data, read from a config file.
///
/// ```
/// use nucleus_idmap::{Caller, IdMapPolicy, SubIdPaths, UsernsMode};
/// let policy = IdMapPolicy { mode: UsernsMode::Rootless, ..Default::default() };
/// let alice = Caller::new(1000, 1000, Some("alice".into()));
/// let maps = policy.resolve(&alice, &SubIdPaths::default()).unwrap().unwrap();
/// assert_eq!(maps.uid[0].to_string(), "0:1000:1");
/// assert!(maps.deny_setgroups);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdMapPolicy {
    /// How ids map; `auto` by default.
    pub mode: UsernsMode,
    /// The uid map, for `explicit` only.
    pub uid_map: Vec<IdMapping>,
    /// The gid map, for `explicit` only.
    pub gid_map: Vec<IdMapping>,
    /// Whether host id 0 may be mapped in; `deny` by default.
    pub host_root: HostRoot,
}

impl IdMapPolicy {
    /// Checks what can be checked without knowing the caller: `explicit`
    /// has both maps and they follow the rules of
    /// [`validate_maps`](crate::validate_maps); other modes have none.
    pub fn validate(&self) -> Result<(), IdmapError> {
        if self.mode != UsernsMode::Explicit {
            if self.uid_map.is_empty() && self.gid_map.is_empty() {
                return Ok(());
            }
            return Err(IdmapError::MapsIgnored { mode: self.mode });
        }
        if self.uid_map.is_empty() {
            return Err(IdmapError::ExplicitMapMissing { missing: "uid_map" });
        }
        if self.gid_map.is_empty() {
            return Err(IdmapError::ExplicitMapMissing { missing: "gid_map" });
        }
        validate_named(&self.uid_map, self.host_root, "uid_map")?;
        validate_named(&self.gid_map, self.host_root, "gid_map")
    }

    /// Turns the policy into the maps for `caller`, reading the subordinate
    /// id files at `paths` when the mode needs them. `None` for
    /// [`UsernsMode::Host`] (no user namespace).
    ///
    /// Launch sequence: in the parent, before clone, so that a bad policy
    /// fails before anything is created.
    pub fn resolve(
        &self,
        caller: &Caller,
        paths: &SubIdPaths,
    ) -> Result<Option<ResolvedMaps>, IdmapError> {
        self.validate()?;
        let maps = match self.mode {
            UsernsMode::Host => return Ok(None),
            UsernsMode::Auto if caller.is_root() => root_remapped(caller, paths)?,
            UsernsMode::RootRemapped => root_remapped(caller, paths)?,
            UsernsMode::Auto | UsernsMode::Rootless => rootless(caller),
            UsernsMode::KeepId => keep_id(caller),
            UsernsMode::Explicit => self.explicit(caller)?,
        };
        validate_named(&maps.uid, self.host_root, "uid_map")?;
        validate_named(&maps.gid, self.host_root, "gid_map")?;
        Ok(Some(maps))
    }

    /// Like [`resolve`](Self::resolve), except that a root caller's
    /// `auto` and `root-remapped` sandboxes each get a host range of their
    /// own, leased from `pool` for as long as the returned maps live (see
    /// [`RangeLease`](crate::RangeLease)), instead of one fixed range
    /// shared by all of them. Root's own subordinate entries, like every
    /// other, are ranges the lease avoids.
    ///
    /// Launch sequence: in the parent, before clone; the maps (and so the
    /// lease) are kept until the sandbox has ended.
    ///
    /// ```no_run
    /// use nucleus_idmap::{Caller, IdMapPolicy, RangePool, SubIdPaths};
    /// let root = Caller::new(0, 0, Some("root".into()));
    /// let maps = IdMapPolicy::default()
    ///     .resolve_leased(&root, &SubIdPaths::default(), &RangePool::default())?
    ///     .unwrap();
    /// assert!(maps.uid[0].outside >= 0x7000_0000 && maps.lease.is_some());
    /// # Ok::<(), nucleus_idmap::IdmapError>(())
    /// ```
    pub fn resolve_leased(
        &self,
        caller: &Caller,
        paths: &SubIdPaths,
        pool: &RangePool,
    ) -> Result<Option<ResolvedMaps>, IdmapError> {
        let remapped = matches!(self.mode, UsernsMode::Auto | UsernsMode::RootRemapped);
        if !(remapped && caller.is_root()) {
            return self.resolve(caller, paths);
        }
        self.validate()?;
        // The subordinate id files are read once, by the lease, which
        // avoids every entry (root's own one included).
        let lease = RangeLease::acquire(pool, paths)?;
        let mut maps = root_maps(lease.mapping(), lease.mapping());
        validate_named(&maps.uid, self.host_root, "uid_map")?;
        validate_named(&maps.gid, self.host_root, "gid_map")?;
        maps.lease = Some(std::sync::Arc::new(lease));
        Ok(Some(maps))
    }

    fn explicit(&self, caller: &Caller) -> Result<ResolvedMaps, IdmapError> {
        let own = |maps: &[IdMapping], id| matches!(maps, [m] if m.outside == id && m.count == 1);
        let (writer, deny_setgroups) = if caller.is_root() {
            (MapWriter::Direct, false)
        } else if own(&self.uid_map, caller.uid) && own(&self.gid_map, caller.gid) {
            (MapWriter::Direct, true)
        } else {
            (MapWriter::find_helpers()?, false)
        };
        let default_id = |maps: &[IdMapping]| {
            if maps_id(maps, 0) {
                0
            } else {
                maps.first().map_or(0, |m| m.inside)
            }
        };
        Ok(ResolvedMaps {
            uid: self.uid_map.clone(),
            gid: self.gid_map.clone(),
            writer,
            deny_setgroups,
            default_uid: default_id(&self.uid_map),
            default_gid: default_id(&self.gid_map),
            lease: None,
        })
    }
}

fn rootless(caller: &Caller) -> ResolvedMaps {
    ResolvedMaps {
        uid: vec![IdMapping::new(0, caller.uid, 1)],
        gid: vec![IdMapping::new(0, caller.gid, 1)],
        writer: MapWriter::Direct,
        // An unprivileged writer may only write gid_map after denying
        // setgroups (user_namespaces(7), CVE-2014-8989).
        deny_setgroups: true,
        default_uid: 0,
        default_gid: 0,
        lease: None,
    }
}

fn keep_id(caller: &Caller) -> ResolvedMaps {
    ResolvedMaps {
        uid: vec![IdMapping::new(caller.uid, caller.uid, 1)],
        gid: vec![IdMapping::new(caller.gid, caller.gid, 1)],
        writer: MapWriter::Direct,
        deny_setgroups: !caller.is_root(),
        default_uid: caller.uid,
        default_gid: caller.gid,
        lease: None,
    }
}

/// The maps of a root caller's remapped sandbox: one line each, written by
/// the runner itself, root inside.
fn root_maps(uid: IdMapping, gid: IdMapping) -> ResolvedMaps {
    ResolvedMaps {
        uid: vec![uid],
        gid: vec![gid],
        writer: MapWriter::Direct,
        deny_setgroups: false,
        default_uid: 0,
        default_gid: 0,
        lease: None,
    }
}

fn root_remapped(caller: &Caller, paths: &SubIdPaths) -> Result<ResolvedMaps, IdmapError> {
    let uid_range = find_range(&paths.subuid, caller)?;
    let gid_range = find_range(&paths.subgid, caller)?;
    let line = |r: &SubIdRange| IdMapping::new(0, r.start, r.count);
    if caller.is_root() {
        let default = IdMapping::new(0, DEFAULT_REMAP_START, DEFAULT_REMAP_COUNT);
        return Ok(root_maps(
            uid_range.as_ref().map_or(default, line),
            gid_range.as_ref().map_or(default, line),
        ));
    }
    let missing = |path: &std::path::Path| IdmapError::NoSubidRange {
        user: caller.display_name(),
        path: path.to_owned(),
    };
    let uid = uid_range.ok_or_else(|| missing(&paths.subuid))?;
    let gid = gid_range.ok_or_else(|| missing(&paths.subgid))?;
    Ok(ResolvedMaps {
        uid: vec![line(&uid)],
        gid: vec![line(&gid)],
        writer: MapWriter::find_helpers()?,
        deny_setgroups: false,
        default_uid: 0,
        default_gid: 0,
        lease: None,
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
